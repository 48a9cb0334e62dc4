/**
 * The imgtool command line. The pipeline, stage by stage, is in `src/commands/build.ts`:
 * load (`src/load.ts`) → plan (`src/plan.ts`) → validate (`src/validate.ts`) → identify
 * (`src/identify.ts`) → check (`src/check.ts`) → render (`src/render.ts`) → build and push
 * (`src/build.ts`, through a builder plugin from `plugins/`).
 *
 * @module
 */

import { helpText, parseCommandLine } from "./src/cli/args.ts";
import { err, out, reportError } from "./src/cli/output.ts";
import { VERSION } from "./src/version.ts";

// Each command's modules load only when it runs: start-up stays short for `uri` and `--help`.

/** Run the CLI with `args`; returns the exit status. */
export async function main(args: readonly string[]): Promise<number> {
  const json = args.includes("--json");
  // Ctrl-C stops the builder and lets every stage clean up before we exit.
  const interrupt = new AbortController();
  const onSignal = () => interrupt.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const command = parseCommandLine(args);
    switch (command.kind) {
      case "help":
        out(helpText(command.topic));
        return 0;
      case "version":
        out(`imgtool ${VERSION}`);
        return 0;
      case "build": {
        const { buildCommand } = await import("./src/commands/build.ts");
        // Builder plugins load only when something is to be built: a no-op build needs none.
        const builders = async () => (await import("./plugins/mod.ts")).builtinBuilders;
        return await buildCommand(command.spec, command.flags, builders, interrupt.signal);
      }
      case "dockerfile": {
        const { dockerfileCommand } = await import("./src/commands/dockerfile.ts");
        return await dockerfileCommand(command.spec, command.flags);
      }
      case "uri": {
        const { uriCommand } = await import("./src/commands/uri.ts");
        return await uriCommand(command.spec, command.flags);
      }
      case "validate": {
        const { validateCommand } = await import("./src/commands/validate.ts");
        return await validateCommand(command.spec, command.flags);
      }
      case "init": {
        const { initCommand } = await import("./src/commands/init.ts");
        return await initCommand(command.dir, command.flags);
      }
    }
  } catch (error) {
    if (interrupt.signal.aborted) {
      err("interrupted: the builder was stopped and temporary build files were removed");
      return 130;
    }
    return reportError(error, json);
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
