/**
 * Benchmark "startup": the CLI from start to a printed `uri` for a small spec
 * (`deno run --allow-all --config deno.json cli.ts uri spec.ts`), against `deno eval ""`,
 * in the same run; and the compiled binary in `dist/` when there is one.
 *
 * @module
 */

import { bundleInto } from "../scripts/bundle.ts";
import { join } from "node:path";
import {
  type BenchResult,
  bundledImgtoolArgs,
  DENO,
  fmt,
  heading,
  imgtoolArgs,
  makeTempDir,
  median,
  min,
  ms,
  removeTempDir,
  ROOT,
  runOk,
  table,
} from "./lib.ts";

/** Options of the start-up benchmark. */
export interface StartupOptions {
  /** Timed runs of each command. */
  readonly runs: number;
}

const BINARY = join(ROOT, "dist/imgtool-x86_64-unknown-linux-gnu");

interface Contender {
  readonly label: string;
  readonly cmd: string;
  readonly args: string[];
  /** What its output must hold, to be sure it did the work. */
  readonly expect?: RegExp;
  readonly times: number[];
}

/** Run the start-up benchmark. */
export async function startupBench(options: StartupOptions): Promise<BenchResult> {
  const name = "startup";
  heading('startup: CLI to a printed uri vs deno eval "" (issue "One binary", item 6)');
  const dir = await makeTempDir("startup");
  try {
    await Deno.writeTextFile(
      join(dir, "spec.ts"),
      [
        `import { Image } from "imgtool";`,
        "",
        `export default Image.fromDebianBase({ name: "startup" })`,
        `  .withEnvVars({ MODE: "bench" })`,
        `  .withSourceFile("./main.py", "/app/main.py")`,
        `  .withWorkdir("/app");`,
        "",
      ].join("\n"),
    );
    await Deno.writeTextFile(join(dir, "main.py"), 'print("hello")\n');
    const uri = /^startup:[0-9a-f]{32}$/m;
    const contenders: Contender[] = [
      { label: 'deno eval ""', cmd: DENO, args: ["eval", ""], times: [] },
      {
        label: "deno run cli.ts uri spec.ts",
        cmd: DENO,
        args: imgtoolArgs("uri", "spec.ts"),
        expect: uri,
        times: [],
      },
      {
        label: "the bundle (dist/js/cli.js) uri spec.ts",
        cmd: DENO,
        args: bundledImgtoolArgs(await bundleInto("dist/js"), "uri", "spec.ts"),
        expect: uri,
        times: [],
      },
    ];
    let binary: string;
    try {
      Deno.statSync(BINARY);
      contenders.push({
        label: "compiled binary uri spec.ts",
        cmd: BINARY,
        args: ["uri", "spec.ts"],
        expect: uri,
        times: [],
      });
      binary = `measured (${BINARY})`;
    } catch {
      binary = `not available: no ${BINARY} (deno compile needs the denort runtime, ` +
        "which cannot be downloaded here; see /work/shared/ENVIRONMENT.md)";
    }
    // One untimed run each (Deno's module and transpile caches), then interleaved runs.
    for (const contender of contenders) await check(contender, dir);
    for (let i = 0; i < options.runs; i++) {
      for (const contender of contenders) {
        const result = await runOk(contender.cmd, contender.args, { cwd: dir, timeoutMs: 60_000 });
        contender.times.push(result.ms);
      }
    }
    const baseline = median(contenders[0].times);
    console.log(
      `  ${options.runs} runs each after one warm-up run; ratio = median / median of deno eval\n`,
    );
    table(
      ["command", "median", "min", "ratio"],
      contenders.map((
        c,
      ) => [c.label, ms(median(c.times)), ms(min(c.times)), fmt(median(c.times) / baseline)]),
    );
    console.log(`  compiled binary: ${binary}`);
    console.log("  goal: none set for this figure; it is printed to track start-up over time");
    return { name, ran: true, goals: [] };
  } finally {
    await removeTempDir(dir);
  }
}

async function check(contender: Contender, dir: string): Promise<void> {
  const result = await runOk(contender.cmd, contender.args, { cwd: dir, timeoutMs: 120_000 });
  if (contender.expect && !contender.expect.test(result.stdout)) {
    throw new Error(`${contender.label} printed no uri:\n${result.stdout}${result.stderr}`);
  }
}
