// One Python environment on every base (issue 10, item 1): every Python layer installs into
// the Debian base recipe's venv when imgtool knows it, else into the environment of the
// image's python3, even when that is a system Python marked externally managed (PEP 668),
// and a base without python3 fails each step with what to do. The checks that need a real
// Python run the rendered shell with this machine's Debian python3, when it has one.
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Config, Image, planImage, renderImage } from "../mod.ts";
import { NEEDS_PYTHON, pipInstall, targetEnvironment } from "../plugins/shared/python.ts";
import { fixtureConfig, PROJECT, runProcess, withTempDir } from "./helpers.ts";

const uv = fixtureConfig();
const pip = fixtureConfig({}, { "python.installer": "pip" });

const PYTHON_PLUGINS = new Set(["pip", "requirements", "uv_project", "poetry_project"]);

/** Every Python layer a spec can put on `base`, each mode of the project layers. */
function everyPythonLayer(base: Image): Image {
  const fixture = (path: string) => join(PROJECT, path);
  return base
    .withPipPackages("rich")
    .withRequirements(fixture("requirements/requirements.txt"))
    .withUvProject(fixture("uvproj/pyproject.toml"))
    .withUvProject(fixture("uvproj/pyproject.toml"), { projectInstallMode: "install_project" })
    .withUvProject(fixture("uvproj_nolock/pyproject.toml"))
    .withUvProject(fixture("uvproj_nolock/pyproject.toml"), {
      projectInstallMode: "install_project",
    })
    .withPoetryProject(fixture("poetryproj/pyproject.toml"))
    .withPoetryProject(fixture("poetryproj/pyproject.toml"), {
      projectInstallMode: "install_project",
    });
}

/** The shell text of every RUN step of the image's Python layers, flags dropped. */
async function pythonSteps(image: Image, config: Config): Promise<string[]> {
  const rendered = await renderImage(planImage(image, "default", config));
  return rendered.sections
    .filter((section) => PYTHON_PLUGINS.has(section.plugin))
    .flatMap((section) => section.instructions)
    .filter((instruction) => instruction.startsWith("RUN "))
    .map((instruction) =>
      instruction.slice(4).split(" \\\n    ").filter((line) => !line.startsWith("--")).join(" ")
    );
}

// What may stand before the first command: variables the step exports.
const EXPORTS = /^(?:(?:export [A-Z_]+=\S+|[A-Z_]+="\$\(cat [^)]*\)" && export [A-Z_]+) && )*/;

for (const [name, config] of [["uv", uv], ["pip", pip]] as const) {
  Deno.test(`on a base whose Python environment imgtool does not know, every step of every Python layer checks for python3 before anything else (${name} installer)`, async () => {
    const steps = await pythonSteps(everyPythonLayer(Image.fromBase("debian:bookworm")), config);
    // pip, requirements, 1 + 2 steps for each uv project, Poetry's own install, 1 + 2 Poetry
    // steps.
    assert.equal(steps.length, 12, steps.join("\n\n"));
    for (const step of steps) {
      const rest = step.slice(EXPORTS.exec(step)![0].length);
      assert.ok(rest.startsWith(NEEDS_PYTHON), `a step does not check first:\n${step}`);
      assert.equal(step.split(NEEDS_PYTHON).length, 2, `a step checks twice:\n${step}`);
    }
  });

  Deno.test(`on the Debian base recipe every Python layer installs into its venv as before: no python3 check, no system environment (${name} installer)`, async () => {
    const steps = await pythonSteps(everyPythonLayer(Image.fromDebianBase()), config);
    for (const step of steps) {
      for (const mark of ["command -v python3 >", "PIP_BREAK_SYSTEM_PACKAGES", "sys.prefix"]) {
        assert.ok(!step.includes(mark), `${mark} in a step over the recipe:\n${step}`);
      }
      assert.ok(!/ --break-system-packages/.test(step), step);
    }
  });
}

/** The plugin context of the first layer after `base`, for the shared helpers. */
function contextOn(base: Image, config: Config = pip) {
  return planImage(base.withPipPackages("rich"), "default", config).layers[1].context;
}

/** Debian's own python3 on this machine, when it is there. */
const DEBIAN_PYTHON = "/usr/bin/python3";
const debianPython = await Deno.stat(DEBIAN_PYTHON).then(() => true, () => false);
const externallyManaged = debianPython &&
  (await runProcess(DEBIAN_PYTHON, [
      "-c",
      "import os, sys, sysconfig; sys.exit(0 if os.path.exists(os.path.join(" +
      "sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')) else 1)",
    ])).code === 0;
const debianPip = externallyManaged &&
  (await runProcess(DEBIAN_PYTHON, ["-m", "pip", "--version"])).code === 0;

/** Run shell `commands` with `PATH` and `env` only; what it printed and how it ended. */
function shell(commands: string, path: string, env: Record<string, string> = {}) {
  return runProcess("/bin/sh", ["-c", commands], {
    env: { PATH: path, HOME: "/nonexistent", PIP_CONFIG_FILE: "/dev/null", ...env },
    clearEnv: true,
  });
}

Deno.test({
  name:
    "on such a base pip installs into an externally managed python3 (PEP 668), which refuses the same command without the step's variables",
  ignore: !debianPip,
  async fn() {
    // Nothing can be installed: no index, a name no one has, and a dry run.
    const step = pipInstall(contextOn(Image.fromBase("debian:bookworm")), [
      "imgtool-no-such-package-7f3a",
    ], {
      extraIndexUrls: [],
      pre: false,
      secretMounts: [],
      extraArgs: "--no-index --dry-run --no-cache-dir",
    });
    const path = "/usr/bin:/bin";
    const refused = await shell(step.command, path);
    assert.notEqual(refused.code, 0);
    assert.match(
      refused.stderr,
      /externally-managed-environment/,
      "the control run is not refused",
    );
    const allowed = await shell(step.command, path, step.env);
    assert.notEqual(allowed.code, 0);
    assert.doesNotMatch(allowed.stderr, /externally-managed-environment/);
    assert.match(allowed.stderr, /No matching distribution found for imgtool-no-such-package-7f3a/);
  },
});

Deno.test({
  name:
    "the environment a step targets on such a base is python3's: the venv first on PATH, else the installation whose bin/python3 is that python3 (uv: a project environment's interpreter is bin/python3 under it)",
  ignore: !debianPython,
  async fn() {
    await withTempDir(async (dir) => {
      const target = targetEnvironment(contextOn(Image.fromBase("debian:bookworm")), "TARGET");
      const print = `${target.commands.join(" && ")} && printf '%s' "$TARGET"`;
      const system = await shell(print, "/usr/bin:/bin");
      assert.equal(system.code, 0, system.stderr);
      assert.equal(
        await Deno.realPath(join(system.stdout, "bin", "python3")),
        await Deno.realPath(DEBIAN_PYTHON),
      );
      const venv = join(dir, "venv");
      const made = await runProcess(DEBIAN_PYTHON, ["-m", "venv", "--without-pip", venv]);
      assert.equal(made.code, 0, made.stderr);
      const inVenv = await shell(print, `${venv}/bin:/usr/bin:/bin`);
      assert.equal(inVenv.stdout, venv);
      const none = await shell(print, dir);
      assert.equal(none.code, 1);
      assert.match(none.stderr, /the base image has no python3 on PATH/);
      assert.equal(none.stdout, "");
    });
  },
});

Deno.test("over a known venv the target is the venv itself, set without running anything", () => {
  const target = targetEnvironment(contextOn(Image.fromDebianBase()), "UV_PROJECT_ENVIRONMENT");
  assert.deepEqual(target, { commands: [], env: { UV_PROJECT_ENVIRONMENT: "/opt/venv" } });
});
