import assert from "node:assert/strict";
import * as images from "./fixtures/project/images.ts";
import { asText, fixtureConfig, renderGolden } from "./helpers.ts";
import { planImage, renderImage } from "../mod.ts";

Deno.test("a realistic image renders every layer in order, each under a comment naming it", async (t) => {
  const golden = await renderGolden(images.trainer, fixtureConfig());
  const comments = [...golden.matchAll(/^# \[(\d+)\] (\S+) at images\.ts:\d+$/gm)];
  assert.deepEqual(comments.map((m) => [Number(m[1]), m[2]]), [
    [0, "Image.fromDebianBase"],
    [1, "withAptPackages"],
    [2, "withPipPackages"],
    [3, "withRequirements"],
    [4, "withUvProject"],
    [5, "withPoetryProject"],
    [6, "withSourceFolder"],
    [7, "withSourceFile"],
    [8, "withEnvVars"],
    [9, "withCommands"],
    [10, "withLayer(motd)"],
    [11, "withDockerignore"],
    [12, "withWorkdir"],
  ]);
  assert.match(golden, /for image "default" \(trainer\)/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("a realistic image with the pip installer and no cache mounts names neither uv caches nor pip caches", async (t) => {
  const config = fixtureConfig({}, { "python.installer": "pip", "cache.mounts": "false" });
  const golden = await renderGolden(images.trainer, config);
  assert.doesNotMatch(golden, /type=cache/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("the build context of a realistic image has no two entries at one target", async () => {
  const rendered = await renderImage(planImage(images.trainer, "default", fixtureConfig()));
  const targets = rendered.context.map((entry) => entry.target);
  assert.equal(new Set(targets).size, targets.length);
  assert.ok(targets.every((target) => target.startsWith(".imgtool/")));
  assert.deepEqual(rendered.secrets.map((secret) => secret.id), ["GITHUB_PAT"]);
  assert.deepEqual(rendered.sections.map((section) => section.plugin), [
    "debian_base",
    "apt",
    "pip",
    "requirements",
    "uv_project",
    "poetry_project",
    "source_folder",
    "source_file",
    "env_vars",
    "commands",
    "motd",
    "dockerignore",
    "workdir",
  ]);
});
