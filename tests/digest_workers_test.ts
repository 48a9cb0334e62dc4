// Large trees are hashed in Workers; the digest must be the one the other paths give.
import assert from "node:assert/strict";
import { join } from "node:path";
import { treeDigest, treeDigestSync, useDigestCache, useWorkerFactory } from "../src/digest.ts";
import { digestWorkerUrl, HashPool } from "../src/hash_pool.ts";
import { sha256Hex } from "../src/sha256.ts";

/** `treeDigest` of `root` with a Worker threshold; the digest and the Workers it started. */
async function digestCountingWorkers(
  root: string,
  workerThreshold: number,
): Promise<{ digest: string | null; workers: number }> {
  let workers = 0;
  useWorkerFactory((url) => {
    workers++;
    return new Worker(url, { type: "module" });
  });
  try {
    return { digest: await treeDigest(root, undefined, 8, workerThreshold), workers };
  } finally {
    useWorkerFactory();
  }
}

Deno.test("treeDigest in Workers gives the same digest as the in-thread and synchronous paths", async () => {
  const root = await Deno.makeTempDir({ prefix: "imgtool-digest-workers-" });
  // Nothing remembered: every run reads and hashes every file.
  useDigestCache({ dir: undefined, now: () => 0 });
  try {
    for (let folder = 0; folder < 5; folder++) {
      await Deno.mkdir(join(root, `d${folder}`));
      for (let file = 0; file < 40; file++) {
        const bytes = new Uint8Array(1000 + folder * 40_000 + file * 997).fill(file + folder);
        await Deno.writeFile(join(root, `d${folder}`, `f${file}.bin`), bytes);
      }
    }
    // A file above the 1 MiB read chunk, to cross the streaming path too.
    await Deno.writeFile(join(root, "big.bin"), new Uint8Array(3 << 20).fill(7));
    const inWorkers = await digestCountingWorkers(root, 0);
    const inThread = await digestCountingWorkers(root, Number.POSITIVE_INFINITY);
    assert.ok(inWorkers.workers >= 1, "a threshold of 0 bytes hashes in Workers");
    assert.equal(inThread.workers, 0, "an infinite threshold hashes in this thread");
    const sync = treeDigestSync(root);
    assert.equal(inWorkers.digest, sync);
    assert.equal(inThread.digest, sync);
    await Deno.writeFile(join(root, "d3", "f7.bin"), new Uint8Array(10).fill(1));
    const changed = await digestCountingWorkers(root, 0);
    assert.ok(changed.workers >= 1);
    assert.notEqual(changed.digest, inWorkers.digest, "a changed file changes it");
  } finally {
    useDigestCache();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("the walking thread and a Worker share a pool's batches: each file hashed once, by one of them", async () => {
  const root = await Deno.makeTempDir({ prefix: "imgtool-hash-pool-" });
  try {
    // 24 batches of some 4 MB of work each (a file costs its bytes plus 16 KiB).
    const files: string[] = [];
    for (let i = 0; i < 2400; i++) {
      const path = join(root, `f${i}.bin`);
      await Deno.writeFile(path, new Uint8Array(24_000).fill(i % 251));
      files.push(path);
    }
    const expected = files.map((_, i) => sha256Hex(new Uint8Array(24_000).fill(i % 251)));
    const byWorker = new Map<number, string>();
    const byHere = new Map<number, string>();
    const pool = HashPool.start(
      1,
      () => new Worker(digestWorkerUrl(), { type: "module" }),
      (id, digest) => byWorker.set(id, digest ?? "unreadable"),
    )!;
    files.forEach((path, id) => pool.add(id, path, 24_000));
    // The Worker has answered for a batch: it has begun from the first one.
    for (let waited = 0; byWorker.size === 0; waited += 10) {
      assert.ok(waited < 30_000, "the Worker answers");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await pool.finish((id, path) => byHere.set(id, sha256Hex(Deno.readFileSync(path))));
    assert.ok(byHere.size > 0, "this thread took batches the Worker had not come to");
    assert.ok(byWorker.size > 0);
    for (const id of byHere.keys()) assert.ok(!byWorker.has(id), `file ${id} hashed twice`);
    assert.equal(byHere.size + byWorker.size, files.length, "every file hashed");
    for (const [id, digest] of [...byHere, ...byWorker]) assert.equal(digest, expected[id]);
    // This thread takes from the end: what it hashed is the tail of what was handed out.
    assert.equal(Math.max(...byWorker.keys()) < Math.min(...byHere.keys()), true);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
