/**
 * How the CLI talks: results on standard output (plain or JSON), progress and errors on
 * standard error. A user's mistake, and an operating-system error on a path (permission
 * denied, no space left), is printed as what, where and how to fix it, without a stack
 * trace; anything else is our bug and is printed whole. With `--json`, every failure is
 * also a JSON object on standard output: `{ "ok": false, "error": { kind, message, ... } }`.
 *
 * @module
 */

import { formatDiagnostics, ImgtoolError, systemError, ValidationError } from "../errors.ts";

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
 * Print an error for a user and return the exit status it calls for: an
 * {@link ImgtoolError}'s own, 1 for anything else.
 */
export function reportError(thrown: unknown, json: boolean): number {
  // A file-system error that no stage said in its own words is still a sentence.
  const error = systemError(thrown) ?? thrown;
  if (error instanceof ImgtoolError) {
    if (json) {
      outJson({
        ok: false,
        error: {
          kind: error.name,
          message: error instanceof ValidationError
            ? `${error.diagnostics.length} problem(s) found`
            : error.message,
          hint: error.hint,
          diagnostics: error instanceof ValidationError ? error.diagnostics : undefined,
          output: (error as { output?: string }).output,
          code: (error as { code?: string }).code,
          path: (error as { path?: string }).path,
        },
      });
    } else if (error instanceof ValidationError) {
      err(
        `error: ${error.diagnostics.length} problem${
          error.diagnostics.length === 1 ? "" : "s"
        } found`,
      );
      err(formatDiagnostics(error.diagnostics));
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
