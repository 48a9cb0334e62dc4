/**
 * A hashing Worker for large trees: it takes batches of files and answers each file's
 * SHA-256, read synchronously through one reused buffer (`./file_hash.ts`). One runs per
 * core (`./hash_pool.ts`) while the main thread walks the tree and hands out the files.
 *
 * Workers only hash trees of 64 MB and more, so each loads a native SHA-256 at once (about
 * 1.2 GB/s a core, where the TypeScript hasher gives 0.24): the system's libcrypto
 * (`./libcrypto.ts`), loaded in 3-4 ms, or where there is none, `node:crypto`, whose Node
 * layer takes 40-50 ms to start. It imports nothing else of imgtool's but the read loop and
 * glibc's functions for it (`./libc.ts`): with libcrypto, it starts in milliseconds.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { hashFileInto, READ_CHUNK } from "./file_hash.ts";
import { libc } from "./libc.ts";
import { fastSha256 } from "./libcrypto.ts";

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
 * The answer to a batch: each file's SHA-256 as hex, in the job's order (`null`: the file
 * could not be read); or, for a batch the thread that handed it out claimed first, `taken`
 * and nothing else.
 */
export interface DigestAnswer {
  /** The files' numbers, as in the job. */
  readonly ids: readonly number[];
  /** Each file's SHA-256 as lowercase hex, or `null` where it could not be read. */
  readonly digests: readonly (string | null)[];
  /** The batch was hashed by the thread that handed it out: no digest here. */
  readonly taken?: boolean;
}

const buffer = new Uint8Array(READ_CHUNK);
// Files opened, read and closed by direct calls from now on, where glibc's can be made.
libc();

/** A SHA-256 hasher: libcrypto's, else node:crypto's (the same digests). */
const newHasher = await fastSha256();

/** A batch's claim taken by this Worker (see {@link DigestJob.claims}). */
const BY_WORKER = 1;

self.onmessage = (event: MessageEvent<DigestJob>) => {
  const { ids, paths, sizes, claims, slot } = event.data;
  if (claims !== undefined && slot !== undefined) {
    // Taken by the thread that handed it out: nothing to answer but that it is done with.
    if (Atomics.compareExchange(claims, slot, 0, BY_WORKER) !== 0) {
      const answer: DigestAnswer = { ids: [], digests: [], taken: true };
      self.postMessage(answer);
      return;
    }
  }
  // As hex, which both hashers give cheapest (node:crypto's `digest()` makes a Buffer: 3.3
  // µs, against 1.3 for its hex, a tenth of what a small file costs in all).
  const digests: (string | null)[] = [];
  for (let i = 0; i < ids.length; i++) {
    const hash = newHasher();
    digests.push(hashFileInto(hash, paths[i], sizes[i], buffer) ? hash.digest("hex") : null);
  }
  const answer: DigestAnswer = { ids, digests };
  self.postMessage(answer);
};
