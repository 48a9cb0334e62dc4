import assert from "node:assert/strict";
import * as node from "node:path";
import { pathToFileURL } from "node:url";
import * as paths from "../src/path.ts";

// Our POSIX helpers must agree with node:path's POSIX implementation wherever imgtool uses
// them; node:path may be imported here, in a test, where start-up time does not matter.
const SAMPLES = [
  "",
  ".",
  "..",
  "/",
  "//",
  "a",
  "a/",
  "/a",
  "/a/",
  "a/b/c",
  "/a/b/c/",
  "a//b///c",
  "./a/./b",
  "a/../b",
  "../a/../../b",
  "/../a",
  "/a/b/../../..",
  "a/b/../..",
  "a/b/../../",
  "/a/./b/.",
  "file.tar.gz",
  "/x/.hidden",
  "with space/and#hash?",
];

const folder = (path: string) => node.posix.normalize(path).replace(/(.)\/$/, "$1");

Deno.test("normalize, dirname, basename and isAbsolute agree with node:path", () => {
  for (const sample of SAMPLES) {
    assert.equal(paths.normalize(sample), node.posix.normalize(sample), `normalize(${sample})`);
    // node keeps part of a repeated slash before the last segment ("a//b" → "a/"); we drop
    // it. Both name the same folder.
    assert.equal(
      folder(paths.dirname(sample)),
      folder(node.posix.dirname(sample)),
      `dirname(${sample})`,
    );
    if (!sample.includes("//")) assert.equal(paths.dirname(sample), node.posix.dirname(sample));
    assert.equal(paths.basename(sample), node.posix.basename(sample), `basename(${sample})`);
    assert.equal(paths.isAbsolute(sample), node.posix.isAbsolute(sample), sample);
  }
  for (const [path, suffix] of [["a.py", ".py"], ["a.py/", ".py"], ["a", "x"]]) {
    assert.equal(paths.basename(path, suffix), node.posix.basename(path, suffix), path);
  }
});

Deno.test("join, resolve and relative agree with node:path", () => {
  for (const first of SAMPLES) {
    for (const second of ["", "b", "/b", "../b", "b/", "./b/../c"]) {
      assert.equal(paths.join(first, second), node.posix.join(first, second), `${first} ${second}`);
      assert.equal(paths.resolve(first, second), node.posix.resolve(first, second));
      assert.equal(paths.relative(first, second), node.posix.relative(first, second));
    }
  }
  assert.equal(paths.join(), node.posix.join());
  assert.equal(paths.resolve(), node.posix.resolve());
});

Deno.test("file URLs round-trip every character a path may hold", () => {
  for (
    const path of ["/a b/c.ts", "/100%/x", "/#hash/?query", "/tab\there", "/ü/日本.ts", "/a\\b"]
  ) {
    const url = paths.toFileUrl(path);
    assert.equal(url.href, pathToFileURL(path).href, path);
    assert.equal(paths.fromFileUrl(url), path);
    assert.equal(paths.fromFileUrl(url.href), path);
  }
  assert.throws(() => paths.toFileUrl("relative.ts"), /absolute/);
  assert.throws(() => paths.fromFileUrl("https://example.invalid/x.ts"), /file: URL/);
});
