// The identity tree lists a folder from the walk that takes its digest (src/digest.ts
// `walkedTree`), in one pass: after the identity, from the very walk the identity made. These
// tests hold that listing against the one it replaced, made here again independently: a
// second walk of the folder (`listTree`) with every file read and hashed now. The trees must
// be the same, byte for byte as JSON (key order included), for ignore rules (re-includes
// too), symbolic links, executable bits, empty folders, names whose path order is not walk
// order, a file named `__proto__`, and files too new for the digest cache to remember.
// `explain` compares a record's tree with the tree listed on demand (`listedTree`): it must
// find what a comparison with the tree as a record finds.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { loadConfig, setActiveConfig } from "../src/config.ts";
import { listTree, useDigestCache } from "../src/digest.ts";
import { identify } from "../src/identify.ts";
import { compareTrees, describeDifference } from "../src/identity_diff.ts";
import {
  type FileFact,
  FileListing,
  identityTree,
  listedTree,
  type TreeLayer,
} from "../src/identity_tree.ts";
import { loadSpec } from "../src/load.ts";
import { type ImagePlan, planImage } from "../src/plan.ts";
import { TEMP_PREFIX, withTempDir, writeTree } from "./helpers.ts";

const digestCacheDir = Deno.makeTempDirSync({ prefix: `${TEMP_PREFIX}digests-` });
useDigestCache({ dir: digestCacheDir });
globalThis.addEventListener("unload", () => Deno.removeSync(digestCacheDir, { recursive: true }));

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

const sha256 = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");

/**
 * The files and folders of the folder `root` (named `label` in the tree) as the identity tree
 * listed them before: a walk of its own, every file read and hashed now.
 */
function listedNow(root: string, label: string, plan: ImagePlan) {
  const entries = listTree(root, plan.ignore);
  assert.ok(entries, `${root} is a readable folder`);
  const under = (path: string) => label === "." ? path : `${label}/${path}`;
  const files: [string, FileFact][] = [];
  const folders: string[] = [];
  for (const entry of entries) {
    if (entry.type === "dir") folders.push(under(entry.path));
    else if (entry.type === "symlink") {
      files.push([under(entry.path), { symlink: sha256(entry.target ?? "") }]);
    } else {
      const content = Deno.readFileSync(entry.absolute);
      files.push([under(entry.path), {
        sha256: sha256(content),
        executable: (entry.mode & 0o100) !== 0,
        size: content.length,
      }]);
    }
  }
  files.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { files: Object.fromEntries(files), folders: folders.sort() };
}

/** The layer of `tree` that takes the source folder. */
function folderLayer(layers: readonly TreeLayer[]): TreeLayer {
  const layer = layers.find((each) => each.method === "withSourceFolder");
  assert.ok(layer, "a withSourceFolder layer");
  return layer;
}

/** Assert the layer lists what `listedNow` lists, as the same JSON text. */
function assertListed(layer: TreeLayer, expected: ReturnType<typeof listedNow>, what: string) {
  const actual = { files: layer.files, folders: layer.folders ?? [] };
  assert.equal(JSON.stringify(actual), JSON.stringify(expected), what);
  assert.deepEqual(actual, expected, what);
}

const SPEC = (folder: string, ignoreFile?: string) =>
  `import { Image } from "imgtool";
export default Image.fromBase("debian:bookworm-slim")${
    ignoreFile ? `\n  .withDockerignore(${JSON.stringify(ignoreFile)})` : ""
  }
  .withSourceFolder(${JSON.stringify(folder)}, "/app");
`;

/** A folder whose walk order is not path order, with links, modes and ignored names. */
async function writeAwkwardTree(root: string): Promise<void> {
  await writeTree(root, {
    "a/x.py": "x = 1\n",
    "a/deeper/y.py": "y = 2\n",
    "a-b.txt": "dash\n",
    "a.txt": "dot\n",
    "a0": "zero\n",
    "Z.txt": "upper\n",
    "é.txt": "accent\n",
    "constructor": "nor a constructor\n",
    "run.sh": "#!/bin/sh\necho run\n",
    "logs/today.log": "ignored\n",
    "logs/keep.log": "brought back\n",
    "build/out.bin": "ignored\n",
    "notes.log": "ignored\n",
    "big.bin": "b".repeat(200_000),
  });
  // Not in the literal above: there, `__proto__` would set its prototype.
  await Deno.writeTextFile(join(root, "__proto__"), "not a prototype\n");
  await Deno.chmod(join(root, "run.sh"), 0o755);
  await Deno.mkdir(join(root, "empty"));
  await Deno.symlink("a.txt", join(root, "link-to-file"));
  await Deno.symlink("no/such/target", join(root, "dangling"));
  await Deno.symlink("a", join(root, "link-to-folder"));
}

for (
  const [name, ignore] of [
    ["no ignore rules", undefined],
    ["ignore rules that prune", "**/*.log\nproject/build\n"],
    ["ignore rules that re-include", "**/*.log\n!project/logs/keep.log\nproject/build\n"],
  ] as const
) {
  Deno.test(`the tree lists a folder as a walk of its own would (${name}): cold, after the identity, warm, edited`, () =>
    withTempDir(async (dir) => {
      const root = join(dir, "project");
      await writeAwkwardTree(root);
      if (ignore) await Deno.writeTextFile(join(dir, ".dockerignore"), ignore);
      await Deno.writeTextFile(
        join(dir, "spec.ts"),
        SPEC("./project", ignore && "./.dockerignore"),
      );
      const spec = join(dir, "spec.ts");
      const cache = join(dir, ".digests");
      try {
        // A cache of its own: files just written are too new to be remembered.
        useDigestCache({ dir: cache });
        const plan = (await plansOf(spec)).get("default")!;
        const cold = folderLayer((await identityTree(plan, spec)).layers);
        assertListed(cold, listedNow(root, "project", plan), "cold");
        if (ignore) assert.ok(!JSON.stringify(cold).includes("today.log"), "ignored: not listed");
        await identify(plan);
        const after = folderLayer((await identityTree(plan, spec, { afterIdentify: true })).layers);
        assertListed(after, listedNow(root, "project", plan), "after the identity");
        // Ten seconds on: settled, remembered by the digest cache, listed from it.
        useDigestCache({ dir: cache, now: () => Date.now() + 10_000 });
        await identify(plan);
        await identify(plan);
        const warm = folderLayer((await identityTree(plan, spec, { afterIdentify: true })).layers);
        assertListed(warm, listedNow(root, "project", plan), "warm");
        // An edit: too new to be remembered, hashed by the identity, listed with its new digest.
        useDigestCache({ dir: cache });
        await Deno.writeTextFile(join(root, "a", "x.py"), "x = 2\n");
        await identify(plan);
        const edited = folderLayer(
          (await identityTree(plan, spec, { afterIdentify: true })).layers,
        );
        assertListed(edited, listedNow(root, "project", plan), "edited");
        assert.notDeepEqual(edited.files["project/a/x.py"], warm.files["project/a/x.py"]);
      } finally {
        useDigestCache({ dir: digestCacheDir });
      }
    }));
}

Deno.test("a folder that is the spec's own folder is listed by bare paths, `__proto__` a file like any", () =>
  withTempDir(async (dir) => {
    await writeAwkwardTree(dir);
    await Deno.writeTextFile(join(dir, "spec.ts"), SPEC("."));
    const spec = join(dir, "spec.ts");
    const plan = (await plansOf(spec)).get("default")!;
    await identify(plan);
    const layer = folderLayer((await identityTree(plan, spec, { afterIdentify: true })).layers);
    assertListed(layer, listedNow(dir, ".", plan), "the spec's folder");
    assert.ok(Object.hasOwn(layer.files, "__proto__"), "a file of its own name");
    assert.equal(Object.getPrototypeOf(layer.files), Object.prototype);
  }));

Deno.test("after the identity, the tree is the walk the identity made: the tree the tag covers, nothing looked at again", () =>
  withTempDir(async (dir) => {
    const root = join(dir, "src");
    await writeTree(root, { "app.py": "print(1)\n", "lib/util.py": "def f(): pass\n" });
    await Deno.writeTextFile(join(dir, "spec.ts"), SPEC("./src"));
    const spec = join(dir, "spec.ts");
    const plan = (await plansOf(spec)).get("default")!;
    await identify(plan);
    const atIdentity = listedNow(root, "src", plan);
    // Changed after the identity: a tree taken after it still describes what the tag covers.
    await Deno.writeTextFile(join(root, "app.py"), "print(2)\n");
    await Deno.remove(join(root, "lib"), { recursive: true });
    const after = folderLayer((await identityTree(plan, spec, { afterIdentify: true })).layers);
    assertListed(after, atIdentity, "the identity's walk");
    // Without `afterIdentify`, the folder is walked now.
    const now = folderLayer((await identityTree(plan, spec)).layers);
    assertListed(now, listedNow(root, "src", plan), "walked now");
    assert.equal(now.files["src/lib/util.py"], undefined);
  }));

Deno.test("two images with other ignore rules over one folder: each tree lists it by its own rules", () =>
  withTempDir(async (dir) => {
    const root = join(dir, "src");
    await writeTree(root, { "app.py": "print(1)\n", "notes.md": "notes\n", "data.csv": "1,2\n" });
    await writeTree(dir, {
      "no-md.dockerignore": "src/*.md\n",
      "no-csv.dockerignore": "src/*.csv\n",
      "spec.ts": `import { Image } from "imgtool";
export const a = Image.fromBase("debian:bookworm-slim").clone({ name: "a" })
  .withDockerignore("./no-md.dockerignore").withSourceFolder("./src", "/app");
export const b = Image.fromBase("debian:bookworm-slim").clone({ name: "b" })
  .withDockerignore("./no-csv.dockerignore").withSourceFolder("./src", "/app");
`,
    });
    const spec = join(dir, "spec.ts");
    const plans = await plansOf(spec);
    const [a, b] = [plans.get("a")!, plans.get("b")!];
    // Both identities walk the one folder; the later walk must not list the other's tree.
    await Promise.all([identify(a), identify(b)]);
    for (const plan of [a, b]) {
      const layer = folderLayer((await identityTree(plan, spec, { afterIdentify: true })).layers);
      assertListed(layer, listedNow(root, "src", plan), `image ${plan.exportName}`);
    }
    const files = async (plan: ImagePlan) =>
      Object.keys(
        folderLayer((await identityTree(plan, spec, { afterIdentify: true })).layers).files,
      );
    assert.deepEqual(await files(a), ["src/app.py", "src/data.csv"]);
    assert.deepEqual(await files(b), ["src/app.py", "src/notes.md"]);
  }));

Deno.test("a folder gone by the identity is missing in the tree after it, though an earlier walk listed it", () =>
  withTempDir(async (dir) => {
    const root = join(dir, "src");
    await writeTree(root, { "app.py": "print(1)\n" });
    await Deno.writeTextFile(join(dir, "spec.ts"), SPEC("./src"));
    const spec = join(dir, "spec.ts");
    const plan = (await plansOf(spec)).get("default")!;
    await identify(plan);
    await Deno.remove(root, { recursive: true });
    await identify(plan);
    const layer = folderLayer((await identityTree(plan, spec, { afterIdentify: true })).layers);
    assert.deepEqual(layer.missing, ["src"]);
    assert.deepEqual(layer.files, {});
  }));

Deno.test("the tree listed on demand is the tree: its records are identityTree's, byte for byte", () =>
  withTempDir(async (dir) => {
    const root = join(dir, "project");
    await writeAwkwardTree(root);
    await Deno.writeTextFile(join(dir, ".dockerignore"), "**/*.log\n!project/logs/keep.log\n");
    await Deno.writeTextFile(
      join(dir, "spec.ts"),
      `import { Image } from "imgtool";
export default Image.fromBase("debian:bookworm-slim").withDockerignore("./.dockerignore")
  .withSourceFolder("./project", "/app").withSourceFile("./project/a.txt", "/etc/a.txt")
  .withSourceFile("./not-there.txt");
`,
    );
    const spec = join(dir, "spec.ts");
    const plan = (await plansOf(spec)).get("default")!;
    await identify(plan);
    const tree = await identityTree(plan, spec, { afterIdentify: true });
    const listed = await listedTree(plan, spec, { afterIdentify: true });
    const records = {
      ...listed,
      layers: listed.layers.map((layer) => ({ ...layer, files: layer.files.record() })),
    };
    assert.equal(JSON.stringify(records), JSON.stringify(tree));
    for (const [at, layer] of listed.layers.entries()) {
      const visited: [string, FileFact][] = [];
      layer.files.forEach((path, fact) => visited.push([path, fact]));
      assert.equal(layer.files.size, visited.length);
      assert.deepEqual(Object.fromEntries(visited), tree.layers[at].files, `layer ${at}`);
    }
  }));

Deno.test("comparing with the tree listed on demand finds what comparing with the tree as records finds", () =>
  withTempDir(async (dir) => {
    const specText = (src: string) =>
      `import { Image } from "imgtool";
export default Image.fromBase("debian:bookworm-slim").withSourceFolder("${src}", "/app");
`;
    await writeTree(dir, {
      "spec.ts": specText("./src"),
      "src/same.py": "same\n",
      "src/changed.py": "before\n",
      "src/removed.py": "removed\n",
      "src/tool.sh": "#!/bin/sh\n",
      "src/gone/only.py": "only\n",
      "src/empty-then/.keep": "",
    });
    await Deno.mkdir(join(dir, "src", "emptied"));
    const spec = join(dir, "spec.ts");
    const plan = async () => (await plansOf(spec)).get("default")!;
    const before = await identityTree(await plan(), spec);
    await Deno.writeTextFile(join(dir, "src", "changed.py"), "after\n");
    await Deno.remove(join(dir, "src", "removed.py"));
    await Deno.remove(join(dir, "src", "gone"), { recursive: true });
    await Deno.remove(join(dir, "src", "emptied"));
    await Deno.chmod(join(dir, "src", "tool.sh"), 0o755);
    await writeTree(dir, { "src/added.py": "added\n", "src/new/inside.py": "inside\n" });
    await Deno.mkdir(join(dir, "src", "new-empty"));
    await Deno.symlink("same.py", join(dir, "src", "link"));
    const now = await plan();
    await identify(now);
    const asRecords = compareTrees(before, await identityTree(now, spec, { afterIdentify: true }));
    const asListed = compareTrees(before, await listedTree(now, spec, { afterIdentify: true }));
    assert.deepEqual(asListed, asRecords);
    assert.deepEqual(asListed.map(describeDifference).map((line) => line.replace(/^.*\): /, "")), [
      "file added: src/added.py",
      "file changed: src/changed.py",
      "file removed: src/gone/only.py",
      "file added: src/link",
      "file added: src/new/inside.py",
      "file removed: src/removed.py",
      "file mode changed: src/tool.sh (now executable)",
      "folder removed: src/emptied",
      "folder added: src/new-empty",
    ]);
    // And with the folder moved (a spec naming it so): REF's paths renamed, the same files.
    const after = await identityTree(now, spec, { afterIdentify: true });
    await Deno.rename(join(dir, "src"), join(dir, "code"));
    const movedSpec = join(dir, "moved.ts");
    await Deno.writeTextFile(movedSpec, specText("./code"));
    const moved = (await plansOf(movedSpec)).get("default")!;
    await identify(moved);
    const movedRecords = compareTrees(after, await identityTree(moved, movedSpec));
    const movedListed = compareTrees(
      after,
      await listedTree(moved, movedSpec, { afterIdentify: true }),
    );
    assert.deepEqual(movedListed, movedRecords);
    assert.ok(movedListed.some((difference) => difference.kind === "moved"));
    assert.ok(!movedListed.some((difference) => difference.kind.startsWith("file-")));
  }));

Deno.test("a listing of several sources names a path once: its first place, its last fact", () => {
  const fact = (sha: string): FileFact => ({ sha256: sha.repeat(64), executable: false, size: 1 });
  const source = (entries: [string, FileFact][]) => ({
    size: entries.length,
    forEach: (visit: (path: string, fact: FileFact) => void) => {
      for (const [path, value] of entries) visit(path, value);
    },
  });
  const listing = new FileListing([
    source([["src/b.py", fact("1")], ["src/a.py", fact("2")]]),
    source([["src/a.py", fact("3")], ["other.py", fact("4")]]),
  ]);
  assert.equal(listing.size, 3);
  assert.deepEqual(Object.keys(listing.record()), ["other.py", "src/a.py", "src/b.py"]);
  assert.deepEqual(listing.record()["src/a.py"], fact("3"));
  const visited: string[] = [];
  listing.forEach((path, value) =>
    visited.push(`${path}=${(value as { sha256: string }).sha256[0]}`)
  );
  assert.deepEqual(visited.sort(), ["other.py=4", "src/a.py=3", "src/b.py=1"]);
});
