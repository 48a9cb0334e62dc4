import assert from "node:assert/strict";
import { join } from "node:path";
import { defaultTagCacheDir, FileTagCache, type SeenTag } from "./tag_cache.ts";

const SEEN: SeenTag = {
  digest: `sha256:${"b".repeat(64)}`,
  mediaType: "application/vnd.oci.image.index.v1+json",
  platforms: ["linux/amd64", "linux/arm64/v8"],
};

async function withDir(fn: (dir: string) => void | Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "imgtool-tag-cache-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a seen tag reads back by its reference, and only by it", () =>
  withDir((dir) => {
    const cache = new FileTagCache(join(dir, "made", "when", "written"));
    assert.equal(cache.get("127.0.0.1:5000/a:1"), undefined);
    cache.set("127.0.0.1:5000/a:1", SEEN);
    assert.deepEqual(
      new FileTagCache(join(dir, "made", "when", "written")).get("127.0.0.1:5000/a:1"),
      SEEN,
    );
    assert.equal(cache.get("127.0.0.1:5000/a:2"), undefined);
    const files = [...Deno.readDirSync(join(dir, "made", "when", "written"))];
    assert.equal(files.length, 1, "one file per reference, no temporary file left");
  }));

Deno.test("an entry that is damaged or about another reference is no entry", () =>
  withDir((dir) => {
    const cache = new FileTagCache(dir);
    cache.set("r/a:1", SEEN);
    const [file] = [...Deno.readDirSync(dir)].map((entry) => join(dir, entry.name));
    const entry = JSON.parse(Deno.readTextFileSync(file));
    const damaged = [
      "{ not json",
      JSON.stringify({ ...entry, reference: "r/b:1" }),
      JSON.stringify({ ...entry, digest: "sha256:short" }),
      JSON.stringify({ ...entry, platforms: [1] }),
      JSON.stringify({ ...entry, mediaType: undefined }),
      "null",
    ];
    for (const text of damaged) {
      Deno.writeTextFileSync(file, text);
      assert.equal(cache.get("r/a:1"), undefined, text);
    }
  }));

Deno.test("a folder that cannot be written is skipped without an error", () =>
  withDir((dir) => {
    const blocker = join(dir, "file");
    Deno.writeTextFileSync(blocker, "");
    const cache = new FileTagCache(join(blocker, "tags"));
    cache.set("r/a:1", SEEN);
    assert.equal(cache.get("r/a:1"), undefined);
  }));

Deno.test("the cache folder follows XDG_CACHE_HOME, then HOME", () => {
  assert.equal(defaultTagCacheDir({ XDG_CACHE_HOME: "/x", HOME: "/h" }), "/x/imgtool/tags");
  assert.equal(defaultTagCacheDir({ HOME: "/h" }), "/h/.cache/imgtool/tags");
  assert.equal(defaultTagCacheDir({}), undefined);
});
