/**
 * Benchmark "identity": `imgtool uri` of a spec whose image takes a 20,024-file, 1.32 GB
 * tree, run as users run it (the bundle the binaries embed), in the page cache:
 *
 * - warm (every digest remembered) against `git status --porcelain` over the same files, in a
 *   git repository made here (its git folder outside the tree, its index fresh);
 * - cold (an empty digest cache) against one `openssl dgst -sha256` process at a time over
 *   the same files (`find -print0 | xargs -0 openssl dgst -sha256`), with imgtool given one
 *   core and then two (`taskset`).
 *
 * Every figure is the median of `rounds` runs of a whole process, timed as a shell times it
 * (`runMeasured`: bash's `time`, so that what this process costs to start a child counts for
 * neither side), the contenders interleaved so that a change in the machine's load moves
 * both sides alike; peak memory is the largest of the runs (GNU time's `%M`: the kernel's
 * peak resident size of the process and all its threads), in MB of 10^6 bytes. Every `uri`
 * printed must be the same, warm or cold, on one core or two.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ChildReport } from "./identity_child.ts";
import { VARIANTS } from "./digest_variants.ts";
import { bundleInto } from "../scripts/bundle.ts";
import { IMGTOOL_V8_FLAGS } from "../scripts/runtime_flags.ts";
import {
  type BenchResult,
  bundledImgtoolArgs,
  canMeasureMemory,
  DENO,
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
import { FULL, SMALL, writeTree } from "./tree.ts";

/** Options of the identity benchmark. */
export interface IdentityOptions {
  /** Timed runs per contender (the median is kept). */
  readonly rounds: number;
  /** Use the small tree (harness check only; not the goal's tree). */
  readonly small: boolean;
  /** Also time the experimental hashing variants of `digest_variants.ts`. */
  readonly explore: boolean;
}

const CHILD = fileURLToPath(new URL("./identity_child.ts", import.meta.url));
/** Warm: imgtool's time over git status's, at most. */
const WARM_RATIO_GOAL = 3;
const WARM_PEAK_GOAL_MB = 64;
/** Cold: imgtool's throughput over one openssl process's, at least. */
const COLD_RATIO_GOAL = 1.5;
const COLD_PEAK_GOAL_MB = 200;
const MB = 1e6;
/** Where the bundle goes: a folder of its own, so that other work on dist/js is left alone. */
const BUNDLE_DIR = "dist/bench-identity";
/** Files must be this old for imgtool to remember their digests (src/digest_cache.ts). */
const SETTLE_MS = 2_500;

/** How one timed command went. */
interface Timed {
  readonly ms: number;
  readonly peakBytes: number | undefined;
}

/** Everything the runs need: the tree, the spec, the bundle and the environment. */
interface Setup {
  readonly dir: string;
  readonly root: string;
  readonly bytes: number;
  readonly bundle: string;
  /** `git` arguments naming the repository of the tree. */
  readonly git: readonly string[];
  /** Every other file of the tree, in two lists (one path a line), for openssl on two cores. */
  readonly halves: readonly [string, string];
  /** The environment of every child: Deno's own cache folder kept, HOME a scratch folder. */
  readonly env: Record<string, string>;
}

/** The folder of Deno's own cache, which must not move with XDG_CACHE_HOME. */
async function denoDir(): Promise<string> {
  const fromEnv = Deno.env.get("DENO_DIR");
  if (fromEnv) return fromEnv;
  const info = await runOk(DENO, ["info", "--json"]);
  return JSON.parse(info.stdout).denoDir;
}

/**
 * `imgtool uri spec.ts` as the binaries run it, with the digest cache under `cacheHome`
 * (`XDG_CACHE_HOME`), pinned to `cpus` when given. Returns the time, the peak memory and
 * the printed URI.
 */
async function uri(
  setup: Setup,
  cacheHome: string,
  cpus?: string,
): Promise<Timed & { uri: string }> {
  const result = await runMeasured(DENO, bundledImgtoolArgs(setup.bundle, "uri", "spec.ts"), {
    cwd: setup.dir,
    env: { ...setup.env, XDG_CACHE_HOME: cacheHome },
    cpus,
    timeoutMs: 600_000,
  });
  return { ms: result.ms, peakBytes: result.peakBytes, uri: result.stdout.trim() };
}

/** A cold `uri`: a fresh, empty digest cache, removed after. */
async function coldUri(setup: Setup, cpus: string | undefined): Promise<Timed & { uri: string }> {
  const cacheHome = await makeTempDir("identity-cold-cache");
  try {
    return await uri(setup, cacheHome, cpus);
  } finally {
    await removeTempDir(cacheHome);
  }
}

async function openssl(setup: Setup): Promise<Timed> {
  const script = 'find "$1" -type f -print0 | xargs -0 openssl dgst -sha256 > /dev/null';
  const result = await runMeasured("sh", ["-c", script, "sh", setup.root], { group: true });
  return { ms: result.ms, peakBytes: undefined };
}

/**
 * What two cores give openssl here: two processes at once, each over every other file (so
 * that each has as much to do), on cores 0 and 1. Not a goal: it shows how much of a second
 * core a busy machine leaves, which bounds what imgtool can show with two.
 */
async function opensslOnTwoCores(setup: Setup): Promise<Timed> {
  const half = (n: number) =>
    `tr "\\n" "\\0" < "$${n}" | xargs -0 openssl dgst -sha256 > /dev/null`;
  const script = `(${half(1)}) & (${half(2)}); wait`;
  const result = await runMeasured("sh", ["-c", script, "sh", ...setup.halves], {
    group: true,
    cpus: "0,1",
  });
  return { ms: result.ms, peakBytes: undefined };
}

async function gitStatus(setup: Setup): Promise<Timed & { output: string }> {
  const result = await runMeasured("git", [...setup.git, "status", "--porcelain"], {
    env: setup.env,
  });
  return { ms: result.ms, peakBytes: result.peakBytes, output: result.stdout };
}

/**
 * A git repository of the tree, its git folder outside it (the tree is what imgtool hashes).
 * Without automatic housekeeping: `git commit` of 20,000 loose objects would otherwise start
 * `git gc --auto` in the background, which repacked the 1.3 GB for minutes on one core while
 * the timed runs went on (every earlier two-core figure here was taken beside it).
 */
async function makeRepository(dir: string, root: string, env: Record<string, string>) {
  const git = [
    `--git-dir=${join(dir, "tree.git")}`,
    `--work-tree=${root}`,
    "-c",
    "gc.auto=0",
    "-c",
    "maintenance.auto=false",
  ];
  const options = { env, timeoutMs: 600_000 };
  await runOk("git", [...git, "init", "--quiet"], options);
  // Loose objects stored uncompressed: making them is all this costs; `status` never reads them.
  await runOk("git", [...git, "-c", "core.looseCompression=0", "add", "--all"], options);
  await runOk("git", [
    ...git,
    "-c",
    "user.name=bench",
    "-c",
    "user.email=bench@localhost",
    "commit",
    "--quiet",
    "--message=tree",
  ], options);
  return git;
}

const peakMb = (runs: readonly Timed[]) =>
  runs.some((r) => r.peakBytes === undefined)
    ? undefined
    : Math.max(...runs.map((r) => r.peakBytes!)) / MB;
const mbText = (value: number | undefined) => value === undefined ? "-" : fmt(value);
const runsText = (runs: readonly Timed[]) => runs.map((r) => r.ms.toFixed(0)).join(" ");

/** Run the identity benchmark. */
export async function identityBench(options: IdentityOptions): Promise<BenchResult> {
  const name = "identity";
  heading("identity: uri of a large tree: warm vs git status, cold vs openssl (issue 14)");
  for (const [tool, args] of [["openssl", ["version"]], ["git", ["--version"]]] as const) {
    const check = await run(tool, args).catch(() => undefined);
    if (!check || check.code !== 0) {
      const reason = `${tool} is not installed (needed as a baseline)`;
      console.log(`  skipped: ${reason}`);
      return { name, ran: false, reason, goals: [] };
    }
  }
  const taskset = (await run("taskset", ["-c", "0", "true"]).catch(() => undefined))?.code === 0;
  const cores = navigator.hardwareConcurrency ?? 1;
  const dir = await makeTempDir("identity");
  try {
    const root = join(dir, "tree");
    await Deno.mkdir(root);
    const home = join(dir, "home");
    await Deno.mkdir(home);
    // No user or system git configuration: git as it comes.
    const env = {
      DENO_DIR: await denoDir(),
      HOME: home,
      GIT_CONFIG_NOSYSTEM: "1",
      DOCKER_BUILDKIT: "1",
    };
    const shape = options.small ? SMALL : FULL;
    let started = performance.now();
    const stats = await writeTree(root, shape);
    const written = Date.now();
    console.log(
      `  tree: ${stats.files} files in ${stats.dirs} folders, ${fmt(stats.bytes / MB)} MB ` +
        `(largest ${fmt(stats.largest / MB)} MB) under ${root}; written in ${
          ms(performance.now() - started)
        }${options.small ? "  [--small: NOT the goal's tree]" : ""}`,
    );
    started = performance.now();
    const git = await makeRepository(dir, root, env);
    console.log(
      `  git repository (git folder ${join(dir, "tree.git")}): ${ms(performance.now() - started)}`,
    );
    started = performance.now();
    const bundle = await bundleInto(BUNDLE_DIR);
    console.log(`  bundled imgtool into ${bundle}: ${ms(performance.now() - started)}`);
    await Deno.writeTextFile(
      join(dir, "spec.ts"),
      [
        `import { Image } from "imgtool";`,
        "",
        `export default Image.fromDebianBase({ name: "identity-bench" })`,
        `  .withSourceFolder("./tree", "/app");`,
        "",
      ].join("\n"),
    );
    const files = (await runOk("find", [root, "-type", "f"])).stdout.trim().split("\n").sort();
    const halves: [string, string] = [join(dir, "odd.txt"), join(dir, "even.txt")];
    for (const [n, list] of halves.entries()) {
      await Deno.writeTextFile(list, `${files.filter((_, i) => i % 2 === n).join("\n")}\n`);
    }
    const setup: Setup = { dir, root, bytes: stats.bytes, bundle, git, halves, env };

    // The 2.6 GB just written (tree and git objects) go to disk first: the kernel's writeback
    // would otherwise run beside the timed runs, and took a core from the first of them.
    started = performance.now();
    await runOk("sync", []);
    console.log(`  written to disk (sync): ${ms(performance.now() - started)}`);
    // Into the page cache: read every file once. Files settle (imgtool remembers digests
    // only of files unchanged for 2 s), then git's index is refreshed, so that git too
    // finds no racily clean entry to read again.
    started = performance.now();
    await runOk("sh", ["-c", 'find "$1" -type f -print0 | xargs -0 cat > /dev/null', "sh", root], {
      group: true,
    });
    console.log(`  page cache: read once in ${ms(performance.now() - started)}`);
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, written + SETTLE_MS - Date.now()))
    );
    await runOk("git", [...git, "update-index", "--refresh"], { env });
    const status = await gitStatus(setup);
    if (status.output !== "") throw new Error(`git status is not clean:\n${status.output}`);
    if (!(await canMeasureMemory())) {
      console.log("  (no GNU time at /usr/bin/time: peak memory is not measured)");
    }

    // Cold: a fresh, empty digest cache each run; one untimed run of each first (Deno's
    // module cache, the dentry cache).
    const coldCpus = taskset ? (cores >= 2 ? ["0", "0,1"] : ["0"]) : [undefined];
    const label = (cpus: string | undefined) =>
      cpus === undefined
        ? `${cores} cores`
        : `${cpus.split(",").length} core${cpus.includes(",") ? "s" : ""} (taskset -c ${cpus})`;
    const uris = new Set<string>();
    for (const cpus of coldCpus) uris.add((await coldUri(setup, cpus)).uri);
    await openssl(setup);
    const cold: Record<string, Timed[]> = Object.fromEntries(coldCpus.map((c) => [String(c), []]));
    const opensslRuns: Timed[] = [];
    const twoCoreRuns: Timed[] = [];
    for (let round = 0; round < options.rounds; round++) {
      opensslRuns.push(await openssl(setup));
      if (taskset && cores >= 2) twoCoreRuns.push(await opensslOnTwoCores(setup));
      for (const cpus of coldCpus) {
        const ran = await coldUri(setup, cpus);
        uris.add(ran.uri);
        cold[String(cpus)].push(ran);
      }
    }

    // Warm: one cache, filled by one run and checked complete by a second; then timed.
    const warmCache = await makeTempDir("identity-warm-cache");
    const warm: Timed[] = [];
    const gitRuns: Timed[] = [];
    try {
      uris.add((await uri(setup, warmCache)).uri);
      uris.add((await uri(setup, warmCache)).uri);
      await gitStatus(setup);
      for (let round = 0; round < options.rounds; round++) {
        // The order turns each round: whichever runs second finds the other's work done.
        const pair = [
          async () => gitRuns.push(await gitStatus(setup)),
          async () => {
            const ran = await uri(setup, warmCache);
            uris.add(ran.uri);
            warm.push(ran);
          },
        ];
        if (round % 2 === 1) pair.reverse();
        for (const step of pair) await step();
      }
    } finally {
      await removeTempDir(warmCache);
    }
    if (uris.size !== 1) {
      throw new Error(`imgtool uri printed different URIs: ${[...uris].join(", ")}`);
    }
    console.log(`  uri (the same in every run): ${[...uris][0]}`);

    const rate = (time: number) => stats.bytes / MB / (time / 1000);
    const opensslMs = median(opensslRuns.map((r) => r.ms));
    const gitMs = median(gitRuns.map((r) => r.ms));
    const warmMs = median(warm.map((r) => r.ms));
    console.log(
      `\n  medians of ${options.rounds}, interleaved; MB = 10^6 bytes; peak = the largest peak ` +
        `resident memory of the runs (GNU time); whole processes, start-up included, timed as a ` +
        `shell times them (bash's time)`,
    );
    table(
      ["contender", "median", "min", "MB/s", "ratio", "peak MB", "runs (ms)"],
      [
        [
          "warm: git status --porcelain",
          ms(gitMs),
          ms(min(gitRuns.map((r) => r.ms))),
          "-",
          "1",
          mbText(peakMb(gitRuns)),
          runsText(gitRuns),
        ],
        [
          "warm: imgtool uri (all remembered)",
          ms(warmMs),
          ms(min(warm.map((r) => r.ms))),
          "-",
          `${fmt(warmMs / gitMs)}x the time`,
          mbText(peakMb(warm)),
          runsText(warm),
        ],
        [
          "cold: openssl dgst -sha256 (find|xargs)",
          ms(opensslMs),
          ms(min(opensslRuns.map((r) => r.ms))),
          fmt(rate(opensslMs)),
          "1",
          "-",
          runsText(opensslRuns),
        ],
        ...(twoCoreRuns.length === 0 ? [] : [[
          "(two openssl at once, each half the files, 2 cores)",
          ms(median(twoCoreRuns.map((r) => r.ms))),
          ms(min(twoCoreRuns.map((r) => r.ms))),
          fmt(rate(median(twoCoreRuns.map((r) => r.ms)))),
          `${fmt(opensslMs / median(twoCoreRuns.map((r) => r.ms)))}x the throughput`,
          "-",
          runsText(twoCoreRuns),
        ]]),
        ...coldCpus.map((cpus) => {
          const runs = cold[String(cpus)];
          const time = median(runs.map((r) => r.ms));
          return [
            `cold: imgtool uri, ${label(cpus)}`,
            ms(time),
            ms(min(runs.map((r) => r.ms))),
            fmt(rate(time)),
            `${fmt(rate(time) / rate(opensslMs))}x the throughput`,
            mbText(peakMb(runs)),
            runsText(runs),
          ];
        }),
      ],
    );
    const allCores = cold[String(coldCpus.at(-1))];
    const coldMs = median(allCores.map((r) => r.ms));
    const goals: Goal[] = [
      {
        name: "warm uri/git status time",
        value: warmMs / gitMs,
        op: "<=",
        target: WARM_RATIO_GOAL,
      },
      {
        name: `cold uri/openssl throughput (${label(coldCpus.at(-1))})`,
        value: rate(coldMs) / rate(opensslMs),
        op: ">=",
        target: COLD_RATIO_GOAL,
      },
    ];
    const warmPeak = peakMb(warm);
    const coldPeak = peakMb(Object.values(cold).flat());
    if (warmPeak !== undefined) {
      goals.push({
        name: "warm uri peak memory",
        value: warmPeak,
        op: "<=",
        target: WARM_PEAK_GOAL_MB,
        unit: " MB",
      });
    }
    if (coldPeak !== undefined) {
      goals.push({
        name: "cold uri peak memory",
        value: coldPeak,
        op: "<=",
        target: COLD_PEAK_GOAL_MB,
        unit: " MB",
      });
    }
    if (!taskset) console.log("  (no taskset: cold runs use every core, not 1 and 2)");
    for (const goal of goals) console.log(`  ${goalLine(goal)}`);
    if (options.explore) await explore(root, options.rounds, setup, rate);
    return { name, ran: true, goals };
  } finally {
    await removeTempDir(dir);
  }
}

/** Time one cold digest call in a fresh process (`identity_child.ts`), with an empty cache. */
async function child(mode: string, root: string): Promise<ChildReport & { wallMs: number }> {
  const cacheDir = await makeTempDir("identity-digests");
  try {
    const result = await runOk(
      DENO,
      ["run", "--allow-all", ...IMGTOOL_V8_FLAGS, CHILD, mode, root, cacheDir],
      { timeoutMs: 600_000 },
    );
    const report = JSON.parse(result.stdout.trim().split("\n").at(-1)!) as ChildReport;
    return { ...report, wallMs: result.ms };
  } finally {
    await removeTempDir(cacheDir);
  }
}

/**
 * `--explore`: the digest call alone, in a fresh process (`treeDigest`, `treeDigestSync`),
 * and every variant of `digest_variants.ts`, each against openssl runs interleaved with its
 * own. The variants must give `treeDigest`'s digest; "floor" variants are not digests.
 */
async function explore(
  root: string,
  rounds: number,
  setup: Setup,
  rate: (ms: number) => number,
): Promise<void> {
  console.log("\n  --explore: the digest call alone and its variants (bench/digest_variants.ts),");
  console.log(`  each in a fresh process with an empty cache, median of ${rounds}, against`);
  console.log("  openssl runs interleaved with its own; src/digest.ts itself is unchanged");
  const digest = (await child("async", root)).digest;
  const rows: string[][] = [];
  for (const mode of ["async", "sync", ...Object.keys(VARIANTS)]) {
    const results: (ChildReport & { wallMs: number })[] = [];
    const opensslMs: number[] = [];
    for (let round = 0; round < rounds; round++) {
      opensslMs.push((await openssl(setup)).ms);
      results.push(await child(mode, root));
    }
    const floor = mode.startsWith("floor-");
    if (!floor && results.some((r) => r.digest !== digest)) {
      throw new Error(`${mode} gives another digest: ${results[0].digest}, not ${digest}`);
    }
    const time = median(results.map((r) => r.ms));
    rows.push([
      mode,
      VARIANTS[mode]?.describe ?? (mode === "async" ? "treeDigest" : "treeDigestSync"),
      ms(time),
      floor ? "-" : fmt(rate(time)),
      ms(median(opensslMs)),
      floor ? "-" : fmt(median(opensslMs) / time),
      fmt(Math.max(...results.map((r) => r.peakRssKiB)) * 1024 / MB),
    ]);
  }
  table(["variant", "what changes", "in-call", "MB/s", "openssl", "ratio", "peak RSS MB"], rows);
}
