import assert from "node:assert/strict";
import * as images from "./fixtures/project/images.ts";
import { asText, fixtureConfig, renderGolden } from "./helpers.ts";

const uv = fixtureConfig();
const pip = fixtureConfig({}, { "python.installer": "pip" });
const noCache = fixtureConfig({}, { "cache.mounts": "false" });
const mirrored = fixtureConfig({
  IMGTOOL_IMAGES_PYTHON: "mirror.internal:5000/library/python:{major}.{minor}-slim",
  IMGTOOL_IMAGES_UV: "mirror.internal:5000/astral-sh/uv:0.8.13",
  IMGTOOL_DEBIAN_PACKAGES: "ca-certificates,git",
});

Deno.test("debian_base plugin builds a virtual environment on the Python image, with uv", async (t) => {
  const golden = await renderGolden(images.debianBase, uv);
  assert.match(
    golden,
    /^FROM python:3\.12-slim-bookworm\nCOPY --from=ghcr\.io\/astral-sh\/uv:0\.8\.13 \["\/uv", "\/uvx", "\/usr\/local\/bin\/"\]$/m,
  );
  assert.match(golden, /sys\.exit\(0 if v == \(3, 12\) else/);
  assert.match(golden, /--no-install-recommends build-essential ca-certificates\n/);
  assert.match(golden, /&& uv venv \/opt\/venv --python "\$\(command -v python3\)"\n/);
  assert.match(golden, /^ENV VIRTUAL_ENV="\/opt\/venv"\nENV PATH="\/opt\/venv\/bin:\$\{PATH\}"$/m);
  assert.match(golden, /^WORKDIR \/root\n$/m);
  assert.doesNotMatch(golden, /flyte/, "installFlyte defaults to false");
  await t.assertSnapshot(golden, asText);
});

Deno.test("debian_base plugin with the pip installer uses python3 -m venv and no uv", async (t) => {
  const golden = await renderGolden(images.debianBase, pip);
  assert.match(
    golden,
    /^RUN --mount=type=cache,target=\/root\/\.cache\/pip,id=imgtool-pip,sharing=locked \\\n {4}python3 -m venv \/opt\/venv$/m,
  );
  assert.doesNotMatch(golden, /\buv\b/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("debian_base plugin installs flyte at the asked version and Python", async (t) => {
  const golden = await renderGolden(images.debianBaseFlyte, uv);
  assert.match(golden, /^FROM python:3\.11-slim-bookworm$/m);
  assert.match(golden, /uv pip install --python \/opt\/venv\/bin\/python flyte==2\.0\.0b56\n/);
  assert.match(golden, /for image "default" \(flyte-app\)/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("debian_base plugin installFlyte without a version installs the latest flyte", async (t) => {
  const golden = await renderGolden(images.debianBaseInstallFlyte, uv);
  assert.match(golden, /uv pip install --python \/opt\/venv\/bin\/python flyte\n/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("debian_base plugin without cache mounts cleans apt lists and has no cache mount", async (t) => {
  const golden = await renderGolden(images.debianBase, noCache);
  assert.doesNotMatch(golden, /type=cache/);
  assert.match(golden, /&& rm -rf \/var\/lib\/apt\/lists\/\*\n/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("debian_base plugin takes its images and packages from configuration (mirrors)", async (t) => {
  const golden = await renderGolden(images.debianBase, mirrored);
  assert.match(golden, /^FROM mirror\.internal:5000\/library\/python:3\.12-slim$/m);
  assert.match(golden, /COPY --from=mirror\.internal:5000\/astral-sh\/uv:0\.8\.13 /);
  assert.match(golden, /--no-install-recommends ca-certificates git\n/);
  assert.doesNotMatch(golden, /ghcr\.io|python:3\.12-slim-bookworm/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("debian_base plugin starts from the base image a clone names", async (t) => {
  const golden = await renderGolden(images.debianBaseCloned, uv);
  assert.match(golden, /^FROM registry\.example\.com\/mirror\/python:3\.12-slim$/m);
  assert.match(golden, /for image "default" \(mirrored\)/);
  await t.assertSnapshot(golden, asText);
});
