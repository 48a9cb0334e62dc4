import assert from "node:assert/strict";
import { defaultConfig, Image, planImage, renderImage } from "../mod.ts";
import { NEEDS_PYTHON } from "../plugins/shared/python.ts";
import { withTempDir } from "./helpers.ts";

async function dockerfile(image: Image): Promise<string> {
  return (await renderImage(planImage(image, "default", defaultConfig()))).dockerfile;
}

Deno.test("a pip layer on a base whose Python imgtool does not know checks for python3 first; on the recipe it does not", async () => {
  const plain = await dockerfile(Image.fromBase("debian:bookworm").withPipPackages("numpy"));
  assert.ok(plain.includes(NEEDS_PYTHON), plain);
  const recipe = await dockerfile(Image.fromDebianBase().withPipPackages("numpy"));
  assert.ok(!recipe.includes("command -v python3 >/dev/null"), recipe);
});

Deno.test("on a base without python3 the check fails the step with what to do, not a raw shell error", async () => {
  await withTempDir(async (dir) => {
    // An empty folder as PATH: no python3, as on a base without Python (printf and command
    // are the shell's own).
    const run = (path: string) =>
      new Deno.Command("/bin/sh", {
        args: ["-c", `${NEEDS_PYTHON} && echo installed`],
        env: { PATH: path },
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
    const without = await run(dir);
    assert.equal(without.code, 1);
    const message = new TextDecoder().decode(without.stderr);
    assert.match(message, /the base image has no python3 on PATH/);
    assert.match(message, /Image\.fromDebianBase\(\)/);
    assert.equal(new TextDecoder().decode(without.stdout), "");
    const python = await new Deno.Command("sh", { args: ["-c", "command -v python3"] }).output();
    if (python.success) {
      const withPython = await run("/usr/local/bin:/usr/bin:/bin");
      assert.equal(new TextDecoder().decode(withPython.stdout), "installed\n");
    }
  });
});
