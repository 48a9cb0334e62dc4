/**
 * The `deno run` flags imgtool runs with, read from one place: the `imgtool` task in
 * `deno.json`. `deno task compile` embeds them in the binaries, and the tests and
 * benchmarks run the CLI (from the sources or the bundle) with exactly these, so a missing
 * permission or a changed runtime flag shows there first.
 *
 * - `--allow-all`: every permission. imgtool reads specs and files, writes contexts and
 *   `--out`, reaches registries, reads `IMGTOOL_*` and secrets, and runs docker, buildah and
 *   credential helpers; the last (`--allow-run`) already lets the spec's code do anything a
 *   process can, so a shorter list would protect nothing. And with every permission granted
 *   Deno checks no path: with a list, it resolves each path it opens or stats one component
 *   at a time (six `readlink` calls a file in the identity benchmark's tree), a fifth of a
 *   cold identity's time (`bench/README.md`).
 * - `--v8-flags=--no-lazy`: compile every function when its module loads, not on its first
 *   call. Deno keeps a module's compiled code in its code cache, and what is compiled at
 *   load is all that cache holds; with lazy compilation every run compiled again each
 *   function it called, a few milliseconds of a no-op build (`deno task bench noop-build`).
 * - No `--single-threaded`, though it was tried: without V8's background threads, code that
 *   turns hot in a long loop (a walk's, a tree check's, a tar writer's) is optimized on the
 *   main thread while the loop waits, and not as far. The warm identity of a 20,024-file tree
 *   took 142 ms with it against 109 without, an append of one edited file 493 ms against 460
 *   (6 MB less memory); a no-op build was no faster with it (64.9 ms against 64.1-64.3,
 *   `bench/README.md`).
 * - `--v8-flags=--expose-gc`: V8's `gc` on `globalThis`, which `src/garbage.ts` calls where a
 *   stage of a build of a large tree ends (a walk, a layer written, a provenance record
 *   written): V8 would otherwise let the heap grow well past what is alive before collecting
 *   its old generation, and keep the pages it freed. Spec code could call it too; it would
 *   only cost that code time.
 * - `--v8-flags=--max-semi-space-size=1`: a young generation of 1 MB a half instead of up to
 *   16. The objects a walk or a layer makes per file die young; the larger young generation
 *   only held more of them at once. With the collections above, an edit round of a
 *   50,000-file folder appended through the registry peaks at some 104 MB instead of 151
 *   (`deno task bench append`), and takes no longer.
 *
 * `deno task test` and `deno task bench` run with the same V8 flags: V8 refuses a code cache
 * made under other flags, so a test process importing the sources and the CLI it starts would
 * otherwise replace each other's cache of the same modules on every run
 * (tests/runtime_flags_test.ts keeps the three tasks in step).
 *
 * @module
 */

const manifest = JSON.parse(
  Deno.readTextFileSync(new URL("../deno.json", import.meta.url)),
) as { tasks: Record<string, string> };

const taskArgs = manifest.tasks.imgtool.split(/\s+/);

/**
 * The V8 flags of `deno task imgtool`, for a process that runs imgtool's code without being
 * the CLI (a benchmark's child).
 *
 * @example
 * ```ts
 * import { IMGTOOL_V8_FLAGS } from "./runtime_flags.ts";
 * console.log(IMGTOOL_V8_FLAGS.join(" ")); // --v8-flags=--no-lazy,--expose-gc,--max-semi-space-size=1
 * ```
 */
export const IMGTOOL_V8_FLAGS: readonly string[] = taskArgs.filter((arg) =>
  arg.startsWith("--v8-flags=")
);

/**
 * The runtime flags of `deno task imgtool`: its permissions and its V8 flags.
 *
 * @example
 * ```ts
 * import { IMGTOOL_RUNTIME_FLAGS } from "./runtime_flags.ts";
 * const args = ["run", ...IMGTOOL_RUNTIME_FLAGS, "--config=deno.json", "cli.ts", "--version"];
 * console.log(args.includes("--allow-all")); // true
 * ```
 */
export const IMGTOOL_RUNTIME_FLAGS: readonly string[] = [
  ...IMGTOOL_V8_FLAGS,
  ...taskArgs.filter((arg) => arg.startsWith("--allow-")),
];
