import assert from "node:assert/strict";
import { join } from "node:path";
import { Image } from "imgtool";
import * as images from "./fixtures/project/images.ts";
import {
  asText,
  dockerfileOf,
  fixtureConfig,
  renderGolden,
  withTempDir,
  writeTree,
} from "./helpers.ts";
import { projectDependencies } from "../plugins/uv_project.ts";

const uv = fixtureConfig();
const pip = fixtureConfig({}, { "python.installer": "pip" });
const noCache = fixtureConfig({}, { "cache.mounts": "false" });

Deno.test("uv_project plugin with a lock installs only the locked dependencies by default", async (t) => {
  const golden = await renderGolden(images.uvProjectLocked, uv);
  assert.match(golden, /&& uv sync --locked --no-editable --no-install-project\n/);
  assert.match(golden, /export UV_PROJECT_ENVIRONMENT=\/opt\/venv/);
  assert.match(golden, /project\/pyproject.toml <- file uvproj\/pyproject.toml/);
  assert.match(golden, /project\/uv.lock <- file uvproj\/uv.lock/);
  assert.doesNotMatch(golden, /<- tree/, "only the two files reach the context");
  await t.assertSnapshot(golden, asText);
});

Deno.test("uv_project plugin with a lock in install_project mode installs the whole project", async (t) => {
  const golden = await renderGolden(images.uvProjectLockedInstall, uv);
  assert.match(
    golden,
    /&& uv sync --locked --no-editable --index-url https:\/\/pypi.example\/simple --prerelease=allow\n/,
  );
  assert.match(golden, /\.imgtool\/01-uv_project\/project <- tree uvproj/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("uv_project plugin without a lock lets uv resolve pyproject.toml", async (t) => {
  const golden = await renderGolden(images.uvProjectNoLock, uv);
  assert.match(
    golden,
    /uv pip install --python \/opt\/venv\/bin\/python -r \/tmp\/imgtool-uv-project\/pyproject.toml\n/,
  );
  assert.doesNotMatch(golden, /uv sync/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("uv_project plugin without a lock in install_project mode installs the project folder", async (t) => {
  const golden = await renderGolden(images.uvProjectNoLockInstall, uv);
  assert.match(
    golden,
    / --extra-index-url https:\/\/mirror.example\/simple \/tmp\/imgtool-uv-project\n/,
  );
  await t.assertSnapshot(golden, asText);
});

Deno.test("uv_project plugin without a lock gives pip the dependencies, not pyproject.toml", async (t) => {
  // pip's -r reads requirements files only: `pip install -r pyproject.toml` fails.
  const golden = await renderGolden(images.uvProjectNoLock, pip);
  assert.doesNotMatch(golden, /-r \/tmp\/imgtool-uv-project\/pyproject.toml/);
  assert.match(golden, /-m pip install --disable-pip-version-check 'httpx>=0\.27' rich\n/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("uv_project plugin with a lock uses uv sync even when the installer is pip", async (t) => {
  const golden = await renderGolden(images.uvProjectLocked, pip);
  assert.match(
    golden,
    /--mount=type=bind,from=ghcr.io\/astral-sh\/uv:0.8.13,source=\/uv,target=\/tmp\/imgtool-uv\/uv/,
  );
  assert.match(
    golden,
    /&& \/tmp\/imgtool-uv\/uv sync --locked --no-editable --no-install-project\n/,
  );
  await t.assertSnapshot(golden, asText);
});

Deno.test("uv_project plugin without cache mounts tells uv sync not to cache", async (t) => {
  const golden = await renderGolden(images.uvProjectLocked, noCache);
  assert.doesNotMatch(golden, /type=cache/);
  assert.match(golden, /&& uv sync --locked --no-editable --no-install-project --no-cache\n/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("uv_project plugin without a lock and without dependencies installs nothing with pip", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, { "pyproject.toml": '[project]\nname = "empty"\nversion = "0"\n' });
    const image = Image.fromDebianBase().withUvProject(join(dir, "pyproject.toml"));
    const dockerfile = await dockerfileOf(image, pip);
    assert.match(dockerfile, /# \(the project declares no dependencies\)\n/);
    assert.doesNotMatch(dockerfile, /pip install --disable-pip-version-check\s*\n/);
  });
});

Deno.test("projectDependencies() reads [project] dependencies and tolerates what it cannot read", () => {
  assert.deepEqual(
    projectDependencies(
      '[project]\nname = "x"\ndependencies = ["a>=1", "b[c]; python_version>\'3\'"]\n',
    ),
    ["a>=1", "b[c]; python_version>'3'"],
  );
  assert.deepEqual(projectDependencies('[project]\nname = "x"\n'), []);
  assert.deepEqual(projectDependencies("not = [valid"), []);
  assert.deepEqual(projectDependencies(undefined), []);
});
