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
  fromBaseWithWorkdir: "base:09ff27e416659d8074775f525ad51417",
  fromBasePinned: "debian:ad011e9be9d3b9037dee83bac27bb5b1",
  fromDebianBase: "imgtool-python:2dfd879ad02e1fb3844963afedce883c",
  fromDebianBaseArm: "arm:8c1a9e6f9e371cb985b57cb5437e3ab3",
  fromDebianBaseTwoPlatforms: "ghcr.io/acme/multi:3dd768ca02247bece36c9f89fcdcd569",
  fromDebianBaseInstallFlyte: "imgtool-python:c2fa2ce89c4c00bc46405b5d0a89f7f7",
  clone: "registry.example.com/mirror/cloned:32da687753782ba9034aa6772ac7b165",
  fromDockerfile: "custom:415d00de115bd9454abbedd0f2c94e51",
  fromRefName: "python-base:58d9e5e228a0f67b7972797557465373",
  fromUvScript: "ghcr.io/acme/job:bf1e4de8cf379521e02aacf4699c9e4d",
  aptPackages: "pinned:8f67685d1e8e0996230d4649bf2fa6b0",
  aptPackagesWithSecret: "pinned:e39350f9f22574b3d87bbf4bf0425650",
  pipPackages: "pinned:4b8df0853f9fb00b65227ce87c283ea2",
  requirements: "pinned:955937081c570e4e89ef9d9448b8e6ed",
  uvProject: "pinned:9ea17f2b9ad3639bd7e0704b13695101",
  uvProjectInstall: "pinned:5f1e32c3b6ce8115e28297b807d4ed61",
  poetryProject: "pinned:fa9319df58cc3199d3a210f4a6302fbb",
  poetryProjectInstall: "pinned:6ff204339283db3e76c7a5ab1efc724c",
  sourceFile: "pinned:a2d94c429e48d2a794fd5628c018b14c",
  sourceFileToWorkdir: "pinned:06b10964fb8113dd716bf849b6ff7829",
  sourceFolder: "pinned:ed99b33c8b2a9cd087f2eaa80f9c9b6a",
  sourceFolderContents: "pinned:02b2942c638cc6e3cd93a4793098fd5f",
  envVars: "pinned:7f379e27559f55cba4ced8da0035c386",
  commands: "pinned:cb237f8217f75d85599c66f05b4024f5",
  workdir: "pinned:3d24c201719852a39f9de09aeb0ce5f3",
  dockerignore: "pinned:50f545de1b0b73e81478424a0c8c85ca",
  customPlugins: "pinned:d013acf4e526d777f031867d176ff940",
  everything: "ghcr.io/acme/everything:1acba94a8a7beaef8b4ea5e20efb7457",
};

/**
 * The same spec's URIs under a site configuration (mirrors, pip, default registry, platforms
 * and Python version from `IMGTOOL_*` variables): how configuration enters the tags is pinned
 * too.
 */
const PINNED_CONFIGURED: Readonly<Record<string, string>> = {
  fromBase: "debian:bookworm-slim",
  fromBaseWithWorkdir: "registry.example.com/site/base:c20c66e875fba955a1042c0bea7d9f5b",
  fromBasePinned: "registry.example.com/site/debian:4139a8f0c924cafaff5dec07f30c4512",
  fromDebianBase: "registry.example.com/site/imgtool-python:7f4c46eef419e716892e4f7b366a17f8",
  fromDebianBaseArm: "registry.example.com/site/arm:d966da68b639de676856105c586f6ef4",
  fromDebianBaseTwoPlatforms: "ghcr.io/acme/multi:6d45bb65a1b0e18f12906aa60ab67477",
  fromDebianBaseInstallFlyte:
    "registry.example.com/site/imgtool-python:ac6318fabe22b7c11ae91fcc12b47d1a",
  clone: "registry.example.com/mirror/cloned:75fab4d15f613ea939c8e35b3f93220a",
  fromDockerfile: "registry.example.com/site/custom:84e7dd1e2fcd04ca9430e186ffe6cb03",
  fromRefName: "registry.example.com/site/python-base:9a67009e47aa27c67723d3eb1da0a9b7",
  fromUvScript: "ghcr.io/acme/job:afc053e27efc0627874c05432d37fcdd",
  aptPackages: "registry.example.com/site/pinned:b8e7a4fe063f2e909715d68ffea5ba79",
  aptPackagesWithSecret: "registry.example.com/site/pinned:e521c70c49bd3fb61f54382d1412c49c",
  pipPackages: "registry.example.com/site/pinned:7e86a561c2d425eb509942821fb56a2e",
  requirements: "registry.example.com/site/pinned:0873237173b62f931dafcf4f163c157e",
  uvProject: "registry.example.com/site/pinned:6e5f9f74b1ee5e8c066839636a252fc7",
  uvProjectInstall: "registry.example.com/site/pinned:f612faaa55feac095397ec944e8c6f77",
  poetryProject: "registry.example.com/site/pinned:684cf63bf076f8253d1bbd7e8d2e820e",
  poetryProjectInstall: "registry.example.com/site/pinned:e43087a2c700624d3fda80a0402efb98",
  sourceFile: "registry.example.com/site/pinned:e92255629fec2ee3639a73f904c04017",
  sourceFileToWorkdir: "registry.example.com/site/pinned:4942a7500bba74a0c0f7461aa5ea789e",
  sourceFolder: "registry.example.com/site/pinned:94cfee87c856023ecd522dd3cc08a3ea",
  sourceFolderContents: "registry.example.com/site/pinned:b5393ac03726553962c0c586da93e684",
  envVars: "registry.example.com/site/pinned:6cbc60244c05937973d9aad12e0830c3",
  commands: "registry.example.com/site/pinned:77fb439551563c26aa777065b52cd0c7",
  workdir: "registry.example.com/site/pinned:e06ef01820f9755363d09f6cbeb8faeb",
  dockerignore: "registry.example.com/site/pinned:20336f03f197ca613cfb4e346aa49a2c",
  customPlugins: "registry.example.com/site/pinned:ef5a62aa4c2a8a49076b78460b95802e",
  everything: "ghcr.io/acme/everything:27d459f4f002cb0b9e2af5b11a7fecac",
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
