// Where imgtool.toml is looked for (src/config.ts): from the spec's folder up to the project
// boundary, the git work tree's root, else the home folder, else the spec's folder alone. A
// file above the boundary, in a shared folder like /tmp, is never read, whoever wrote it.

import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../mod.ts";
import { findConfigFile, projectBoundary } from "../src/config.ts";
import { withTempDir, writeTree } from "./helpers.ts";

const IS_ROOT = Deno.uid() === 0;
const NOBODY = 65534;

/** A test that gives files to another user: ignored, saying why, unless run as root. */
function asRoot(name: string, fn: () => Promise<void>): Deno.TestDefinition {
  return IS_ROOT
    ? { name, fn }
    : { name: `${name} (ignored: needs root, to give files to nobody)`, ignore: true, fn };
}

Deno.test("the search stops at the root of the git work tree, a .git file counting as one", () =>
  withTempDir(async (dir) => {
    const home = join(dir, "home");
    await writeTree(home, {
      "imgtool.toml": 'registry = "home.example"\n',
      "repo/.git/HEAD": "ref: refs/heads/main\n",
      "repo/app/images/spec.ts": "",
      // A linked work tree or a submodule has a .git file.
      "worktree/.git": "gitdir: ../repo/.git/worktrees/w\n",
      "worktree/app/spec.ts": "",
    });
    const images = join(home, "repo", "app", "images");
    assert.equal(projectBoundary(images, home), join(home, "repo"));
    assert.equal(findConfigFile(images, home), undefined, "home's file is above the work tree");
    assert.equal(findConfigFile(join(home, "worktree", "app"), home), undefined);
    assert.equal(projectBoundary(join(home, "worktree", "app"), home), join(home, "worktree"));
    // Inside the boundary, the nearest file is found, in the root or on the way up.
    await writeTree(home, { "repo/imgtool.toml": 'registry = "repo.example"\n' });
    assert.equal(findConfigFile(images, home), join(home, "repo", "imgtool.toml"));
    assert.equal(loadConfig({ startDir: images, env: { HOME: home } }).registry, "repo.example");
    await writeTree(home, { "repo/app/imgtool.toml": 'registry = "app.example"\n' });
    assert.equal(findConfigFile(images, home), join(home, "repo", "app", "imgtool.toml"));
  }));

Deno.test("without a work tree the search goes up to the home folder, never above it", () =>
  withTempDir(async (dir) => {
    const home = join(dir, "home");
    await writeTree(dir, {
      "imgtool.toml": 'registry = "above-home.example"\n',
      "home/projects/app/spec.ts": "",
    });
    const app = join(home, "projects", "app");
    for (const written of [home, `${home}/`, `${home}//`]) {
      assert.equal(projectBoundary(app, written), home, written);
      assert.equal(findConfigFile(app, written), undefined, written);
    }
    const config = loadConfig({ startDir: app, env: { HOME: home } });
    assert.equal(config.file, undefined);
    assert.equal(config.registry, undefined, "the file above home is not read");
    await writeTree(home, { "imgtool.toml": 'registry = "home.example"\n' });
    assert.equal(findConfigFile(app, home), join(home, "imgtool.toml"));
    assert.equal(loadConfig({ startDir: app, env: { HOME: home } }).registry, "home.example");
  }));

Deno.test("outside home and any work tree only the spec's own folder is searched", () =>
  withTempDir(async (dir) => {
    // `shared` stands for /tmp: a folder anyone may write in.
    await writeTree(dir, {
      "shared/imgtool.toml": '[docker]\nclient = "/tmp/evil"\n',
      "shared/mine/spec.ts": "",
      "home/.keep": "",
    });
    const mine = join(dir, "shared", "mine");
    // A home of "/" or a relative one bounds nothing: it counts as no home.
    for (const home of [join(dir, "home"), undefined, "/", "home"]) {
      assert.equal(projectBoundary(mine, home), mine, String(home));
      assert.equal(findConfigFile(mine, home), undefined, String(home));
    }
    const env = { HOME: join(dir, "home") };
    assert.equal(loadConfig({ startDir: mine, env }).dockerClient, "docker");
    await writeTree(mine, { "imgtool.toml": '[docker]\nclient = "podman"\n' });
    assert.equal(loadConfig({ startDir: mine, env }).dockerClient, "podman");
  }));

Deno.test("a work tree outside home bounds the search as one inside does", () =>
  withTempDir(async (dir) => {
    await writeTree(dir, {
      "imgtool.toml": 'registry = "above.example"\n',
      "checkout/.git/HEAD": "ref: refs/heads/main\n",
      "checkout/imgtool.toml": 'registry = "checkout.example"\n',
      "checkout/a/b/spec.ts": "",
    });
    const deep = join(dir, "checkout", "a", "b");
    const env = { HOME: join(dir, "elsewhere") };
    assert.equal(projectBoundary(deep, env.HOME), join(dir, "checkout"));
    assert.equal(loadConfig({ startDir: deep, env }).registry, "checkout.example");
  }));

Deno.test(asRoot(
  "a .git of another user marks no project: a planted one does not widen the search",
  () =>
    withTempDir(async (dir) => {
      const shared = join(dir, "shared");
      await writeTree(shared, {
        ".git/HEAD": "ref: refs/heads/main\n",
        "imgtool.toml": '[docker]\nclient = "/tmp/evil"\n',
        "mine/spec.ts": "",
      });
      Deno.chmodSync(shared, 0o1777);
      for (const path of [".git", ".git/HEAD", "imgtool.toml"]) {
        Deno.chownSync(join(shared, path), NOBODY, NOBODY);
      }
      const mine = join(shared, "mine");
      const env = { HOME: join(dir, "home") };
      assert.equal(projectBoundary(mine, env.HOME), mine);
      const config = loadConfig({ startDir: mine, env });
      assert.equal(config.file, undefined);
      assert.equal(config.dockerClient, "docker");
      // The same .git, the user's own: the work tree reaches the file, which is then refused
      // for its owner (not silently skipped).
      Deno.chownSync(join(shared, ".git"), 0, 0);
      assert.equal(projectBoundary(mine, env.HOME), shared);
      assert.throws(() => loadConfig({ startDir: mine, env }), /belongs to another user/);
    }),
));
