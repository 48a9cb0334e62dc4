// Large trees are hashed in Workers; the digest must be the one the other paths give.
import assert from "node:assert/strict";
import { join } from "node:path";
import { treeDigest, treeDigestSync } from "../src/digest.ts";

Deno.test("treeDigest in Workers gives the same digest as the in-thread and synchronous paths", async () => {
  const root = await Deno.makeTempDir({ prefix: "imgtool-digest-workers-" });
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
    const inWorkers = await treeDigest(root, undefined, 8, 0);
    const inThread = await treeDigest(root, undefined, 8, Number.POSITIVE_INFINITY);
    const sync = treeDigestSync(root);
    assert.equal(inWorkers, sync);
    assert.equal(inThread, sync);
    await Deno.writeFile(join(root, "d3", "f7.bin"), new Uint8Array(10).fill(1));
    assert.notEqual(
      await treeDigest(root, undefined, 8, 0),
      inWorkers,
      "a changed file changes it",
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
