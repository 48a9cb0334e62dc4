import assert from "node:assert/strict";
import { join } from "node:path";
import * as images from "./fixtures/project/images.ts";
import { asText, fixtureConfig, FIXTURES, renderGolden } from "./helpers.ts";

const uv = fixtureConfig();
const pip = fixtureConfig({}, { "python.installer": "pip" });
const noCache = fixtureConfig({}, { "cache.mounts": "false" });
const ownPoetry = fixtureConfig({
  IMGTOOL_CONFIG: join(FIXTURES, "config", "poetry_command.toml"),
});

Deno.test("poetry_project plugin installs Poetry, then only the locked dependencies", async (t) => {
  const golden = await renderGolden(images.poetryDependencies, uv);
  assert.match(golden, /uv venv \/opt\/poetry --python "\$\(command -v python3\)"/);
  assert.match(golden, /uv pip install --python \/opt\/poetry\/bin\/python poetry==2\.1\.3\n/);
  assert.match(golden, /&& \/opt\/poetry\/bin\/poetry install --no-root --no-interaction\n/);
  assert.match(golden, /export POETRY_VIRTUALENVS_CREATE=false/);
  assert.match(golden, /project\/poetry.lock <- file poetryproj\/poetry.lock/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("poetry_project plugin in install_project mode builds and installs a wheel", async (t) => {
  const golden = await renderGolden(images.poetryInstall, uv);
  assert.match(golden, /poetry install --no-root --no-interaction --only main \\\n/);
  assert.match(golden, /poetry build --format wheel --no-interaction \\\n/);
  assert.match(
    golden,
    /uv pip install --python \/opt\/venv\/bin\/python --no-deps \/tmp\/imgtool-poetry-project\/dist\/\*\.whl\n/,
  );
  assert.match(golden, /id=POETRY_HTTP_BASIC_PRIVATE_PASSWORD/);
  assert.match(golden, /\.imgtool\/01-poetry_project\/project <- tree poetryproj/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("poetry_project plugin uses the image's poetry when [plugins.poetry_project] command is set", async (t) => {
  const golden = await renderGolden(images.poetryDependencies, ownPoetry);
  assert.doesNotMatch(golden, /\/opt\/poetry/);
  assert.match(golden, /&& poetry install --no-root --no-interaction\n/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("poetry_project plugin installs Poetry with pip when the installer is pip", async (t) => {
  const golden = await renderGolden(images.poetryInstall, pip);
  assert.match(golden, /python3 -m venv \/opt\/poetry \\\n/);
  assert.match(
    golden,
    /\/opt\/poetry\/bin\/python -m pip install --disable-pip-version-check poetry==2\.1\.3\n/,
  );
  assert.match(
    golden,
    /\/opt\/venv\/bin\/python -m pip install --disable-pip-version-check --no-deps /,
  );
  assert.doesNotMatch(golden, /\buv\b/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("poetry_project plugin installs Poetry once per image", async (t) => {
  const golden = await renderGolden(images.poetryTwice, uv);
  assert.equal(golden.match(/poetry==2\.1\.3/g)?.length, 1);
  assert.equal(golden.match(/poetry install --no-root/g)?.length, 2);
  await t.assertSnapshot(golden, asText);
});

Deno.test("poetry_project plugin without cache mounts turns Poetry's cache off", async (t) => {
  const golden = await renderGolden(images.poetryDependencies, noCache);
  assert.doesNotMatch(golden, /type=cache/);
  assert.match(golden, /poetry install --no-root --no-interaction --no-cache\n/);
  const install = await renderGolden(images.poetryInstall, noCache);
  assert.match(install, /poetry build --format wheel --no-interaction --no-cache \\\n/);
  await t.assertSnapshot(`${golden}\n=== install_project ===\n${install}`, asText);
});
