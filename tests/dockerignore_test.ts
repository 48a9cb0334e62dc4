import assert from "node:assert/strict";
import { join } from "node:path";
import * as images from "./fixtures/project/images.ts";
import { asText, fixtureConfig, PROJECT, renderGolden, withTempDir } from "./helpers.ts";
import { parseDockerignore } from "../plugins/dockerignore.ts";
import { planImage, renderImage } from "../mod.ts";
import { writeContext } from "../src/context.ts";
import { IgnoreRules } from "../src/ignore.ts";

const config = fixtureConfig();

Deno.test("dockerignore plugin renders a note; its rules govern the layers before it", async (t) => {
  const golden = await renderGolden(images.dockerignore, config);
  assert.match(golden, /# \(its rules apply to every file this image takes from disk\)/);
  const plan = planImage(images.dockerignore, "default", config);
  assert.ok(plan.ignore.ignores(join(PROJECT, "src", "scratch.tmp")));
  assert.ok(plan.ignore.ignores(join(PROJECT, "src", "pkg", "__pycache__")));
  assert.ok(!plan.ignore.ignores(join(PROJECT, "src", "pkg", "util.py")));
  // The layer before the rules (withSourceFolder("./src")) takes its files under them.
  const source = join(PROJECT, "src");
  assert.ok(Deno.statSync(join(source, "scratch.tmp")).isFile, "the fixture has a file to ignore");
  await withTempDir(async (dir) => {
    const rendered = await renderImage(plan);
    const tree = rendered.context.find((entry) => entry.kind === "tree" && entry.source === source);
    assert.ok(tree, "the source folder layer takes ./src");
    await writeContext(rendered, dir, plan.ignore);
    assert.deepEqual(filesUnder(join(dir, tree.target)), ["pkg/__init__.py", "pkg/util.py"]);
  });
  await t.assertSnapshot(golden, asText);
});

/** The files under `root`, as sorted paths relative to it. */
function filesUnder(root: string, prefix = ""): string[] {
  return [...Deno.readDirSync(join(root, prefix))].flatMap((entry) => {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    return entry.isDirectory ? filesUnder(root, path) : [path];
  }).sort();
}

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
