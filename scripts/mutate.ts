/**
 * `deno run -A scripts/mutate.ts`: do the unit tests notice when a guarantee breaks?
 *
 * Copies the project's sources (the files git knows, tracked or not ignored, as they are in
 * the working tree; never tests/e2e/.work, dist, node_modules or .ci/.tools) to a temporary
 * folder, then, one mutation at a time (scripts/mutations.ts), changes one file there, runs
 * the unit tests in the copy, and puts the file back. A mutation is caught when a test fails
 * that passes without it; it SURVIVED when every such test still passes. A mutation whose
 * text no longer occurs exactly once, or that does not type-check, or whose run exceeds the
 * time bound, is an error, never "caught". Prints a table; exits 1 unless every mutation
 * was caught, 2 on a mistake in the command line.
 *
 * The unit tests are `deno test` of tests/, src/, plugins/ and examples/ without tests/e2e/
 * (the end-to-end tests also ignore themselves without their environment, which the copy
 * lacks) and without tests/mutate_test.ts. Mutations run one after the other: each run is the whole unit suite, which keeps
 * a 2-core machine busy; a run of all of them takes a while.
 *
 * Usage: deno run -A scripts/mutate.ts [--only NAME]... [--list] [--timeout SECONDS]
 *        [--tests PATH]... [--help]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { applyMutation, type Mutation, MUTATIONS, StaleMutationError } from "./mutations.ts";
import { IMGTOOL_V8_FLAGS } from "./runtime_flags.ts";

/** Where the unit tests are, relative to the repository root. */
const UNIT_TEST_PATHS: readonly string[] = ["tests/", "src/", "plugins/", "examples/"];
/**
 * Tests left out: the end-to-end tests need an environment of their own, and this script's
 * own tests check that each mutation still applies to the sources, which in the copy one of
 * them has just changed.
 */
const IGNORED_TEST_PATHS: readonly string[] = ["tests/e2e/", "tests/mutate_test.ts"];
/** Never copied: machine state, build output, downloaded tools. */
const NOT_COPIED: readonly string[] = ["tests/e2e/.work/", "dist/", "node_modules/", ".ci/.tools/"];
/** The default time bound of one run of the unit tests. */
const DEFAULT_TIMEOUT_SECONDS = 600;

/**
 * What one mutation came to.
 *
 * @example
 * ```ts
 * import type { Outcome } from "./mutate.ts";
 * const outcome: Outcome = { kind: "caught", by: ["add adds => ./tests/add_test.ts"] };
 * console.log(outcome.kind === "caught" ? outcome.by.length : 0); // 1
 * ```
 */
export type Outcome =
  /** Tests that pass without the mutation failed with it. */
  | { readonly kind: "caught"; readonly by: readonly string[] }
  /** Every test that passes without the mutation still passed. */
  | { readonly kind: "survived" }
  /** The mutation could not be tried (stale text, type error, time bound, no test ran). */
  | { readonly kind: "error"; readonly message: string };

/**
 * A mutation and what it came to.
 *
 * @example
 * ```ts
 * import type { MutationResult } from "./mutate.ts";
 * import { MUTATIONS } from "./mutations.ts";
 * const result: MutationResult = { mutation: MUTATIONS[0], outcome: { kind: "survived" }, seconds: 61 };
 * console.log(result.outcome.kind); // survived
 * ```
 */
export interface MutationResult {
  /** The mutation. */
  readonly mutation: Mutation;
  /** What happened. */
  readonly outcome: Outcome;
  /** How long its test run took, in seconds (0 when none ran). */
  readonly seconds: number;
}

/**
 * What {@link runMutations} needs.
 *
 * @example
 * ```ts
 * import type { MutateOptions } from "./mutate.ts";
 * import { MUTATIONS } from "./mutations.ts";
 * const options: MutateOptions = {
 *   root: ".",
 *   mutations: MUTATIONS.filter((m) => m.name === "canonical-key-order"),
 *   testPaths: ["tests/pinned_tags_test.ts"],
 *   timeoutMs: 120_000,
 * };
 * console.log(options.mutations.length); // 1
 * ```
 */
export interface MutateOptions {
  /** The repository to copy (a git work tree). */
  readonly root: string;
  /** The mutations to try, in order. */
  readonly mutations: readonly Mutation[];
  /** The test paths, relative to the root; default {@link UNIT_TEST_PATHS}. */
  readonly testPaths?: readonly string[];
  /** The time bound of one test run, in milliseconds. */
  readonly timeoutMs?: number;
  /** Stops the run (Ctrl-C): the test run in progress is killed, the copy removed. */
  readonly signal?: AbortSignal;
  /** Progress lines. */
  readonly progress?: (line: string) => void;
}

/**
 * Try every mutation in a copy of `options.root` and say which the unit tests caught. The
 * copy is removed afterwards, whatever happens.
 *
 * @example
 * ```ts
 * import { runMutations } from "./mutate.ts";
 * import { MUTATIONS } from "./mutations.ts";
 * // The whole unit suite runs once per mutation (and once without): minutes each.
 * const tryOne = (name: string) =>
 *   runMutations({ root: ".", mutations: MUTATIONS.filter((m) => m.name === name) });
 * console.log(typeof tryOne); // function
 * ```
 */
export async function runMutations(options: MutateOptions): Promise<MutationResult[]> {
  const progress = options.progress ?? (() => {});
  const copy = await Deno.makeTempDir({ prefix: "imgtool-mutate-" });
  try {
    const count = await copySources(options.root, copy);
    progress(`copied ${count} files of ${options.root} to ${copy}`);
    const run = () =>
      runTests(copy, options.testPaths ?? UNIT_TEST_PATHS, {
        timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_SECONDS * 1000,
        signal: options.signal,
      });
    // Tests that fail without any mutation catch nothing; asked only once a run fails.
    let baseline: TestRun | undefined;
    const results: MutationResult[] = [];
    for (const [index, mutation] of options.mutations.entries()) {
      options.signal?.throwIfAborted();
      const label = `[${index + 1}/${options.mutations.length}] ${mutation.name}`;
      const path = `${copy}/${mutation.file}`;
      let original: string;
      let mutated: string;
      try {
        original = await Deno.readTextFile(path);
        mutated = applyMutation(original, mutation);
      } catch (error) {
        const message = error instanceof StaleMutationError
          ? error.message
          : `cannot read ${mutation.file}: ${(error as Error).message}`;
        results.push({ mutation, outcome: { kind: "error", message }, seconds: 0 });
        progress(`${label}: ERROR, ${message}`);
        continue;
      }
      progress(`${label}: ${mutation.file}: running the unit tests`);
      let tested: TestRun;
      try {
        await Deno.writeTextFile(path, mutated);
        tested = await run();
      } finally {
        await Deno.writeTextFile(path, original);
      }
      if (!tested.passed && tested.failures.length > 0 && baseline === undefined) {
        progress(`${label}: tests failed; running them without any mutation, to compare`);
        baseline = await run();
        if (baseline.passed) progress("without any mutation, every test passes");
        else {
          progress(
            `without any mutation, ${baseline.failures.length} tests fail already: ` +
              (baseline.failures.join("; ") || baseline.problem || "see the output above"),
          );
        }
      }
      const outcome = judge(tested, baseline);
      results.push({ mutation, outcome, seconds: tested.seconds });
      progress(`${label}: ${describe(outcome)} (${tested.seconds} s)`);
    }
    return results;
  } finally {
    await Deno.remove(copy, { recursive: true }).catch(() => {});
  }
}

/** One run of the unit tests. */
interface TestRun {
  /** Every test passed. */
  readonly passed: boolean;
  /** The failing tests (`name => ./file`), as deno test lists them under FAILURES. */
  readonly failures: readonly string[];
  /** Why no test result can be trusted (a type error, the time bound), if so. */
  readonly problem?: string;
  /** How long it took, in whole seconds. */
  readonly seconds: number;
}

function judge(tested: TestRun, baseline: TestRun | undefined): Outcome {
  if (tested.problem !== undefined) return { kind: "error", message: tested.problem };
  if (tested.passed) return { kind: "survived" };
  if (baseline?.problem !== undefined) {
    return { kind: "error", message: `without any mutation: ${baseline.problem}` };
  }
  const before = new Set(baseline?.failures ?? []);
  const by = tested.failures.filter((failure) => !before.has(failure));
  return by.length > 0 ? { kind: "caught", by } : { kind: "survived" };
}

function describe(outcome: Outcome): string {
  switch (outcome.kind) {
    case "caught": {
      const more = outcome.by.length > 1 ? ` and ${outcome.by.length - 1} more` : "";
      return `caught by ${outcome.by[0]}${more}`;
    }
    case "survived":
      return "SURVIVED";
    case "error":
      return `ERROR: ${outcome.message}`;
  }
}

/**
 * Copy the files git knows in `root` (tracked, or untracked and not ignored), as they are in
 * the working tree, into `target`, keeping modes and symbolic links. Returns how many.
 */
async function copySources(root: string, target: string): Promise<number> {
  const listed = await new Deno.Command("git", {
    args: ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!listed.success) {
    throw new Error(
      `git ls-files failed in ${root}: ${new TextDecoder().decode(listed.stderr).trim()}`,
    );
  }
  const paths = [...new Set(new TextDecoder().decode(listed.stdout).split("\0"))]
    .filter((path) => path !== "" && !NOT_COPIED.some((prefix) => path.startsWith(prefix)));
  let count = 0;
  for (const path of paths) {
    const from = `${root}/${path}`;
    const to = `${target}/${path}`;
    const info = await Deno.lstat(from).catch(() => undefined);
    if (info === undefined) continue; // Deleted in the working tree.
    await Deno.mkdir(to.slice(0, to.lastIndexOf("/")), { recursive: true });
    if (info.isSymlink) await Deno.symlink(await Deno.readLink(from), to);
    else if (info.isFile) await Deno.copyFile(from, to);
    else continue;
    count++;
  }
  return count;
}

/** Run the unit tests in `dir`, killing the run (and whatever it started) past the bound. */
async function runTests(
  dir: string,
  testPaths: readonly string[],
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<TestRun> {
  const started = Date.now();
  const env = Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([name]) => !name.startsWith("IMGTOOL_E2E")),
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "test",
      "--allow-all",
      ...IMGTOOL_V8_FLAGS,
      ...IGNORED_TEST_PATHS.map((path) => `--ignore=${path}`),
      ...testPaths,
    ],
    cwd: dir,
    env: { ...env, NO_COLOR: "1" },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    // Its own process group, so that the tests' own children go with it.
    detached: true,
  }).spawn();
  let timedOut = false;
  const kill = () => {
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, options.timeoutMs);
  options.signal?.addEventListener("abort", kill, { once: true });
  try {
    const [stdout, stderr, status] = await Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
      child.status,
    ]);
    options.signal?.throwIfAborted();
    const seconds = Math.round((Date.now() - started) / 1000);
    const output = `${stdout}\n${stderr}`;
    if (timedOut) {
      return {
        passed: false,
        failures: [],
        seconds,
        problem: `the tests ran past the time bound (${
          Math.round(options.timeoutMs / 1000)
        } s): a hang, or raise --timeout`,
      };
    }
    if (/^error: Type checking failed/m.test(output)) {
      const first = output.match(/^TS\d+ \[ERROR\]: .*$/m)?.[0] ?? "see deno check";
      return { passed: false, failures: [], seconds, problem: `does not type-check (${first})` };
    }
    const failures = parseFailures(output);
    if (status.success) return { passed: true, failures: [], seconds };
    if (failures.length === 0) {
      const tail = output.trim().split("\n").slice(-5).join(" | ");
      return {
        passed: false,
        failures,
        seconds,
        problem: `deno test failed (exit ${status.code}) without naming a failing test: ${tail}`,
      };
    }
    return { passed: false, failures, seconds };
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", kill);
  }
}

/**
 * The failing tests `deno test` lists under ` FAILURES `, as `name => ./file` (without the
 * line and column, which a mutation of the sources does not move) or `./file (uncaught
 * error)` for a module that failed outside any test.
 *
 * @example
 * ```ts
 * import { parseFailures } from "./mutate.ts";
 * const output = " FAILURES \n\nadds => ./tests/add_test.ts:3:6\n./tests/b_test.ts (uncaught error)\n\n" +
 *   "FAILED | 1 passed | 2 failed (10ms)\n";
 * console.log(parseFailures(output)); // [ "adds => ./tests/add_test.ts", "./tests/b_test.ts (uncaught error)" ]
 * ```
 */
export function parseFailures(output: string): string[] {
  const lines = output.split("\n");
  const start = lines.findIndex((line) => line.trim() === "FAILURES");
  if (start === -1) return [];
  const failures: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (/^(FAILED|ok) \|/.test(line)) break;
    if (line.trim() === "") continue;
    failures.push(line.trim().replace(/(=> .*?)(?::\d+:\d+)$/, "$1"));
  }
  return [...new Set(failures)];
}

/**
 * The results as a table (mutation, file, result), then what to do about survivors.
 *
 * @example
 * ```ts
 * import { formatReport } from "./mutate.ts";
 * const mutation = { name: "m", file: "a.ts", breaks: "a holds", find: "x", replace: "y" };
 * console.log(formatReport([{ mutation, outcome: { kind: "survived" }, seconds: 3 }]));
 * ```
 */
export function formatReport(results: readonly MutationResult[]): string {
  const rows = [
    ["mutation", "file", "result"],
    ...results.map(({ mutation, outcome }) => [mutation.name, mutation.file, describe(outcome)]),
  ];
  const widths = [0, 1].map((column) => Math.max(...rows.map((row) => row[column].length)));
  const lines = rows.map((row) =>
    `${row[0].padEnd(widths[0])}  ${row[1].padEnd(widths[1])}  ${row[2]}`.trimEnd()
  );
  const count = (kind: Outcome["kind"]) => results.filter((r) => r.outcome.kind === kind).length;
  lines.push(
    "",
    `${results.length} mutations: ${count("caught")} caught, ${count("survived")} survived, ` +
      `${count("error")} errors`,
  );
  for (const { mutation, outcome } of results) {
    if (outcome.kind === "survived") {
      lines.push(`SURVIVED ${mutation.name}: no test holds that ${mutation.breaks}`);
    }
  }
  return lines.join("\n");
}

const HELP = `Usage: deno run -A scripts/mutate.ts [options]

Copies the sources to a temporary folder and, one mutation at a time, breaks one guarantee
there and runs the unit tests (${UNIT_TEST_PATHS.join(" ")}, not tests/e2e/). Reports which
test caught each mutation, or SURVIVED. Exit 0: all caught; 1: some survived or could not be
tried; 2: a mistake in the command line.

Options:
  --only NAME        try only this mutation (repeat, or separate names with commas)
  --list             list the mutations and exit
  --timeout SECONDS  the time bound of one test run (default ${DEFAULT_TIMEOUT_SECONDS})
  --tests PATH       run these test paths instead (repeatable; relative to the repository)
  --help             show this help`;

/** Run the command line; returns the exit status. */
async function main(args: readonly string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        only: { type: "string", multiple: true },
        list: { type: "boolean" },
        timeout: { type: "string" },
        tests: { type: "string", multiple: true },
        help: { type: "boolean" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    console.error(
      `error: ${(error as Error).message}\nhint: see deno run -A scripts/mutate.ts --help`,
    );
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (values.list) {
    const width = Math.max(...MUTATIONS.map((m) => m.name.length));
    for (const m of MUTATIONS) console.log(`${m.name.padEnd(width)}  ${m.file}: ${m.breaks}`);
    return 0;
  }
  const names = (values.only ?? []).flatMap((value) => value.split(",")).map((s) => s.trim())
    .filter(Boolean);
  const unknown = names.filter((name) => !MUTATIONS.some((m) => m.name === name));
  if (unknown.length > 0) {
    console.error(
      `error: no mutation named ${unknown.join(", ")}\n` +
        `hint: one of ${MUTATIONS.map((m) => m.name).join(", ")} (--list describes them)`,
    );
    return 2;
  }
  const timeout = values.timeout === undefined ? DEFAULT_TIMEOUT_SECONDS : Number(values.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0) {
    console.error(
      `error: --timeout ${values.timeout} is not a number of seconds above 0\nhint: e.g. --timeout 900`,
    );
    return 2;
  }
  const mutations = names.length > 0 ? MUTATIONS.filter((m) => names.includes(m.name)) : MUTATIONS;
  const interrupt = new AbortController();
  const onSignal = () => interrupt.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    const results = await runMutations({
      root: new URL("..", import.meta.url).pathname.replace(/\/$/, ""),
      mutations,
      testPaths: values.tests,
      timeoutMs: timeout * 1000,
      signal: interrupt.signal,
      progress: (line) => console.error(line),
    });
    console.log(formatReport(results));
    return results.every((r) => r.outcome.kind === "caught") ? 0 : 1;
  } catch (error) {
    if (interrupt.signal.aborted) {
      console.error("interrupted: the test run was stopped and the copy removed");
      return 130;
    }
    console.error(`error: ${(error as Error).message}`);
    return 1;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
