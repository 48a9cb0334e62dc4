/**
 * A Poetry monorepo (tests/fixtures/poetry_monorepo: an app with a path dependency on a
 * sibling library, `develop = true`, and a dev-group path dependency on a tool), built for
 * real with Debian's Poetry against the local package index, in both install modes:
 *
 * - the library (and the tool, where its group is installed) is in the final image as a real
 *   package in site-packages, not an editable link into the build's mount, which is gone;
 * - `install_project` installs the app from a wheel built into a fresh `dist/` (a stale one
 *   on the host is never installed), in a step after the dependencies, so that editing the
 *   app's code rebuilds only that step: every layer before it is reused.
 *
 * With each builder the images are pushed, removed and pulled back, then checked by running
 * Python in them as their own user; the images made are removed at the end.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { environmentWithoutImgtool, IMGTOOL_COMMAND } from "../helpers.ts";
import {
  assertExit,
  copyTree,
  e2eTest,
  type Facts,
  imgtool,
  inImage,
  jsonImages,
  makeProject,
  must,
  mustDocker,
  projectConfig,
  type Ran,
  removeImages,
  REPO_ROOT,
  run,
  RUN_ID,
  timing,
} from "./harness.ts";

const MONOREPO = join(REPO_ROOT, "tests", "fixtures", "poetry_monorepo");
const SITE_PACKAGES = "/opt/venv/lib/python3.11/site-packages";

const SPEC = `import { Image } from "imgtool";

const base = Image.fromDebianBase({ name: "poetry-monorepo" })
  // Unique per run: every later layer is built for real, not taken from an earlier run.
  .withEnvVars({ E2E_RUN: ${JSON.stringify(RUN_ID)} })
  .withAptPackages(["python3-poetry"]);

/** The app's dependencies: the library by path, the dev group's tool by path, the index's. */
export const dependencies = base.withPoetryProject("./apps/api/pyproject.toml");

/** The main group's dependencies, then the app itself. */
export const project = base.withPoetryProject("./apps/api/pyproject.toml", {
  projectInstallMode: "install_project",
  extraArgs: "--only main",
});
`;

// What Python in the image reports about a distribution: where its module is, and whether
// an editable install (PEP 610) or a .pth file points anywhere.
const PROBE = `
import importlib, importlib.metadata as m, json, pathlib, sys
for name, module in [("imgtool-mono-lib", "imgtool_mono_lib"), ("imgtool-mono-devtool", "imgtool_mono_devtool"), ("imgtool-mono-api", "imgtool_mono_api")]:
    try:
        dist = m.distribution(name)
    except m.PackageNotFoundError:
        print(name, "absent")
        continue
    url = json.loads(dist.read_text("direct_url.json") or "{}")
    print(name, "editable" if url.get("dir_info", {}).get("editable") else "real", importlib.import_module(module).__file__)
site = pathlib.Path(sys.prefix, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
print("pth naming the build mount:", sorted(p.name for p in site.glob("*.pth") if "imgtool-poetry-project" in p.read_text()))
# BuildKit leaves an empty folder where a mount was; nothing of what was mounted stays.
print("files left of the build mount:", [str(p) for p in pathlib.Path("/tmp/imgtool-poetry-project").rglob("*")])
`;

/** A build gets this long before it is stopped (a cold build here takes about a minute). */
const BUILD_LIMIT_MS = 10 * 60_000;

/** Run imgtool as `harness.imgtool` does, but stop it (SIGTERM) after {@link BUILD_LIMIT_MS}. */
async function boundedImgtool(cwd: string, args: readonly string[]): Promise<Ran> {
  const binary = Deno.env.get("IMGTOOL_E2E_BINARY");
  const [program, ...prefix] = binary ? [binary] : IMGTOOL_COMMAND;
  const output = await new Deno.Command(program, {
    args: [...prefix, ...args],
    cwd,
    env: { ...environmentWithoutImgtool(), NO_COLOR: "1" },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(BUILD_LIMIT_MS),
  }).output();
  const text = new TextDecoder();
  return {
    code: output.code,
    stdout: text.decode(output.stdout),
    stderr: text.decode(output.stderr),
  };
}

/**
 * The steps of an image the registry serves, each with the layer it made: the config's
 * history entries that made a layer, paired in order with its `rootfs.diff_ids`.
 */
async function layerOfEachStep(uri: string): Promise<[string, string][]> {
  const config = JSON.parse(
    await must("skopeo", ["inspect", "--config", "--tls-verify=false", `docker://${uri}`]),
  );
  const steps = (config.history as { created_by?: string; empty_layer?: boolean }[])
    .filter((entry) => !entry.empty_layer)
    .map((entry) => entry.created_by ?? "");
  const layers: string[] = config.rootfs.diff_ids;
  assert.equal(steps.length, layers.length, "one history entry per layer");
  return steps.map((step, index) => [step, layers[index]]);
}

/** Build the monorepo's images with `builder`, push them, and look into what the registry serves. */
async function monorepoSuite(t: Deno.TestContext, facts: Facts, builder: "docker" | "buildah") {
  const registry = `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-${builder}-poetry`;
  const dir = await makeProject({
    "imgtool.toml": projectConfig(
      facts,
      registry,
      '[plugins.poetry_project]\ncommand = "poetry"\n',
    ),
    "spec.ts": SPEC,
    // Stale build output on the host: never installed (it is not even a wheel).
    "apps/api/dist/imgtool_mono_api-0.1.0-py3-none-any.whl": "stale, not a wheel\n",
    "libs/lib/dist/imgtool_mono_lib-0.2.0-py3-none-any.whl": "stale, not a wheel\n",
  });
  const references = new Set<string>();
  const build = async (what: string, ...selection: string[]): Promise<Record<string, string>> => {
    // Known before building, so that whatever a failed build left is removed too.
    const uris = await imgtool(dir, ["uri", "spec.ts", ...selection]);
    assertExit(uris, 0, "uri");
    for (const uri of uris.stdout.trim().split("\n")) references.add(uri);
    const started = performance.now();
    const flags = ["--builder", builder, "--push", "--json", ...selection];
    const ran = await boundedImgtool(dir, ["build", "spec.ts", ...flags]);
    timing(`${builder}: poetry monorepo, ${what}`, started);
    assertExit(ran, 0, `build (${what})`);
    const images = jsonImages(ran);
    for (const image of images) {
      assert.ok(references.has(image.uri), `${image.uri} is what \`uri\` said`);
      assert.equal(image.status, "built", JSON.stringify(image));
      // Look at what the registry serves, not at what the builder left behind.
      await removeImages(facts, [image.uri]);
      await mustDocker(facts, ["pull", "-q", image.uri]);
    }
    return Object.fromEntries(images.map((image) => [image.image, image.uri]));
  };
  try {
    await copyTree(join(MONOREPO, "apps"), join(dir, "apps"));
    await copyTree(join(MONOREPO, "libs"), join(dir, "libs"));
    const built = await build("both images");

    await t.step("dependencies_only: the library and the dev tool are real packages", async () => {
      const out = await inImage(facts, built.dependencies, ["python", "-c", PROBE]);
      assert.equal(
        out,
        `imgtool-mono-lib real ${SITE_PACKAGES}/imgtool_mono_lib/__init__.py\n` +
          `imgtool-mono-devtool real ${SITE_PACKAGES}/imgtool_mono_devtool/__init__.py\n` +
          "imgtool-mono-api absent\n" +
          "pth naming the build mount: []\nfiles left of the build mount: []\n",
      );
      const describe = await inImage(facts, built.dependencies, [
        "python",
        "-c",
        "import imgtool_mono_lib, imgtool_demo_b; print(imgtool_mono_lib.describe()); " +
        "print(imgtool_demo_b.describe())",
      ]);
      assert.equal(
        describe,
        "imgtool-mono-lib 0.3.0 using imgtool-demo-a 1.1.0\n" +
          "imgtool-demo-b 2.0.0 using imgtool-demo-a 1.1.0\n",
      );
    });

    await t.step(
      "install_project: the app from a fresh wheel, the library real, no dev group",
      async () => {
        const out = await inImage(facts, built.project, ["python", "-c", PROBE]);
        assert.equal(
          out,
          `imgtool-mono-lib real ${SITE_PACKAGES}/imgtool_mono_lib/__init__.py\n` +
            "imgtool-mono-devtool absent\n" +
            `imgtool-mono-api real ${SITE_PACKAGES}/imgtool_mono_api/__init__.py\n` +
            "pth naming the build mount: []\nfiles left of the build mount: []\n",
        );
        const main = await inImage(facts, built.project, [
          "python",
          "-c",
          "import imgtool_mono_api; imgtool_mono_api.main()",
        ]);
        assert.equal(
          main,
          "api source 1\nimgtool-demo-b 2.0.0 using imgtool-demo-a 1.1.0\n" +
            "imgtool-mono-lib 0.3.0 using imgtool-demo-a 1.1.0\n",
        );
      },
    );

    await t.step({
      name: "editing the app rebuilds only the step that installs it",
      // imgtool runs buildah without a step cache: buildah 1.28's --layers reuses a RUN step
      // whose bind-mounted files changed while its text did not (a stale layer), so with
      // buildah every step runs again and there is no layer to reuse.
      ignore: builder === "buildah",
      fn: async () => {
        const source = join(dir, "apps", "api", "imgtool_mono_api", "__init__.py");
        await Deno.writeTextFile(
          source,
          (await Deno.readTextFile(source)).replace("api source 1", "api source 2"),
        );
        const { project: edited } = await build("the app edited", "--image", "project");
        assert.notEqual(edited, built.project, "the app's code is part of the tag");
        const before = await layerOfEachStep(built.project);
        const after = await layerOfEachStep(edited);
        const dependencyStep = (step: string) => step.includes("poetry install --no-root");
        const projectStep = (step: string) =>
          step.includes("poetry build") && step.includes("apps/api/dist");
        const layerOf = (layers: [string, string][], which: (step: string) => boolean) => {
          const found = layers.filter(([step]) => which(step));
          assert.equal(found.length, 1, layers.map(([step]) => step.slice(0, 120)).join("\n"));
          return found[0][1];
        };
        // Two steps, two layers: the dependencies' is reused (a step run again would make a
        // layer with new file times), the app's is new.
        assert.equal(layerOf(after, dependencyStep), layerOf(before, dependencyStep));
        assert.notEqual(layerOf(after, projectStep), layerOf(before, projectStep));
        assert.notEqual(layerOf(after, dependencyStep), layerOf(after, projectStep));
        const mark = await inImage(facts, edited, [
          "python",
          "-c",
          "import imgtool_mono_api; print(imgtool_mono_api.MARK)",
        ]);
        assert.equal(mark, "api source 2\n");
      },
    });
  } finally {
    await removeImages(facts, references);
    if (builder === "buildah") {
      for (const uri of references) await run("buildah", ["rmi", uri]); // a missing one is fine
    }
    await Deno.remove(dir, { recursive: true });
  }
}

e2eTest(
  "docker: a Poetry monorepo's path dependencies are real packages in both modes; app edits reuse the dependency layer",
  (t, facts) => monorepoSuite(t, facts, "docker"),
);

e2eTest(
  "buildah: a Poetry monorepo's path dependencies are real packages in both modes",
  (t, facts) => monorepoSuite(t, facts, "buildah"),
);
