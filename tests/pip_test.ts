import assert from "node:assert/strict";
import * as images from "./fixtures/project/images.ts";
import { asText, fixtureConfig, renderGolden } from "./helpers.ts";

const uv = fixtureConfig();
const pip = fixtureConfig({}, { "python.installer": "pip" });
const noCache = fixtureConfig({}, { "cache.mounts": "false" });
const pipNoCache = fixtureConfig({}, { "python.installer": "pip", "cache.mounts": "false" });

Deno.test("pip plugin installs with uv into the base's virtual environment, shell-quoted", async (t) => {
  const golden = await renderGolden(images.pipPackages, uv);
  assert.match(
    golden,
    /&& uv pip install --python \/opt\/venv\/bin\/python numpy==2\.1\.0 'pandas\[parquet\]>=2'\n/,
  );
  assert.match(golden, /--mount=type=cache,target=\/root\/.cache\/uv,id=imgtool-uv,sharing=locked/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("pip plugin installs with pip when the installer is pip", async (t) => {
  const golden = await renderGolden(images.pipPackages, pip);
  assert.match(
    golden,
    /\/opt\/venv\/bin\/python -m pip install --disable-pip-version-check numpy==2\.1\.0/,
  );
  assert.match(golden, /--mount=type=cache,target=\/root\/.cache\/pip,id=imgtool-pip/);
  assert.doesNotMatch(golden, /\buv\b/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("pip plugin passes index options and lets the step's shell expand secret references", async (t) => {
  const golden = await renderGolden(images.pipIndexOptions, uv);
  assert.match(golden, / --index-url 'https:\/\/pypi.example\/simple'/);
  assert.match(golden, / --extra-index-url 'https:\/\/mirror.example\/simple'/);
  // `$GITHUB_PAT` and `${GITHUB_PAT}` reach the shell outside single quotes; nothing else does.
  assert.match(
    golden,
    / --extra-index-url 'https:\/\/'"\$\{GITHUB_PAT\}"'@private.example\/simple'/,
  );
  assert.match(golden, / 'git\+https:\/\/'"\$\{GITHUB_PAT\}"'@github.com\/acme\/tool.git@v1'/);
  assert.match(golden, / --prerelease=allow --no-deps --timeout 60 /);
  assert.match(golden, /GITHUB_PAT="\$\(cat \/run\/secrets\/GITHUB_PAT\)" && export GITHUB_PAT/);
  assert.match(golden, /--mount=type=secret,id=CI_NETRC,target=\/root\/.netrc,required=true/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("pip plugin index options with the pip installer use --pre", async (t) => {
  const golden = await renderGolden(images.pipIndexOptions, pip);
  assert.match(golden, / --pre --no-deps --timeout 60 /);
  assert.doesNotMatch(golden, /--prerelease/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("pip plugin on a base without a Python environment mounts uv and targets python3, externally managed or not (uv docs: `--python` installs into that interpreter's environment; `--break-system-packages` lets uv modify an EXTERNALLY-MANAGED one)", async (t) => {
  const golden = await renderGolden(images.pipOnPlainBase, uv);
  assert.match(
    golden,
    /--mount=type=bind,from=ghcr.io\/astral-sh\/uv:0.8.13,source=\/uv,target=\/tmp\/imgtool-uv\/uv/,
  );
  assert.match(
    golden,
    /\/tmp\/imgtool-uv\/uv pip install --python "\$\(command -v python3\)" --break-system-packages requests/,
  );
  await t.assertSnapshot(golden, asText);
});

Deno.test("pip plugin on a base without a Python environment uses its python3 with pip, let into an externally managed Python (pip 23.0.1+: PIP_BREAK_SYSTEM_PACKAGES)", async (t) => {
  const golden = await renderGolden(images.pipOnPlainBase, pip);
  assert.match(golden, /python3 -m pip install --disable-pip-version-check requests/);
  assert.match(golden, /export PIP_BREAK_SYSTEM_PACKAGES=1 \\\n/);
  assert.doesNotMatch(golden, /--break-system-packages/, "older pips fail on the flag");
  await t.assertSnapshot(golden, asText);
});

Deno.test("pip plugin without cache mounts tells the installer not to cache", async (t) => {
  const withUv = await renderGolden(images.pipPackages, noCache);
  assert.match(withUv, /uv pip install --python \/opt\/venv\/bin\/python --no-cache numpy/);
  assert.doesNotMatch(withUv, /type=cache/);
  const withPip = await renderGolden(images.pipPackages, pipNoCache);
  assert.match(withPip, /-m pip install --disable-pip-version-check --no-cache-dir numpy/);
  assert.doesNotMatch(withPip, /type=cache/);
  await t.assertSnapshot(`${withUv}\n=== pip ===\n${withPip}`, asText);
});
