/**
 * Small file-system questions and reads, answered with Deno's API (not `node:fs`, whose
 * import would start the Node compatibility layer: see `src/path.ts`).
 *
 * @module
 */

import { UsageError } from "./errors.ts";

/**
 * Is there anything at `path` (following symbolic links)?
 *
 * @example
 * ```ts
 * import { exists } from "./fs.ts";
 * console.log(exists("/"), exists("/no/such/path")); // true false
 * ```
 */
export function exists(path: string): boolean {
  return statOrUndefined(path) !== undefined;
}

/**
 * Is `path` a regular file (following symbolic links)?
 *
 * @example
 * ```ts
 * import { isFile } from "./fs.ts";
 * console.log(isFile("/"), isFile("/etc/hostname")); // false true
 * ```
 */
export function isFile(path: string): boolean {
  return statOrUndefined(path)?.isFile ?? false;
}

/**
 * Is `path` a folder (following symbolic links)?
 *
 * @example
 * ```ts
 * import { isDirectory } from "./fs.ts";
 * console.log(isDirectory("/"), isDirectory("/etc/hostname")); // true false
 * ```
 */
export function isDirectory(path: string): boolean {
  return statOrUndefined(path)?.isDirectory ?? false;
}

function statOrUndefined(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.statSync(path);
  } catch {
    return undefined;
  }
}

/** How {@link writeWholeSync} writes. */
export interface WriteWholeOptions {
  /** The new file's permission bits (default: 0666 less the umask). */
  readonly mode?: number;
  /** Its modification time (milliseconds since the epoch), set before it takes the name. */
  readonly mtime?: number;
  /**
   * Make the folder first, as `mkdir -p` does (default). Not for a folder that must be
   * private: one made here has the umask's permissions.
   */
  readonly makeFolder?: boolean;
}

/**
 * Write `content` (text as UTF-8, bytes, or a function that hands its bytes over in pieces) to
 * `file` whole: into a new temporary file beside
 * it, then renamed into place, so a reader at the same moment (another build) sees the old
 * content or the new, never half of it, and whatever was at the name is replaced, not written
 * through. For what imgtool remembers between runs, where a failed write only loses a saving:
 * returns whether it was written, and leaves no temporary file behind.
 *
 * @example
 * ```ts
 * import { writeWholeSync } from "./fs.ts";
 * const dir = Deno.makeTempDirSync();
 * console.log(writeWholeSync(`${dir}/cache/entry.json`, "{}\n")); // true
 * console.log(Deno.readTextFileSync(`${dir}/cache/entry.json`)); // {}
 * console.log(writeWholeSync(`${dir}/key.bin`, new Uint8Array([1]), { mode: 0o600 })); // true
 * const pieces = (write: (bytes: Uint8Array) => void) => [[1], [2, 3]].forEach((p) => write(new Uint8Array(p)));
 * console.log(writeWholeSync(`${dir}/pieces.bin`, pieces), Deno.readFileSync(`${dir}/pieces.bin`)); // true Uint8Array(3) [ 1, 2, 3 ]
 * ```
 */
export function writeWholeSync(
  file: string,
  content: string | Uint8Array | ((write: (bytes: Uint8Array) => void) => void),
  options: WriteWholeOptions = {},
): boolean {
  const temporary = `${file}.${Deno.pid}.${crypto.randomUUID()}.tmp`;
  try {
    if (options.makeFolder !== false) {
      Deno.mkdirSync(file.slice(0, file.lastIndexOf("/")) || "/", { recursive: true });
    }
    const how = { createNew: true, ...(options.mode === undefined ? {} : { mode: options.mode }) };
    if (typeof content === "string") Deno.writeTextFileSync(temporary, content, how);
    else if (content instanceof Uint8Array) Deno.writeFileSync(temporary, content, how);
    else {
      using out = Deno.openSync(temporary, { write: true, ...how });
      content((bytes) => writeAllSync(out, bytes));
    }
    if (options.mtime !== undefined) {
      Deno.utimeSync(temporary, new Date(options.mtime), new Date(options.mtime));
    }
    Deno.renameSync(temporary, file);
    return true;
  } catch {
    try {
      Deno.removeSync(temporary);
    } catch {
      // It was never written.
    }
    return false;
  }
}

/**
 * Write all of `bytes` to `file` (a write may take fewer bytes than it is given).
 *
 * @example
 * ```ts
 * import { writeAllSync } from "./fs.ts";
 * const path = Deno.makeTempFileSync();
 * using file = Deno.openSync(path, { write: true });
 * writeAllSync(file, new TextEncoder().encode("hello"));
 * console.log(Deno.readTextFileSync(path)); // hello
 * ```
 */
export function writeAllSync(file: Deno.FsFile, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length;) at += file.writeSync(bytes.subarray(at));
}

/**
 * The most a file read whole may hold unless the caller says otherwise: 16 MiB, far more than
 * any spec, Dockerfile, requirements, pyproject, `.dockerignore` or secret needs.
 *
 * @example
 * ```ts
 * import { WHOLE_FILE_LIMIT } from "./fs.ts";
 * console.log(WHOLE_FILE_LIMIT / 1024 / 1024); // 16
 * ```
 */
export const WHOLE_FILE_LIMIT = 16 * 1024 * 1024;

/**
 * A file that cannot be read whole: missing, not a regular file (a folder, a named pipe, a
 * device, which could block or never end), larger than the limit, or unreadable. Its message
 * names the file; `reason` says which case it is (exit status 2: the file was named wrongly).
 *
 * @example
 * ```ts
 * import { FileReadError, readWholeTextSync } from "./fs.ts";
 * try {
 *   readWholeTextSync("/dev/zero");
 * } catch (error) {
 *   if (error instanceof FileReadError) console.log(error.reason, error.message);
 *   // not-a-file /dev/zero is a character device, not a regular file
 * }
 * ```
 */
export class FileReadError extends UsageError {
  /** The file. */
  readonly path: string;
  /** Which case it is. */
  readonly reason: "missing" | "not-a-file" | "too-large" | "unreadable";

  /** Make an error for `path`. */
  constructor(
    path: string,
    reason: FileReadError["reason"],
    message: string,
    options: { hint: string; cause?: unknown },
  ) {
    super(message, options);
    this.name = "FileReadError";
    this.path = path;
    this.reason = reason;
  }
}

/** Options for {@link readWholeText} and {@link readWholeTextSync}. */
export interface ReadWholeOptions {
  /** The most the file may hold, in bytes (default {@link WHOLE_FILE_LIMIT}). */
  readonly limit?: number;
  /** What the file is to the user, for messages ("requirements file"); default "file". */
  readonly what?: string;
}

/**
 * Why {@link readWholeTextSync} would refuse `path`, from its stat alone (nothing is opened),
 * or `undefined` when it is a regular file within the limit. For validation: a layer can name
 * a pipe or a device for what it is, where `isFile` alone would say "not found".
 *
 * @example
 * ```ts
 * import { wholeFileProblem } from "./fs.ts";
 * console.log(wholeFileProblem("/dev/null", { what: "requirements file" })?.message);
 * // /dev/null is a character device, not a regular file
 * console.log(wholeFileProblem("/etc/hostname")); // undefined
 * ```
 */
export function wholeFileProblem(
  path: string,
  options: ReadWholeOptions = {},
): FileReadError | undefined {
  const check = checker(path, options);
  try {
    check.kind(Deno.statSync(path));
    return undefined;
  } catch (error) {
    return check.failed(error);
  }
}

/**
 * Read a regular file (following symbolic links) whole as UTF-8 text, a byte order mark
 * kept, as `Deno.readTextFileSync` does; but a named pipe, a device or a folder is refused
 * before it is opened, and no more than `limit` bytes are ever read. Throws a
 * {@link FileReadError} naming the file and the fix.
 *
 * @example
 * ```ts
 * import { readWholeTextSync } from "./fs.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/requirements.txt`, "numpy\n");
 * console.log(readWholeTextSync(`${dir}/requirements.txt`, { what: "requirements file" })); // numpy
 * ```
 */
export function readWholeTextSync(path: string, options: ReadWholeOptions = {}): string {
  const check = checker(path, options);
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    throw check.failed(error);
  }
  check.kind(info);
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch (error) {
    throw check.failed(error);
  }
  try {
    // What was opened may not be what was asked about a moment before.
    check.kind(file.statSync());
    const reader = new BoundedReader(check);
    while (reader.read(file.readSync(reader.space())));
    return reader.text();
  } catch (error) {
    throw check.failed(error);
  } finally {
    file.close();
  }
}

/**
 * {@link readWholeTextSync}, without blocking the event loop.
 *
 * @example
 * ```ts
 * import { readWholeText } from "./fs.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/spec.ts`, "export {};\n");
 * console.log((await readWholeText(`${dir}/spec.ts`, { what: "spec file" })).length); // 11
 * ```
 */
export async function readWholeText(path: string, options: ReadWholeOptions = {}): Promise<string> {
  const check = checker(path, options);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    throw check.failed(error);
  }
  check.kind(info);
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    throw check.failed(error);
  }
  try {
    check.kind(await file.stat());
    const reader = new BoundedReader(check);
    while (reader.read(await file.read(reader.space())));
    return reader.text();
  } catch (error) {
    throw check.failed(error);
  } finally {
    file.close();
  }
}

interface Checker {
  readonly limit: number;
  /** Throw unless `info` is a regular file within the limit. */
  kind(info: Deno.FileInfo): void;
  /** Throw for a file that holds more than the limit. */
  tooLarge(size: number | undefined): never;
  /** `error` as a {@link FileReadError} (as it is when it already is one). */
  failed(error: unknown): FileReadError;
}

function checker(path: string, options: ReadWholeOptions): Checker {
  const limit = options.limit ?? WHOLE_FILE_LIMIT;
  const what = options.what ?? "file";
  const self: Checker = {
    limit,
    kind(info) {
      if (!info.isFile) {
        throw new FileReadError(
          path,
          "not-a-file",
          `${path} is ${kindOf(info)}, not a regular file`,
          {
            hint: `name a regular file as the ${what}: imgtool reads it whole, and ${
              info.isDirectory ? "a folder cannot be" : "a pipe or device could block or never end"
            }`,
          },
        );
      }
      if (info.size > limit) self.tooLarge(info.size);
    },
    tooLarge(size) {
      throw new FileReadError(
        path,
        "too-large",
        `${path} holds ${size === undefined ? "more" : `${size} bytes, more`} than the ${
          amount(limit)
        } imgtool reads of a ${what}`,
        { hint: `check that this is the right ${what}, or make it smaller` },
      );
    },
    failed(error) {
      if (error instanceof FileReadError) return error;
      if (error instanceof Deno.errors.NotFound) {
        return new FileReadError(path, "missing", `${what} not found: ${path}`, {
          hint: "check the path",
          cause: error,
        });
      }
      return new FileReadError(
        path,
        "unreadable",
        `cannot read ${what} ${path}: ${(error as Error)?.message ?? error}`,
        { hint: "check that the user running imgtool can read it", cause: error },
      );
    },
  };
  return self;
}

/** Bytes read into a buffer that grows as needed, up to one byte past the limit. */
class BoundedReader {
  #buffer: Uint8Array;
  #length = 0;
  readonly #check: Checker;

  constructor(check: Checker) {
    this.#check = check;
    this.#buffer = new Uint8Array(Math.min(64 * 1024, check.limit + 1));
  }

  /** Where the next read goes: never past limit + 1 bytes in all. */
  space(): Uint8Array {
    if (this.#length === this.#buffer.length) {
      const grown = new Uint8Array(Math.min(this.#buffer.length * 2, this.#check.limit + 1));
      grown.set(this.#buffer);
      this.#buffer = grown;
    }
    return this.#buffer.subarray(this.#length);
  }

  /** Take a read's count (null at the end); returns whether to read on. */
  read(count: number | null): boolean {
    if (count === null) return false;
    this.#length += count;
    if (this.#length > this.#check.limit) this.#check.tooLarge(undefined);
    return true;
  }

  text(): string {
    return new TextDecoder("utf-8", { ignoreBOM: true }).decode(
      this.#buffer.subarray(0, this.#length),
    );
  }
}

function kindOf(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a folder";
  if (info.isFifo) return "a named pipe";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  if (info.isSocket) return "a socket";
  return "something else";
}

/** A limit as people write it: in MiB when it is a whole number of them. */
function amount(bytes: number): string {
  const mebibytes = bytes / (1024 * 1024);
  return Number.isInteger(mebibytes) ? `${mebibytes} MiB` : `${bytes} bytes`;
}
