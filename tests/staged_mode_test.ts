// Of a file's mode, the identity counts what git keeps (DESIGN.md section 5), and files are
// staged in the build context by the same rule. The independent fact is git itself: the mode
// `git add` records for each mode a checkout can leave.
import assert from "node:assert/strict";
import { join } from "node:path";
import { defaultConfig, Image, planImage, renderImage, setActiveConfig } from "../mod.ts";
import { writeContext } from "../src/context.ts";
import { fileDigestSync, listTree, treeDigestSync, useDigestCache } from "../src/digest.ts";
import { STAGED_FOLDER_MODE, stagedMode } from "../src/staged_mode.ts";
import { runProcess, withTempDir, writeTree } from "./helpers.ts";

const config = defaultConfig();
setActiveConfig(config);
useDigestCache({ dir: undefined });

/**
 * Modes a checkout or a user can leave on a file (umasks 022, 077, 002, 027, and odd ones),
 * each readable by its owner, as git must read it.
 */
const MODES = [
  0o644,
  0o755,
  0o600,
  0o700,
  0o664,
  0o775,
  0o640,
  0o750,
  0o444,
  0o555,
  0o711,
  0o701,
  0o710,
  0o604,
  0o614,
  0o744,
  0o4755,
  0o2755,
  0o1777,
  0o400,
  0o500,
  0o411,
  0o477,
  0o677,
];
const FOLDER_MODES = [0o700, 0o755, 0o775, 0o750, 0o2775];

Deno.test("stagedMode gives each file mode the mode git records for it", async () => {
  await withTempDir(async (dir) => {
    const git = (...args: string[]) =>
      runProcess("git", ["-C", dir, "-c", "core.fileMode=true", ...args]);
    assert.equal((await git("init", "-q")).code, 0);
    for (const mode of MODES) {
      const path = join(dir, `file-${mode.toString(8)}`);
      await Deno.writeTextFile(path, "content\n");
      await Deno.chmod(path, mode);
    }
    const added = await git("add", "-A");
    assert.equal(added.code, 0, added.stderr);
    const listed = await git("ls-files", "-s");
    assert.equal(listed.code, 0, listed.stderr);
    const recorded = new Map(
      listed.stdout.trim().split("\n").map((line) => {
        const [mode, , , name] = line.split(/\s+/);
        return [name, parseInt(mode, 8) & 0o777];
      }),
    );
    assert.equal(recorded.size, MODES.length);
    for (const mode of MODES) {
      const name = `file-${mode.toString(8)}`;
      assert.equal(
        stagedMode(mode).toString(8),
        recorded.get(name)?.toString(8),
        `a file of mode ${mode.toString(8)}`,
      );
    }
  });
});

Deno.test("folders are staged 0755 whatever their mode", () => {
  for (const mode of [...FOLDER_MODES, 0o1777, 0o711]) {
    assert.equal(stagedMode(mode, "dir"), 0o755);
  }
  assert.equal(STAGED_FOLDER_MODE, 0o755);
});

Deno.test("digests carry the staged mode, so files git records alike hash alike", async () => {
  await withTempDir(async (dir) => {
    for (const mode of MODES) {
      const root = join(dir, mode.toString(8));
      await writeTree(root, { "sub/file": "content\n" });
      await Deno.chmod(join(root, "sub/file"), mode);
      await Deno.chmod(join(root, "sub"), FOLDER_MODES[MODES.indexOf(mode) % FOLDER_MODES.length]);
      const entries = listTree(root)!;
      assert.deepEqual(
        entries.map((entry) => [entry.path, entry.mode.toString(8)]),
        [["sub", "755"], ["sub/file", stagedMode(mode).toString(8)]],
      );
      assert.equal(fileDigestSync(join(root, "sub/file"))?.mode, stagedMode(mode));
    }
    const byMode = new Map<number, string>();
    for (const mode of MODES) {
      const staged = stagedMode(mode);
      const digest = treeDigestSync(join(dir, mode.toString(8)))!;
      const before = byMode.get(staged);
      if (before !== undefined) assert.equal(digest, before, `${mode.toString(8)}: one digest`);
      byMode.set(staged, digest);
    }
    assert.equal(byMode.size, 2, "executable and not: two digests");
  });
});

Deno.test("the build context holds files with their staged modes and folders 0755", async () => {
  // Two checkouts, one under umask 077 and one under 002, get one tag: their contexts must be
  // the same too, or one tag would name two images.
  await withTempDir(async (dir) => {
    const checkouts: [string, { file: number; script: number; folder: number }][] = [
      ["private", { file: 0o600, script: 0o700, folder: 0o700 }],
      ["shared", { file: 0o664, script: 0o775, folder: 0o775 }],
    ];
    const contexts: [string, string, number][][] = [];
    const tags: string[] = [];
    for (const [name, modes] of checkouts) {
      const root = join(dir, name);
      await writeTree(root, { "src/pkg/app.py": "print(1)\n", "src/run.sh": "#!/bin/sh\n" });
      await Deno.chmod(join(root, "src/pkg/app.py"), modes.file);
      await Deno.chmod(join(root, "src/run.sh"), modes.script);
      await Deno.chmod(join(root, "src/pkg"), modes.folder);
      await Deno.chmod(join(root, "src"), modes.folder);
      const image = Image.fromBase("debian:bookworm-slim")
        .withSourceFolder(join(root, "src"), "/app")
        .withSourceFile(join(root, "src/run.sh"), "/usr/local/bin/run");
      const plan = planImage(image, "default", config);
      tags.push(image.identifier);
      const out = join(dir, `${name}-context`);
      await writeContext(await renderImage(plan), out, plan.ignore);
      const found: [string, string, number][] = [];
      const walk = (folder: string, prefix: string) => {
        for (
          const entry of [...Deno.readDirSync(folder)].sort((a, b) => a.name < b.name ? -1 : 1)
        ) {
          if (entry.name === "Dockerfile" && prefix === "") continue;
          const path = `${prefix}${entry.name}`;
          const mode = Deno.statSync(join(folder, entry.name)).mode! & 0o7777;
          found.push([path, entry.isDirectory ? "dir" : "file", mode]);
          if (entry.isDirectory) walk(join(folder, entry.name), `${path}/`);
        }
      };
      walk(out, "");
      contexts.push(found);
    }
    assert.equal(tags[0], tags[1], "one tag");
    assert.deepEqual(contexts[0], contexts[1], "one build context");
    for (const [path, kind, mode] of contexts[0]) {
      const expected = kind === "dir"
        ? 0o755
        : path.endsWith("run.sh") || path.endsWith("/run")
        ? 0o755
        : 0o644;
      assert.equal(mode.toString(8), expected.toString(8), path);
    }
  });
});
