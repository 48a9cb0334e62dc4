/**
 * Benchmark "pool": `imgtool build --push` of four independent images, each with a step that
 * sleeps 2 s, on a pool of two engines (`[[builders]]`, one job each) against the same build
 * on one engine (no pool: `[docker] host` aimed at the first of them), in the same run. Each
 * build's steps carry a text of their own, so no engine's cache answers. Goal: the pool takes
 * at most 0.6 times as long. Needs the e2e environment with its two pool engines
 * (`tests/e2e/env.sh up`: `POOL_ENGINE_A`, `POOL_ENGINE_B`); without it the benchmark says
 * it was skipped and why.
 *
 * @module
 */

import { join } from "node:path";
import { type Facts, projectConfig, readFacts } from "../tests/e2e/facts.ts";
import {
  type BenchResult,
  DENO,
  e2eUnavailable,
  fmt,
  type Goal,
  goalLine,
  heading,
  imgtoolArgs,
  makeTempDir,
  median,
  ms,
  removeTempDir,
  run,
  runOk,
  table,
  timingRow,
} from "./lib.ts";

/** Options of the pool benchmark. */
export interface PoolBenchOptions {
  /** Timed builds of each contender (each of new images). */
  readonly runs: number;
}

const GOAL = 0.6;
const IMAGES = ["api", "worker", "web", "jobs"];
const SLEEP_SECONDS = 2;

/** The spec: four images of the Debian base, each a step of its own that sleeps. */
function spec(facts: Facts, nonce: string): string {
  return [
    `import { Image } from "imgtool";`,
    `const base = Image.fromBase(${JSON.stringify(facts.DEBIAN_BASE)});`,
    ...IMAGES.map((name) =>
      `export const ${name} = base.clone({ name: "${name}" })` +
      `.withCommands("echo ${name}-${nonce} > /made && sleep ${SLEEP_SECONDS}");`
    ),
    "",
  ].join("\n");
}

/** The `[[builders]]` entries of the pool. */
function poolEntries(engines: readonly string[]): string {
  return engines.map((host, index) =>
    `[[builders]]\nname = "engine-${"ab"[index]}"\nhost = "${host}"\nplatforms = ["linux/amd64"]\n`
  ).join("\n");
}

/**
 * Run the pool benchmark: one engine, then the pool of two, `runs` times each, each build of
 * images no engine has seen.
 *
 * @example
 * ```ts ignore
 * import { poolBench } from "./pool.ts";
 * const result = await poolBench({ runs: 3 });
 * console.log(result.ran ? result.goals[0].value : result.reason);
 * ```
 */
export async function poolBench(options: PoolBenchOptions): Promise<BenchResult> {
  const name = "pool";
  heading(
    `pool: four images (a ${SLEEP_SECONDS} s step each) on two engines vs one engine (issue 16)`,
  );
  const facts = await readFacts();
  let reason = typeof facts === "string" ? facts : await e2eUnavailable(facts);
  const all = typeof facts === "string" ? {} : facts as unknown as Record<string, string>;
  const engines = [all.POOL_ENGINE_A, all.POOL_ENGINE_B];
  if (reason === undefined && engines.some((host) => !host)) {
    reason =
      "the facts name no pool engines (POOL_ENGINE_A, POOL_ENGINE_B): run tests/e2e/env.sh up";
  }
  for (const host of engines) {
    if (reason !== undefined || typeof facts === "string") break;
    const answer = await run(facts.DOCKER, ["-H", host, "version"], { timeoutMs: 15_000 });
    if (answer.code !== 0) reason = `the pool engine ${host} does not answer (env.sh up starts it)`;
  }
  if (reason !== undefined || typeof facts === "string") {
    console.log(`  skipped: ${reason}`);
    return { name, ran: false, reason, goals: [] };
  }
  const load = () => Deno.loadavg().map((value) => value.toFixed(2)).join(" ");
  console.log(`  machine: ${navigator.hardwareConcurrency} cores; load average ${load()}`);
  console.log(`  engines: ${engines.join(", ")} (one job each)`);
  const dir = await makeTempDir("pool");
  const built = new Map<string, string[]>();
  try {
    const registry = `${facts.REGISTRY}/imgtool-bench-pool`;
    await Deno.writeTextFile(
      join(dir, "imgtool.toml"),
      projectConfig(facts, registry, poolEntries(engines)),
    );
    // The base in both engines first: a pull is not what is measured.
    for (const host of engines) {
      await runOk(facts.DOCKER, ["-H", host, "pull", "-q", `${facts.DEBIAN_BASE}-amd64`]);
    }
    // imgtool's caches of the run's own (the engine remembered per image starts empty);
    // Deno's stays where it is, or the CLI would be compiled again.
    const env = {
      DOCKER_BUILDKIT: "1",
      XDG_CACHE_HOME: join(dir, "cache"),
      DENO_DIR: await denoDir(),
    };
    const contenders: { label: string; args: string[]; env: Record<string, string> }[] = [
      // No pool: the docker builder, on the first engine, one image after another.
      {
        label: "one engine",
        args: ["--builder", "docker"],
        env: { IMGTOOL_DOCKER_HOST: engines[0] },
      },
      { label: "pool of two", args: [], env: {} },
    ];
    const times = new Map<string, number[]>(contenders.map((c) => [c.label, []]));
    for (let round = 0; round < options.runs; round++) {
      for (const contender of contenders) {
        const nonce = `${Date.now().toString(36)}${
          crypto.getRandomValues(new Uint32Array(1))[0].toString(36)
        }`;
        await Deno.writeTextFile(join(dir, "spec.ts"), spec(facts, nonce));
        const result = await runOk(
          DENO,
          imgtoolArgs("build", "spec.ts", "--push", ...contender.args),
          { cwd: dir, env: { ...env, ...contender.env }, timeoutMs: 600_000, group: true },
        );
        if (!/4 built, 0 skipped, 0 failed/.test(result.stderr)) {
          throw new Error(`${contender.label}: not four images built:\n${result.stderr}`);
        }
        const uris = result.stdout.trim().split("\n");
        built.set(contender.label, [...(built.get(contender.label) ?? []), ...uris]);
        times.get(contender.label)!.push(result.ms);
        console.log(`  ${contender.label}, run ${round + 1}: ${ms(result.ms)}`);
      }
    }
    table(
      ["contender", "median", "min", "runs (ms)"],
      contenders.map((c) => timingRow(c.label, times.get(c.label)!)),
    );
    const one = median(times.get("one engine")!);
    const pool = median(times.get("pool of two")!);
    const goal: Goal = { name: "pool/one engine time", value: pool / one, op: "<=", target: GOAL };
    console.log(`  one engine ${ms(one)}, pool of two ${ms(pool)}: ratio ${fmt(pool / one)}`);
    console.log(`  ${goalLine(goal)}`);
    return { name, ran: true, goals: [goal] };
  } finally {
    // What the builds left in the engines' stores (the registry keeps its copies).
    for (const host of engines) {
      for (const uri of [...built.values()].flat()) {
        await run(facts.DOCKER, ["-H", host, "rmi", uri], { timeoutMs: 60_000 });
      }
    }
    await removeTempDir(dir);
  }
}

/** Deno's cache folder, as this process uses it. */
async function denoDir(): Promise<string> {
  const fromEnv = Deno.env.get("DENO_DIR");
  if (fromEnv) return fromEnv;
  const info = await runOk(DENO, ["info", "--json"]);
  return JSON.parse(info.stdout).denoDir;
}
