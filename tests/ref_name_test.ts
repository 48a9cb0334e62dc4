import assert from "node:assert/strict";
import { Image } from "imgtool";
import * as images from "./fixtures/project/images.ts";
import { asText, fixtureConfig, renderGolden } from "./helpers.ts";
import { identify, planImage } from "../mod.ts";

const config = fixtureConfig();

Deno.test("ref_name plugin starts FROM the image the configuration names", async (t) => {
  const golden = await renderGolden(images.refName, config);
  assert.match(golden, /^FROM registry\.example\.com\/platform\/python-base:3\.12$/m);
  await t.assertSnapshot(golden, asText);
});

Deno.test("ref_name plugin alone is the configured image; IMGTOOL_REFS can name it", async () => {
  const uri = async (image: Image, env: Record<string, string> = {}) =>
    (await identify(planImage(image, "default", fixtureConfig(env)))).uri;
  assert.equal(
    await uri(Image.fromRefName("company-base")),
    "registry.example.com/platform/python-base:3.12",
  );
  assert.equal(
    await uri(Image.fromRefName("gpu"), { IMGTOOL_REFS: "gpu=nvcr.io/nvidia/cuda:12.4.1-base" }),
    "nvcr.io/nvidia/cuda:12.4.1-base",
  );
});
