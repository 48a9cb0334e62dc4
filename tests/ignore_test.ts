import assert from "node:assert/strict";
import { IgnoreRules } from "../src/ignore.ts";

const ROOT = "/ctx";
const rules = (...patterns: string[]) => new IgnoreRules([{ root: ROOT, patterns }]);
const ignored = (set: IgnoreRules, path: string) => set.ignores(`${ROOT}/${path}`);

Deno.test("ignore rules match case-sensitively, as Docker does on Linux", () => {
  const set = rules("*.LOG", "Build");
  assert.equal(ignored(set, "debug.LOG"), true);
  assert.equal(ignored(set, "debug.log"), false);
  assert.equal(ignored(set, "Build/x"), true);
  assert.equal(ignored(set, "build/x"), false);
});

Deno.test("ignore patterns are relative to the rules file's folder", () => {
  const set = rules("*.log", "/tmp", "./cache", "docs/*.md");
  assert.equal(ignored(set, "a.log"), true);
  assert.equal(ignored(set, "sub/a.log"), false, "* does not cross folders");
  assert.equal(ignored(set, "tmp"), true);
  assert.equal(ignored(set, "sub/tmp"), false);
  assert.equal(ignored(set, "cache"), true);
  assert.equal(ignored(set, "docs/readme.md"), true);
  assert.equal(ignored(set, "docs/api/readme.md"), false);
  assert.equal(set.ignores("/elsewhere/a.log"), false, "outside the folder nothing is ignored");
  assert.equal(set.ignores(ROOT), false, "the folder itself is never ignored");
});

Deno.test("** spans any number of folders, including none", () => {
  const set = rules("**/*.pyc", "a/**/z", "logs/**");
  assert.equal(ignored(set, "x.pyc"), true);
  assert.equal(ignored(set, "pkg/sub/x.pyc"), true);
  assert.equal(ignored(set, "a/z"), true);
  assert.equal(ignored(set, "a/b/c/z"), true);
  assert.equal(ignored(set, "logs/2024/01.txt"), true);
  assert.equal(ignored(set, "logs"), false, "logs/** matches what is inside, not the folder");
});

Deno.test("an ignored folder takes everything in it", () => {
  const set = rules("build", "node_modules/");
  assert.equal(ignored(set, "build/out/app.bin"), true);
  assert.equal(ignored(set, "node_modules/x/package.json"), true);
  assert.equal(ignored(set, "src/build.ts"), false);
});

Deno.test("! re-includes, and the last matching pattern wins", () => {
  const keep = rules("*.md", "!README.md");
  assert.equal(ignored(keep, "CHANGES.md"), true);
  assert.equal(ignored(keep, "README.md"), false);
  const overridden = rules("!README.md", "*.md");
  assert.equal(ignored(overridden, "README.md"), true);
  const inFolder = rules("build", "!build/keep");
  assert.equal(ignored(inFolder, "build/keep"), false);
  assert.equal(ignored(inFolder, "build/other"), true);
  assert.equal(inFolder.mayReinclude(), true);
  assert.equal(rules("build").mayReinclude(), false);
});

Deno.test("ignore rules of several files combine: ignored by any is ignored", () => {
  const set = new IgnoreRules([
    { root: "/ctx", patterns: ["*.log"] },
    { root: "/ctx/sub", patterns: ["secret.txt"] },
  ]);
  assert.equal(set.ignores("/ctx/a.log"), true);
  assert.equal(set.ignores("/ctx/sub/secret.txt"), true);
  assert.equal(set.ignores("/ctx/secret.txt"), false);
  assert.equal(set.empty, false);
  assert.equal(new IgnoreRules([]).empty, true);
});

Deno.test("a path outside the rules' folder is matched relative to the folder being copied", () => {
  const set = rules("*.tmp");
  assert.equal(set.ignores("/other/project/x.tmp"), false);
  assert.equal(set.ignores("/other/project/x.tmp", "/other/project"), true);
  assert.equal(set.ignores("/other/project/sub/x.tmp", "/other/project"), false);
});
