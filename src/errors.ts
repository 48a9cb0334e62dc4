/**
 * Errors a user can meet. Each says what went wrong, where, and what to do;
 * the CLI prints them without a stack trace and exits with their `exitCode`.
 * Anything that is not an {@link ImgtoolError} is our bug and is printed whole.
 *
 * @module
 */

/**
 * A problem found in a spec, as validation reports it.
 *
 * @example
 * ```ts
 * import { type Diagnostic, definePlugin } from "imgtool";
 * export const exposePort = definePlugin<{ readonly port: number }>({
 *   name: "expose_port",
 *   validate(options): Diagnostic[] {
 *     if (Number.isInteger(options.port) && options.port > 0 && options.port < 65536) return [];
 *     return [{ message: `port ${options.port} is out of range`, hint: "use 1 to 65535" }];
 *   },
 *   render: (options) => ({ instructions: [`EXPOSE ${options.port}`] }),
 * });
 * ```
 */
export interface Diagnostic {
  /** What is wrong, in one sentence. */
  message: string;
  /** How to fix it. */
  hint?: string;
  /** The file the problem is about, if any. */
  file?: string;
  /** The image the problem was found in (its export name). */
  image?: string;
  /** The layer: its plugin name and the method the user called. */
  layer?: { plugin: string; method: string; index: number };
  /** Where the user called the method (spec file and line). */
  callSite?: string;
}

/**
 * The base of every error imgtool reports to a user.
 *
 * @example
 * ```ts
 * import { ImgtoolError } from "imgtool";
 * const error = new ImgtoolError("the registry is unreachable", { hint: "start it", exitCode: 1 });
 * console.log(error.exitCode); // 1
 * ```
 */
export class ImgtoolError extends Error {
  /** How to fix the problem, shown under the message. */
  readonly hint?: string;
  /** The process exit status: 1 for build, push and registry failures, 2 for user mistakes. */
  readonly exitCode: 1 | 2;

  /** Make an error; `exitCode` defaults to 1. */
  constructor(message: string, options: { hint?: string; exitCode?: 1 | 2; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = "ImgtoolError";
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? 1;
  }
}

/**
 * A mistake in the command line or the configuration (exit status 2).
 *
 * @example
 * ```ts
 * import { UsageError } from "imgtool";
 * const error = new UsageError("unknown flag --fast", { hint: "see imgtool build --help" });
 * console.log(error.exitCode); // 2
 * ```
 */
export class UsageError extends ImgtoolError {
  /** Make a usage error. */
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, { ...options, exitCode: 2 });
    this.name = "UsageError";
  }
}

/**
 * A spec that could not be loaded: it does not exist, does not compile, throws, or
 * exports no image (exit status 2).
 *
 * @example
 * ```ts
 * import { SpecError } from "imgtool";
 * const error = new SpecError("spec.ts exports no Image");
 * console.log(error.exitCode); // 2
 * ```
 */
export class SpecError extends ImgtoolError {
  /** Make a spec error. */
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, { ...options, exitCode: 2 });
    this.name = "SpecError";
  }
}

/**
 * Every problem validation found, reported at once (exit status 2).
 *
 * @example
 * ```ts
 * import { ValidationError } from "imgtool";
 * const error = new ValidationError([{ message: "file not found: req.txt" }]);
 * console.log(error.diagnostics.length); // 1
 * ```
 */
export class ValidationError extends ImgtoolError {
  /** The problems, in spec order. */
  readonly diagnostics: readonly Diagnostic[];

  /** Make a validation error from its diagnostics. */
  constructor(diagnostics: readonly Diagnostic[]) {
    const count = diagnostics.length;
    super(`${count} problem${count === 1 ? "" : "s"} found:\n${formatDiagnostics(diagnostics)}`, {
      exitCode: 2,
    });
    this.name = "ValidationError";
    this.diagnostics = diagnostics;
  }
}

/**
 * A build, push or registry failure (exit status 1).
 *
 * @example
 * ```ts
 * import { BuildError } from "imgtool";
 * const error = new BuildError("step 3 failed", { output: "E: Unable to locate package nope" });
 * console.log(error.output);
 * ```
 */
export class BuildError extends ImgtoolError {
  /** The tail of the failing step's output, when there is one. */
  readonly output?: string;
  /** The failing step as the builder names it (`RUN apt-get ...`), when known. */
  readonly step?: string;

  /** Make a build error. */
  constructor(
    message: string,
    options: { hint?: string; output?: string; step?: string; cause?: unknown } = {},
  ) {
    super(message, { ...options, exitCode: 1 });
    this.name = "BuildError";
    this.output = options.output;
    this.step = options.step;
  }
}

/**
 * Render diagnostics as an indented list, one problem per entry.
 *
 * @example
 * ```ts
 * import { defaultConfig, formatDiagnostics, Image, planImage, validateImages } from "imgtool";
 * const image = Image.fromBase("debian:bookworm").withEnvVars({ "1BAD": "x" });
 * const problems = await validateImages([planImage(image, "default", defaultConfig())]);
 * console.log(formatDiagnostics(problems));
 * //   - image "default", layer 1 (withEnvVars, plugin env_vars): ...
 * ```
 */
export function formatDiagnostics(diagnostics: readonly Diagnostic[]): string {
  return diagnostics.map(formatDiagnostic).join("\n");
}

function formatDiagnostic(d: Diagnostic): string {
  const where = [
    d.image !== undefined ? `image "${d.image}"` : undefined,
    d.layer ? `layer ${d.layer.index} (${d.layer.method}, plugin ${d.layer.plugin})` : undefined,
  ].filter(Boolean).join(", ");
  const lines = [`  - ${where ? `${where}: ` : ""}${d.message}`];
  if (d.callSite) lines.push(`    at ${d.callSite}`);
  if (d.hint) lines.push(`    fix: ${d.hint}`);
  return lines.join("\n");
}
