import assert from "node:assert/strict";
import { join } from "node:path";
import { Image } from "imgtool";
import * as images from "./fixtures/project/images.ts";
import { asText, fixtureConfig, renderGolden, withTempDir, writeTree } from "./helpers.ts";
import { identify, planImage } from "../mod.ts";

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
