/**
 * Experimental variants of the tree hashing in src/digest.ts, for the identity benchmark's
 * investigation (`deno task bench identity --explore`). Each one must give the very digest
 * that `treeDigest` gives (the benchmark checks it), so that its time is a fair alternative.
 * src/digest.ts is not changed here: these figures are for whoever owns it.
 *
 * The knobs: the async concurrency, the read buffer size, reading small files whole
 * (`Deno.readFile`, one operation instead of stat + open + read + read + close), skipping the
 * second `stat` (the walk's `lstat` already has size, mtime, inode and ctime), and hashing
 * in Workers (one per core) instead of on the main thread.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { listTree, type TreeEntry } from "../src/digest.ts";

/** One variant: a name and a tree digest function. */
export interface Variant {
  /** What it changes, for the table. */
  readonly describe: string;
  /** The tree's digest, the same as `treeDigest` gives. */
  readonly digest: (root: string) => Promise<string | null>;
}

interface Knobs {
  /** Files hashed at a time (async). */
  readonly concurrency: number;
  /** Read buffer for streamed files. */
  readonly buffer: number;
  /** Files of at most this size are read whole; 0 = never. */
  readonly wholeBelow: number;
  /** Stat each file again before hashing it (as src/digest.ts does, for its cache key). */
  readonly restat: boolean;
  /** Reuse one read buffer per concurrent slot instead of allocating one per file. */
  readonly reuse: boolean;
  /** Async path: files of at most this size are hashed synchronously, inline; 0 = never. */
  readonly syncBelow: number;
}

const BASE: Knobs = {
  concurrency: 8,
  buffer: 1 << 20,
  wholeBelow: 0,
  restat: true,
  reuse: false,
  syncBelow: 0,
};

/** The encoding of src/digest.ts (copied: it is not exported). */
function encodeTree(entries: readonly TreeEntry[], digests: readonly (string | null)[]): string {
  const hash = createHash("sha256").update("imgtool-tree/1\n");
  entries.forEach((entry, index) => {
    const record = entry.type === "file"
      ? ["f", entry.path, entry.mode, entry.size, digests[index] ?? null]
      : entry.type === "dir"
      ? ["d", entry.path, entry.mode]
      : ["l", entry.path, entry.target ?? ""];
    hash.update(`${JSON.stringify(record)}\n`);
  });
  return hash.digest("hex");
}

async function fileAsync(
  entry: TreeEntry,
  knobs: Knobs,
  shared?: Uint8Array,
): Promise<string | null> {
  if (entry.size <= knobs.syncBelow) return fileSync(entry.absolute, entry.size, knobs, shared);
  let size = entry.size;
  if (knobs.restat) {
    const info = await Deno.stat(entry.absolute);
    if (!info.isFile) return null;
    size = info.size;
  }
  if (size <= knobs.wholeBelow) {
    return createHash("sha256").update(await Deno.readFile(entry.absolute)).digest("hex");
  }
  const hash = createHash("sha256");
  const buffer = shared ?? new Uint8Array(Math.min(knobs.buffer, Math.max(1, size)));
  using file = await Deno.open(entry.absolute);
  for (let n = await file.read(buffer); n !== null; n = await file.read(buffer)) {
    hash.update(n === buffer.length ? buffer : buffer.subarray(0, n));
  }
  return hash.digest("hex");
}

/** Hash one file synchronously; exported for the worker. */
export function fileSync(
  absolute: string,
  listedSize: number,
  knobs: Pick<Knobs, "buffer" | "wholeBelow" | "restat">,
  shared?: Uint8Array,
): string | null {
  let size = listedSize;
  if (knobs.restat) {
    const info = Deno.statSync(absolute);
    if (!info.isFile) return null;
    size = info.size;
  }
  if (size <= knobs.wholeBelow) {
    return createHash("sha256").update(Deno.readFileSync(absolute)).digest("hex");
  }
  const hash = createHash("sha256");
  const buffer = shared ?? new Uint8Array(Math.min(knobs.buffer, Math.max(1, size)));
  using file = Deno.openSync(absolute);
  for (let n = file.readSync(buffer); n !== null; n = file.readSync(buffer)) {
    hash.update(n === buffer.length ? buffer : buffer.subarray(0, n));
  }
  return hash.digest("hex");
}

function asyncVariant(describe: string, changes: Partial<Knobs>): Variant {
  const knobs = { ...BASE, ...changes };
  return {
    describe,
    async digest(root) {
      const entries = listTree(root);
      if (entries === null) return null;
      const digests: (string | null)[] = new Array(entries.length).fill(null);
      let next = 0;
      const worker = async () => {
        const shared = knobs.reuse ? new Uint8Array(knobs.buffer) : undefined;
        while (next < entries.length) {
          const index = next++;
          if (entries[index].type === "file") {
            digests[index] = await fileAsync(entries[index], knobs, shared);
          }
        }
      };
      await Promise.all(Array.from({ length: knobs.concurrency }, worker));
      return encodeTree(entries, digests);
    },
  };
}

function syncVariant(describe: string, changes: Partial<Knobs>): Variant {
  const knobs = { ...BASE, ...changes };
  return {
    describe,
    digest(root) {
      const entries = listTree(root);
      if (entries === null) return Promise.resolve(null);
      const shared = knobs.reuse ? new Uint8Array(knobs.buffer) : undefined;
      const digests = entries.map((entry) =>
        entry.type === "file" ? fileSync(entry.absolute, entry.size, knobs, shared) : null
      );
      return Promise.resolve(encodeTree(entries, digests));
    },
  };
}

/** Messages to and from `digest_worker.ts`. */
export interface WorkerJob {
  readonly files: readonly { readonly index: number; readonly path: string; size: number }[];
  readonly knobs: Pick<Knobs, "buffer" | "wholeBelow" | "restat" | "reuse">;
}

/** Hash the files in `workers` Workers, handing out batches of about `batchBytes`. */
function workerVariant(describe: string, workers: number, changes: Partial<Knobs>): Variant {
  const knobs = { ...BASE, ...changes };
  return {
    describe,
    async digest(root) {
      const entries = listTree(root);
      if (entries === null) return null;
      const files = entries.flatMap((entry, index) =>
        entry.type === "file" ? [{ index, path: entry.absolute, size: entry.size }] : []
      );
      // Batches of ~8 MB or 256 files: few messages, and the work stays balanced.
      const batches: WorkerJob["files"][] = [];
      for (let i = 0; i < files.length;) {
        const batch = [];
        let bytes = 0;
        while (i < files.length && batch.length < 256 && bytes < 8 << 20) {
          bytes += files[i].size;
          batch.push(files[i++]);
        }
        batches.push(batch);
      }
      const digests: (string | null)[] = new Array(entries.length).fill(null);
      const url = new URL("./digest_worker.ts", import.meta.url).href;
      const pool = Array.from({ length: workers }, () => new Worker(url, { type: "module" }));
      try {
        await Promise.all(pool.map((worker) =>
          new Promise<void>((resolve, reject) => {
            const give = () => {
              const batch = batches.shift();
              if (!batch) return resolve();
              worker.postMessage({ files: batch, knobs } satisfies WorkerJob);
            };
            worker.onmessage = (event: MessageEvent<[number, string | null][]>) => {
              for (const [index, hex] of event.data) digests[index] = hex;
              give();
            };
            worker.onerror = (event) => {
              event.preventDefault();
              reject(new Error(event.message));
            };
            give();
          })
        ));
      } finally {
        for (const worker of pool) worker.terminate();
      }
      return encodeTree(entries, digests);
    },
  };
}

/** Only the walk (`listTree`) and the encoding, no file read: the floor of the walk. */
const listOnly: Variant = {
  describe: "listTree + encoding only (no file read)",
  digest(root) {
    const entries = listTree(root);
    return Promise.resolve(entries && encodeTree(entries, entries.map(() => null)));
  },
};

/** The walk plus one async stat per file (what the cache key costs), no read. */
const listStat: Variant = {
  describe: "listTree + async Deno.stat per file (c=8), no read",
  async digest(root) {
    const entries = listTree(root);
    if (entries === null) return null;
    let next = 0;
    const worker = async () => {
      while (next < entries.length) {
        const entry = entries[next++];
        if (entry.type === "file") await Deno.stat(entry.absolute);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    return encodeTree(entries, entries.map(() => null));
  },
};

/** The CPU floor: hash as many bytes, in the same file sizes, from memory. */
const hashMemory: Variant = {
  describe: "listTree + createHash over the same sizes from memory (no I/O)",
  digest(root) {
    const entries = listTree(root);
    if (entries === null) return Promise.resolve(null);
    const block = new Uint8Array(1 << 20);
    for (const entry of entries) {
      if (entry.type !== "file") continue;
      const hash = createHash("sha256");
      for (let left = entry.size; left > 0; left -= block.length) {
        hash.update(left >= block.length ? block : block.subarray(0, left));
      }
      hash.digest("hex");
    }
    return Promise.resolve(encodeTree(entries, entries.map(() => null)));
  },
};

const MiB = 1 << 20;
const KiB = 1 << 10;

/**
 * The variants, by name. The `floor-*` ones give a different digest on purpose (they read
 * nothing); every other one must match `treeDigest`.
 */
export const VARIANTS: Record<string, Variant> = {
  "floor-list": listOnly,
  "floor-list-stat": listStat,
  "floor-hash-memory": hashMemory,
  "async-copy": asyncVariant("copy of src treeDigest (check: same time as async)", {}),
  "async-c2": asyncVariant("concurrency 2", { concurrency: 2 }),
  "async-c32": asyncVariant("concurrency 32", { concurrency: 32 }),
  "async-buf4m": asyncVariant("4 MiB buffer", { buffer: 4 * MiB }),
  "async-reuse": asyncVariant("one reused 1 MiB buffer per slot", { reuse: true }),
  "async-nostat": asyncVariant("no second stat (the walk's lstat has it)", { restat: false }),
  "async-whole64k": asyncVariant("files <= 64 KiB read whole (Deno.readFile)", {
    wholeBelow: 64 * KiB,
  }),
  "async-whole1m": asyncVariant("files <= 1 MiB read whole (Deno.readFile)", {
    wholeBelow: MiB,
  }),
  "async-tuned": asyncVariant("reuse + no second stat + whole <= 64 KiB", {
    reuse: true,
    restat: false,
    wholeBelow: 64 * KiB,
  }),
  "async-hybrid": asyncVariant("tuned, and files <= 64 KiB hashed synchronously inline", {
    reuse: true,
    restat: false,
    wholeBelow: 64 * KiB,
    syncBelow: 64 * KiB,
  }),
  "async-hybrid-c4": asyncVariant("hybrid, concurrency 4", {
    reuse: true,
    restat: false,
    wholeBelow: 64 * KiB,
    syncBelow: 64 * KiB,
    concurrency: 4,
  }),
  "sync-copy": syncVariant("copy of src treeDigestSync", {}),
  "sync-reuse": syncVariant("sync, one reused 1 MiB buffer", { reuse: true }),
  "sync-reuse-4m": syncVariant("sync, one reused 4 MiB buffer", { reuse: true, buffer: 4 * MiB }),
  "sync-whole1m": syncVariant("sync, files <= 1 MiB read whole (readFileSync)", {
    wholeBelow: MiB,
  }),
  "sync-tuned": syncVariant("sync, reuse + no second stat + whole <= 64 KiB", {
    reuse: true,
    restat: false,
    wholeBelow: 64 * KiB,
  }),
  "workers-1": workerVariant("1 Worker, sync hashing, reused buffer", 1, { reuse: true }),
  "workers-2": workerVariant("2 Workers (one a core), sync hashing, reused buffer", 2, {
    reuse: true,
  }),
  "workers-2-tuned": workerVariant("2 Workers + no second stat + whole <= 64 KiB", 2, {
    reuse: true,
    restat: false,
    wholeBelow: 64 * KiB,
  }),
};
