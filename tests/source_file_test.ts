import assert from "node:assert/strict";
import * as images from "./fixtures/project/images.ts";
import { asText, fixtureConfig, renderGolden } from "./helpers.ts";

const config = fixtureConfig();

Deno.test("source_file plugin without dst copies the file into the working directory", async (t) => {
  const golden = await renderGolden(images.sourceFile, config);
  assert.match(golden, /^COPY \["\.imgtool\/01-source_file\/main\.py", "\.\/main\.py"\]$/m);
  assert.match(golden, /\.imgtool\/01-source_file\/main\.py <- file app\/main\.py/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("source_file plugin copies the file to dst", async (t) => {
  const golden = await renderGolden(images.sourceFileTo, config);
  assert.match(
    golden,
    /^COPY \["\.imgtool\/01-source_file\/main\.py", "\/opt\/app\/entry\.py"\]$/m,
  );
  await t.assertSnapshot(golden, asText);
});

Deno.test("source_file plugin copies into a dst folder (ending in /) relative to the working directory", async (t) => {
  const golden = await renderGolden(images.sourceFileIntoFolder, config);
  assert.match(golden, /^COPY \["\.imgtool\/01-source_file\/settings\.py", "config\/"\]$/m);
  await t.assertSnapshot(golden, asText);
});
