// The check of a remembered tree before its walk (TreeRecall.checkRemembered) may skip the walk:
// when nothing changed, and when only files changed in place. Whatever happens to a tree between
// two runs, the digest taken with the remembered index must be the one taken with no cache at
// all: random edits (contents, modes, files and folders added, removed and renamed, links made
// and moved), each followed by a run that reads the index back from its file, both with Deno's
// stat and with statx(2) called directly.
import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import { treeDigest, useDigestCache } from "../src/digest.ts";
import { readDigestIndex } from "../src/digest_cache.ts";
import { useNativeStat } from "../src/file_stat.ts";
import { TreeRecall } from "../src/tree_recall.ts";
import { withTempDir } from "./helpers.ts";

/** One change to the tree; `pick` chooses among what is there. */
type Edit =
  | { readonly kind: "rewrite"; readonly pick: number; readonly text: string }
  | { readonly kind: "chmod"; readonly pick: number }
  | { readonly kind: "add"; readonly pick: number; readonly name: string; readonly text: string }
  | { readonly kind: "remove"; readonly pick: number }
  | { readonly kind: "rename"; readonly pick: number; readonly name: string }
  | { readonly kind: "folder"; readonly pick: number; readonly name: string }
  | { readonly kind: "link"; readonly pick: number; readonly name: string; readonly to: number };

const name = fc.constantFrom("a", "b", "c.txt", "d e", "naïve", "x-1");
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant("rewrite"), pick: fc.nat(), text: fc.string({ maxLength: 20 }) }),
  fc.record({ kind: fc.constant("chmod"), pick: fc.nat() }),
  fc.record({ kind: fc.constant("add"), pick: fc.nat(), name, text: fc.string({ maxLength: 20 }) }),
  fc.record({ kind: fc.constant("remove"), pick: fc.nat() }),
  fc.record({ kind: fc.constant("rename"), pick: fc.nat(), name }),
  fc.record({ kind: fc.constant("folder"), pick: fc.nat(), name }),
  fc.record({ kind: fc.constant("link"), pick: fc.nat(), name, to: fc.nat() }),
) as fc.Arbitrary<Edit>;

/** Every entry under `root` (relative paths), folders and files apart; links count as files. */
function entries(root: string): { folders: string[]; files: string[] } {
  const folders = [""], files: string[] = [];
  for (let i = 0; i < folders.length; i++) {
    for (const entry of Deno.readDirSync(join(root, folders[i]))) {
      const path = folders[i] === "" ? entry.name : `${folders[i]}/${entry.name}`;
      (entry.isDirectory ? folders : files).push(path);
    }
  }
  return { folders: folders.sort(), files: files.sort() };
}

// Each rewrite gets a modification time of its own: two contents of one size written within
// one second, their times put back, could not be told apart by any stat (the settled rule
// covers that, and this test moves the clock on past it).
let stamp = 1_700_000_000;

/** Apply `change` to the tree at `root`, where it can be applied. */
function apply(root: string, change: Edit): void {
  const { folders, files } = entries(root);
  const file = files.length > 0 ? join(root, files[change.pick % files.length]) : undefined;
  const folder = join(root, folders[change.pick % folders.length]);
  switch (change.kind) {
    case "rewrite":
      if (file === undefined || Deno.lstatSync(file).isSymlink) return;
      Deno.writeTextFileSync(file, change.text);
      stamp += 7;
      Deno.utimeSync(file, stamp, stamp);
      return;
    case "chmod":
      if (file === undefined || Deno.lstatSync(file).isSymlink) return;
      Deno.chmodSync(file, (Deno.statSync(file).mode! & 0o777) ^ 0o111);
      return;
    case "add":
      try {
        Deno.writeTextFileSync(join(folder, change.name), change.text, { createNew: true });
      } catch {
        // Taken already.
      }
      return;
    case "remove":
      if (file !== undefined) Deno.removeSync(file);
      return;
    case "rename":
      if (file !== undefined) {
        try {
          Deno.renameSync(file, join(folder, `${change.name}.moved`));
        } catch {
          // A folder of that name is there.
        }
      }
      return;
    case "folder":
      try {
        Deno.mkdirSync(join(folder, `${change.name}.d`));
      } catch {
        // There already.
      }
      return;
    case "link": {
      const link = join(folder, `${change.name}.link`);
      try {
        Deno.removeSync(link);
      } catch {
        // None yet.
      }
      const target = files.length > 0 ? files[change.to % files.length] : "nowhere";
      try {
        Deno.symlinkSync(target, link);
      } catch {
        // A folder of that name is there.
      }
      return;
    }
  }
}

for (const way of ["Deno's lstat", "statx(2) directly"] as const) {
  Deno.test(`after any edits, the digest taken with the remembered index is the one taken with none (${way})`, () =>
    withTempDir(async (dir) => {
      useNativeStat(way === "Deno's lstat" ? false : 0);
      try {
        let round = 0;
        await fc.assert(
          fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 8 }), async (edits) => {
            const root = join(dir, `tree-${round}`);
            const cache = join(dir, `cache-${round++}`);
            Deno.mkdirSync(join(root, "src", "pkg"), { recursive: true });
            Deno.writeTextFileSync(join(root, "src", "main.py"), "print(1)\n");
            Deno.writeTextFileSync(join(root, "src", "pkg", "util.py"), "x = 1\n");
            Deno.writeTextFileSync(join(root, "README.md"), "# demo\n");
            // The clock moved on: every file is settled, so every digest is believed.
            const remembering = () =>
              useDigestCache({ dir: cache, now: () => Date.now() + 60_000 });
            remembering();
            await treeDigest(root);
            for (const change of edits) {
              // Two changes to one folder within a millisecond leave it the same stat key; with
              // the clock moved on, the settled rule (which covers that) cannot.
              await new Promise((resolve) => setTimeout(resolve, 2));
              apply(root, change);
              // Read back from the index's file, as the next run would.
              remembering();
              const remembered = await treeDigest(root);
              useDigestCache({ dir: undefined });
              const fresh = await treeDigest(root);
              assert.equal(remembered, fresh, `after ${JSON.stringify(change)}`);
            }
          }),
          { numRuns: 40 },
        );
      } finally {
        useNativeStat();
        useDigestCache();
      }
    }));
}

Deno.test("a remembered tree holding links is found unchanged by the check alone, a moved link is not", () =>
  withTempDir(async (dir) => {
    const root = join(dir, "tree");
    const cache = join(dir, "cache");
    Deno.mkdirSync(join(root, "src"), { recursive: true });
    Deno.writeTextFileSync(join(root, "src", "main.py"), "print(1)\n");
    Deno.symlinkSync("src/main.py", join(root, "main"));
    Deno.symlinkSync("nowhere", join(root, "broken"));
    const later = Date.now() + 60_000;
    try {
      useDigestCache({ dir: cache, now: () => later });
      const first = await treeDigest(root);
      const check = () => new TreeRecall(readDigestIndex(cache, root), later);
      const recall = check();
      assert.ok(recall.checkRemembered(root, undefined), "every entry as remembered: no walk");
      assert.equal(recall.unchanged(), first);
      // A link moved elsewhere (with its folder's times put back) is seen by the check.
      const folder = Deno.statSync(root);
      Deno.removeSync(join(root, "main"));
      Deno.symlinkSync("src", join(root, "main"));
      Deno.utimeSync(root, folder.atime!, folder.mtime!);
      assert.equal(check().checkRemembered(root, undefined), false);
      useDigestCache({ dir: cache, now: () => later });
      const moved = await treeDigest(root);
      assert.notEqual(moved, first);
      useDigestCache({ dir: undefined });
      assert.equal(await treeDigest(root), moved);
    } finally {
      useDigestCache();
    }
  }));
