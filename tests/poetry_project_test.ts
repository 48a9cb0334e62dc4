import assert from "node:assert/strict";
import { join } from "node:path";
import { Image } from "imgtool";
import * as images from "./fixtures/project/images.ts";
import { asText, dockerfileOf, fixtureConfig, FIXTURES, renderGolden } from "./helpers.ts";
import { NEEDS_PYTHON } from "../plugins/shared/python.ts";

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

Deno.test("poetry_project plugin on a base whose Python environment imgtool does not know installs into python3's environment (Poetry: with virtualenvs.create off it installs into the environment VIRTUAL_ENV names, else into the one its own interpreter was made from), pip let in (PEP 668), after the check for python3", async () => {
  const base = Image.fromBase("debian:bookworm");
  for (const config of [uv, pip]) {
    const dockerfile = await dockerfileOf(
      base.withPoetryProject(join(FIXTURES, "project/poetryproj/pyproject.toml"), {
        projectInstallMode: "install_project",
      }),
      config,
    );
    const runs = dockerfile.split(/\n(?=RUN )/).filter((text) => text.startsWith("RUN "));
    // Poetry's own install, the dependencies, the project.
    assert.equal(runs.length, 3, dockerfile);
    for (const step of runs) {
      // Before the check: the step's mounts and the variables it exports, nothing else.
      const before = step.slice(0, step.indexOf(NEEDS_PYTHON)).split("\n");
      assert.ok(
        step.includes(NEEDS_PYTHON) &&
          before.every((line) =>
            /^(?:RUN )?\s*(?:--mount=\S+|(?:&& )?export [A-Z_]+=\S+) \\$|^\s*(?:&& )?$/.test(line)
          ),
        `no python3 check first:\n${step}`,
      );
    }
    const [, dependencies, project] = runs;
    const target = `VIRTUAL_ENV="$(python3 -c 'import sys; print(sys.prefix)')" && ` +
      "export VIRTUAL_ENV";
    assert.ok(
      dependencies.indexOf(target) > dependencies.indexOf(NEEDS_PYTHON) &&
        dependencies.indexOf(target) < dependencies.indexOf(" install --no-root"),
      dependencies,
    );
    assert.match(dependencies, /export PIP_BREAK_SYSTEM_PACKAGES=1 \\\n/);
    assert.match(
      project,
      config === pip
        ? /export PIP_BREAK_SYSTEM_PACKAGES=1 \\\n/
        : /uv pip install --python "\$\(command -v python3\)" --break-system-packages /,
    );
    assert.doesNotMatch(dockerfile, /\/opt\/venv/);
  }
  // Over the recipe, whose venv the image's VIRTUAL_ENV already names, nothing is added.
  const recipe = await renderGolden(images.poetryInstall, pip);
  const layer = recipe.slice(recipe.indexOf("withPoetryProject at"));
  assert.ok(layer.length < recipe.length);
  assert.doesNotMatch(layer, /VIRTUAL_ENV=|PIP_BREAK_SYSTEM_PACKAGES|command -v python3 >/);
});
