// Tags are a stable contract: users' registries hold images under the tags imgtool computes
// today, and a release that changes a tag by accident rebuilds every such image of every
// user. These tests pin the URIs (and so the tags) of fixed specs, computed as users compute
// them (the public API, and the `uri` command), from files of fixed content and mode written
// into a fresh folder. Any change to a tag fails here until it is made on purpose: update the
// pinned value AND add a CHANGELOG.md entry saying which tags change and why.
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  type Config,
  identify,
  identifySync,
  type Image,
  isImage,
  loadConfig,
  planImage,
  validateImages,
} from "../mod.ts";
import { useDigestCache } from "../src/digest.ts";
import { FIXTURE_FILES } from "./fixtures/pinned/files.ts";
import { FIXTURES, imgtool, withTempDir } from "./helpers.ts";

/** The URI of every export of tests/fixtures/pinned/spec.ts, with no configuration but its own. */
const PINNED: Readonly<Record<string, string>> = {
  fromBase: "debian:bookworm-slim",
  fromBaseWithWorkdir: "base:cdc0169ce57e83577d35bbbfd4991198",
  fromBasePinned: "debian:c43848517f45a59bcad25ed4903071c7",
  fromDebianBase: "imgtool-python:a7a06ed1629ec21f0d804bbab0fba4b7",
  fromDebianBaseArm: "arm:e5e4b7b33ceb7a41a62a8b07923d6b9d",
  fromDebianBaseTwoPlatforms: "ghcr.io/acme/multi:d4cbdcc91df32534ea365f544d725441",
  fromDebianBaseInstallFlyte: "imgtool-python:810651542f39bec03bb22802cb44aeb7",
  clone: "registry.example.com/mirror/cloned:a28b0bfc0d2529a218ab1f79db077181",
  fromDockerfile: "custom:548b500862389a5506b0657b103bcf62",
  fromRefName: "python-base:5a375481b30f0683e7b1fcdcb68b61b3",
  fromUvScript: "ghcr.io/acme/job:3e058594de71eddd6e6cfb749a3db9d4",
  aptPackages: "pinned:d433b55f29902887c9f182dfa05d50a5",
  aptPackagesWithSecret: "pinned:b93c719010bacb0e613a41f39b87ab93",
  pipPackages: "pinned:ff61aa70ad486cc00c1ba650d3167f02",
  requirements: "pinned:b4a056f567dc38c6f36600bb8a2bf9c0",
  uvProject: "pinned:d8edef10aecf94ec325eab058cc612fb",
  uvProjectInstall: "pinned:1af3e2c5132c9abe5be2f46756b175b7",
  poetryProject: "pinned:0851137ecdabd2802d8af2cf3b73df6e",
  poetryProjectInstall: "pinned:127b80177ee5b1277920949b8b60b8ad",
  sourceFile: "pinned:e5ad6c2e21248f81619435dc39854af8",
  sourceFileToWorkdir: "pinned:5c98d4a50438a7584fc3f96d392b1c93",
  sourceFolder: "pinned:c56f03035809d76990ff7d9885ad03ec",
  sourceFolderContents: "pinned:f41bac24e8695b9e9bdd95367336bc3e",
  envVars: "pinned:d8eedda5e7520997df2a6255d6b04d4b",
  commands: "pinned:0d07459bbbadb9950cea73955175a121",
  workdir: "pinned:76930f3133d09de5c351cd4962ecc0bd",
  dockerignore: "pinned:21a5ab55f9ef6b5f75304ae480b6ed07",
  customPlugins: "pinned:9c983f4d1684df4c82d3f5e1b0ea70b5",
  everything: "ghcr.io/acme/everything:14c64e7512ddd2fa927d9e4b7a95071c",
};

/**
 * The same spec's URIs under a site configuration (mirrors, pip, default registry, platforms
 * and Python version from `IMGTOOL_*` variables): how configuration enters the tags is pinned
 * too.
 */
const PINNED_CONFIGURED: Readonly<Record<string, string>> = {
  fromBase: "debian:bookworm-slim",
  fromBaseWithWorkdir: "registry.example.com/site/base:cd8107da74718034095325b3302c15a4",
  fromBasePinned: "registry.example.com/site/debian:06e3eb1623a2ae866e8f7a947621b72a",
  fromDebianBase: "registry.example.com/site/imgtool-python:9dc3368443531f049795f0ffaa9738a2",
  fromDebianBaseArm: "registry.example.com/site/arm:4d28b5557303f532e02c8aaebcad596a",
  fromDebianBaseTwoPlatforms: "ghcr.io/acme/multi:a9ecb7c691cf8ea6172d5c7ab08f8a64",
  fromDebianBaseInstallFlyte:
    "registry.example.com/site/imgtool-python:0887a8cb05191bb601c03e3415261eaf",
  clone: "registry.example.com/mirror/cloned:5b86c6fdca3fe3681b06b9da97a10246",
  fromDockerfile: "registry.example.com/site/custom:548b500862389a5506b0657b103bcf62",
  fromRefName: "registry.example.com/site/python-base:c4b586ae60b659ece7e24680ac4a7b03",
  fromUvScript: "ghcr.io/acme/job:2f26d13885f1df132a63c74096cba276",
  aptPackages: "registry.example.com/site/pinned:49470821b155ccb13487a0023aa3921f",
  aptPackagesWithSecret: "registry.example.com/site/pinned:7591a1054b90d6ce9309b8f75b937fb4",
  pipPackages: "registry.example.com/site/pinned:0c95b7487c05516dd886e106804f79ee",
  requirements: "registry.example.com/site/pinned:ca1db8274694d6053702b9c8bacbd34b",
  uvProject: "registry.example.com/site/pinned:4032bf0ef5ef952a554ae5a47b82fa8a",
  uvProjectInstall: "registry.example.com/site/pinned:42df759cab75bba4cfd8738add736f8e",
  poetryProject: "registry.example.com/site/pinned:326ca4a2f002b68daea7c943e18d6134",
  poetryProjectInstall: "registry.example.com/site/pinned:3b1cef5dd5efe8db19469a5aa90c4b87",
  sourceFile: "registry.example.com/site/pinned:1e4c9f253ffe608a03494428287dbbca",
  sourceFileToWorkdir: "registry.example.com/site/pinned:11495164c7900e212149d189ed01b9bd",
  sourceFolder: "registry.example.com/site/pinned:ff09ea96d9d18910a36049c08e64a346",
  sourceFolderContents: "registry.example.com/site/pinned:c8281030364b3dc5d7482155d47e59e0",
  envVars: "registry.example.com/site/pinned:1a7bdf1601170e541dc8118df432a8d9",
  commands: "registry.example.com/site/pinned:7d721d5f6fb13ea765e4f8b7836506ba",
  workdir: "registry.example.com/site/pinned:9ebac7d8728253306c9b49349ca94db6",
  dockerignore: "registry.example.com/site/pinned:946dd1b86ffaaa25ac0d46f8d385727a",
  customPlugins: "registry.example.com/site/pinned:aa1976e8c5abfa0aaebee90744d72972",
  everything: "ghcr.io/acme/everything:b953f2077417a893889a99d42e699626",
};

/** The configuration of {@link PINNED_CONFIGURED}, as environment variables. */
const SITE_ENVIRONMENT: Readonly<Record<string, string>> = {
  IMGTOOL_REGISTRY: "registry.example.com/site",
  IMGTOOL_PLATFORMS: "linux/arm64,linux/amd64",
  IMGTOOL_PYTHON_VERSION: "3.11",
  IMGTOOL_IMAGES_PYTHON: "mirror.example:5000/python:{major}.{minor}-bookworm",
  IMGTOOL_IMAGES_UV: "mirror.example:5000/uv:0.8.13",
  IMGTOOL_PYTHON_INSTALLER: "pip",
  IMGTOOL_DEBIAN_PACKAGES: "ca-certificates",
  IMGTOOL_CACHE_MOUNTS: "false",
};

const SPEC_FOLDER = join(FIXTURES, "pinned");
const SPEC_MODULES = ["spec.ts", "stamp_plugin.ts"];

// Hash every file every time: no digest remembered by an earlier run (or another test) plays
// a part, and nothing is written to the machine's cache.
useDigestCache({ dir: undefined });

/**
 * Write the fixture into `dir`: the spec modules and every file of {@link FIXTURE_FILES},
 * each with its mode (folders 0755, whatever the umask), all modified at `mtime`.
 */
async function writeFixture(dir: string, mtime: Date): Promise<void> {
  const files: [string, string, number][] = [
    ...SPEC_MODULES.map((name): [string, string, number] => [
      name,
      Deno.readTextFileSync(join(SPEC_FOLDER, name)),
      0o644,
    ]),
    ...Object.entries(FIXTURE_FILES).map(([path, file]): [string, string, number] => [
      path,
      file.content,
      file.mode,
    ]),
  ];
  const folders = new Set<string>([dir]);
  for (const [path, content, mode] of files) {
    const target = join(dir, path);
    const folder = join(target, "..");
    await Deno.mkdir(folder, { recursive: true });
    for (let up = folder; up.startsWith(dir); up = join(up, "..")) folders.add(up);
    await Deno.writeTextFile(target, content);
    await Deno.chmod(target, mode);
    await Deno.utime(target, mtime, mtime);
  }
  for (const folder of folders) {
    await Deno.chmod(folder, 0o755);
    await Deno.utime(folder, mtime, mtime);
  }
}

/** The images the spec in `dir` exports, by export name, imported as `imgtool` does. */
async function loadImages(dir: string): Promise<[string, Image][]> {
  const module: Record<string, unknown> = await import(pathToFileURL(join(dir, "spec.ts")).href);
  return Object.entries(module).flatMap(([name, value]) =>
    isImage(value) ? [[name, value] as [string, Image]] : []
  );
}

/**
 * The URI of every image the fixture in `dir` exports, under `config`. Fails if an image is
 * not valid (a pinned tag of an image that cannot be built guards nothing) or if the
 * synchronous identity (`image.uri`) and the asynchronous one (`imgtool uri`) disagree.
 */
async function urisOf(dir: string, config: Config): Promise<Record<string, string>> {
  const plans = (await loadImages(dir)).map(([name, image]) => planImage(image, name, config));
  assert.deepEqual(
    await validateImages(plans, { secretValues: false }),
    [],
    "every pinned image must be valid",
  );
  const uris: Record<string, string> = {};
  for (const plan of plans) {
    const identity = await identify(plan);
    assert.equal(identifySync(plan).uri, identity.uri, `${plan.exportName}: sync and async agree`);
    uris[plan.exportName] = identity.uri;
  }
  return uris;
}

/**
 * Fail, saying what changed and what to do, unless `actual` holds exactly the pinned URIs.
 */
function assertPinned(
  actual: Readonly<Record<string, string>>,
  pinned: Readonly<Record<string, string>>,
  table: string,
  how: string,
): void {
  const problems: string[] = [];
  for (const [name, uri] of Object.entries(pinned)) {
    if (!(name in actual)) {
      problems.push(`  ${name}: pinned, but the spec no longer exports it (pinned ${uri})`);
    } else if (actual[name] !== uri) {
      problems.push(`  ${name}:\n    pinned: ${uri}\n    now:    ${actual[name]}`);
    }
  }
  const unpinned = Object.keys(actual).filter((name) => !(name in pinned));
  for (const name of unpinned) {
    problems.push(`  ${name}: not pinned yet; add  ${JSON.stringify(name)}: "${actual[name]}",`);
  }
  if (problems.length === 0) return;
  assert.fail(
    `a tag changed (tests/fixtures/pinned/spec.ts, ${how}):\n${problems.join("\n")}\n` +
      "Users' registries hold images under the pinned tags; every image whose tag changes is " +
      "rebuilt by every user. If the change is intended, update " +
      `${table} in tests/pinned_tags_test.ts AND add an entry under "Unreleased" in ` +
      "CHANGELOG.md saying which tags change and why. If it is not, find what changed the " +
      "identity (the canonical encoding, a plugin's identify hook or version, a default).",
  );
}

const SOME_TIME = new Date("2001-02-03T04:05:06Z");

Deno.test("the tags of the pinned specs are the released ones", async () => {
  await withTempDir(async (dir) => {
    await writeFixture(dir, SOME_TIME);
    const config = loadConfig({ startDir: dir, env: {} });
    assertPinned(await urisOf(dir, config), PINNED, "PINNED", "no configuration but its own");
  });
});

Deno.test("the tags under a site configuration are the released ones", async () => {
  await withTempDir(async (dir) => {
    await writeFixture(dir, SOME_TIME);
    const config = loadConfig({ startDir: dir, env: SITE_ENVIRONMENT });
    assertPinned(
      await urisOf(dir, config),
      PINNED_CONFIGURED,
      "PINNED_CONFIGURED",
      `configured by ${Object.keys(SITE_ENVIRONMENT).join(", ")}`,
    );
  });
});

Deno.test("imgtool uri prints the pinned URIs", async () => {
  await withTempDir(async (dir) => {
    const project = join(dir, "project");
    await writeFixture(project, SOME_TIME);
    // Digests the command remembers go to this test's folder, not the machine's cache.
    const result = await imgtool(["uri", "--json", "spec.ts"], {
      cwd: project,
      env: { XDG_CACHE_HOME: join(dir, "cache") },
    });
    assert.equal(result.code, 0, result.stderr);
    const printed = JSON.parse(result.stdout) as { image: string; uri: string }[];
    assertPinned(
      Object.fromEntries(printed.map(({ image, uri }) => [image, uri])),
      PINNED,
      "PINNED",
      "as `imgtool uri` prints them",
    );
  });
});

Deno.test("the pinned tags depend on no folder or modification time of this machine", async () => {
  // Two copies, in two folders, written at two other times: the same tags as each other,
  // so that the pinned values hold on any machine.
  const tagsAt = (mtime: Date) =>
    withTempDir(async (dir) => {
      await writeFixture(dir, mtime);
      return await urisOf(dir, loadConfig({ startDir: dir, env: {} }));
    });
  const first = await tagsAt(new Date("1999-12-31T23:59:59Z"));
  const second = await tagsAt(new Date());
  assert.deepEqual(first, second);
});
