// imgtool's cache folders stay bounded (src/cache_dir.ts): the least recently used entries go
// once a folder passes its limits, and entries in use are kept young.

import assert from "node:assert/strict";
import { join } from "node:path";
import { LIST_CACHE_EVERY_MS, noteCacheUse, pruneCacheDir } from "../src/cache_dir.ts";
import { writeWholeSync } from "../src/fs.ts";
import { FileTagCache } from "../src/registry/tag_cache.ts";
import { LastChecked } from "../src/last_checked.ts";
import { withTempDir } from "./helpers.ts";

const DAY_MS = 24 * 60 * 60 * 1000;
const NOW = Date.now();

/** Write `name` with `bytes` bytes, last modified `ageMs` ago. */
function entry(dir: string, name: string, ageMs: number, bytes = 10): string {
  const path = join(dir, name);
  Deno.writeTextFileSync(path, "x".repeat(bytes));
  const when = new Date(NOW - ageMs);
  Deno.utimeSync(path, when, when);
  return path;
}

const names = (dir: string) => [...Deno.readDirSync(dir)].map((item) => item.name).sort();

Deno.test("past its entry limit, a folder loses its least recently used entries", () =>
  withTempDir((dir) => {
    for (let i = 0; i < 10; i++) entry(dir, `${i}.json`, i * DAY_MS);
    // 10 entries, 8 allowed: down to 6 (three quarters), the oldest (highest i) first.
    assert.equal(pruneCacheDir(dir, { maxEntries: 8, maxBytes: 1e9 }, NOW), 4);
    assert.deepEqual(names(dir), ["0.json", "1.json", "2.json", "3.json", "4.json", "5.json"]);
  }));

Deno.test("past its byte limit, a folder loses entries until it is at three quarters", () =>
  withTempDir((dir) => {
    entry(dir, "old-big.json", 3 * DAY_MS, 600);
    entry(dir, "old-small.json", 2 * DAY_MS, 100);
    entry(dir, "new-big.json", 0, 600);
    assert.equal(pruneCacheDir(dir, { maxEntries: 100, maxBytes: 1000 }, NOW), 1);
    assert.deepEqual(names(dir), ["new-big.json", "old-small.json"]);
  }));

Deno.test("within its limits nothing goes but stale temporary files; other files are left alone", () =>
  withTempDir((dir) => {
    entry(dir, "a.json", 400 * DAY_MS);
    entry(dir, "b.json.123.abc.tmp", 2 * 60 * 60 * 1000); // a write that never finished
    entry(dir, "c.json.456.def.tmp", 1000); // a write going on now
    entry(dir, "notes.txt", 400 * DAY_MS);
    Deno.mkdirSync(join(dir, "folder"));
    assert.equal(pruneCacheDir(dir, { maxEntries: 1, maxBytes: 1e9 }, NOW), 1);
    assert.deepEqual(names(dir), ["a.json", "c.json.456.def.tmp", "folder", "notes.txt"]);
    // A folder is listed once per process.
    entry(dir, "d.json", 0);
    assert.equal(pruneCacheDir(dir, { maxEntries: 1, maxBytes: 1e9 }, NOW), 0);
  }));

Deno.test("a folder with a listing interval is listed at most once in it, across processes", () =>
  withTempDir(async (dir) => {
    const cache = join(dir, "cache");
    const marker = `${cache}.pruned`;
    const module = new URL("../src/cache_dir.ts", import.meta.url).href;
    /** Prune the folder in a process of its own (each lists a folder once), at `now`. */
    const pruneAt = async (now: number): Promise<number> => {
      const output = await new Deno.Command(Deno.execPath(), {
        args: [
          "eval",
          `import { pruneCacheDir } from "${module}";
           const limits = { maxEntries: 8, maxBytes: 1e9, listEveryMs: 600_000 };
           console.log(pruneCacheDir(${JSON.stringify(cache)}, limits, ${now}));`,
        ],
        stderr: "inherit",
      }).output();
      assert.equal(output.code, 0);
      return Number(new TextDecoder().decode(output.stdout));
    };
    Deno.mkdirSync(cache, { mode: 0o700 });
    const fill = (from: number, to: number) => {
      for (let i = from; i < to; i++) entry(cache, `${i}.json`, (i + 1) * DAY_MS);
    };
    fill(0, 10);
    // Never listed: listed, 10 entries down to 6, and the time noted beside the folder.
    assert.equal(await pruneAt(NOW), 4);
    assert.equal(Deno.lstatSync(marker).mtime?.getTime(), NOW);
    fill(10, 20);
    // Five minutes on: not listed again, the folder over its limit for now.
    assert.equal(await pruneAt(NOW + 5 * 60_000), 0);
    assert.equal(names(cache).length, 16);
    // Eleven minutes on: listed, down to 6 again.
    assert.equal(await pruneAt(NOW + 11 * 60_000), 10);
    // Something else in the marker's place is never written through: listed every time.
    fill(20, 30);
    Deno.removeSync(marker);
    const elsewhere = join(dir, "elsewhere");
    Deno.writeTextFileSync(elsewhere, "untouched");
    Deno.symlinkSync(elsewhere, marker);
    assert.equal(await pruneAt(NOW + 12 * 60_000), 10);
    assert.equal(Deno.readTextFileSync(elsewhere), "untouched");
    assert.ok(Deno.lstatSync(marker).isSymlink, "left as it was");
    assert.deepEqual(names(dir), ["cache", "cache.pruned", "elsewhere"], "no temporary file left");
  }));

Deno.test("a missing or unreadable folder prunes nothing and throws nothing", () =>
  withTempDir((dir) => {
    assert.equal(pruneCacheDir(join(dir, "missing"), { maxEntries: 0, maxBytes: 0 }), 0);
    const file = entry(dir, "file.json", 0);
    assert.equal(pruneCacheDir(file, { maxEntries: 0, maxBytes: 0 }), 0);
  }));

Deno.test("using an entry keeps it young: a day-old one is touched, a fresh one is not", () =>
  withTempDir((dir) => {
    const old = entry(dir, "old.json", 10 * DAY_MS);
    const fresh = entry(dir, "fresh.json", 60 * 60 * 1000);
    noteCacheUse(old, NOW);
    noteCacheUse(fresh, NOW);
    noteCacheUse(join(dir, "missing.json"), NOW); // no error
    assert.equal(Deno.statSync(old).mtime?.getTime(), NOW);
    assert.equal(Deno.statSync(fresh).mtime?.getTime(), NOW - 60 * 60 * 1000);
  }));

Deno.test("the tag cache and the checked URIs keep what they use when they prune", () =>
  withTempDir(async (dir) => {
    const seen = {
      digest: `sha256:${"a".repeat(64)}`,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      platforms: ["linux/amd64"],
    };
    // An earlier build remembered this tag (a process of its own: each prunes once).
    const module = new URL("../src/registry/tag_cache.ts", import.meta.url).href;
    const earlier = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { FileTagCache } from "${module}";
         new FileTagCache(${JSON.stringify(join(dir, "tags"))})
           .set("127.0.0.1:5000/app:used", ${JSON.stringify(seen)});`,
      ],
    }).output();
    assert.equal(earlier.code, 0, new TextDecoder().decode(earlier.stderr));
    const [usedFile] = names(join(dir, "tags")).map((name) => join(dir, "tags", name));
    const longAgo = new Date(NOW - 30 * DAY_MS);
    Deno.utimeSync(usedFile, longAgo, longAgo);
    // Read now: the entry counts as used today.
    assert.ok(new FileTagCache(join(dir, "tags")).get("127.0.0.1:5000/app:used"));
    // 5,000 newer entries, written older than the one just used, then one more write prunes.
    for (let i = 0; i < 5000; i++) entry(join(dir, "tags"), `filler-${i}.json`, DAY_MS, 1);
    // The earlier build listed the folder just now; the next listing is due ten minutes on.
    entry(dir, "tags.pruned", LIST_CACHE_EVERY_MS + 1000, 0);
    new FileTagCache(join(dir, "tags")).set("127.0.0.1:5000/app:new", seen);
    const left = names(join(dir, "tags"));
    assert.ok(left.length <= 3750, `${left.length} entries left`);
    assert.ok(new FileTagCache(join(dir, "tags")).get("127.0.0.1:5000/app:used"), "kept");
    assert.ok(new FileTagCache(join(dir, "tags")).get("127.0.0.1:5000/app:new"), "kept");

    const checked = join(dir, "checked");
    Deno.mkdirSync(checked);
    for (let i = 0; i < 2001; i++) entry(checked, `filler-${i}.json`, DAY_MS, 1);
    const memory = new LastChecked(checked);
    const selection = { spec: "/work/app/spec.ts", images: [], platforms: [] };
    memory.remember(selection, ["127.0.0.1:5000/app:1"]);
    assert.ok(names(checked).length <= 1500);
    assert.deepEqual(new LastChecked(checked).recall(selection), ["127.0.0.1:5000/app:1"]);
  }));

Deno.test("a cache write that cannot finish leaves no temporary file and reports false", () =>
  withTempDir((dir) => {
    // The target is a folder: the temporary file is written, the rename fails.
    Deno.mkdirSync(join(dir, "entry.json"));
    assert.equal(writeWholeSync(join(dir, "entry.json"), "{}\n"), false);
    assert.deepEqual(names(dir), ["entry.json"]);
    assert.ok(Deno.statSync(join(dir, "entry.json")).isDirectory);
    // A folder that cannot be made (a file is in the way): nothing is written.
    Deno.writeTextFileSync(join(dir, "file"), "");
    assert.equal(writeWholeSync(join(dir, "file", "entry.json"), "{}\n"), false);
    assert.deepEqual(names(dir), ["entry.json", "file"]);
    // And a write that can finish replaces the old content whole.
    assert.equal(writeWholeSync(join(dir, "ok.json"), "old\n"), true);
    assert.equal(writeWholeSync(join(dir, "ok.json"), "new\n"), true);
    assert.equal(Deno.readTextFileSync(join(dir, "ok.json")), "new\n");
    assert.deepEqual(names(dir), ["entry.json", "file", "ok.json"]);
  }));
