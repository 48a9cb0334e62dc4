import assert from "node:assert/strict";
import { Image } from "imgtool";
import * as images from "./fixtures/project/images.ts";
import { asText, fixtureConfig, renderGolden } from "./helpers.ts";
import { identify, planImage } from "../mod.ts";

const config = fixtureConfig();

Deno.test("base_image plugin starts FROM the given image; the image is named after it", async (t) => {
  const golden = await renderGolden(images.baseImage, config);
  assert.match(golden, /^FROM registry\.example\.com\/team\/base:1\.4$/m);
  assert.match(golden, /for image "default" \(base\)/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("base_image plugin keeps a digest-pinned reference", async (t) => {
  const golden = await renderGolden(images.baseImagePinned, config);
  assert.match(golden, /^FROM debian@sha256:0{64}$/m);
  await t.assertSnapshot(golden, asText);
});

Deno.test("base_image plugin alone is the referenced image, never built", async () => {
  const identity = await identify(
    planImage(Image.fromBase("registry.example.com/team/base:1.4"), "default", config),
  );
  assert.deepEqual(
    { uri: identity.uri, tag: identity.tag, prebuilt: identity.prebuilt },
    { uri: "registry.example.com/team/base:1.4", tag: "1.4", prebuilt: true },
  );
  const bare = await identify(planImage(Image.fromBase("debian"), "default", config));
  assert.equal(bare.tag, "latest");
  const withLayer = await identify(planImage(images.baseImage, "default", config));
  assert.equal(withLayer.prebuilt, false);
  assert.match(withLayer.uri, /^base:[0-9a-f]{32}$/);
});
