/**
 * Benchmark "status-explain" (issue 12): `imgtool status` and `imgtool explain` of a spec
 * whose image takes the identity benchmark's 20,024-file, 1.32 GB tree (`./tree.ts`),
 * against a no-op `imgtool build --push` of the same spec (the image is in the registry).
 * The goal: each takes at most 1.5 times the no-op build's time.
 *
 * The spec, `Image.fromBase(PYTHON_BASE).withSourceFolder("./tree", "/data")` with an
 * environment variable that marks the run, is built and pushed once with the Docker builder
 * to the e2e registry, into a repository of the run's own, so that the image and its
 * provenance record exist. Then, with a warm digest cache (a cache folder of the run's own,
 * filled by the build and one untimed run of each command), `runs` runs of each are timed,
 * the order turning each round as in the no-op benchmark:
 *
 * - `build --push` (must report `0 built, 1 skipped`);
 * - `status` (must say `exists`);
 * - `explain --against URI` with the URI itself ("no difference": the tags are equal);
 * - then, after one file of the tree is edited, `explain --against URI` again: a real
 *   comparison (the record is read from the registry, the identity tree computed and
 *   compared), which must name that file and only it. The file is restored afterwards.
 *
 * Every command runs as users run it: the bundle the binaries embed (scripts/bundle.ts),
 * under GNU time for its peak memory where `/usr/bin/time` exists. Needs the e2e environment
 * (`tests/e2e/env.sh up`); without it the benchmark says it was skipped and why. It removes
 * its temp folder and the image the build left in the engine; the registry keeps the pushed
 * tag (`127.0.0.1:5000/imgtool-bench/status-explain-<run>`).
 *
 * @module
 */

import { join } from "node:path";
import { type Facts, projectConfig, readFacts } from "../tests/e2e/facts.ts";
import { bundleInto } from "../scripts/bundle.ts";
import {
  type BenchResult,
  bundledImgtoolArgs,
  canMeasureMemory,
  DENO,
  e2eUnavailable,
  fmt,
  type Goal,
  goalLine,
  heading,
  makeTempDir,
  median,
  min,
  ms,
  removeTempDir,
  run,
  runMeasured,
  table,
} from "./lib.ts";
import { FULL, SMALL, writeTree } from "./tree.ts";

/**
 * Options of the status/explain benchmark.
 *
 * @example
 * ```ts
 * import type { StatusExplainOptions } from "./status_explain.ts";
 * const options: StatusExplainOptions = { runs: 7, small: false };
 * console.log(options.runs); // 7
 * ```
 */
export interface StatusExplainOptions {
  /** Timed runs of each command (median and min kept). */
  readonly runs: number;
  /** Use the small tree (harness check only; not the goal's tree). */
  readonly small?: boolean;
  /** The longest the first build and push may take, in minutes (default 15). */
  readonly buildMinutes?: number;
}

/** status and explain: their time over a no-op build's, at most. */
const GOAL = 1.5;
const MB = 1e6;
/** A bundle of its own: other benchmarks may be swapping theirs in at the same time. */
const BUNDLE_DIR = "dist/bench-status-explain";
/** imgtool remembers digests only of files unchanged for 2 s (src/digest_cache.ts). */
const SETTLE_MS = 2_500;
/** The longest one timed command may take. */
const COMMAND_TIMEOUT_MS = 300_000;
/** How often the first build says it is still going. */
const PROGRESS_MS = 30_000;
/** The file of the tree that is edited for the real comparison (a small one). */
const EDITED = "pkg00/mod0/file0.py";

/** The spec and its config: the tree on the Python base, with a marker of this run. */
async function writeSpec(dir: string, facts: Facts, runId: string): Promise<void> {
  await Deno.writeTextFile(
    join(dir, "imgtool.toml"),
    projectConfig(facts, `${facts.REGISTRY}/imgtool-bench`),
  );
  await Deno.writeTextFile(
    join(dir, "spec.ts"),
    [
      `import { Image } from "imgtool";`,
      "",
      `export default Image.fromBase(${JSON.stringify(facts.PYTHON_BASE)})`,
      `  .withSourceFolder("./tree", "/data")`,
      `  .withEnvVars({ IMGTOOL_BENCH_RUN: ${JSON.stringify(runId)} })`,
      `  .clone({ name: ${JSON.stringify(`status-explain-${runId}`)} });`,
      "",
    ].join("\n"),
  );
}

/** One timed command: its time and peak memory. */
interface Timed {
  readonly ms: number;
  readonly peakBytes: number | undefined;
}

/** A command line of the benchmark, with what its output must show. */
interface Contender {
  readonly label: string;
  readonly args: readonly string[];
  /** Throws when the output is not what this command must print. */
  readonly check: (stdout: string, stderr: string) => void;
}

function expect(label: string, pattern: RegExp, text: string, stdout: string, stderr: string) {
  if (!pattern.test(text)) {
    throw new Error(
      `${label}: the output lacks ${pattern}\n--- stdout ---\n${stdout.slice(-3000)}` +
        `\n--- stderr ---\n${stderr.slice(-3000)}`,
    );
  }
}

/**
 * Run the status/explain benchmark (see the module's documentation); its goals are the
 * ratios of the medians: status, and explain of the same and of a changed tree, over the
 * no-op build.
 *
 * @example
 * ```ts
 * import { statusExplainBench } from "./status_explain.ts";
 * // Where the e2e environment is not up, it says why and measures nothing.
 * const result = await statusExplainBench({ runs: 7 });
 * if (!result.ran) console.log(`not measured: ${result.reason}`);
 * ```
 */
export async function statusExplainBench(options: StatusExplainOptions): Promise<BenchResult> {
  const name = "status-explain";
  heading("status-explain: status and explain vs a no-op build, 20,024-file tree (issue 12)");
  const facts = await readFacts();
  const reason = typeof facts === "string" ? facts : await e2eUnavailable(facts);
  if (reason !== undefined || typeof facts === "string") {
    console.log(`  skipped: ${reason}`);
    return { name, ran: false, reason, goals: [] };
  }
  const runId = `${Date.now().toString(36)}${
    crypto.getRandomValues(new Uint32Array(1))[0].toString(36)
  }`;
  // The figures of a shared machine move with its load: print it, beside the core count.
  const load = () => Deno.loadavg().map((value) => value.toFixed(2)).join(" ");
  console.log(`  machine: ${navigator.hardwareConcurrency} cores; load average ${load()}`);
  const dir = await makeTempDir("status-explain");
  let uri: string | undefined;
  const editedPath = join(dir, "tree", EDITED);
  let original: Uint8Array | undefined;
  try {
    const root = join(dir, "tree");
    await Deno.mkdir(root);
    let started = performance.now();
    const stats = await writeTree(root, options.small ? SMALL : FULL);
    console.log(
      `  tree: ${stats.files} files in ${stats.dirs} folders, ${fmt(stats.bytes / MB)} MB ` +
        `under ${root}; written in ${ms(performance.now() - started)}` +
        `${options.small ? "  [--small: NOT the goal's tree]" : ""}`,
    );
    await writeSpec(dir, facts, runId);
    // A cache folder of the run's own: warm by this run alone, whatever the user's holds.
    const env = { DOCKER_BUILDKIT: "1", XDG_CACHE_HOME: join(dir, "cache") };
    started = performance.now();
    const bundle = await bundleInto(BUNDLE_DIR);
    console.log(`  bundled imgtool into ${bundle}: ${ms(performance.now() - started)}`);
    const imgtool = (args: readonly string[], timeoutMs = COMMAND_TIMEOUT_MS) =>
      runMeasured(DENO, bundledImgtoolArgs(bundle, ...args), {
        cwd: dir,
        env,
        timeoutMs,
        group: true,
      });

    // The image and its record, built and pushed once: the context is the whole tree.
    const buildMinutes = options.buildMinutes ?? 15;
    console.log(
      `  building and pushing the image once with the docker builder (at most ${buildMinutes} ` +
        "minutes)...",
    );
    started = performance.now();
    const ticker = setInterval(() => {
      console.log(`    ...still building: ${fmt((performance.now() - started) / 1000)} s`);
    }, PROGRESS_MS);
    let first;
    try {
      first = await imgtool(
        ["build", "--push", "--builder", "docker", "spec.ts"],
        buildMinutes * 60_000,
      );
    } finally {
      clearInterval(ticker);
    }
    uri = first.stdout.trim().split("\n").at(-1) ?? "";
    expect("first build", /1 built, 0 skipped, 0 failed/, first.stderr, first.stdout, first.stderr);
    console.log(`  image: ${uri}; build --push first: ${ms(first.ms)}`);
    const pushed = uri;

    const contenders: Contender[] = [
      {
        label: "build --push (exists: no-op)",
        args: ["build", "--push", "spec.ts"],
        check: (stdout, stderr) =>
          expect("build --push", /0 built, 1 skipped, 0 failed/, stderr, stdout, stderr),
      },
      {
        label: "status",
        args: ["status", "spec.ts"],
        check: (stdout, stderr) =>
          expect("status", new RegExp(`^exists .*${escape(pushed)}$`, "m"), stdout, stdout, stderr),
      },
      {
        label: "explain --against URI (same tag)",
        args: ["explain", "spec.ts", "--against", pushed],
        check: (stdout, stderr) => expect("explain", /^no difference/m, stdout, stdout, stderr),
      },
    ];
    // Warm: the build hashed the tree; files settle (digests are remembered only of files
    // unchanged for 2 s, long past here), then one untimed run of each.
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    for (const contender of contenders) {
      const ran = await imgtool(contender.args);
      contender.check(ran.stdout, ran.stderr);
    }
    const timed: Timed[][] = contenders.map(() => []);
    // The order turns each round, so that no command always follows the same one.
    for (let round = 0; round < options.runs; round++) {
      for (let k = 0; k < contenders.length; k++) {
        const index = (round + k) % contenders.length;
        const ran = await imgtool(contenders[index].args);
        contenders[index].check(ran.stdout, ran.stderr);
        timed[index].push({ ms: ran.ms, peakBytes: ran.peakBytes });
      }
    }

    // A real comparison: one small file of the tree edited, the rest as the record has it.
    original = await Deno.readFile(editedPath);
    await Deno.writeFile(editedPath, new Uint8Array([...original, 0x0a]));
    const edited: Contender = {
      label: "explain --against URI (1 file changed)",
      args: ["explain", "spec.ts", "--against", pushed],
      check: (stdout, stderr) => {
        expect("explain (edited)", new RegExp(escape(`tree/${EDITED}`)), stdout, stdout, stderr);
        expect("explain (edited)", /^1 difference$/m, stderr, stdout, stderr);
      },
    };
    const warm = await imgtool(edited.args);
    edited.check(warm.stdout, warm.stderr);
    const editedRuns: Timed[] = [];
    for (let round = 0; round < options.runs; round++) {
      const ran = await imgtool(edited.args);
      edited.check(ran.stdout, ran.stderr);
      editedRuns.push({ ms: ran.ms, peakBytes: ran.peakBytes });
    }
    console.log(`  explain (1 file changed) printed: ${warm.stdout.trim().split("\n")[0]}`);
    await Deno.writeFile(editedPath, original);
    original = undefined;

    const memory = await canMeasureMemory();
    console.log(
      `\n  ${options.runs} runs each, with a warm digest cache; peak RSS: the largest of the ` +
        `runs${memory ? "" : " (not measured: no GNU time at /usr/bin/time)"}\n`,
    );
    const row = (label: string, runs: readonly Timed[]) => {
      const times = runs.map((r) => r.ms);
      const peaks = runs.flatMap((r) => r.peakBytes === undefined ? [] : [r.peakBytes]);
      return [
        label,
        ms(median(times)),
        ms(min(times)),
        peaks.length > 0 ? fmt(Math.max(...peaks) / MB) : "-",
        times.map((t) => t.toFixed(0)).join(" "),
      ];
    };
    table(["command", "median", "min", "peak RSS (MB)", "runs (ms)"], [
      ...contenders.map((contender, index) => row(contender.label, timed[index])),
      row(edited.label, editedRuns),
    ]);
    const noop = median(timed[0].map((r) => r.ms));
    const ratio = (runs: readonly Timed[]) => median(runs.map((r) => r.ms)) / noop;
    const goals: Goal[] = [
      { name: "status/no-op build (medians)", value: ratio(timed[1]), op: "<=", target: GOAL },
      {
        name: "explain (same tag)/no-op build (medians)",
        value: ratio(timed[2]),
        op: "<=",
        target: GOAL,
      },
      {
        name: "explain (1 file changed)/no-op build (medians)",
        value: ratio(editedRuns),
        op: "<=",
        target: GOAL,
      },
    ];
    console.log(`\n  load average at the end: ${load()}`);
    for (const goal of goals) console.log(`  ${goalLine(goal)}`);
    console.log(`  note: ${uri} stays in the registry`);
    return { name, ran: true, goals };
  } finally {
    if (original !== undefined) await Deno.writeFile(editedPath, original).catch(() => {});
    // The builtin-BuildKit path loads the image into the engine before pushing it.
    if (uri) await run(facts.DOCKER, ["rmi", uri], { timeoutMs: 60_000 }).catch(() => {});
    await removeTempDir(dir);
  }
}

/** `text` as a literal inside a regular expression. */
function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
