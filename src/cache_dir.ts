/**
 * Where imgtool keeps what it remembers between runs (seen registry tags, file digests): one
 * sub-folder each of `$XDG_CACHE_HOME/imgtool`, else of `~/.cache/imgtool`. Everything kept
 * there only saves work; removing the folder is always safe.
 *
 * The folders are the user's own, because an entry is believed (a remembered digest stands
 * for a file's content): see {@link privateCacheDir}. A folder is made with mode 0700; an
 * existing one of the user's with wider modes is tightened to 0700; one owned by another
 * user, or whose parent folder lets others swap it, is not used at all. An entry (a file) is
 * read only when it is a regular file of the user's, of bounded size, and one owned by
 * another user is neither believed, nor replaced, nor pruned.
 *
 * @module
 */

import { writeWholeSync } from "./fs.ts";
import { dirname, join } from "./path.ts";

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

/**
 * The user id whose files this process trusts: `Deno.uid()` when the `sys` permission
 * allows asking; `null` on Windows, which has no such ids; `undefined` when asking would
 * need a permission prompt (then nothing can be shown to be the user's). Deno lets no
 * program without all permissions read `/proc/self`, so there is no other way to learn it.
 *
 * @example
 * ```ts
 * import { currentUid } from "./cache_dir.ts";
 * const uid = currentUid();
 * console.log(uid === undefined || uid === Deno.uid()); // true
 * ```
 */
export function currentUid(): number | null | undefined {
  if (Deno.build.os === "windows") return null;
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "uid" }).state === "granted") {
      return Deno.uid() ?? null;
    }
  } catch {
    // Cannot ask: unknown.
  }
  return undefined;
}

/**
 * Whether `name` access to `path` is granted already: a cache is never worth a permission
 * prompt (imgtool's own commands run with all they need; a spec run by hand may not).
 */
function granted(name: "read" | "write", path: string): boolean {
  try {
    return Deno.permissions.querySync({ name, path }).state === "granted";
  } catch {
    return false;
  }
}

// Folders found private in this process (only positive answers: a folder missing on a read
// may be made by a later write).
const privateDirs = new Set<string>();

/**
 * Whether `dir` may serve as a cache folder: a folder of the current user's (made now, with
 * mode 0700 and any missing parents, when `create` and writing is allowed; never inside a
 * folder of another user's). A folder of the user's that others may read or write is
 * tightened to 0700; if it cannot be, it is still used when others may only read it. It
 * is not used when it belongs to someone else, or when its parent belongs to another user
 * (root aside) or lets others replace it (writable by group or others without the sticky
 * bit, like /tmp has; a parent of the user's is tightened with `chmod go-w` first). With
 * the user unknown ({@link currentUid}), nothing is used. Never fails.
 *
 * @example
 * ```ts
 * import { privateCacheDir } from "./cache_dir.ts";
 * const home = Deno.makeTempDirSync();
 * // Missing, and not to be made; then made, private:
 * console.log(privateCacheDir(`${home}/imgtool/tags`, { create: false })); // false
 * console.log(privateCacheDir(`${home}/imgtool/tags`)); // true
 * console.log((Deno.statSync(`${home}/imgtool/tags`).mode! & 0o777).toString(8)); // 700
 * ```
 */
export function privateCacheDir(dir: string, options: { create?: boolean } = {}): boolean {
  if (privateDirs.has(dir)) return true;
  const uid = currentUid();
  if (uid === undefined || !granted("read", dir)) return false;
  const writable = granted("write", dir);
  let info = statOrUndefined(dir);
  if (info === undefined) {
    if (!(options.create ?? true) || !writable || !mayCreateIn(dir, uid)) return false;
    try {
      Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch {
      return false;
    }
    info = statOrUndefined(dir);
  }
  if (!info?.isDirectory) return false;
  if (uid !== null) {
    if (info.uid !== uid) return false;
    const mode = info.mode ?? 0;
    if ((mode & 0o077) !== 0 && !(writable && chmod(dir, 0o700)) && (mode & 0o022) !== 0) {
      return false;
    }
    if (!parentIsSafe(dirname(dir), uid, writable)) return false;
  }
  privateDirs.add(dir);
  return true;
}

/** Whether `dir` may be made: its nearest existing ancestor is the user's or root's. */
function mayCreateIn(dir: string, uid: number | null): boolean {
  if (uid === null) return true;
  for (let current = dirname(dir);; current = dirname(current)) {
    const info = statOrUndefined(current);
    if (info !== undefined) return info.isDirectory && (info.uid === uid || info.uid === 0);
    if (dirname(current) === current) return false;
  }
}

/** Whether others cannot replace a folder in `parent` (tightened when it is the user's). */
function parentIsSafe(parent: string, uid: number, writable: boolean): boolean {
  const info = statOrUndefined(parent);
  if (info === undefined || (info.uid !== uid && info.uid !== 0)) return false;
  const mode = info.mode ?? 0;
  if ((mode & 0o022) === 0 || (mode & 0o1000) !== 0) return true;
  return info.uid === uid && writable && chmod(parent, mode & 0o7755);
}

function chmod(path: string, mode: number): boolean {
  try {
    Deno.chmodSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

function statOrUndefined(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.statSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Whether the cache entry `info` describes (from `lstat`) is one to believe: a regular file
 * (not a link) of the current user's, at most `maxBytes` long.
 */
function isOwnEntry(info: Deno.FileInfo, uid: number | null, maxBytes: number): boolean {
  return info.isFile && (uid === null || info.uid === uid) && info.size <= maxBytes;
}

/**
 * The text of the cache entry `file`, when its folder is private ({@link privateCacheDir},
 * not made here) and the entry is a regular file of the user's, at most `maxBytes` long;
 * else `undefined`. Never fails: an entry that cannot be believed is no entry.
 *
 * @example
 * ```ts
 * import { readCacheEntry, writeCacheEntry } from "./cache_dir.ts";
 * const dir = `${Deno.makeTempDirSync()}/tags`;
 * console.log(readCacheEntry(`${dir}/a.json`, 1024)); // undefined
 * writeCacheEntry(`${dir}/a.json`, "{}\n");
 * console.log(readCacheEntry(`${dir}/a.json`, 1024)); // {}
 * // Longer than the limit of 1 byte:
 * console.log(readCacheEntry(`${dir}/a.json`, 1)); // undefined
 * ```
 */
export function readCacheEntry(file: string, maxBytes: number): string | undefined {
  if (!privateCacheDir(dirname(file), { create: false })) return undefined;
  try {
    if (!isOwnEntry(Deno.lstatSync(file), currentUid() ?? null, maxBytes)) return undefined;
    return Deno.readTextFileSync(file);
  } catch {
    return undefined; // Missing or unreadable: nothing remembered.
  }
}

/**
 * The cache entry `file` read back ({@link readCacheEntry}) as JSON and checked by `parse`,
 * which returns `undefined` for an entry it does not believe; a believed entry is noted as
 * used ({@link noteCacheUse}). Never fails: text that is not JSON is no entry.
 *
 * @example
 * ```ts
 * import { readJsonCacheEntry, writeCacheEntry } from "./cache_dir.ts";
 * const file = `${Deno.makeTempDirSync()}/tags/a.json`;
 * writeCacheEntry(file, `{"n":1}\n`);
 * const parse = (value: unknown) => (value as { n?: unknown })?.n === 1 ? 1 : undefined;
 * console.log(readJsonCacheEntry(file, 1024, parse)); // 1
 * ```
 */
export function readJsonCacheEntry<T>(
  file: string,
  maxBytes: number,
  parse: (value: unknown) => T | undefined,
): T | undefined {
  const text = readCacheEntry(file, maxBytes);
  if (text === undefined) return undefined;
  let entry: T | undefined;
  try {
    entry = parse(JSON.parse(text));
  } catch {
    return undefined; // Not JSON: nothing remembered.
  }
  if (entry !== undefined) noteCacheUse(file);
  return entry;
}

/**
 * Write the cache entry `file` whole (`writeWholeSync`), in a private folder
 * ({@link privateCacheDir}, made if missing). An entry in its place that is not a regular
 * file of the user's is left alone. Returns whether it was written; never fails.
 *
 * @example
 * ```ts
 * import { writeCacheEntry } from "./cache_dir.ts";
 * const dir = `${Deno.makeTempDirSync()}/checked`;
 * console.log(writeCacheEntry(`${dir}/a.json`, "[]\n")); // true
 * console.log((Deno.statSync(dir).mode! & 0o777).toString(8)); // 700
 * ```
 */
export function writeCacheEntry(file: string, text: string): boolean {
  const dir = dirname(file);
  if (!granted("write", dir) || !privateCacheDir(dir)) return false;
  try {
    const existing = Deno.lstatSync(file);
    if (!isOwnEntry(existing, currentUid() ?? null, Infinity)) return false;
  } catch {
    // None yet.
  }
  return writeWholeSync(file, text);
}

/** How large a cache folder may grow before its least recently used entries go. */
export interface CacheLimits {
  /** Entries (files) at most. */
  readonly maxEntries: number;
  /** Bytes at most, all entries together. */
  readonly maxBytes: number;
  /**
   * List the folder at most once in this many milliseconds, across processes (by the time of
   * the file `<folder>.pruned` beside it): a listing costs a stat per entry, and a folder of
   * many small entries grows by a few a build. Between listings it may run over its limits
   * by what was written since. Default: at every process's first write.
   */
  readonly listEveryMs?: number;
}

/** Beside a folder, the file whose modification time says when it was last listed. */
const PRUNED_SUFFIX = ".pruned";

/**
 * How often the folders of many small entries (digests, tags, checked tags, engines) are
 * listed for pruning at most: ten minutes. They grow by a few entries a build, and listing
 * a thousand entries costs some 10-30 ms of every build.
 *
 * @example
 * ```ts
 * import { LIST_CACHE_EVERY_MS } from "./cache_dir.ts";
 * console.log(LIST_CACHE_EVERY_MS / 60_000); // 10
 * ```
 */
export const LIST_CACHE_EVERY_MS = 10 * 60 * 1000;

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
 * (`*.tmp`, older than an hour) go too. Only `.json`, `.idx`, `.gz`, `.raw` and `.tmp` files of the user's are
 * considered, in a private folder ({@link privateCacheDir}); the folder is listed at most
 * once per process. Returns the number of files removed; never
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
  if (!privateCacheDir(dir, { create: false })) return 0;
  const uid = currentUid() ?? null;
  if (limits.listEveryMs !== undefined && !listingDue(dir, uid, limits.listEveryMs, now)) return 0;
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
      // Entries: JSON (tags, last checked), binary tree indexes (digests), layer blobs and
      // their raw bytes (layers).
      if (!isTemporary && !/\.(json|idx|gz|raw)$/.test(item.name)) continue;
      let info: Deno.FileInfo;
      try {
        info = Deno.lstatSync(path);
      } catch {
        continue;
      }
      if (uid !== null && info.uid !== uid) continue; // Another user's: not ours to remove.
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

/**
 * Whether `dir` is due a listing `everyMs` after the last (the time of `<dir>.pruned`); when
 * it is, that file is put in place anew (written under another name and renamed, so nothing
 * in its place is written through) with the time `now`. One that is not the user's regular
 * file is left alone, and the folder listed.
 */
function listingDue(dir: string, uid: number | null, everyMs: number, now: number): boolean {
  const marker = `${dir}${PRUNED_SUFFIX}`;
  try {
    const info = Deno.lstatSync(marker);
    if (!isOwnEntry(info, uid, 0)) return true;
    const listed = info.mtime?.getTime() ?? 0;
    if (listed <= now && now - listed < everyMs) return false;
  } catch {
    // Never listed: list, and note it.
  }
  // Not writable here: listed every time, as without an interval.
  writeWholeSync(marker, new Uint8Array(), { mode: 0o600, mtime: now, makeFolder: false });
  return true;
}
