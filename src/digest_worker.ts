/**
 * A hashing Worker for large trees: it takes batches of files and answers each file's
 * SHA-256, read synchronously through one reused buffer (`./file_hash.ts`). One runs per
 * core (`./hash_pool.ts`) while the main thread walks the tree and hands out the files.
 *
 * Workers only hash trees of 64 MB and more, so each loads `node:crypto` at once, the
 * fastest hasher here (native, 1.3-1.8 GB/s a core, where Web Crypto gives 0.6 and the
 * TypeScript hasher 0.24); the main thread, whose start-up counts, still loads no `node:`
 * module for it. It imports nothing else of imgtool's but the read loop: it starts in
 * milliseconds.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { createHash } from "node:crypto";
import { hashFileInto, READ_CHUNK } from "./file_hash.ts";

/** A batch of files to hash. */
export interface DigestJob {
  /** Each file's number (the caller's). */
  readonly ids: readonly number[];
  /** Each file's path. */
  readonly paths: readonly string[];
  /** Each file's size by its `stat`. */
  readonly sizes: readonly number[];
}

/** The answer to a batch: each file's SHA-256 (32 bytes each, in order). */
export interface DigestAnswer {
  /** The files' numbers, as in the job. */
  readonly ids: readonly number[];
  /** 32 bytes per file, in the job's order: its SHA-256. */
  readonly digests: Uint8Array;
  /** The numbers of the files that could not be read (their 32 bytes mean nothing). */
  readonly unreadable: readonly number[];
}

const buffer = new Uint8Array(READ_CHUNK);

self.onmessage = (event: MessageEvent<DigestJob>) => {
  const { ids, paths, sizes } = event.data;
  const digests = new Uint8Array(ids.length * 32);
  const unreadable: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    const hash = createHash("sha256");
    if (hashFileInto(hash, paths[i], sizes[i], buffer)) digests.set(hash.digest(), i * 32);
    else unreadable.push(ids[i]);
  }
  const answer: DigestAnswer = { ids, digests, unreadable };
  // Moved, not copied; the options form type-checks as a window's `postMessage` too.
  self.postMessage(answer, { transfer: [digests.buffer as ArrayBuffer] });
};
