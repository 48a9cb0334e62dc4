// Which trees are hashed in Workers (src/digest.ts): from WORKER_THRESHOLD_BYTES of files to
// read on, every file goes to the hashing pool (its Workers, and this thread once its walk is
// done, src/hash_pool.ts); below it, and for files whose digests are remembered, no Worker
// starts. Seen by counting the Workers started and the files handed to them, not by timing.
// Large trees are sparse files: big, but nearly free on disk.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  treeDigest,
  treeDigestSync,
  useDigestCache,
  useWorkerFactory,
  WORKER_THRESHOLD_BYTES,
} from "../src/digest.ts";
import type { DigestJob } from "../src/digest_worker.ts";
import { withTempDir } from "./helpers.ts";

/** What the hashing Workers did during `body`. */
async function watchWorkers<T>(
  body: () => Promise<T>,
): Promise<{ result: T; started: number; filesHandedOut: number }> {
  let started = 0;
  let filesHandedOut = 0;
  useWorkerFactory((url) => {
    started++;
    const worker = new Worker(url, { type: "module" });
    // Each job lists the files handed to the pool in it.
    const post = worker.postMessage.bind(worker);
    worker.postMessage = (job: DigestJob) => {
      filesHandedOut += job.ids.length;
      post(job);
    };
    return worker;
  });
  try {
    return { result: await body(), started, filesHandedOut };
  } finally {
    useWorkerFactory();
  }
}

/** A tree of three files, `bytes` in all: two small ones and a sparse one for the rest. */
function writeTree(root: string, bytes: number): void {
  Deno.mkdirSync(join(root, "src"), { recursive: true });
  Deno.writeTextFileSync(join(root, "src", "a.txt"), "a".repeat(1000));
  Deno.writeTextFileSync(join(root, "src", "b.txt"), "b".repeat(1000));
  const big = join(root, "big.bin");
  Deno.writeFileSync(big, new Uint8Array(0));
  Deno.truncateSync(big, bytes - 2000);
}

/** No digest remembered on disk or in memory (no file is ever settled at time 0). */
function rememberNothing(): void {
  useDigestCache({ dir: undefined, now: () => 0 });
}

Deno.test("a tree of WORKER_THRESHOLD_BYTES is hashed in the pool, every file, to the digest the synchronous path gives", () =>
  withTempDir(async (root) => {
    rememberNothing();
    try {
      writeTree(root, WORKER_THRESHOLD_BYTES);
      const { result, started, filesHandedOut } = await watchWorkers(() => treeDigest(root));
      assert.ok(started >= 1, "Workers started");
      assert.equal(filesHandedOut, 3, "every file went to the pool");
      assert.equal(result, treeDigestSync(root));
    } finally {
      useDigestCache();
    }
  }));

Deno.test("a tree one byte under WORKER_THRESHOLD_BYTES is hashed in this thread: no Worker starts", () =>
  withTempDir(async (root) => {
    rememberNothing();
    try {
      writeTree(root, WORKER_THRESHOLD_BYTES - 1);
      const { result, started, filesHandedOut } = await watchWorkers(() => treeDigest(root));
      assert.equal(started, 0);
      assert.equal(filesHandedOut, 0);
      assert.equal(result, treeDigestSync(root));
    } finally {
      useDigestCache();
    }
  }));

Deno.test("the threshold counts only files left to hash: a large tree whose digests are remembered starts no Worker", () =>
  withTempDir(async (dir) => {
    const root = join(dir, "tree");
    // Files count as settled (rememberable) at once when the clock runs ahead.
    useDigestCache({ dir: join(dir, "digests"), now: () => Date.now() + 60_000 });
    try {
      writeTree(root, WORKER_THRESHOLD_BYTES);
      const first = await watchWorkers(() => treeDigest(root));
      assert.equal(first.filesHandedOut, 3);
      Deno.writeTextFileSync(join(root, "src", "a.txt"), "c".repeat(1000));
      const second = await watchWorkers(() => treeDigest(root));
      assert.equal(second.started, 0, "one changed file of 1000 bytes is hashed here");
      assert.notEqual(second.result, first.result);
      rememberNothing();
      assert.equal(second.result, treeDigestSync(root), "the digest is the one of the content");
    } finally {
      useDigestCache();
    }
  }));

Deno.test("a configured threshold is the rule too: at it Workers hash, one byte above it none start", () =>
  withTempDir(async (root) => {
    rememberNothing();
    try {
      writeTree(root, 3 << 20);
      const at = await watchWorkers(() => treeDigest(root, undefined, 8, 3 << 20));
      assert.ok(at.started >= 1);
      assert.equal(at.filesHandedOut, 3);
      const above = await watchWorkers(() => treeDigest(root, undefined, 8, (3 << 20) + 1));
      assert.equal(above.started, 0);
      assert.equal(above.result, at.result);
    } finally {
      useDigestCache();
    }
  }));
