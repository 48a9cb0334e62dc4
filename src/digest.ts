/**
 * Content digests of files and folder trees, for the image identity.
 *
 * What counts: names (relative), types, modes, sizes and contents. What does not: times,
 * owners, absolute paths, the order a directory listing comes in. Ignored paths are left
 * out before hashing. Files are hashed streaming, a bounded number at a time, so memory
 * stays flat however large the tree. The same digests come out of the synchronous path
 * (used by `Image.uri`) and the parallel one (used by builds).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import type { IgnoreRules } from "./ignore.ts";

/** One entry of a folder tree. */
export interface TreeEntry {
  /** The path relative to the tree's root, `/`-separated. */
  readonly path: string;
  /** The absolute path. */
  readonly absolute: string;
  /** File, folder or symbolic link. */
  readonly type: "file" | "dir" | "symlink";
  /** Permission bits (`mode & 0o7777`). */
  readonly mode: number;
  /** Size in bytes, for files. */
  readonly size: number;
  /** The link's target, for symbolic links. */
  readonly target?: string;
}

/** A file's content and mode, or `null` when it cannot be read. */
export type FileDigest = { readonly mode: number; readonly sha256: string } | null;

const CHUNK = 1 << 20;

/** SHA-256 of a string or bytes, as hex. */
export function sha256(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

// Digests of unchanged files are reused within a process: `uri` after a build is free.
const cache = new Map<string, string>();

function cacheKey(path: string, info: Deno.FileInfo): string {
  return `${path}\0${info.size}\0${info.mtime?.getTime()}\0${info.ino}\0${info.ctime?.getTime()}`;
}

// Times come in milliseconds: a file rewritten at the same size within the same millisecond
// keeps its key. So, as git does with "racily clean" files, only digests of files unchanged
// for a while are remembered; a later change moves the change time past them.
const SETTLED_MS = 2000;

function settled(info: Deno.FileInfo): boolean {
  const mtime = info.mtime?.getTime();
  const ctime = info.ctime?.getTime();
  if (mtime === undefined || ctime === undefined) return false;
  return Date.now() - Math.max(mtime, ctime) > SETTLED_MS;
}

/** A file's digest, read synchronously. */
export function fileDigestSync(path: string): FileDigest {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch {
    return null;
  }
  if (!info.isFile) return null;
  const key = cacheKey(path, info);
  let hex = cache.get(key);
  if (hex === undefined) {
    const hash = createHash("sha256");
    const buffer = new Uint8Array(Math.min(CHUNK, Math.max(1, info.size)));
    try {
      using file = Deno.openSync(path);
      for (let n = file.readSync(buffer); n !== null; n = file.readSync(buffer)) {
        hash.update(n === buffer.length ? buffer : buffer.subarray(0, n));
      }
    } catch {
      return null;
    }
    hex = hash.digest("hex");
    if (settled(info)) cache.set(key, hex);
  }
  return { mode: (info.mode ?? 0) & 0o7777, sha256: hex };
}

/** A file's digest, read asynchronously with a buffer of at most 1 MiB. */
export async function fileDigest(path: string): Promise<FileDigest> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch {
    return null;
  }
  if (!info.isFile) return null;
  const key = cacheKey(path, info);
  let hex = cache.get(key);
  if (hex === undefined) {
    const hash = createHash("sha256");
    const buffer = new Uint8Array(Math.min(CHUNK, Math.max(1, info.size)));
    try {
      using file = await Deno.open(path);
      for (let n = await file.read(buffer); n !== null; n = await file.read(buffer)) {
        hash.update(n === buffer.length ? buffer : buffer.subarray(0, n));
      }
    } catch {
      return null;
    }
    hex = hash.digest("hex");
    if (settled(info)) cache.set(key, hex);
  }
  return { mode: (info.mode ?? 0) & 0o7777, sha256: hex };
}

/**
 * List a folder's tree, sorted by path, minus what `ignore` excludes. Returns `null` when
 * `root` is not a readable folder.
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
      const mode = (info.mode ?? 0) & 0o7777;
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
        entries.push({ path, absolute, type: "file", mode, size: info.size });
      }
      // Sockets, fifos and devices cannot be copied into an image: they are left out.
    }
  };
  walk(root, "");
  return entries;
}

/** Encode a listed tree and its file digests into the tree digest. */
function encodeTree(
  entries: readonly TreeEntry[],
  digests: readonly (FileDigest | undefined)[],
): string {
  const hash = createHash("sha256").update("imgtool-tree/1\n");
  entries.forEach((entry, index) => {
    const record = entry.type === "file"
      ? ["f", entry.path, entry.mode, entry.size, digests[index]?.sha256 ?? null]
      : entry.type === "dir"
      ? ["d", entry.path, entry.mode]
      : ["l", entry.path, entry.target ?? ""];
    hash.update(`${JSON.stringify(record)}\n`);
  });
  return hash.digest("hex");
}

/** A tree's digest, read synchronously; `null` when the folder is missing. */
export function treeDigestSync(root: string, ignore?: IgnoreRules): string | null {
  const entries = listTree(root, ignore);
  if (entries === null) return null;
  return encodeTree(
    entries,
    entries.map((e) => e.type === "file" ? fileDigestSync(e.absolute) : undefined),
  );
}

/**
 * A tree's digest, hashing up to `concurrency` files at a time; `null` when the folder is
 * missing.
 */
export async function treeDigest(
  root: string,
  ignore?: IgnoreRules,
  concurrency = 8,
): Promise<string | null> {
  const entries = listTree(root, ignore);
  if (entries === null) return null;
  const digests: (FileDigest | undefined)[] = new Array(entries.length);
  let next = 0;
  const worker = async () => {
    while (next < entries.length) {
      const index = next++;
      const entry = entries[index];
      if (entry.type === "file") digests[index] = await fileDigest(entry.absolute);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return encodeTree(entries, digests);
}
