/**
 * Content digests of files and folder trees, for the image identity.
 *
 * What counts: names (relative), types, sizes, contents, and modes by the rule files are
 * staged with (`./staged_mode.ts`: a file's executable bit, as git keeps it; folders
 * 0755). What does not: times, owners, other mode bits (the umask), absolute paths, the
 * order a directory listing comes in. Ignored paths are left out before hashing. Files are
 * hashed streaming, a bounded number at a time, so memory stays flat however large the tree.
 * The same digests come out of the synchronous path (used by `Image.uri`) and the parallel
 * one (used by builds).
 *
 * No `node:` module is imported here: the first one starts Deno's Node compatibility layer,
 * which costs more than everything else a no-op build does. Hashing is done by the plain
 * TypeScript SHA-256 of `./sha256.ts`, until there is enough to hash that `node:crypto`
 * (several times faster) pays for its loading: then it is loaded, and serves from then on.
 * Both give the same digests.
 *
 * Digests are remembered: within a process by stat key, and across runs in the digest
 * cache of `./digest_cache.ts` (one file per tree or single file, under
 * `~/.cache/imgtool/digests`), so that a file unchanged since an earlier run is not read
 * again. A digest is the same whether it was remembered or hashed.
 *
 * @module
 */

import { imgtoolCacheDir } from "./cache_dir.ts";
import { DigestCache, isSettled } from "./digest_cache.ts";
import type { IgnoreRules } from "./ignore.ts";
import { join } from "./path.ts";
import { Sha256 } from "./sha256.ts";
import { stagedMode } from "./staged_mode.ts";

/** One entry of a folder tree. */
export interface TreeEntry {
  /** The path relative to the tree's root, `/`-separated. */
  readonly path: string;
  /** The absolute path. */
  readonly absolute: string;
  /** File, folder or symbolic link. */
  readonly type: "file" | "dir" | "symlink";
  /**
   * The permission bits it is staged with in a build context (`stagedMode`): 0755 or 0644
   * for files by the executable bit, 0755 for folders.
   */
  readonly mode: number;
  /** Size in bytes, for files. */
  readonly size: number;
  /** The link's target, for symbolic links. */
  readonly target?: string;
  /** What `lstat` said of it, for files (hashing needs no second stat). */
  readonly info?: Deno.FileInfo;
}

/** A file's content and staged mode (`stagedMode`), or `null` when it cannot be read. */
export type FileDigest = { readonly mode: number; readonly sha256: string } | null;

const CHUNK = 1 << 20;

/**
 * An incremental SHA-256, as `node:crypto`'s `createHash("sha256")` and `Sha256` both are.
 *
 * @example
 * ```ts
 * import type { Hasher } from "./digest.ts";
 * import { Sha256 } from "./sha256.ts";
 * const hasher: Hasher = new Sha256();
 * hasher.update("abc");
 * console.log(hasher.digest("hex").slice(0, 8)); // ba7816bf
 * ```
 */
export interface Hasher {
  /** Hash more data (a string as UTF-8). */
  update(data: string | Uint8Array): unknown;
  /** Finish, as lowercase hex. */
  digest(encoding: "hex"): string;
}

let newHasher: () => Hasher = () => new Sha256();

/**
 * Hash with `factory`'s hashers from now on, in this thread. Internal: the hashing Worker
 * installs `node:crypto` with it. Any factory must give the same digests (SHA-256).
 *
 * @example
 * ```ts
 * import { sha256, useHasher } from "./digest.ts";
 * import { Sha256 } from "./sha256.ts";
 * useHasher(() => new Sha256());
 * console.log(sha256("")); // e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
 * ```
 */
export function useHasher(factory: () => Hasher): void {
  newHasher = factory;
}

// node:crypto hashes about 1.8 GB/s here, `Sha256` 0.24 GB/s once V8 has optimized it (less
// in the first MB of a process), and loading node:crypto (with the Node compatibility layer)
// takes 15-25 ms. Measured on trees of small files in a fresh process, both take the same
// time at about 2 MB; from 4 MB, node:crypto is clearly ahead (11 ms at 4 MB, 22 at 8). Both
// paths load it from this much.
const NODE_CRYPTO_BYTES = 4 << 20;
let nodeCryptoTried = false;

type NodeProcess = { getBuiltinModule?(name: string): unknown };

/**
 * Load `node:crypto` (once) and hash with it from then on. `process.getBuiltinModule` loads
 * it synchronously, so the synchronous path (`Image.uri`) gets it too; merely touching
 * `process` starts the Node layer, hence only here.
 */
function useNodeCrypto(): void {
  if (nodeCryptoTried) return;
  nodeCryptoTried = true;
  const process = (globalThis as { process?: NodeProcess }).process;
  const crypto = process?.getBuiltinModule?.("node:crypto") as
    | { createHash(algorithm: string): Hasher }
    | undefined;
  // Not available: the TypeScript hasher gives the same digests, only slower.
  if (crypto) useHasher(() => crypto.createHash("sha256"));
}

function hexOf(digest: ArrayBuffer): string {
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * SHA-256 of a string (as UTF-8), as hex, by Web Crypto: the same digest as {@link sha256},
 * but native from the first call, where the TypeScript hasher runs interpreted until V8 has
 * warmed it up (a few milliseconds for a no-op build's few kilobytes).
 *
 * @example
 * ```ts
 * import { sha256, sha256Async } from "./digest.ts";
 * console.log((await sha256Async("abc")) === sha256("abc")); // true
 * ```
 */
export async function sha256Async(data: string): Promise<string> {
  return hexOf(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(data)));
}

/** SHA-256 of a string or bytes, as hex. */
export function sha256(data: string | Uint8Array): string {
  const hash = newHasher();
  hash.update(data);
  return hash.digest("hex");
}

// Digests of unchanged files are reused within a process: `uri` after a build is free.
// Times come in milliseconds: a file rewritten at the same size within the same millisecond
// keeps its key. So, as git does with "racily clean" files, only digests of settled files
// are remembered (`isSettled`); a later change moves the change time past them.
// By absolute path: the digest and the stat fields it was taken at (compared field by field:
// a string key per file costs more than the lookup saves; a whole Deno.FileInfo, with its
// four Dates, costs several times the memory of these numbers).
interface Remembered {
  readonly size: number;
  readonly mtime: number | undefined;
  readonly ctime: number | undefined;
  readonly ino: number | null;
  readonly dev: number;
  readonly sha256: string;
}
const memory = new Map<string, Remembered>();

function fromMemory(path: string, info: Deno.FileInfo): string | undefined {
  const known = memory.get(path);
  if (known === undefined) return undefined;
  return known.size === info.size && known.mtime === info.mtime?.getTime() &&
      known.ctime === info.ctime?.getTime() && known.ino === info.ino && known.dev === info.dev
    ? known.sha256
    : undefined;
}

/** Remember `sha256` for `path` at `info` in this process (not in a hashing Worker: it ends). */
function keepInMemory(path: string, info: Deno.FileInfo, sha256: string): void {
  if (IN_WORKER) return;
  memory.set(path, {
    size: info.size,
    mtime: info.mtime?.getTime(),
    ctime: info.ctime?.getTime(),
    ino: info.ino,
    dev: info.dev,
    sha256,
  });
}

/** Where and by which clock digests are remembered across runs. */
interface CacheSetting {
  /** The folder of the digest cache; `undefined`: none. */
  readonly dir: string | undefined;
  /** The clock the settled rule reads. */
  readonly now: () => number;
}

// Workers hash files for a tree whose cache the main thread keeps: they keep none.
const IN_WORKER =
  typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === "function";
let setting: CacheSetting | undefined;

/**
 * Where digests are remembered across runs: in `options.dir` (`undefined`: nowhere), with
 * `options.now` as the clock that says which files are settled (default `Date.now`; tests
 * move it on, as files cannot be made older). Without options, back to the default:
 * `imgtoolCacheDir("digests")`, read from the environment when first needed.
 *
 * @example
 * ```ts
 * import { treeDigestSync, useDigestCache } from "./digest.ts";
 * useDigestCache({ dir: undefined }); // hash everything, remember nothing across runs
 * console.log(treeDigestSync(await Deno.makeTempDir())?.length); // 64
 * useDigestCache();
 * ```
 */
export function useDigestCache(
  options?: { readonly dir: string | undefined; readonly now?: () => number },
): void {
  setting = options && { dir: options.dir, now: options.now ?? Date.now };
}

function cacheSetting(): CacheSetting {
  return setting ??= {
    dir: IN_WORKER ? undefined : imgtoolCacheDir("digests"),
    now: Date.now,
  };
}

/** The digest cache of `root`, for files looked at from `since` on. */
function openCache(root: string, since: number): DigestCache {
  return new DigestCache(root, { dir: cacheSetting().dir, since });
}

/**
 * A file's remembered digest: from `cache` (at `path` there), else from this process's memory
 * (then also handed to `cache`). Either way, it stays in memory for this process.
 */
function recall(
  cache: DigestCache,
  path: string,
  absolute: string,
  info: Deno.FileInfo,
): string | undefined {
  const cached = cache.get(path, info);
  if (cached !== undefined) {
    keepInMemory(absolute, info, cached);
    return cached;
  }
  const remembered = fromMemory(absolute, info);
  if (remembered !== undefined) cache.set(path, info, remembered);
  return remembered;
}

/** Keep a digest just computed, in memory when settled at `since`, and in `cache`. */
function remember(
  cache: DigestCache,
  path: string,
  absolute: string,
  info: Deno.FileInfo,
  hex: string,
  since: number,
): void {
  if (isSettled(info, since)) keepInMemory(absolute, info, hex);
  cache.set(path, info, hex);
}

// In the asynchronous path, files up to this size are read whole in one synchronous call:
// per-file calls, not hashing, dominate trees of many small files, and a synchronous read of
// a small file takes microseconds where an asynchronous one goes through a thread pool.
const WHOLE_FILE = 64 << 10;
// The synchronous path runs one file at a time: one buffer serves them all.
let syncBuffer: Uint8Array | undefined;

/**
 * A file's digest, read synchronously; `info` saves a stat when the caller has one. Kept
 * across runs in the digest cache of the file itself.
 */
export function fileDigestSync(path: string, info?: Deno.FileInfo): FileDigest {
  const since = cacheSetting().now();
  try {
    info ??= Deno.statSync(path);
  } catch {
    return null;
  }
  if (!info.isFile) return null;
  let hex = fromMemory(path, info);
  if (hex === undefined) {
    const cache = openCache(path, since);
    hex = recall(cache, "", path, info) ?? hashFileSync(path, info) ?? undefined;
    if (hex === undefined) return null;
    remember(cache, "", path, info, hex, since);
    cache.save();
  }
  return { mode: stagedMode(info.mode), sha256: hex };
}

/** Read and hash a file synchronously; `null` when it cannot be read. */
function hashFileSync(path: string, info: Deno.FileInfo): string | null {
  if (info.size >= NODE_CRYPTO_BYTES) useNodeCrypto();
  // One reused buffer for every file, small or large: no garbage per file, flat memory.
  const hash = newHasher();
  const buffer = syncBuffer ??= new Uint8Array(CHUNK);
  try {
    using file = Deno.openSync(path);
    let total = 0;
    for (let n = file.readSync(buffer); n !== null; n = file.readSync(buffer)) {
      hash.update(n === buffer.length ? buffer : buffer.subarray(0, n));
      total += n;
      // A regular file is read to its end once its stat size is in: skip the read that
      // would only say "end of file".
      if (total === info.size && n < buffer.length) break;
    }
  } catch {
    return null;
  }
  return hash.digest("hex");
}

/**
 * A file's digest, read asynchronously. `info` saves a stat when the caller has one;
 * `buffer` (1 MiB) is reused for large files, so memory stays flat. Kept across runs in the
 * digest cache of the file itself.
 */
export async function fileDigest(
  path: string,
  info?: Deno.FileInfo,
  buffer?: Uint8Array,
): Promise<FileDigest> {
  const since = cacheSetting().now();
  try {
    info ??= await Deno.stat(path);
  } catch {
    return null;
  }
  if (!info.isFile) return null;
  let hex = fromMemory(path, info);
  if (hex === undefined) {
    const cache = openCache(path, since);
    hex = recall(cache, "", path, info) ?? await hashFile(path, info, buffer) ?? undefined;
    if (hex === undefined) return null;
    remember(cache, "", path, info, hex, since);
    cache.save();
  }
  return { mode: stagedMode(info.mode), sha256: hex };
}

/** Read and hash a file asynchronously; `null` when it cannot be read. */
async function hashFile(
  path: string,
  info: Deno.FileInfo,
  buffer?: Uint8Array,
): Promise<string | null> {
  if (info.size >= NODE_CRYPTO_BYTES) useNodeCrypto();
  try {
    if (info.size <= WHOLE_FILE) {
      // Web Crypto is native and needs no Node layer: the fastest for a whole small file.
      return hexOf(await crypto.subtle.digest("SHA-256", Deno.readFileSync(path)));
    }
    const hash = newHasher();
    const chunk = buffer ?? new Uint8Array(CHUNK);
    using file = await Deno.open(path);
    for (let n = await file.read(chunk); n !== null; n = await file.read(chunk)) {
      hash.update(n === chunk.length ? chunk : chunk.subarray(0, n));
    }
    return hash.digest("hex");
  } catch {
    return null;
  }
}

/**
 * List a folder's tree, sorted by path, minus what `ignore` excludes. Returns `null` when
 * `root` is not a readable folder, or holds a folder this user may not list.
 */
export function listTree(root: string, ignore?: IgnoreRules): TreeEntry[] | null {
  try {
    if (!Deno.statSync(root).isDirectory) return null;
  } catch {
    return null;
  }
  const entries: TreeEntry[] = [];
  const prune = !ignore?.mayReinclude();
  const walk = (dir: string, prefix: string): void => {
    const names = [...Deno.readDirSync(dir)].map((entry) => entry.name).sort();
    for (const name of names) {
      const absolute = join(dir, name);
      const path = prefix ? `${prefix}/${name}` : name;
      const info = Deno.lstatSync(absolute);
      const ignored = ignore?.ignores(absolute, root) ?? false;
      const mode = stagedMode(info.mode, info.isDirectory ? "dir" : "file");
      if (info.isDirectory) {
        if (ignored && prune) continue;
        const before = entries.length;
        entries.push({ path, absolute, type: "dir", mode, size: 0 });
        walk(absolute, path);
        // An ignored folder stays only for the files a `!` pattern brought back.
        if (ignored && entries.length === before + 1) entries.pop();
      } else if (ignored) {
        continue;
      } else if (info.isSymlink) {
        entries.push({
          path,
          absolute,
          type: "symlink",
          mode,
          size: 0,
          target: Deno.readLinkSync(absolute),
        });
      } else if (info.isFile) {
        entries.push({ path, absolute, type: "file", mode, size: info.size, info });
      }
      // Sockets, fifos and devices cannot be copied into an image: they are left out.
    }
  };
  try {
    walk(root, "");
  } catch (error) {
    // A folder this user may not list or enter: the tree counts as unreadable, as a missing
    // one does (`uri` never fails for it); validation names the folder.
    if (error instanceof Deno.errors.PermissionDenied) return null;
    throw error;
  }
  return entries;
}

/** Encode a listed tree and its file digests into the tree digest. */
function treeLines(
  entries: readonly TreeEntry[],
  digests: readonly (FileDigest | undefined)[],
): string[] {
  const lines = ["imgtool-tree/1\n"];
  entries.forEach((entry, index) => {
    const record = entry.type === "file"
      ? ["f", entry.path, entry.mode, entry.size, digests[index]?.sha256 ?? null]
      : entry.type === "dir"
      ? ["d", entry.path, entry.mode]
      : ["l", entry.path, entry.target ?? ""];
    lines.push(`${JSON.stringify(record)}\n`);
  });
  return lines;
}

/** A listed tree's digest: SHA-256 of its encoding, a line per entry. */
function encodeTree(
  entries: readonly TreeEntry[],
  digests: readonly (FileDigest | undefined)[],
): string {
  const hash = newHasher();
  for (const line of treeLines(entries, digests)) hash.update(line);
  return hash.digest("hex");
}

/** {@link encodeTree}, hashed by Web Crypto (see {@link sha256Async}). */
function encodeTreeAsync(
  entries: readonly TreeEntry[],
  digests: readonly (FileDigest | undefined)[],
): Promise<string> {
  return sha256Async(treeLines(entries, digests).join(""));
}

/** A listed tree's files whose digests are not remembered, by index into the listing. */
type Unhashed = { entry: TreeEntry & { info: Deno.FileInfo }; index: number }[];

/**
 * Fill `digests` with what `cache` or memory remembers of the tree's files; return the files
 * left to hash.
 */
function recallTree(
  cache: DigestCache,
  entries: readonly TreeEntry[],
  digests: (FileDigest | undefined)[],
): Unhashed {
  const unhashed: Unhashed = [];
  entries.forEach((entry, index) => {
    if (entry.type !== "file" || !entry.info) return;
    const hex = recall(cache, entry.path, entry.absolute, entry.info);
    if (hex !== undefined) digests[index] = { mode: entry.mode, sha256: hex };
    else unhashed.push({ entry: entry as Unhashed[number]["entry"], index });
  });
  return unhashed;
}

/**
 * A tree's digest, read synchronously; `null` when the folder is missing. Files unchanged
 * since an earlier run are not read: their digests are kept in the tree's digest cache.
 */
export function treeDigestSync(root: string, ignore?: IgnoreRules): string | null {
  const since = cacheSetting().now();
  const entries = listTree(root, ignore);
  if (entries === null) return null;
  const cache = openCache(root, since);
  const digests: (FileDigest | undefined)[] = new Array(entries.length);
  const files = recallTree(cache, entries, digests);
  const bytes = files.reduce((sum, { entry }) => sum + entry.size, 0);
  if (bytes >= NODE_CRYPTO_BYTES) useNodeCrypto();
  for (const { entry, index } of files) {
    const hex = hashFileSync(entry.absolute, entry.info);
    digests[index] = hex === null ? null : { mode: entry.mode, sha256: hex };
    if (hex !== null) remember(cache, entry.path, entry.absolute, entry.info, hex, since);
  }
  cache.save();
  return encodeTree(entries, digests);
}

/** Starts one hashing Worker (see {@link useWorkerFactory}). */
let newWorker = (url: URL): Worker => new Worker(url, { type: "module" });

/**
 * Start hashing Workers with `factory` from now on; without one, back to `new Worker`.
 * Internal: tests wrap the real Worker to see which trees are hashed in Workers, where only
 * the digest (the same either way) would show otherwise.
 *
 * @example
 * ```ts
 * import { treeDigest, useDigestCache, useWorkerFactory } from "./digest.ts";
 * let started = 0;
 * useWorkerFactory((url) => {
 *   started++;
 *   return new Worker(url, { type: "module" });
 * });
 * useDigestCache({ dir: undefined });
 * const root = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${root}/file.txt`, "hello");
 * await treeDigest(root); // 5 bytes: hashed in this thread
 * await treeDigest(root, undefined, 8, 0); // a threshold of 0 bytes: hashed in a Worker
 * console.log(started); // 1
 * useWorkerFactory();
 * useDigestCache();
 * ```
 */
export function useWorkerFactory(factory?: (url: URL) => Worker): void {
  newWorker = factory ?? ((url) => new Worker(url, { type: "module" }));
}

/** Trees at least this large are hashed in Workers, one per core; smaller ones in this thread. */
export const WORKER_THRESHOLD_BYTES = 64 << 20;
const BATCH_BYTES = 8 << 20;

/**
 * A tree's digest, hashing files in parallel: in Workers (one per core) for large trees,
 * else up to `concurrency` at a time in this thread. `null` when the folder is missing.
 * Files unchanged since an earlier run are not read: their digests are kept in the tree's
 * digest cache.
 */
export async function treeDigest(
  root: string,
  ignore?: IgnoreRules,
  concurrency = 8,
  workerThreshold = WORKER_THRESHOLD_BYTES,
): Promise<string | null> {
  const since = cacheSetting().now();
  const entries = listTree(root, ignore);
  if (entries === null) return null;
  const cache = openCache(root, since);
  const digests: (FileDigest | undefined)[] = new Array(entries.length);
  // Files hashed before (and unchanged) need no reading.
  const files = recallTree(cache, entries, digests);
  const bytes = files.reduce((sum, { entry }) => sum + entry.size, 0);
  const hashedInWorkers = bytes >= workerThreshold && files.length > 0 &&
    await hashInWorkers(files, digests);
  if (!hashedInWorkers) {
    if (bytes >= NODE_CRYPTO_BYTES) useNodeCrypto();
    let next = 0;
    const worker = async () => {
      const buffer = new Uint8Array(CHUNK);
      while (next < files.length) {
        const { entry, index } = files[next++];
        const hex = await hashFile(entry.absolute, entry.info, buffer);
        digests[index] = hex === null ? null : { mode: entry.mode, sha256: hex };
      }
    };
    // No more slots than files: each one allocates its read buffer.
    await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));
  }
  for (const { entry, index } of files) {
    const hex = digests[index]?.sha256;
    if (hex !== undefined) remember(cache, entry.path, entry.absolute, entry.info, hex, since);
  }
  cache.save();
  return await encodeTreeAsync(entries, digests);
}

/**
 * Hash `files` in Workers, one per core, handing out batches of about 8 MB; digests land in
 * `digests`. Returns false when Workers cannot be started here.
 */
async function hashInWorkers(
  files: Unhashed,
  digests: (FileDigest | undefined)[],
): Promise<boolean> {
  const batches: { index: number; path: string; info?: Deno.FileInfo }[][] = [[]];
  let batchBytes = 0;
  for (const { entry, index } of files) {
    if (batchBytes >= BATCH_BYTES) {
      batches.push([]);
      batchBytes = 0;
    }
    batches[batches.length - 1].push({ index, path: entry.absolute, info: entry.info });
    batchBytes += entry.size;
  }
  const count = Math.max(1, Math.min(navigator.hardwareConcurrency ?? 2, batches.length, 8));
  let pool: Worker[];
  try {
    // The worker module sits beside this one: digest_worker.ts among the sources, and
    // digest_worker.js in the bundle (scripts/bundle.ts), beside the chunk holding this code.
    const extension = import.meta.url.endsWith(".js") ? "js" : "ts";
    const url = new URL(`./digest_worker.${extension}`, import.meta.url);
    pool = Array.from({ length: count }, () => newWorker(url));
  } catch {
    return false;
  }
  const byIndex = new Map(files.map(({ entry, index }) => [index, entry]));
  let next = 0;
  try {
    await Promise.all(pool.map((worker) =>
      new Promise<void>((resolve, reject) => {
        const send = () => {
          if (next >= batches.length) return resolve();
          worker.postMessage({ files: batches[next++] });
        };
        worker.onmessage = (event: MessageEvent<[number, string | null][]>) => {
          for (const [index, hex] of event.data) {
            const entry = byIndex.get(index);
            if (!entry) continue;
            digests[index] = hex === null ? null : { mode: entry.mode, sha256: hex };
          }
          send();
        };
        worker.onerror = (event) => {
          event.preventDefault();
          reject(new Error(`hashing worker failed: ${event.message}`));
        };
        send();
      })
    ));
  } finally {
    for (const worker of pool) worker.terminate();
  }
  return true;
}
