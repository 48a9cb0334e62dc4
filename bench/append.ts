/**
 * Benchmark "append" (issue 13): one file edited in a 5,000-file source folder on top of an
 * image with a few `RUN` steps, then `imgtool build --push`, which appends the folder's layer
 * through the registry (the image of the layers before it is there already), against
 * `docker build` of the same Dockerfile and context with BuildKit's cache warm plus
 * `docker push` to the same registry. The goal: imgtool takes at most 0.2 times docker's time.
 * Its memory must stay flat in the size of the folder: the same spec over folders ten times
 * bigger, one with ten times the files (50,000 of 2 KB), one with ten times the bytes (5,000
 * of 20 KB), whose prefix is the same image, is appended too (the first build, then up to
 * three rounds of one edited file), and the peak memory of their rounds over the goal
 * folder's is checked against 1.25.
 *
 * The spec: `Image.fromBase(PYTHON_BASE)` named `append-<run>`, an environment variable that
 * marks the run, three light `withCommands` steps, then `withSourceFolder("./src", "/app/src")`.
 * The first `build --push` (untimed) builds the prefix with the engine and appends the
 * folder; `imgtool dockerfile --out` writes the same image's Dockerfile and context, built
 * once by docker (warming its cache) and pushed. Then each round edits one file (new content
 * of the same size) in the project and in the context, and times both, the order turning
 * each round:
 *
 * - `imgtool build --push spec.ts`, the bundle the binaries embed (scripts/bundle.ts), under
 *   GNU time for its peak memory where `/usr/bin/time` exists; it must say it appended one
 *   layer and report `1 built`;
 * - `docker build --network=host -t ...:roundN CTX` then `docker push ...:roundN`, timed
 *   together (DOCKER_BUILDKIT=1; the `RUN` steps must come from the cache).
 *
 * At the end the last image imgtool pushed is run once to check that it holds the edited
 * file and what the `RUN` steps wrote. Needs the e2e environment (`tests/e2e/env.sh up`);
 * without it the benchmark says it was skipped and why. It removes its temp folders and the
 * images it left in the engine (its own tags and imgtool's); the registry keeps the
 * repositories `127.0.0.1:5000/imgtool-bench/append-<run>` and `.../append-docker-<run>`.
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
  runOk,
  table,
} from "./lib.ts";
import { rng } from "./tree.ts";

/**
 * Options of the append benchmark.
 *
 * @example
 * ```ts
 * import type { AppendBenchOptions } from "./append.ts";
 * const options: AppendBenchOptions = { runs: 5 };
 * console.log(options.runs); // 5
 * ```
 */
export interface AppendBenchOptions {
  /** Timed rounds (each: one imgtool build and one docker build and push). */
  readonly runs: number;
  /** The longest the first build (the prefix, by the engine) may take, in minutes (default 15). */
  readonly buildMinutes?: number;
}

/** imgtool's time over docker's (build and push), at most. */
const GOAL = 0.2;
/** The peak memory with the folder ten times bigger over the peak with the goal's folder. */
const FLAT = 1.25;
const MB = 1e6;
/** A bundle of its own: other benchmarks may be swapping theirs in at the same time. */
const BUNDLE_DIR = "dist/bench-append";
/** imgtool remembers digests only of files unchanged for 2 s (src/digest_cache.ts). */
const SETTLE_MS = 2_500;
/** The longest one timed command may take. */
const COMMAND_TIMEOUT_MS = 300_000;
/** How often the first build says it is still going. */
const PROGRESS_MS = 30_000;
/** A source folder: `folders` × `files` files of `bytes` each (the edited one keeps the size). */
interface FolderShape {
  readonly folders: number;
  readonly files: number;
  readonly bytes: number;
}
/** The goal's folder: 50 folders of 100 files of 2 KB. */
const FOLDER: FolderShape = { folders: 50, files: 100, bytes: 2_048 };
/** Folders ten times bigger, for the memory: ten times the files; ten times the bytes. */
const BIGGER: readonly { readonly label: string; readonly shape: FolderShape }[] = [
  { label: "10x files", shape: { folders: 500, files: 100, bytes: 2_048 } },
  { label: "10x bytes", shape: { folders: 50, files: 100, bytes: 20_480 } },
];
/** The file edited each round, relative to the source folder. */
const EDITED = "pkg00/module000.py";

const WORDS = (
  "def class return import from self value name path data item list dict with open read " +
  "write error count index result config build image layer file folder print if else for " +
  "while try except raise yield lambda none true false and or not in is pass break"
).split(" ");

/**
 * `bytes` of text that reads like source code (words from `next`): it compresses about as
 * source files do, so that neither side's gzip gets an easy ride. `head` is its first line.
 */
function sourceText(next: () => number, head: string, bytes: number): string {
  let text = `# ${head}\n`;
  while (text.length < bytes) {
    let line = "    ";
    const words = 4 + next() % 8;
    for (let i = 0; i < words; i++) line += `${WORDS[next() % WORDS.length]} `;
    text += `${line.trimEnd()}\n`;
  }
  return `${text.slice(0, bytes - 1)}\n`;
}

/** Write the source folder of `shape` under `root`. */
async function writeFolder(
  root: string,
  shape: FolderShape,
): Promise<{ files: number; bytes: number }> {
  const next = rng(0x0a99e7d);
  for (let f = 0; f < shape.folders; f++) {
    const folder = join(root, `pkg${String(f).padStart(2, "0")}`);
    await Deno.mkdir(folder, { recursive: true });
    for (let i = 0; i < shape.files; i++) {
      const name = `module${String(i).padStart(3, "0")}.py`;
      await Deno.writeTextFile(join(folder, name), sourceText(next, name, shape.bytes));
    }
  }
  const files = shape.folders * shape.files;
  return { files, bytes: files * shape.bytes };
}

/** The spec and its config, in `project` (its folder `./src` written apart). */
async function writeSpec(project: string, facts: Facts, runId: string): Promise<void> {
  await Deno.writeTextFile(
    join(project, "imgtool.toml"),
    projectConfig(facts, `${facts.REGISTRY}/imgtool-bench`),
  );
  await Deno.writeTextFile(
    join(project, "spec.ts"),
    [
      `import { Image } from "imgtool";`,
      "",
      `export default Image.fromBase(${JSON.stringify(facts.PYTHON_BASE)})`,
      `  .clone({ name: ${JSON.stringify(`append-${runId}`)} })`,
      `  .withEnvVars({ IMGTOOL_BENCH_RUN: ${JSON.stringify(runId)} })`,
      `  .withCommands("mkdir -p /opt/bench && echo one > /opt/bench/one")`,
      `  .withCommands("echo two > /opt/bench/two")`,
      `  .withCommands("echo three > /opt/bench/three")`,
      `  .withSourceFolder("./src", "/app/src");`,
      "",
    ].join("\n"),
  );
}

/** The edited file's copy in the build context `imgtool dockerfile --out` wrote. */
async function contextCopy(context: string): Promise<string> {
  const staged = join(context, ".imgtool");
  const found: string[] = [];
  for await (const entry of Deno.readDir(staged)) {
    const candidate = join(staged, entry.name, "tree", EDITED);
    if (/source_folder$/.test(entry.name) && await exists(candidate)) found.push(candidate);
  }
  if (found.length !== 1) {
    throw new Error(
      `${staged}: expected one source_folder copy holding ${EDITED}, found ${found.length}; ` +
        "has the layout of imgtool dockerfile --out changed?",
    );
  }
  return found[0];
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Deno's own cache folder, kept for the children whose XDG_CACHE_HOME is the run's own. */
async function denoDir(): Promise<string> {
  const info = await runOk(DENO, ["info", "--json"], { timeoutMs: 60_000 });
  return JSON.parse(info.stdout).denoDir;
}

function expect(label: string, pattern: RegExp, text: string, stdout: string, stderr: string) {
  if (!pattern.test(text)) {
    throw new Error(
      `${label}: the output lacks ${pattern}\n--- stdout ---\n${stdout.slice(-3000)}` +
        `\n--- stderr ---\n${stderr.slice(-3000)}`,
    );
  }
}

/** What an append build must print on stderr. */
const APPENDED = /appended 1 layer\(s\) through the registry/;
const BUILT = /1 built, 0 skipped, 0 failed/;

/** One timed command: its time and peak memory. */
interface Timed {
  readonly ms: number;
  readonly peakBytes: number | undefined;
}

/**
 * Run the append benchmark (see the module's documentation); its goals: imgtool's median
 * time over docker's (build and push), and its peak memory with the folder ten times bigger
 * over its peak with the goal's folder.
 *
 * @example
 * ```ts
 * import { appendBench } from "./append.ts";
 * // Where the e2e environment is not up, it says why and measures nothing.
 * const result = await appendBench({ runs: 5 });
 * if (!result.ran) console.log(`not measured: ${result.reason}`);
 * ```
 */
export async function appendBench(options: AppendBenchOptions): Promise<BenchResult> {
  const name = "append";
  heading("append: one file edited in a 5,000-file folder, build --push vs docker (issue 13)");
  const facts = await readFacts();
  const reason = typeof facts === "string" ? facts : await e2eUnavailable(facts);
  if (reason !== undefined || typeof facts === "string") {
    console.log(`  skipped: ${reason}`);
    return { name, ran: false, reason, goals: [] };
  }
  const docker = facts.DOCKER;
  const runId = `${Date.now().toString(36)}${
    crypto.getRandomValues(new Uint32Array(1))[0].toString(36)
  }`;
  const load = () => Deno.loadavg().map((value) => value.toFixed(2)).join(" ");
  console.log(`  machine: ${navigator.hardwareConcurrency} cores; load average ${load()}`);
  const dir = await makeTempDir("append");
  const dockerRepository = `${facts.REGISTRY}/imgtool-bench/append-docker-${runId}`;
  try {
    const project = join(dir, "project");
    let started = performance.now();
    const stats = await writeFolder(join(project, "src"), FOLDER);
    await writeSpec(project, facts, runId);
    // The same spec in projects of their own, each with a bigger folder.
    const bigger = [];
    for (const [index, { label, shape }] of BIGGER.entries()) {
      const path = join(dir, `project-bigger-${index}`);
      bigger.push({ label, shape, path, stats: await writeFolder(join(path, "src"), shape) });
      await writeSpec(path, facts, runId);
    }
    const written = Date.now();
    const describe = (files: number, bytes: number) =>
      `${files} files of ${fmt(bytes / files / 1000)} KB (${fmt(bytes / MB)} MB)`;
    console.log(
      `  folders: ${describe(stats.files, stats.bytes)}; for the memory, ` +
        bigger.map((big) => `${big.label}: ${describe(big.stats.files, big.stats.bytes)}`)
          .join("; ") +
        `; written in ${ms(performance.now() - started)}`,
    );
    // A cache folder of the run's own (warm by this run alone), Deno's own kept where it is.
    const env = {
      DOCKER_BUILDKIT: "1",
      XDG_CACHE_HOME: join(dir, "cache"),
      DENO_DIR: await denoDir(),
    };
    started = performance.now();
    const bundle = await bundleInto(BUNDLE_DIR);
    console.log(`  bundled imgtool into ${bundle}: ${ms(performance.now() - started)}`);
    const imgtool = (cwd: string, args: readonly string[], timeoutMs = COMMAND_TIMEOUT_MS) =>
      runMeasured(DENO, bundledImgtoolArgs(bundle, ...args), { cwd, env, timeoutMs, group: true });
    const dockerRun = (args: readonly string[]) =>
      runMeasured(docker, args, { env, timeoutMs: COMMAND_TIMEOUT_MS, group: true });

    // The prefix built by the engine, the folder appended: the state every later edit starts in.
    const buildMinutes = options.buildMinutes ?? 15;
    console.log(`  first build --push (the prefix by the engine; at most ${buildMinutes} min)...`);
    started = performance.now();
    const ticker = setInterval(() => {
      console.log(`    ...still building: ${fmt((performance.now() - started) / 1000)} s`);
    }, PROGRESS_MS);
    let first;
    try {
      first = await imgtool(project, ["build", "--push", "spec.ts"], buildMinutes * 60_000);
    } finally {
      clearInterval(ticker);
    }
    expect("first build", BUILT, first.stderr, first.stdout, first.stderr);
    console.log(
      `  image: ${first.stdout.trim().split("\n").at(-1)}; first build --push: ${ms(first.ms)}` +
        (APPENDED.test(first.stderr) ? " (its folder appended)" : " (all by the engine)"),
    );

    // docker's side: the same Dockerfile and context, built once (its cache) and pushed once.
    const context = join(dir, "context");
    await imgtool(project, ["dockerfile", "spec.ts", "--out", context]);
    const contextFile = await contextCopy(context);
    const dockerBuildPush = async (tag: string) => {
      const image = `${dockerRepository}:${tag}`;
      const built = await dockerRun([
        "build",
        "--network=host",
        "--progress=plain",
        "-t",
        image,
        context,
      ]);
      const pushed = await dockerRun(["push", image]);
      return { ms: built.ms + pushed.ms, runSteps: runStepsCached(built.stderr) };
    };
    started = performance.now();
    await dockerBuildPush("warm");
    console.log(
      `  docker build and push of the same context, warm-up: ${ms(performance.now() - started)}`,
    );

    const edit = async (
      folder: string,
      bytes: number,
      label: string,
      copies: readonly string[] = [],
    ) => {
      const text = sourceText(rng(label.length * 7919 + Date.now()), `edited ${label}`, bytes);
      for (const path of [join(folder, "src", EDITED), ...copies]) {
        await Deno.writeTextFile(path, text);
      }
      return text;
    };
    const imgtoolAppend = async (cwd: string, label: string) => {
      const ran = await imgtool(cwd, ["build", "--push", "spec.ts"]);
      expect(label, APPENDED, ran.stderr, ran.stdout, ran.stderr);
      expect(label, BUILT, ran.stderr, ran.stdout, ran.stderr);
      return { ran, uri: ran.stdout.trim().split("\n").at(-1) ?? "" };
    };
    // The folder's other files are left alone long enough for their digests to be remembered.
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, written + SETTLE_MS - Date.now()))
    );
    // One untimed round of each: both sides start the timed rounds as after an edit.
    await edit(project, FOLDER.bytes, "warm-up", [contextFile]);
    await imgtoolAppend(project, "imgtool warm-up");
    const warm = await dockerBuildPush("warm-up");
    const steps = 3;
    const cachedOrThrow = (label: string, counted: { runs: number; cached: number }) => {
      if (counted.runs !== steps || counted.cached !== steps) {
        throw new Error(
          `${label}: ${counted.cached} of ${counted.runs} RUN steps came from BuildKit's cache, ` +
            `not all ${steps}: docker's baseline would not be the warm one`,
        );
      }
    };
    cachedOrThrow("docker's warm-up build", warm.runSteps);

    const imgtoolRuns: Timed[] = [];
    const dockerRuns: number[] = [];
    let lastUri = "";
    let lastText = "";
    for (let round = 1; round <= options.runs; round++) {
      lastText = await edit(project, FOLDER.bytes, `round ${round}`, [contextFile]);
      const contenders = [
        async () => {
          const { ran, uri } = await imgtoolAppend(project, `imgtool round ${round}`);
          imgtoolRuns.push({ ms: ran.ms, peakBytes: ran.peakBytes });
          lastUri = uri;
        },
        async () => {
          const done = await dockerBuildPush(`round${round}`);
          cachedOrThrow(`docker round ${round}`, done.runSteps);
          dockerRuns.push(done.ms);
        },
      ];
      // The order turns each round: whichever runs second pays for what the first left behind.
      for (let k = 0; k < contenders.length; k++) await contenders[(round + k) % 2]();
    }

    // The same spec over folders ten times bigger: their prefix is the same image, so their
    // first builds append too. Their peak memory against the goal folder's shows flatness.
    const biggerRounds = Math.min(options.runs, 3);
    const biggerRuns = [];
    for (const big of bigger) {
      const first = await imgtoolAppend(big.path, `imgtool, ${big.label}, first`);
      const runs: Timed[] = [];
      for (let round = 1; round <= biggerRounds; round++) {
        await edit(big.path, big.shape.bytes, `${big.label} round ${round}`);
        const { ran } = await imgtoolAppend(big.path, `imgtool, ${big.label}, round ${round}`);
        runs.push({ ms: ran.ms, peakBytes: ran.peakBytes });
      }
      biggerRuns.push({ ...big, first: first.ran, runs });
    }

    const memory = await canMeasureMemory();
    console.log(
      `\n  ${options.runs} rounds (the order turning each round); docker: its ${steps} RUN ` +
        `steps CACHED each round; peak RSS: the largest of the runs, MB of 10^6 bytes` +
        `${memory ? "" : " (not measured: no GNU time at /usr/bin/time)"}\n`,
    );
    const peak = (runs: readonly Timed[]) => {
      const peaks = runs.flatMap((r) => r.peakBytes === undefined ? [] : [r.peakBytes]);
      return peaks.length > 0 ? Math.max(...peaks) : undefined;
    };
    const row = (label: string, times: readonly number[], peakBytes?: number) => [
      label,
      ms(median(times)),
      ms(min(times)),
      peakBytes === undefined ? "-" : fmt(peakBytes / MB),
      times.map((t) => t.toFixed(0)).join(" "),
    ];
    table(["command (after editing one file)", "median", "min", "peak RSS (MB)", "runs (ms)"], [
      row(
        `imgtool build --push, ${stats.files} files`,
        imgtoolRuns.map((r) => r.ms),
        peak(imgtoolRuns),
      ),
      row(`docker build + docker push, ${stats.files} files`, dockerRuns),
      ...biggerRuns.flatMap((big) => [
        row(`imgtool, ${big.label}: first (whole folder)`, [big.first.ms], big.first.peakBytes),
        row(`imgtool, ${big.label}`, big.runs.map((r) => r.ms), peak(big.runs)),
      ]),
    ]);

    // What imgtool appended is an image that runs and holds what it should.
    await runOk(docker, ["pull", lastUri], { timeoutMs: COMMAND_TIMEOUT_MS });
    const inside = await runOk(docker, [
      "run",
      "--rm",
      "--network=host",
      lastUri,
      "sh",
      "-c",
      `cat /opt/bench/one /opt/bench/two /opt/bench/three /app/src/${EDITED}`,
    ], { timeoutMs: COMMAND_TIMEOUT_MS });
    if (inside.stdout !== `one\ntwo\nthree\n${lastText}`) {
      throw new Error(
        `${lastUri} does not hold what the RUN steps wrote and the edited file:\n` +
          inside.stdout.slice(0, 3000),
      );
    }
    console.log(`\n  checked: ${lastUri} runs and holds the RUN steps' files and the last edit`);
    const goals: Goal[] = [{
      name: "imgtool/docker build+push time (medians)",
      value: median(imgtoolRuns.map((r) => r.ms)) / median(dockerRuns),
      op: "<=",
      target: GOAL,
    }];
    const small = peak(imgtoolRuns);
    for (const big of biggerRuns) {
      // Like with like: the edit rounds (the first run hashes the whole folder cold).
      const largest = peak(big.runs);
      if (small === undefined || largest === undefined) continue;
      goals.push({
        name: `peak RSS, ${big.label}/goal's folder (edit rounds)`,
        value: largest / small,
        op: "<=",
        target: FLAT,
      });
    }
    console.log(`\n  load average at the end: ${load()}`);
    console.log(`  (min/min: ${fmt(min(imgtoolRuns.map((r) => r.ms)) / min(dockerRuns))})`);
    for (const goal of goals) console.log(`  ${goalLine(goal)}`);
    console.log(
      `  note: ${lastUri.slice(0, lastUri.lastIndexOf(":"))} and ${dockerRepository} stay in ` +
        "the registry",
    );
    return { name, ran: true, goals };
  } finally {
    await removeRunImages(docker, runId);
    await removeTempDir(dir);
  }
}

/** How many `RUN` steps BuildKit's plain progress output shows, and how many were CACHED. */
function runStepsCached(progress: string): { runs: number; cached: number } {
  const ids = [...progress.matchAll(/^#(\d+) \[[^\]]*\] RUN /gm)].map((match) => match[1]);
  const unique = [...new Set(ids)];
  const cached = unique.filter((id) => new RegExp(`^#${id} CACHED$`, "m").test(progress));
  return { runs: unique.length, cached: cached.length };
}

/**
 * Remove from the engine every image of this run: docker's tags, the prefix the first build
 * left there, the image pulled for the check (their repositories name the run).
 */
async function removeRunImages(docker: string, runId: string): Promise<void> {
  const listed = await run(docker, ["images", "--format", "{{.Repository}}:{{.Tag}}"], {
    timeoutMs: 60_000,
  }).catch(() => undefined);
  const images = (listed?.stdout ?? "").split("\n").filter((image) =>
    image.includes(`/append-${runId}:`) || image.includes(`/append-docker-${runId}:`)
  );
  if (images.length > 0) {
    await run(docker, ["rmi", ...images], { timeoutMs: 120_000 }).catch(() => {});
  }
}
