// The layer cache (src/layer_cache.ts) and the grouped blob (src/layer_blob.ts): a blob of
// many gzip members reads back as one stream with gzip, GNU tar and Python; a rebuild with
// the cache gives the very bytes a build without it gives, copying the groups that did not
// change; a damaged or foreign cache is not believed; a file whose content is not the one
// listed is an error, whether its group is compressed again or copied.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { BuildError } from "../src/errors.ts";
import { type LayerBlob, writeLayerBlob } from "../src/layer_blob.ts";
import { LayerCache } from "../src/layer_cache.ts";
import type { LayerEntry } from "../src/layer_tar.ts";
import { runProcess, withTempDir } from "./helpers.ts";

const MTIME = 1_700_000_000;
const SLOT = "a".repeat(64);

/** Deterministic bytes of a given length and seed (text-like, so gzip has work to do). */
function bytesOf(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed * 2654435761 >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = 97 + ((x >>> 0) % 20);
  }
  return bytes;
}

/** A project: 40 folders of small files, two large files, a link and odd names. */
async function writeProject(root: string): Promise<void> {
  for (let d = 0; d < 40; d++) {
    await Deno.mkdir(join(root, `pkg${d}`), { recursive: true });
    for (let f = 0; f < 12; f++) {
      await Deno.writeFile(
        join(root, `pkg${d}`, `mod_${f}.py`),
        bytesOf(300 + f * 97, d * 100 + f),
      );
    }
  }
  await Deno.writeFile(join(root, "model.bin"), bytesOf(700_000, 7));
  await Deno.writeFile(join(root, "pkg3", "data.bin"), bytesOf(300_000, 8));
  await Deno.writeTextFile(join(root, "pkg1", "naïve file €.txt"), "odd name\n");
  await Deno.symlink("pkg1/mod_1.py", join(root, "link.py"));
}

/** The layer entries of `root` under /app, each file with the digest of its content. */
async function listProject(root: string, digests = true): Promise<LayerEntry[]> {
  const entries: LayerEntry[] = [];
  const walk = async (dir: string, at: string) => {
    for await (const item of Deno.readDir(dir)) {
      const path = join(dir, item.name);
      const target = `${at}/${item.name}`;
      if (item.isDirectory) {
        entries.push({ path: target, kind: "dir", mode: 0o755, uid: 0, gid: 0 });
        await walk(path, target);
      } else if (item.isSymlink) {
        const linkTarget = await Deno.readLink(path);
        entries.push({ path: target, kind: "symlink", mode: 0o777, uid: 0, gid: 0, linkTarget });
      } else {
        const content = await Deno.readFile(path);
        entries.push({
          path: target,
          kind: "file",
          mode: 0o644,
          uid: 1000,
          gid: 1000,
          size: content.length,
          source: path,
          ...(digests ? { sha256: createHash("sha256").update(content).digest() } : {}),
        });
      }
    }
  };
  await walk(root, "/app");
  return entries;
}

function cacheFiles(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((item) => item.name).sort();
}

/** Write with the cache in `cacheDir`, and keep the result as a pushed blob would be. */
async function writeKept(entries: LayerEntry[], cacheDir: string, dir: string) {
  const cache = LayerCache.open(SLOT, cacheDir)!;
  assert.ok(cache, "the cache folder is usable");
  const written = await writeLayerBlob(entries, { mtime: MTIME, dir, cache });
  assert.ok(written.staged, "a blob written with a cache is staged for it");
  const bytes = await Deno.readFile(written.path);
  cache.keep(written.staged!);
  return { written, bytes };
}

async function writePlain(entries: LayerEntry[], dir: string): Promise<LayerBlob> {
  return await writeLayerBlob(entries, { mtime: MTIME, dir });
}

const sha256Hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

Deno.test("a blob of many gzip members reads back as one stream: gzip, GNU tar and Python agree", async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, "project");
    await writeProject(root);
    const entries = await listProject(root);
    const blob = await writePlain(entries, dir);
    assert.ok(blob.groups.total > 10, `several groups: ${blob.groups.total}`);
    // gzip -dc reads every member; its output is the tar the diff id names.
    const tarPath = join(dir, "layer.tar");
    const unzip = await runProcess("sh", ["-c", `gzip -dc '${blob.path}' > '${tarPath}'`]);
    assert.equal(unzip.code, 0, unzip.stderr);
    const tar = await Deno.readFile(tarPath);
    assert.equal(`sha256:${sha256Hex(tar)}`, blob.diffId);
    assert.equal(`sha256:${sha256Hex(await Deno.readFile(blob.path))}`, blob.digest);
    // GNU tar reads the compressed blob itself and lists every entry.
    const listed = await runProcess("tar", ["-tzf", blob.path]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(listed.stdout.trim().split("\n").length, entries.length);
    // Python's gzip (and tarfile) read all members too: the last file is there, whole.
    const python = await runProcess("python3", [
      "-c",
      "import sys,tarfile,hashlib\n" +
      "t=tarfile.open(sys.argv[1],'r:gz')\n" +
      "print(hashlib.sha256(t.extractfile('app/model.bin').read()).hexdigest())",
      blob.path,
    ]);
    assert.equal(python.code, 0, python.stderr);
    assert.equal(
      python.stdout.trim(),
      sha256Hex(await Deno.readFile(join(root, "model.bin"))),
    );
  });
});

Deno.test("with the layer cache a rebuild gives the bytes a build without it gives, copying what did not change", async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, "project");
    await writeProject(root);
    const cacheDir = join(dir, "cache", "layers");
    const first = await writeKept(await listProject(root), cacheDir, dir);
    assert.equal(first.written.groups.reused, 0, "nothing to copy from the first time");
    assert.equal(first.written.digest, (await writePlain(await listProject(root), dir)).digest);
    assert.deepEqual(cacheFiles(cacheDir), [`${SLOT}.gz`, `${SLOT}.json`, `${SLOT}.raw`]);
    assert.equal(Deno.statSync(cacheDir).mode! & 0o777, 0o700, "the cache folder is private");

    // The same files again: every group copied, the same bytes.
    const same = await writeKept(await listProject(root), cacheDir, dir);
    assert.equal(same.written.groups.reused, same.written.groups.total - 1, "all but the end");
    assert.deepEqual(same.bytes, first.bytes);

    // One small file edited: its group is compressed again, every other one copied (the large
    // files' too: their tar bytes read again, their members copied).
    await Deno.writeTextFile(join(root, "pkg17", "mod_3.py"), "edited\n", { append: true });
    const edited = await writeKept(await listProject(root), cacheDir, dir);
    const plain = await writePlain(await listProject(root), dir);
    assert.equal(edited.written.digest, plain.digest);
    assert.equal(edited.written.diffId, plain.diffId);
    assert.deepEqual(edited.bytes, await Deno.readFile(plain.path));
    assert.equal(edited.written.groups.reused, edited.written.groups.total - 2);
    assert.notEqual(edited.written.digest, first.written.digest);

    // The large file edited (same size): only its group changes.
    const model = await Deno.readFile(join(root, "model.bin"));
    model[123_456] ^= 1;
    await Deno.writeFile(join(root, "model.bin"), model);
    const big = await writeKept(await listProject(root), cacheDir, dir);
    assert.equal(big.written.digest, (await writePlain(await listProject(root), dir)).digest);
    assert.equal(big.written.groups.reused, big.written.groups.total - 2);

    // Another mtime (SOURCE_DATE_EPOCH) is another key for every group: nothing is copied.
    const cache = LayerCache.open(SLOT, cacheDir)!;
    const later = await writeLayerBlob(await listProject(root), { mtime: MTIME + 1, dir, cache });
    assert.equal(later.groups.reused, 0);
    cache.discard(later.staged!);
    assert.deepEqual(cacheFiles(cacheDir), [`${SLOT}.gz`, `${SLOT}.json`, `${SLOT}.raw`]);
  });
});

Deno.test("a damaged, mismatched or foreign layer cache is not believed: the bytes stay the same", async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, "project");
    await writeProject(root);
    const cacheDir = join(dir, "layers");
    const entries = await listProject(root);
    const expected = await writePlain(entries, dir);
    const base = join(cacheDir, SLOT);
    const damages: [string, () => void, (reused: number, total: number) => boolean][] = [
      ["a flipped byte in the raw bytes", () => flip(`${base}.raw`, 5000), (r, t) => r === t - 1],
      ["a flipped byte in the blob", () => flip(`${base}.gz`, 9), (r, t) => r === t - 2],
      ["a truncated blob", () => Deno.truncateSync(`${base}.gz`, 1000), (r) => r < 3],
      ["no raw file", () => Deno.removeSync(`${base}.raw`), (r, t) => r === t - 1],
      [
        "another Deno's record",
        () => edit((json) => json.compressor = "deno 0.0.1"),
        (r) => r === 0,
      ],
      [
        "a record that is not JSON",
        () => Deno.writeTextFileSync(`${base}.json`, "{"),
        (r) => r === 0,
      ],
      [
        "a member out of the blob",
        () => edit((json) => json.members[0].offset = 1e9),
        (r, t) => r === t - 2,
      ],
      [
        "a member longer than any gzip of its group could be",
        () => edit((json) => json.members[0].length = 2 ** 45),
        (r) => r === 0,
      ],
    ];
    function flip(path: string, at: number) {
      const bytes = Deno.readFileSync(path);
      bytes[at] ^= 0xff;
      Deno.writeFileSync(path, bytes);
    }
    function edit(
      change: (json: { compressor: string; members: { offset: number; length: number }[] }) => void,
    ) {
      const json = JSON.parse(Deno.readTextFileSync(`${base}.json`));
      change(json);
      Deno.writeTextFileSync(`${base}.json`, JSON.stringify(json));
    }
    for (const [what, damage, fewer] of damages) {
      await writeKept(entries, cacheDir, dir);
      damage();
      const cache = LayerCache.open(SLOT, cacheDir)!;
      const written = await writeLayerBlob(entries, { mtime: MTIME, dir, cache });
      assert.equal(written.digest, expected.digest, what);
      assert.equal(written.diffId, expected.diffId, what);
      const { reused, total } = written.groups;
      assert.ok(fewer(reused, total), `${what}: ${reused} of ${total} groups copied`);
      cache.keep(written.staged!);
    }
  });
});

Deno.test("a file whose content is not its listed digest is an error, compressed again or copied", async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, "project");
    await writeProject(root);
    const cacheDir = join(dir, "layers");
    const listed = await listProject(root);
    const { written: first } = await writeKept(listed, cacheDir, dir);
    // Rewritten after it was listed (same size): the listing's digests are stale.
    for (const name of ["pkg5/mod_2.py", "model.bin"]) {
      const path = join(root, name);
      const bytes = await Deno.readFile(path);
      bytes[10] ^= 1;
      await Deno.writeFile(path, bytes);
      for (const cache of [undefined, LayerCache.open(SLOT, cacheDir)!]) {
        if (cache && name !== "model.bin") {
          // A small file's group is copied with the content listed: the layer is the one
          // its tag names (the build's check that nothing changed meanwhile then speaks).
          const copied = await writeLayerBlob(listed, { mtime: MTIME, dir, cache });
          assert.equal(copied.digest, first.digest);
          cache.discard(copied.staged!);
          continue;
        }
        const error = await writeLayerBlob(listed, { mtime: MTIME, dir, cache })
          .then(() => assert.fail("expected an error"), (e: unknown) => e);
        assert.ok(error instanceof BuildError, String(error));
        assert.match(
          error.message,
          new RegExp(`${name.replace(".", "\\.")} changed while imgtool built the layer`),
        );
        cache?.close();
      }
      bytes[10] ^= 1;
      await Deno.writeFile(path, bytes);
    }
    // Nothing half-written is left: the cache holds its three files, the folder no blob.
    assert.deepEqual(cacheFiles(cacheDir), [`${SLOT}.gz`, `${SLOT}.json`, `${SLOT}.raw`]);
    assert.deepEqual(cacheFiles(dir).filter((name) => name.startsWith("layer-")), []);
  });
});

Deno.test("the raw file grows by the groups that changed, and is rewritten once mostly stale", async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, "project");
    await writeProject(root);
    const cacheDir = join(dir, "layers");
    const raw = join(cacheDir, `${SLOT}.raw`);
    const entries = await listProject(root);
    await writeKept(entries, cacheDir, dir);
    const full = Deno.statSync(raw).size;
    // An edit appends its group's tar bytes only.
    await Deno.writeTextFile(join(root, "pkg9", "mod_0.py"), "edited\n", { append: true });
    const edited = await listProject(root);
    await writeKept(edited, cacheDir, dir);
    const grown = Deno.statSync(raw).size - full;
    assert.ok(grown > 0 && grown < full / 10, `${grown} bytes appended to ${full}`);
    // Builds under other times make every group new: the file is rewritten with the live
    // groups once the stale ones pass twice the live ones and 16 MB.
    let largest = 0;
    for (let i = 1; i <= 30; i++) {
      const cache = LayerCache.open(SLOT, cacheDir)!;
      const written = await writeLayerBlob(edited, { mtime: MTIME + i, dir, cache });
      cache.keep(written.staged!);
      largest = Math.max(largest, Deno.statSync(raw).size);
    }
    assert.ok(largest <= 3 * full + 16_000_000 + full, `the raw file reached ${largest} bytes`);
    assert.ok(Deno.statSync(raw).size < 30 * full, "it was rewritten");
    // After the rewrite every group is still found.
    const cache = LayerCache.open(SLOT, cacheDir)!;
    const again = await writeLayerBlob(edited, { mtime: MTIME + 30, dir, cache });
    assert.equal(again.groups.reused, again.groups.total - 1);
    cache.discard(again.staged!);
  });
});

Deno.test("a name or link target with a newline cannot make two groups' keys the same", async () => {
  await withTempDir(async (dir) => {
    const cacheDir = join(dir, "layers");
    const link = (linkTarget: string): LayerEntry => ({
      path: "/X",
      kind: "symlink",
      mode: 0o777,
      uid: 0,
      gid: 0,
      linkTarget,
    });
    const folder = (path: string): LayerEntry => ({
      path,
      kind: "dir",
      mode: 0o755,
      uid: 0,
      gid: 0,
    });
    // Written field after field with newlines between entries, these two would read the same:
    // "X ... t\nd/Y\nZ/ ..." (a link to "t\nd/Y", then the folder Z) and (a link to "t", then
    // the folder "d/Y\nZ").
    await writeKept([link("t\nd/Y"), folder("/Z")], cacheDir, dir);
    const other = [link("t"), folder("/d/Y\nZ")];
    const { written } = await writeKept(other, cacheDir, dir);
    const plain = await writePlain(other, dir);
    assert.equal(written.diffId, plain.diffId);
    assert.equal(written.digest, plain.digest);
  });
});
