// The identity tree (src/identity_tree.ts): what a tag covers, spelled out. The central check
// recomputes the tag from the tree alone, with the encoding of src/identify.ts and
// src/digest.ts written out again here, so that a tree that leaves out (or adds) anything
// the tag covers fails. The other tests: paths relative to the spec's folder and never
// absolute, the executable bit, the ignore rules, one tree for specs with one tag, and the
// digest cache reused.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { canonicalJson } from "../src/canonical.ts";
import { loadConfig, setActiveConfig } from "../src/config.ts";
import { useDigestCache } from "../src/digest.ts";
import { identify } from "../src/identify.ts";
import {
  type FileFact,
  type IdentityTree,
  identityTree,
  type TreeLayer,
} from "../src/identity_tree.ts";
import { loadSpec } from "../src/load.ts";
import { type ImagePlan, planImage } from "../src/plan.ts";
import { assertNoAbsolutePaths, lineOf, TEMP_PREFIX, withTempDir, writeTree } from "./helpers.ts";

// Digests remembered across runs go to a folder of these tests' own.
const digestCacheDir = Deno.makeTempDirSync({ prefix: `${TEMP_PREFIX}digests-` });
useDigestCache({ dir: digestCacheDir });
globalThis.addEventListener("unload", () => Deno.removeSync(digestCacheDir, { recursive: true }));

/** The plans of the spec at `file`, by export name, with the configuration of its folder. */
async function plansOf(file: string): Promise<Map<string, ImagePlan>> {
  const config = loadConfig({ startDir: join(file, "..") });
  setActiveConfig(config);
  const spec = await loadSpec(file);
  return new Map(
    spec.images.map((exported) => [
      exported.exportName,
      planImage(exported.image, exported.exportName, config),
    ]),
  );
}

async function planOf(file: string, exportName = "default"): Promise<ImagePlan> {
  const plan = (await plansOf(file)).get(exportName);
  assert.ok(plan, `${file} exports ${exportName}`);
  return plan;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const FILE_MODE = (fact: { executable: boolean }) => fact.executable ? 0o755 : 0o644;

/** Compare `/`-separated paths component by component: the order a depth-first walk lists. */
function walkOrder(a: string, b: string): number {
  const [x, y] = [a.split("/"), b.split("/")];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return x.length - y.length;
}

/**
 * The digest of the folder `label` of `layer`, from the tree alone: the encoding of
 * src/digest.ts (a header line, then a JSON line per entry in walk order).
 */
function folderDigest(layer: TreeLayer, label: string): string | null {
  if (layer.missing?.includes(label)) return null;
  const inside = (path: string) => label === "." ? path : path.slice(label.length + 1);
  const under = (path: string) => label === "." || path.startsWith(`${label}/`);
  const entries: [string, unknown[]][] = [
    ...(layer.folders ?? []).filter(under).map((path): [string, unknown[]] => [
      inside(path),
      ["d", inside(path), 0o755],
    ]),
    ...Object.entries(layer.files).filter(([path]) => under(path)).map(
      ([path, fact]): [string, unknown[]] => {
        assert.ok(fact && "sha256" in fact, `${path}: a readable file, not a link`);
        return [inside(path), ["f", inside(path), FILE_MODE(fact), fact.size, fact.sha256]];
      },
    ),
  ];
  entries.sort(([a], [b]) => walkOrder(a, b));
  return sha256(
    ["imgtool-tree/1\n", ...entries.map(([, record]) => `${JSON.stringify(record)}\n`)].join(""),
  );
}

/** The contribution as the chain hashes it: each `$file`/`$tree` path replaced by its digest. */
function withDigests(value: unknown, layer: TreeLayer): unknown {
  if (Array.isArray(value)) return value.map((item) => withDigests(item, layer));
  if (typeof value !== "object" || value === null) return value;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.length === 1 && keys[0] === "$file" && typeof record.$file === "string") {
    const fact = layer.files[record.$file] as FileFact | undefined;
    return {
      $file: fact && "sha256" in fact ? { mode: FILE_MODE(fact), sha256: fact.sha256 } : null,
    };
  }
  if (keys.length === 1 && keys[0] === "$tree" && typeof record.$tree === "string") {
    return { $tree: folderDigest(layer, record.$tree) };
  }
  return Object.fromEntries(keys.map((key) => [key, withDigests(record[key], layer)]));
}

/** The tag, computed from the tree alone with the chain of src/identify.ts. */
function tagFromTree(tree: IdentityTree): string {
  const noRefs = () => {
    throw new Error("a tree holds no file reference objects");
  };
  let parent = sha256(canonicalJson({
    scheme: tree.scheme,
    platforms: tree.image.platforms,
    baseImage: tree.image.baseImage ?? undefined,
    syntax: tree.image.syntax ?? undefined,
  }, noRefs));
  for (const layer of tree.layers) {
    parent = sha256(canonicalJson({
      parent,
      plugin: layer.plugin,
      version: layer.version,
      contribution: withDigests(layer.contribution, layer),
      settings: layer.settings,
    }, noRefs));
  }
  return parent.slice(0, 32);
}

const RICH_SPEC = `import { Image } from "imgtool";

export default Image.fromDebianBase({ name: "rich", registry: "registry.example/team" })
  .withDockerignore("./.dockerignore")
  .withEnvVars({ MODE: "prod", GREETING: "costs $5" })
  .withSourceFolder("./src", "/app/src")
  .withSourceFile("./run.sh", "/usr/local/bin/run")
  .withSourceFile("./not-there.txt")
  .withPipPackages(["a==1", "b"], { extraArgs: "--no-deps", secretMounts: "PIP_TOKEN" })
  .withRequirements("./requirements.txt")
  .withCommands(["echo one", "echo two"])
  .withWorkdir("/app");

export const plain = Image.fromBase("debian:bookworm-slim").withSourceFolder("./src");
`;

const RICH_FILES = {
  "spec.ts": RICH_SPEC,
  ".dockerignore": "**/*.log\nsrc/build/\n",
  "src/app.py": "print('app')\n",
  "src/pkg/__init__.py": "",
  "src/pkg/mod.py": "VALUE = 1\n",
  "src/pkg-data/x.txt": "x\n",
  "src/debug.log": "ignored\n",
  "src/build/out.bin": "ignored\n",
  "run.sh": "#!/bin/sh\necho run\n",
  "requirements.txt": "c==2\n",
};

Deno.test("the tag recomputed from the tree alone is the image's tag: the tree holds all the tag covers", () =>
  withTempDir(async (dir) => {
    await writeTree(dir, RICH_FILES);
    await Deno.chmod(join(dir, "run.sh"), 0o755);
    await Deno.mkdir(join(dir, "src", "empty"));
    const spec = join(dir, "spec.ts");
    for (const [name, plan] of await plansOf(spec)) {
      const tree = await identityTree(plan, spec);
      assert.equal(tagFromTree(tree), (await identify(plan)).tag, `export ${name}`);
    }
    // And a change the tree must show changes the tag it gives.
    const plan = await planOf(spec);
    const before = await identityTree(plan, spec);
    await Deno.writeTextFile(join(dir, "src", "pkg", "mod.py"), "VALUE = 2\n");
    const after = await identityTree(plan, spec);
    assert.notEqual(tagFromTree(after), tagFromTree(before));
    assert.equal(tagFromTree(after), (await identify(plan)).tag);
  }));

Deno.test("a layer names its plugin, method and spec line; files by the SHA-256 of their content", () =>
  withTempDir(async (dir) => {
    await writeTree(dir, RICH_FILES);
    const spec = join(dir, "spec.ts");
    const tree = await identityTree(await planOf(spec), spec);
    const folder = tree.layers.find((layer) => layer.method === "withSourceFolder")!;
    assert.equal(folder.plugin, "source_folder");
    assert.equal(folder.file, "spec.ts");
    assert.equal(folder.line, lineOf(spec, `.withSourceFolder("./src", "/app/src")`));
    const content = await Deno.readFile(join(dir, "src", "app.py"));
    assert.deepEqual(folder.files["src/app.py"], {
      sha256: createHash("sha256").update(content).digest("hex"),
      executable: false,
      size: content.length,
    });
    assert.deepEqual((folder.contribution as { tree: unknown }).tree, { $tree: "src" });
    // The missing file is named as missing, and the layer is still there.
    const missing = tree.layers.find((layer) => layer.missing?.includes("not-there.txt"));
    assert.equal(missing?.method, "withSourceFile");
    // The settings the Debian base reads, and the Python version it reads, are the image's.
    assert.equal(
      tree.layers[0].settings["config.installer"],
      loadConfig({ startDir: dir }).installer,
    );
    assert.equal(tree.image.pythonVersion, loadConfig({ startDir: dir }).pythonVersion.join("."));
  }));

Deno.test("a secret counts by its name: the tree holds the name, never the value", () =>
  withTempDir(async (dir) => {
    await writeTree(dir, RICH_FILES);
    const spec = join(dir, "spec.ts");
    const value = `pip-token-${crypto.randomUUID()}`;
    Deno.env.set("PIP_TOKEN", value);
    try {
      const tree = await identityTree(await planOf(spec), spec);
      const text = JSON.stringify(tree);
      assert.ok(!text.includes(value), "the secret's value is not in the tree");
      const pip = tree.layers.find((layer) => layer.plugin === "pip")!;
      assert.deepEqual((pip.contribution as { secretMounts: unknown }).secretMounts, [
        { $secret: "PIP_TOKEN", asEnvVar: true, mount: null },
      ]);
    } finally {
      Deno.env.delete("PIP_TOKEN");
    }
  }));

Deno.test("paths are relative to the spec's folder (../ allowed); a path above the home folder or via / is <outside>/NAME", () =>
  withTempDir(async (dir) => {
    const home = join(dir, "home", "me");
    await writeTree(dir, {
      "home/me/project/spec.ts": `import { Image } from "imgtool";
export default Image.fromBase("debian:bookworm-slim")
  .withSourceFolder("../shared/lib")
  .withSourceFile(${JSON.stringify(join(dir, "home", "other", "data.txt"))})
  .withSourceFile("/etc/hostname");
`,
      "home/me/shared/lib/util.py": "def f(): pass\n",
      "home/other/data.txt": "someone else's\n",
    });
    const spec = join(home, "project", "spec.ts");
    const saved = Deno.env.get("HOME");
    Deno.env.set("HOME", home);
    try {
      const tree = await identityTree(await planOf(spec), spec);
      const files = tree.layers.flatMap((layer) => Object.keys(layer.files));
      assert.deepEqual(files, [
        "../shared/lib/util.py",
        "<outside>/data.txt",
        "<outside>/hostname",
      ]);
      const text = JSON.stringify(tree);
      assertNoAbsolutePaths(text, [dir, home]);
      assert.ok(!text.includes("other"), "no folder above the home folder is named");
    } finally {
      if (saved === undefined) Deno.env.delete("HOME");
      else Deno.env.set("HOME", saved);
    }
  }));

Deno.test("a file's executable bit is in the tree, and only that of its mode", () =>
  withTempDir(async (dir) => {
    await writeTree(dir, {
      "spec.ts": `import { Image } from "imgtool";
export default Image.fromBase("debian:bookworm-slim").withSourceFolder("./bin");
`,
      "bin/tool": "#!/bin/sh\n",
      "bin/data": "data\n",
      "bin/private": "private\n",
    });
    await Deno.chmod(join(dir, "bin", "tool"), 0o750);
    await Deno.chmod(join(dir, "bin", "data"), 0o664);
    await Deno.chmod(join(dir, "bin", "private"), 0o600);
    const spec = join(dir, "spec.ts");
    const { files } = (await identityTree(await planOf(spec), spec)).layers[1];
    const executable = (path: string) => (files[path] as { executable: boolean }).executable;
    assert.deepEqual(
      ["bin/tool", "bin/data", "bin/private"].map(executable),
      [true, false, false],
    );
  }));

Deno.test("files and folders the ignore rules leave out are not in the tree; empty folders are", () =>
  withTempDir(async (dir) => {
    await writeTree(dir, RICH_FILES);
    await Deno.mkdir(join(dir, "src", "empty"));
    const spec = join(dir, "spec.ts");
    const folder = (await identityTree(await planOf(spec), spec)).layers
      .find((layer) => layer.method === "withSourceFolder")!;
    assert.deepEqual(Object.keys(folder.files), [
      "src/app.py",
      "src/pkg-data/x.txt",
      "src/pkg/__init__.py",
      "src/pkg/mod.py",
    ]);
    assert.deepEqual(folder.folders, ["src/empty", "src/pkg", "src/pkg-data"]);
  }));

Deno.test("specs with one tag have one tree: names and spellings that do not count change nothing", () =>
  withTempDir(async (dir) => {
    const spec = (name: string, src: string, workdir: string) =>
      `import { Image } from "imgtool";
export default Image.fromBase("debian:bookworm-slim").clone({ name: "${name}", registry: "r.example/${name}" })
  .withSourceFolder("${src}")
  .withWorkdir("${workdir}");
`;
    await writeTree(dir, {
      "a.ts": spec("one", "./src/", "/app//"),
      "b.ts": spec("two", "src", "/app"),
      "c.ts": spec("one", "./src/", "/srv"),
      "src/app.py": "print(1)\n",
    });
    const [a, b, c] = ["a.ts", "b.ts", "c.ts"].map((name) => join(dir, name));
    const [planA, planB, planC] = await Promise.all([a, b, c].map((file) => planOf(file)));
    const tags = await Promise.all([planA, planB, planC].map(async (p) => (await identify(p)).tag));
    assert.equal(tags[0], tags[1], "a and b have one tag");
    assert.notEqual(tags[0], tags[2], "c differs in its workdir");
    const [treeA, treeB, treeC] = await Promise.all([
      identityTree(planA, a),
      identityTree(planB, b),
      identityTree(planC, c),
    ]);
    // The spec file is a label; the rest is the same.
    const unlabelled = (tree: IdentityTree) => ({
      ...tree,
      layers: tree.layers.map((layer) => ({ ...layer, file: null })),
    });
    assert.deepEqual(unlabelled(treeA), unlabelled(treeB));
    assert.notDeepEqual(unlabelled(treeA), unlabelled(treeC));
  }));

Deno.test("the tree reuses the digests the identity took: no file inside a folder gets a cache entry of its own", () =>
  withTempDir(async (dir) => {
    await writeTree(dir, RICH_FILES);
    const cache = join(dir, ".digests");
    const entries = () => [...Deno.readDirSync(cache)].filter((e) => e.name.endsWith(".idx"));
    const spec = join(dir, "spec.ts");
    const plan = await planOf(spec);
    try {
      // Files just written are too new to be remembered: the identity remembers none.
      useDigestCache({ dir: cache });
      await identify(plan);
      // Ten seconds on, they are settled. The tree remembers them where the identity would:
      // one entry per folder and per single file the layers name.
      useDigestCache({ dir: cache, now: () => Date.now() + 10_000 });
      await identityTree(plan, spec);
      assert.equal(entries().length, 3, "src, run.sh and requirements.txt");
      // Once the identity has remembered them, a tree after it reads nothing more.
      await identify(plan);
      await identityTree(plan, spec, { afterIdentify: true });
      assert.equal(entries().length, 3);
    } finally {
      useDigestCache({ dir: digestCacheDir });
    }
  }));
