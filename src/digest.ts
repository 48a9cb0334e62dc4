/**
 * Content digests of files and folder trees, for the image identity.
 *
 * What counts: names (relative), types, sizes, contents, and modes by the rule files are
 * staged with (`./staged_mode.ts`: a file's executable bit, as git keeps it; folders
 * 0755). What does not: times, owners, other mode bits (the umask), absolute paths, the
 * order a directory listing comes in. Ignored paths are left out before hashing. Files are
 * hashed streaming, a bounded number at a time, so memory stays flat however large the tree.
 * The same digests come out of the synchronous path (used by `Image.uri`) and the parallel
 * one (used by builds): large trees are hashed in Workers, fed while the tree is still being
 * walked, and by this thread once the walk is done (`./hash_pool.ts`).
 *
 * No `node:` module is imported here: the first one starts Deno's Node compatibility layer,
 * which costs more than everything else a no-op build does. Hashing is done by the plain
 * TypeScript SHA-256 of `./sha256.ts`, until there is enough to hash that a native one
 * (several times faster: the system's libcrypto, `./libcrypto.ts`, else `node:crypto`) pays
 * for its loading: then it is loaded, and serves from then on. All give the same digests.
 *
 * Digests are remembered, as git's index remembers them: each walk of a tree (or look at a
 * single file) is kept as a `TreeIndex` (`./tree_index.ts`) of its entries, their stat keys
 * and digests, within the process and across runs in the digest cache (`./digest_cache.ts`,
 * one file per tree or single file, under `~/.cache/imgtool/digests`). The next walk holds
 * each entry against it (`./tree_recall.ts`): a file unchanged since is not read again, and
 * a tree whose every entry is unchanged has its remembered digest, with no encoding to hash.
 * A digest is the same whether it was remembered or hashed.
 *
 * @module
 */

import { imgtoolCacheDir } from "./cache_dir.ts";
import { readDigestIndex, writeDigestIndex } from "./digest_cache.ts";
import { madeGarbage } from "./garbage.ts";
import { hashFileInto, READ_CHUNK } from "./file_hash.ts";
import { type FileStat, statFile } from "./file_stat.ts";
import { digestWorkerUrl, HashPool } from "./hash_pool.ts";
import type { IgnoreRules } from "./ignore.ts";
import { nativeSha256 } from "./libcrypto.ts";
import { resolve } from "./path.ts";
import { hexOf, Sha256 } from "./sha256.ts";
import { stagedMode } from "./staged_mode.ts";
import { FILE, type TreeIndex } from "./tree_index.ts";
import { TreeRecall } from "./tree_recall.ts";
import { treeText } from "./tree_text.ts";
import { walkTree } from "./tree_walk.ts";

export { listTree, type TreeEntry } from "./tree_walk.ts";

/** A file's content and staged mode (`stagedMode`), or `null` when it cannot be read. */
export type FileDigest = { readonly mode: number; readonly sha256: string } | null;

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
 * Hash with `factory`'s hashers from now on, in this thread. Internal: a native hasher is
 * installed with it once there is enough to hash. Any factory must give the same digests
 * (SHA-256).
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

// A native hasher (libcrypto's or node:crypto's) hashes about 1.2 GB/s here, `Sha256` 0.24
// GB/s once V8 has optimized it (less in the first MB of a process). Loading node:crypto
// (with the Node compatibility layer) takes 15-50 ms, libcrypto 3-4. Measured with
// node:crypto on trees of small files in a fresh process, both took the same time at about
// 2 MB; from 4 MB, node:crypto was clearly ahead (11 ms at 4 MB, 22 at 8). Both paths load a
// native hasher from this much.
const NATIVE_HASHER_BYTES = 4 << 20;
let nativeHasherTried = false;
let nativeHasherInUse = false;

type NodeProcess = { getBuiltinModule?(name: string): unknown };

/**
 * Load a native SHA-256 (once) and hash with it from then on: libcrypto's (`./libcrypto.ts`),
 * else `node:crypto`'s. Both load synchronously, so the synchronous path (`Image.uri`) gets
 * them too; merely touching `process` starts the Node layer, hence only here, and only
 * without libcrypto.
 */
function useNativeHasher(): void {
  if (nativeHasherTried) return;
  nativeHasherTried = true;
  const libcrypto = nativeSha256();
  if (libcrypto) {
    useHasher(libcrypto);
    nativeHasherInUse = true;
    return;
  }
  const process = (globalThis as { process?: NodeProcess }).process;
  const crypto = process?.getBuiltinModule?.("node:crypto") as
    | { createHash(algorithm: string): Hasher }
    | undefined;
  // Not available: the TypeScript hasher gives the same digests, only slower.
  if (crypto) {
    useHasher(() => crypto.createHash("sha256"));
    nativeHasherInUse = true;
  }
}

/**
 * SHA-256 of a string (as UTF-8) or bytes, as hex, by Web Crypto: the same digest as {@link sha256},
 * but native from the first call, where the TypeScript hasher runs interpreted until V8 has
 * warmed it up (a few milliseconds for a no-op build's few kilobytes).
 *
 * @example
 * ```ts
 * import { sha256, sha256Async } from "./digest.ts";
 * console.log((await sha256Async("abc")) === sha256("abc")); // true
 * ```
 */
export async function sha256Async(data: string | Uint8Array<ArrayBuffer>): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return hexOf(new Uint8Array(digest));
}

/** SHA-256 of a string or bytes, as hex. */
export function sha256(data: string | Uint8Array): string {
  const hash = newHasher();
  hash.update(data);
  return hash.digest("hex");
}

/** Where and by which clock digests are remembered across runs. */
interface CacheSetting {
  /** The folder of the digest cache; `undefined`: none. */
  readonly dir: string | undefined;
  /** The clock the settled rule reads. */
  readonly now: () => number;
}

let setting: CacheSetting | undefined;

/**
 * Where digests are remembered across runs: in `options.dir` (`undefined`: nowhere), with
 * `options.now` as the clock that says which files are settled (default `Date.now`; tests
 * move it on, as files cannot be made older). Without options, back to the default:
 * `imgtoolCacheDir("digests")`, read from the environment when first needed. Either way,
 * what this process remembered so far is forgotten.
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
  remembered.clear();
  walks.clear();
}

function cacheSetting(): CacheSetting {
  return setting ??= { dir: imgtoolCacheDir("digests"), now: Date.now };
}

// The latest index of each root (absolute: a tree's folder or a single file) this process
// walked or read: `uri` after a build reads nothing, and a file of a tree walked before has
// its digest without a cache entry of its own.
const remembered = new Map<string, TreeIndex>();

// The latest completed walk of each tree root (absolute) in this process, with the ignore
// rules it was walked under (the identity tree lists a tree from the walk its digest took),
// and whether it was the first walk of that root.
const walks = new Map<
  string,
  { readonly ignore: IgnoreRules | undefined; readonly tree: WalkedTree; readonly first: boolean }
>();
// Every tree root this process has completed a walk of.
const everWalked = new Set<string>();

/** The remembered index of `root`: this process's, else the digest cache's. */
function recallIndex(root: string): TreeIndex | undefined {
  return remembered.get(root) ?? readDigestIndex(cacheSetting().dir, root);
}

/** Remember `index` for `root` in this process, and in the digest cache when `write`. */
function keepIndex(root: string, index: TreeIndex, write: boolean): void {
  remembered.set(root, index);
  if (write) writeDigestIndex(cacheSetting().dir, root, index);
}

/** The believed digest of entry `at` of `index` (a file), if `info` is its stat now. */
function believedDigest(index: TreeIndex, at: number, info: FileStat): string | undefined {
  if (at < 0 || index.kinds[at] !== FILE || index.believed[at] !== 1) return undefined;
  return index.hasStat(at, info) ? index.hex(at) : undefined;
}

/**
 * The digest of the file `path` (absolute) as `info` describes it, from what this process
 * remembers: of the file itself, or of a tree it is in.
 */
function fromMemory(path: string, info: FileStat): string | undefined {
  const own = remembered.get(path);
  const digest = own && believedDigest(own, own.find(""), info);
  if (digest !== undefined) return digest;
  for (const [root, index] of remembered) {
    const prefix = root.endsWith("/") ? root : `${root}/`;
    if (!path.startsWith(prefix)) continue;
    const found = believedDigest(index, index.find(path.slice(prefix.length)), info);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * A single file's digest, remembered or computed by `hash`; `null` when it cannot be read.
 * Remembered as a root of its own, unless this process knows it from a tree it is in.
 */
function singleFile(
  path: string,
  info: FileStat,
  since: number,
  hash: () => string | null | Promise<string | null>,
): string | null | Promise<string | null> {
  const root = resolve(path);
  const inMemory = fromMemory(root, info);
  if (inMemory !== undefined) return inMemory;
  const known = readDigestIndex(cacheSetting().dir, root);
  const cached = known && believedDigest(known, known.find(""), info);
  const keep = (hex: string | null) => {
    if (hex === null) return null;
    const recall = new TreeRecall(known, since);
    recall.visit("", root, FILE, info);
    // Not remembered: the one file to hash.
    if (cached === undefined) recall.hashed(0, hex);
    const { index, write } = recall.remember(hex);
    if (index.believed[0] === 1) keepIndex(root, index, write);
    return hex;
  };
  if (cached !== undefined) return keep(cached);
  const hex = hash();
  return hex instanceof Promise ? hex.then(keep) : keep(hex);
}

// The synchronous path runs one file at a time: one buffer serves them all.
let syncBuffer: Uint8Array | undefined;

/**
 * A file's digest, read synchronously; `info` saves a stat when the caller has one. Kept
 * across runs in the digest cache of the file itself.
 */
export function fileDigestSync(path: string, info?: FileStat): FileDigest {
  const since = cacheSetting().now();
  try {
    info ??= statFile(path);
  } catch {
    return null;
  }
  if (!info.isFile) return null;
  const stat = info;
  const hex = singleFile(path, stat, since, () => hashFileSync(path, stat.size)) as string | null;
  return hex === null ? null : { mode: stagedMode(info.mode), sha256: hex };
}

/** Read and hash a file synchronously; `null` when it cannot be read. */
function hashFileSync(path: string, size: number): string | null {
  if (size >= NATIVE_HASHER_BYTES) useNativeHasher();
  // One reused buffer for every file, small or large: no garbage per file, flat memory.
  const hash = newHasher();
  const buffer = syncBuffer ??= new Uint8Array(READ_CHUNK);
  return hashFileInto(hash, path, size, buffer) ? hash.digest("hex") : null;
}

/**
 * A file's digest, read asynchronously. `info` saves a stat when the caller has one;
 * `buffer` (256 KiB) is reused for large files, so memory stays flat. Kept across runs in the
 * digest cache of the file itself.
 */
export async function fileDigest(
  path: string,
  info?: FileStat,
  buffer?: Uint8Array,
): Promise<FileDigest> {
  const since = cacheSetting().now();
  try {
    info ??= statFile(path);
  } catch {
    return null;
  }
  if (!info.isFile) return null;
  const stat = info;
  const hex = await singleFile(path, stat, since, () => hashFile(path, stat.size, buffer));
  return hex === null ? null : { mode: stagedMode(info.mode), sha256: hex };
}

// In the asynchronous path, files up to this size are read whole in one synchronous call:
// per-file calls, not hashing, dominate trees of many small files, and a synchronous read of
// a small file takes microseconds where an asynchronous one goes through a thread pool.
const WHOLE_FILE = 64 << 10;

/** Read and hash a file asynchronously; `null` when it cannot be read. */
async function hashFile(path: string, size: number, buffer?: Uint8Array): Promise<string | null> {
  if (size >= NATIVE_HASHER_BYTES) useNativeHasher();
  try {
    if (size <= WHOLE_FILE) {
      // Web Crypto is native and needs no Node layer: the fastest for a whole small file.
      return hexOf(new Uint8Array(await crypto.subtle.digest("SHA-256", Deno.readFileSync(path))));
    }
    const hash = newHasher();
    const chunk = buffer ?? new Uint8Array(READ_CHUNK);
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
 * A folder tree as one walk found it: its entries in walk order, each file with its digest
 * (`index.hex(at)`), except the files in `unreadable`, which could not be read.
 *
 * @example
 * ```ts
 * import { walkedTree } from "./digest.ts";
 * import { FILE } from "./tree_index.ts";
 * const root = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${root}/a.txt`, "abc");
 * const { index, unreadable } = (await walkedTree(root))!;
 * console.log(index.paths, index.kinds[0] === FILE, unreadable.has(0)); // [ "a.txt" ] true false
 * console.log(index.hex(0).slice(0, 8)); // ba7816bf
 * ```
 */
export interface WalkedTree {
  /** The entries (ignored names too, as kind `IGNORED`), their stat keys and digests. */
  readonly index: TreeIndex;
  /** The entries (files) that could not be read: they have no digest. */
  readonly unreadable: ReadonlySet<number>;
  /**
   * Given by `walkedTree` with `reuse`: the walk is the first this process made of `root`,
   * taken again, so its digests are the ones every tag computed from that walk took. A
   * process that walked the tree again since (another image's identity, a check after a
   * build) may have seen other content: then this is false.
   */
  readonly first?: boolean;
}

/**
 * The tree at `root` minus what `ignore` excludes, as a walk finds it, every file with its
 * digest (remembered or hashed, as {@link treeDigest} takes them: a tree's listing and its
 * digest come from the same walk); `null` when the folder is missing or unreadable. With
 * `reuse`, the walk this process made last of `root` under the same `ignore` rules (the same
 * object), if it made one, is taken as it is: no entry is looked at again.
 */
export async function walkedTree(
  root: string,
  ignore?: IgnoreRules,
  options: { readonly reuse?: boolean } = {},
): Promise<WalkedTree | null> {
  const key = resolve(root);
  const last = walks.get(key);
  if (options.reuse && last !== undefined && last.ignore === ignore) {
    return { ...last.tree, first: last.first };
  }
  return (await walkAndDigest(root, ignore))?.tree ?? null;
}

/** The walk of `root` held against what is remembered of it; `null` when it is no folder. */
function walkRecalling(
  root: string,
  ignore: IgnoreRules | undefined,
  since: number,
  onUnhashed?: (recall: TreeRecall, n: number) => void,
): TreeRecall | null {
  const key = resolve(root);
  // Until this walk completes, there is no walk of the tree to reuse.
  walks.delete(key);
  const recall = new TreeRecall(recallIndex(key), since);
  if (onUnhashed) recall.onUnhashed = (n) => onUnhashed(recall, n);
  // Every entry as remembered: no walk (the common case of a big tree's no-op build).
  if (recall.checkRemembered(root, ignore)) return recall;
  return walkTree(root, ignore, recall.visit, recall.walkOptions) ? recall : null;
}

/** A tree's digest and the walk it was taken over. */
interface DigestedTree {
  readonly digest: string;
  readonly tree: WalkedTree;
}

/**
 * The digest of the tree's text, made in a function of its own so that the text (some 5 MB
 * for 50,000 files) is garbage once this returns, before the index is encoded.
 */
async function textDigest(recall: TreeRecall): Promise<string> {
  const text = treeText(recall.index, recall.unreadable);
  // The native hasher when this thread hashed files with it; else Web Crypto, native at once.
  return nativeHasherInUse ? sha256(text) : await sha256Async(text);
}

/** Remember what the walk of `root` found, now that the tree's digest is `digest`. */
function rememberTree(
  root: string,
  ignore: IgnoreRules | undefined,
  recall: TreeRecall,
  digest: string,
): DigestedTree {
  const { index, write } = recall.remember(digest);
  madeGarbage(index.length);
  const key = resolve(root);
  keepIndex(key, index, write);
  const tree = { index, unreadable: recall.unreadable };
  walks.set(key, { ignore, tree, first: !everWalked.has(key) });
  everWalked.add(key);
  return { digest, tree };
}

/**
 * A tree's digest, read synchronously; `null` when the folder is missing. Files unchanged
 * since an earlier run are not read: their digests are kept in the tree's digest cache.
 */
export function treeDigestSync(root: string, ignore?: IgnoreRules): string | null {
  const recall = walkRecalling(root, ignore, cacheSetting().now());
  if (recall === null) return null;
  const unchanged = recall.unchanged();
  if (unchanged !== undefined) return rememberTree(root, ignore, recall, unchanged).digest;
  if (recall.unhashedBytes >= NATIVE_HASHER_BYTES) useNativeHasher();
  recall.unhashed.forEach((at, n) => {
    recall.hashed(n, hashFileSync(recall.absolutes[n], recall.index.size(at)));
  });
  const hash = newHasher();
  hash.update(treeText(recall.index, recall.unreadable));
  return rememberTree(root, ignore, recall, hash.digest("hex")).digest;
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
 * console.log(started); // 0
 * await treeDigest(root, undefined, 8, 0); // a threshold of 0 bytes: hashed in a Worker
 * console.log(started); // 1
 * useWorkerFactory();
 * useDigestCache();
 * ```
 */
export function useWorkerFactory(factory?: (url: URL) => Worker): void {
  newWorker = factory ?? ((url) => new Worker(url, { type: "module" }));
}

/** Trees with at least this much to read are hashed in Workers, and by this thread. */
export const WORKER_THRESHOLD_BYTES = 64 << 20;

/**
 * Start hashing Workers for `recall`'s files, one per core but this thread's, which hashes
 * too once its walk is done (`./hash_pool.ts`); `undefined` when they cannot.
 */
function startPool(recall: TreeRecall): HashPool | undefined {
  const count = Math.max(1, Math.min((navigator.hardwareConcurrency ?? 2) - 1, 8));
  const url = digestWorkerUrl();
  return HashPool.start(count, () => newWorker(url), (n, digest) => recall.hashed(n, digest));
}

/**
 * A tree's digest, hashing files in parallel: in Workers (one per core) once there is
 * `workerThreshold` or more to read, handed out while the walk goes on; else up to
 * `concurrency` at a time in this thread. `null` when the folder is missing. Files unchanged
 * since an earlier run are not read: their digests are kept in the tree's digest cache.
 */
export async function treeDigest(
  root: string,
  ignore?: IgnoreRules,
  concurrency = 8,
  workerThreshold = WORKER_THRESHOLD_BYTES,
): Promise<string | null> {
  return (await walkAndDigest(root, ignore, concurrency, workerThreshold))?.digest ?? null;
}

/** {@link treeDigest}, with the walk it was taken over. */
async function walkAndDigest(
  root: string,
  ignore: IgnoreRules | undefined,
  concurrency = 8,
  workerThreshold = WORKER_THRESHOLD_BYTES,
): Promise<DigestedTree | null> {
  // Set from the walk's callback, once there is enough to read.
  const workers: { pool?: HashPool; none?: boolean } = {};
  const handOut = (recall: TreeRecall, n: number) => {
    if (workers.pool === undefined) {
      if (workers.none || recall.unhashedBytes < workerThreshold) return;
      workers.pool = startPool(recall);
      if (workers.pool === undefined) return void (workers.none = true);
      // Those found before there was enough to start the Workers, then this one.
      for (let earlier = 0; earlier < n; earlier++) handOut(recall, earlier);
    }
    workers.pool.add(n, recall.absolutes[n], recall.index.size(recall.unhashed[n]));
  };
  let recall: TreeRecall | null;
  try {
    recall = walkRecalling(root, ignore, cacheSetting().now(), handOut);
  } catch (error) {
    workers.pool?.cancel();
    throw error;
  }
  if (recall === null) {
    workers.pool?.cancel();
    return null;
  }
  const unchanged = recall.unchanged();
  if (unchanged !== undefined) return rememberTree(root, ignore, recall, unchanged);
  if (workers.pool !== undefined) {
    const files = recall;
    useNativeHasher();
    await workers.pool.finish((n, path, size) => files.hashed(n, hashFileSync(path, size)));
  } else {
    const files = recall;
    if (files.unhashedBytes >= NATIVE_HASHER_BYTES) useNativeHasher();
    let next = 0;
    const slot = async () => {
      const buffer = new Uint8Array(READ_CHUNK);
      while (next < files.unhashed.length) {
        const n = next++;
        const size = files.index.size(files.unhashed[n]);
        files.hashed(n, await hashFile(files.absolutes[n], size, buffer));
      }
    };
    // No more slots than files: each one allocates its read buffer.
    await Promise.all(Array.from({ length: Math.min(concurrency, files.unhashed.length) }, slot));
  }
  const digest = await textDigest(recall);
  return rememberTree(root, ignore, recall, digest);
}
