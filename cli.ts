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
  const interrupt = new Interrupt();
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
        // Asking for them starts the part of a build that has a builder and temporary files
        // to stop and clean up: from then on, a signal does that first.
        const builders = async () => {
          interrupt.catchSignals();
          return (await import("./plugins/mod.ts")).builtinBuilders;
        };
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
      case "status": {
        const { statusCommand } = await import("./src/commands/status.ts");
        return await statusCommand(command.spec, command.flags);
      }
      case "lock": {
        const { lockCommand } = await import("./src/commands/lock.ts");
        return await lockCommand(command.spec, command.flags, interrupt.signal);
      }
      case "explain": {
        const { explainCommand } = await import("./src/commands/explain.ts");
        return await explainCommand(command.spec, command.flags);
      }
      case "init": {
        const { initCommand } = await import("./src/commands/init.ts");
        return await initCommand(command.dir, command.flags);
      }
    }
  } catch (error) {
    if (interrupt.signal.aborted) {
      err("interrupted: the builder was stopped and temporary build files were removed");
      return interrupt.exitCode;
    }
    return reportError(error, json);
  } finally {
    interrupt.release();
  }
}

const SIGNALS = ["SIGINT", "SIGTERM"] as const;
type Signal = typeof SIGNALS[number];
/** The shell's status for a process ended by the signal: 128 + its number. */
const SIGNAL_EXIT: Record<Signal, number> = { SIGINT: 130, SIGTERM: 143 };

/**
 * What SIGINT and SIGTERM do. Until a build needs a builder, nothing is caught: the signal
 * ends the process at once, as it does any program, even while a spec's top-level `await`
 * never settles or its code loops. Once a builder may run, the first signal aborts `signal`
 * (the builder is stopped and the temporary build files are removed, then `main` returns
 * `exitCode`), and a second one exits at once, for a clean-up that does not end.
 */
class Interrupt {
  readonly #controller = new AbortController();
  #caught: Signal | undefined;
  readonly #listeners = new Map<Signal, () => void>();

  /** Aborted by the first signal once signals are caught. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** 130 after SIGINT, 143 after SIGTERM. */
  get exitCode(): number {
    return SIGNAL_EXIT[this.#caught ?? "SIGINT"];
  }

  /** Catch signals from now on (once). */
  catchSignals(): void {
    if (this.#listeners.size > 0) return;
    for (const name of SIGNALS) {
      const listener = () => {
        if (this.#caught === undefined) {
          this.#caught = name;
          this.#controller.abort();
          return;
        }
        err(
          "interrupted again: exiting without waiting for the builder; temporary build files " +
            "(imgtool-context-*, imgtool-secrets-*) may remain in the temporary folder",
        );
        Deno.exit(SIGNAL_EXIT[name]);
      };
      Deno.addSignalListener(name, listener);
      this.#listeners.set(name, listener);
    }
  }

  /** Leave signals to their default again. */
  release(): void {
    for (const [name, listener] of this.#listeners) Deno.removeSignalListener(name, listener);
    this.#listeners.clear();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
