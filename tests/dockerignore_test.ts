import assert from "node:assert/strict";
import { join } from "node:path";
import * as images from "./fixtures/project/images.ts";
import { asText, fixtureConfig, PROJECT, renderGolden } from "./helpers.ts";
import { parseDockerignore } from "../plugins/dockerignore.ts";
import { planImage } from "../mod.ts";
import { IgnoreRules } from "../src/ignore.ts";

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

Deno.test(".dockerignore lines are read as Docker reads them", () => {
  const text = "\uFEFF# comment\n\n  *.log  \r\n!keep.log\n   # indented: a pattern\nbuild/\n";
  const lines = parseDockerignore(text);
  assert.equal(lines.length, 7);
  const set = new IgnoreRules([{ root: "/ctx", patterns: lines }]);
  assert.ok(set.ignores("/ctx/a.log"), "trimmed, and the CR of a CRLF line dropped");
  assert.ok(!set.ignores("/ctx/keep.log"), "! re-includes");
  assert.ok(set.ignores("/ctx/build/x"));
  assert.ok(set.ignores("/ctx/# indented: a pattern"), "# only starts a comment in column one");
  assert.ok(!set.ignores("/ctx/# comment"));
});
