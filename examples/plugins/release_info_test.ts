import assert from "node:assert/strict";
import {
  type ContextEntry,
  defaultConfig,
  identifySync,
  Image,
  planImage,
  renderImage,
  validateImages,
} from "imgtool";
import { appendSplit } from "../../src/append_plan.ts";
import { RELEASE_FILE, releaseInfo, releaseJson } from "./release_info.ts";

const image = () =>
  Image.fromBase("127.0.0.1:5000/debian:bookworm")
    .clone({ name: "service", registry: "127.0.0.1:5000" })
    .withCommands("true")
    .withLayer(releaseInfo({ version: "1.4.2", channel: "stable" }));

Deno.test("release_info renders a COPY of its file and a LABEL", async () => {
  const rendered = await renderImage(planImage(image(), "default", defaultConfig()));
  const section = rendered.sections.find((part) => part.plugin === "release_info");
  assert.deepEqual(section?.instructions, [
    `COPY [".imgtool/02-release_info/release.json", "${RELEASE_FILE}"]`,
    `LABEL org.opencontainers.image.version="1.4.2"`,
  ]);
  const file = rendered.context.find((entry: ContextEntry) => entry.kind === "text");
  assert.equal(
    file?.kind === "text" ? file.content : undefined,
    releaseJson({
      version: "1.4.2",
      channel: "stable",
    }),
  );
});

Deno.test("release_info is appended without the engine: the same file and the label", () => {
  const plan = planImage(image(), "default", defaultConfig());
  const split = appendSplit(plan, identifySync(plan));
  assert.ok(split, "the layer was not found appendable");
  assert.deepEqual(split.layers.map((layer) => layer.plugin), ["release_info"]);
  // The commands before it are the engine's.
  assert.equal(split.prefix.layers.length, 2);
  assert.deepEqual(split.layers[0].appended, {
    files: [{
      kind: "text",
      content: '{"channel":"stable","version":"1.4.2"}\n',
      target: RELEASE_FILE,
    }],
    config: { labels: { "org.opencontainers.image.version": "1.4.2" } },
  });
});

Deno.test("release_info refuses a version that is not one", async () => {
  const bad = Image.fromBase("debian:bookworm").withLayer(
    releaseInfo({ version: "1.0 && rm -rf /", channel: "stable" }),
  );
  const problems = await validateImages([planImage(bad, "default", defaultConfig())]);
  assert.equal(problems.length, 1);
  assert.match(problems[0].message, /is not a version or channel name/);
});
