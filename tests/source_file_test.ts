import assert from "node:assert/strict";
import { join } from "node:path";
import { Image } from "imgtool";
import * as images from "./fixtures/project/images.ts";
import { assertDiagnostic, asText, fixtureConfig, renderGolden, withTempDir } from "./helpers.ts";
import { copiedFiles } from "./docker_copy_model.ts";
import { planImage, renderImage, validateImages } from "../mod.ts";
import { placement } from "../plugins/source_file.ts";

const config = fixtureConfig();

Deno.test("source_file plugin without dst copies the file into the working directory", async (t) => {
  const golden = await renderGolden(images.sourceFile, config);
  assert.match(golden, /^COPY \["\.imgtool\/01-source_file\/file\/", "\.\/"\]$/m);
  assert.match(golden, /\.imgtool\/01-source_file\/file\/main\.py <- file app\/main\.py/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("source_file plugin copies a plainly named file by its path to dst (Docker's rule: into dst when the image has a folder there)", async (t) => {
  const golden = await renderGolden(images.sourceFileTo, config);
  assert.match(
    golden,
    /^COPY \["\.imgtool\/01-source_file\/file\/main\.py", "\/opt\/app\/entry\.py"\]$/m,
  );
  await t.assertSnapshot(golden, asText);
});

Deno.test("source_file plugin copies into a dst folder (ending in /) relative to the working directory", async (t) => {
  const golden = await renderGolden(images.sourceFileIntoFolder, config);
  assert.match(golden, /^COPY \["\.imgtool\/01-source_file\/file\/", "config\/"\]$/m);
  assert.match(golden, /\.imgtool\/01-source_file\/file\/settings\.py <- file app\/settings\.py/);
  await t.assertSnapshot(golden, asText);
});

// Names Docker would read as patterns ([ ] * ?), that Dockerfile text would expand or escape
// ($ \), and names with spaces or beyond ASCII.
const ODD_NAMES = ["[id].txt", "we*rd ?.txt", "ünï cödé ✓.txt", "$HOME\\x.txt", "a]b[.txt"];

Deno.test("source_file plugin copies a file with any name exactly that file, to where the copy contract says", async () => {
  await withTempDir(async (dir) => {
    for (const [index, name] of ODD_NAMES.entries()) {
      const file = join(dir, name);
      const content = `file ${index}\n`;
      await Deno.writeTextFile(file, content);
      // Decoys a pattern reading of the name would match instead.
      await Deno.writeTextFile(join(dir, "i.txt"), "decoy\n");
      const base = Image.fromBase("debian:bookworm-slim").withWorkdir("/work");
      const cases: [string | undefined, string][] = [
        [undefined, `/work/${name}`],
        ["/opt/files/", `/opt/files/${name}`],
        ["conf/", `/work/conf/${name}`],
        ["/opt/renamed [1].txt", "/opt/renamed [1].txt"],
        ["sub/new?.txt", "/work/sub/new?.txt"],
      ];
      for (const [dst, expected] of cases) {
        const plan = planImage(base.withSourceFile(file, dst), "default", config);
        assert.deepEqual(await validateImages([plan], { secretValues: false }), [], name);
        const rendered = await renderImage(plan);
        const copied = copiedFiles(rendered, "/work");
        assert.deepEqual([...copied.keys()], [expected], `${name} -> ${dst}`);
        assert.equal(await Deno.readTextFile(copied.get(expected)!), content);
        // The Dockerfile never spells a name Docker would misread.
        if (/[*?[\]$\\]/.test(name)) assert.ok(!rendered.dockerfile.includes(name), name);
      }
      await Deno.remove(file);
    }
  });
});

Deno.test("source_file plugin still refuses a destination the Dockerfile would expand", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "main.py");
    await Deno.writeTextFile(file, "print(1)\n");
    const image = Image.fromBase("debian:bookworm-slim").withSourceFile(file, "/opt/$APP/");
    const problems = await validateImages([planImage(image, "default", config)], {
      secretValues: false,
    });
    assertDiagnostic(problems, {
      message: /^the destination "\/opt\/\$APP\/" is empty or has \$/,
      hint: "pick another destination",
      plugin: "source_file",
      method: "withSourceFile",
    });
  });
});

Deno.test("placement() puts the file into folder destinations under its name, else at the destination", () => {
  assert.deepEqual(placement("a.txt", undefined), { into: "./", name: "a.txt" });
  assert.deepEqual(placement("a.txt", "."), { into: "./", name: "a.txt" });
  assert.deepEqual(placement("a.txt", "/opt/.."), { into: "/opt/../", name: "a.txt" });
  assert.deepEqual(placement("a.txt", "x/"), { into: "x/", name: "a.txt" });
  assert.deepEqual(placement("a.txt", "/b.txt"), { into: "/", name: "a.txt", byPath: "/b.txt" });
  assert.deepEqual(placement("[a].txt", "b.txt"), { into: "./", name: "b.txt" });
  assert.deepEqual(placement("$a.txt", "/x/b.txt"), { into: "/x/", name: "b.txt" });
});
