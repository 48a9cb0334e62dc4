import assert from "node:assert/strict";
import { join } from "node:path";
import { exportOrder, loadSpec, selectImages } from "../src/load.ts";
import { SpecError } from "../mod.ts";
import { withTempDir, writeTree } from "./helpers.ts";

Deno.test("exportOrder() lists named exports in source order", () => {
  const source = `
import { Image } from "imgtool";
const hidden = 1;
export const zeta = Image.fromBase("a");
export let alpha = zeta;
export var mid = zeta;
export default zeta;
export function helper() {}
export async function asyncHelper() {}
export function* generator() {}
export class Thing {}
export declare const declared: number;
const a = 1, b = 2;
export { a, b as beta };
export {
  hidden as
    renamed,
};
export const zeta2 = zeta;
`;
  assert.deepEqual(exportOrder(source), [
    "zeta",
    "alpha",
    "mid",
    "helper",
    "asyncHelper",
    "generator",
    "Thing",
    "declared",
    "a",
    "beta",
    "renamed",
    "zeta2",
  ]);
});

Deno.test("exportOrder() names each export once, at its first place", () => {
  assert.deepEqual(exportOrder("export const b = 1;\nexport { b };\nexport const a = 2;\n"), [
    "b",
    "a",
  ]);
  assert.deepEqual(exportOrder(""), []);
});

/** Write a spec (importing the API by its bare name) into `dir` and load it. */
async function specIn(dir: string, source: string) {
  await writeTree(dir, { "spec.ts": `import { Image } from "imgtool";\n${source}` });
  return loadSpec(join(dir, "spec.ts"));
}

Deno.test("loadSpec() collects the default export first, then named exports in source order", async () => {
  await withTempDir(async (dir) => {
    const spec = await specIn(
      dir,
      `export const zed = Image.fromBase("zed").withWorkdir("/z");
export const notAnImage = 42;
export const alpha = Image.fromBase("alpha").withWorkdir("/a");
export default [Image.fromBase("one").withWorkdir("/1"), Image.fromBase("two").withWorkdir("/2")];
export const pair = [Image.fromBase("p").withWorkdir("/p"), Image.fromBase("q").withWorkdir("/q")];
`,
    );
    assert.equal(spec.file, join(dir, "spec.ts"));
    assert.deepEqual(spec.images.map((image) => [image.exportName, image.exportKey]), [
      ["default[0]", "default"],
      ["default[1]", "default"],
      ["zed", "zed"],
      ["alpha", "alpha"],
      ["pair[0]", "pair"],
      ["pair[1]", "pair"],
    ]);
    assert.deepEqual(selectImages(spec, ["alpha", "default"]).map((i) => i.exportName), [
      "default[0]",
      "default[1]",
      "alpha",
    ]);
    assert.deepEqual(selectImages(spec, ["pair[1]"]).map((i) => i.exportName), ["pair[1]"]);
    assert.throws(() => selectImages(spec, ["nope", "alpha"]), (error: unknown) => {
      assert.ok(error instanceof SpecError);
      assert.match(error.message, /has no image export "nope"$/);
      assert.equal(error.hint, "its images: default, zed, alpha, pair");
      return true;
    });
  });
});

Deno.test("loadSpec() refuses a missing spec, a folder, and a spec without images", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(loadSpec(join(dir, "nope.ts")), (error: unknown) => {
      assert.ok(error instanceof SpecError);
      assert.equal(error.message, `spec file not found: ${join(dir, "nope.ts")}`);
      assert.match(error.hint ?? "", /imgtool init writes one/);
      return true;
    });
    await assert.rejects(loadSpec(dir), /is not a file$/);
    await assert.rejects(specIn(dir, "export const answer = 42;\n"), (error: unknown) => {
      assert.ok(error instanceof SpecError);
      assert.match(error.message, /spec\.ts exports no Image$/);
      assert.match(error.hint ?? "", /its exports \(answer\) are not images/);
      return true;
    });
  });
});

Deno.test("a spec importing npm:, jsr: or https: modules is refused before it runs, naming the line", async () => {
  for (const specifier of ["npm:left-pad@1", "jsr:@std/toml", "https://example.com/mod.ts"]) {
    await withTempDir(async (dir) => {
      await writeTree(dir, {
        "spec.ts": `import { Image } from "imgtool";\nimport "./helper.ts";\n` +
          `export default Image.fromBase("debian:bookworm");\n`,
        "helper.ts": `// a local helper\n\nimport x from "${specifier}";\nexport const y = x;\n`,
      });
      const error = await loadSpec(join(dir, "spec.ts")).catch((e) => e);
      assert.ok(error instanceof SpecError, String(error));
      assert.equal(
        error.message,
        `${join(dir, "helper.ts")}:3 imports ${specifier}, which imgtool cannot load`,
      );
      assert.match(error.hint ?? "", /copy the code into a local file/);
    });
  }
});

Deno.test("a spec outside the project loads a local plugin file by relative import", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "plugins/banner.ts": `import { definePlugin } from "imgtool";
export const banner = definePlugin<{ text: string }>({
  name: "banner",
  render: (o) => ({ instructions: [\`LABEL banner=\${JSON.stringify(o.text)}\`] }),
});
export function bannerLayer(text: string) { return banner.layer({ text }, "banner"); }
`,
      "spec.ts": `import { Image } from "imgtool";
import { bannerLayer } from "./plugins/banner.ts";
export default Image.fromBase("debian:bookworm").withLayer(bannerLayer("hi"));
`,
    });
    const spec = await loadSpec(join(dir, "spec.ts"));
    assert.equal(spec.images.length, 1);
    const [layer] = spec.images[0].image.layers.slice(1);
    assert.equal(layer.plugin.name, "banner");
    // The layer's spec line is the spec's call, not the plugin's factory.
    assert.equal(layer.origin.file, join(dir, "spec.ts"));
    assert.equal(layer.origin.line, 3);
  });
});

Deno.test("a plugin may name its defining module instead of it being read from the stack", async () => {
  await withTempDir(async (dir) => {
    const plugin = (module: string) =>
      `import { definePlugin } from "imgtool";
export const banner = definePlugin<{ text: string }>({
  name: "banner",
  render: (o) => ({ instructions: [\`LABEL banner=\${JSON.stringify(o.text)}\`] }),
}, { module: ${module} });
export function bannerLayer(text: string) { return banner.layer({ text }, "banner"); }
`;
    await writeTree(dir, {
      "named.ts": plugin("import.meta.url"),
      "misnamed.ts": plugin(`"file:///somewhere/else.ts"`),
      "spec.ts": `import { Image } from "imgtool";
import { bannerLayer as named } from "./named.ts";
import { bannerLayer as misnamed } from "./misnamed.ts";
export default Image.fromBase("debian:bookworm").withLayer(named("hi"));
export const other = Image.fromBase("debian:bookworm").withLayer(misnamed("hi"));
`,
    });
    const spec = await loadSpec(join(dir, "spec.ts"));
    const origin = (index: number) => spec.images[index].image.layers[1].origin;
    // Named: the spec's call, as when read from the stack.
    assert.deepEqual([origin(0).file, origin(0).line], [join(dir, "spec.ts"), 4]);
    // The module named is the one skipped: named wrongly, the plugin's helper is blamed.
    assert.deepEqual([origin(1).file, origin(1).line], [join(dir, "misnamed.ts"), 6]);
  });
});
