import assert from "node:assert/strict";
import * as images from "./fixtures/project/images.ts";
import { asText, fixtureConfig, renderGolden } from "./helpers.ts";
import { destination } from "../plugins/source_folder.ts";

const config = fixtureConfig();

Deno.test("source_folder plugin without dst puts the folder under its own name in the working directory", async (t) => {
  const golden = await renderGolden(images.sourceFolder, config);
  assert.match(golden, /^COPY \["\.imgtool\/01-source_folder\/src\/", "\.\/src\/"\]$/m);
  assert.match(golden, /\.imgtool\/01-source_folder\/src <- tree src/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("source_folder plugin with dst makes the folder that destination", async (t) => {
  const golden = await renderGolden(images.sourceFolderTo, config);
  assert.match(golden, /^COPY \["\.imgtool\/01-source_folder\/src\/", "\/app\/src\/"\]$/m);
  await t.assertSnapshot(golden, asText);
});

Deno.test("source_folder plugin with copyContentsOnly puts the contents straight into dst", async (t) => {
  const golden = await renderGolden(images.sourceFolderContents, config);
  assert.match(golden, /^COPY \["\.imgtool\/01-source_folder\/src\/", "\/app\/"\]$/m);
  await t.assertSnapshot(golden, asText);
});

Deno.test("source_folder plugin with copyContentsOnly and no dst puts the contents in the working directory", async (t) => {
  const golden = await renderGolden(images.sourceFolderContentsHere, config);
  assert.match(golden, /^COPY \["\.imgtool\/01-source_folder\/app\/", "\.\/"\]$/m);
  await t.assertSnapshot(golden, asText);
});

Deno.test("destination() is always a folder path ending in /", () => {
  const options = (dst: string | undefined, copyContentsOnly: boolean) => ({
    src: "./src",
    dst,
    copyContentsOnly,
  });
  assert.equal(destination(options(undefined, false), "src"), "./src/");
  assert.equal(destination(options(undefined, true), "src"), "./");
  assert.equal(destination(options("/app", false), "src"), "/app/");
  assert.equal(destination(options("/app/", true), "src"), "/app/");
  assert.equal(destination(options("lib", false), "src"), "lib/");
});
