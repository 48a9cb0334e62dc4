import assert from "node:assert/strict";
import { join } from "node:path";
import { Image } from "imgtool";
import * as images from "./fixtures/project/images.ts";
import { asText, fixtureConfig, renderGolden, withTempDir, writeTree } from "./helpers.ts";
import { copiedFiles } from "./docker_copy_model.ts";
import { planImage, renderImage, validateImages } from "../mod.ts";
import { destination } from "../plugins/source_folder.ts";

const config = fixtureConfig();

Deno.test("source_folder plugin without dst puts the folder under its own name in the working directory", async (t) => {
  const golden = await renderGolden(images.sourceFolder, config);
  assert.match(golden, /^COPY \["\.imgtool\/01-source_folder\/tree\/", "\.\/"\]$/m);
  // The staging folder holds the folder itself, so it lands under its own name.
  assert.match(golden, /\.imgtool\/01-source_folder\/tree\/src <- tree src/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("source_folder plugin with dst makes the folder that destination", async (t) => {
  const golden = await renderGolden(images.sourceFolderTo, config);
  assert.match(golden, /^COPY \["\.imgtool\/01-source_folder\/tree\/", "\/app\/src\/"\]$/m);
  assert.match(golden, /\.imgtool\/01-source_folder\/tree <- tree src/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("source_folder plugin with copyContentsOnly puts the contents straight into dst", async (t) => {
  const golden = await renderGolden(images.sourceFolderContents, config);
  assert.match(golden, /^COPY \["\.imgtool\/01-source_folder\/tree\/", "\/app\/"\]$/m);
  await t.assertSnapshot(golden, asText);
});

Deno.test("source_folder plugin with copyContentsOnly and no dst puts the contents in the working directory", async (t) => {
  const golden = await renderGolden(images.sourceFolderContentsHere, config);
  assert.match(golden, /^COPY \["\.imgtool\/01-source_folder\/tree\/", "\.\/"\]$/m);
  assert.match(golden, /\.imgtool\/01-source_folder\/tree <- tree app/);
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

Deno.test("source_folder plugin copies a folder with any name exactly, its contents by their own names", async () => {
  await withTempDir(async (dir) => {
    // Names inside are never patterns to Docker (it copies a folder's contents as they are).
    const inside: Record<string, string> = {
      "[x].txt": "x\n",
      "sub/*.py": "star\n",
      "sub/.hidden": "hidden\n",
      "é ?/a b.txt": "spaced\n",
    };
    for (const name of ["data[v2]", "we*rd ?", "ünï cödé ✓", "$HOME\\x"]) {
      const folder = join(dir, name);
      await writeTree(folder, inside);
      // A decoy that a pattern reading of "data[v2]" would match instead.
      await writeTree(dir, { "data2/decoy.txt": "decoy\n" });
      const base = Image.fromBase("debian:bookworm-slim").withWorkdir("/work");
      const cases: [Image, string][] = [
        [base.withSourceFolder(folder), `/work/${name}`],
        [base.withSourceFolder(folder, "/opt/data"), "/opt/data"],
        [base.withSourceFolder(folder, "rel [1]/"), "/work/rel [1]"],
        [base.withSourceFolder(folder, undefined, { copyContentsOnly: true }), "/work"],
      ];
      for (const [image, root] of cases) {
        const plan = planImage(image, "default", config);
        assert.deepEqual(await validateImages([plan], { secretValues: false }), [], name);
        const rendered = await renderImage(plan);
        const copied = copiedFiles(rendered, "/work");
        const expected = Object.keys(inside).map((path) => `${root}/${path}`).sort();
        assert.deepEqual([...copied.keys()].sort(), expected, `${name} -> ${root}`);
        for (const [path, content] of Object.entries(inside)) {
          assert.equal(await Deno.readTextFile(copied.get(`${root}/${path}`)!), content);
        }
        assert.ok(!rendered.dockerfile.includes(name), `the Dockerfile spells ${name}`);
      }
      await Deno.remove(folder, { recursive: true });
    }
  });
});
