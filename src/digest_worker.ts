/**
 * A hashing Worker for large trees: it takes batches of files and answers each file's
 * SHA-256, read synchronously with one reused buffer. Two of these keep both cores busy
 * while the main thread waits.
 *
 * Workers only hash trees of 64 MB and more, so each loads `node:crypto` at once, the
 * fastest hasher here, and installs it for `fileDigestSync`; the main thread, whose start-up
 * counts, still loads no `node:` module for it.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { createHash } from "node:crypto";
import { fileDigestSync, useHasher } from "./digest.ts";

useHasher(() => createHash("sha256"));

/** A batch of files to hash. */
export interface DigestJob {
  /** Each file's index in the tree, its path, and what `lstat` said of it. */
  readonly files: readonly {
    readonly index: number;
    readonly path: string;
    readonly info?: Deno.FileInfo;
  }[];
}

/** The answer to a batch: `[index, sha256 hex or null]` per file. */
export type DigestAnswer = [number, string | null][];

self.onmessage = (event: MessageEvent<DigestJob>) => {
  const answer: DigestAnswer = event.data.files.map((file) => [
    file.index,
    fileDigestSync(file.path, file.info)?.sha256 ?? null,
  ]);
  self.postMessage(answer);
};
