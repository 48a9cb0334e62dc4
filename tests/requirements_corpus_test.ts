/**
 * Real projects' requirements files (issue 18 item 6): what reaches the build context when a
 * spec at the project's root installs them. The files are small excerpts of public
 * repositories (see each `tests/fixtures/corpus/<project>/SOURCE.md`); each test copies one
 * into a temporary folder, writes a spec at its root, and compares the files the install step
 * can reach with the files the requirements lines name.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { copyTree, FIXTURES, withTempDir } from "./helpers.ts";
import { readAll, specImage, stepView } from "./requirements_step_view.ts";

const CORPUS = join(FIXTURES, "corpus");

/** Each context entry of the step as `kind path` (path relative to the project; `.` for it). */
function reached(view: Awaited<ReturnType<typeof stepView>>, root: string): string[] {
  return view.entries.map((entry) => {
    if (entry.kind === "text") return `generated ${entry.target.replace(/^[^/]+\/[^/]+\//, "")}`;
    const path = entry.source === root ? "." : entry.source.slice(root.length + 1);
    return `${entry.kind} ${path}`;
  }).sort();
}

/** The host path each local requirement line the step reads points at (relative to root). */
function localTargets(view: Awaited<ReturnType<typeof stepView>>, root: string): string[] {
  return readAll(view).flatMap(({ line }) => {
    const location = /^(?:file:\/\/)?(\/tmp\/imgtool-requirements\/\S+?)(?:#\S*)?$/.exec(line)?.[1];
    if (location === undefined) return [];
    const found = view.where(location);
    assert.ok(found, `${line} points at nothing in the build context`);
    return [found.source === root ? "." : found.source.slice(root.length + 1)];
  }).sort();
}

Deno.test("openai-python's Rye lock file (`-e file:.` at the root) brings the project itself into the build", async () => {
  await withTempDir(async (dir) => {
    await copyTree(join(CORPUS, "openai-python"), dir);
    const view = await stepView(await specImage(dir, "requirements.lock"));
    assert.deepEqual(reached(view, dir), ["generated requirements.lock", "tree ."]);
    assert.deepEqual(localTargets(view, dir), ["."]);
    // Every pin of the lock file reaches the step unchanged.
    const pins = readAll(view).map((entry) => entry.line).filter((line) => line.includes("=="));
    assert.ok(pins.includes("aiohttp==3.14.3"), pins.join("\n"));
    assert.ok(pins.includes("async-timeout==5.0.1 ; python_full_version < '3.11'"));
  });
});

Deno.test("Superset's requirements/development.txt installs the root project and its two sub-projects, named from the root", async () => {
  await withTempDir(async (dir) => {
    await copyTree(join(CORPUS, "superset"), dir);
    const development = await stepView(await specImage(dir, "requirements/development.txt"));
    assert.deepEqual(reached(development, dir), [
      "generated development.txt",
      "tree .",
      "tree superset-core",
      "tree superset-extensions-cli",
    ]);
    assert.deepEqual(localTargets(development, dir), [
      ".",
      "superset-core",
      "superset-extensions-cli",
    ]);
    const base = await stepView(await specImage(dir, "requirements/base.txt"));
    assert.deepEqual(reached(base, dir), ["generated base.txt", "tree superset-core"]);
  });
});

Deno.test("Home Assistant's test requirements reach the build through their -r and -c chain, unchanged", async () => {
  await withTempDir(async (dir) => {
    await copyTree(join(CORPUS, "home-assistant"), dir);
    const view = await stepView(await specImage(dir, "requirements_test_all.txt"));
    assert.deepEqual(reached(view, dir), [
      "file homeassistant/package_constraints.txt",
      "file requirements_test.txt",
      "file requirements_test_all.txt",
      "file requirements_test_pre_commit.txt",
    ]);
    const lines = readAll(view).map((entry) => entry.line);
    for (
      const pin of ["AEMET-OpenData==0.2.1", "coverage==7.14.0", "ruff==0.8.6", "aiodns==3.2.0"]
    ) {
      assert.ok(lines.includes(pin), `${pin} does not reach the step`);
    }
    assert.deepEqual(localTargets(view, dir), []);
  });
});
