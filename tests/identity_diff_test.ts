// What `imgtool explain` compares (src/identity_diff.ts): the identity trees of two versions
// of a spec, each difference said once, naming the layer (its place, method and spec line,
// read from the spec file here) and the change. Trees are made from real specs on disk.
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Config, loadConfig, setActiveConfig } from "../src/config.ts";
import { useDigestCache } from "../src/digest.ts";
import {
  compareDependencies,
  compareTrees,
  describeDifference,
  type Difference,
} from "../src/identity_diff.ts";
import { type IdentityTree, identityTree } from "../src/identity_tree.ts";
import { loadSpec } from "../src/load.ts";
import { planImage, type PlanOverrides } from "../src/plan.ts";
import { lineOf, withTempDir, writeTree } from "./helpers.ts";

useDigestCache({ dir: undefined });

/** The tree of the default export of the spec at `file`. */
async function treeOf(
  file: string,
  options: { overrides?: PlanOverrides; config?: (config: Config) => Config } = {},
): Promise<IdentityTree> {
  const loaded = loadConfig({ startDir: join(file, "..") });
  const config = options.config?.(loaded) ?? loaded;
  setActiveConfig(config);
  const spec = await loadSpec(file);
  return await identityTree(
    planImage(spec.images[0].image, "default", config, options.overrides),
    spec.file,
  );
}

const lines = (differences: readonly Difference[]) => differences.map(describeDifference);

const SPEC = (pip: string, extra = "") =>
  `import { Image } from "imgtool";
export default Image.fromBase("debian:bookworm-slim").clone({ name: "app" })
  .withEnvVars({ MODE: "prod" })
  .withPipPackages(["a==1"], ${pip})${extra}
  .withSourceFolder("./src", "/app/src")
  .withCommands("make");
`;

Deno.test("explain names each change once, with the layer's place, method and spec line", () =>
  withTempDir(async (dir) => {
    await writeTree(dir, {
      "before/spec.ts": SPEC(`{ extraArgs: "--no-deps" }`),
      "before/src/app.py": "print(1)\n",
      "before/src/old.py": "old\n",
      "before/src/tool.sh": "#!/bin/sh\n",
      "after/spec.ts": SPEC(`{ extraArgs: "--pre" }`),
      "after/src/app.py": "print(2)\n",
      "after/src/new.py": "new\n",
      "after/src/tool.sh": "#!/bin/sh\n",
    });
    await Deno.chmod(join(dir, "after", "src", "tool.sh"), 0o755);
    await Deno.mkdir(join(dir, "after", "src", "empty"));
    const [before, after] = ["before", "after"].map((side) => join(dir, side, "spec.ts"));
    const pipLine = lineOf(after, "withPipPackages");
    const srcLine = lineOf(after, "withSourceFolder");
    const differences = compareTrees(await treeOf(before), await treeOf(after));
    assert.deepEqual(lines(differences), [
      `layer 2 withPipPackages (spec.ts:${pipLine}): option extraArgs: "--no-deps" → "--pre"`,
      `layer 3 withSourceFolder (spec.ts:${srcLine}): file changed: src/app.py`,
      `layer 3 withSourceFolder (spec.ts:${srcLine}): file added: src/new.py`,
      `layer 3 withSourceFolder (spec.ts:${srcLine}): file removed: src/old.py`,
      `layer 3 withSourceFolder (spec.ts:${srcLine}): file mode changed: src/tool.sh (now executable)`,
      `layer 3 withSourceFolder (spec.ts:${srcLine}): folder added: src/empty`,
    ]);
    assert.deepEqual(differences.map((d) => d.kind), [
      "option",
      "file-changed",
      "file-added",
      "file-removed",
      "mode-changed",
      "folder-added",
    ]);
    // The same spec compared with itself: nothing.
    assert.deepEqual(compareTrees(await treeOf(after), await treeOf(after)), []);
  }));

Deno.test("a layer added or removed is one difference, and the layers after it are paired as before", () =>
  withTempDir(async (dir) => {
    await writeTree(dir, {
      "a/spec.ts": SPEC("{}"),
      "b/spec.ts": SPEC("{}", `\n  .withWorkdir("/app")`),
      "a/src/app.py": "print(1)\n",
      "b/src/app.py": "print(1)\n",
    });
    const [a, b] = ["a", "b"].map((side) => join(dir, side, "spec.ts"));
    const workdirLine = lineOf(b, "withWorkdir");
    assert.deepEqual(lines(compareTrees(await treeOf(a), await treeOf(b))), [
      `layer 3 withWorkdir (spec.ts:${workdirLine}): layer added (workdir)`,
    ]);
    assert.deepEqual(lines(compareTrees(await treeOf(b), await treeOf(a))), [
      `layer 3 withWorkdir (spec.ts:${workdirLine}): layer removed (workdir; in REF's spec)`,
    ]);
  }));

Deno.test("platforms, the Python version and configuration that counts are named; a setting a plugin repeats is said once", () =>
  withTempDir(async (dir) => {
    const spec = (version: string) =>
      `import { Image } from "imgtool";
export default Image.fromDebianBase({ name: "app", pythonVersion: [3, ${version}] })
  .withPipPackages("a==1");
`;
    await writeTree(dir, { "a/spec.ts": spec("11"), "b/spec.ts": spec("12") });
    const [a, b] = ["a", "b"].map((side) => join(dir, side, "spec.ts"));
    const baseLine = lineOf(b, "fromDebianBase");
    const pipLine = lineOf(b, "withPipPackages");
    const before = await treeOf(a, { overrides: { platforms: ["linux/amd64"] } });
    const after = await treeOf(b, {
      overrides: { platforms: ["linux/amd64", "linux/arm64"] },
      config: (config) => ({
        ...config,
        installer: "uv",
        cacheMounts: !config.cacheMounts,
        images: { ...config.images, uv: "registry.example/uv:9.9.9" },
      }),
    });
    const config = loadConfig({ startDir: dir });
    const described = lines(compareTrees(before, after));
    const base = `layer 0 Image.fromDebianBase (spec.ts:${baseLine})`;
    const pip = `layer 1 withPipPackages (spec.ts:${pipLine})`;
    const python = (minor: number) =>
      JSON.stringify(config.images.python.replace("{major}", "3").replace("{minor}", `${minor}`));
    const cache = `setting config.cacheMounts: ${config.cacheMounts} → ${!config.cacheMounts}`;
    // Each setting once per layer that reads it (the base repeats some in its options: said
    // once, as the setting); the pip layer on a base with uv reads no uv image.
    assert.deepEqual(described, [
      "image: platforms linux/amd64 → linux/amd64, linux/arm64",
      `${base}: Python version "3.11" → "3.12"`,
      `${base}: option pythonImage: ${python(11)} → ${python(12)}`,
      `${base}: ${cache}`,
      `${base}: tool version config.images.uv: ${
        JSON.stringify(config.images.uv)
      } → "registry.example/uv:9.9.9"`,
      `${pip}: ${cache}`,
    ]);
  }));

Deno.test("a folder the spec names by another path, with the same files, is one move, not every file", () =>
  withTempDir(async (dir) => {
    const spec = (src: string) =>
      `import { Image } from "imgtool";
export default Image.fromBase("debian:bookworm-slim").withSourceFolder("${src}", "/app");
`;
    await writeTree(dir, {
      "a/spec.ts": spec("./src"),
      "a/src/app.py": "print(1)\n",
      "b/spec.ts": spec("./code"),
      "b/code/app.py": "print(1)\n",
      "b/code/more.py": "more\n",
    });
    const [a, b] = ["a", "b"].map((side) => join(dir, side, "spec.ts"));
    assert.deepEqual(lines(compareTrees(await treeOf(a), await treeOf(b))), [
      `layer 1 withSourceFolder (spec.ts:2): path moved: "src" → "code"`,
      // The folder's name is copied into the image with it: it counts.
      `layer 1 withSourceFolder (spec.ts:2): option name: "src" → "code"`,
      `layer 1 withSourceFolder (spec.ts:2): file added: code/more.py`,
    ]);
  }));

Deno.test("a plugin version, a locked base digest and a file gone missing are named", () => {
  const layer = {
    index: 1,
    plugin: "custom",
    version: 1,
    method: "withLayer",
    file: "spec.ts",
    line: 4,
    contribution: { file: { $file: "conf.toml" } },
    settings: { "lock.python:3.12": "sha256:aaa" },
    files: { "conf.toml": { sha256: "ab".repeat(32), executable: false, size: 3 } },
  };
  const tree: IdentityTree = {
    format: "imgtool-identity-tree/1",
    scheme: "imgtool-identity/2",
    image: {
      platforms: ["linux/amd64"],
      baseImage: null,
      syntax: null,
      pythonVersion: null,
      base: null,
    },
    layers: [{ ...layer, index: 0, plugin: "base", method: "Image.fromBase", line: 2 }, layer],
  };
  const now: IdentityTree = {
    ...tree,
    layers: [tree.layers[0], {
      ...layer,
      version: 2,
      settings: { "lock.python:3.12": "sha256:bbb" },
      files: {},
      missing: ["conf.toml"],
    }],
  };
  assert.deepEqual(lines(compareTrees(tree, now)), [
    "layer 1 withLayer (spec.ts:4): plugin custom version 1 → 2",
    "layer 1 withLayer (spec.ts:4): base python:3.12 moved: sha256:aaa → sha256:bbb",
    "layer 1 withLayer (spec.ts:4): missing now: conf.toml",
  ]);
  // A base whose tag now names another digest (no lock): named at the layer that uses it.
  const [a, b] = [`sha256:${"a".repeat(64)}`, `sha256:${"b".repeat(64)}`];
  const withBase: IdentityTree = {
    ...tree,
    layers: [{ ...tree.layers[0], contribution: { imageUri: "python:3.12" } }, layer],
  };
  assert.deepEqual(
    lines(compareDependencies(
      [{ reference: "python:3.12", digest: a }, { reference: "gone:1", digest: a }],
      [{ reference: "python:3.12", digest: b }, { reference: "new:1", digest: b }],
      withBase,
    )),
    [
      `layer 0 Image.fromBase (spec.ts:2): base python:3.12 moved: ${a.slice(0, 19)} → ${
        b.slice(0, 19)
      }`,
    ],
  );
});
