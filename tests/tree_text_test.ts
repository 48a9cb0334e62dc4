// A tree's digest is the SHA-256 of one line per entry, each the JSON of an array
// (src/digest.ts, `treeText`): `["f", path, mode, size, digest]`, `["d", path, mode]`,
// `["l", path, target]`. The lines are written without making the arrays; these tests hold
// them to what `JSON.stringify` writes of the arrays, for the names people's trees have
// (quotes, backslashes, control characters, other scripts, emoji) and for random ones, on
// all three hashing paths. Any difference would change every tag.
import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import { sha256, treeDigest, treeDigestSync, useDigestCache, walkedTree } from "../src/digest.ts";
import { stagedMode } from "../src/staged_mode.ts";
import { DIR, FILE, IGNORED } from "../src/tree_index.ts";

/** The digest of `root` as the arrays' JSON gives it, from the walk `treeDigest` made. */
async function digestFromArrays(root: string): Promise<string> {
  const { index, unreadable } = (await walkedTree(root, undefined, { reuse: true }))!;
  let text = "imgtool-tree/1\n";
  for (let at = 0; at < index.length; at++) {
    const kind = index.kinds[at], path = index.paths[at];
    if (kind === IGNORED) continue;
    const record = kind === FILE
      ? [
        "f",
        path,
        stagedMode(index.mode(at)),
        index.size(at),
        unreadable.has(at) ? null : index.hex(at),
      ]
      : kind === DIR
      ? ["d", path, stagedMode(index.mode(at), "dir")]
      : ["l", path, index.targets.get(at) ?? ""];
    text += `${JSON.stringify(record)}\n`;
  }
  return sha256(text);
}

/** The digest on every path (Workers, this thread, synchronous), each checked against the arrays'. */
async function checkTree(root: string): Promise<void> {
  const inWorkers = await treeDigest(root, undefined, 8, 0);
  assert.equal(inWorkers, await digestFromArrays(root));
  assert.equal(await treeDigest(root, undefined, 8, Number.POSITIVE_INFINITY), inWorkers);
  assert.equal(treeDigestSync(root), inWorkers);
}

Deno.test("a tree's lines are the JSON of its entries' arrays: odd names, links, an unreadable file", async () => {
  const root = await Deno.makeTempDir({ prefix: "imgtool-tree-text-" });
  useDigestCache({ dir: undefined, now: () => 0 });
  try {
    const names = [
      'quote"d',
      "back\\slash",
      "tab\there",
      "new\nline",
      "bell\u0007",
      "\u007f del",
      "ünïcödé",
      "日本語",
      "emoji 🎉",
      "line\u2028separator",
      "sp ace",
      "-dash",
    ];
    for (const name of names) {
      await Deno.mkdir(join(root, `dir ${name}`));
      await Deno.writeTextFile(join(root, `dir ${name}`, name), name);
      await Deno.symlink(`../${name}\\"target`, join(root, `link ${name}`));
    }
    await Deno.writeTextFile(join(root, "run.sh"), "#!/bin/sh\n", { mode: 0o755 });
    await Deno.mkdir(join(root, "empty"));
    await checkTree(root);
    if (Deno.uid() !== 0) {
      // Not readable: its digest is null.
      await Deno.writeTextFile(join(root, "secret"), "x", { mode: 0o000 });
      await checkTree(root);
    }
  } finally {
    useDigestCache();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a tree's lines are the JSON of its entries' arrays: random names and link targets", async () => {
  useDigestCache({ dir: undefined, now: () => 0 });
  const name = fc.string({ unit: "binary", minLength: 1, maxLength: 12 })
    .map((text) => text.replace(/[\/\0]/g, "_").toWellFormed())
    .filter((text) => text !== "." && text !== ".." && new TextEncoder().encode(text).length < 200);
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(name, { minLength: 1, maxLength: 8 }),
        name,
        async (names, target) => {
          const root = await Deno.makeTempDir({ prefix: "imgtool-tree-text-" });
          try {
            for (const [i, each] of names.entries()) {
              if (i % 3 === 2) await Deno.symlink(target, join(root, each));
              else if (i % 3 === 1) await Deno.mkdir(join(root, each));
              else await Deno.writeTextFile(join(root, each), each);
            }
            await checkTree(root);
          } finally {
            await Deno.remove(root, { recursive: true });
          }
        },
      ),
      { numRuns: 40 },
    );
  } finally {
    useDigestCache();
  }
});
