import assert from "node:assert/strict";
import { UsageError } from "../src/errors.ts";
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

Deno.test("ignore lines are cleaned as Docker's ReadAll does", () => {
  const set = rules(
    "\uFEFFmain.go",
    "# a comment",
    "   # indented",
    "",
    "   ",
    "  spaced.txt\t",
    "trailing.txt\r",
    "!  keep.txt",
    "/abs/x",
    "./rel/y",
    "a/../dotdot",
    "//many//slashes/",
    "*.txt",
  );
  assert.equal(ignored(set, "main.go"), true, "a byte order mark opens the first line only");
  assert.equal(ignored(set, "# a comment"), false, "# in the first column is a comment");
  assert.equal(ignored(set, "# indented"), true, "an indented # is a pattern, as in Docker");
  assert.equal(ignored(set, "spaced.txt"), true);
  assert.equal(ignored(set, "trailing.txt"), true, "white space and \\r around a line go");
  assert.equal(ignored(set, "keep.txt"), true, "! comes before *.txt, which wins");
  assert.equal(ignored(set, "abs/x"), true, "a leading / is the rules file's folder");
  assert.equal(ignored(set, "rel/y"), true);
  assert.equal(ignored(set, "dotdot"), true, "patterns are cleaned like paths");
  assert.equal(ignored(set, "a/dotdot"), false);
  assert.equal(ignored(set, "many/slashes/file"), true);
  assert.equal(rules("*.txt", "! keep.txt").mayReinclude(), true, "a space may follow !");
  assert.equal(rules("*.txt", "#!keep.txt").mayReinclude(), false);
});

Deno.test("* and ? stay within a folder; ? is one character, not one UTF-16 unit", () => {
  const set = rules("?bc", "src/*.py", "emoji/?.txt", "nl/line?break");
  assert.equal(ignored(set, "abc"), true);
  assert.equal(ignored(set, "abbc"), false);
  assert.equal(ignored(set, "src/app.py"), true);
  assert.equal(ignored(set, "src/pkg/app.py"), false);
  assert.equal(ignored(set, "emoji/😀.txt"), true);
  assert.equal(ignored(set, "emoji/é.txt"), true);
  assert.equal(ignored(set, "emoji/ab.txt"), false);
  assert.equal(ignored(set, "nl/line\nbreak"), true, "? matches a newline, as in Go");
});

Deno.test("** forms follow patternmatcher, shortcuts included", () => {
  assert.equal(ignored(rules("**"), "any/thing"), true);
  const set = rules("**/z", "x/**", "a**/*.txt", "**/**/*.md", "**foo");
  assert.equal(ignored(set, "z"), true, "**/z matches z itself");
  assert.equal(ignored(set, "deep/er/z"), true);
  assert.equal(ignored(set, "x"), false, "x/** matches what is inside x only");
  assert.equal(ignored(set, "x/y/z.bin"), true);
  assert.equal(ignored(set, "a/b/c/file.txt"), true);
  assert.equal(ignored(set, "ab/file.txt"), true, "a** also spans the rest of a name");
  assert.equal(ignored(set, "readme.md"), true);
  assert.equal(ignored(set, "barfoo"), true, "a leading ** without / is a plain suffix");
  assert.equal(ignored(set, "sub/barfoo"), true);
  assert.equal(
    ignored(rules("x/**/y"), "x/a\nb/y"),
    false,
    "** stops at a newline, as Go's . does",
  );
});

Deno.test("[] classes and \\ escapes work as in Go", () => {
  const set = rules(
    "ab[cd]",
    "[^a-z]1",
    "[[:upper:]]*.md",
    "star\\*name",
    "q\\?mark",
    "back\\\\slash",
    "\\#hash",
    "\\!bang",
    "[\\]]x",
    "logs/\\d\\d.txt",
  );
  assert.equal(ignored(set, "abc"), true);
  assert.equal(ignored(set, "abe"), false);
  assert.equal(ignored(set, "A1"), true);
  assert.equal(ignored(set, "b1"), false);
  assert.equal(ignored(set, "README.md"), true);
  assert.equal(ignored(set, "readme.md"), false);
  assert.equal(ignored(set, "star*name"), true);
  assert.equal(ignored(set, "starXname"), false);
  assert.equal(ignored(set, "q?mark"), true);
  assert.equal(ignored(set, "qXmark"), false);
  assert.equal(ignored(set, "back\\slash"), true);
  assert.equal(ignored(set, "#hash"), true);
  assert.equal(ignored(set, "!bang"), true);
  assert.equal(ignored(set, "]x"), true);
  assert.equal(ignored(set, "logs/01.txt"), true, "\\d is Go's digit class");
  assert.equal(ignored(set, "logs/dd.txt"), false);
});

Deno.test("regexp metacharacters in patterns are literal", () => {
  const set = rules("foo.bar", "a+b", "(paren)", "x{1}", "dollar$", "caret^x", "p|q");
  for (const name of ["foo.bar", "a+b", "(paren)", "x{1}", "dollar$", "caret^x", "p|q"]) {
    assert.equal(ignored(set, name), true, name);
  }
  for (const name of ["fooXbar", "aab", "paren", "x", "dollar", "p", "q"]) {
    assert.equal(ignored(set, name), false, name);
  }
});

Deno.test("a ! pattern re-includes as BuildKit's walk decides, folder by folder", () => {
  // A ! pattern is tried on a folder only once something matched it: here nothing had when
  // the walk reached docs, so docs/*.md stay ignored (Docker 23 and later).
  const markdown = rules("**/*.md", "!docs");
  assert.equal(ignored(markdown, "docs/readme.md"), true);
  assert.equal(ignored(markdown, "docs"), false);
  // Once a folder matched a ! pattern, everything inside it is re-included.
  const all = rules("**", "!docs", "docs/secret");
  assert.equal(ignored(all, "docs/readme.md"), false);
  assert.equal(ignored(all, "docs/api/index.md"), false);
  assert.equal(ignored(all, "docs/secret"), true);
  assert.equal(ignored(all, "src/main.py"), true);
  // Wildcard re-includes reach into ignored folders.
  const python = rules("*", "!**/*.py");
  assert.equal(ignored(python, "src/pkg/util.py"), false);
  assert.equal(ignored(python, "src/pkg/util.pyc"), true);
  assert.equal(ignored(python, "src"), true);
});

Deno.test("ignores() gives the same answer whatever order paths are asked in", () => {
  const patterns = ["a/**/z", "b", "!b/keep", "*/c", "!a/x/c", "**/*.log"];
  const paths = [
    "a/x/c/z",
    "a/x/c",
    "b/keep/f.log",
    "b/keep/f",
    "a/y/z",
    "b/other",
    "d/c/e",
    "a/x/c/q",
    "b/keep",
    "a",
    "d/c",
    "d/e.log",
  ];
  const shared = rules(...patterns);
  for (const path of [...paths, ...paths.toReversed(), ...paths]) {
    assert.equal(ignored(shared, path), ignored(rules(...patterns), path), path);
  }
});

Deno.test("paths are normalized before matching; ..name is inside the folder", () => {
  const set = rules("*.log", "..hidden");
  assert.equal(set.ignores("/ctx/sub/../a.log"), true);
  assert.equal(set.ignores("/ctx/./a.log"), true);
  assert.equal(set.ignores("/ctx/..hidden"), true);
  assert.equal(set.ignores("/ctx/../a.log"), false);
  assert.equal(
    new IgnoreRules([{ root: "/ctx/", patterns: ["*.log"] }]).ignores("/ctx/a.log"),
    true,
  );
});

Deno.test("patterns Docker rejects are reported with the pattern and its folder", () => {
  for (const pattern of ["[", "a[", "[z-a]", "[]a]", "a\\", "!", "!/", "\\e", "[[:nope:]]"]) {
    assert.throws(
      () => rules("ok", pattern),
      (error: Error) =>
        error instanceof UsageError &&
        error.message.includes(JSON.stringify(pattern)) && error.message.includes(ROOT),
      pattern,
    );
  }
});

Deno.test("a bad pattern from a named rules file is reported at its file and line", () => {
  assert.throws(
    () =>
      new IgnoreRules([{
        root: ROOT,
        patterns: ["# note", "ok", "[bad"],
        file: "/ctx/.dockerignore",
      }]),
    (error: Error) =>
      error instanceof UsageError && error.message.includes('"[bad" (/ctx/.dockerignore:3)'),
  );
});

Deno.test("what a pattern hands to Go's regexp keeps Go's meaning", () => {
  // A class is a regexp class: [^a] also matches /, across folders.
  const classes = rules("x[^a]y", "*[[:digit:]]*[[:digit:]]");
  assert.equal(ignored(classes, "x/y"), true);
  assert.equal(ignored(classes, "xby"), true);
  assert.equal(ignored(classes, "xay"), false);
  assert.equal(ignored(classes, "a1b2"), true);
  assert.equal(ignored(classes, "a1b"), false);
  // \Q...\E quotes what the glob became ("*" is "[^/]*" by then); \b and \B are boundaries.
  const escapes = rules("\\Q*\\E", "a\\b.txt", "*\\bw", "*\\Bv", "\\A*x");
  assert.equal(ignored(escapes, "[^/]*"), true);
  assert.equal(ignored(escapes, "abc"), false);
  assert.equal(ignored(escapes, "a.txt"), true);
  assert.equal(ignored(escapes, "a w"), true);
  assert.equal(ignored(escapes, "aw"), false);
  assert.equal(ignored(escapes, "av"), true);
  assert.equal(ignored(escapes, "a v"), false);
  assert.equal(ignored(escapes, "yx"), true);
});

Deno.test("several stars in one name match as Go's linear-time engine does", () => {
  const set = rules("*a*b", "**/**/*c*c*", "x/**/*.py");
  assert.equal(ignored(set, "xaxb"), true);
  assert.equal(ignored(set, "ab"), true);
  assert.equal(ignored(set, "ba"), false);
  assert.equal(ignored(set, "a/b"), false, "no star crosses a folder");
  assert.equal(ignored(set, "deep/er/occ"), true);
  assert.equal(ignored(set, "deep/er/oc"), false);
  assert.equal(ignored(set, "x/y/z/main.py"), true);
  assert.equal(ignored(set, "x/main.pyc"), false);
});
