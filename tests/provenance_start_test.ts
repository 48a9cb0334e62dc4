// The provenance record started before its image is built (src/provenance.ts,
// `startProvenance`) and the JSON of identity trees written from their walks
// (src/identity_tree.ts, `treeJson`): the record's bytes are what `JSON.stringify` writes of
// the statement `provenanceStatement` makes, whichever way they were made; the check that the
// files did not change still comes after the build; a build that fails leaves nothing
// unhandled. Against the stand-in registry (tests/fake_registry.ts).
import assert from "node:assert/strict";
import { join } from "node:path";
import { definePlugin, Image } from "../mod.ts";
import { defaultConfig } from "../src/config.ts";
import { ImgtoolError } from "../src/errors.ts";
import { identify } from "../src/identify.ts";
import { identityTree, listedTree, treeJson } from "../src/identity_tree.ts";
import { type ImagePlan, planImage } from "../src/plan.ts";
import {
  provenanceStatement,
  recordProvenance,
  resolveDependencies,
  startProvenance,
} from "../src/provenance.ts";
import { RegistryClient } from "../src/registry/client.ts";
import { type FakeRegistry, startFakeRegistry } from "./fake_registry.ts";
import { planIn, withTempDir, writeTree } from "./helpers.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** A project whose image starts from `team/base:1` in `registry` and pushes to `team/app`. */
function project(registry: FakeRegistry): Record<string, string> {
  return {
    "imgtool.toml": `registry = "${registry.host}/team"\n`,
    "spec.ts": `import { Image } from "imgtool";
export default Image.fromBase("${registry.host}/team/base:1").clone({ name: "app" })
  .withSourceFolder("./src", "/app/src")
  .withSourceFile("./main.py", "/app/main.py");
`,
    "main.py": "print('main')\n",
    "src/app.py": "print('app')\n",
    "src/a-b.py": "# sorts after the folder a\n",
    "src/a/x.py": "x = 1\n",
    'src/quote"and\\back.txt': "odd name\n",
    "src/ünïcödé.txt": "unicode name\n",
  };
}

/** A project in a new folder, its base in a new stand-in and its image "pushed" there. */
function withPushedImage(
  body: (context: {
    dir: string;
    registry: FakeRegistry;
    client: RegistryClient;
    plan: ImagePlan;
    spec: string;
    imageDigest: string;
  }) => Promise<void>,
  extraFiles: Record<string, string> = {},
): Promise<void> {
  return withTempDir(async (dir) => {
    const registry = await startFakeRegistry();
    try {
      await writeTree(dir, { ...project(registry), ...extraFiles });
      await registry.addImage("team/base", "1", "linux/amd64");
      const { plan, spec } = await planIn(dir);
      const { tag } = await identify(plan);
      const imageDigest = await registry.addImage("team/app", tag, "linux/amd64");
      await body({ dir, registry, client: new RegistryClient(), plan, spec, imageDigest });
    } finally {
      await registry.close();
    }
  });
}

/** The statement bytes the stand-in stores for the record `digest` of `team/app`. */
function storedStatement(registry: FakeRegistry, digest: string): string {
  const artifact = registry.manifest("team/app", digest)!;
  const [layer] = artifact.json.layers as { digest: string }[];
  return new TextDecoder().decode(registry.blob(layer.digest));
}

/** What `JSON.stringify` writes of the statement `provenanceStatement` makes now. */
async function expectedStatement(
  client: RegistryClient,
  registry: FakeRegistry,
  plan: ImagePlan,
  spec: string,
  imageDigest: string,
): Promise<string> {
  return JSON.stringify(provenanceStatement({
    repository: `${registry.host}/team/app`,
    digest: imageDigest,
    tag: (await identify(plan)).tag,
    tree: await identityTree(plan, spec),
    dependencies: await resolveDependencies(client, plan),
  }));
}

Deno.test("treeJson writes what JSON.stringify writes of the identity tree: odd names, links, empty folders, numbers as names", () =>
  withTempDir(async (dir) => {
    await writeTree(dir, {
      "src/app.py": "print('app')\n",
      "src/a-b.py": "a\n",
      "src/a/x.py": "x\n",
      "src/a b/y.py": "y\n",
      'src/quote"and\\back.txt': "q\n",
      "src/tab\tand\nnewline": "t\n",
      "src/ünïcödé €.txt": "u\n",
      "src/emoji 😀 and del\u007f.txt": "e\n",
      "src/control\u0001.txt": "c\n",
      "src/2": "two\n",
      "src/10": "ten\n",
      "top/1": "one at the top\n",
      "top/10": "ten at the top\n",
      "top/2": "two at the top\n",
      "top/x.txt": "x at the top\n",
      "single.txt": "one file\n",
      "plain/a-b.py": "a\n",
      "plain/a/x.py": "x\n",
      "plain/a.b/y.py": "y\n",
      "plain/zero": "",
      "plain/big.bin": "b".repeat(1_234_567),
    });
    await Deno.mkdir(join(dir, "src", "empty"));
    await Deno.symlink("a/x.py", join(dir, "src", "link"));
    await Deno.writeTextFile(join(dir, "src", "run.sh"), "#!/bin/sh\n", { mode: 0o755 });
    await Deno.chmod(join(dir, "src", "run.sh"), 0o755);
    // Names that need no escaping, one byte a character: written in one go.
    await Deno.mkdir(join(dir, "plain", "empty"));
    await Deno.symlink("../single.txt", join(dir, "plain", "link"));
    await Deno.writeTextFile(join(dir, "plain", "run.sh"), "#!/bin/sh\n");
    await Deno.chmod(join(dir, "plain", "run.sh"), 0o755);
    const image = Image.fromBase("debian:bookworm")
      .withSourceFolder(join(dir, "src"), "/app/src")
      .withSourceFile(join(dir, "single.txt"), "/app/single.txt")
      .withSourceFolder(join(dir, "plain"), "/app/plain")
      .withWorkdir("/app");
    const plan = planImage(image, "default", defaultConfig());
    // The spec in `top`: the folder `top` is `.`, its names are the paths, and names that are
    // numbers come first in an object's keys.
    const topImage = Image.fromBase("debian:bookworm").withSourceFolder(join(dir, "top"), "/top");
    const topPlan = planImage(topImage, "default", defaultConfig());
    const cases = [
      { planned: plan, spec: join(dir, "spec.ts") },
      { planned: topPlan, spec: join(dir, "top", "spec.ts") },
    ];
    for (const { planned, spec } of cases) {
      const expected = JSON.stringify(await identityTree(planned, spec));
      assert.equal(text(treeJson(await listedTree(planned, spec))), expected);
      // From the walks the identity made, as a build lists it.
      await identify(planned);
      assert.equal(
        text(treeJson(await listedTree(planned, spec, { afterIdentify: true }))),
        expected,
      );
    }
    const tree = JSON.parse(text(treeJson(await listedTree(plan, join(dir, "spec.ts")))));
    const files = tree.layers[1].files;
    assert.ok("src/link" in files && "symlink" in files["src/link"], "a link by its target");
    assert.equal(files["src/run.sh"].executable, true);
    assert.ok(tree.layers[1].folders.includes("src/empty"));
    const plain = tree.layers[3].files;
    assert.equal(plain["plain/big.bin"].size, 1_234_567);
    assert.equal(plain["plain/zero"].size, 0);
    assert.equal(plain["plain/run.sh"].executable, true);
    assert.ok("symlink" in plain["plain/link"]);
    const topFiles =
      JSON.parse(text(treeJson(await listedTree(topPlan, join(dir, "top", "spec.ts")))))
        .layers[1].files;
    assert.deepEqual(Object.keys(topFiles), ["1", "2", "10", "x.txt"]);
  }));

Deno.test("a record started before the build and pushed after holds the bytes JSON.stringify writes of its statement", () =>
  withPushedImage(async ({ registry, client, plan, spec, imageDigest }) => {
    const identity = await identify(plan);
    const recording = startProvenance(client, plan, identity, spec);
    // The build would run here.
    const pushed = await recording.push();
    assert.equal(
      storedStatement(registry, pushed.digest),
      await expectedStatement(client, registry, plan, spec, imageDigest),
    );
    // The same record as recordProvenance makes after the build.
    const after = await recordProvenance(client, plan, identity, spec);
    assert.equal(after.digest, pushed.digest);
  }));

Deno.test("a record of thousands of files is written into a temporary file and uploaded from it: the same bytes, no file left", async () => {
  // 9,000 files: a predicate of more than 1 MiB, which is never whole in memory.
  const files = Object.fromEntries(
    Array.from({ length: 9000 }, (_, i) => [`src/many/${i % 30}/file-${i}.py`, `x = ${i}\n`]),
  );
  const tmp = await Deno.makeTempDir({ prefix: "imgtool-tmpdir-" });
  const before = Deno.env.get("TMPDIR");
  Deno.env.set("TMPDIR", tmp);
  try {
    await withPushedImage(async ({ registry, client, plan, spec, imageDigest }) => {
      const identity = await identify(plan);
      const pushed = await startProvenance(client, plan, identity, spec).push();
      const stored = storedStatement(registry, pushed.digest);
      assert.ok(stored.length > 1 << 20, `${stored.length} bytes`);
      assert.equal(stored, await expectedStatement(client, registry, plan, spec, imageDigest));
      const after = await recordProvenance(client, plan, identity, spec);
      assert.equal(after.digest, pushed.digest);
      // It does go through a file: where no temporary file can be made, the record fails.
      Deno.env.set("TMPDIR", join(tmp, "missing"));
      const error = await startProvenance(client, plan, identity, spec).push().then(
        () => assert.fail("expected an error"),
        (e: unknown) => e,
      );
      Deno.env.set("TMPDIR", tmp);
      assert.ok(error instanceof ImgtoolError, String(error));
      assert.match(error.message, /provenance record was not: .*writing the provenance record/);
    }, files);
    assert.deepEqual([...Deno.readDirSync(tmp)], [], "no temporary file is left");
  } finally {
    if (before === undefined) Deno.env.delete("TMPDIR");
    else Deno.env.set("TMPDIR", before);
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("recordProvenance pushes the bytes JSON.stringify writes of its statement", () =>
  withPushedImage(async ({ registry, client, plan, spec, imageDigest }) => {
    const pushed = await recordProvenance(client, plan, await identify(plan), spec);
    assert.equal(
      storedStatement(registry, pushed.digest),
      await expectedStatement(client, registry, plan, spec, imageDigest),
    );
  }));

Deno.test("given the image's descriptor, the record does not ask the registry for the image", () =>
  withPushedImage(async ({ registry, client, plan, spec, imageDigest }) => {
    const identity = await identify(plan);
    const image = registry.manifest("team/app", imageDigest)!;
    const size = new TextEncoder().encode(JSON.stringify(image.json)).length;
    const recording = startProvenance(client, plan, identity, spec);
    const before = registry.requests.length;
    const pushed = await recording.push({ mediaType: image.mediaType, digest: imageDigest, size });
    const asked = registry.requests.slice(before);
    assert.ok(!asked.some((line) => line.startsWith(`GET /v2/team/app/manifests/${identity.tag}`)));
    const artifact = registry.manifest("team/app", pushed.digest)!;
    assert.deepEqual(artifact.json.subject, {
      mediaType: image.mediaType,
      digest: imageDigest,
      size,
    });
    assert.equal(
      storedStatement(registry, pushed.digest),
      await expectedStatement(client, registry, plan, spec, imageDigest),
    );
  }));

Deno.test("a file changed after the record was started fails the image when it is pushed, and nothing is written to the registry", () =>
  withPushedImage(async ({ dir, registry, client, plan, spec }) => {
    const identity = await identify(plan);
    const recording = startProvenance(client, plan, identity, spec);
    // The build runs; a file changes meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 10));
    await Deno.writeTextFile(join(dir, "src", "app.py"), "print('changed')\n");
    const before = registry.requests.length;
    await assert.rejects(recording.push(), (error: unknown) => {
      assert.ok(error instanceof ImgtoolError && error.exitCode === 1);
      assert.match(error.message, /changed while it was built/);
      return true;
    });
    const written = registry.requests.slice(before)
      .filter((line) => /^(PUT|POST|PATCH|DELETE) /.test(line));
    assert.deepEqual(written, []);
    assert.deepEqual(registry.tags("team/app").filter((tag) => tag.startsWith("sha256-")), []);
  }));

Deno.test("an image whose files all went in checked gets its record without the walk after the build", () =>
  withPushedImage(async ({ dir, registry, client, plan, spec, imageDigest }) => {
    const identity = await identify(plan);
    const expected = await expectedStatement(client, registry, plan, spec, imageDigest);
    const recording = startProvenance(client, plan, identity, spec);
    // Changed after the files went in: the image holds what the tag says, and so does the
    // record (the listing the tag was computed from); a walk would have failed the image.
    await new Promise((resolve) => setTimeout(resolve, 10));
    await Deno.writeTextFile(join(dir, "src", "app.py"), "print('changed')\n");
    const pushed = await recording.push(undefined, { filesChecked: true });
    assert.equal(storedStatement(registry, pushed.digest), expected);
  }));

Deno.test("a record started for a build that fails, and never pushed, leaves no rejection unhandled", async () => {
  let failing = false;
  const flaky = definePlugin<{ readonly n: number }>({
    name: "flaky_test",
    identify: (options) => {
      if (failing) throw new Error("the identify hook failed");
      return { n: options.n };
    },
    render: () => ({ instructions: ["RUN true"] }),
  }, { module: import.meta.url });
  const image = Image.fromBase("127.0.0.1:9/base:1").clone({ name: "app" })
    .withLayer(flaky.layer({ n: 1 }));
  const plan = planImage(image, "default", defaultConfig());
  const identity = await identify(plan);
  failing = true;
  // Its tree cannot be made, and the registry is not there: the build fails, no push.
  const recording = startProvenance(
    new RegistryClient({ retries: 0 }),
    plan,
    identity,
    "/x/spec.ts",
  );
  await new Promise((resolve) => setTimeout(resolve, 50));
  // Asked for anyway, it fails with the hook's error.
  await assert.rejects(recording.push(), /the identify hook failed/);
});
