/**
 * Errors a user can meet. Each says what went wrong, where, and what to do;
 * the CLI prints them without a stack trace and exits with their `exitCode`.
 * Anything that is not an {@link ImgtoolError} is our bug and is printed whole.
 *
 * @module
 */

/**
 * A problem found in a spec, as validation reports it. An error (the default) makes the spec
 * invalid: nothing is built and the command exits with status 2. A `severity: "warning"`
 * points out something that is probably not what the user meant but is valid as written:
 * it is printed (as `warning:`, after the errors), and never changes the exit status or stops
 * a build.
 *
 * @example
 * ```ts
 * import { type Diagnostic, definePlugin } from "imgtool";
 * export const exposePort = definePlugin<{ readonly port: number }>({
 *   name: "expose_port",
 *   validate(options): Diagnostic[] {
 *     if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
 *       return [{ message: `port ${options.port} is out of range`, hint: "use 1 to 65535" }];
 *     }
 *     if (options.port < 1024) {
 *       return [{
 *         severity: "warning",
 *         message: `port ${options.port} needs root to listen on`,
 *         hint: "use a port from 1024 up, or ignore this if the image runs as root",
 *       }];
 *     }
 *     return [];
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
  /**
   * `"error"` (the default): the spec is invalid. `"warning"`: reported, but the spec is
   * valid; for what is allowed yet rarely meant (a literal `$PATH` in a value).
   */
  severity?: "error" | "warning";
}

/**
 * Is the diagnostic a warning (reported, but the spec stays valid)? Anything but
 * `severity: "warning"` is an error.
 *
 * @example
 * ```ts
 * import { isWarning } from "imgtool";
 * console.log(isWarning({ message: "a", severity: "warning" }), isWarning({ message: "b" })); // true false
 * ```
 */
export function isWarning(diagnostic: Diagnostic): boolean {
  return diagnostic.severity === "warning";
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
 * Every problem validation found, reported at once (exit status 2). The warnings found
 * alongside travel with it, so that they are reported after the errors.
 *
 * @example
 * ```ts
 * import { ValidationError } from "imgtool";
 * const error = new ValidationError([
 *   { message: "file not found: req.txt" },
 *   { message: "ENV PATH holds \"$PATH\", which stays literal", severity: "warning" },
 * ]);
 * console.log(error.diagnostics.length, error.message.split("\n")[0]); // 2 1 problem found:
 * ```
 */
export class ValidationError extends ImgtoolError {
  /** The problems, in spec order, and any warnings ({@link isWarning}). */
  readonly diagnostics: readonly Diagnostic[];

  /** Make a validation error from its diagnostics. */
  constructor(diagnostics: readonly Diagnostic[]) {
    const errors = diagnostics.filter((d) => !isWarning(d));
    const warnings = diagnostics.filter(isWarning);
    const count = errors.length;
    super(
      `${count} problem${count === 1 ? "" : "s"} found:\n${formatDiagnostics(errors)}${
        warnings.length > 0 ? `\n${formatWarnings(warnings)}` : ""
      }`,
      { exitCode: 2 },
    );
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
 * Render diagnostics as an indented list, one problem per entry (a warning marked `warning:`).
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
  const lines = [`  - ${isWarning(d) ? "warning: " : ""}${located(d)}`];
  if (d.callSite) lines.push(`    at ${d.callSite}`);
  if (d.hint) lines.push(`    fix: ${d.hint}`);
  return lines.join("\n");
}

/**
 * Render warnings as `warning:` lines, each with where it was found and its hint;
 * errors among `diagnostics` are left out.
 *
 * @example
 * ```ts
 * import { formatWarnings } from "imgtool";
 * const warning = {
 *   severity: "warning",
 *   image: "default",
 *   message: "port 80 needs root to listen on",
 *   hint: "use a port from 1024 up",
 * } as const;
 * console.log(formatWarnings([warning, { message: "an error, left out" }])); // warning: image "default": port 80 needs root to listen on
 * //   hint: use a port from 1024 up
 * ```
 */
export function formatWarnings(diagnostics: readonly Diagnostic[]): string {
  return diagnostics.filter(isWarning).map((d) => {
    const lines = [`warning: ${located(d)}`];
    if (d.callSite) lines.push(`  at ${d.callSite}`);
    if (d.hint) lines.push(`  hint: ${d.hint}`);
    return lines.join("\n");
  }).join("\n");
}

/** The diagnostic's message, led by the image and the layer it was found in. */
function located(d: Diagnostic): string {
  const where = [
    d.image !== undefined ? `image "${d.image}"` : undefined,
    d.layer ? `layer ${d.layer.index} (${d.layer.method}, plugin ${d.layer.plugin})` : undefined,
  ].filter(Boolean).join(", ");
  return `${where ? `${where}: ` : ""}${d.message}`;
}

/**
 * An operating-system error met on a path (permission denied, no space left, a name too
 * long, ...), said as a sentence: what failed, on which path, and how to fix it. Made by
 * {@link systemError}; `code` is the system's name for the error (`EACCES`, `ENOSPC`).
 *
 * @example
 * ```ts
 * import { SystemError } from "imgtool";
 * const error = new SystemError("cannot write /out/Dockerfile: no space left on device", {
 *   code: "ENOSPC",
 *   path: "/out/Dockerfile",
 *   hint: "free some space",
 *   exitCode: 1,
 * });
 * console.log(error.code, error.exitCode); // ENOSPC 1
 * ```
 */
export class SystemError extends ImgtoolError {
  /** The system's name for the error (`EACCES`, `ENOSPC`, `ENAMETOOLONG`, ...). */
  readonly code: string;
  /** The path the failing operation was on, when the system said. */
  readonly path?: string;

  /** Make a system error. */
  constructor(
    message: string,
    options: { code: string; path?: string; hint?: string; exitCode: 1 | 2; cause?: unknown },
  ) {
    super(message, options);
    this.name = "SystemError";
    this.code = options.code;
    this.path = options.path;
  }
}

/** What {@link systemError} may be told about the failed operation. */
export interface SystemErrorOptions {
  /** What imgtool was doing, to lead the message: "writing the build context to /out". */
  readonly doing?: string;
  /** The exit status, when the caller knows better than the error's kind. */
  readonly exitCode?: 1 | 2;
  /** A hint to use instead of the one the error's kind suggests. */
  readonly hint?: string;
  /** Paths to show as others in the message: a staging folder as the folder it becomes. */
  readonly rename?: readonly (readonly [from: string, to: string])[];
}

// Errors that are the machine's, not a wrong path: no fix in the spec or the command line.
const ENVIRONMENT_CODES = new Set([
  "ENOSPC",
  "EDQUOT",
  "EROFS",
  "EIO",
  "EMFILE",
  "ENFILE",
  "ENOMEM",
  "EBUSY",
  "ETXTBSY",
  "EAGAIN",
]);

// Linux errno numbers of the codes below, for errors that carry only the number.
const ERRNO_CODES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  5: "EIO",
  12: "ENOMEM",
  13: "EACCES",
  16: "EBUSY",
  17: "EEXIST",
  18: "EXDEV",
  20: "ENOTDIR",
  21: "EISDIR",
  23: "ENFILE",
  24: "EMFILE",
  26: "ETXTBSY",
  28: "ENOSPC",
  30: "EROFS",
  36: "ENAMETOOLONG",
  39: "ENOTEMPTY",
  40: "ELOOP",
  122: "EDQUOT",
};

// How Deno names the operation in its messages ("readdir '/x'"), as a verb for people.
const OPERATIONS: Record<string, string> = {
  open: "open",
  readfile: "read",
  readdir: "list the folder",
  stat: "look up",
  lstat: "look up",
  realpath: "resolve",
  writefile: "write",
  copy: "copy",
  mkdir: "create the folder",
  tmpdir: "create a temporary folder",
  rename: "move",
  remove: "remove",
  chmod: "change the mode of",
  chown: "change the owner of",
  symlink: "create the link",
  readlink: "read the link",
  link: "link",
  truncate: "truncate",
  utime: "set the times of",
};

/**
 * An operating-system error on a path (what `Deno.readDir`, `Deno.writeFile`, ... throw) as
 * a {@link SystemError} that says what failed, where, and how to fix it, without a stack
 * trace; `undefined` for any other value. Out of space, a read-only file system, an I/O
 * error and too many open files are the environment's (exit status 1); the rest (permission
 * denied, a name too long, a file where a folder should be) are about a path the user gave
 * (exit status 2), unless `options.exitCode` says otherwise.
 *
 * @example
 * ```ts
 * import { systemError } from "imgtool";
 * try {
 *   Deno.readDirSync("/etc/hostname");
 * } catch (error) {
 *   const said = systemError(error, { doing: "listing the sources" });
 *   console.log(said?.message, said?.exitCode);
 *   // listing the sources: cannot list the folder /etc/hostname: not a directory 2
 * }
 * ```
 */
export function systemError(
  error: unknown,
  options: SystemErrorOptions = {},
): SystemError | undefined {
  if (!(error instanceof Error) || error instanceof ImgtoolError) return undefined;
  const parsed = /^(.*?) \(os error (\d+)\)(?:: ([a-z_]+)(?: '(.*?)'(?: -> '(.*)')?)?)?$/s
    .exec(error.message);
  const errno = parsed ? Number(parsed[2]) : undefined;
  const code = (error as { code?: unknown }).code;
  const name = typeof code === "string" && /^E[A-Z]+$/.test(code)
    ? code
    : errno !== undefined
    ? ERRNO_CODES[errno] ?? `errno ${errno}`
    : undefined;
  // Network errors look alike ("Connection refused (os error 111)"): only a file-system
  // operation, or a file-system error, is said here.
  const fileSystem = parsed?.[3] !== undefined ||
    Object.values(ERRNO_CODES).includes(name ?? "");
  if (!parsed || name === undefined || !fileSystem) return undefined;
  const shown = (path: string | undefined) => {
    if (path === undefined) return undefined;
    for (const [from, to] of options.rename ?? []) {
      if (path === from || path.startsWith(`${from}/`)) return `${to}${path.slice(from.length)}`;
    }
    return path;
  };
  const [, reasonText, , operation, rawPath, rawTarget] = parsed;
  const path = shown(rawPath);
  const target = shown(rawTarget);
  const reason = reasonText.charAt(0).toLowerCase() + reasonText.slice(1);
  const verb = operation === undefined ? "do that" : OPERATIONS[operation] ?? operation;
  const what = `cannot ${verb}${path === undefined ? "" : ` ${path}`}${
    target === undefined ? "" : ` to ${target}`
  }: ${reason}`;
  const writing = operation !== undefined &&
    ["writefile", "copy", "mkdir", "tmpdir", "rename", "symlink", "chmod", "link"]
      .includes(operation);
  return new SystemError(options.doing ? `${options.doing}: ${what}` : what, {
    code: name,
    path: (writing ? target : undefined) ?? path,
    hint: options.hint ?? systemErrorHint(name, { path, target, writing }),
    exitCode: options.exitCode ?? (ENVIRONMENT_CODES.has(name) ? 1 : 2),
    cause: error,
  });
}

/** How to fix an error of kind `code` met on `path` (copied to `target`, if it was copied). */
function systemErrorHint(
  code: string,
  where: { path?: string; target?: string; writing: boolean },
): string {
  const it = where.target ?? where.path ?? "the path";
  switch (code) {
    case "EACCES":
    case "EPERM": {
      const needs = where.target !== undefined
        ? `read ${where.path} and write ${where.target}`
        : `${where.writing ? "write" : "read"} ${it}`;
      return `let the user running imgtool (uid ${uid()}) ${needs} (ls -ld shows owners and ` +
        "modes; a folder also needs x to be entered), or use another path";
    }
    case "ENOSPC":
    case "EDQUOT": {
      if (where.target === undefined && where.path === undefined) {
        return "free some space on the disk, or write elsewhere";
      }
      // The place may be gone (a build context is removed after a failure): its nearest
      // folder that is still there is on the same file system.
      const folder = existingFolderOf(it);
      const temporary = temporaryFolder();
      return `free some space on the file system of ${folder} (df -h ${folder}), or ${
        sameFileSystem(folder, temporary)
          ? "point TMPDIR at a file system with room (build contexts are written in the " +
            `temporary folder, ${temporary})`
          : "write elsewhere"
      }`;
    }
    case "EROFS":
      return `the file system that holds ${it} is read-only: write elsewhere`;
    case "ENAMETOOLONG":
      return "shorten the path: a file or folder name may have at most 255 bytes, a whole path " +
        "4095";
    case "ENOTDIR":
      return `a part of ${it} is a file where a folder should be: check the path`;
    case "EISDIR":
      return `${it} is a folder: name a file`;
    case "ENOENT":
      return `check the path: ${it} or a folder above it does not exist`;
    case "EEXIST":
    case "ENOTEMPTY":
      return `${it} exists: remove it, or use another path`;
    case "ELOOP":
      return `symbolic links on ${it} lead round in a loop: fix or remove them`;
    case "EMFILE":
    case "ENFILE":
      return "too many files are open: raise the limit (ulimit -n) and run again";
    case "EIO":
      return `the device that holds ${it} reported an error: check the disk`;
    default:
      return `check ${it} and the file system that holds it`;
  }
}

/** The folder of `path`, or the nearest folder above it that exists. */
function existingFolderOf(path: string): string {
  let folder = path;
  do {
    folder = folder.slice(0, folder.lastIndexOf("/")) || "/";
    try {
      if (Deno.statSync(folder).isDirectory) return folder;
    } catch {
      // Gone, or never made: look further up.
    }
  } while (folder !== "/");
  return "/";
}

/** Are `a` and `b` on one file system (one device)? */
function sameFileSystem(a: string, b: string): boolean {
  try {
    return Deno.statSync(a).dev === Deno.statSync(b).dev;
  } catch {
    return false;
  }
}

/** Where temporary files go, as `Deno.makeTempDir` decides: TMPDIR, else /tmp. */
function temporaryFolder(): string {
  try {
    return (Deno.env.get("TMPDIR") || "/tmp").replace(/(.)\/+$/, "$1");
  } catch {
    return "/tmp";
  }
}

function uid(): string {
  try {
    return String(Deno.uid() ?? "?");
  } catch {
    return "?";
  }
}
