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
