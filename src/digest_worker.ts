/**
 * A hashing Worker for large trees: it takes batches of files and answers each file's
 * SHA-256, read synchronously through one reused buffer (`./file_hash.ts`). One runs per
 * core (`./hash_pool.ts`) while the main thread walks the tree and hands out the files.
 *
 * Workers only hash trees of 64 MB and more, so each loads `node:crypto` at once, the
 * fastest hasher here (native, 1.3-1.8 GB/s a core, where Web Crypto gives 0.6 and the
 * TypeScript hasher 0.24); the main thread, whose start-up counts, still loads no `node:`
 * module for it. It imports nothing else of imgtool's but the read loop and glibc's
 * functions for it (`./libc.ts`): it starts in milliseconds.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { createHash } from "node:crypto";
import { hashFileInto, READ_CHUNK } from "./file_hash.ts";
import { libc } from "./libc.ts";

/** A batch of files to hash. */
export interface DigestJob {
  /** Each file's number (the caller's). */
  readonly ids: readonly number[];
  /** Each file's path. */
  readonly paths: readonly string[];
  /** Each file's size by its `stat`. */
  readonly sizes: readonly number[];
  /**
   * Claims shared with the thread that handed the batch out (`./hash_pool.ts`), and this
   * batch's place in them: the batch is hashed by whichever thread claims it first (0 to
   * anything else). Without them, the batch is this Worker's.
   */
  readonly claims?: Int32Array;
  readonly slot?: number;
}

/**
 * The answer to a batch: each file's SHA-256 (32 bytes each, in order); or, for a batch the
 * thread that handed it out claimed first, `taken` and nothing else.
 */
export interface DigestAnswer {
  /** The files' numbers, as in the job. */
  readonly ids: readonly number[];
  /** 32 bytes per file, in the job's order: its SHA-256. */
  readonly digests: Uint8Array;
  /** The numbers of the files that could not be read (their 32 bytes mean nothing). */
  readonly unreadable: readonly number[];
  /** The batch was hashed by the thread that handed it out: no digest here. */
  readonly taken?: boolean;
}

const buffer = new Uint8Array(READ_CHUNK);
// Files opened, read and closed by direct calls from now on, where glibc's can be made.
libc();

/** A batch's claim taken by this Worker (see {@link DigestJob.claims}). */
const BY_WORKER = 1;

self.onmessage = (event: MessageEvent<DigestJob>) => {
  const { ids, paths, sizes, claims, slot } = event.data;
  if (claims !== undefined && slot !== undefined) {
    // Taken by the thread that handed it out: nothing to answer but that it is done with.
    if (Atomics.compareExchange(claims, slot, 0, BY_WORKER) !== 0) {
      const answer: DigestAnswer = {
        ids: [],
        digests: new Uint8Array(0),
        unreadable: [],
        taken: true,
      };
      self.postMessage(answer);
      return;
    }
  }
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
