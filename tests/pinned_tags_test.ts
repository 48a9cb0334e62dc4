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
  fromDebianBase: "imgtool-python:fdc2f011564f4c4014ea0e4fd335ec0e",
  fromDebianBaseArm: "arm:ddefc9ed79a8d042685f876664d5cd13",
  fromDebianBaseTwoPlatforms: "ghcr.io/acme/multi:d09a4bb8e01ae7b19d3a8120db00ac1a",
  fromDebianBaseInstallFlyte: "imgtool-python:e354ec9169485a30280b9355cc924e80",
  clone: "registry.example.com/mirror/cloned:9ea4d97d3b111ed6e7bbfdc19d892644",
  fromDockerfile: "custom:415d00de115bd9454abbedd0f2c94e51",
  fromRefName: "python-base:19a634f53584dd8ab9d1ccfb4dfe571c",
  fromUvScript: "ghcr.io/acme/job:b719c35117b2a658f58ecbcc74dbe0fb",
  aptPackages: "pinned:b87d156e66279b5b8435337aaa251946",
  aptPackagesWithSecret: "pinned:c312751b06b1672acb3870cb7847a5b6",
  pipPackages: "pinned:4590830c84b3e6414b2c7911aeeee6c2",
  requirements: "pinned:25dfa3039c64212cd49357fcfe8c4f23",
  uvProject: "pinned:60f874a2e153f8c6cd402972899765ee",
  uvProjectInstall: "pinned:407a0983330fdff3531abaf856de0ddc",
  poetryProject: "pinned:2e7036ee59044ed9b61ad6fe86297227",
  poetryProjectInstall: "pinned:e17ca482f1ca51b0a80cc45c915dc3d3",
  sourceFile: "pinned:e5adc9e177e45fca0d0377df4cbe84f3",
  sourceFileToWorkdir: "pinned:04a3fdb939d820cd1429a2eb921d4b53",
  sourceFolder: "pinned:e8815173cd2dd6a0c83cfa3b0b900f3a",
  sourceFolderContents: "pinned:49f49afebad338292998845430d784b5",
  envVars: "pinned:a388e8101d182e5f518c7b9ae7508445",
  commands: "pinned:2be1904699bf994706708f01e826d6bb",
  workdir: "pinned:a769f1457c72dbf130b3c6402185304e",
  dockerignore: "pinned:0aba68fc701aa6d3e7978869e2822800",
  customPlugins: "pinned:0d1d3556c8e26f7c5dfdbf2323dc8662",
  everything: "ghcr.io/acme/everything:58cafe249deacd595b5eda6365ca4a2d",
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
  fromDebianBase: "registry.example.com/site/imgtool-python:6029c971a4b9e33c1826c96fbdc8e8e7",
  fromDebianBaseArm: "registry.example.com/site/arm:b1774e42ee9d6abf7295e14e7d71489e",
  fromDebianBaseTwoPlatforms: "ghcr.io/acme/multi:bda37183c0876bf7f48b0c1ad82d9337",
  fromDebianBaseInstallFlyte:
    "registry.example.com/site/imgtool-python:502fed6a1dd18ea5d8f1220984cfd086",
  clone: "registry.example.com/mirror/cloned:a6e08eeb718456f684f0b1753b6aad02",
  fromDockerfile: "registry.example.com/site/custom:84e7dd1e2fcd04ca9430e186ffe6cb03",
  fromRefName: "registry.example.com/site/python-base:d3fb523bff2977c53b0547b7a86c9d6e",
  fromUvScript: "ghcr.io/acme/job:85dc9eafad30e0b6252adbd49900cb66",
  aptPackages: "registry.example.com/site/pinned:3a8146df2f302b00acc01bf89f41b5a1",
  aptPackagesWithSecret: "registry.example.com/site/pinned:6319371dcd4bebd52a6f499856c590a4",
  pipPackages: "registry.example.com/site/pinned:73596610c74874a5105b26aaafbaeea5",
  requirements: "registry.example.com/site/pinned:e420c1051567fbd63c3a77f71861b618",
  uvProject: "registry.example.com/site/pinned:55c4f484f45045ad56534562474e7f63",
  uvProjectInstall: "registry.example.com/site/pinned:d855d876f378d561ed2d40aa184a6e75",
  poetryProject: "registry.example.com/site/pinned:9b131ca0523a1c9fe7f1d5af959eba37",
  poetryProjectInstall: "registry.example.com/site/pinned:5e2a258945a99f8024629012826f7177",
  sourceFile: "registry.example.com/site/pinned:38330b7be9314ba4353266c70df5c4ae",
  sourceFileToWorkdir: "registry.example.com/site/pinned:ce120c21aef809fc11242ffa0eb7cb12",
  sourceFolder: "registry.example.com/site/pinned:de70be31d90e161eb171d3a73c874b22",
  sourceFolderContents: "registry.example.com/site/pinned:6dd3e71ac76412687c92a4216d756af5",
  envVars: "registry.example.com/site/pinned:754574e2b16f6c9a02fa2d067e2215c0",
  commands: "registry.example.com/site/pinned:82b95989cc2c6b0d522ae0a26455049a",
  workdir: "registry.example.com/site/pinned:f1719a1a97e51da878e11990480bae1a",
  dockerignore: "registry.example.com/site/pinned:4aa69fd0d8195b8d1e427110f5060381",
  customPlugins: "registry.example.com/site/pinned:5056a98d5ecc545539ee019cb587cb5a",
  everything: "ghcr.io/acme/everything:89661b5451c55312af33027f3f434eff",
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
