// The cache limits hold (src/cache_dir.ts): for any folder and limits, pruning leaves the
// folder within them, removing least recently used entries first and none it need not; and
// each cache (digests, registry tags, checked URIs) prunes its folder to its own configured
// limits when it writes. Large entries are sparse files: their size counts, not their disk.

import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import { type CacheLimits, pruneCacheDir } from "../src/cache_dir.ts";
import { DIGEST_CACHE_LIMITS } from "../src/digest_cache.ts";
import { treeDigestSync, useDigestCache } from "../src/digest.ts";
import { LAST_CHECKED_LIMITS, LastChecked } from "../src/last_checked.ts";
import { FileTagCache, TAG_CACHE_LIMITS } from "../src/registry/tag_cache.ts";
import { withTempDir } from "./helpers.ts";

const NOW = Date.now();
const MINUTE_MS = 60_000;

interface Entry {
  readonly name: string;
  /** Minutes since last use. */
  readonly age: number;
  readonly size: number;
}

/** Write `entry` into `dir`: `size` bytes (sparse), last used `age` minutes before NOW. */
function writeEntry(dir: string, entry: Entry): void {
  const path = join(dir, entry.name);
  Deno.writeFileSync(path, new Uint8Array(0));
  Deno.truncateSync(path, entry.size);
  const when = new Date(NOW - entry.age * MINUTE_MS);
  Deno.utimeSync(path, when, when);
}

const namesIn = (dir: string) => new Set([...Deno.readDirSync(dir)].map((item) => item.name));

const total = (entries: readonly Entry[]) => entries.reduce((sum, entry) => sum + entry.size, 0);

Deno.test("for any entries and limits, pruning leaves the folder within its limits, least recently used first, and removes nothing it need not", async () => {
  const entries = fc.uniqueArray(fc.integer({ min: 0, max: 100_000 }), { maxLength: 30 })
    .chain((ages) =>
      fc.tuple(
        ...ages.map((age, i) =>
          fc.integer({ min: 0, max: 400 }).map((size): Entry => ({ name: `${i}.json`, age, size }))
        ),
      )
    );
  const limits = fc.record({
    maxEntries: fc.integer({ min: 0, max: 40 }),
    maxBytes: fc.integer({ min: 0, max: 8000 }),
  });
  await fc.assert(
    fc.asyncProperty(
      entries,
      limits,
      (entries: Entry[], limits: CacheLimits) =>
        withTempDir((dir) => {
          for (const entry of entries) writeEntry(dir, entry);
          pruneCacheDir(dir, limits, NOW);
          const left = namesIn(dir);
          const kept = entries.filter((entry) => left.has(entry.name));
          const removed = entries.filter((entry) => !left.has(entry.name));
          if (entries.length <= limits.maxEntries && total(entries) <= limits.maxBytes) {
            assert.deepEqual(removed, [], "within its limits, nothing goes");
            return;
          }
          // Within the limits, at three quarters of them (so the next pruning is far off).
          assert.ok(kept.length <= limits.maxEntries * 0.75, `${kept.length} entries left`);
          assert.ok(total(kept) <= limits.maxBytes * 0.75, `${total(kept)} bytes left`);
          // Least recently used first: every entry kept was used after every entry removed.
          const longestUnusedKept = Math.max(...kept.map((entry) => entry.age));
          for (const entry of removed) assert.ok(entry.age > longestUnusedKept, entry.name);
          // None it need not: with the most recently used removed entry back, it would be over.
          assert.ok(removed.length > 0, "over its limits, something goes");
          const youngestRemoved = removed.reduce((a, b) => a.age < b.age ? a : b);
          const withIt = [...kept, youngestRemoved];
          assert.ok(
            withIt.length > limits.maxEntries * 0.75 || total(withIt) > limits.maxBytes * 0.75,
            `${youngestRemoved.name} was removed though the folder was within limits without it`,
          );
        }),
    ),
    { numRuns: 40 },
  );
});

/** Make the digest cache remember one tree in `dir` (the tree made in `scratch`). */
function writeDigestEntry(dir: string, scratch: string): void {
  const tree = join(scratch, "tree");
  Deno.mkdirSync(tree);
  Deno.writeTextFileSync(join(tree, "file.txt"), "content");
  // The clock runs ahead: the file counts as settled, so its digest is remembered.
  useDigestCache({ dir, now: () => Date.now() + MINUTE_MS });
  try {
    treeDigestSync(tree);
  } finally {
    useDigestCache();
  }
}

/** The caches that prune when they write, each with its configured limits. */
const CACHES: {
  name: string;
  limits: CacheLimits;
  /** Make the cache write one new entry into `dir`. */
  write: (dir: string, scratch: string) => void;
}[] = [
  {
    name: "the digest cache",
    limits: DIGEST_CACHE_LIMITS,
    write: writeDigestEntry,
  },
  {
    name: "the registry tag cache",
    limits: TAG_CACHE_LIMITS,
    write(dir) {
      new FileTagCache(dir).set("127.0.0.1:5000/app:new", {
        digest: `sha256:${"a".repeat(64)}`,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        platforms: ["linux/amd64"],
      });
    },
  },
  {
    name: "the checked URIs",
    limits: LAST_CHECKED_LIMITS,
    write(dir) {
      new LastChecked(dir).remember(
        { spec: "/work/app/spec.ts", images: [], platforms: [] },
        ["127.0.0.1:5000/app:1"],
      );
    },
  },
];

for (const cache of CACHES) {
  Deno.test(`${cache.name} keeps its folder within its byte limit when it writes, keeping the new entry`, () =>
    withTempDir((scratch) => {
      const dir = join(scratch, "cache");
      Deno.mkdirSync(dir, { mode: 0o700 });
      // Four entries of a third of the limit each: over it by a third.
      const size = Math.ceil(cache.limits.maxBytes / 3);
      for (let i = 0; i < 4; i++) writeEntry(dir, { name: `old-${i}.json`, age: 60 + i, size });
      cache.write(dir, scratch);
      const left = [...namesIn(dir)];
      const bytes = left.reduce((sum, name) => sum + Deno.statSync(join(dir, name)).size, 0);
      assert.ok(bytes <= cache.limits.maxBytes, `${bytes} bytes left`);
      assert.equal(left.filter((name) => !name.startsWith("old-")).length, 1, "the new one stays");
      assert.ok(left.includes("old-0.json"), "the most recently used old entry stays");
    }));
}

// The tag cache's and the checked URIs' entry limits are held in tests/cache_prune_test.ts.
Deno.test("the digest cache keeps its folder within its entry limit when it writes, keeping the new entry", () =>
  withTempDir(async (scratch) => {
    const dir = join(scratch, "cache");
    Deno.mkdirSync(dir, { mode: 0o700 });
    // Written now, not aged (setting times costs more than writing here), then a pause:
    // the new entry is the most recently used by some milliseconds.
    for (let i = 0; i <= DIGEST_CACHE_LIMITS.maxEntries; i++) {
      Deno.writeTextFileSync(join(dir, `old-${i}.json`), "{}");
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    writeDigestEntry(dir, scratch);
    const left = [...namesIn(dir)];
    assert.ok(left.length <= DIGEST_CACHE_LIMITS.maxEntries, `${left.length} entries left`);
    assert.equal(left.filter((name) => !name.startsWith("old-")).length, 1, "the new one stays");
  }));
