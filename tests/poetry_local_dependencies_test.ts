// Poetry projects with local path dependencies (issue 18 items 1, 4, 5; issue 10 item 3):
// what reaches the build context and where, what the install steps do with editable path
// dependencies, dependencies before code, and the checks made before building.
import assert from "node:assert/strict";
import { join, posix, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { parse as parseToml } from "smol-toml";
import {
  type Config,
  type ContextEntry,
  identify,
  type Image,
  loadConfig,
  planImage,
  renderImage,
  validateImages,
} from "../mod.ts";
import * as monorepo from "./fixtures/poetry_monorepo/images.ts";
import {
  assertDiagnostic,
  asText,
  copyTree,
  fixtureConfig,
  FIXTURES,
  renderGolden,
  runProcess,
  withTempDir,
  writeTree,
} from "./helpers.ts";

const MONOREPO = join(FIXTURES, "poetry_monorepo");
const APP = join(MONOREPO, "apps", "api");
const uv = fixtureConfig();
const pip = fixtureConfig({}, { "python.installer": "pip" });

/** The poetry_project layer's instructions of a rendered image. */
function poetrySteps(
  rendered: { sections: readonly { plugin: string; instructions: readonly string[] }[] },
) {
  const section = rendered.sections.find((s) => s.plugin === "poetry_project");
  assert.ok(section, "the image has a poetry_project layer");
  return section.instructions.filter((instruction) => instruction.startsWith("RUN "));
}

/** The path dependencies a pyproject declares, read here with a TOML parser of the test's own. */
function declaredPaths(pyprojectFile: string): Record<string, string> {
  const poetry = (parseToml(Deno.readTextFileSync(pyprojectFile)) as {
    tool: { poetry: Record<string, unknown> };
  }).tool.poetry;
  const tables = [
    poetry.dependencies,
    ...Object.values((poetry.group ?? {}) as Record<string, { dependencies?: unknown }>)
      .map((group) => group.dependencies),
  ] as Record<string, unknown>[];
  const found: Record<string, string> = {};
  for (const dependencies of tables) {
    for (const [name, spec] of Object.entries(dependencies ?? {})) {
      const path = (spec as { path?: unknown }).path;
      if (typeof path === "string") found[name] = path;
    }
  }
  return found;
}

/** Copy the monorepo fixture into `dir` with a spec at its root (the project boundary). */
async function monorepoProject(dir: string, spec: string): Promise<Image> {
  await copyTree(MONOREPO, dir);
  await Deno.remove(join(dir, "images.ts"));
  await Deno.writeTextFile(join(dir, "spec.ts"), `import { Image } from "imgtool";\n${spec}`);
  return (await import(pathToFileURL(join(dir, "spec.ts")).href)).default;
}

async function problemsOf(image: Image, config: Config = uv) {
  return await validateImages([planImage(image, "default", config)], { secretValues: false });
}

Deno.test("poetry_project plugin stages path dependencies of every group where the pyproject expects them", async (t) => {
  const rendered = await renderImage(planImage(monorepo.dependencies, "default", uv));
  const declared = declaredPaths(join(APP, "pyproject.toml"));
  assert.deepEqual(Object.keys(declared).sort(), ["imgtool-mono-devtool", "imgtool-mono-lib"]);
  const staged = new Map<string, ContextEntry>();
  const prefix = ".imgtool/01-poetry_project/project/";
  for (const entry of rendered.context) {
    if (entry.kind === "text") continue;
    assert.ok(entry.target.startsWith(prefix), entry.target);
    // The layout is the disk's: each entry sits where it is relative to the others.
    assert.equal(entry.target.slice(prefix.length), relative(MONOREPO, entry.source));
    staged.set(relative(MONOREPO, entry.source), entry);
  }
  assert.deepEqual(
    [...staged.keys()].sort(),
    [
      "apps/api/poetry.lock",
      "apps/api/pyproject.toml",
      ...Object.values(declared).map((path) => relative(MONOREPO, join(APP, path))),
    ].sort(),
  );
  for (const path of Object.values(declared)) {
    assert.equal(staged.get(relative(MONOREPO, join(APP, path)))?.kind, "tree");
  }
  // In the step, the path dependencies are where the pyproject's relative paths lead.
  const [install] = poetrySteps(rendered).slice(-1);
  const workdir = /&& cd (\S+) \\\n/.exec(install)?.[1];
  assert.ok(workdir, install);
  for (const [name, path] of Object.entries(declared)) {
    const folder = new RegExp(`"\\$IMGTOOL_POETRY_EDITABLE" ${name}; then rm -rf (\\S+)/dist `)
      .exec(install)?.[1];
    assert.ok(folder, `${name} is checked and rebuilt`);
    assert.equal(posix.relative(workdir, folder), path.replace(/\/$/, ""));
  }
  await t.assertSnapshot(await renderGolden(monorepo.dependencies, uv, { root: MONOREPO }), asText);
});

Deno.test("poetry_project plugin replaces each editable path dependency with a wheel built into a fresh dist (uv docs: `uv pip install --reinstall` reinstalls an installed package)", async () => {
  for (const [config, reinstall] of [[uv, "--reinstall"], [pip, "--force-reinstall"]] as const) {
    const [, install] = poetrySteps(
      await renderImage(planImage(monorepo.dependencies, "default", config)),
    );
    for (const name of ["imgtool-mono-lib", "imgtool-mono-devtool"]) {
      const line = install.split("\n").find((l) =>
        l.includes(`"$IMGTOOL_POETRY_EDITABLE" ${name};`)
      );
      assert.ok(line, `${name} has its own check`);
      const folder = /then rm -rf (\S+)\/dist /.exec(line)?.[1] as string;
      const removed = line.indexOf(`rm -rf ${folder}/dist`);
      const built = line.indexOf(`(cd ${folder} && /opt/poetry/bin/poetry build --format wheel`);
      const installed = line.indexOf(`--no-deps ${reinstall} ${folder}/dist/*.whl`);
      assert.ok(removed >= 0 && removed < built && built < installed, line);
      assert.match(line, /; fi( \\)?$/);
    }
    // It runs after Poetry's install, in the same step (the mount is gone after it).
    assert.ok(
      install.indexOf("poetry install --no-root") < install.indexOf('IMGTOOL_POETRY_EDITABLE" '),
    );
  }
});

Deno.test("the editable check finds installs that PEP 610's direct_url.json marks editable, and only those", async () => {
  const [, install] = poetrySteps(
    await renderImage(planImage(monorepo.dependencies, "default", uv)),
  );
  const quoted = /export IMGTOOL_POETRY_EDITABLE='([^']*)'/.exec(install)?.[1];
  assert.ok(quoted, "the check is exported to the step");
  await withTempDir(async (site) => {
    const distribution = async (name: string, directUrl?: unknown) => {
      const info = join(site, `${name.replaceAll("-", "_")}-1.0.dist-info`);
      await Deno.mkdir(info, { recursive: true });
      await Deno.writeTextFile(
        join(info, "METADATA"),
        `Metadata-Version: 2.1\nName: ${name}\nVersion: 1.0\n`,
      );
      if (directUrl) {
        await Deno.writeTextFile(join(info, "direct_url.json"), JSON.stringify(directUrl));
      }
    };
    await distribution("linked-lib", { url: "file:///tmp/x", dir_info: { editable: true } });
    await distribution("built-lib", { url: "file:///tmp/x.whl", archive_info: {} });
    await distribution("index-lib");
    const check = async (name: string) =>
      (await runProcess("python3", ["-c", quoted, name], { env: { PYTHONPATH: site } })).code;
    assert.equal(await check("linked-lib"), 0);
    assert.equal(await check("linked_lib"), 0, "names compare normalized");
    assert.equal(await check("built-lib"), 1);
    assert.equal(await check("index-lib"), 1);
    assert.equal(await check("not-installed"), 1);
  });
});

Deno.test("poetry_project plugin in install_project mode installs the dependencies in one step and the project in a later one", async (t) => {
  const rendered = await renderImage(planImage(monorepo.installProject, "default", uv));
  const [, dependencies, project] = poetrySteps(rendered);
  assert.match(
    dependencies,
    /source=\.imgtool\/01-poetry_project\/project,target=\/tmp\/imgtool-poetry-project,rw/,
  );
  assert.match(dependencies, /poetry install --no-root --no-interaction --only main \\\n/);
  assert.doesNotMatch(dependencies, /apps\/api\/dist/);
  assert.match(
    project,
    /source=\.imgtool\/01-poetry_project\/source,target=\/tmp\/imgtool-poetry-project,rw/,
  );
  const removed = project.indexOf("rm -rf /tmp/imgtool-poetry-project/apps/api/dist");
  const built = project.indexOf(
    "(cd /tmp/imgtool-poetry-project/apps/api && /opt/poetry/bin/poetry build --format wheel",
  );
  const installed = project.indexOf(
    "--no-deps --reinstall /tmp/imgtool-poetry-project/apps/api/dist/*.whl",
  );
  assert.ok(removed >= 0 && removed < built && built < installed, project);
  // Only the project's own folder is new in the later step's files: the app's sources never
  // reach the dependency step.
  const sources = (folder: string) =>
    rendered.context.filter((entry) =>
      entry.target.includes(`/${folder}/`) || entry.target.endsWith(`/${folder}`)
    )
      .map((entry) => entry.kind === "text" ? entry.target : relative(MONOREPO, entry.source))
      .sort();
  assert.deepEqual(sources("project"), [
    "apps/api/poetry.lock",
    "apps/api/pyproject.toml",
    "libs/devtool",
    "libs/lib",
  ]);
  assert.deepEqual(sources("source"), ["apps/api", "libs/devtool", "libs/lib"]);
  await t.assertSnapshot(
    await renderGolden(monorepo.installProject, uv, { root: MONOREPO }),
    asText,
  );
});

Deno.test("editing the project's code leaves the dependency step and its files as they were (the builder reuses that layer)", async () => {
  await withTempDir(async (dir) => {
    const image = await monorepoProject(
      dir,
      'export default Image.fromDebianBase({ name: "mono", pythonVersion: [3, 12] })\n' +
        '  .withPoetryProject("./apps/api/pyproject.toml", { projectInstallMode: "install_project" });\n',
    );
    const render = async () => {
      const plan = planImage(image, "default", uv);
      const rendered = await renderImage(plan);
      const steps = poetrySteps(rendered);
      const stagedForDependencies = rendered.context
        .filter((entry) => entry.target.includes("/project/") && entry.kind !== "text")
        .map((entry) => entry.kind === "text" ? "" : `${entry.target} ${entry.source}`);
      return { steps, stagedForDependencies, tag: (await identify(plan)).tag };
    };
    const before = await render();
    const source = join(dir, "apps", "api", "imgtool_mono_api", "__init__.py");
    await Deno.writeTextFile(
      source,
      (await Deno.readTextFile(source)).replace("api source 1", "api source 2"),
    );
    const after = await render();
    assert.notEqual(after.tag, before.tag, "the project's code is part of the image");
    assert.equal(after.steps[1], before.steps[1], "the dependency step is the same text");
    assert.deepEqual(after.stagedForDependencies, before.stagedForDependencies);
    for (const line of after.stagedForDependencies) {
      assert.ok(!line.endsWith(join(dir, "apps", "api")), "the app's folder is not staged whole");
    }
  });
});

Deno.test("poetry_project plugin follows path dependencies of path dependencies and of the lock", async () => {
  await withTempDir(async (dir) => {
    const image = await monorepoProject(
      dir,
      'export default Image.fromDebianBase({ name: "mono" }).withPoetryProject("./apps/api/pyproject.toml");\n',
    );
    // The library names a helper in its own test group; the lock names a vendored archive.
    const lib = join(dir, "libs", "lib", "pyproject.toml");
    await Deno.writeTextFile(
      lib,
      (await Deno.readTextFile(lib)) +
        '\n[tool.poetry.group.test.dependencies]\nimgtool-mono-testkit = { path = "../testkit" }\n',
    );
    await writeTree(dir, {
      "libs/testkit/pyproject.toml":
        '[tool.poetry]\nname = "imgtool-mono-testkit"\nversion = "1"\n',
      "vendor/thing-1.0-py3-none-any.whl": "a wheel",
    });
    const lock = join(dir, "apps", "api", "poetry.lock");
    await Deno.writeTextFile(
      lock,
      (await Deno.readTextFile(lock)) +
        '\n[[package]]\nname = "thing"\nversion = "1.0"\n\n[package.source]\ntype = "file"\n' +
        'url = "../../vendor/thing-1.0-py3-none-any.whl"\n',
    );
    assert.deepEqual(await problemsOf(image), []);
    const rendered = await renderImage(planImage(image, "default", uv));
    const staged = rendered.context.map((entry) =>
      entry.kind === "text" ? entry.target : `${entry.kind} ${relative(dir, entry.source)}`
    );
    assert.ok(staged.includes("tree libs/testkit"), staged.join("\n"));
    assert.ok(staged.includes("file vendor/thing-1.0-py3-none-any.whl"), staged.join("\n"));
    // An archive is installed by Poetry as it is: no editable check for it.
    assert.doesNotMatch(rendered.dockerfile, /IMGTOOL_POETRY_EDITABLE" thing;/);
  });
});

Deno.test("a path dependency outside the project is a validation error naming the file and the path", async () => {
  await withTempDir(async (outer) => {
    const dir = join(outer, "repo");
    const image = await monorepoProject(
      dir,
      'export default Image.fromDebianBase({ name: "mono" }).withPoetryProject("./apps/api/pyproject.toml");\n',
    );
    const pyproject = join(dir, "apps", "api", "pyproject.toml");
    await Deno.writeTextFile(
      pyproject,
      (await Deno.readTextFile(pyproject)) +
        '\n[tool.poetry.group.secret.dependencies]\nkeys = { path = "../../../.ssh", develop = true }\n',
    );
    await Deno.mkdir(join(outer, ".ssh"));
    const problems = await problemsOf(image);
    const problem = assertDiagnostic(problems, {
      message: `${pyproject} ([tool.poetry.group.secret.dependencies] keys) names ${
        join(outer, ".ssh")
      }, which is outside the project ${dir}`,
      hint: /allowed-paths/,
      plugin: "poetry_project",
      method: "withPoetryProject",
    });
    assert.equal(problem.file, join(outer, ".ssh"));
    // allowed-paths in imgtool.toml lets it in.
    await Deno.writeTextFile(join(dir, "imgtool.toml"), 'allowed-paths = ["../.ssh"]\n', {
      mode: 0o644,
    });
    await Deno.chmod(join(dir, "imgtool.toml"), 0o644);
    const allowed = loadConfig({ startDir: dir, env: {} });
    assert.deepEqual(
      (await problemsOf(image, allowed)).filter((p) => p.message.includes("outside the project")),
      [],
    );
  });
});

Deno.test("a path the lock file names outside the project, or a missing path, is a validation error", async () => {
  await withTempDir(async (outer) => {
    const dir = join(outer, "repo");
    const image = await monorepoProject(
      dir,
      'export default Image.fromDebianBase({ name: "mono" }).withPoetryProject("./apps/api/pyproject.toml");\n',
    );
    const lock = join(dir, "apps", "api", "poetry.lock");
    await Deno.writeTextFile(
      lock,
      (await Deno.readTextFile(lock)).replace(
        'url = "../../libs/devtool"',
        'url = "../../../elsewhere"',
      ),
    );
    await Deno.remove(join(dir, "libs", "lib"), { recursive: true });
    const problems = await problemsOf(image);
    assertDiagnostic(problems, {
      message: `${lock} (package imgtool-mono-devtool) names ${
        join(outer, "elsewhere")
      }, which is outside the project ${dir}`,
    });
    assertDiagnostic(problems, {
      message: `${
        join(dir, "apps", "api", "pyproject.toml")
      } ([tool.poetry.dependencies] imgtool-mono-lib) names ${
        join(dir, "libs", "lib")
      }, which does not exist`,
      hint: /poetry lock/,
    });
  });
});

Deno.test("a [project] dependency on an absolute file: URL is a validation error with the relative-path fix", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "spec.ts": 'import { Image } from "imgtool";\n' +
        'export default Image.fromDebianBase({ name: "app" }).withPoetryProject("./pyproject.toml");\n',
      "pyproject.toml": '[project]\nname = "app"\nversion = "1"\n' +
        `dependencies = ["lib @ file://${dir}/lib"]\n`,
      "poetry.lock": "package = []\n",
    });
    const image = (await import(pathToFileURL(join(dir, "spec.ts")).href)).default;
    assertDiagnostic(await problemsOf(image), {
      message: `${join(dir, "pyproject.toml")} ([project] dependencies) names file://${dir}/lib, ` +
        "a path on this machine that the build cannot reach",
      hint: /\[tool\.poetry\.dependencies\]: lib = \{ path = /,
    });
  });
});

let specs = 0;

/** A Poetry project in `dir` whose pyproject says `extra`; its image from `spec` (an expression). */
async function demandingProject(dir: string, extra: string, image: string, config = "") {
  // A new module name each time: a module is imported once per process.
  const specFile = `spec${++specs}.ts`;
  await writeTree(dir, {
    [specFile]: `import { Image } from "imgtool";\nexport default ${image};\n`,
    "pyproject.toml": extra,
    "poetry.lock": "package = []\n",
  });
  await Deno.writeTextFile(join(dir, "imgtool.toml"), config, { mode: 0o644 });
  await Deno.chmod(join(dir, "imgtool.toml"), 0o644);
  const spec = await import(pathToFileURL(join(dir, specFile)).href);
  return problemsOf(spec.default, loadConfig({ startDir: dir, env: {} }));
}

Deno.test("requires-poetry is checked against the Poetry version imgtool installs, with the setting that fixes it", async () => {
  await withTempDir(async (dir) => {
    const demand = '[tool.poetry]\nname = "app"\nversion = "1"\nrequires-poetry = ">=2.2,<3"\n';
    const image = 'Image.fromDebianBase({ name: "app" }).withPoetryProject("./pyproject.toml")';
    const problems = await demandingProject(dir, demand, image);
    assertDiagnostic(problems, {
      message:
        `${
          join(dir, "pyproject.toml")
        } requires Poetry >=2.2,<3 ([tool.poetry] requires-poetry), ` +
        "but imgtool installs Poetry 2.1.3",
      hint: /\[plugins\.poetry_project\] version = /,
      file: join(dir, "pyproject.toml"),
    });
  });
  for (const setting of ['version = "2.2.1"', 'command = "poetry"']) {
    await withTempDir(async (dir) => {
      const demand = '[tool.poetry]\nname = "app"\nversion = "1"\nrequires-poetry = ">=2.2,<3"\n';
      const image = 'Image.fromDebianBase({ name: "app" }).withPoetryProject("./pyproject.toml")';
      const problems = await demandingProject(
        dir,
        demand,
        image,
        `[plugins.poetry_project]\n${setting}\n`,
      );
      assert.deepEqual(problems.map((p) => p.message), [], setting);
    });
  }
});

Deno.test("requires-python and Poetry's python dependency are checked against the image's Python", async () => {
  for (
    const [demand, where] of [
      [
        '[project]\nname = "app"\nversion = "1"\nrequires-python = ">=3.13"\n',
        "[project] requires-python",
      ],
      [
        '[tool.poetry]\nname = "app"\n[tool.poetry.dependencies]\npython = "~3.11"\n',
        "[tool.poetry.dependencies] python",
      ],
    ]
  ) {
    await withTempDir(async (dir) => {
      const image = 'Image.fromDebianBase({ name: "app", pythonVersion: [3, 12] })' +
        '.withPoetryProject("./pyproject.toml")';
      const problems = await demandingProject(dir, demand, image);
      const constraint = demand.includes(">=3.13") ? ">=3.13" : "~3.11";
      assertDiagnostic(problems, {
        message: `${
          join(dir, "pyproject.toml")
        } requires Python ${constraint} (${where}), but the image has Python 3.12`,
        hint: new RegExp(`pythonVersion \\[3, ${constraint === ">=3.13" ? 13 : 11}\\] in the spec`),
      });
      // Over a base whose Python imgtool does not know, nothing is claimed.
      const unknown = await demandingProject(
        dir,
        demand,
        'Image.fromBase("example.org/python:custom").withPoetryProject("./pyproject.toml")',
      );
      assert.deepEqual(unknown.filter((p) => p.message.includes("requires Python")), []);
    });
  }
  await withTempDir(async (dir) => {
    const fits = await demandingProject(
      dir,
      '[project]\nname = "app"\nversion = "1"\nrequires-python = ">=3.11,<3.13"\n',
      'Image.fromDebianBase({ name: "app", pythonVersion: [3, 12] }).withPoetryProject("./pyproject.toml")',
    );
    assert.deepEqual(fits, []);
  });
});

Deno.test("the tag counts local dependencies by content: editing the library changes it, moving the checkout does not", async () => {
  const spec =
    'export default Image.fromDebianBase({ name: "mono" }).withPoetryProject("./apps/api/pyproject.toml");\n';
  await withTempDir(async (first) => {
    await withTempDir(async (second) => {
      const tagOf = async (image: Image) => (await identify(planImage(image, "default", uv))).tag;
      const one = await monorepoProject(first, spec);
      const two = await monorepoProject(second, spec);
      assert.equal(await tagOf(one), await tagOf(two));
      // The app's code is not a dependency: dependencies_only ignores it.
      await Deno.writeTextFile(
        join(second, "apps", "api", "imgtool_mono_api", "extra.py"),
        "x = 1\n",
      );
      assert.equal(await tagOf(two), await tagOf(one));
      await Deno.writeTextFile(
        join(second, "libs", "lib", "imgtool_mono_lib", "extra.py"),
        "x = 1\n",
      );
      assert.notEqual(await tagOf(two), await tagOf(one));
    });
  });
});

Deno.test("with local dependencies too, each step mounts one cache at most (buildah 1.28 keeps all but the last locked cache of a step locked until the build ends)", async () => {
  for (const image of [monorepo.dependencies, monorepo.installProject]) {
    for (const config of [uv, pip]) {
      for (const step of poetrySteps(await renderImage(planImage(image, "default", config)))) {
        assert.ok((step.match(/type=cache/g) ?? []).length <= 1, step);
      }
    }
  }
});

Deno.test("a path dependency's folder name reaches the step's shell intact; a control character in it is a validation error", async () => {
  await withTempDir(async (dir) => {
    const odd = "my lib $HOME 'x'";
    await writeTree(dir, {
      "spec.ts": 'import { Image } from "imgtool";\n' +
        'export default Image.fromDebianBase({ name: "app" }).withPoetryProject("./app/pyproject.toml");\n',
      "app/pyproject.toml": '[tool.poetry]\nname = "app"\n[tool.poetry.dependencies]\n' +
        `odd = { path = ${JSON.stringify(`../${odd}`)}, develop = true }\n`,
      "app/poetry.lock": "package = []\n",
      [`${odd}/pyproject.toml`]: '[tool.poetry]\nname = "odd"\nversion = "1"\n',
    });
    const image = (await import(pathToFileURL(join(dir, "spec.ts")).href)).default;
    assert.deepEqual(await problemsOf(image), []);
    const [, install] = poetrySteps(await renderImage(planImage(image, "default", uv)));
    const line = install.split("\n").find((l) => l.includes('"$IMGTOOL_POETRY_EDITABLE" odd;'));
    const word = /then rm -rf (.+?) && \(cd /.exec(line ?? "")?.[1];
    assert.ok(word, install);
    // The shell reads the word back as the folder's path in the step.
    const echoed = await runProcess("sh", ["-c", `printf %s ${word}`]);
    assert.equal(echoed.stdout, `/tmp/imgtool-poetry-project/${odd}/dist`);
    const syntax = await runProcess("sh", [
      "-n",
      "-c",
      install.replace(/^RUN (--mount=\S+ \\\n\s*)*/, "").replaceAll("\\\n", ""),
    ]);
    assert.equal(syntax.code, 0, syntax.stderr);

    await Deno.rename(join(dir, odd), join(dir, "bad\nname"));
    await Deno.writeTextFile(
      join(dir, "app", "pyproject.toml"),
      '[tool.poetry]\nname = "app"\n[tool.poetry.dependencies]\nodd = { path = "../bad\\nname" }\n',
    );
    assertDiagnostic(await problemsOf(image), {
      message: /names "[^"]*bad\\nname", whose name or path holds a control character$/,
      hint: "rename the dependency or its folder",
    });
  });
});
