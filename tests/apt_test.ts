import assert from "node:assert/strict";
import { Image } from "imgtool";
import * as images from "./fixtures/project/images.ts";
import { asText, dockerfileOf, fixtureConfig, renderGolden } from "./helpers.ts";
import { identify, planImage, renderImage } from "../mod.ts";
import { APT_DOWNLOADS } from "../plugins/apt.ts";

const config = fixtureConfig();
const noCache = fixtureConfig({}, { "cache.mounts": "false" });

Deno.test("apt plugin installs sorted, de-duplicated, quoted packages with apt caches on cache mounts", async (t) => {
  const golden = await renderGolden(images.aptPackages, config);
  assert.match(golden, /--no-install-recommends ca-certificates curl git\n/);
  assert.match(golden, /--mount=type=cache,target=\/var\/cache\/apt,id=imgtool-apt-cache/);
  assert.match(
    golden,
    / apt-get -o Dir::Cache::Archives=\/var\/cache\/apt\/imgtool-archives\/ -o Dir::State::Lists=\/var\/cache\/apt\/imgtool-lists\/ install -y /,
  );
  await t.assertSnapshot(golden, asText);
});

Deno.test("apt plugin without cache mounts cleans apt lists in the same step", async (t) => {
  const golden = await renderGolden(images.aptPackages, noCache);
  assert.doesNotMatch(golden, /--mount=type=cache/);
  assert.match(golden, /&& apt-get clean \\\n {4}&& rm -rf \/var\/lib\/apt\/lists\/\*\n/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("apt plugin mounts its secrets as files where asked", async (t) => {
  const golden = await renderGolden(images.aptWithSecret, config);
  assert.match(
    golden,
    /--mount=type=secret,id=APT_AUTH,target=\/etc\/apt\/auth.conf.d\/private.conf,required=true/,
  );
  // A secret with a mount is a file only: it is not exported as a variable.
  assert.doesNotMatch(golden, /export APT_AUTH/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("apt plugin quotes what the shell would otherwise read", async () => {
  // Invalid names are validation errors; should one get through, the shell still sees one word.
  const dockerfile = await dockerfileOf(
    Image.fromBase("debian:bookworm").withAptPackages(["pkg;reboot"]),
    config,
  );
  assert.match(dockerfile, /--no-install-recommends 'pkg;reboot'/);
});

Deno.test("apt plugin identity ignores package order and repeats", async () => {
  const base = Image.fromBase("debian:bookworm");
  const tag = async (image: Image) => (await identify(planImage(image, "default", config))).tag;
  const a = await tag(base.withAptPackages(["git", "curl"]));
  assert.equal(await tag(base.withAptPackages(["curl", "git", "git"])), a);
  assert.notEqual(await tag(base.withAptPackages(["curl", "git", "make"])), a);
});

// Debian's and Ubuntu's images carry this hook (debuerreotype's docker-clean): after every
// dpkg run and apt-get update, it deletes downloaded packages, so layers keep none.
const DOCKER_CLEAN =
  `DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";`;

/** The apt steps of an image: the RUN instructions that call apt-get. */
async function aptSteps(image: Image, configuration = config): Promise<string[]> {
  const rendered = await renderImage(planImage(image, "default", configuration));
  return rendered.sections.flatMap((section) => section.instructions)
    .filter((instruction) => instruction.includes("apt-get"));
}

/** Does a shell glob (`*` only) match the path? */
function globMatches(glob: string, path: string): boolean {
  const pattern = glob.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replaceAll("*", "[^/]*");
  return new RegExp(`^${pattern}$`).test(path);
}

Deno.test("apt steps leave apt's docker-clean hook in place, with or without cache mounts, in withAptPackages and the Debian base", async () => {
  const images = [
    Image.fromBase("debian:bookworm").withAptPackages("git"),
    Image.fromDebianBase(),
  ];
  for (const configuration of [config, noCache]) {
    for (const image of images) {
      const steps = await aptSteps(image, configuration);
      assert.ok(steps.length > 0, "no apt step");
      // Nothing removes, moves or rewrites apt's configuration.
      for (const step of steps) assert.doesNotMatch(step, /apt\.conf|docker-clean/);
    }
  }
});

Deno.test("apt steps with cache mounts keep downloads in a cache-mount folder the docker-clean hook does not clean", async () => {
  const [step] = await aptSteps(Image.fromBase("debian:bookworm").withAptPackages("git"));
  const installs = step.split("\n").filter((line) => line.includes("apt-get"));
  for (const line of installs) assert.match(line, /apt-get -o Dir::Cache::Archives=(\S+) /);
  const folder = /Dir::Cache::Archives=(\S+)/.exec(step)![1];
  assert.equal(folder, APT_DOWNLOADS);
  const mounts = [...step.matchAll(/--mount=type=cache,target=([^,]+)/g)].map((m) => m[1]);
  assert.ok(mounts.some((target) => folder.startsWith(`${target}/`)), "not on a cache mount");
  const globs = [...DOCKER_CLEAN.matchAll(/rm -f ([^|]+)\|\|/g)]
    .flatMap((match) => match[1].trim().split(/\s+/));
  assert.ok(globs.length > 0);
  for (const path of [`${folder}git_1_amd64.deb`, `${folder}partial/git_1_amd64.deb`]) {
    for (const glob of globs) assert.ok(!globMatches(glob, path), `${glob} cleans ${path}`);
  }
  // The hook does clean the folder apt uses by default: the test's globs work.
  assert.ok(globs.some((glob) => globMatches(glob, "/var/cache/apt/archives/git_1_amd64.deb")));
});

Deno.test("apt steps leave no package lists and no downloads in the layer", async () => {
  const image = Image.fromBase("debian:bookworm").withAptPackages("git");
  // With cache mounts: every folder apt writes during the step is on the one cache mount
  // (one: buildah keeps all but one of a step's cache locks until the build ends).
  const [cached] = await aptSteps(image);
  const mounts = [...cached.matchAll(/--mount=type=cache,target=([^,]+)/g)].map((m) => m[1]);
  assert.deepEqual(mounts, ["/var/cache/apt"]);
  const lists = /-o Dir::State::Lists=(\S+)/.exec(cached)?.[1] ?? "";
  const archives = /-o Dir::Cache::Archives=(\S+)/.exec(cached)?.[1] ?? "";
  for (const folder of [lists, archives]) {
    assert.ok(folder.startsWith("/var/cache/apt/"), `${folder} is not on the cache mount`);
  }
  // Both apt-get calls read the lists from there, and the step makes the folders apt needs.
  assert.equal(cached.split(`-o Dir::State::Lists=${lists}`).length - 1, 2);
  assert.match(cached, new RegExp(`mkdir -p [^&]*${lists}partial`));
  // Without: the step removes them after the install, in the same RUN.
  const [plain] = await aptSteps(image, noCache);
  const commands = plain.split(/ \\\n\s+&& /);
  const install = commands.findIndex((command) => / apt-get install /.test(command));
  assert.ok(install >= 0);
  assert.ok(commands.indexOf("apt-get clean") > install, "no apt-get clean after the install");
  assert.ok(commands.indexOf("rm -rf /var/lib/apt/lists/*") > install, "lists are left");
});
