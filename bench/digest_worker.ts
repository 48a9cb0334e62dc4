/**
 * A Worker of the `workers-*` variants in `digest_variants.ts`: hashes each batch of files
 * it is sent, synchronously, with one reused buffer, and posts back `[index, hex]` pairs.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { fileSync, type WorkerJob } from "./digest_variants.ts";

let shared: Uint8Array | undefined;

self.onmessage = (event: MessageEvent<WorkerJob>) => {
  const { files, knobs } = event.data;
  if (knobs.reuse) shared ??= new Uint8Array(knobs.buffer);
  const out: [number, string | null][] = files.map((file) => {
    try {
      return [file.index, fileSync(file.path, file.size, knobs, shared)];
    } catch {
      return [file.index, null];
    }
  });
  self.postMessage(out);
};
