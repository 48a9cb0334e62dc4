/**
 * File digests remembered between runs, keyed by what `stat` says of each file, as git's
 * index does.
 *
 * Why: every build recomputes the identity of every file and folder its spec uses, so a
 * no-op build would read and hash every byte of its sources each time (a few milliseconds
 * for a handful of files in a fresh process, seconds for a large tree). A file whose stat
 * key (size, modification time, change time, inode, device) is the one it had when it was
 * hashed in an earlier run is not read again: its digest is taken from here.
 *
 * Why it is sound:
 * - The whole key must match. Any write to a file moves its change time, which no program
 *   can set back; a file put in its place (a rename, a restored backup) has another inode,
 *   or another device.
 * - Only digests of settled files are kept: files whose modification and change times were
 *   both more than two seconds old when they were first looked at, before their `stat`
 *   (git's "racily clean" rule). Times are coarse (milliseconds; Deno gives change times in
 *   whole seconds), so a file written in the same tick as it was hashed could change again
 *   without its key changing; a settled file changing afterwards moves its change time past
 *   the remembered one.
 * - Each root (a tree's folder, or a single file) has one small JSON file, written whole to
 *   a temporary name and then renamed into place, so concurrent builds never read half a
 *   file; anything malformed or about another root is no entry at all. Its name is the
 *   SHA-256 of the root's absolute path; its content
 *   `{"format": "imgtool-digests/1", "root": "/abs/root", "files": [[path, size, mtimeMs,
 *   ctimeMs, ino, dev, sha256], ...]}`, a path being relative to the root (`""` for a single
 *   file).
 *
 * The cache only ever saves reading: a digest is the same with it, without it, or with an
 * empty one, and a cache folder that cannot be read or written, or that this process has no
 * permission for, is no cache (never an error, never output, never a permission prompt).
 * Since a remembered digest is believed, only the user's own entries in a private folder
 * count (`privateCacheDir`, `readCacheEntry`): one written by another user is no entry.
 *
 * @module
 */

import {
  type CacheLimits,
  pruneCacheDir,
  readJsonCacheEntry,
  writeCacheEntry,
} from "./cache_dir.ts";
import { join, resolve } from "./path.ts";
import { sha256Hex } from "./sha256.ts";

/** Bump when the stored form changes: files of another format are no entries. */
const FORMAT = "imgtool-digests/1";

/**
 * How many trees' digests are kept (a tree of 20,000 files takes some 2 MB): past these, the
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
};

/** The largest cache file read back (a tree of 20,000 files takes some 2 MB). */
const MAX_FILE_BYTES = 128 * 1024 * 1024;

/** How long a file must have been unchanged for its digest to be remembered. */
const SETTLED_MS = 2000;

/**
 * A remembered file: its path (relative to the root), its stat key, then its SHA-256. A cache
 * file holds a list of these: rows write and parse much faster than an object with a key per
 * file (about 2 ms instead of 10 for 2,000 files).
 */
type Entry = [
  path: string,
  size: number,
  mtimeMs: number,
  ctimeMs: number,
  ino: number | null,
  dev: number,
  sha256: string,
];

/**
 * Whether `info`'s file had been unchanged (modification and change times) for more than two
 * seconds at `since` (milliseconds since the epoch): only then may its digest be remembered.
 *
 * @example
 * ```ts
 * import { isSettled } from "./digest_cache.ts";
 * const path = await Deno.makeTempFile();
 * const info = Deno.statSync(path);
 * // Just written:
 * console.log(isSettled(info, Date.now())); // false
 * console.log(isSettled(info, Date.now() + 10_000)); // true
 * ```
 */
export function isSettled(info: Deno.FileInfo, since: number): boolean {
  const mtime = info.mtime?.getTime();
  const ctime = info.ctime?.getTime();
  if (mtime === undefined || ctime === undefined) return false;
  return since - Math.max(mtime, ctime) > SETTLED_MS;
}

/**
 * Options of a {@link DigestCache}.
 *
 * @example
 * ```ts
 * import type { DigestCacheOptions } from "./digest_cache.ts";
 * const options: DigestCacheOptions = { dir: await Deno.makeTempDir(), since: Date.now() };
 * console.log(typeof options.since); // number
 * ```
 */
export interface DigestCacheOptions {
  /** The folder of the cache files; `undefined`: nothing is read or remembered. */
  readonly dir: string | undefined;
  /**
   * When the files were first looked at (milliseconds since the epoch; default: now). Take
   * it before the `stat`: a digest is remembered only if its file was settled by then.
   */
  readonly since?: number;
}

/**
 * The remembered digests of one root: a folder tree (files by their `/`-separated path
 * relative to it) or a single file (path `""`). Loaded once when made; `save` writes what
 * this run looked up and hashed, when that differs from what was loaded.
 *
 * @example
 * ```ts
 * import { DigestCache } from "./digest_cache.ts";
 * const dir = await Deno.makeTempDir();
 * const root = await Deno.makeTempDir();
 * Deno.writeTextFileSync(`${root}/a.txt`, "a");
 * const info = Deno.lstatSync(`${root}/a.txt`);
 * const sha256 = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";
 * // Files just written are not settled: pretend they were looked at ten seconds from now.
 * const first = new DigestCache(root, { dir, since: Date.now() + 10_000 });
 * first.set("a.txt", info, sha256);
 * first.save();
 * console.log(new DigestCache(root, { dir }).get("a.txt", info) === sha256); // true
 * ```
 */
export class DigestCache {
  /** The root, absolute. */
  readonly root: string;
  /** When the files were first looked at; see {@link DigestCacheOptions.since}. */
  readonly since: number;
  readonly #dir: string | undefined;
  readonly #file: string | undefined;
  readonly #loaded: ReadonlyMap<string, Entry>;
  readonly #kept = new Map<string, Entry>();
  #added = false;

  /** The remembered digests of `root` (a folder or a file), read from `options.dir`. */
  constructor(root: string, options: DigestCacheOptions) {
    this.root = resolve(root);
    this.since = options.since ?? Date.now();
    this.#dir = options.dir;
    this.#file = this.#dir === undefined
      ? undefined
      : join(this.#dir, `${sha256Hex(this.root)}.json`);
    this.#loaded = this.#load();
  }

  /**
   * The remembered digest of the file at `path` (relative to the root; `""` for a single
   * file), if `info` (what `lstat` or `stat` says of it now) matches its key in full.
   */
  get(path: string, info: Deno.FileInfo): string | undefined {
    const entry = this.#loaded.get(path);
    if (entry === undefined || !matches(entry, info)) return undefined;
    this.#kept.set(path, entry);
    return entry[6];
  }

  /**
   * Remember `sha256` for the file at `path`, as `info` describes it; only if it was settled
   * at {@link DigestCache.since}, and `info` is what the stat said before the file was read.
   */
  set(path: string, info: Deno.FileInfo, sha256: string): void {
    if (!isSettled(info, this.since)) return;
    const entry: Entry = [
      path,
      info.size,
      info.mtime!.getTime(),
      info.ctime!.getTime(),
      info.ino ?? null,
      info.dev,
      sha256,
    ];
    const loaded = this.#loaded.get(path);
    if (loaded === undefined || !sameEntry(loaded, entry)) this.#added = true;
    this.#kept.set(path, entry);
  }

  /**
   * Write the entries this run looked up or set, when they differ from what was loaded: a
   * new digest, or entries of files no longer looked at (gone from the tree, changed, or
   * now ignored) dropped. A folder that cannot be written is skipped silently.
   */
  save(): void {
    const file = this.#file;
    if (file === undefined) return;
    // `#kept` holds loaded entries and added ones: with none added, it differs from what was
    // loaded only by the entries it lacks.
    if (!this.#added && this.#kept.size === this.#loaded.size) return;
    const files = [...this.#kept.values()];
    const text = `${JSON.stringify({ format: FORMAT, root: this.root, files })}\n`;
    // A failure only loses a saving: the next run hashes these files again.
    if (writeCacheEntry(file, text)) pruneCacheDir(this.#dir!, DIGEST_CACHE_LIMITS);
  }

  #load(): Map<string, Entry> {
    const file = this.#file;
    if (file === undefined) return new Map();
    const parse = (value: unknown) => {
      const entries = parseCache(value, this.root);
      return entries.size > 0 ? entries : undefined;
    };
    return readJsonCacheEntry(file, MAX_FILE_BYTES, parse) ?? new Map();
  }
}

/** A cache file's entries, if it is well formed and about `root`; else none at all. */
function parseCache(value: unknown, root: string): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  if (typeof value !== "object" || value === null) return entries;
  const cache = value as Record<string, unknown>;
  if (cache.format !== FORMAT || cache.root !== root) return entries;
  if (!Array.isArray(cache.files)) return entries;
  for (const entry of cache.files) {
    if (!isEntry(entry)) return new Map();
    entries.set(entry[0], entry);
  }
  return entries;
}

// Shape only: the key is compared with `===`, and a digest is only ever handed back as is
// (so it must be one: 64 lower-case hex digits, as `sha256Hex` writes them).
function isEntry(value: unknown): value is Entry {
  if (!Array.isArray(value) || value.length !== 7) return false;
  const [path, size, mtime, ctime, ino, dev, sha256] = value;
  return typeof path === "string" && typeof size === "number" && typeof mtime === "number" &&
    typeof ctime === "number" &&
    (ino === null || typeof ino === "number") && typeof dev === "number" &&
    typeof sha256 === "string" && /^[0-9a-f]{64}$/.test(sha256);
}

function matches(entry: Entry, info: Deno.FileInfo): boolean {
  return entry[1] === info.size && entry[2] === info.mtime?.getTime() &&
    entry[3] === info.ctime?.getTime() && entry[4] === (info.ino ?? null) &&
    entry[5] === info.dev;
}

function sameEntry(a: Entry, b: Entry): boolean {
  return a.every((value, index) => value === b[index]);
}
