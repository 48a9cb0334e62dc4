import assert from "node:assert/strict";
import {
  defaultConfig,
  definePlugin,
  identify,
  Image,
  isImage,
  planImage,
  Secret,
  setActiveConfig,
} from "../mod.ts";
import { fixtureConfig } from "./helpers.ts";

setActiveConfig(defaultConfig());

Deno.test("with* methods return a new image and leave the old one unchanged", () => {
  const base = Image.fromDebianBase({ name: "app" });
  const uri = base.uri;
  const steps: [string, (image: Image) => Image][] = [
    ["withAptPackages", (i) => i.withAptPackages("git")],
    ["withCommands", (i) => i.withCommands("true")],
    ["withDockerignore", (i) => i.withDockerignore("./.dockerignore")],
    ["withEnvVars", (i) => i.withEnvVars({ A: "1" })],
    ["withPipPackages", (i) => i.withPipPackages("numpy")],
    ["withPoetryProject", (i) => i.withPoetryProject("./pyproject.toml")],
    ["withRequirements", (i) => i.withRequirements("./requirements.txt")],
    ["withSourceFile", (i) => i.withSourceFile("./main.py")],
    ["withSourceFolder", (i) => i.withSourceFolder("./src")],
    ["withUvProject", (i) => i.withUvProject("./pyproject.toml")],
    ["withWorkdir", (i) => i.withWorkdir("/app")],
  ];
  for (const [method, step] of steps) {
    const next = step(base);
    assert.notEqual(next, base);
    assert.equal(next.layers.length, 2, method);
    assert.equal(next.layers[1].origin.method, method);
    assert.notEqual(next.uri, uri, `${method} changes the uri`);
    assert.equal(base.layers.length, 1, `${method} left the old image alone`);
    assert.equal(base.uri, uri);
  }
});

Deno.test("images are frozen, and so are the options they were given", () => {
  const packages = ["git"];
  const vars: Record<string, string> = { A: "1" };
  const image = Image.fromBase("debian").withAptPackages(packages).withEnvVars(vars);
  const uri = image.uri;
  packages.push("curl");
  vars.B = "2";
  assert.equal(image.uri, uri, "changing the caller's values later changes nothing");
  assert.ok(Object.isFrozen(image));
  assert.ok(Object.isFrozen(image.spec));
  assert.ok(Object.isFrozen(image.layers[1]));
  assert.ok(Object.isFrozen(image.layers[1].options));
});

Deno.test("clone() changes the registry, name, base image and Python version", async () => {
  const config = fixtureConfig();
  const tag = async (image: Image) => (await identify(planImage(image, "default", config))).tag;
  const base = Image.fromDebianBase({ name: "base", registry: "ghcr.io/acme" }).withAptPackages(
    "git",
  );
  const renamed = base.clone({ name: "copy", registry: "registry.internal:5000/team" });
  assert.equal(renamed.name, "copy");
  assert.equal(renamed.registry, "registry.internal:5000/team");
  assert.equal(await tag(renamed), await tag(base), "name and registry do not change the tag");
  assert.match(renamed.uri, /^registry\.internal:5000\/team\/copy:[0-9a-f]{32}$/);
  assert.equal(base.name, "base");
  const rebased = base.clone({ baseImage: "mirror.internal/python:3.12" });
  assert.notEqual(await tag(rebased), await tag(base));
  assert.equal(rebased.spec.baseImage, "mirror.internal/python:3.12");
  const older = base.clone({ pythonVersion: [3, 10] });
  assert.deepEqual(older.spec.pythonVersion, [3, 10]);
  assert.notEqual(await tag(older), await tag(base));
  const secret = base.clone({ registrySecret: "REGISTRY_TOKEN" });
  assert.equal(secret.spec.registrySecret?.id, "REGISTRY_TOKEN");
  const kept = base.clone();
  assert.notEqual(kept, base);
  assert.equal(kept.uri, base.uri);
  assert.deepEqual(kept.layers, base.layers);
});

Deno.test("clone({ addlLayer }) adds the layer at the end", () => {
  const base = Image.fromBase("debian").withWorkdir("/app");
  const extra = Image.fromBase("x").withEnvVars({ A: "1" }).layers[1];
  const cloned = base.clone({ addlLayer: extra, name: "extended" });
  assert.equal(cloned.layers.length, 3);
  assert.equal(cloned.layers[2], extra);
  assert.equal(cloned.name, "extended");
  assert.equal(base.layers.length, 2);
});

Deno.test("withLocalV2() marks the image for the local builder without changing its identity", () => {
  const image = Image.fromDebianBase({ name: "app" }).withPipPackages("numpy");
  const local = image.withLocalV2();
  assert.equal(local.spec.localBuilder, true);
  assert.equal(image.spec.localBuilder, false, "the old image is unchanged");
  assert.equal(local.uri, image.uri);
  assert.equal(local.layers, image.layers);
  assert.equal(local.withAptPackages("git").spec.localBuilder, true, "later layers keep it");
});

Deno.test("fromBase() with no layers is the base image itself", () => {
  assert.equal(Image.fromBase("debian:bookworm-slim").uri, "debian:bookworm-slim");
  assert.equal(Image.fromBase("debian:bookworm-slim").identifier, "bookworm-slim");
  const pinned = `ghcr.io/acme/tool@sha256:${"a".repeat(64)}`;
  assert.equal(Image.fromBase(pinned).uri, pinned);
  assert.equal(Image.fromBase("localhost:5000/base").identifier, "latest");
  assert.equal(Image.fromBase("debian").withLocalV2().uri, "debian");
  const built = Image.fromBase("ghcr.io/acme/tool:1").withWorkdir("/app");
  assert.match(built.uri, /^tool:[0-9a-f]{32}$/, "with layers, it is named after its base");
});

Deno.test("isImage() recognizes images by their brand, not their shape", () => {
  const image = Image.fromBase("debian");
  assert.equal(isImage(image), true);
  assert.equal(isImage({}), false);
  assert.equal(isImage(null), false);
  assert.equal(isImage("debian"), false);
  assert.equal(isImage({ uri: image.uri, layers: image.layers, spec: image.spec }), false);
  // An image from another copy of imgtool (as in a compiled binary) carries the same brand.
  const foreign = { [Symbol.for("imgtool.image.spec")]: image.spec };
  assert.equal(isImage(foreign), true);
});

Deno.test("withLayer() takes only layers, made by built-in and custom plugins alike", () => {
  const stamp = definePlugin<{ readonly text: string }>({
    name: "stamp",
    render: (options) => ({ instructions: [`LABEL stamp=${JSON.stringify(options.text)}`] }),
  });
  const image = Image.fromBase("debian").withLayer(stamp.layer({ text: "x" }));
  assert.equal(image.layers[1].plugin.name, "stamp");
  assert.equal(image.layers[1].origin.method, "withLayer(stamp)");
  assert.throws(
    () => Image.fromBase("debian").withLayer({ plugin: stamp } as never),
    /withLayer: expected a layer made by a plugin's layer\(\) function/,
  );
  assert.throws(
    () => definePlugin({ name: "Bad-Name", render: () => ({ instructions: [] }) }),
    TypeError,
  );
});

Deno.test("secretMounts take a name, a Secret, or a list of them", () => {
  const ids = (image: Image) =>
    (image.layers[1].options as { secretMounts: Secret[] }).secretMounts.map((s) => s.id);
  const base = Image.fromBase("debian");
  assert.deepEqual(ids(base.withAptPackages("git", { secretMounts: "A" })), ["A"]);
  assert.deepEqual(
    ids(base.withCommands("true", { secretMounts: new Secret({ key: "K", group: "G" }) })),
    ["G_K"],
  );
  assert.deepEqual(
    ids(base.withPipPackages("x", { secretMounts: ["A", new Secret({ key: "B" })] })),
    ["A", "B"],
  );
});

Deno.test("a spec line is remembered for each layer, and relative paths resolve against its folder", () => {
  const image = Image.fromBase("debian").withSourceFile("./main.py");
  const origin = image.layers[1].origin;
  assert.equal(origin.file, new URL(import.meta.url).pathname);
  assert.equal(origin.dir, new URL(".", import.meta.url).pathname.replace(/\/$/, ""));
  assert.equal(typeof origin.line, "number");
  const plan = planImage(image, "default", defaultConfig());
  assert.equal(plan.layers[1].context.resolve("./main.py"), `${origin.dir}/main.py`);
});
