// imgtool's caches are the user's own (src/cache_dir.ts): folders are made 0700, one of the
// user's with wider modes is tightened, one of another user's is not used, and an entry
// another user wrote is neither believed, nor replaced, nor pruned. A cache only saves work:
// an entry that cannot be believed sends the check down the slow path, to the same answer.
//
// The ownership cases give folders and entries to nobody (uid 65534), which needs root.

import assert from "node:assert/strict";
import { join } from "node:path";
import { imgtoolCacheDir, pruneCacheDir, readCacheEntry } from "../src/cache_dir.ts";
import { digestIndexFile, readDigestIndex, writeDigestIndex } from "../src/digest_cache.ts";
import { lstatFile } from "../src/file_stat.ts";
import { LastChecked } from "../src/last_checked.ts";
import { sha256Digest } from "../src/registry/bytes.ts";
import { RegistryClient } from "../src/registry/client.ts";
import { OCI_MANIFEST } from "../src/registry/manifest.ts";
import { FileTagCache, type SeenTag } from "../src/registry/tag_cache.ts";
import { serveLocal } from "../src/registry/testing.ts";
import { sha256Hex } from "../src/sha256.ts";
import { FILE, TreeIndex } from "../src/tree_index.ts";
import { runProcess, withTempDir } from "./helpers.ts";

const IS_ROOT = Deno.uid() === 0;
const NOBODY = 65534;

/** A test that gives files to another user: ignored, saying why, unless run as root. */
function asRoot(name: string, fn: () => Promise<void>): Deno.TestDefinition {
  return IS_ROOT
    ? { name, fn }
    : { name: `${name} (ignored: needs root, to give files to nobody)`, ignore: true, fn };
}

const mode = (path: string) => Deno.statSync(path).mode! & 0o7777;
const owner = (path: string) => Deno.lstatSync(path).uid;
const names = (dir: string) => [...Deno.readDirSync(dir)].map((entry) => entry.name).sort();

/** An index of the tree at `root` (one file, `a.txt`) that believes `sha256` for it. */
function indexOf(root: string, sha256: string): TreeIndex {
  const index = new TreeIndex();
  index.add("a.txt", FILE, lstatFile(join(root, "a.txt")));
  index.setDigest(0, sha256);
  index.believed[0] = 1;
  return index;
}

const SEEN: SeenTag = {
  digest: `sha256:${"c".repeat(64)}`,
  mediaType: OCI_MANIFEST,
  platforms: ["linux/amd64"],
};

Deno.test("cache folders are made private: 0700, with every folder made on the way", () =>
  withTempDir((dir) => {
    Deno.chmodSync(dir, 0o755);
    const tags = imgtoolCacheDir("tags", { XDG_CACHE_HOME: join(dir, "cache") })!;
    assert.equal(tags, join(dir, "cache", "imgtool", "tags"));
    new FileTagCache(tags).set("r/a:1", SEEN);
    for (const folder of [join(dir, "cache"), join(dir, "cache", "imgtool"), tags]) {
      assert.equal(mode(folder), 0o700, folder);
    }
    assert.deepEqual(new FileTagCache(tags).get("r/a:1"), SEEN);
    const checked = join(dir, "cache", "imgtool", "checked");
    const selection = { spec: "/p/spec.ts", images: [], platforms: [] };
    new LastChecked(checked).remember(selection, ["127.0.0.1:5000/app:1"]);
    assert.equal(mode(checked), 0o700);
    // A read alone makes no folder.
    const unread = join(dir, "cache", "imgtool", "unread");
    assert.equal(new FileTagCache(unread).get("r/a:1"), undefined);
    assert.throws(() => Deno.statSync(unread), Deno.errors.NotFound);
  }));

Deno.test("an existing cache folder of the user's with wider modes is tightened to 0700", () =>
  withTempDir((dir) => {
    for (const wide of [0o755, 0o775, 0o777, 0o1777]) {
      const tags = join(dir, wide.toString(8), "tags");
      Deno.mkdirSync(tags, { recursive: true });
      Deno.chmodSync(tags, wide);
      new FileTagCache(tags).set("r/a:1", SEEN);
      assert.equal(mode(tags), 0o700, wide.toString(8));
      assert.deepEqual(new FileTagCache(tags).get("r/a:1"), SEEN);
    }
    // A parent of the user's that others may write in loses that write access (others could
    // swap the cache folder for theirs); read access stays.
    const parent = join(dir, "open-parent");
    Deno.mkdirSync(parent);
    Deno.chmodSync(parent, 0o777);
    new FileTagCache(join(parent, "tags")).set("r/a:1", SEEN);
    assert.equal(mode(parent), 0o755);
    assert.deepEqual(new FileTagCache(join(parent, "tags")).get("r/a:1"), SEEN);
  }));

Deno.test("an entry that is not a plain file of bounded size is no entry, and is never opened", () =>
  withTempDir(async (dir) => {
    const tags = join(dir, "tags");
    const cache = new FileTagCache(tags);
    cache.set("r/a:1", SEEN);
    const [name] = names(tags);
    const file = join(tags, name);
    const text = Deno.readTextFileSync(file);
    assert.equal(readCacheEntry(file, text.length), text);
    assert.equal(readCacheEntry(file, text.length - 1), undefined, "longer than allowed");
    // A link to a good entry: not believed (links are how entries would be redirected).
    Deno.renameSync(file, join(dir, "elsewhere.json"));
    Deno.symlinkSync(join(dir, "elsewhere.json"), file);
    assert.equal(cache.get("r/a:1"), undefined);
    // A FIFO in its place would hang a reader that opened it: in a child, stopped if it does.
    Deno.removeSync(file);
    const made = await runProcess("mkfifo", [file]);
    assert.equal(made.code, 0, made.stderr);
    const module = new URL("../src/registry/tag_cache.ts", import.meta.url).href;
    const child = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { FileTagCache } from "${module}";
         console.log(JSON.stringify(new FileTagCache(${
          JSON.stringify(tags)
        }).get("r/a:1") ?? null));`,
      ],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(30_000),
    }).output();
    assert.equal(
      child.code,
      0,
      `killed after 30 s if it hung: ${new TextDecoder().decode(child.stderr)}`,
    );
    assert.equal(new TextDecoder().decode(child.stdout).trim(), "null");
  }));

Deno.test("malformed entries are no entries: nothing a cache holds can fake a platform or a digest", () =>
  withTempDir((dir) => {
    const tags = join(dir, "tags");
    const cache = new FileTagCache(tags);
    cache.set("r/a:1", SEEN);
    const [name] = names(tags);
    const file = join(tags, name);
    const entry = JSON.parse(Deno.readTextFileSync(file));
    for (
      const platforms of [["linux/amd64", "Linux/ARM64"], ["linux"], ["linux/amd64/v8/x"], [""]]
    ) {
      Deno.writeTextFileSync(file, JSON.stringify({ ...entry, platforms }));
      assert.equal(cache.get("r/a:1"), undefined, JSON.stringify(platforms));
    }
    Deno.writeTextFileSync(file, JSON.stringify(entry));
    assert.deepEqual(cache.get("r/a:1"), SEEN, "the entry itself was fine");

    // Remembered URIs: only image references are guesses.
    const checked = join(dir, "checked");
    const selection = { spec: "/p/spec.ts", images: [], platforms: [] };
    new LastChecked(checked).remember(selection, ["127.0.0.1:5000/app:1"]);
    const [uriFile] = names(checked).map((n) => join(checked, n));
    const stored = JSON.parse(Deno.readTextFileSync(uriFile));
    const uris = ["127.0.0.1:5000/app:1", "has space:1", "", 7, "UPPER/Case"];
    Deno.writeTextFileSync(uriFile, JSON.stringify({ ...stored, uris }));
    assert.deepEqual(new LastChecked(checked).recall(selection), ["127.0.0.1:5000/app:1"]);

    // Digests: an index is believed whole or not at all (a checksum covers every byte).
    const root = join(dir, "root");
    Deno.mkdirSync(root);
    Deno.writeTextFileSync(join(root, "a.txt"), "a");
    const digests = join(dir, "digests");
    const truth = sha256Hex("a");
    writeDigestIndex(digests, root, indexOf(root, truth));
    assert.equal(readDigestIndex(digests, root)?.hex(0), truth);
    const digestFile = digestIndexFile(digests, root);
    const good = Deno.readFileSync(digestFile);
    for (let at = 0; at < good.length; at += 5) {
      const bad = good.slice();
      bad[at] ^= 0x20;
      Deno.writeFileSync(digestFile, bad);
      assert.equal(readDigestIndex(digests, root), undefined, `byte ${at} of ${good.length}`);
    }
  }));

Deno.test(
  asRoot(
    "a cache folder of another user's is not used, and none is made inside one",
    () =>
      withTempDir((dir) => {
        // Entries written as the user, then the folder given away.
        const written = join(dir, "written");
        new FileTagCache(written).set("r/a:1", SEEN);
        const [name] = names(written);

        const theirs = join(dir, "theirs", "tags");
        Deno.mkdirSync(theirs, { recursive: true, mode: 0o700 });
        Deno.copyFileSync(join(written, name), join(theirs, name));
        Deno.chownSync(theirs, NOBODY, NOBODY);
        assert.equal(new FileTagCache(theirs).get("r/a:1"), undefined, "not believed");
        new FileTagCache(theirs).set("r/b:1", SEEN);
        assert.deepEqual(names(theirs), [name], "nothing written");
        assert.equal(pruneCacheDir(theirs, { maxEntries: 0, maxBytes: 0 }), 0, "nothing pruned");

        // A folder of the user's inside one of nobody's, who could swap it.
        const swappable = join(dir, "nobodys", "tags");
        Deno.mkdirSync(swappable, { recursive: true, mode: 0o700 });
        Deno.copyFileSync(join(written, name), join(swappable, name));
        Deno.chownSync(join(dir, "nobodys"), NOBODY, NOBODY);
        assert.equal(new FileTagCache(swappable).get("r/a:1"), undefined);

        // None made in nobody's home (sudo keeping HOME): it would be root's, in their folder.
        const home = join(dir, "home");
        Deno.mkdirSync(home);
        Deno.chownSync(home, NOBODY, NOBODY);
        const tags = imgtoolCacheDir("tags", { HOME: home })!;
        new FileTagCache(tags).set("r/a:1", SEEN);
        assert.deepEqual(names(home), []);
        // While a shared sticky folder of root's, like /tmp, may hold one.
        const sticky = join(dir, "sticky");
        Deno.mkdirSync(sticky);
        Deno.chmodSync(sticky, 0o1777);
        new FileTagCache(join(sticky, "tags")).set("r/a:1", SEEN);
        assert.deepEqual(new FileTagCache(join(sticky, "tags")).get("r/a:1"), SEEN);
      }),
  ),
);

Deno.test(
  asRoot(
    "an entry of another user's is neither believed, nor replaced, nor pruned",
    () =>
      withTempDir((dir) => {
        const tags = join(dir, "tags");
        const cache = new FileTagCache(tags);
        cache.set("r/theirs:1", SEEN);
        const [theirs] = names(tags).map((name) => join(tags, name));
        const text = Deno.readTextFileSync(theirs);
        assert.deepEqual(cache.get("r/theirs:1"), SEEN, "believed while it is the user's");
        Deno.chownSync(theirs, NOBODY, NOBODY);
        assert.equal(cache.get("r/theirs:1"), undefined);
        cache.set("r/theirs:1", { ...SEEN, platforms: ["linux/arm64"] });
        assert.equal(Deno.readTextFileSync(theirs), text, "not replaced");
        assert.equal(owner(theirs), NOBODY);

        // Pruning (a folder of its own: each is pruned once per process, here by `set`).
        const full = join(dir, "full");
        Deno.mkdirSync(full, { mode: 0o700 });
        const longAgo = new Date(Date.now() - 400 * 24 * 60 * 60 * 1000);
        for (const name of ["mine-1.json", "mine-2.json", "theirs.json", "theirs.json.1.x.tmp"]) {
          Deno.writeTextFileSync(join(full, name), "{}");
          Deno.utimeSync(join(full, name), longAgo, longAgo);
          if (name.startsWith("theirs")) Deno.chownSync(join(full, name), NOBODY, NOBODY);
        }
        assert.equal(pruneCacheDir(full, { maxEntries: 0, maxBytes: 0 }), 2, "the user's own");
        assert.deepEqual(names(full), ["theirs.json", "theirs.json.1.x.tmp"]);

        // Remembered URIs.
        const checked = join(dir, "checked");
        const selection = { spec: "/p/spec.ts", images: [], platforms: [] };
        new LastChecked(checked).remember(selection, ["127.0.0.1:5000/app:1"]);
        const [uriFile] = names(checked).map((name) => join(checked, name));
        Deno.chownSync(uriFile, NOBODY, NOBODY);
        assert.deepEqual(new LastChecked(checked).recall(selection), []);

        // Digests: a planted lie about the user's own file.
        const root = join(dir, "root");
        Deno.mkdirSync(root);
        Deno.writeTextFileSync(join(root, "a.txt"), "a");
        const digests = join(dir, "digests");
        const lie = "0".repeat(64);
        writeDigestIndex(digests, root, indexOf(root, lie));
        assert.equal(readDigestIndex(digests, root)?.hex(0), lie, "the control");
        Deno.chownSync(digestIndexFile(digests, root), NOBODY, NOBODY);
        assert.equal(readDigestIndex(digests, root), undefined);
      }),
  ),
);

/** A registry on 127.0.0.1 serving `team/app:1`, a linux/amd64 image only. */
async function amd64Registry() {
  const config = new TextEncoder().encode(JSON.stringify({ architecture: "amd64", os: "linux" }));
  const configDigest = await sha256Digest(config);
  const manifest = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: configDigest,
      size: config.length,
    },
    layers: [],
  }));
  const digest = await sha256Digest(manifest);
  const requests: string[] = [];
  const server = serveLocal((request) => {
    const { pathname } = new URL(request.url);
    requests.push(`${request.method} ${pathname}`);
    if (pathname === "/v2/") return new Response("{}");
    if (pathname === "/v2/team/app/manifests/1") {
      return new Response(request.method === "HEAD" ? null : manifest, {
        headers: {
          "content-type": OCI_MANIFEST,
          "docker-content-digest": digest,
          "content-length": String(manifest.length),
        },
      });
    }
    if (pathname === `/v2/team/app/blobs/${configDigest}`) return new Response(config);
    return new Response(null, { status: 404 });
  });
  return { server, digest, requests };
}

Deno.test(
  asRoot("a tag entry planted by another user cannot make a missing platform exist", async () => {
    const { server, digest, requests } = await amd64Registry();
    try {
      await withTempDir(async (dir) => {
        const reference = `${server.host}/team/app:1`;
        const tags = join(dir, "tags");
        // The lie: the tag's real digest, with a platform it does not have.
        new FileTagCache(tags).set(reference, {
          digest,
          mediaType: OCI_MANIFEST,
          platforms: ["linux/amd64", "linux/arm64"],
        });
        const check = async () => {
          const client = new RegistryClient({ tagCache: new FileTagCache(tags) });
          try {
            requests.length = 0;
            return await client.check(reference, ["linux/arm64"]);
          } finally {
            await client.close();
          }
        };
        // The control: an entry of the user's own is believed (the cache decides then).
        assert.equal((await check()).exists, true);
        const [file] = names(tags).map((name) => join(tags, name));
        Deno.chownSync(file, NOBODY, NOBODY);
        const status = await check();
        assert.equal(status.exists, false);
        assert.deepEqual(status.missing, ["linux/arm64"]);
        assert.deepEqual(status.platforms, ["linux/amd64"]);
        assert.ok(
          requests.includes(`GET /v2/team/app/manifests/1`),
          `the manifest was read: ${requests.join(", ")}`,
        );
        assert.equal(owner(file), NOBODY, "and the planted entry was left alone");
      });
    } finally {
      await server.close();
    }
  }),
);
