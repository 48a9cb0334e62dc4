/**
 * Benchmark "noop-build": `imgtool build --push` of a spec whose image is already in the
 * registry, against a fully cached `docker build` of the same Dockerfile and context
 * (written by `imgtool dockerfile --out`). imgtool runs as the bundle the binaries embed
 * (scripts/bundle.ts, made first into dist/js); `deno task imgtool` from the sources is
 * timed alongside for comparison. Needs the e2e environment (`tests/e2e/env.sh up`:
 * Docker engine, registry on 127.0.0.1:5000, the Python base image, the package index);
 * without it the benchmark says it was skipped and why.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Facts, projectConfig, readFacts } from "../tests/e2e/facts.ts";
import type { Profile } from "./noop_profile.ts";
import { bundleInto } from "../scripts/bundle.ts";
import { farRegistry } from "./far_registry.ts";
import { IMGTOOL_V8_FLAGS } from "../scripts/runtime_flags.ts";
import {
  type BenchResult,
  bundledImgtoolArgs,
  DENO,
  e2eUnavailable,
  fmt,
  type Goal,
  goalLine,
  heading,
  imgtoolArgs,
  makeTempDir,
  median,
  min,
  ms,
  removeTempDir,
  ROOT,
  run,
  runOk,
  table,
  timingRow,
} from "./lib.ts";

/** Options of the no-op build benchmark. */
export interface NoopBuildOptions {
  /** Timed runs of each command. */
  readonly runs: number;
}

const GOAL = 0.25;
// A registry in another region of the same continent: about 40 ms there and back.
const FAR_ONE_WAY_MS = 20;
const PROFILE = fileURLToPath(new URL("./noop_profile.ts", import.meta.url));

/** The spec, its config and its source folder. */
async function writeSpec(dir: string, facts: Facts) {
  await Deno.writeTextFile(
    join(dir, "imgtool.toml"),
    projectConfig(facts, `${facts.REGISTRY}/imgtool-bench`),
  );
  await Deno.writeTextFile(
    join(dir, "spec.ts"),
    [
      `import { Image } from "imgtool";`,
      "",
      `export default Image.fromDebianBase({ name: "noop-build" })`,
      `  .withSourceFolder("./src", "/app/src")`,
      `  .withEnvVars({ APP_MODE: "bench", APP_GREETING: "hello" })`,
      `  .withPipPackages(["imgtool-demo-b"], { indexUrl: ${
        JSON.stringify(facts.PACKAGE_INDEX)
      } })`,
      `  .withWorkdir("/app");`,
      "",
    ].join("\n"),
  );
  await Deno.mkdir(join(dir, "src/app"), { recursive: true });
  for (let i = 0; i < 20; i++) {
    await Deno.writeTextFile(join(dir, `src/app/module${i}.py`), `VALUE = ${i}\n`.repeat(50));
  }
  await Deno.writeTextFile(join(dir, "src/main.py"), 'print("imgtool no-op build benchmark")\n');
}

/**
 * Print where a no-op build spends its time: the stages of the build command timed one by
 * one in fresh processes (bench/noop_profile.ts), what the docker probe's two commands cost
 * on their own, and `deno eval ""` for the runtime's floor.
 */
async function whereTimeGoes(dir: string, docker: string, runs: number, total: number) {
  const profiles: Profile[] = [];
  const floor: number[] = [];
  const dockerVersion: number[] = [];
  const buildxVersion: number[] = [];
  for (let i = 0; i < runs; i++) {
    const result = await runOk(DENO, [
      "run",
      "--allow-all",
      ...IMGTOOL_V8_FLAGS,
      `--config=${join(ROOT, "deno.json")}`,
      PROFILE,
      "spec.ts",
    ], { cwd: dir, env: { DOCKER_BUILDKIT: "1" }, timeoutMs: 120_000 });
    profiles.push(JSON.parse(result.stdout.trim().split("\n").at(-1)!));
    floor.push((await runOk(DENO, ["eval", ""])).ms);
    const format = "{{.Client.Version}} {{.Server.Version}}";
    dockerVersion.push((await runOk(docker, ["version", "--format", format])).ms);
    buildxVersion.push((await run(docker, ["buildx", "version"])).ms);
  }
  console.log(
    `\n  where a no-op build's ${
      ms(total)
    } from the sources go (medians of ${runs} profiled runs):`,
  );
  const rows = Object.keys(profiles[0]).map((stage) => [
    stage,
    ms(median(profiles.map((p) => p[stage]))),
  ]);
  rows.push(['(deno eval "": the runtime\'s floor)', ms(median(floor))]);
  rows.push([`(${docker} version --format ..., alone)`, ms(median(dockerVersion))]);
  rows.push([`(${docker} buildx version, alone)`, ms(median(buildxVersion))]);
  table(["stage", "time"], rows);
}

/** Run the no-op build benchmark. */
export async function noopBuildBench(options: NoopBuildOptions): Promise<BenchResult> {
  const name = "noop-build";
  heading("noop-build: imgtool build (image exists) vs cached docker build (Real builds, 9)");
  const facts = await readFacts();
  const docker = typeof facts === "string" ? "/usr/bin/docker" : facts.DOCKER;
  const reason = typeof facts === "string"
    ? facts
    : await e2eUnavailable(facts, { docker, packageIndex: true });
  if (reason !== undefined || typeof facts === "string") {
    console.log(`  skipped: ${reason}`);
    return { name, ran: false, reason, goals: [] };
  }
  const dir = await makeTempDir("noop-build");
  try {
    await writeSpec(dir, facts);
    const written = Date.now();
    const env = { DOCKER_BUILDKIT: "1" };
    let started = performance.now();
    const bundle = await bundleInto("dist/js");
    console.log(`  bundled imgtool into ${bundle}: ${ms(performance.now() - started)}`);
    const imgtool = (...args: string[]) =>
      runOk(DENO, bundledImgtoolArgs(bundle, ...args), { cwd: dir, env, timeoutMs: 1_200_000 });
    const fromSources = (...args: string[]) =>
      runOk(DENO, imgtoolArgs(...args), { cwd: dir, env, timeoutMs: 1_200_000 });

    started = performance.now();
    const first = await imgtool("build", "--push", "spec.ts");
    const uri = first.stdout.trim().split("\n").at(-1) ?? "";
    console.log(`  spec: ${join(dir, "spec.ts")}`);
    console.log(`  image: ${uri}; build --push first: ${ms(performance.now() - started)}`);

    await imgtool("dockerfile", "spec.ts", "--out", "context");
    const context = join(dir, "context");
    const dockerBuild = () =>
      runOk(docker, ["build", "--network=host", context], { env, timeoutMs: 1_200_000 });
    started = performance.now();
    await dockerBuild();
    console.log(`  docker build of the same context, warm-up: ${ms(performance.now() - started)}`);
    // A no-op build is a rebuild of sources left alone for a while: imgtool remembers the
    // digests only of files unchanged for 2 s (src/digest_cache.ts), so wait until these are,
    // and let one untimed run of each remember them.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, written + 2_500 - Date.now())));
    await imgtool("build", "--push", "spec.ts");
    await fromSources("build", "--push", "spec.ts");

    const imgtoolMs: number[] = [];
    const sourcesMs: number[] = [];
    const dockerMs: number[] = [];
    let cached = 0;
    const noop = async (run: typeof imgtool) => {
      const ran = await run("build", "--push", "spec.ts");
      if (!/0 built, 1 skipped, 0 failed/.test(ran.stderr)) {
        throw new Error(`imgtool build was not a no-op:\n${ran.stderr}`);
      }
      return ran.ms;
    };
    const contenders = [
      async () => imgtoolMs.push(await noop(imgtool)),
      async () => sourcesMs.push(await noop(fromSources)),
      async () => {
        const built = await dockerBuild();
        cached = (built.stderr.match(/^#\d+ CACHED$/gm) ?? []).length;
        dockerMs.push(built.ms);
      },
    ];
    // The order turns each round: the engine goes on working for a moment after a build, and
    // whichever command runs next pays for it, so each one takes that place in turn.
    for (let i = 0; i < options.runs; i++) {
      for (let k = 0; k < contenders.length; k++) {
        await contenders[(i + k) % contenders.length]();
      }
    }
    console.log(`  docker: ${cached} steps CACHED in the last run; ${options.runs} runs each\n`);
    table(["command", "median", "min", "runs (ms)"], [
      timingRow("imgtool build --push (exists, no-op)", imgtoolMs),
      timingRow("(the same from the sources: deno task imgtool)", sourcesMs),
      timingRow("docker build --network=host (cached)", dockerMs),
    ]);
    const goal: Goal = {
      name: "imgtool/docker time (medians)",
      value: median(imgtoolMs) / median(dockerMs),
      op: "<=",
      target: GOAL,
    };
    console.log(`  (min/min: ${fmt(min(imgtoolMs) / min(dockerMs))})`);
    console.log(`  ${goalLine(goal)}`);
    await whereTimeGoes(dir, docker, options.runs, median(sourcesMs));
    await farRegistry({
      dir,
      registry: facts.REGISTRY,
      namespace: "imgtool-bench",
      imgtool,
      runs: options.runs,
      oneWayMs: FAR_ONE_WAY_MS,
    });
    console.log(`  note: ${uri} stays in the registry (the next run reuses it)`);
    return { name, ran: true, goals: [goal] };
  } finally {
    await removeTempDir(dir);
  }
}
