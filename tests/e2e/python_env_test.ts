/**
 * End-to-end checks of one Python environment on every base (issue 10, item 1), with the
 * Docker builder:
 *
 * - on `Image.fromBase` of a plain Python base (Debian's python3, externally managed, run as
 *   root), a pip layer, a requirements layer and a Poetry project (`install_project`) all
 *   install into the environment of the image's `python3`: run as the image's user, that
 *   python3 imports every package, and what the first layer installed is still there;
 * - on a base without Python, a pip layer fails the build (exit 1) with a message that names
 *   the layer and the spec line, says there is no python3 and what to do.
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
  copyTree,
  e2eTest,
  type Facts,
  inImage,
  makeProject,
  manifestStatus,
  mustDocker,
  projectConfig,
  removeImages,
  RUN_ID,
  timing,
} from "./harness.ts";

/**
 * The longest a build here may take: the apt layer reaches Debian's archive the first time
 * (a builder's cache keeps it after that); the Python layers take seconds with the local index.
 */
const BUILD_SECONDS = 300;

// --- every Python layer on fromBase of a plain Python base -------------------------------

function pythonLayersSpec(facts: Facts): string {
  const q = JSON.stringify;
  return `import { Image } from "imgtool";

export default Image.fromBase(${q(facts.PYTHON_BASE)})
  .clone({ name: "python-env" })
  // Debian's Poetry (the local index has none to install); before the run's marker, so that
  // a builder's cache may keep this layer from one run to the next.
  .withAptPackages("python3-poetry")
  // Unique per run: every later layer is built for real.
  .withEnvVars({ E2E_RUN: ${q(RUN_ID)} })
  .withPipPackages(["imgtool-demo-a==1.0.0"], { indexUrl: ${q(facts.PACKAGE_INDEX)} })
  .withRequirements("./requirements.txt")
  .withPoetryProject("./poetry/pyproject.toml", { projectInstallMode: "install_project" });
`;
}

/** What the image's python3 finds: where it is, and each package's version and folder. */
const PROBE = `
import importlib, importlib.metadata as metadata, json, os, sys, sysconfig
found = {}
for name, module in [
    ("imgtool-demo-a", "imgtool_demo_a"),
    ("imgtool-demo-hello", "imgtool_demo_hello"),
    ("imgtool-demo-b", "imgtool_demo_b"),
    ("imgtool-poetry-fixture", "imgtool_poetry_fixture"),
]:
    imported = importlib.import_module(module)
    found[name] = {
        "version": metadata.version(name),
        "folder": os.path.dirname(os.path.dirname(os.path.realpath(imported.__file__))),
    }
print(json.dumps({
    "executable": os.path.realpath(sys.executable),
    "purelib": os.path.realpath(sysconfig.get_paths()["purelib"]),
    "packages": found,
}))
`;

interface Probe {
  readonly executable: string;
  readonly purelib: string;
  readonly packages: Record<string, { version: string; folder: string }>;
}

e2eTest(
  "docker: on fromBase of a plain Python base, pip, requirements and a Poetry project install into the environment of the image's python3, which imports them all as the image's user",
  async (t, facts) => {
    const registry = `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-python-env`;
    const dir = await makeProject({
      "imgtool.toml": projectConfig(
        facts,
        registry,
        '[plugins.poetry_project]\ncommand = "poetry"\n',
      ),
      "spec.ts": pythonLayersSpec(facts),
      "requirements.txt": `--index-url ${facts.PACKAGE_INDEX}\nimgtool-demo-hello\n`,
    });
    let uri = "";
    try {
      await copyTree(facts.POETRY_FIXTURE, join(dir, "poetry"));
      const started = performance.now();
      const built = await boundedImgtool(
        dir,
        ["build", "spec.ts", "--push", "--builder", "docker"],
        BUILD_SECONDS,
      );
      timing("docker: python-env build and push", started);
      assertExit(built, 0, "python-env: build --push");
      uri = built.stdout.trim().split("\n").pop() ?? "";
      assert.match(uri, new RegExp(`^${registry}/python-env:[0-9a-f]{32}$`));
      // Look inside what the registry serves, not what the builder left behind.
      await removeImages(facts, [uri]);
      await mustDocker(facts, ["pull", "-q", uri]);

      const lock = await Deno.readTextFile(join(facts.POETRY_FIXTURE, "poetry.lock"));
      const locked = /name = "imgtool-demo-a"\nversion = "([^"]+)"/.exec(lock)?.[1];
      assert.ok(locked, "poetry.lock names no imgtool-demo-a");
      // The image's own user: plain `docker run`, no --user.
      const shell = (script: string) => inImage(facts, uri, ["sh", "-c", script]);
      const basePython = (await inImage(facts, facts.PYTHON_BASE, [
        "sh",
        "-c",
        "command -v python3",
      ])).trim();

      await t.step("python3 on PATH is the base's own, not a venv imgtool made", async () => {
        assert.ok(basePython, "the base has no python3");
        assert.equal((await shell("command -v python3")).trim(), basePython);
        assert.equal(await shell("ls -d /opt/venv /opt/poetry 2>/dev/null || true"), "");
      });

      await t.step(
        "that python3 imports every package from its own site-packages, the first layer's too",
        async () => {
          const printed = await shell(`python3 -c '${PROBE}'`);
          // Importing imgtool_demo_hello prints its greeting first.
          assert.match(printed, /^imgtool-demo-hello 0\.1\.0\n/);
          const probe: Probe = JSON.parse(printed.trim().split("\n").pop()!);
          assert.equal(
            probe.executable,
            (await shell(`readlink -f "$(command -v python3)"`)).trim(),
          );
          // imgtool-demo-a, from the first Python layer, is still there after the later ones,
          // at the version Poetry's lock asks for (the pip layer asked for 1.0.0).
          assert.deepEqual(
            Object.fromEntries(
              Object.entries(probe.packages).map(([name, found]) => [name, found.version]),
            ),
            {
              "imgtool-demo-a": locked,
              "imgtool-demo-hello": "0.1.0",
              "imgtool-demo-b": "2.0.0",
              "imgtool-poetry-fixture": "0.1.0",
            },
          );
          for (const [name, found] of Object.entries(probe.packages)) {
            assert.equal(found.folder, probe.purelib, `${name} is not in python3's purelib`);
          }
        },
      );

      await t.step("the project is installed as a wheel, not a link to a mount", async () => {
        const project = await shell(
          "python3 -c 'import imgtool_poetry_fixture as p; print(p.__file__); p.main()'",
        );
        const [file, greeting] = project.trim().split("\n");
        assert.ok(!file.startsWith("/tmp/"), file);
        assert.equal(greeting, `imgtool-demo-b 2.0.0 using imgtool-demo-a ${locked}`);
      });
    } finally {
      if (uri) await removeImages(facts, [uri]);
      await Deno.remove(dir, { recursive: true });
    }
  },
);

// --- a base without Python ----------------------------------------------------------------

e2eTest(
  "docker: a pip layer on a base without Python fails the build with exit 1, naming the layer and the spec line, saying there is no python3 and what to do",
  async (t, facts) => {
    const registry = `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-no-python`;
    const dir = await makeProject({
      "imgtool.toml": projectConfig(facts, registry),
      "spec.ts": `import { Image } from "imgtool";

export default Image.fromBase(${JSON.stringify(facts.DEBIAN_BASE)})
  .clone({ name: "no-python" })
  .withEnvVars({ E2E_RUN: ${JSON.stringify(RUN_ID)} })
  .withPipPackages(["imgtool-demo-a"], { indexUrl: ${JSON.stringify(facts.PACKAGE_INDEX)} });
`,
    });
    let uri = "";
    try {
      const uris = await boundedImgtool(dir, ["uri", "spec.ts"], 60);
      assertExit(uris, 0, "uri");
      uri = uris.stdout.trim();
      const started = performance.now();
      const failed = await boundedImgtool(
        dir,
        ["build", "spec.ts", "--push", "--builder", "docker", "-q"],
        BUILD_SECONDS,
      );
      timing("docker: no-python build", started);
      assertExit(failed, 1, "build of a pip layer on a base without Python");

      await t.step("the error names the layer, its method and the spec line", () => {
        const error = failed.stderr.split("\n").find((line) => line.startsWith("error: ")) ?? "";
        assert.match(error, /image "default"/, failed.stderr);
        assert.match(error, /\(withPipPackages, plugin pip\)/, failed.stderr);
        assert.match(error, /spec\.ts:6\b/, failed.stderr);
      });

      await t.step("it says there is no python3 and what to do, not a raw shell error", () => {
        assert.match(failed.stderr, /the base image has no python3 on PATH/);
        assert.match(failed.stderr, /start from Image\.fromDebianBase\(\), or install Python/);
        assert.doesNotMatch(failed.stderr, /python3: not found|--python ""/);
      });

      await t.step("nothing was pushed", async () => {
        assert.equal(await manifestStatus(uri), 404);
      });
    } finally {
      if (uri) await removeImages(facts, [uri]);
      await Deno.remove(dir, { recursive: true });
    }
  },
);
