// The digest cache across runs (src/digest_cache.ts): a file whose stat key is unchanged since
// an earlier run is not read again, and no digest ever depends on the cache. Each run that
// matters happens in a fresh `deno` process, as a build would, with its own cache folder
// (never the machine's ~/.cache): see tests/digest_runs.ts.
import assert from "node:assert/strict";
import { join } from "node:path";
import { imgtoolCacheDir } from "../src/cache_dir.ts";
import { treeDigestSync, useDigestCache } from "../src/digest.ts";
import { digestIndexFile, readDigestIndex, writeDigestIndex } from "../src/digest_cache.ts";
import { lstatFile, statFile } from "../src/file_stat.ts";
import { sha256Hex } from "../src/sha256.ts";
import {
  decodeTreeIndex,
  DIR,
  encodeTreeIndex,
  FILE,
  SYMLINK,
  TreeIndex,
} from "../src/tree_index.ts";
import { ALL_FILES, storedFiles, storedIndex, TREE, withSetup } from "./digest_runs.ts";
import { withTempDir } from "./helpers.ts";

// This module's own in-process digests go to no cache folder unless a test says otherwise.
useDigestCache({ dir: undefined });

Deno.test("a fresh process reads no file whose stat key is unchanged since an earlier run", () =>
  withSetup(async ({ root, child }) => {
    const first = await child("tree", root, { ahead: true });
    assert.deepEqual(first.reads, ALL_FILES, "the first run reads every file");
    for (const mode of ["tree", "tree-sync"] as const) {
      const again = await child(mode, root);
      assert.deepEqual(again.reads, [], `${mode}: nothing read again`);
      assert.equal(again.digest, first.digest, mode);
    }
    // A single file is its own root.
    const file = join(root, "app", "main.py");
    const single = await child("file", file, { ahead: true });
    assert.deepEqual(single.reads, [""]);
    const singleAgain = await child("file", file);
    assert.deepEqual(singleAgain.reads, []);
    assert.equal(singleAgain.digest, single.digest);
    assert.equal(single.digest, sha256Hex("print('hello')\n"));
  }));

Deno.test("a digest is the same with a warm cache, a fresh empty one and none", () =>
  withSetup(async ({ dir, root, child }) => {
    const none = await child("tree", root, { cacheHome: null });
    const empty = await child("tree", root, { ahead: true });
    const warm = await child("tree", root);
    const warmSync = await child("tree-sync", root);
    assert.deepEqual(warm.reads, [], "the cache was used");
    assert.equal(empty.digest, none.digest);
    assert.equal(warm.digest, none.digest);
    assert.equal(warmSync.digest, none.digest);
    const other = await child("tree", root, { cacheHome: join(dir, "other-cache"), ahead: true });
    assert.equal(other.digest, none.digest);
    assert.equal(treeDigestSync(root), none.digest, "and in this process, with no cache");
  }));

Deno.test("a file changed in the last two seconds is not remembered", () =>
  withSetup(async ({ root, digests, child }) => {
    // With the real clock every file was just written: nothing is worth a cache file.
    const first = await child("tree", root);
    assert.deepEqual(first.reads, ALL_FILES);
    assert.throws(() => Deno.statSync(digests), Deno.errors.NotFound);
    // With the clock ten seconds on, only a file changed "later" (in the future) is left out.
    const future = new Date(Date.now() + 60_000);
    Deno.utimeSync(join(root, "README.md"), future, future);
    await child("tree", root, { ahead: true });
    assert.deepEqual(
      storedFiles(digests, root),
      ["app/data/table.csv", "app/main.py", "app/util.py", "pyproject.toml"],
    );
    const again = await child("tree", root);
    assert.deepEqual(again.reads, ["/README.md"]);
    assert.equal(again.digest, first.digest, "times are not part of the digest");
  }));

Deno.test("a damaged or foreign cache file is no cache, and the digest is still right", () =>
  withSetup(async ({ root, digests, child }) => {
    const right = (await child("tree", root, { ahead: true })).digest;
    const file = digestIndexFile(digests, root);
    const stored = storedIndex(digests, root);
    // The cache is believed when its keys match: so a planted index about this root, whole
    // and well formed, would change the digest (the cases below are checked against this).
    const lie = new TreeIndex(stored.length);
    lie.addFirst(stored, stored.length);
    lie.setRoot(statFile(root), false);
    for (let at = 0; at < lie.length; at++) {
      if (lie.kinds[at] === FILE) lie.setDigest(at, "0".repeat(64));
    }
    const poisoned = encodeTreeIndex(root, lie);
    Deno.writeFileSync(file, poisoned);
    const planted = await child("tree", root);
    assert.deepEqual(planted.reads, []);
    assert.notEqual(planted.digest, right);
    const flipped = (at: number) => {
      const bytes = poisoned.slice();
      bytes[at] ^= 0x01;
      return bytes;
    };
    const damaged: [string, Uint8Array][] = [
      ["empty", new Uint8Array(0)],
      ["JSON, the old format", new TextEncoder().encode(`{"format":"imgtool-digests/1"}`)],
      ["cut short", poisoned.slice(0, poisoned.length - 8)],
      ["cut in half", poisoned.slice(0, poisoned.length >> 1)],
      ["one byte more", Uint8Array.from([...poisoned, 0])],
      ["zeros", new Uint8Array(poisoned.length)],
      ["another format", flipped(0)],
      ["a bit of the checksum", flipped(poisoned.length - 1)],
      // One bit anywhere: the header, the stat keys, the digests, the kinds, the paths.
      ...[...Array(8).keys()].map((i): [string, Uint8Array] => {
        const at = Math.floor((poisoned.length * (i + 0.5)) / 8);
        return [`byte ${at} of ${poisoned.length}`, flipped(at)];
      }),
      ["about another root", encodeTreeIndex(`${root}-elsewhere`, lie)],
    ];
    for (const [what, bytes] of damaged) {
      Deno.writeFileSync(file, bytes);
      const run = await child("tree", root);
      assert.equal(run.digest, right, what);
      assert.deepEqual(run.reads, ALL_FILES, what);
    }
  }));

Deno.test("a cache folder that is missing or cannot be written changes nothing but speed", () =>
  withSetup(async ({ dir, root, child }) => {
    const right = (await child("tree", root, { cacheHome: null })).digest;
    // Missing: made when first written.
    const missing = join(dir, "not", "yet");
    const folder = join(missing, "imgtool", "digests");
    assert.equal((await child("tree", root, { cacheHome: missing, ahead: true })).digest, right);
    const names = () => [...Deno.readDirSync(folder)].map((entry) => entry.name);
    const [name] = names();
    assert.deepEqual(names(), [name]);
    // Cannot be made (under a regular file): hashed every time, without a word.
    const blocker = join(dir, "blocker");
    Deno.writeTextFileSync(blocker, "");
    for (let round = 0; round < 2; round++) {
      const run = await child("tree", root, { cacheHome: blocker, ahead: true });
      assert.equal(run.digest, right);
      assert.deepEqual(run.reads, ALL_FILES);
    }
    // No permission to write (a spec run by hand with --allow-read): read, not written, and
    // never a prompt or an error.
    Deno.writeTextFileSync(join(root, "new.txt"), "new\n");
    const before = Deno.readTextFileSync(join(folder, name));
    const readOnly = await child("tree", root, {
      cacheHome: missing,
      ahead: true,
      permissions: ["--allow-read", "--allow-env", "--allow-sys=uid"],
    });
    assert.deepEqual(readOnly.reads, ["/new.txt"], "the cache was read");
    assert.notEqual(readOnly.digest, right);
    assert.deepEqual(names(), [name]);
    assert.equal(Deno.readTextFileSync(join(folder, name)), before, "and not written");
    // No permission to learn the user's id: no entry can be shown to be the user's own, so
    // none is believed; still no prompt or error.
    const noUid = await child("tree", root, {
      cacheHome: missing,
      permissions: ["--allow-read", "--allow-env"],
    });
    assert.equal(noUid.digest, readOnly.digest);
    assert.equal(noUid.reads.length, ALL_FILES.length + 1);
    // No permission to read the environment: no cache at all, and no prompt or error.
    const noEnv = await child("tree", root, {
      cacheHome: missing,
      permissions: ["--allow-read", "--allow-write"],
    });
    assert.equal(noEnv.digest, readOnly.digest);
    assert.equal(noEnv.reads.length, ALL_FILES.length + 1);
  }));

Deno.test("entries of files gone from the tree are dropped", () =>
  withSetup(async ({ root, digests, child }) => {
    await child("tree", root, { ahead: true });
    assert.equal(storedFiles(digests, root).length, 5);
    Deno.removeSync(join(root, "app", "util.py"));
    Deno.removeSync(join(root, "app", "data"), { recursive: true });
    const run = await child("tree", root);
    assert.deepEqual(run.reads, []);
    assert.deepEqual(
      storedFiles(digests, root),
      ["README.md", "app/main.py", "pyproject.toml"],
    );
  }));

Deno.test("with the real clock, files two seconds old are remembered, by the main thread only", () =>
  withSetup(async ({ root, digests, child }) => {
    await new Promise((resolve) => setTimeout(resolve, 2100));
    // Hashed in Workers (which keep no cache of their own: one file per root, not per file).
    const first = await child("tree-workers", root);
    assert.deepEqual(storedFiles(digests, root), Object.keys(TREE).sort());
    assert.equal([...Deno.readDirSync(digests)].length, 1);
    const again = await child("tree", root);
    assert.deepEqual(again.reads, []);
    assert.equal(again.digest, first.digest);
  }));

Deno.test("an unchanged tree writes nothing: its index file stays the one written", () =>
  withSetup(async ({ root, digests, child }) => {
    const first = await child("tree", root, { ahead: true });
    const file = digestIndexFile(digests, root);
    const written = Deno.statSync(file);
    assert.deepEqual([...Deno.readDirSync(digests)].map((entry) => entry.name), [
      `${sha256Hex(root)}.idx`,
    ], "one file per root, no temporary file left");
    assert.equal(written.mode! & 0o777, 0o600, "readable by the user alone");
    for (const mode of ["tree", "tree-sync"] as const) {
      const again = await child(mode, root, { ahead: true });
      assert.equal(again.digest, first.digest);
      assert.deepEqual(again.reads, []);
    }
    assert.equal(Deno.statSync(file).ino, written.ino, "not written again (no rename)");
  }));

Deno.test("an index is read back whole, about its own root only, and matches by full key", () =>
  withTempDir((dir) => {
    const root = join(dir, "tree");
    Deno.mkdirSync(root);
    Deno.writeTextFileSync(join(root, "a.txt"), "a");
    const a = lstatFile(join(root, "a.txt"));
    const index = new TreeIndex();
    index.add("a.txt", FILE, a);
    index.setDigest(0, sha256Hex("a"));
    index.believed[0] = 1;
    const digests = join(dir, "digests");
    assert.equal(writeDigestIndex(digests, root, index), true);
    const back = readDigestIndex(digests, root)!;
    assert.deepEqual(back.paths, ["a.txt"]);
    assert.equal(back.hex(0), sha256Hex("a"));
    assert.equal(back.hasStat(0, a), true);
    // Any part of the key that differs is a miss.
    for (
      const other of [
        { ...a, size: a.size + 1 },
        { ...a, mtime: a.mtime + 1 },
        { ...a, ctime: a.ctime + 1000 },
        { ...a, ino: a.ino + 1 },
        { ...a, dev: a.dev + 1 },
        { ...a, mode: a.mode ^ 0o100 },
      ]
    ) {
      assert.equal(back.hasStat(0, other), false, JSON.stringify(other));
    }
    assert.equal(back.find("b.txt"), -1, "nor is another path");
    assert.equal(readDigestIndex(digests, dir), undefined, "another root");
    assert.equal(readDigestIndex(undefined, root), undefined, "no folder: nothing read");
    assert.equal(writeDigestIndex(undefined, root, index), false, "nor written");
  }));

Deno.test("the digest cache folder follows XDG_CACHE_HOME, then HOME", () => {
  assert.equal(
    imgtoolCacheDir("digests", { XDG_CACHE_HOME: "/x", HOME: "/h" }),
    "/x/imgtool/digests",
  );
  assert.equal(imgtoolCacheDir("digests", { HOME: "/h" }), "/h/.cache/imgtool/digests");
  assert.equal(imgtoolCacheDir("digests", {}), undefined);
});

Deno.test("an index keeps only the digests it believes: the others are written as zeros", () => {
  const index = new TreeIndex();
  const stat = { size: 1, mtime: 1000, ctime: 1000, ino: 7, dev: 1, mode: 0o100644 };
  for (const [at, name] of ["a.txt", "b.txt", "c.txt"].entries()) {
    index.add(name, FILE, { ...stat, ino: at });
    index.setDigest(at, sha256Hex(name));
  }
  index.believed[0] = 1;
  index.believed[2] = 1;
  const back = decodeTreeIndex(encodeTreeIndex("/tree", index), "/tree")!;
  assert.deepEqual([0, 1, 2].map((at) => back.hex(at)), [
    sha256Hex("a.txt"),
    "0".repeat(64),
    sha256Hex("c.txt"),
  ]);
});

Deno.test("a large index is written in pieces and read back whole: every entry, odd names too", () =>
  withTempDir((dir) => {
    const root = join(dir, "tree");
    const names = ["a", "é", "😀", "\ud800", "x\udc00y", "long-".repeat(40), "z z"];
    const index = new TreeIndex();
    for (let at = 0; at < 20_000; at++) {
      const kind = at % 5 === 0 ? DIR : at % 7 === 0 ? SYMLINK : FILE;
      const path = `d${at % 13}/${names[at % names.length]}-${at}`;
      const stat = {
        size: at,
        mtime: at * 1000,
        ctime: at * 1000,
        ino: at,
        dev: 3,
        mode: 0o100644,
      };
      index.add(path, kind, stat, kind === SYMLINK ? `../${names[at % names.length]}` : undefined);
      index.setDigest(at, sha256Hex(path));
      index.believed[at] = at % 3 === 0 ? 0 : 1;
    }
    const digests = join(dir, "digests");
    assert.equal(writeDigestIndex(digests, root, index), true);
    const file = Deno.readFileSync(digestIndexFile(digests, root));
    assert.deepEqual(file, encodeTreeIndex(root, index), "the pieces are the encoded index");
    const back = readDigestIndex(digests, root)!;
    assert.equal(back.length, index.length);
    for (let at = 0; at < index.length; at++) {
      // Lone surrogates come back as U+FFFD, as any UTF-8 text would have them.
      assert.equal(back.paths[at], index.paths[at].toWellFormed());
      assert.equal(back.kinds[at], index.kinds[at]);
      assert.ok(back.sameStat(at, index, at));
      const kept = index.kinds[at] === FILE && index.believed[at] === 1;
      assert.equal(back.hex(at), kept ? index.hex(at) : "0".repeat(64));
    }
  }));
