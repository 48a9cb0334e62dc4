import assert from "node:assert/strict";
import { join } from "node:path";
import { Image } from "imgtool";
import * as images from "./fixtures/project/images.ts";
import * as local from "./fixtures/requirements_local/images.ts";
import {
  asText,
  fixtureConfig,
  FIXTURES,
  renderGolden,
  withTempDir,
  writeTree,
} from "./helpers.ts";
import { type Config, identify, planImage, renderImage } from "../mod.ts";

const uv = fixtureConfig();
const pip = fixtureConfig({}, { "python.installer": "pip" });

Deno.test("requirements plugin mounts the file and its -r/-c includes into the install step", async (t) => {
  const golden = await renderGolden(images.requirementsFile, uv);
  assert.match(
    golden,
    /--mount=type=bind,source=.imgtool\/01-requirements,target=\/tmp\/imgtool-requirements \\/,
  );
  assert.match(
    golden,
    /uv pip install --python \/opt\/venv\/bin\/python -r \/tmp\/imgtool-requirements\/requirements.txt\n/,
  );
  for (const name of ["requirements.txt", "base.txt", "constraints.txt"]) {
    assert.match(
      golden,
      new RegExp(`\\.imgtool/01-requirements/${name} <- file requirements/${name}`),
    );
  }
  // Mounted, not copied: no COPY puts the files into a layer.
  assert.doesNotMatch(golden, /^COPY .*requirements/m);
  await t.assertSnapshot(golden, asText);
});

Deno.test("requirements plugin installs with pip when the installer is pip", async (t) => {
  const golden = await renderGolden(images.requirementsFile, pip);
  assert.match(
    golden,
    /-m pip install --disable-pip-version-check -r \/tmp\/imgtool-requirements\/requirements.txt\n/,
  );
  await t.assertSnapshot(golden, asText);
});

Deno.test("requirements plugin passes its secrets to the install step", async (t) => {
  const golden = await renderGolden(images.requirementsWithSecret, uv);
  assert.match(golden, /--mount=type=secret,id=PIP_TOKEN,target=\/run\/secrets\/PIP_TOKEN/);
  assert.match(golden, /PIP_TOKEN="\$\(cat \/run\/secrets\/PIP_TOKEN\)" && export PIP_TOKEN/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("requirements plugin identity covers the files a requirements file includes", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "requirements.txt": "-r nested/base.txt\n--constraint=pins.txt\nrich\n",
      "nested/base.txt": "numpy==2.1.0\n",
      "pins.txt": "urllib3<3\n",
    });
    const image = Image.fromBase("python:3.12-slim").withRequirements(
      join(dir, "requirements.txt"),
    );
    const tag = async () => (await identify(planImage(image, "default", uv))).tag;
    const before = await tag();
    await Deno.writeTextFile(join(dir, "nested/base.txt"), "numpy==2.2.0\n");
    const afterInclude = await tag();
    assert.notEqual(afterInclude, before, "editing an -r include changes the tag");
    await Deno.writeTextFile(join(dir, "pins.txt"), "urllib3<2\n");
    assert.notEqual(await tag(), afterInclude, "editing a --constraint= include changes the tag");
  });
});

const LOCAL = join(FIXTURES, "requirements_local");

/** The golden of an image of the local-references fixture, with the files imgtool rewrote. */
async function localGolden(image: Image, config: Config): Promise<string> {
  const golden = await renderGolden(image, config, { root: LOCAL });
  const rendered = await renderImage(planImage(image, "default", config));
  const generated = rendered.context.flatMap((entry) =>
    entry.kind === "text" ? [`${entry.target}:\n${entry.content}`] : []
  );
  return `${golden}--- generated files ---\n${generated.join("\n")}`;
}

Deno.test("requirements plugin brings every local project, wheel, include and links folder of the fixture into the context", async (t) => {
  const golden = await localGolden(local.everyForm, pip);
  // Named by app/requirements.txt and its includes; the context lists each from disk.
  for (
    const [kind, source] of [
      ["file", "common/base.txt"],
      ["file", "common/tools.txt"],
      ["file", "app/constraints.txt"],
      ["tree", "app/localpkg"],
      ["tree", "app"],
      ["tree", "shared/lib"],
      ["file", "app/wheels/tool-1.0-py3-none-any.whl"],
      ["tree", "shared/mono"],
      ["tree", "app/wheels"],
    ]
  ) {
    assert.match(golden, new RegExp(`<- ${kind} ${source.replaceAll(".", "\\.")}\n`));
  }
  // The install step reads no editable line and no relative local path.
  const generated = golden.split("--- generated files ---")[1];
  assert.doesNotMatch(generated, /^-e /m);
  assert.doesNotMatch(generated, /(^| |file:)\.\.?\//m);
  await t.assertSnapshot(golden, asText);
});

Deno.test("requirements plugin installs `-e .` of requirements/dev.txt from the spec's folder, where it resolves", async (t) => {
  const golden = await localGolden(local.fromSpecFolder, pip);
  assert.match(golden, /<- tree \.\n/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("requirements plugin renders the same rewritten files for uv (uv docs: `uv pip install -r requirements.txt` reads pip's format; `-r` and `-c` are relative to the including file)", async (t) => {
  const withUv = await localGolden(local.everyForm, uv);
  const withPip = await localGolden(local.everyForm, pip);
  assert.match(withUv, /uv pip install .* -r \/tmp\/imgtool-requirements\/requirements\.txt\n/);
  assert.equal(
    withUv.split("--- build context ---")[1],
    withPip.split("--- build context ---")[1],
    "the context and the rewritten files do not depend on the installer",
  );
  await t.assertSnapshot(withUv, asText);
});
