/**
 * `deno task bench [identity|noop-build|startup|status-explain|pool|append ...] [--strict] [--explore] [--small]`:
 * imgtool's benchmarks, each against a baseline measured in the same run. They print their
 * figures and the ratio against each goal; `--strict` turns a missed goal into exit 1.
 * See bench/README.md.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { appendBench } from "./append.ts";
import { identityBench } from "./identity.ts";
import { cleanup, goalLine, heading, killChildren, met } from "./lib.ts";
import type { BenchResult } from "./lib.ts";
import { noopBuildBench } from "./noop_build.ts";
import { poolBench } from "./pool.ts";
import { startupBench } from "./startup.ts";
import { statusExplainBench } from "./status_explain.ts";

const USAGE = `usage: deno task bench [BENCHMARK...] [--strict] [--explore] [--small] [--rounds N]

benchmarks (default: all, in this order):
  identity     uri of a spec taking a 20,000-file, >1 GiB tree: warm vs git status,
               cold (1 and 2 cores) vs openssl dgst -sha256
  noop-build   imgtool build --push of an existing image vs a cached docker build
  startup      CLI to a printed uri vs deno eval ""
  status-explain  status and explain (20,000-file tree) vs a no-op build of the same spec
  pool         four images with a 2 s step each: a pool of two engines vs one engine
  append       one file edited in a 5,000-file folder: build --push vs docker build + push

flags:
  --strict     exit 1 when a goal is missed (default: print only)
  --explore    identity: also time the digest call alone and the hashing variants
  --small      identity, status-explain: a small tree, to try the harness (not the goal's)
  --rounds N   identity: timed runs per contender, median kept (default 3)
  --runs N     noop-build, startup, status-explain, pool, append: timed runs per command
               (default 15, 10, 7, 3, 5)`;

const BENCHMARKS = [
  "identity",
  "noop-build",
  "startup",
  "status-explain",
  "pool",
  "append",
] as const;
type Name = typeof BENCHMARKS[number];

/** Run the benchmarks named on the command line; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        strict: { type: "boolean" },
        explore: { type: "boolean" },
        small: { type: "boolean" },
        rounds: { type: "string" },
        runs: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    console.error(`bench: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const unknown = positionals.filter((name) => !BENCHMARKS.includes(name as Name));
  const count = (value: string | undefined, fallback: number) =>
    value === undefined ? fallback : Number(value);
  const rounds = count(values.rounds, 3);
  const runs = values.runs;
  if (unknown.length > 0 || !(rounds >= 1) || (runs !== undefined && !(Number(runs) >= 1))) {
    console.error(`bench: unknown benchmark or bad count: ${unknown.join(", ")}\n\n${USAGE}`);
    return 2;
  }
  const selected = positionals.length > 0
    ? BENCHMARKS.filter((name) => positionals.includes(name))
    : [...BENCHMARKS];

  const results: BenchResult[] = [];
  let broken = 0;
  for (const name of selected) {
    try {
      results.push(
        name === "identity"
          ? await identityBench({ rounds, small: !!values.small, explore: !!values.explore })
          : name === "noop-build"
          ? await noopBuildBench({ runs: count(runs, 15) })
          : name === "status-explain"
          ? await statusExplainBench({ runs: count(runs, 7), small: !!values.small })
          : name === "pool"
          ? await poolBench({ runs: count(runs, 3) })
          : name === "append"
          ? await appendBench({ runs: count(runs, 5) })
          : await startupBench({ runs: count(runs, 10) }),
      );
    } catch (error) {
      broken++;
      console.error(`\n  ${name}: the benchmark failed: ${(error as Error)?.stack ?? error}`);
      results.push({ name, ran: false, reason: "failed (see above)", goals: [] });
    }
  }

  heading("summary");
  let missed = 0;
  for (const result of results) {
    if (!result.ran) {
      console.log(`  ${result.name}: not measured: ${result.reason}`);
      continue;
    }
    if (result.goals.length === 0) console.log(`  ${result.name}: measured (no goal)`);
    for (const goal of result.goals) {
      if (!met(goal)) missed++;
      console.log(`  ${result.name}: ${goalLine(goal)}`);
    }
  }
  if (broken > 0) return 1;
  if (missed > 0 && values.strict) {
    console.log(`  --strict: ${missed} goal(s) missed`);
    return 1;
  }
  return 0;
}

if (import.meta.main) {
  // Ctrl-C or a kill: stop the children we started and remove the temp folders.
  const stop = () => {
    killChildren();
    cleanup();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  let status = 1;
  try {
    status = await main(Deno.args);
  } finally {
    cleanup();
  }
  Deno.exit(status);
}
