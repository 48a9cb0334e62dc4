/**
 * File digests remembered between runs, keyed by what `stat` says of each file, as git's
 * index does: one tree index (`./tree_index.ts`) per root (a tree's folder, or a single
 * file), read with one read.
 *
 * Why: every build recomputes the identity of every file and folder its spec uses, so a
 * no-op build would read and hash every byte of its sources each time (seconds for a large
 * tree). A file whose stat key (size, modification time, change time, inode, device, mode)
 * is the one it had when it was hashed in an earlier run is not read again: its digest is
 * taken from here; and when every entry of a tree is as it was, so is the tree's digest.
 *
 * Why it is sound:
 * - The whole key must match. Any write to a file moves its change time, which no program
 *   can set back; a file put in its place (a rename, a restored backup) has another inode,
 *   or another device; a permission change moves the change time and the mode.
 * - Only digests of settled files are believed: files whose modification and change times
 *   were both more than two seconds old when the walk began, before their `stat` (git's
 *   "racily clean" rule). Times are coarse (milliseconds; Deno gives change times in whole
 *   seconds), so a file written in the same tick as it was hashed could change again without
 *   its key changing; a settled file changing afterwards moves its change time past the
 *   remembered one.
 * - Each root's index is written whole to a temporary name and then renamed into place, so
 *   concurrent builds never read half a file; anything malformed, damaged or about another
 *   root is no index at all (`decodeTreeIndex`). Its name is the SHA-256 of the root's
 *   absolute path, with `.idx`.
 *
 * The cache only ever saves reading: a digest is the same with it, without it, or with an
 * empty one, and a cache folder that cannot be read or written, or that this process has no
 * permission for, is no cache (never an error, never output, never a permission prompt).
 * Since a remembered digest is believed, only the user's own entries in a private folder
 * count (`privateCacheDir`): one written by another user is no entry, and entries are
 * written readable by the user alone (0600).
 *
 * @module
 */

import {
  type CacheLimits,
  currentUid,
  LIST_CACHE_EVERY_MS,
  noteCacheUse,
  privateCacheDir,
  pruneCacheDir,
} from "./cache_dir.ts";
import type { StatKey } from "./file_stat.ts";
import { writeWholeSync } from "./fs.ts";
import { join } from "./path.ts";
import { sha256Hex } from "./sha256.ts";
import { decodeTreeIndex, type TreeIndex, writeTreeIndex } from "./tree_index.ts";

/**
 * How many roots' indexes are kept (a tree of 20,000 files takes some 2 MB): past these, the
 * least recently used go (`pruneCacheDir`).
 *
 * @example
 * ```ts
 * import { DIGEST_CACHE_LIMITS } from "./digest_cache.ts";
 * console.log(DIGEST_CACHE_LIMITS.maxBytes / 1024 / 1024); // 256
 * ```
 */
export const DIGEST_CACHE_LIMITS: CacheLimits = {
  maxEntries: 1000,
  maxBytes: 256 * 1024 * 1024,
  listEveryMs: LIST_CACHE_EVERY_MS,
};

/** The largest index read back (a tree of 20,000 files takes some 2 MB). */
const MAX_FILE_BYTES = 128 * 1024 * 1024;

/** How long a file must have been unchanged for its digest to be remembered. */
const SETTLED_MS = 2000;

/**
 * Whether `info`'s file had been unchanged (modification and change times) for more than two
 * seconds at `since` (milliseconds since the epoch): only then may its digest be remembered.
 *
 * @example
 * ```ts
 * import { isSettled } from "./digest_cache.ts";
 * import { statFile } from "./file_stat.ts";
 * const path = await Deno.makeTempFile();
 * const info = statFile(path);
 * // Just written:
 * console.log(isSettled(info, Date.now())); // false
 * console.log(isSettled(info, Date.now() + 10_000)); // true
 * ```
 */
export function isSettled(info: StatKey, since: number): boolean {
  return settled(Math.max(info.mtime, info.ctime), since);
}

/**
 * {@link isSettled} of a file last changed (the later of its modification and change times)
 * at `changed` milliseconds since the epoch; a negative time (none known) is never settled.
 *
 * @example
 * ```ts
 * import { settled } from "./digest_cache.ts";
 * console.log(settled(1_000, 3_500), settled(1_000, 2_500), settled(-1, 10_000)); // true false false
 * ```
 */
export function settled(changed: number, since: number): boolean {
  return changed >= 0 && since - changed > SETTLED_MS;
}

/**
 * The file that holds the index of `root` (absolute) in the cache folder `dir`.
 *
 * @example
 * ```ts
 * import { digestIndexFile } from "./digest_cache.ts";
 * console.log(digestIndexFile("/cache", "/").endsWith(".idx")); // true
 * ```
 */
export function digestIndexFile(dir: string, root: string): string {
  return join(dir, `${sha256Hex(root)}.idx`);
}

/**
 * The remembered index of `root` (absolute) in the cache folder `dir` (`undefined`: none),
 * if there is one to believe: in a private folder, a regular file of the user's, whole,
 * well formed and about `root`. Never fails.
 *
 * @example
 * ```ts
 * import { readDigestIndex, writeDigestIndex } from "./digest_cache.ts";
 * import { FILE, TreeIndex } from "./tree_index.ts";
 * const dir = `${await Deno.makeTempDir()}/digests`;
 * const index = new TreeIndex();
 * index.add("a.txt", FILE, { size: 1, mtime: 1000, ctime: 1000, ino: 7, dev: 1, mode: 0o100644 });
 * console.log(writeDigestIndex(dir, "/project/src", index)); // true
 * console.log(readDigestIndex(dir, "/project/src")?.paths); // [ "a.txt" ]
 * console.log(readDigestIndex(dir, "/project")); // undefined
 * ```
 */
export function readDigestIndex(dir: string | undefined, root: string): TreeIndex | undefined {
  if (dir === undefined || !privateCacheDir(dir, { create: false })) return undefined;
  const file = digestIndexFile(dir, root);
  let bytes: Uint8Array;
  try {
    if (!isOwnEntry(Deno.lstatSync(file), MAX_FILE_BYTES)) return undefined;
    using opened = Deno.openSync(file);
    // The entry read is the entry checked, even if another took its name in between.
    const info = opened.statSync();
    if (!isOwnEntry(info, MAX_FILE_BYTES)) return undefined;
    bytes = new Uint8Array(info.size);
    let read = 0;
    while (read < bytes.length) {
      const n = opened.readSync(bytes.subarray(read));
      if (n === null) return undefined;
      read += n;
    }
  } catch {
    return undefined; // Missing or unreadable: nothing remembered.
  }
  const index = decodeTreeIndex(bytes, root);
  if (index !== undefined) noteCacheUse(file);
  return index;
}

/**
 * Write `index` as the remembered index of `root` (absolute) in the cache folder `dir`
 * (made private if missing): whole, under a temporary name renamed into place, readable by
 * the user alone. An entry in its place that is not a regular file of the user's is left
 * alone. Returns whether it was written; never fails.
 */
export function writeDigestIndex(dir: string | undefined, root: string, index: TreeIndex): boolean {
  if (dir === undefined || !granted("write", dir) || !privateCacheDir(dir)) return false;
  const file = digestIndexFile(dir, root);
  try {
    if (!isOwnEntry(Deno.lstatSync(file), Infinity)) return false;
  } catch {
    // None yet.
  }
  // The folder is made private above: never made again here, with the umask's permissions.
  // In pieces: an index of 50,000 entries is some 5 MB, never made whole in memory.
  const pieces = (write: (bytes: Uint8Array) => void) => writeTreeIndex(root, index, write);
  if (!writeWholeSync(file, pieces, { mode: 0o600, makeFolder: false })) return false;
  pruneCacheDir(dir, DIGEST_CACHE_LIMITS);
  return true;
}

/** Whether an entry `info` describes is a regular file of the user's of at most `max` bytes. */
function isOwnEntry(info: Deno.FileInfo, max: number): boolean {
  const uid = currentUid() ?? null;
  return info.isFile && (uid === null || info.uid === uid) && info.size <= max;
}

/** Whether `name` access to `path` is granted already: a cache is never worth a prompt. */
function granted(name: "write", path: string): boolean {
  try {
    return Deno.permissions.querySync({ name, path }).state === "granted";
  } catch {
    return false;
  }
}
