/**
 * `.dockerignore` rules against the Docker engine itself: a context of awkward file names is
 * built with `COPY . /` under two rules files, the result exported to a folder, and what the
 * engine kept must be exactly what `IgnoreRules` keeps, files and folders alike.
 *
 * The engine here is 20.10, whose matching differs from Docker 23 and later (which imgtool
 * follows) in known places, so the rules below stay clear of them: unescaped `+ ( ) | { }`,
 * `^` outside a class, a leading `**` not followed by `/`, `!` patterns that would match a
 * parent folder of what they re-include, and wildcard `!` patterns under ignored folders.
 * `src/ignore.ts` describes each.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { e2eTest, makeProject, mustDocker } from "./harness.ts";
import { IgnoreRules } from "../../src/ignore.ts";

/** Names that exercise each rule; a name's own text says which rule would drop it. */
const FILES = [
  "README.md",
  "CHANGES.md",
  "docs/readme.md",
  "docs/api/index.md",
  "# first line comment",
  "# indented comment is a pattern",
  "spaced.txt",
  "abs.txt",
  "sub/abs.txt",
  "rel/y.txt",
  "dotdot.txt",
  "a/dotdot.txt",
  "many/slashes/f",
  "x.log",
  "important.log",
  "sub/x.log",
  "sub/deeper/x.log",
  "src/pkg/__pycache__/m.pyc",
  "src/pkg/util.py",
  "__pycache__/n.pyc",
  "logs/2024/01.txt",
  "a/z",
  "a/b/c/z",
  "a/b/zz",
  "abc",
  "abbc",
  "abe",
  "A1",
  "b1",
  "MAIN.go",
  "main.go",
  "star*name",
  "starXname",
  "q?mark",
  "qXmark",
  "back\\slash",
  "#hash",
  "!bang",
  "foo.bar",
  "fooXbar",
  "dollar$",
  "my file.txt",
  "dir with space/inner.txt",
  "emoji/😀.txt",
  "emoji/ab.txt",
  "logs2/01.txt",
  "logs2/ab.txt",
  "nl/line\nbreak",
  "build/out/app.bin",
  "build/keep",
  "build/sub/keep",
  "build/sub/other",
  "node_modules/x/package.json",
  "node_modules/x/index.js",
  "node_modules/.bin/tool",
  ".env",
  ".hidden/secret",
];

/** Two rules files: how lines are read and patterns compiled; how `!` re-includes. */
const RULES: Record<string, string> = {
  "lines and patterns": [
    "\uFEFF# first line comment",
    "   # indented comment is a pattern",
    "*.md",
    "!README.md",
    "",
    "  spaced.txt  ",
    "/abs.txt",
    "./rel/y.txt",
    "a/../dotdot.txt",
    "//many//slashes/",
    "sub/*.log",
    "**/__pycache__",
    "logs/**",
    "a/**/z",
    "?bc",
    "ab[cd]",
    "[^a-z]1",
    "[[:upper:]]*.go",
    "star\\*name",
    "q\\?mark",
    "back\\\\slash",
    "\\#hash",
    "\\!bang",
    "foo.bar",
    "dollar$",
    "my file.txt",
    "dir with space",
    "emoji/?.txt",
    "logs2/\\d\\d.txt",
    "nl/line?break\r",
  ].join("\n"),
  "re-includes": [
    "build",
    "!build/keep",
    "!build/sub/keep",
    "node_modules/",
    "!node_modules/x/package.json",
    "*.log",
    "!important.log",
    "!README.md",
    "*.md",
    "docs",
    "!docs/*.md",
    ".*",
    "!.env",
  ].join("\n"),
};

/** Every file and folder under `root`, relative, `/`-separated. */
async function listTree(root: string): Promise<{ files: string[]; folders: string[] }> {
  const files: string[] = [], folders: string[] = [];
  const walk = async (dir: string, prefix: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory) {
        folders.push(path);
        await walk(join(dir, entry.name), path);
      } else {
        files.push(path);
      }
    }
  };
  await walk(root, "");
  return { files: files.sort(), folders: folders.sort() };
}

/** What the rules keep: files they do not ignore, folders they do not ignore or that hold one. */
function expected(
  context: string,
  all: { files: string[]; folders: string[] },
  rules: IgnoreRules,
): { files: string[]; folders: string[] } {
  const files = all.files.filter((file) => !rules.ignores(join(context, file)));
  const folders = all.folders.filter((folder) =>
    !rules.ignores(join(context, folder)) || files.some((file) => file.startsWith(`${folder}/`))
  );
  return { files, folders };
}

e2eTest("docker: the engine keeps exactly what the .dockerignore rules keep", async (t, facts) => {
  const build = await makeProject({ Dockerfile: "FROM scratch\nCOPY . /\n" });
  const made: string[] = [build];
  try {
    for (const [name, text] of Object.entries(RULES)) {
      await t.step(name, async () => {
        const context = await makeProject({
          ...Object.fromEntries(FILES.map((file) => [file, file])),
          ".dockerignore": text,
        });
        const output = await Deno.makeTempDir({ prefix: "imgtool-e2e-out-" });
        made.push(context, output);
        await mustDocker(facts, [
          "build",
          "--network=host",
          "--file",
          join(build, "Dockerfile"),
          "--output",
          `type=local,dest=${output}`,
          context,
        ]);
        const all = await listTree(context);
        all.files = all.files.filter((file) => file !== ".dockerignore");
        const rules = new IgnoreRules([{ root: context, patterns: text.split("\n") }]);
        const kept = await listTree(output);
        kept.files = kept.files.filter((file) => file !== ".dockerignore");
        const want = expected(context, all, rules);
        assert.deepEqual(kept.files, want.files, "files");
        assert.deepEqual(kept.folders, want.folders, "folders");
        // Guard against a vacuous pass: the rules must have both dropped and kept files.
        assert.ok(kept.files.length > 5 && kept.files.length < all.files.length - 5);
      });
    }
  } finally {
    for (const dir of made) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
