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
  fromDebianBase: "imgtool-python:a8ee3fd6db9a1e2f392b59fc02692d59",
  fromDebianBaseArm: "arm:c76ef99c1c3cc7d9fcb763e50981c616",
  fromDebianBaseTwoPlatforms: "ghcr.io/acme/multi:9cb9db853907d9cc325e96d6ef7b2789",
  fromDebianBaseInstallFlyte: "imgtool-python:f1ecebc0c1f9c37ae96dc4de0b1cf6fd",
  clone: "registry.example.com/mirror/cloned:5c3b184ed3f01c8d8c5d4d82d80c7147",
  fromDockerfile: "custom:548b500862389a5506b0657b103bcf62",
  fromRefName: "python-base:0c6b5da28fefd3b6318abba3faf69cf1",
  fromUvScript: "ghcr.io/acme/job:3947266c6bbc08a2af2b565073077d92",
  aptPackages: "pinned:3e22cd1751d96fb1f9a8fe28d7f9483d",
  aptPackagesWithSecret: "pinned:6d6a187c56b7e1e2cfbdd0a4592ca37e",
  pipPackages: "pinned:ae8d54b6d971c3d7987647980d6c794a",
  requirements: "pinned:4b2136fc36abb074395b046ac5e33bce",
  uvProject: "pinned:c22e4de788b40b3562bc90dc3dde5045",
  uvProjectInstall: "pinned:656dddf13afb715bd79bc69cec2412bf",
  poetryProject: "pinned:1d4a3337813a76df0fef07b422c96d7a",
  poetryProjectInstall: "pinned:cec4fbaa0ee7887936f52e43a2590329",
  sourceFile: "pinned:97a57e334472761d003c3365f23895fb",
  sourceFileToWorkdir: "pinned:4aa482022b58f0002b27adf4cb665b07",
  sourceFolder: "pinned:c9a5004ce3aae462cc1a8dfa407579a4",
  sourceFolderContents: "pinned:14721235e1b5395eac09267ed3a4b6ee",
  envVars: "pinned:aef46608dcba62ff423c3b0476deea29",
  commands: "pinned:5b1880fd53cf10b4774b8a5c6813b4d1",
  workdir: "pinned:0710d5c8084fdb54d0fef3aae9f6e382",
  dockerignore: "pinned:b94125d2336feec20c2755f2c6401562",
  customPlugins: "pinned:24986696fd85ccc99d8062c6b133eec6",
  everything: "ghcr.io/acme/everything:8e0db1920dce6a4c41f7a9b7fdbaf3da",
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
  fromDebianBase: "registry.example.com/site/imgtool-python:7ca0695e5166065c825bad3da3b8e143",
  fromDebianBaseArm: "registry.example.com/site/arm:949cccce02abee31603676ab4666a45d",
  fromDebianBaseTwoPlatforms: "ghcr.io/acme/multi:422ab4410ce84b7d55f002104bbd324a",
  fromDebianBaseInstallFlyte:
    "registry.example.com/site/imgtool-python:1a2201d62f85eded611d96d3208d0cd3",
  clone: "registry.example.com/mirror/cloned:2cbdcf32ba0abb5f0a16b26581a1fb76",
  fromDockerfile: "registry.example.com/site/custom:548b500862389a5506b0657b103bcf62",
  fromRefName: "registry.example.com/site/python-base:52b0579ebc92964ee8f625bedb997521",
  fromUvScript: "ghcr.io/acme/job:f5e7553d67a88f72e45fa71c0d483a0f",
  aptPackages: "registry.example.com/site/pinned:61b1fa65a945fb8f248fcb228859a794",
  aptPackagesWithSecret: "registry.example.com/site/pinned:ccc74e3a733ce6f6ff226f4fa55927e2",
  pipPackages: "registry.example.com/site/pinned:23a315f0b7a3d74ad20708c1fa26b19e",
  requirements: "registry.example.com/site/pinned:40f181015abc7fac3e0532257e2628fb",
  uvProject: "registry.example.com/site/pinned:f40b065fc5a440f2a4c067e412765b22",
  uvProjectInstall: "registry.example.com/site/pinned:2823b35058f0e0c4410f9c841fd5a5f5",
  poetryProject: "registry.example.com/site/pinned:dd868df8f95b7ffeee9e454d4e279c49",
  poetryProjectInstall: "registry.example.com/site/pinned:ed0fc267aa04778a7bd88fa8256b7ddc",
  sourceFile: "registry.example.com/site/pinned:2aad42161867cc2e2e4110ac096ab30f",
  sourceFileToWorkdir: "registry.example.com/site/pinned:070faf09478b33ceb0bd46018829f54b",
  sourceFolder: "registry.example.com/site/pinned:2575a655ac5b9cac4a37edbb924fe1ab",
  sourceFolderContents: "registry.example.com/site/pinned:b964e4bc419a1475f059cbb6f38ab2b0",
  envVars: "registry.example.com/site/pinned:54497bca0eb76c82f1978ddbcb39172e",
  commands: "registry.example.com/site/pinned:22b31eb9f1df35110a54f038ae9146e8",
  workdir: "registry.example.com/site/pinned:ae3a7b6e46580e29c8637036e353e43e",
  dockerignore: "registry.example.com/site/pinned:6e51a90ffdb01e68a3e3d14ab674ccdf",
  customPlugins: "registry.example.com/site/pinned:3abff6e44795d280ab9bcc2612858e98",
  everything: "ghcr.io/acme/everything:9f3b3b39c697b1ac134fcd1b9882746c",
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
