/**
 * Small synchronous file-system questions, answered with Deno's API (not `node:fs`, whose
 * import would start the Node compatibility layer: see `src/path.ts`).
 *
 * @module
 */

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

/**
 * Write `text` to `file` whole: into a temporary file beside it (its folder made first),
 * then renamed into place, so a reader at the same moment (another build) sees the old
 * content or the new, never half of it. For what imgtool remembers between runs, where a
 * failed write only loses a saving: returns whether it was written, and leaves no
 * temporary file behind.
 *
 * @example
 * ```ts
 * import { writeWholeSync } from "./fs.ts";
 * const dir = Deno.makeTempDirSync();
 * console.log(writeWholeSync(`${dir}/cache/entry.json`, "{}\n")); // true
 * console.log(Deno.readTextFileSync(`${dir}/cache/entry.json`)); // {}
 * ```
 */
export function writeWholeSync(file: string, text: string): boolean {
  const temporary = `${file}.${Deno.pid}.${crypto.randomUUID()}.tmp`;
  try {
    Deno.mkdirSync(file.slice(0, file.lastIndexOf("/")) || "/", { recursive: true });
    Deno.writeTextFileSync(temporary, text);
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
