/**
 * A stand-in for the builder's command runner (`BuilderContext.exec`): it records every
 * command a builder plugin runs and answers as the tool would, so that the plugin's real
 * code builds its real command lines without Docker or buildah on the machine.
 *
 * @module
 */

import type { ExecOptions, ExecResult } from "../mod.ts";

/** One command a builder ran. */
export interface ToolCall {
  /** The program. */
  readonly command: string;
  /** Its arguments. */
  readonly args: readonly string[];
  /** The extra environment it was given. */
  readonly env: Readonly<Record<string, string>>;
  /** Whether it was given a stop signal. */
  readonly signal?: AbortSignal;
}

/** How the stand-in tool answers one call: exit code, output lines, standard output. */
export interface ToolAnswer {
  readonly code?: number;
  readonly stdout?: string;
  /** Lines streamed to `onLine`, as the tool prints them. */
  readonly lines?: readonly string[];
}

/** A runner and what it recorded. */
export interface RecordingExec {
  /** Pass as `BuilderContext.exec`. */
  readonly exec: (command: string, options: ExecOptions) => Promise<ExecResult>;
  /** Every call so far, in order. */
  readonly calls: ToolCall[];
}

/**
 * A runner that records each call and answers with `answer(call)` (exit 0, no output when it
 * returns nothing). `answer` runs while the call is in progress, so it can look at the files
 * the command was handed (build contexts and secret files exist only then).
 *
 * @example
 * ```ts
 * import { recordingExec } from "./recording_exec.ts";
 * const runner = recordingExec((call) => ({ stdout: `${call.args.join(" ")}\n` }));
 * const result = await runner.exec("docker", { args: ["version"] });
 * console.log(result.stdout.trim(), runner.calls.length); // version 1
 * ```
 */
export function recordingExec(
  answer: (call: ToolCall) => ToolAnswer | void | Promise<ToolAnswer | void>,
): RecordingExec {
  const calls: ToolCall[] = [];
  return {
    calls,
    async exec(command, options) {
      const call: ToolCall = {
        command,
        args: [...options.args],
        env: { ...options.env },
        signal: options.signal,
      };
      calls.push(call);
      const answered = (await answer(call)) ?? {};
      const lines = [...(answered.lines ?? [])];
      for (const line of lines) options.onLine?.(line);
      const stdout = answered.stdout ?? "";
      return {
        code: answered.code ?? 0,
        stdout,
        stderr: "",
        tail: [...lines, ...stdout.split("\n").filter(Boolean)].slice(-40).join("\n"),
      };
    },
  };
}

/**
 * The value of `--flag VALUE` (or `--flag=VALUE`) in `args`, every time it occurs.
 *
 * @example
 * ```ts
 * import { flagValues } from "./recording_exec.ts";
 * console.log(flagValues(["--secret", "id=a", "--secret=id=b", "--tag", "x"], "--secret"));
 * // [ "id=a", "id=b" ]
 * ```
 */
export function flagValues(args: readonly string[], flag: string): string[] {
  const values: string[] = [];
  args.forEach((arg, index) => {
    if (arg === flag && index + 1 < args.length) values.push(args[index + 1]);
    else if (arg.startsWith(`${flag}=`)) values.push(arg.slice(flag.length + 1));
  });
  return values;
}

/**
 * The fields of a BuildKit option value: `id=X,src=/f,type=file` → `{ id: "X", ... }`.
 *
 * @example
 * ```ts
 * import { optionFields } from "./recording_exec.ts";
 * console.log(optionFields("id=TOKEN,src=/run/s/TOKEN")); // { id: "TOKEN", src: "/run/s/TOKEN" }
 * ```
 */
export function optionFields(value: string): Record<string, string> {
  return Object.fromEntries(
    value.split(",").map((field) => {
      const at = field.indexOf("=");
      return at < 0 ? [field, ""] : [field.slice(0, at), field.slice(at + 1)];
    }),
  );
}
