import assert from "node:assert/strict";
import { join } from "node:path";
import { isInside, loadConfig, outsideProjectProblem, projectRoot } from "../mod.ts";
import { withTempDir } from "./helpers.ts";

Deno.test("projectRoot: the spec's git work tree, else the spec's folder itself", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "repo", ".git"), { recursive: true });
    await Deno.mkdir(join(dir, "repo", "app", "images"), { recursive: true });
    await Deno.mkdir(join(dir, "loose", "images"), { recursive: true });
    assert.equal(projectRoot(join(dir, "repo", "app", "images")), join(dir, "repo"));
    assert.equal(projectRoot(join(dir, "loose", "images")), join(dir, "loose", "images"));
  });
});

Deno.test("isInside judges where a path really is: a link out of the project is out", async () => {
  await withTempDir(async (dir) => {
    const project = join(dir, "project");
    await Deno.mkdir(join(project, "libs", "a"), { recursive: true });
    await Deno.mkdir(join(dir, "elsewhere"));
    await Deno.symlink(join(dir, "elsewhere"), join(project, "libs", "escape"));
    assert.ok(isInside(join(project, "libs", "a"), [project]));
    assert.ok(isInside(join(project, "libs", "not-yet-made", "x"), [project]));
    assert.ok(!isInside(join(project, "..", "elsewhere"), [project]));
    assert.ok(!isInside(join(project, "libs", "escape"), [project]));
    assert.ok(!isInside(join(project, "libs", "escape", "file"), [project]));
    assert.ok(!isInside(`${project}-sibling/x`, [project]), "a sibling with the same prefix");
    assert.ok(isInside(join(project, "libs", "escape"), [project, join(dir, "elsewhere")]));
  });
});

Deno.test("outsideProjectProblem names the file, the path and the allowed-paths fix", () => {
  const problem = outsideProjectProblem("/home/me/.ssh", "script.py header", "/repo", []);
  assert.equal(
    problem?.message,
    "script.py header names /home/me/.ssh, which is outside the project /repo",
  );
  assert.match(problem?.hint ?? "", /allowed-paths = \["\/home\/me\/\.ssh"\]/);
  assert.equal(outsideProjectProblem("/repo/libs/a", "x", "/repo", []), undefined);
  assert.equal(outsideProjectProblem("/shared/lib", "x", "/repo", ["/shared"]), undefined);
});

Deno.test("allowed-paths in imgtool.toml resolve against the file's folder", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "imgtool.toml"),
      'allowed-paths = ["../shared", "/opt/libs"]\n',
      {
        mode: 0o644,
      },
    );
    const config = loadConfig({ startDir: dir, env: {} });
    assert.deepEqual(
      config.allowedPaths,
      [join(dir, "..", "shared"), "/opt/libs"],
    );
  });
});
