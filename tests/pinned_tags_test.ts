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
  fromBaseWithWorkdir: "base:1219f7f9c31143cec3a9ff92d40d0f5a",
  fromBasePinned: "debian:1648dbc84f3a381cce80c5b2714ee5f5",
  fromDebianBase: "imgtool-python:a4662b36c6f773fc354086319d5d1568",
  fromDebianBaseArm: "arm:dbaf3e51a60e0ab66f91780afecd81fc",
  fromDebianBaseTwoPlatforms: "ghcr.io/acme/multi:76c2592ccd9614f7495acbd2b6ffc04d",
  fromDebianBaseInstallFlyte: "imgtool-python:f4149379268b09c8fa93e9599a4436a4",
  clone: "registry.example.com/mirror/cloned:0c7aa5e4bf3b16a5d6ed80e362f5a05b",
  fromDockerfile: "custom:de2848767e2ef20b16932e8a2c327f20",
  fromRefName: "python-base:f09cc9bd5f837bdfbf9c98ac3eb2b500",
  fromUvScript: "ghcr.io/acme/job:85769adebdfee3f250ef03f73f2f6b09",
  aptPackages: "pinned:9bc7bc38b6b11d78371ad9f9e0925830",
  aptPackagesWithSecret: "pinned:b51fac18ff16fae5b82c74d38136f2c1",
  pipPackages: "pinned:8de3d9ee23819a1b1dc00d56294546a9",
  requirements: "pinned:7ce8d1be5b17a9cf464fec5914aaf215",
  uvProject: "pinned:b6d780fff532ce961778d97499d82793",
  uvProjectInstall: "pinned:4f20fd59d7bb0d5f4bf64791497061c1",
  poetryProject: "pinned:3c54d03d55cdd6d1aaf81eebd047764e",
  poetryProjectInstall: "pinned:0783c1c63bffe9e11b8289f333c3136a",
  sourceFile: "pinned:d9190eb600e8a40b32b65a020c5ce883",
  sourceFileToWorkdir: "pinned:aa90479ff837407e659acb1ea797ae6f",
  sourceFolder: "pinned:eb0870023eb5b6a99e4409ff74acafcf",
  sourceFolderContents: "pinned:9b0cac67c10d1d40cd6ab368c14c4d7e",
  envVars: "pinned:ba5614deea627cb475a452a5b77717ff",
  commands: "pinned:be175eb3085304d619fc35124d367c83",
  workdir: "pinned:5be62464a949017aa82d700b29aeccd4",
  dockerignore: "pinned:50a503e83956e4457772b4f929b2a545",
  customPlugins: "pinned:1a77ea580345f40bde9dc5bc7e1364a6",
  everything: "ghcr.io/acme/everything:900359407d5ba8fc8db38358cb6e2189",
};

/**
 * The same spec's URIs under a site configuration (mirrors, pip, default registry, platforms
 * and Python version from `IMGTOOL_*` variables): how configuration enters the tags is pinned
 * too.
 */
const PINNED_CONFIGURED: Readonly<Record<string, string>> = {
  fromBase: "debian:bookworm-slim",
  fromBaseWithWorkdir: "registry.example.com/site/base:a8f270bb0f066a6f3288a1ea4688dc83",
  fromBasePinned: "registry.example.com/site/debian:2ccc17c76cb35fa367b28441f776dcfa",
  fromDebianBase: "registry.example.com/site/imgtool-python:545107b6e73fd27df7b84ed88df5032e",
  fromDebianBaseArm: "registry.example.com/site/arm:a4c59fcfc42554cfaf5ad9e438c8ea0c",
  fromDebianBaseTwoPlatforms: "ghcr.io/acme/multi:34fffc1a7ec14aef681e2173ddadd230",
  fromDebianBaseInstallFlyte:
    "registry.example.com/site/imgtool-python:4d3b69f59f134b62fcf38572967e62b6",
  clone: "registry.example.com/mirror/cloned:1a944d8ccab796e1d54865a35ad1c0ca",
  fromDockerfile: "registry.example.com/site/custom:de2848767e2ef20b16932e8a2c327f20",
  fromRefName: "registry.example.com/site/python-base:72ecbe39fba152b729004c4c20b2753e",
  fromUvScript: "ghcr.io/acme/job:3853a5e88627b8079c534066fd01a662",
  aptPackages: "registry.example.com/site/pinned:cf667a10798ca8c9cd78cd11ea0d7226",
  aptPackagesWithSecret: "registry.example.com/site/pinned:349951693920cb3810b693c73409e124",
  pipPackages: "registry.example.com/site/pinned:806bf65544c475d436ea909982510c3d",
  requirements: "registry.example.com/site/pinned:50c892168a0645261531f6d85fd2751a",
  uvProject: "registry.example.com/site/pinned:00faad9e7981bae49c8e0a73d91d8796",
  uvProjectInstall: "registry.example.com/site/pinned:ccf4d0bab46cf7806fd1a2008ac526b4",
  poetryProject: "registry.example.com/site/pinned:9c3deff7d229836555e80b5d00b83548",
  poetryProjectInstall: "registry.example.com/site/pinned:36370a3ffba9fd0bd11a320744a68f78",
  sourceFile: "registry.example.com/site/pinned:60581f2945ad223dabc829edd818be34",
  sourceFileToWorkdir: "registry.example.com/site/pinned:af0e0b908c1babce1bd317b2ee482090",
  sourceFolder: "registry.example.com/site/pinned:d0ffcf2a1a820fc8a6fed0b3863bd736",
  sourceFolderContents: "registry.example.com/site/pinned:bb77af8fcf2439b710493a9c45b0d07f",
  envVars: "registry.example.com/site/pinned:b471ee52c2e67b6a403ebc0bc747920a",
  commands: "registry.example.com/site/pinned:0212231f10880ccf6f4db56c8f37dd71",
  workdir: "registry.example.com/site/pinned:10162660e453a955536d94ce9c2f77c4",
  dockerignore: "registry.example.com/site/pinned:de9f94e69cfe6c05a6187bfe6b1297f9",
  customPlugins: "registry.example.com/site/pinned:9f4f257912054b4de722b1313650bdaf",
  everything: "ghcr.io/acme/everything:78250e6c543a338ae56968745efff25b",
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
