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

Deno.test("poetry_project plugin in install_project mode installs the dependencies, then the project as a wheel", async (t) => {
  const golden = await renderGolden(images.poetryInstall, uv);
  // The dependency step sees only pyproject.toml and poetry.lock, so code edits reuse it.
  assert.match(golden, /poetry install --no-root --no-interaction --only main\n/);
  assert.match(
    golden,
    /\.imgtool\/01-poetry_project\/project\/pyproject\.toml <- file poetryproj\/pyproject\.toml/,
  );
  assert.match(
    golden,
    /\.imgtool\/01-poetry_project\/project\/poetry\.lock <- file poetryproj\/poetry\.lock/,
  );
  // A later step builds the whole project into a fresh dist/ and installs that wheel.
  assert.match(golden, /\.imgtool\/01-poetry_project\/source <- tree poetryproj/);
  assert.match(
    golden,
    /&& rm -rf \/tmp\/imgtool-poetry-project\/dist \\\n +&& \(cd \/tmp\/imgtool-poetry-project && \/opt\/poetry\/bin\/poetry build --format wheel --no-interaction --no-cache\) \\\n/,
  );
  assert.match(
    golden,
    /uv pip install --python \/opt\/venv\/bin\/python --no-cache --no-deps --reinstall \/tmp\/imgtool-poetry-project\/dist\/\*\.whl\n/,
  );
  // Both steps get the secret.
  assert.equal(
    golden.match(/--mount=type=secret,id=POETRY_HTTP_BASIC_PRIVATE_PASSWORD/g)?.length,
    2,
  );
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
    /\/opt\/venv\/bin\/python -m pip install --disable-pip-version-check --no-cache-dir --no-deps --force-reinstall /,
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
  assert.match(install, /poetry build --format wheel --no-interaction --no-cache\) \\\n/);
  await t.assertSnapshot(`${golden}\n=== install_project ===\n${install}`, asText);
});

Deno.test("poetry_project plugin mounts one cache per step at most (buildah 1.28 keeps all but the last locked cache of a step locked until the build ends)", async () => {
  for (const image of [images.poetryDependencies, images.poetryInstall, images.poetryTwice]) {
    for (const config of [uv, pip]) {
      const golden = await renderGolden(image, config);
      const poetrySection = golden.slice(golden.indexOf("withPoetryProject"));
      for (const step of poetrySection.split(/\n(?=RUN )/).filter((s) => s.startsWith("RUN "))) {
        assert.ok((step.match(/type=cache/g) ?? []).length <= 1, step);
      }
    }
  }
});
