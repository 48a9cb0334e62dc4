/**
 * Where imgtool keeps what it remembers between runs (seen registry tags, file digests): one
 * sub-folder each of `$XDG_CACHE_HOME/imgtool`, else of `~/.cache/imgtool`. Everything kept
 * there only saves work; removing the folder is always safe.
 *
 * @module
 */

import { join } from "./path.ts";

/**
 * The cache folder `sub` of imgtool: `$XDG_CACHE_HOME/imgtool/<sub>`, else
 * `$HOME/.cache/imgtool/<sub>`; `undefined` when neither variable is set. By default the
 * variables are read from the environment (once per process), when that needs no permission
 * prompt (a variable that cannot be read counts as unset: a cache is never worth asking for).
 *
 * @example
 * ```ts
 * import { imgtoolCacheDir } from "./cache_dir.ts";
 * console.log(imgtoolCacheDir("digests", { XDG_CACHE_HOME: "/var/cache" }));
 * // /var/cache/imgtool/digests
 * console.log(imgtoolCacheDir("digests", { HOME: "/home/me" })); // /home/me/.cache/imgtool/digests
 * console.log(imgtoolCacheDir("digests", {})); // undefined
 * ```
 */
export function imgtoolCacheDir(
  sub: string,
  env: Record<string, string | undefined> = processEnvironment(),
): string | undefined {
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, "imgtool", sub);
  if (env.HOME) return join(env.HOME, ".cache", "imgtool", sub);
  return undefined;
}

let environment: Record<string, string | undefined> | undefined;

/** The two variables, read once: each read asks the permission system first. */
function processEnvironment(): Record<string, string | undefined> {
  return environment ??= { XDG_CACHE_HOME: readEnv("XDG_CACHE_HOME"), HOME: readEnv("HOME") };
}

/** An environment variable, or `undefined` when reading it would need a permission prompt. */
function readEnv(name: string): string | undefined {
  try {
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
      return undefined;
    }
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}
