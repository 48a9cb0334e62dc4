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

/** How large a cache folder may grow before its least recently used entries go. */
export interface CacheLimits {
  /** Entries (files) at most. */
  readonly maxEntries: number;
  /** Bytes at most, all entries together. */
  readonly maxBytes: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const HOUR_MS = 60 * 60 * 1000;
// Pruned once per process and folder: a listing costs a stat per entry.
const pruned = new Set<string>();

/**
 * Note that the cache entry `file` was used now, for {@link pruneCacheDir}: its modification
 * time is set to now when it is more than a day old (so a read costs a write at most once a
 * day). Never fails: an entry that cannot be touched only risks going sooner.
 *
 * @example
 * ```ts
 * import { noteCacheUse } from "./cache_dir.ts";
 * const file = Deno.makeTempFileSync();
 * const longAgo = new Date(Date.now() - 30 * 24 * 60 * 60 * 1000);
 * Deno.utimeSync(file, longAgo, longAgo);
 * noteCacheUse(file);
 * console.log(Date.now() - Deno.statSync(file).mtime!.getTime() < 60_000); // true
 * ```
 */
export function noteCacheUse(file: string, now: number = Date.now()): void {
  try {
    const modified = Deno.statSync(file).mtime?.getTime() ?? 0;
    if (now - modified > DAY_MS) Deno.utimeSync(file, new Date(now), new Date(now));
  } catch {
    // Gone, or not ours to touch.
  }
}

/**
 * Keep the cache folder `dir` within `limits`: when it holds more entries or bytes than
 * allowed, remove its least recently used entries (oldest modification time first:
 * {@link noteCacheUse} keeps used ones young) until both are at three quarters of the limit,
 * so that the next prunings are far apart. Temporary files of writes that never finished
 * (`*.tmp`, older than an hour) go too. Only `.json` and `.tmp` files are considered; the
 * folder is listed at most once per process. Returns the number of files removed; never
 * fails (a cache only ever saves work).
 *
 * @example
 * ```ts
 * import { pruneCacheDir } from "./cache_dir.ts";
 * const dir = Deno.makeTempDirSync();
 * for (let i = 0; i < 10; i++) Deno.writeTextFileSync(`${dir}/${i}.json`, "{}");
 * console.log(pruneCacheDir(dir, { maxEntries: 8, maxBytes: 1024 })); // 4
 * console.log([...Deno.readDirSync(dir)].length); // 6
 * ```
 */
export function pruneCacheDir(dir: string, limits: CacheLimits, now: number = Date.now()): number {
  if (pruned.has(dir)) return 0;
  pruned.add(dir);
  const entries: { path: string; used: number; size: number }[] = [];
  let removed = 0;
  const remove = (path: string) => {
    try {
      Deno.removeSync(path);
      removed++;
      return true;
    } catch {
      return false; // Removed by another build already, or not ours to remove.
    }
  };
  try {
    for (const item of Deno.readDirSync(dir)) {
      if (!item.isFile) continue;
      const path = join(dir, item.name);
      const isTemporary = item.name.endsWith(".tmp");
      if (!isTemporary && !item.name.endsWith(".json")) continue;
      let info: Deno.FileInfo;
      try {
        info = Deno.lstatSync(path);
      } catch {
        continue;
      }
      const used = info.mtime?.getTime() ?? 0;
      if (isTemporary) {
        if (now - used > HOUR_MS) remove(path);
        continue;
      }
      entries.push({ path, used, size: info.size });
    }
  } catch {
    return removed; // No folder yet, or not readable.
  }
  let count = entries.length;
  let bytes = entries.reduce((sum, entry) => sum + entry.size, 0);
  if (count <= limits.maxEntries && bytes <= limits.maxBytes) return removed;
  entries.sort((a, b) => a.used - b.used);
  for (const entry of entries) {
    if (count <= limits.maxEntries * 0.75 && bytes <= limits.maxBytes * 0.75) break;
    if (remove(entry.path)) {
      count--;
      bytes -= entry.size;
    }
  }
  return removed;
}
