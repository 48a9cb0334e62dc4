/**
 * `deno task bundle`: imgtool as a handful of plain JavaScript modules in `dist/js/`, the
 * form `deno task compile` embeds in the binaries and the no-op benchmark runs.
 *
 * Why: `deno run cli.ts` reads, checks against the transpile cache and links some seventy
 * TypeScript modules on every start (Deno walks the whole graph, lazy imports included,
 * before running a line); a command whose whole job may be one registry request spends
 * more time there than in its work. The bundle is the same code in a dozen files:
 *
 * - `cli.js` (the command line) and `mod.js` (the API a spec imports as `imgtool`), split
 *   into shared chunks so that both use one copy of every class, and each command's code
 *   loads only when the command runs;
 * - `digest_worker.js`, the hashing Worker, beside the chunk that starts it;
 * - `deno.json`, mapping `imgtool` to `./mod.js` for the specs it runs.
 *
 * Run it with `deno run -A --config dist/js/deno.json dist/js/cli.js build spec.ts`.
 * The folder is two levels below the repository, as `src/commands/` is: `imgtool init`
 * finds the API's sources (for editors) at `../../` from its own module either way.
 *
 * Usage: deno task bundle [--out DIR]   (DIR default dist/js, inside the repository)
 *
 * @module
 */

import { parseArgs } from "node:util";

const ROOT = new URL("../", import.meta.url).pathname;
const deno = Deno.execPath();

async function bundle(args: string[]): Promise<void> {
  const { success, stderr } = await new Deno.Command(deno, {
    args: ["bundle", "--config", "deno.json", "--format", "esm", "--platform", "deno", ...args],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) {
    throw new Error(`deno bundle ${args.join(" ")} failed:\n${new TextDecoder().decode(stderr)}`);
  }
}

/** Bundle into `out` (relative to the repository): a new folder, swapped in whole. */
export async function bundleInto(out = "dist/js"): Promise<string> {
  const parts = out.split("/").filter((part) => part !== "" && part !== ".");
  if (parts.length !== 2 || parts.includes("..")) {
    throw new Error(
      `${out}: the bundle goes in a folder two levels below the repository (like dist/js), ` +
        "where imgtool init finds the API's sources at ../../",
    );
  }
  const target = `${ROOT}${parts.join("/")}`;
  const building = `${target}.building-${Deno.pid}`;
  await Deno.remove(building, { recursive: true }).catch(() => {});
  try {
    await bundle(["--code-splitting", "--outdir", building, "cli.ts", "mod.ts"]);
    await bundle(["--output", `${building}/digest_worker.js`, "src/digest_worker.ts"]);
    const config = { imports: { imgtool: "./mod.js" }, lock: false, nodeModulesDir: "none" };
    await Deno.writeTextFile(`${building}/deno.json`, `${JSON.stringify(config, null, 2)}\n`);
    // Never half a bundle: the old one goes only once the new one is complete.
    await Deno.remove(target, { recursive: true }).catch(() => {});
    await Deno.rename(building, target);
  } catch (error) {
    await Deno.remove(building, { recursive: true }).catch(() => {});
    throw error;
  }
  return target;
}

const USAGE = `usage: deno task bundle [--out DIR]

Bundle imgtool into DIR (default dist/js, a folder two levels below the repository), then run it:
  deno run -A --config DIR/deno.json DIR/cli.js build spec.ts`;

if (import.meta.main) {
  let values: { out?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: { out: { type: "string" }, help: { type: "boolean", short: "h" } },
    }));
  } catch (error) {
    console.error(`bundle: ${(error as Error).message}\n\n${USAGE}`);
    Deno.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  try {
    const target = await bundleInto(values.out);
    const files = [...Deno.readDirSync(target)].map((entry) => entry.name).sort();
    console.log(`bundled imgtool into ${target}: ${files.length} files`);
    console.log(`run: deno run -A --config ${target}/deno.json ${target}/cli.js --help`);
  } catch (error) {
    console.error(`bundle: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
