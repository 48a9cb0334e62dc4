/**
 * End-to-end checks of recipes on what real projects have (issue 10):
 *
 * - files and folders with any name (`[id].txt`, `data[v2]`, `*`, `?`, spaces, unicode, `$`)
 *   are copied exactly, next to decoys that a pattern reading of their names would match;
 * - `withEnvVars(vars, { expand: true })` extends `PATH` and refers to the image's variables,
 *   and keeps everything else literal (seen by `printenv` in the built image);
 * - an apt layer leaves apt's `docker-clean` hook in place, so a later `apt-get install` in a
 *   user's command leaves no `.deb` in its layer; the apt layer itself holds no package lists
 *   and no downloads.
 *
 * Every build is bounded in time, pushes to the environment's registry, and is looked at as
 * the registry serves it; the images it made are removed afterwards.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  assertExit,
  boundedImgtool,
  e2eTest,
  type Facts,
  inImage,
  makeProject,
  must,
  mustDocker,
  projectConfig,
  removeImages,
  run,
  RUN_ID,
  timing,
} from "./harness.ts";
import { shellQuote } from "../../mod.ts";

/** The longest a build here may take (apt-get reaches Debian's archive). */
const BUILD_SECONDS = 600;

/** Build and push the spec of `dir` with `builder`; the pushed URI. */
async function buildAndPush(dir: string, builder: string, what: string): Promise<string> {
  const started = performance.now();
  const built = await boundedImgtool(
    dir,
    ["build", "spec.ts", "--push", "--builder", builder],
    BUILD_SECONDS,
  );
  timing(`${builder}: ${what} build and push`, started);
  assertExit(built, 0, `${what}: build --push`);
  return built.stdout.trim().split("\n").pop() ?? "";
}

// --- files with any name, and environment expansion ------------------------------------

/** The odd names, the decoys a pattern reading would match, and what each file holds. */
const ODD_FILES: Record<string, string> = {
  "[id].txt": "the file named [id].txt\n",
  "i.txt": "decoy for [id].txt\n",
  "d.txt": "decoy for [id].txt\n",
  "we*rd ?.txt": "the file named we*rd ?.txt\n",
  "weXrd !.txt": "decoy for we*rd ?.txt\n",
  "ünï $x.txt": "the file named ünï $x.txt\n",
  "plain.txt": "a plain file\n",
  "data[v2]/[x].txt": "x in data[v2]\n",
  "data[v2]/sub/*.py": "star in data[v2]\n",
  "data[v2]/.hidden": "hidden in data[v2]\n",
  "data2/decoy.txt": "decoy for data[v2]\n",
  "datav/decoy.txt": "decoy for data[v2]\n",
};

/** Where each file must be in the image, and which file of the project it is. */
const ODD_PLACES: Record<string, string> = {
  "/work/[id].txt": "[id].txt",
  "/opt/files/we*rd ?.txt": "we*rd ?.txt",
  "/opt/files/renamed [1].txt": "ünï $x.txt",
  // Docker's rule for a destination without a trailing /: into the folder the image has.
  "/work/existing/plain.txt": "plain.txt",
  "/work/data[v2]/[x].txt": "data[v2]/[x].txt",
  "/work/data[v2]/sub/*.py": "data[v2]/sub/*.py",
  "/work/data[v2]/.hidden": "data[v2]/.hidden",
  "/opt/data/[x].txt": "data[v2]/[x].txt",
  "/opt/data/sub/*.py": "data[v2]/sub/*.py",
  "/opt/data/.hidden": "data[v2]/.hidden",
};

const EXPANDED = {
  // Set before E2E_FROM in the same layer: E2E_FROM must still see the old value.
  E2E_TOOL_HOME: "changed",
  PATH: "/opt/tool/bin:$PATH",
  E2E_FROM: "${E2E_TOOL_HOME}/x",
  E2E_LITERAL: "costs $5, ${A:-b}, $$ and \\ stay",
  E2E_MULTI: "line one\n$E2E_TOOL_HOME\tend",
};

function oddNamesSpec(facts: Facts): string {
  const q = JSON.stringify;
  return `import { Image } from "imgtool";

export default Image.fromBase(${q(facts.PYTHON_BASE)})
  .clone({ name: "odd-names" })
  .withEnvVars({ E2E_RUN: ${q(RUN_ID)}, E2E_TOOL_HOME: "/opt/tool" })
  .withWorkdir("/work")
  .withCommands("mkdir -p /work/existing")
  .withSourceFile(${q("./[id].txt")})
  .withSourceFile(${q("./we*rd ?.txt")}, "/opt/files/")
  .withSourceFile(${q("./ünï $x.txt")}, ${q("/opt/files/renamed [1].txt")})
  .withSourceFile("./plain.txt", "/work/existing")
  .withSourceFolder(${q("./data[v2]")})
  .withSourceFolder(${q("./data[v2]")}, "/opt/data")
  .withEnvVars(${q(EXPANDED)}, { expand: true });
`;
}

for (const builder of ["docker", "buildah"] as const) {
  e2eTest(
    `${builder}: files and folders with any name are copied exactly, and withEnvVars expand extends PATH`,
    async (t, facts) => {
      const registry = `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-real-${builder}`;
      const dir = await makeProject({
        "imgtool.toml": projectConfig(facts, registry),
        "spec.ts": oddNamesSpec(facts),
        ...ODD_FILES,
      });
      let uri = "";
      try {
        uri = await buildAndPush(dir, builder, "odd-names");
        if (builder === "buildah") await run("buildah", ["rmi", uri]);
        await removeImages(facts, [uri]);
        await mustDocker(facts, ["pull", "-q", uri]);

        await t.step("every file is where the copy contract says, and no decoy is", async () => {
          const listing = await inImage(facts, uri, [
            "find",
            "/work",
            "/opt/files",
            "/opt/data",
            "-type",
            "f",
            "-print0",
          ]);
          assert.deepEqual(
            listing.split("\0").filter(Boolean).sort(),
            Object.keys(ODD_PLACES).sort(),
          );
          for (const [path, file] of Object.entries(ODD_PLACES)) {
            assert.equal(await inImage(facts, uri, ["cat", path]), ODD_FILES[file], path);
          }
        });

        await t.step(
          "expand: PATH is extended, references see the image's values, the rest is literal",
          async () => {
            // The PATH the base image has, from the base itself.
            const basePath = (await inImage(facts, facts.PYTHON_BASE, ["printenv", "PATH"])).trim();
            assert.ok(basePath, "the base image has no PATH");
            const printed = async (name: string) =>
              (await inImage(facts, uri, ["printenv", name])).replace(/\n$/, "");
            assert.equal(await printed("PATH"), `/opt/tool/bin:${basePath}`);
            assert.equal(await printed("E2E_TOOL_HOME"), "changed");
            assert.equal(await printed("E2E_FROM"), "/opt/tool/x");
            assert.equal(await printed("E2E_LITERAL"), EXPANDED.E2E_LITERAL);
            assert.equal(await printed("E2E_MULTI"), "line one\n/opt/tool\tend");
          },
        );
      } finally {
        if (uri) await removeImages(facts, [uri]);
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}

// --- lean layers after apt ---------------------------------------------------------------

/**
 * Debian's and Ubuntu's images carry this hook (debuerreotype's `docker-clean`); the
 * environment's base was made with debootstrap and lacks it, so the spec adds it first.
 */
const DOCKER_CLEAN_LINES = [
  'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };',
  'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };',
  'Dir::Cache::pkgcache "";',
  'Dir::Cache::srcpkgcache "";',
];
const DOCKER_CLEAN = DOCKER_CLEAN_LINES.join("\n");

const HOOK = "/etc/apt/apt.conf.d/docker-clean";
const USER_INSTALL = "apt-get update && apt-get install -y --no-install-recommends hello";

function leanAptSpec(facts: Facts): string {
  const q = JSON.stringify;
  return `import { Image } from "imgtool";

export default Image.fromBase(${q(facts.PYTHON_BASE)})
  .clone({ name: "lean-apt" })
  .withEnvVars({ E2E_RUN: ${q(RUN_ID)} })
  // What Debian's official images have.
  .withCommands(${q(`printf '%s\\n' ${DOCKER_CLEAN_LINES.map(shellQuote).join(" ")} > ${HOOK}`)})
  .withAptPackages("tree")
  .withCommands(${q(USER_INSTALL)});
`;
}

/** The files of each layer of a saved image, by the history line that made the layer. */
async function layerFiles(facts: Facts, uri: string): Promise<Map<string, string[]>> {
  const dir = await Deno.makeTempDir({ prefix: "imgtool-e2e-layers-" });
  try {
    const tar = join(dir, "image.tar");
    await mustDocker(facts, ["save", "-o", tar, uri]);
    await must("tar", ["-xf", tar, "-C", dir]);
    const [manifest] = JSON.parse(await Deno.readTextFile(join(dir, "manifest.json")));
    const config = JSON.parse(await Deno.readTextFile(join(dir, manifest.Config)));
    const made = (config.history as { created_by?: string; empty_layer?: boolean }[])
      .filter((entry) => !entry.empty_layer);
    assert.equal(made.length, manifest.Layers.length, "history and layers do not pair up");
    const layers = new Map<string, string[]>();
    for (const [index, layer] of (manifest.Layers as string[]).entries()) {
      const listing = await must("tar", ["-tf", join(dir, layer)]);
      layers.set(made[index].created_by ?? "", listing.split("\n").filter(Boolean));
    }
    return layers;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The files of the one layer whose history line holds `marker`. */
function layerOf(layers: Map<string, string[]>, marker: string): string[] {
  const found = [...layers].filter(([createdBy]) => createdBy.includes(marker));
  assert.equal(
    found.length,
    1,
    `one layer made by a step holding ${marker}: ${[...layers.keys()]}`,
  );
  return found[0][1];
}

e2eTest(
  "docker: an apt layer keeps apt's docker-clean hook, so apt-get in a later command leaves no .deb in its layer",
  async (t, facts) => {
    const registry = `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-real-apt`;
    const dir = await makeProject({
      "imgtool.toml": projectConfig(facts, registry),
      "spec.ts": leanAptSpec(facts),
    });
    let uri = "";
    try {
      uri = await buildAndPush(dir, "docker", "lean-apt");
      await removeImages(facts, [uri]);
      await mustDocker(facts, ["pull", "-q", uri]);
      const layers = await layerFiles(facts, uri);

      await t.step("the hook is in the final image as the spec wrote it", async () => {
        assert.equal(await inImage(facts, uri, ["cat", HOOK]), `${DOCKER_CLEAN}\n`);
        const everywhere = [...layers.values()].flat();
        assert.ok(!everywhere.some((path) => path.endsWith(".wh.docker-clean")), "removed");
      });

      await t.step(
        "the apt layer installed its package and holds no lists and no downloads",
        () => {
          const files = layerOf(layers, "--no-install-recommends tree");
          assert.ok(files.includes("usr/bin/tree"), "tree is not in the apt layer");
          const caches = files.filter((path) =>
            /^var\/lib\/apt\/lists\/.+[^/]$/.test(path) || /^var\/cache\/apt\/.+[^/]$/.test(path) ||
            path.endsWith(".deb")
          );
          assert.deepEqual(caches, []);
        },
      );

      await t.step("the user's apt-get install leaves no .deb in its layer", () => {
        const files = layerOf(layers, USER_INSTALL);
        assert.ok(files.includes("usr/bin/hello"), "hello is not in the command's layer");
        assert.deepEqual(files.filter((path) => path.endsWith(".deb")), []);
        assert.deepEqual(files.filter((path) => path.endsWith(".bin")), []);
      });
    } finally {
      if (uri) await removeImages(facts, [uri]);
      await Deno.remove(dir, { recursive: true });
    }
  },
);
