/**
 * How the CLI talks: results on standard output (plain or JSON), progress and errors on
 * standard error. A user's mistake, and an operating-system error on a path (permission
 * denied, no space left), is printed as what, where and how to fix it, without a stack
 * trace; anything else is our bug and is printed whole. With `--json`, every failure is
 * also a JSON object on standard output: `{ "ok": false, "error": { kind, message, ... } }`.
 * Validation warnings go to standard error as `warning:` lines (in `--json` output, as
 * diagnostics with `severity: "warning"`), and never change the exit status.
 *
 * @module
 */

import {
  type Diagnostic,
  formatDiagnostics,
  formatWarnings,
  ImgtoolError,
  isWarning,
  systemError,
  ValidationError,
} from "../errors.ts";

const encoder = new TextEncoder();

/** Write a line to standard output. */
export function out(line: string): void {
  Deno.stdout.writeSync(encoder.encode(`${line}\n`));
}

/** Write a line to standard error. */
export function err(line: string): void {
  Deno.stderr.writeSync(encoder.encode(`${line}\n`));
}

/** Write a value as JSON to standard output. */
export function outJson(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

/**
 * Diagnostics as `--json` output gives them: each with its `severity` spelled out.
 *
 * @example
 * ```ts
 * import { diagnosticsJson } from "./output.ts";
 * const [said] = diagnosticsJson([{ message: "file not found: req.txt" }]);
 * console.log(said.severity); // error
 * ```
 */
export function diagnosticsJson(
  diagnostics: readonly Diagnostic[],
): (Diagnostic & { severity: "error" | "warning" })[] {
  return diagnostics.map((d) => ({ ...d, severity: isWarning(d) ? "warning" : "error" }));
}

/**
 * Print the warnings validation found, as `warning:` lines on standard error; nothing when
 * there are none (errors among them are left out: they are reported as errors).
 *
 * @example
 * ```ts
 * import { reportWarnings } from "./output.ts";
 * reportWarnings([{ severity: "warning", message: "port 80 needs root to listen on" }]);
 * ```
 */
export function reportWarnings(warnings: readonly Diagnostic[]): void {
  if (warnings.some(isWarning)) err(formatWarnings(warnings));
}

/**
 * Print an error for a user and return the exit status it calls for: an
 * {@link ImgtoolError}'s own, 1 for anything else.
 */
export function reportError(thrown: unknown, json: boolean): number {
  // A file-system error that no stage said in its own words is still a sentence.
  const error = systemError(thrown) ?? thrown;
  if (error instanceof ImgtoolError) {
    // A validation error's warnings are reported after its problems, and not counted.
    const diagnostics = error instanceof ValidationError ? error.diagnostics : [];
    const problems = diagnostics.filter((d) => !isWarning(d));
    if (json) {
      outJson({
        ok: false,
        error: {
          kind: error.name,
          message: error instanceof ValidationError
            ? `${problems.length} problem(s) found`
            : error.message,
          hint: error.hint,
          diagnostics: error instanceof ValidationError ? diagnosticsJson(diagnostics) : undefined,
          output: (error as { output?: string }).output,
          code: (error as { code?: string }).code,
          path: (error as { path?: string }).path,
        },
      });
    } else if (error instanceof ValidationError) {
      err(`error: ${problems.length} problem${problems.length === 1 ? "" : "s"} found`);
      err(formatDiagnostics(problems));
      reportWarnings(diagnostics);
    } else {
      err(`error: ${error.message}`);
      const output = (error as { output?: string }).output;
      if (output) err(`--- output of the failing step ---\n${output}\n---`);
      if (error.hint) err(`hint: ${error.hint}`);
    }
    return error.exitCode;
  }
  if (json) {
    outJson({
      ok: false,
      error: {
        kind: "InternalError",
        message: error instanceof Error ? error.message : String(error),
        hint: "this is a bug in imgtool: please report it with the text on standard error",
      },
    });
  }
  err("imgtool hit an internal error (a bug: please report it with the text below)");
  err(error instanceof Error ? (error.stack ?? error.message) : String(error));
  return 1;
}
