import assert from "node:assert/strict";
import { Image } from "imgtool";
import * as images from "./fixtures/project/images.ts";
import { asText, fixtureConfig, renderGolden } from "./helpers.ts";
import { planImage } from "../mod.ts";

const config = fixtureConfig();

Deno.test("workdir plugin writes a quoted WORKDIR; later relative copies land in it", async (t) => {
  const golden = await renderGolden(images.workdir, config);
  assert.match(golden, /^WORKDIR "\/app"\n/m);
  assert.match(golden, /^WORKDIR "my data"\n/m);
  assert.match(golden, /^COPY \["\.imgtool\/03-source_file\/file\/", "\.\/"\]$/m);
  await t.assertSnapshot(golden, asText);
});

Deno.test("workdir plugin tells later layers the working directory", () => {
  const state = (image: Image) => planImage(image, "default", config).layers.at(-1)!.context.state;
  const base = Image.fromBase("debian:bookworm");
  const absolute = base.withWorkdir("/app/./x/..").withEnvVars({ A: "1" });
  assert.equal(state(absolute).workdir, "/app");
  const relative = base.withWorkdir("/app").withWorkdir("sub").withEnvVars({ A: "1" });
  assert.equal(state(relative).workdir, "/app/sub");
  const unknown = base.withWorkdir("sub").withEnvVars({ A: "1" });
  assert.equal(state(unknown).workdir, undefined, "relative to an unknown directory");
  const debian = Image.fromDebianBase().withWorkdir("data").withEnvVars({ A: "1" });
  assert.equal(state(debian).workdir, "/root/data");
});
