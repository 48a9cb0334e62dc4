// The layer writer (src/layer_tar.ts, src/layer_blob.ts) against independent readers: GNU
// tar lists and extracts what it wrote, Python's tarfile reads every header field back, and
// sha256sum and gunzip check the digests. Byte stability is checked by writing the same
// entries from copies of a tree made under other umasks, touched, in other folders.

import assert from "node:assert/strict";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import fc from "fast-check";
import { BuildError, SystemError, UsageError } from "../src/errors.ts";
import { writeLayerBlob } from "../src/layer_blob.ts";
import {
  DEFAULT_LAYER_MTIME,
  type LayerEntry,
  type LayerEntryList,
  layerMtime,
  layerTarBlocks,
} from "../src/layer_tar.ts";
import { isFile } from "../src/fs.ts";
import { stagedMode } from "../src/staged_mode.ts";
import { runProcess, withTempDir } from "./helpers.ts";

const encoder = new TextEncoder();
const MTIME = 1_700_000_000;
// Debian's own Python starts in a tenth of the time of a version manager's shim.
const PYTHON = isFile("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

/** Random bytes, any length (getRandomValues gives 64 KiB at a time). */
function randomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let at = 0; at < length; at += 65536) {
    crypto.getRandomValues(bytes.subarray(at, Math.min(length, at + 65536)));
  }
  return bytes;
}

/** A member as Python's tarfile reads it (the independent reader of every field). */
interface Member {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size: number;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  pax: Record<string, string>;
  /** The content, base64. */
  data: string;
}

const READ_TAR_PY = `
import base64, json, sys, tarfile
out = []
with tarfile.open(sys.argv[1], "r:*", encoding="utf-8", errors="strict") as archive:
    for m in archive:
        data = archive.extractfile(m).read() if m.isreg() else b""
        out.append({
            "name": m.name, "type": m.type.decode(), "mode": m.mode, "uid": m.uid,
            "gid": m.gid, "mtime": m.mtime, "size": m.size, "linkname": m.linkname,
            "uname": m.uname, "gname": m.gname, "devmajor": m.devmajor,
            "devminor": m.devminor, "pax": m.pax_headers,
            "data": base64.b64encode(data).decode(),
        })
json.dump(out, sys.stdout)
`;

/** The members of a tar or tar.gz file, as Python's tarfile reads them. */
async function readWithPython(path: string): Promise<Member[]> {
  const ran = await runProcess(PYTHON, ["-c", READ_TAR_PY, path]);
  assert.equal(ran.code, 0, `python3 could not read ${path}:\n${ran.stderr}`);
  return JSON.parse(ran.stdout);
}

async function sha256sum(args: string): Promise<string> {
  const ran = await runProcess("sh", ["-c", `${args} | sha256sum`]);
  assert.equal(ran.code, 0, ran.stderr);
  return `sha256:${ran.stdout.split(" ")[0]}`;
}

function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/**
 * Content as its length and sha256: compared instead of the bytes, so that a failure's
 * message stays short (a diff of two large byte arrays takes minutes to make).
 */
function summary(bytes: Uint8Array): string {
  return `${bytes.length} bytes, sha256 ${createHash("sha256").update(bytes).digest("hex")}`;
}

/** What a reader should find for an entry: its name in the archive and its fields. */
function expected(entry: LayerEntry, content: Uint8Array) {
  return {
    // Python strips a folder's trailing slash from the name.
    name: entry.path.slice(1),
    type: entry.kind === "file" ? "0" : entry.kind === "dir" ? "5" : "2",
    mode: entry.mode,
    uid: entry.uid,
    gid: entry.gid,
    linkname: entry.linkTarget ?? "",
    data: summary(content),
  };
}

function seen(member: Member) {
  return {
    name: member.name,
    type: member.type,
    mode: member.mode,
    uid: member.uid,
    gid: member.gid,
    linkname: member.linkname,
    data: summary(fromBase64(member.data)),
  };
}

const ODD_NAMES = [
  "/app/with space.txt",
  `/app/quotes "double" and 'single'.txt`,
  "/app/new\nline.txt",
  "/app/tab\tand\\backslash",
  "/app/café/naïve-日本語.txt",
  "/app/emoji-😀.txt",
  // 100+ bytes: split into a ustar prefix and name.
  `/app/${"p".repeat(60)}/${"q".repeat(60)}/file.txt`,
  // A prefix of exactly 155 bytes and a name of exactly 100.
  `/${"a".repeat(154)}/${"b".repeat(100)}`,
  // A prefix over 155 bytes with no split that fits: a PAX path.
  `/${"c".repeat(200)}/file.txt`,
  // A last segment over 100 bytes: no split fits.
  `/app/${"d".repeat(120)}`,
  // Longer than 256 bytes, with non-ASCII.
  `/app/${"é".repeat(100)}/${"long/".repeat(20)}end`,
];

Deno.test("a layer of odd names, links and owners reads back exactly with Python's tarfile and GNU tar", async () => {
  await withTempDir(async (dir) => {
    const onDisk = join(dir, "on disk.bin");
    const diskBytes = randomBytes(200_000);
    await Deno.writeFile(onDisk, diskBytes);
    const entries: LayerEntry[] = [
      { path: "/app", kind: "dir", mode: 0o755, uid: 0, gid: 0 },
      { path: "/app/café", kind: "dir", mode: 0o700, uid: 1000, gid: 1001 },
      { path: "/app/from-disk.bin", kind: "file", mode: 0o600, uid: 0, gid: 0, source: onDisk },
      {
        path: "/app/run.sh",
        kind: "file",
        mode: 0o4755,
        uid: 0,
        gid: 0,
        source: encoder.encode("#!/bin/sh\n"),
      },
      { path: "/app/empty", kind: "file", mode: 0o644, uid: 0, gid: 0, source: new Uint8Array(0) },
      {
        path: "/app/big-ids",
        kind: "file",
        mode: 0o644,
        uid: 3_000_000_000,
        gid: 2_097_152,
        source: encoder.encode("ids"),
      },
      { path: "/app/link", kind: "symlink", mode: 0o777, uid: 0, gid: 0, linkTarget: "run.sh" },
      {
        path: "/app/link-abs",
        kind: "symlink",
        mode: 0o777,
        uid: 0,
        gid: 0,
        linkTarget: "/usr/bin/env",
      },
      {
        path: "/app/link-long",
        kind: "symlink",
        mode: 0o777,
        uid: 0,
        gid: 0,
        linkTarget: `../${"t".repeat(150)}`,
      },
      {
        path: "/app/link-utf8",
        kind: "symlink",
        mode: 0o777,
        uid: 0,
        gid: 0,
        linkTarget: "ünïcode",
      },
      ...ODD_NAMES.map((path, i): LayerEntry => ({
        path,
        kind: "file",
        mode: i % 2 === 0 ? 0o644 : 0o755,
        uid: 0,
        gid: 0,
        source: encoder.encode(`content of ${path}\n`),
      })),
    ];
    const layer = await writeLayerBlob(entries, { mtime: MTIME, dir });

    const members = await readWithPython(layer.path);
    const sorted = [...entries].sort((a, b) =>
      Buffer.compare(Buffer.from(a.path), Buffer.from(b.path))
    );
    const contentOf = (entry: LayerEntry) =>
      entry.source === onDisk
        ? diskBytes
        : entry.source instanceof Uint8Array
        ? entry.source
        : new Uint8Array(0);
    assert.deepEqual(members.map(seen), sorted.map((e) => expected(e, contentOf(e))));
    for (const member of members) {
      assert.equal(member.mtime, MTIME, member.name);
      assert.equal(member.uname, "", member.name);
      assert.equal(member.gname, "", member.name);
      assert.equal(member.devmajor, 0, member.name);
      assert.equal(member.devminor, 0, member.name);
    }
    // PAX only where ustar cannot say it: non-ASCII names, long names with no split, long
    // or non-ASCII link targets, ids too large for their octal field.
    const withPax = members.filter((m) => Object.keys(m.pax).length > 0).map((m) => m.name);
    assert.deepEqual(
      withPax.sort(),
      [
        `${"c".repeat(200)}/file.txt`,
        "app/big-ids",
        "app/café",
        "app/café/naïve-日本語.txt",
        `app/${"d".repeat(120)}`,
        `app/${"é".repeat(100)}/${"long/".repeat(20)}end`,
        "app/emoji-😀.txt",
        "app/link-long",
        "app/link-utf8",
      ].sort(),
    );
    const bigIds = members.find((m) => m.name === "app/big-ids")!;
    assert.deepEqual(bigIds.pax, { gid: "2097152", uid: "3000000000" });

    // GNU tar: the listing it prints, and the files it extracts.
    const listing = await runProcess("tar", [
      "-tvvzf",
      layer.path,
      "--numeric-owner",
      "--quoting-style=escape",
    ]);
    assert.equal(listing.code, 0, listing.stderr);
    assert.equal(listing.stderr, "", "GNU tar warns about nothing");
    assert.match(listing.stdout, /^drwxr-xr-x 0\/0 +0 2023-11-14 22:13 app\/$/m);
    assert.match(listing.stdout, /^-rwsr-xr-x 0\/0 +10 2023-11-14 22:13 app\/run\.sh$/m);
    assert.match(listing.stdout, /^-rw-r--r-- 3000000000\/2097152 +3 .* app\/big-ids$/m);
    assert.match(listing.stdout, /^lrwxrwxrwx 0\/0 +0 .* app\/link -> run\.sh$/m);
    assert.match(listing.stdout, /app\/new\\nline\.txt$/m);
    const out = join(dir, "extracted");
    await Deno.mkdir(out);
    const extract = await runProcess("tar", ["-xzf", layer.path, "-C", out, "--numeric-owner"]);
    assert.equal(extract.code, 0, extract.stderr);
    for (const entry of entries) {
      const where = join(out, entry.path);
      const info = await Deno.lstat(where);
      if (entry.kind === "symlink") {
        assert.ok(info.isSymlink, entry.path);
        assert.equal(await Deno.readLink(where), entry.linkTarget);
      } else {
        assert.equal(info.mode! & 0o7777, entry.mode, entry.path);
        assert.equal(info.uid, entry.uid, entry.path);
        if (entry.kind === "file") {
          assert.equal(summary(await Deno.readFile(where)), summary(contentOf(entry)), entry.path);
          assert.equal(info.mtime!.getTime(), MTIME * 1000, entry.path);
        }
      }
    }
  });
});

Deno.test("the digest is sha256sum of the file, the diff id that of gunzip -c, the size its length", async () => {
  await withTempDir(async (dir) => {
    const layer = await writeLayerBlob([
      {
        path: "/data.bin",
        kind: "file",
        mode: 0o644,
        uid: 0,
        gid: 0,
        source: randomBytes(3_000_000),
      },
      { path: "/etc", kind: "dir", mode: 0o755, uid: 0, gid: 0 },
    ], { mtime: MTIME, dir });
    assert.equal(layer.digest, await sha256sum(`cat '${layer.path}'`));
    assert.equal(layer.diffId, await sha256sum(`gunzip -c '${layer.path}'`));
    assert.equal(layer.size, (await Deno.stat(layer.path)).size);
    assert.ok(layer.path.startsWith(`${dir}/`));
    assert.equal(layer.digest.length, "sha256:".length + 64);
  });
});

/** Files of a small project: text, a script, a nested folder, a binary of several blocks. */
const TREE: Record<string, Uint8Array> = {
  "README.md": encoder.encode("# demo\n"),
  "bin/run": encoder.encode("#!/bin/sh\necho hi\n"),
  "src/pkg/__init__.py": encoder.encode(""),
  "src/pkg/main.py": encoder.encode("print('hello')\n".repeat(500)),
  "src/pkg/data.bin": Uint8Array.from({ length: 2_500_000 }, (_, i) => (i * 7919) % 251),
};

/** Write TREE into `root`, as a checkout would. */
async function writeProject(root: string): Promise<void> {
  for (const [path, content] of Object.entries(TREE)) {
    await Deno.mkdir(join(root, path, ".."), { recursive: true });
    await Deno.writeFile(join(root, path), content);
  }
  await Deno.chmod(join(root, "bin/run"), 0o755);
}

/** The entries of a folder under /app, listed as a walker would: modes by the staged rule. */
async function listProject(root: string): Promise<LayerEntry[]> {
  const entries: LayerEntry[] = [{ path: "/app", kind: "dir", mode: 0o755, uid: 0, gid: 0 }];
  async function walk(folder: string, image: string) {
    for await (const item of Deno.readDir(folder)) {
      const disk = join(folder, item.name);
      const path = `${image}/${item.name}`;
      const info = await Deno.stat(disk);
      if (item.isDirectory) {
        entries.push({ path, kind: "dir", mode: stagedMode(info.mode, "dir"), uid: 0, gid: 0 });
        await walk(disk, path);
      } else {
        entries.push({
          path,
          kind: "file",
          mode: stagedMode(info.mode),
          uid: 0,
          gid: 0,
          size: info.size,
          source: disk,
        });
      }
    }
  }
  await walk(root, "/app");
  return entries;
}

Deno.test("the same files give the same bytes from another folder, under another umask, after touch", async () => {
  await withTempDir(async (dir) => {
    const first = join(dir, "checkout-one");
    await writeProject(first);
    // The second checkout: copied by cp under umask 077 (files 0600, folders 0700), into a
    // folder of another name and depth, then touched to another time.
    const second = join(dir, "elsewhere", "deeper", "checkout-two");
    await Deno.mkdir(join(second, ".."), { recursive: true });
    const copy = await runProcess("sh", [
      "-c",
      `umask 077 && cp -R '${first}' '${second}' && touch -d '2001-02-03 04:05:06' $(find '${second}')`,
    ]);
    assert.equal(copy.code, 0, copy.stderr);
    assert.equal((await Deno.stat(join(second, "README.md"))).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(join(second, "src"))).mode! & 0o777, 0o700);

    const out1 = join(dir, "out1");
    const out2 = join(dir, "out2");
    await Deno.mkdir(out1);
    await Deno.mkdir(out2);
    const one = await writeLayerBlob(await listProject(first), { mtime: MTIME, dir: out1 });
    // Listed in another order too: the writer sorts.
    const two = await writeLayerBlob((await listProject(second)).reverse(), {
      mtime: MTIME,
      dir: out2,
    });
    assert.equal(two.digest, one.digest);
    assert.equal(two.diffId, one.diffId);
    assert.equal(two.size, one.size);
    assert.equal(summary(await Deno.readFile(two.path)), summary(await Deno.readFile(one.path)));

    // And the layer is not the same when something that counts changes.
    const later = await writeLayerBlob(await listProject(first), { mtime: MTIME + 1, dir: out1 });
    assert.notEqual(later.diffId, one.diffId);
    await Deno.writeTextFile(join(second, "README.md"), "# demo!\n");
    const edited = await writeLayerBlob(await listProject(second), { mtime: MTIME, dir: out2 });
    assert.notEqual(edited.diffId, one.diffId);
    await Deno.chmod(join(first, "README.md"), 0o700);
    const executable = await writeLayerBlob(await listProject(first), { mtime: MTIME, dir: out1 });
    assert.notEqual(executable.diffId, one.diffId);
  });
});

Deno.test("the tar bytes do not depend on the block size; the gzip bytes are pinned", async () => {
  const entries: LayerEntry[] = [
    { path: "/a", kind: "dir", mode: 0o755, uid: 0, gid: 0 },
    {
      path: "/a/x",
      kind: "file",
      mode: 0o644,
      uid: 0,
      gid: 0,
      source: Uint8Array.from({ length: 5000 }, (_, i) => i % 256),
    },
    { path: "/a/y", kind: "symlink", mode: 0o777, uid: 0, gid: 0, linkTarget: "x" },
    // A name only PAX can hold: its extended header is pinned too.
    { path: "/a/zü", kind: "file", mode: 0o755, uid: 0, gid: 0, source: encoder.encode("z") },
  ];
  const concat = async (blockSize: number) => {
    const blocks: Uint8Array[] = [];
    for await (const block of layerTarBlocks(entries, { mtime: MTIME, blockSize })) {
      if (blocks.length > 0) {
        assert.equal(blocks.at(-1)!.length, blockSize, "only the last block is short");
      }
      blocks.push(block);
    }
    return Buffer.concat(blocks);
  };
  const whole = await concat(1 << 20);
  assert.equal(summary(await concat(512)), summary(whole));
  assert.equal(summary(await concat(4096)), summary(whole));
  // Headers (4), a PAX header and its records (2), content (10 + 1 records), two zero
  // records; no padding to a 10 KiB record.
  assert.equal(whole.length, (4 + 2 + 11 + 2) * 512);

  await withTempDir(async (dir) => {
    const layer = await writeLayerBlob(entries, { mtime: MTIME, dir });
    const bytes = await Deno.readFile(layer.path);
    // The gzip header: no mtime (0), no name, OS byte 255 (unknown): nothing of this machine.
    assert.deepEqual([...bytes.subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    // These digests change only if the tar rules, the groups the blob's gzip members are cut
    // in, or Deno's deflate change. A Deno upgrade
    // that fails here changes every layer's digest: say so in the changelog.
    assert.equal(
      layer.diffId,
      "sha256:b73ee3df0906facd5edf07f882f9a157440009c4f68a9700d8e2cff9db76362d",
    );
    assert.equal(
      layer.digest,
      "sha256:cf4d83ea44c54f2de29acd685e15ee42700f23cd79138e6efdf75d2045f088e4",
    );
  });
});

Deno.test("a file shorter or longer than listed is an error naming it, and leaves no blob", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "changing.txt");
    await Deno.writeTextFile(file, "0123456789");
    const out = join(dir, "out");
    await Deno.mkdir(out);
    const entry = (size: number): LayerEntry => ({
      path: "/app/changing.txt",
      kind: "file",
      mode: 0o644,
      uid: 0,
      gid: 0,
      size,
      source: file,
    });
    // A first entry of 3 MiB: the error comes after blocks went to the gzip and the file.
    const before: LayerEntry = {
      path: "/app/a-big",
      kind: "file",
      mode: 0o644,
      uid: 0,
      gid: 0,
      source: new Uint8Array(3 << 20),
    };
    for (
      const [size, said] of [[20, /it ended after 10 of the 20 bytes listed/], [
        4,
        /it had more than the 4 bytes listed/,
      ]] as const
    ) {
      const error = await writeLayerBlob([before, entry(size)], { mtime: MTIME, dir: out })
        .then(() => assert.fail("expected an error"), (e: unknown) => e);
      assert.ok(error instanceof BuildError, String(error));
      assert.match(
        error.message,
        new RegExp(
          `^${
            file.replaceAll("/", "\\/")
          } changed while imgtool read it into the layer \\(as /app/changing\\.txt\\)`,
        ),
      );
      assert.match(error.message, said);
      assert.match(error.hint ?? "", /build again/);
      assert.deepEqual([...Deno.readDirSync(out)], [], "the partial blob is removed");
    }
    // Listed at its size, it is fine.
    const layer = await writeLayerBlob([entry(10)], { mtime: MTIME, dir: out });
    assert.ok(layer.size > 0);
  });
});

Deno.test("a file that grows while it is read is an error, never a corrupt layer", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "growing.log");
    await Deno.writeFile(file, new Uint8Array(4 << 20));
    // Announced at its size now; then it grows between the first block and the end.
    const blocks = layerTarBlocks([
      {
        path: "/growing.log",
        kind: "file",
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: 4 << 20,
        source: file,
      },
    ], { mtime: MTIME });
    await blocks.next();
    using appender = await Deno.open(file, { append: true });
    await appender.write(encoder.encode("more"));
    const error = await (async () => {
      for await (const _ of blocks) { /* read on */ }
    })().then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.ok(error instanceof BuildError);
    assert.match(error.message, /growing\.log changed while imgtool read it/);
  });
});

Deno.test("entries that cannot be written are all named at once, before anything is read", async () => {
  const file = (path: string, extra: Partial<LayerEntry> = {}): LayerEntry => ({
    path,
    kind: "file",
    mode: 0o644,
    uid: 0,
    gid: 0,
    source: "/nonexistent/never-read",
    ...extra,
  });
  const error = await writeLayerBlob([
    file("relative/path"),
    file("/a/../b"),
    file("/a//b"),
    file("/trailing/"),
    file("/"),
    file("/twice"),
    file("/twice"),
    file("/mode", { mode: 0o10000 }),
    file("/uid", { uid: -1 }),
    file("/nosource", { source: undefined }),
    file("/size", { source: new Uint8Array(3), size: 4 }),
    { path: "/dir", kind: "dir", mode: 0o755, uid: 0, gid: 0, size: 3 },
    { path: "/link", kind: "symlink", mode: 0o777, uid: 0, gid: 0 },
    file("/bad\0nul"),
  ], { mtime: MTIME, dir: "/nonexistent" }).then(
    () => assert.fail("expected an error"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof UsageError, String(error));
  for (
    const named of [
      '"relative/path"',
      '"/a/../b"',
      '"/a//b"',
      '"/trailing/"',
      '"/": the path must be absolute and below /',
      '"/twice": listed twice',
      '"/mode": the mode 4096',
      '"/uid": the uid -1',
      '"/nosource": a file needs a source',
      '"/size": the size 4 is not the length of its bytes (3)',
      '"/dir": a folder has no content or size',
      '"/link": a symbolic link needs a target',
      "a NUL character",
    ]
  ) assert.ok(error.message.includes(named), `${named} in:\n${error.message}`);
  const badTime = await writeLayerBlob([], { mtime: -1, dir: "/nonexistent" })
    .then(() => assert.fail("expected an error"), (e: unknown) => e);
  assert.match(String(badTime), /the mtime -1 is not a whole number of seconds/);
});

Deno.test("a missing source or a folder as a file is an error naming it", async () => {
  await withTempDir(async (dir) => {
    const missing = join(dir, "gone.txt");
    const error = await writeLayerBlob([{
      path: "/gone.txt",
      kind: "file",
      mode: 0o644,
      uid: 0,
      gid: 0,
      source: missing,
    }], { mtime: MTIME, dir })
      .then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.ok(error instanceof SystemError, String(error));
    assert.match(
      error.message,
      new RegExp(
        `reading ${missing} into the layer \\(as /gone\\.txt\\): cannot look up ${missing}: no such file`,
        "i",
      ),
    );
    const folder = await writeLayerBlob([{
      path: "/f",
      kind: "file",
      mode: 0o644,
      uid: 0,
      gid: 0,
      source: dir,
    }], { mtime: MTIME, dir })
      .then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.match(String(folder), /it is not a regular file/);
    // A named pipe in a listed file's place (its size given, as a walk lists it) is refused
    // before it is opened: opening it would wait for a writer for ever.
    const pipe = join(dir, "pipe");
    assert.equal((await runProcess("mkfifo", [pipe])).code, 0);
    const piped = await writeLayerBlob([{
      path: "/pipe",
      kind: "file",
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: 10,
      source: pipe,
    }], { mtime: MTIME, dir })
      .then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.ok(piped instanceof BuildError, String(piped));
    assert.match(piped.message, /pipe into the layer as \/pipe: it is not a regular file/);
    await Deno.remove(pipe);
    assert.deepEqual([...Deno.readDirSync(dir)], [], "no blob is left behind");
  });
});

Deno.test("an empty layer is two zero records", async () => {
  await withTempDir(async (dir) => {
    const layer = await writeLayerBlob([], { mtime: MTIME, dir });
    assert.equal(layer.diffId, await sha256sum("head -c 1024 /dev/zero"));
    assert.deepEqual(await readWithPython(layer.path), []);
  });
});

Deno.test("layerMtime reads SOURCE_DATE_EPOCH, else the constant, and refuses a malformed one", () => {
  assert.equal(layerMtime("1700000000"), 1_700_000_000);
  assert.equal(layerMtime("0"), 0);
  assert.equal(layerMtime(undefined), DEFAULT_LAYER_MTIME);
  assert.equal(layerMtime(""), DEFAULT_LAYER_MTIME);
  for (const bad of ["-1", "1.5", "abc", " 12", "1e9", "99999999999999"]) {
    assert.throws(
      () => layerMtime(bad),
      (e: unknown) => e instanceof UsageError && /SOURCE_DATE_EPOCH/.test(e.message),
      bad,
    );
  }
});

// Names as a walker could find them: printable ASCII (quotes, spaces, backslashes), control
// characters, and any Unicode, in segments of any length up to a deep path.
const segment = fc.oneof(
  fc.string({
    unit: fc.constantFrom(..."abc xyz-_.'\"\\\n\t$*?[]".split("")),
    minLength: 1,
    maxLength: 12,
  }),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 8 }),
  fc.string({ unit: fc.constantFrom("l", "o", "n", "g"), minLength: 90, maxLength: 130 }),
).filter((s) => s !== "." && s !== ".." && !s.includes("/") && !s.includes("\0"));

const entryArbitrary = fc.record({
  segments: fc.array(segment, { minLength: 1, maxLength: 4 }),
  kind: fc.constantFrom("file", "file", "dir", "symlink") as fc.Arbitrary<LayerEntry["kind"]>,
  mode: fc.integer({ min: 0, max: 0o7777 }),
  uid: fc.oneof(fc.integer({ min: 0, max: 70000 }), fc.constant(4_000_000_000)),
  gid: fc.integer({ min: 0, max: 70000 }),
  content: fc.uint8Array({ maxLength: 1500 }),
  linkTarget: fc.oneof(
    segment,
    fc.array(segment, { minLength: 1, maxLength: 5 }).map((s) => s.join("/")),
  ),
});

Deno.test("property: any entries read back exactly, and any order of them gives the same bytes", async () => {
  await withTempDir(async (dir) => {
    const sourceFile = join(dir, "source.bin");
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(entryArbitrary, {
          minLength: 0,
          maxLength: 12,
          selector: (e) => e.segments.join("/"),
        }),
        fc.integer({ min: 0, max: 2 ** 33 - 1 }),
        fc.boolean(),
        async (raw, mtime, fromDisk) => {
          const out = join(dir, `run-${run++}`);
          await Deno.mkdir(out);
          // One entry may come from disk, so that both sources are exercised.
          const diskIndex = fromDisk ? raw.findIndex((e) => e.kind === "file") : -1;
          if (diskIndex >= 0) await Deno.writeFile(sourceFile, raw[diskIndex].content);
          const entries: LayerEntry[] = raw.map((e, i) => {
            const path = `/${e.segments.join("/")}`;
            const base = { path, kind: e.kind, mode: e.mode, uid: e.uid, gid: e.gid };
            if (e.kind === "dir") return base;
            if (e.kind === "symlink") return { ...base, linkTarget: e.linkTarget };
            return { ...base, source: i === diskIndex ? sourceFile : e.content };
          });
          const layer = await writeLayerBlob(entries, { mtime, dir: out });
          const members = await readWithPython(layer.path);
          const sorted = entries.map((e, i) => ({ e, content: raw[i].content }))
            .sort((a, b) => Buffer.compare(Buffer.from(a.e.path), Buffer.from(b.e.path)));
          assert.deepEqual(
            members.map(seen),
            sorted.map(({ e, content }) =>
              expected(e, e.kind === "file" ? content : new Uint8Array(0))
            ),
          );
          for (const member of members) assert.equal(member.mtime, mtime);
          const shuffled = await writeLayerBlob([...entries].reverse(), { mtime, dir: out });
          assert.equal(shuffled.digest, layer.digest);
          await Deno.remove(out, { recursive: true });
        },
      ),
      { numRuns: 40 },
    );
  });
});

Deno.test("a path given twice: the last entry is written, and a list made on demand writes the same bytes as an array", async () => {
  await withTempDir(async (dir) => {
    const text = (path: string, content: string, mode = 0o644): LayerEntry => ({
      path,
      kind: "file",
      mode,
      uid: 0,
      gid: 0,
      source: new TextEncoder().encode(content),
    });
    const folder: LayerEntry = { path: "/app", kind: "dir", mode: 0o755, uid: 0, gid: 0 };
    const given = [
      text("/app/a", "first", 0o755),
      folder,
      text("/app/b", "b"),
      text("/app/a", "last"),
    ];
    const expected = await writeLayerBlob([folder, text("/app/a", "last"), text("/app/b", "b")], {
      mtime: MTIME,
      dir,
    });
    const asArray = await writeLayerBlob(given, { mtime: MTIME, dir, duplicates: "last" });
    let made = 0;
    const list: LayerEntryList = {
      length: given.length,
      entry: (at) => {
        made++;
        return { ...given[at] };
      },
    };
    const asList = await writeLayerBlob(list, { mtime: MTIME, dir, duplicates: "last" });
    assert.equal(asArray.digest, expected.digest);
    assert.equal(asList.digest, expected.digest);
    assert.equal(asList.diffId, expected.diffId);
    // Each entry is made when planned, when grouped and when written: none is kept between.
    assert.ok(made >= given.length * 2, `made ${made} entries`);
    const refused = await writeLayerBlob(given, { mtime: MTIME, dir }).then(
      () => assert.fail("expected an error"),
      (e: unknown) => e,
    );
    assert.match(String(refused), /"\/app\/a": listed twice/);
  });
});

Deno.test("a list that comes sorted is checked, not sorted: the same bytes, and one out of order is refused", async () => {
  await withTempDir(async (dir) => {
    const dirEntry = (path: string): LayerEntry => ({
      path,
      kind: "dir",
      mode: 0o755,
      uid: 0,
      gid: 0,
    });
    // In UTF-8 byte order: U+FFFF before an emoji, though its UTF-16 unit is the larger.
    const paths = ["/a", "/a-b", "/a/x", "/\uffff", "/😀", "/😀/z"];
    const shuffled = [3, 0, 5, 2, 4, 1].map((at) => dirEntry(paths[at]));
    const sorted: LayerEntryList = {
      length: paths.length,
      sorted: true,
      entry: (at) => dirEntry(paths[at]),
    };
    const fromShuffled = await writeLayerBlob(shuffled, { mtime: MTIME, dir });
    const fromSorted = await writeLayerBlob(sorted, { mtime: MTIME, dir });
    assert.equal(fromSorted.digest, fromShuffled.digest);
    const swapped = [...paths];
    [swapped[3], swapped[4]] = [swapped[4], swapped[3]];
    const wrong: LayerEntryList = { ...sorted, entry: (at) => dirEntry(swapped[at]) };
    const error = await writeLayerBlob(wrong, { mtime: MTIME, dir }).then(
      () => assert.fail("expected an error"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof UsageError, String(error));
    assert.match(error.message, /"\/\uffff": not after "\/😀"/);
  });
});
