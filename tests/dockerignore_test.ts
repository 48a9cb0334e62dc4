import assert from "node:assert/strict";
import { join } from "node:path";
import * as images from "./fixtures/project/images.ts";
import { asText, fixtureConfig, PROJECT, renderGolden } from "./helpers.ts";
import { parseDockerignore } from "../plugins/dockerignore.ts";
import { planImage } from "../mod.ts";

const config = fixtureConfig();

Deno.test("dockerignore plugin renders a note; its rules govern the layers before it", async (t) => {
  const golden = await renderGolden(images.dockerignore, config);
  assert.match(golden, /# \(its rules apply to every file this image takes from disk\)/);
  const plan = planImage(images.dockerignore, "default", config);
  assert.ok(plan.ignore.ignores(join(PROJECT, "src", "scratch.tmp")));
  assert.ok(plan.ignore.ignores(join(PROJECT, "src", "pkg", "__pycache__")));
  assert.ok(!plan.ignore.ignores(join(PROJECT, "src", "pkg", "util.py")));
  await t.assertSnapshot(golden, asText);
});

Deno.test("parseDockerignore() drops comments and blank lines and trims patterns", () => {
  assert.deepEqual(
    parseDockerignore("# comment\n\n  *.log  \r\n!keep.log\n   # indented comment\nbuild/\n"),
    ["*.log", "!keep.log", "build/"],
  );
});
