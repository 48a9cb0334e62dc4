/**
 * Helpers shared by the benchmarks: timed child processes (each in its own process group,
 * killed whole on timeout), statistics, tables, temp folders and the result record that
 * `run.ts` turns into an exit status.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { IMGTOOL_RUNTIME_FLAGS } from "../scripts/runtime_flags.ts";
import type { Facts } from "../tests/e2e/facts.ts";

/** The repository root (the folder holding `deno.json`). */
export const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

/** The Deno binary running this benchmark; children use the same one. */
export const DENO = Deno.execPath();

/** One goal of a benchmark, checked against a measured figure. */
export interface Goal {
  /** What is compared, e.g. "imgtool/openssl throughput". */
  readonly name: string;
  /** The measured value. */
  readonly value: number;
  /** `>=` or `<=` target. */
  readonly op: ">=" | "<=";
  /** The target. */
  readonly target: number;
  /** Unit or suffix for printing. */
  readonly unit?: string;
}

/** What a benchmark reports back to `run.ts`. */
export interface BenchResult {
  /** The benchmark's name. */
  readonly name: string;
  /** Whether it ran (`false`: skipped, with `reason`). */
  readonly ran: boolean;
  /** Why it was skipped. */
  readonly reason?: string;
  /** Its goals, measured. */
  readonly goals: readonly Goal[];
}

/** Whether a goal is met. */
export function met(goal: Goal): boolean {
  return goal.op === ">=" ? goal.value >= goal.target : goal.value <= goal.target;
}

/** Format a goal line: `ratio: 0.91 (goal >= 0.8; 114% of the goal): met`. */
export function goalLine(goal: Goal): string {
  const unit = goal.unit ?? "";
  const share = Math.round((goal.value / goal.target) * 100);
  const of = goal.op === ">=" ? "of the goal" : "of the limit";
  return `${goal.name}: ${fmt(goal.value)}${unit} (goal ${goal.op} ${goal.target}${unit}; ` +
    `${share}% ${of}): ${met(goal) ? "met" : "MISSED"}`;
}

/** A number with 3 significant digits (at least). */
export function fmt(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 10 ** digits) return Math.round(value).toString();
  return Number(value.toPrecision(digits)).toString();
}

/** Milliseconds, printed. */
export function ms(value: number): string {
  return `${value.toFixed(value < 100 ? 1 : 0)} ms`;
}

/** The median of some numbers. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The smallest of some numbers. */
export function min(values: readonly number[]): number {
  return Math.min(...values);
}

/** A table row for timed runs: label, median, min, and every run in whole milliseconds. */
export function timingRow(label: string, times: readonly number[]): string[] {
  return [label, ms(median(times)), ms(min(times)), times.map((t) => t.toFixed(0)).join(" ")];
}

/** Print a table with a header row; columns are left-aligned, numbers right-aligned. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((row) => (row[c] ?? "").length)));
  const numeric = header.map((_, c) => rows.every((row) => /^(-|\d.*)$/.test(row[c] ?? "")));
  const line = (row: readonly string[]) =>
    row.map((cell, c) => numeric[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))
      .join("  ").trimEnd();
  console.log(`  ${line(header)}`);
  console.log(`  ${widths.map((w) => "-".repeat(w)).join("  ")}`);
  for (const row of rows) console.log(`  ${line(row)}`);
}

/** A section heading. */
export function heading(title: string): void {
  console.log(`\n== ${title} ${"=".repeat(Math.max(0, 76 - title.length))}`);
}

/** Options of {@link run}. */
export interface RunOptions {
  readonly cwd?: string;
  readonly env?: Record<string, string>;
  /** Kill the process group after this many milliseconds (default 10 minutes). */
  readonly timeoutMs?: number;
  /** Start the child in a new session (`setsid`) so that a timeout kills its whole group. */
  readonly group?: boolean;
}

/** A finished child process, timed from spawn to exit. */
export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time in milliseconds, `performance.now()` around `output()`. */
  readonly ms: number;
  readonly timedOut: boolean;
}

/** Live children, so that an interrupt can kill them. */
const live = new Set<{ pid: number; group: boolean }>();

/** Kill every child still running (called on interrupt). */
export function killChildren(): void {
  for (const child of live) {
    try {
      Deno.kill(child.group ? -child.pid : child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  live.clear();
}

/**
 * Run a command to completion, timed with `performance.now()` around `output()`. Never
 * throws for a non-zero exit; throws only when the program cannot be started.
 */
export async function run(cmd: string, args: readonly string[], options: RunOptions = {}) {
  const group = options.group ?? false;
  const command = new Deno.Command(group ? "setsid" : cmd, {
    args: group ? [cmd, ...args] : [...args],
    cwd: options.cwd,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const started = performance.now();
  const child = command.spawn();
  const entry = { pid: child.pid, group };
  live.add(entry);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      Deno.kill(group ? -child.pid : child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }, options.timeoutMs ?? 600_000);
  try {
    const output = await child.output();
    const elapsed = performance.now() - started;
    return {
      code: output.code,
      stdout: new TextDecoder().decode(output.stdout),
      stderr: new TextDecoder().decode(output.stderr),
      ms: elapsed,
      timedOut,
    } satisfies RunResult;
  } finally {
    clearTimeout(timer);
    live.delete(entry);
  }
}

/** Run a command and throw (with its output) unless it exits 0. */
export async function runOk(
  cmd: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const result = await run(cmd, args, options);
  if (result.code !== 0 || result.timedOut) {
    const why = result.timedOut ? "timed out" : `exited with ${result.code}`;
    throw new Error(
      `${cmd} ${args.join(" ")} ${why}\n--- stdout ---\n${result.stdout.slice(-3000)}` +
        `\n--- stderr ---\n${result.stderr.slice(-3000)}`,
    );
  }
  return result;
}

/** GNU time, which reports a finished child's peak resident memory (`%M`, in KiB). */
const GNU_TIME = "/usr/bin/time";
/**
 * Times a command as a shell user does (bash's `time`, in milliseconds), so that what a
 * benchmark's own process costs to start a child is no part of anyone's time: `$1` is the
 * file the time goes to, the rest the command, whose output and status are its own.
 */
const SHELL_TIMER = 'out=$1; shift; TIMEFORMAT=%3R; { time "$@" 2>&3; } 3>&2 2>"$out"';
let tools: { gnuTime: boolean; bash: boolean } | undefined;

async function measuringTools(): Promise<{ gnuTime: boolean; bash: boolean }> {
  if (tools === undefined) {
    const probe = await run(GNU_TIME, ["-f", "%M", "true"]).catch(() => undefined);
    const bash = await run("bash", ["-c", "time true"]).catch(() => undefined);
    tools = {
      gnuTime: probe?.code === 0 && /^\d+\s*$/m.test(probe.stderr),
      bash: bash?.code === 0,
    };
  }
  return tools;
}

/** Whether {@link runMeasured} can report peak memory here (GNU time is installed). */
export async function canMeasureMemory(): Promise<boolean> {
  return (await measuringTools()).gnuTime;
}

/** A finished child: its time, and its peak resident memory in bytes when it could be read. */
export interface MeasuredResult extends RunResult {
  /** Peak resident memory (all its threads), in bytes; `undefined` without GNU time. */
  readonly peakBytes: number | undefined;
}

/**
 * {@link runOk} of `cmd`, timed as a shell user would time it (bash's `time`, where bash is
 * installed; else from this process, spawning included), with its peak resident memory: GNU
 * time reads it from the kernel when the child exits (`wait4`'s `ru_maxrss`, every thread
 * counted) and writes it to a file of its own, so the child's output stays untouched. `cpus`
 * (`taskset -c` syntax, e.g. `0` or `0,1`) pins the child to those cores. The time includes
 * exec'ing GNU time and taskset, a millisecond or so, for every command measured this way.
 */
export async function runMeasured(
  cmd: string,
  args: readonly string[],
  options: RunOptions & { readonly cpus?: string } = {},
): Promise<MeasuredResult> {
  const { gnuTime, bash } = await measuringTools();
  const dir = await makeTempDir("measure");
  try {
    const rss = join(dir, "rss"), elapsed = join(dir, "elapsed");
    const command = [
      ...(gnuTime ? [GNU_TIME, "-f", "%M", "-o", rss] : []),
      ...(options.cpus === undefined ? [] : ["taskset", "-c", options.cpus]),
      cmd,
      ...args,
    ];
    const [program, ...rest] = bash
      ? ["bash", "-c", SHELL_TIMER, "bash", elapsed, ...command]
      : command;
    const result = await runOk(program, rest, options);
    const seconds = bash ? Number((await Deno.readTextFile(elapsed)).trim()) : NaN;
    const kib = gnuTime ? Number((await Deno.readTextFile(rss)).trim().split("\n").at(-1)) : NaN;
    return {
      ...result,
      ms: Number.isFinite(seconds) ? seconds * 1000 : result.ms,
      peakBytes: Number.isFinite(kib) ? kib * 1024 : undefined,
    };
  } finally {
    await removeTempDir(dir);
  }
}

/** Temp folders made by {@link makeTempDir}, removed by {@link cleanup}. */
const temps = new Set<string>();

/** A new temp folder under `$IMGTOOL_BENCH_DIR` or `/tmp`, removed by {@link cleanup}. */
export async function makeTempDir(prefix: string): Promise<string> {
  const base = Deno.env.get("IMGTOOL_BENCH_DIR") || "/tmp";
  await Deno.mkdir(base, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: base, prefix: `imgtool-bench-${prefix}-` });
  temps.add(dir);
  return dir;
}

/** Remove one temp folder made by {@link makeTempDir}. */
export async function removeTempDir(dir: string): Promise<void> {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  temps.delete(dir);
}

/** Remove every temp folder still present (synchronously: also used on interrupt). */
export function cleanup(): void {
  for (const dir of temps) {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch {
      // already gone
    }
  }
  temps.clear();
}

/**
 * `deno run` arguments that run `entry` with the import map of `config` and the runtime
 * flags of `deno task imgtool` (its permissions and V8 flags), which the binaries embed.
 */
function runArgs(config: string, entry: string, args: string[]): string[] {
  return ["run", ...IMGTOOL_RUNTIME_FLAGS, `--config=${config}`, entry, ...args];
}

/** `deno run` arguments that run the imgtool CLI from this checkout's sources. */
export function imgtoolArgs(...args: string[]): string[] {
  return runArgs(join(ROOT, "deno.json"), join(ROOT, "cli.ts"), args);
}

/**
 * `deno run` arguments that run the bundled imgtool CLI in `bundle` (made by
 * scripts/bundle.ts): the code the binaries embed.
 */
export function bundledImgtoolArgs(bundle: string, ...args: string[]): string[] {
  return runArgs(join(bundle, "deno.json"), join(bundle, "cli.js"), args);
}

async function httpStatus(url: string, method = "GET", headers: HeadersInit = {}) {
  try {
    const response = await fetch(url, { method, headers, signal: AbortSignal.timeout(5000) });
    await response.body?.cancel();
    return response.status;
  } catch {
    return 0;
  }
}

/**
 * Why the e2e environment cannot run a benchmark that builds (the engine, the registry, the
 * Python base in it and, when asked, the package index), or `undefined` when it can.
 */
export async function e2eUnavailable(
  facts: Facts,
  options: { readonly docker?: string; readonly packageIndex?: boolean } = {},
): Promise<string | undefined> {
  const docker = options.docker ?? facts.DOCKER;
  const engine = await run(docker, ["version", "--format", "{{.Server.Version}}"], {
    timeoutMs: 15_000,
  }).catch(() => undefined);
  if (!engine || engine.code !== 0) {
    return `the Docker engine does not answer ${docker} version (tests/e2e/env.sh up starts it)`;
  }
  const registry = await httpStatus(`http://${facts.REGISTRY}/v2/`);
  if (registry !== 200) {
    return `the registry ${facts.REGISTRY} answers GET /v2/ with ${registry || "nothing"}`;
  }
  if (options.packageIndex) {
    const index = await httpStatus(facts.PACKAGE_INDEX);
    if (index !== 200) {
      return `the package index ${facts.PACKAGE_INDEX} answers ${index || "nothing"}`;
    }
  }
  const base = facts.PYTHON_BASE.match(/^([^/]+)\/(.+):([^:/]+)$/);
  if (!base) return `PYTHON_BASE ${facts.PYTHON_BASE} is not host/name:tag`;
  const accept = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
  ].join(", ");
  const manifest = await httpStatus(
    `http://${base[1]}/v2/${base[2]}/manifests/${base[3]}`,
    "HEAD",
    { accept },
  );
  if (manifest !== 200) return `the base image ${facts.PYTHON_BASE} is not in the registry`;
  return undefined;
}
