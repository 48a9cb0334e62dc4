// The identity rules of DESIGN.md section 5, one test each (plus the seed's invariant that
// reading `uri` never fails). Images are made here with absolute paths into temporary
// folders, so that each test controls exactly what is on disk.
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  defaultConfig,
  identify,
  identifySync,
  Image,
  type ImageIdentity,
  planImage,
  renderImage,
  setActiveConfig,
  ValidationError,
} from "../mod.ts";
import { listTree, useDigestCache } from "../src/digest.ts";
import { copyTree, PROJECT, TEMP_PREFIX, withTempDir, writeTree } from "./helpers.ts";

const config = defaultConfig();
setActiveConfig(config);

// Digests remembered across runs go to a folder of these tests' own (so every rule below is
// also checked through the digest cache), not to the machine's ~/.cache.
const digestCacheDir = Deno.makeTempDirSync({ prefix: `${TEMP_PREFIX}digests-` });
useDigestCache({ dir: digestCacheDir });
globalThis.addEventListener("unload", () => Deno.removeSync(digestCacheDir, { recursive: true }));

function identityOf(image: Image): Promise<ImageIdentity> {
  return identify(planImage(image, "default", config));
}

async function tagOf(image: Image): Promise<string> {
  return (await identityOf(image)).tag;
}

async function dockerfileOf(image: Image): Promise<string> {
  return (await renderImage(planImage(image, "default", config))).dockerfile;
}

const debian = Image.fromBase("debian:bookworm-slim");

Deno.test("identity is canonical: packages split differently give different tags", async () => {
  assert.notEqual(
    await tagOf(debian.withPipPackages(["ab", "c"])),
    await tagOf(debian.withPipPackages(["a", "bc"])),
  );
  assert.notEqual(
    await tagOf(debian.withAptPackages(["ab", "cd"])),
    await tagOf(debian.withAptPackages(["abc", "d"])),
  );
  assert.notEqual(
    await tagOf(debian.withCommands(["echo a", "echo b"])),
    await tagOf(debian.withCommands(["echo a echo b"])),
  );
  assert.notEqual(
    await tagOf(debian.withEnvVars({ A: "1", B: "2" })),
    await tagOf(debian.withEnvVars({ A: "1B2" })),
  );
});

Deno.test("identity is canonical: paths a/bc and ab/c give different tags", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, { "one/src/a/bc": "same", "two/src/ab/c": "same" });
    assert.notEqual(
      await tagOf(debian.withSourceFolder(join(dir, "one", "src"), "/app")),
      await tagOf(debian.withSourceFolder(join(dir, "two", "src"), "/app")),
    );
  });
  // Destinations too.
  assert.notEqual(
    await tagOf(debian.withWorkdir("/a/bc")),
    await tagOf(debian.withWorkdir("/ab/c")),
  );
});

Deno.test("identity is a Merkle chain: images sharing a prefix share its layer digests", async () => {
  const prefix = Image.fromDebianBase({ name: "one" }).withAptPackages(["git"]).withPipPackages(
    "numpy",
  );
  const first = await identityOf(prefix.withEnvVars({ MODE: "a" }));
  const second = await identityOf(
    prefix.clone({ name: "two", registry: "ghcr.io/acme" }).withWorkdir("/app"),
  );
  const alone = await identityOf(prefix);
  assert.equal(first.layerDigests.length, 4);
  assert.deepEqual(first.layerDigests.slice(0, 3), second.layerDigests.slice(0, 3));
  assert.deepEqual(first.layerDigests.slice(0, 3), alone.layerDigests);
  assert.notEqual(first.layerDigests[3], second.layerDigests[3]);
  // The prefix image's tag is its last layer digest; names and registries play no part.
  assert.equal(alone.tag, alone.layerDigests[2].slice(0, 32));
  // A change early in the chain changes every digest after it.
  const changed = await identityOf(
    Image.fromDebianBase({ name: "one" }).withAptPackages(["curl"]).withPipPackages("numpy")
      .withEnvVars({ MODE: "a" }),
  );
  assert.equal(changed.layerDigests[0], first.layerDigests[0]);
  for (const index of [1, 2, 3]) {
    assert.notEqual(changed.layerDigests[index], first.layerDigests[index]);
  }
});

Deno.test("identity counts file contents", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, { "src/app.py": "print(1)\n", "main.py": "x = 1\n" });
    const folder = debian.withSourceFolder(join(dir, "src"));
    const file = debian.withSourceFile(join(dir, "main.py"));
    const [folderTag, fileTag] = [await tagOf(folder), await tagOf(file)];
    await Deno.writeTextFile(join(dir, "src/app.py"), "print(2)\n");
    await Deno.writeTextFile(join(dir, "main.py"), "x = 2\n");
    assert.notEqual(await tagOf(folder), folderTag);
    assert.notEqual(await tagOf(file), fileTag);
    await Deno.writeTextFile(join(dir, "src/app.py"), "print(1)\n");
    await Deno.writeTextFile(join(dir, "main.py"), "x = 1\n");
    assert.equal(await tagOf(folder), folderTag, "the same contents give the same tag again");
    assert.equal(await tagOf(file), fileTag);
    // A new file in the folder counts too.
    await Deno.writeTextFile(join(dir, "src/new.py"), "");
    assert.notEqual(await tagOf(folder), folderTag);
  });
});

Deno.test("identity sees a same-size rewrite made in the same instant", async () => {
  // Times have millisecond resolution: a remembered digest must not outlive a quick rewrite.
  await withTempDir(async (dir) => {
    const path = join(dir, "main.py");
    const image = debian.withSourceFile(path);
    for (let round = 0; round < 25; round++) {
      await Deno.writeTextFile(path, `x = ${round % 10}\n`);
      const before = identifySync(planImage(image, "default", config)).tag;
      await Deno.writeTextFile(path, `x = ${(round + 1) % 10}\n`);
      const after = identifySync(planImage(image, "default", config)).tag;
      assert.notEqual(after, before, `round ${round}`);
      assert.equal((await identityOf(image)).tag, after);
    }
  });
});

Deno.test("identity counts file modes", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, { "bin/run.sh": "echo hi\n", "tool.sh": "echo hi\n" });
    await Deno.chmod(join(dir, "bin/run.sh"), 0o644);
    await Deno.chmod(join(dir, "tool.sh"), 0o644);
    const folder = debian.withSourceFolder(join(dir, "bin"));
    const file = debian.withSourceFile(join(dir, "tool.sh"));
    const [folderTag, fileTag] = [await tagOf(folder), await tagOf(file)];
    await Deno.chmod(join(dir, "bin/run.sh"), 0o755);
    await Deno.chmod(join(dir, "tool.sh"), 0o755);
    assert.notEqual(await tagOf(folder), folderTag);
    assert.notEqual(await tagOf(file), fileTag);
  });
});

Deno.test("identity ignores modification times", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, { "src/app.py": "print(1)\n", "main.py": "x = 1\n" });
    const image = debian.withSourceFolder(join(dir, "src")).withSourceFile(join(dir, "main.py"));
    const before = await tagOf(image);
    const later = new Date(Date.now() + 3_600_000);
    await Deno.utime(join(dir, "src/app.py"), later, later);
    await Deno.utime(join(dir, "src"), later, later);
    await Deno.utime(join(dir, "main.py"), later, later);
    assert.equal(await tagOf(image), before);
    assert.equal(identifySync(planImage(image, "default", config)).tag, before);
  });
});

Deno.test("identity ignores where the files are: the same tree in two folders, same tag", async () => {
  await withTempDir(async (first) => {
    await withTempDir(async (second) => {
      for (const dir of [first, second]) {
        await copyTree(PROJECT, join(dir, "project"));
        await writeTree(dir, {
          "project/spec.ts": [
            'import { Image } from "imgtool";',
            'export default Image.fromDebianBase({ name: "app" })',
            '  .withRequirements("./requirements/requirements.txt")',
            '  .withUvProject("./uvproj/pyproject.toml", { projectInstallMode: "install_project" })',
            '  .withPoetryProject("./poetryproj/pyproject.toml")',
            '  .withSourceFolder("./src", "/app/src")',
            '  .withSourceFile("./app/main.py")',
            '  .withDockerignore("./.dockerignore");',
            'export const custom = Image.fromDockerfile("./docker/Dockerfile", { name: "custom" });',
            'export const script = Image.fromUvScript("./scripts/job.py", { name: "job" });',
            "",
          ].join("\n"),
        });
      }
      const uris = async (dir: string) => {
        const spec = await import(pathToFileURL(join(dir, "project", "spec.ts")).href);
        return [spec.default.uri, spec.custom.uri, spec.script.uri];
      };
      const [a, b] = [await uris(first), await uris(second)];
      assert.deepEqual(a, b);
      // And the images do read the files: a change in one copy shows.
      await Deno.writeTextFile(join(second, "project/src/pkg/util.py"), "changed\n");
      await Deno.writeTextFile(join(second, "project/docker/app.txt"), "changed\n");
      const changed = await uris(second);
      assert.notEqual(changed[0], a[0]);
      assert.notEqual(changed[1], a[1]);
    });
  });
});

Deno.test("identity ignores the order a directory lists its entries in", async () => {
  const names = ["b.py", "a.py", "zeta/x.py", "alpha/y.py", "m.txt", "Capital.txt", "_u.py"];
  // tmpfs lists a folder newest first, so there creation order is listing order.
  const shm = await Deno.stat("/dev/shm").then((info) => info.isDirectory, () => false);
  const dir = await Deno.makeTempDir({ prefix: TEMP_PREFIX, dir: shm ? "/dev/shm" : undefined });
  try {
    for (const name of names) {
      await writeTree(join(dir, "one", "src"), { [name]: `content of ${name}` });
    }
    for (const name of [...names].reverse()) {
      await writeTree(join(dir, "two", "src"), { [name]: `content of ${name}` });
    }
    const listing = async (folder: string) => {
      const found: string[] = [];
      for await (const entry of Deno.readDir(join(dir, folder, "src"))) found.push(entry.name);
      return found;
    };
    const [one, two] = [await listing("one"), await listing("two")];
    assert.deepEqual([...one].sort(), [...two].sort());
    if (shm) assert.notDeepEqual(one, two, "the two folders list in different orders");
    assert.equal(
      await tagOf(debian.withSourceFolder(join(dir, "one", "src"), "/app")),
      await tagOf(debian.withSourceFolder(join(dir, "two", "src"), "/app")),
    );
    // Whatever the listing order, the tree is walked in path order.
    const paths = listTree(join(dir, "two", "src"))!.map((entry) => entry.path);
    assert.deepEqual(paths, [...paths].sort());
    assert.equal(paths.length, names.length + 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("identity applies .dockerignore rules before hashing", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      // Patterns are relative to the rules file's folder, as to a build context's root.
      ".dockerignore": "# build output\n**/*.log\nsrc/build/\n!src/keep.log\n",
      "src/app.py": "print(1)\n",
      "src/debug.log": "noise\n",
      "src/keep.log": "kept\n",
      "src/build/out.bin": "artifact\n",
    });
    // The rules govern the whole chain: here the dockerignore layer comes after the folder.
    const image = debian.withSourceFolder(join(dir, "src")).withDockerignore(
      join(dir, ".dockerignore"),
    );
    const before = await tagOf(image);
    await Deno.writeTextFile(join(dir, "src/debug.log"), "other noise\n");
    await Deno.writeTextFile(join(dir, "src/build/out.bin"), "other artifact\n");
    await Deno.writeTextFile(join(dir, "src/build/new.bin"), "new artifact\n");
    assert.equal(await tagOf(image), before, "ignored files do not count");
    await Deno.writeTextFile(join(dir, "src/keep.log"), "kept, changed\n");
    const afterKept = await tagOf(image);
    assert.notEqual(afterKept, before, "a file a ! rule brings back counts");
    await Deno.writeTextFile(join(dir, "src/app.py"), "print(2)\n");
    assert.notEqual(await tagOf(image), afterKept, "files not ignored count");
  });
});

Deno.test("identity counts the .dockerignore rules file itself", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, { ".dockerignore": "*.log\n", "src/app.py": "print(1)\n" });
    const image = debian.withSourceFolder(join(dir, "src")).withDockerignore(
      join(dir, ".dockerignore"),
    );
    const before = await tagOf(image);
    await Deno.writeTextFile(join(dir, ".dockerignore"), "*.log\n*.tmp\n");
    assert.notEqual(await tagOf(image), before, "a rule that matches nothing still counts");
  });
});

Deno.test("identity counts platforms, not their order", async () => {
  const image = (platform?: "linux/amd64" | "linux/arm64" | ("linux/amd64" | "linux/arm64")[]) =>
    Image.fromDebianBase({ name: "app", platform }).withAptPackages("git");
  const amd = await tagOf(image("linux/amd64"));
  const arm = await tagOf(image("linux/arm64"));
  const both = await tagOf(image(["linux/amd64", "linux/arm64"]));
  assert.equal(new Set([amd, arm, both]).size, 3);
  assert.equal(await tagOf(image(["linux/arm64", "linux/amd64"])), both);
  assert.equal(await tagOf(image()), amd, "the default platform is linux/amd64");
  // The command line's --platform overrides the image's platforms, and so the tag.
  const overridden = await identify(
    planImage(image("linux/amd64"), "default", config, { platforms: ["linux/arm64"] }),
  );
  assert.equal(overridden.tag, arm);
});

Deno.test("identity counts the Python version of images whose layers read it", async () => {
  const python = (version: [number, number]) =>
    Image.fromDebianBase({ name: "app", pythonVersion: version }).withPipPackages("numpy");
  assert.notEqual(await tagOf(python([3, 11])), await tagOf(python([3, 12])));
  // The configured version, where the image names none.
  const configured = Image.fromDebianBase({ name: "app" }).withAptPackages("git");
  const in311 = await identify(
    planImage(configured, "default", { ...config, pythonVersion: [3, 11] }),
  );
  assert.notEqual(in311.tag, await tagOf(configured));
  // clone({ pythonVersion }) changes it too.
  assert.notEqual(
    await tagOf(python([3, 12]).clone({ pythonVersion: [3, 13] })),
    await tagOf(python([3, 12])),
  );
  // Each builds a different Dockerfile: the tag tells them apart because it must.
  assert.notEqual(await dockerfileOf(python([3, 11])), await dockerfileOf(python([3, 12])));
});

Deno.test("a Python version set on an image that never uses it leaves the tag alone", async () => {
  const images: [string, Image][] = [
    ["plain base", debian],
    [
      "apt, env, commands, workdir",
      debian.withAptPackages("git").withEnvVars({ A: "1" })
        .withCommands("make").withWorkdir("/app"),
    ],
    ["a ref name", Image.fromRefName("base").withAptPackages("curl")],
    // pip on an image that is not imgtool's Python base installs with that image's own
    // `python3`, whatever version is configured: the same Dockerfile, the same image.
    ["pip on a plain base", debian.withPipPackages("numpy")],
  ];
  const withRefs = { ...config, refs: { base: "debian:bookworm-slim" } };
  for (const [what, image] of images) {
    const settings = [[3, 11], [3, 12], [3, 13]].map((version) => ({
      ...withRefs,
      pythonVersion: version as [number, number],
    }));
    const dockerfiles = await Promise.all(
      settings.map(async (settings) =>
        (await renderImage(planImage(image, "x", settings))).dockerfile
      ),
    );
    assert.equal(new Set(dockerfiles).size, 1, `${what}: the version changes nothing built`);
    const tags = await Promise.all(
      settings.map(async (settings) => (await identify(planImage(image, "x", settings))).tag),
    );
    assert.equal(new Set(tags).size, 1, `${what}: one image, one tag`);
    // Nor does the image's own setting (clone), nor does it count later in the chain.
    assert.equal(
      (await identify(planImage(image.clone({ pythonVersion: [3, 9] }), "x", withRefs))).tag,
      tags[0],
    );
  }
});

Deno.test("identity: workdirs that name one directory give one tag and one Dockerfile", async () => {
  const spellings = ["/opt/app", "/opt/app/", "/opt//app", "/opt/./app", "/opt/lib/../app/."];
  const tags = await Promise.all(spellings.map((path) => tagOf(debian.withWorkdir(path))));
  assert.equal(new Set(tags).size, 1, `${spellings.join(", ")}: one directory`);
  const dockerfiles = await Promise.all(
    spellings.map((path) => dockerfileOf(debian.withWorkdir(path))),
  );
  assert.equal(new Set(dockerfiles).size, 1, "the tag covers what is built: one Dockerfile");
  // Relative ones too, and what later layers see as the working directory.
  const relative = ["data", "data/", "./data", "data//", "./x/../data"];
  const relativeTags = await Promise.all(
    relative.map((path) => tagOf(debian.withWorkdir("/opt/app").withWorkdir(path))),
  );
  assert.equal(new Set(relativeTags).size, 1, `${relative.join(", ")}: one directory`);
  // What later layers see as the working directory is one spelling too.
  const seen = relative.map((path) => {
    const image = debian.withWorkdir("/opt//app/").withWorkdir(path).withCommands("true");
    return planImage(image, "x", config).layers[3].context.state.workdir;
  });
  assert.deepEqual(seen, relative.map(() => "/opt/app/data"));
  // Different directories still differ.
  assert.notEqual(
    await tagOf(debian.withWorkdir("/opt/app")),
    await tagOf(debian.withWorkdir("/opt/apps")),
  );
  assert.notEqual(
    await tagOf(debian.withWorkdir("/opt/app")),
    await tagOf(debian.withWorkdir("opt/app")),
  );
  assert.notEqual(
    await tagOf(debian.withWorkdir("/opt/app")),
    await tagOf(debian.withWorkdir("/app")),
  );
});

Deno.test("identity: pip packages in another order give one tag and one install step", async () => {
  const orders = [
    ["numpy==2.1.0", "pandas", "requests[socks]"],
    ["requests[socks]", "pandas", "numpy==2.1.0"],
    ["pandas", " numpy==2.1.0", "requests[socks]", "pandas"],
  ];
  const tags = await Promise.all(orders.map((packages) => tagOf(debian.withPipPackages(packages))));
  assert.equal(new Set(tags).size, 1);
  const dockerfiles = await Promise.all(
    orders.map((packages) => dockerfileOf(debian.withPipPackages(packages))),
  );
  assert.equal(new Set(dockerfiles).size, 1, "the step installs them in one order");
  // Each package is still installed: the set counts.
  const step = dockerfiles[0].split("\n").find((line) => line.includes("pip install"));
  for (const name of ["numpy==2.1.0", "pandas", "'requests[socks]'"]) {
    assert.ok(step?.includes(name), `${name} in ${step}`);
  }
  assert.notEqual(
    await tagOf(debian.withPipPackages(["numpy", "pandas"])),
    await tagOf(debian.withPipPackages(["numpy"])),
  );
  // Two layers are two steps: their order is the chain's, and counts.
  assert.notEqual(
    await tagOf(debian.withPipPackages("numpy").withPipPackages("pandas")),
    await tagOf(debian.withPipPackages("pandas").withPipPackages("numpy")),
  );
});

Deno.test("identity: a checkout under another umask gives the same tag (only the executable bit counts)", async () => {
  // The same files as a checkout under umask 022, 077 and 002 leaves them, with the
  // executable bit where git keeps it (run.sh) and not elsewhere.
  const umasks: [string, { file: number; script: number; folder: number }][] = [
    ["022", { file: 0o644, script: 0o755, folder: 0o755 }],
    ["077", { file: 0o600, script: 0o700, folder: 0o700 }],
    ["002", { file: 0o664, script: 0o775, folder: 0o775 }],
    ["027 with odd bits", { file: 0o640, script: 0o750, folder: 0o750 }],
  ];
  await withTempDir(async (dir) => {
    const tags: string[][] = [];
    for (const [umask, modes] of umasks) {
      const root = join(dir, umask.replaceAll(" ", "-"));
      await writeTree(root, {
        "src/app.py": "print(1)\n",
        "src/pkg/util.py": "x = 1\n",
        "src/bin/run.sh": "#!/bin/sh\necho hi\n",
        "tool.sh": "#!/bin/sh\necho tool\n",
      });
      for (const file of ["src/app.py", "src/pkg/util.py"]) {
        await Deno.chmod(join(root, file), modes.file);
      }
      for (const file of ["src/bin/run.sh", "tool.sh"]) {
        await Deno.chmod(join(root, file), modes.script);
      }
      for (const folder of ["src/pkg", "src/bin", "src"]) {
        await Deno.chmod(join(root, folder), modes.folder);
      }
      tags.push([
        await tagOf(debian.withSourceFolder(join(root, "src"), "/app")),
        await tagOf(debian.withSourceFile(join(root, "tool.sh"), "/usr/local/bin/tool")),
        identifySync(planImage(debian.withSourceFolder(join(root, "src"), "/app"), "x", config))
          .tag,
      ]);
    }
    for (const [index, [umask]] of umasks.entries()) {
      assert.deepEqual(tags[index], tags[0], `umask ${umask} and 022: one tag`);
    }
    // The executable bit does count: git keeps it, and the file is staged 0755 or 0644 by it.
    const root = join(dir, "022");
    await Deno.chmod(join(root, "src/bin/run.sh"), 0o644);
    await Deno.chmod(join(root, "tool.sh"), 0o644);
    assert.notEqual(await tagOf(debian.withSourceFolder(join(root, "src"), "/app")), tags[0][0]);
    assert.notEqual(
      await tagOf(debian.withSourceFile(join(root, "tool.sh"), "/usr/local/bin/tool")),
      tags[0][1],
    );
  });
});

Deno.test("identity counts the installer and the uv image, over any base", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "requirements.txt": "numpy\n",
      "job.py": '# /// script\n# dependencies = ["httpx"]\n# ///\n',
      "proj/pyproject.toml": '[project]\nname = "p"\nversion = "0"\ndependencies = ["rich"]\n',
    });
    const layers: [string, Image][] = [
      ["pip", debian.withPipPackages("numpy")],
      ["requirements", debian.withRequirements(join(dir, "requirements.txt"))],
      ["uv_project", debian.withUvProject(join(dir, "proj", "pyproject.toml"))],
      [
        "uv_script",
        Image.fromRefName("base").withLayer(
          Image.fromUvScript(join(dir, "job.py"), { name: "job" }).layers[1],
        ),
      ],
    ];
    const withRefs = { ...config, refs: { base: "debian:bookworm-slim" } };
    const pip = { ...withRefs, installer: "pip" as const };
    const newerUv = { ...withRefs, images: { ...config.images, uv: "ghcr.io/astral-sh/uv:9.9.9" } };
    for (const [name, image] of layers) {
      const tag = async (settings: typeof config) =>
        (await identify(planImage(image, "default", settings))).tag;
      const withUv = await tag(withRefs);
      assert.notEqual(await tag(pip), withUv, `${name}: uv and pip install differently`);
      assert.notEqual(await tag(newerUv), withUv, `${name}: another uv may install differently`);
    }
  });
});

Deno.test("a missing file does not make uri throw; validate() reports it", async () => {
  const image = Image.fromDebianBase({ name: "app", registry: "ghcr.io/acme" })
    .withSourceFile("/nonexistent/imgtool-test/main.py")
    .withSourceFolder("/nonexistent/imgtool-test/src")
    .withRequirements("/nonexistent/imgtool-test/requirements.txt")
    .withDockerignore("/nonexistent/imgtool-test/.dockerignore");
  const uri = image.uri;
  assert.match(uri, /^ghcr\.io\/acme\/app:[0-9a-f]{32}$/);
  assert.equal(image.identifier, uri.split(":").pop());
  await assert.rejects(image.validate(), (error: unknown) => {
    assert.ok(error instanceof ValidationError);
    const messages = error.diagnostics.map((d) => d.message);
    assert.ok(messages.includes("file not found: /nonexistent/imgtool-test/main.py"));
    assert.ok(messages.includes("folder not found: /nonexistent/imgtool-test/src"));
    assert.ok(
      messages.includes("requirements file not found: /nonexistent/imgtool-test/requirements.txt"),
    );
    assert.ok(messages.includes("ignore file not found: /nonexistent/imgtool-test/.dockerignore"));
    return true;
  });
  // A missing file and an empty one are different identities.
  await withTempDir(async (dir) => {
    const missing = await tagOf(debian.withSourceFile(join(dir, "x.py")));
    await Deno.writeTextFile(join(dir, "x.py"), "");
    assert.notEqual(await tagOf(debian.withSourceFile(join(dir, "x.py"))), missing);
  });
});

Deno.test("uri (synchronous hashing) equals identify() (parallel hashing)", async () => {
  await withTempDir(async (dir) => {
    await copyTree(PROJECT, join(dir, "project"));
    const at = (path: string) => join(dir, "project", path);
    const image = Image.fromDebianBase({ name: "app", registry: "ghcr.io/acme" })
      .withRequirements(at("requirements/requirements.txt"))
      .withUvProject(at("uvproj/pyproject.toml"), { projectInstallMode: "install_project" })
      .withPoetryProject(at("poetryproj/pyproject.toml"))
      .withSourceFolder(at("src"))
      .withSourceFile(at("app/main.py"))
      .withDockerignore(at(".dockerignore"));
    const plan = planImage(image, "default", config);
    const parallel = await identify(plan);
    assert.equal(image.uri, parallel.uri);
    assert.deepEqual(identifySync(plan), parallel);
  });
});

Deno.test("a large tree hashes the same synchronously and in parallel", async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, "tree");
    let count = 0;
    for (let a = 0; a < 30; a++) {
      for (let b = 0; b < 10; b++) {
        const folder = join(root, `pkg${a}`, `mod${b}`);
        await Deno.mkdir(folder, { recursive: true });
        for (let c = 0; c < 10; c++) {
          await Deno.writeTextFile(join(folder, `f${c}.py`), `# ${a}/${b}/${c}\n`.repeat(c + 1));
          count++;
        }
      }
    }
    await Deno.writeFile(join(root, "big.bin"), new Uint8Array(3 * 1024 * 1024 + 17).fill(7));
    assert.equal(count, 3000);
    const image = debian.withSourceFolder(root, "/data");
    const plan = planImage(image, "default", config);
    const parallel = await identify(plan);
    const sync = identifySync(plan);
    assert.deepEqual(sync, parallel);
    await Deno.writeTextFile(join(root, "pkg29", "mod9", "f9.py"), "changed\n");
    assert.notEqual((await identify(planImage(image, "default", config))).tag, parallel.tag);
  });
});

Deno.test("identity ignores the image's name, registry and builder choice", async () => {
  const base = Image.fromDebianBase({ name: "one" }).withAptPackages("git");
  const tag = await tagOf(base);
  assert.equal(await tagOf(base.clone({ name: "two", registry: "ghcr.io/acme" })), tag);
  assert.equal(await tagOf(base.withLocalV2()), tag);
  assert.equal(
    (await identityOf(base.clone({ registry: "ghcr.io/acme" }))).uri,
    `ghcr.io/acme/one:${tag}`,
  );
  assert.equal((await identityOf(base)).uri, `one:${tag}`);
});
