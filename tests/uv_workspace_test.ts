// withUvProject on workspaces and path sources: every local package the install needs reaches
// the step, laid out as on disk, in both install modes, with and without a lock; paths the
// project's files name stay inside the project; the versions of uv and Python a project
// demands are checked before anything is built. Where the tests rely on how uv behaves, their
// names say so ("uv docs: ..."), from uv's docs/concepts/projects/workspaces.md and
// dependencies.md (uv itself cannot be installed where the tests run).
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  type Config,
  type Diagnostic,
  identify,
  type Image,
  planImage,
  renderImage,
  validateImages,
} from "imgtool";
import { fixtureConfig, withTempDir, writeTree } from "./helpers.ts";

const uv = fixtureConfig();
const pip = fixtureConfig({}, { "python.installer": "pip" });

let specs = 0;

/** The image a new spec in `dir` exports: `Image.fromDebianBase(...)` then `chain`. */
async function specImage(dir: string, chain: string, python = "[3, 12]"): Promise<Image> {
  const spec = join(dir, `spec${++specs}.ts`);
  await Deno.writeTextFile(
    spec,
    'import { Image } from "imgtool";\n' +
      `const python = Image.fromDebianBase({ name: "app", pythonVersion: ${python} });\n` +
      `export default python${chain};\n`,
  );
  return (await import(pathToFileURL(spec).href)).default;
}

async function problemsOf(image: Image, config: Config = uv): Promise<Diagnostic[]> {
  return await validateImages([planImage(image, "default", config)], { secretValues: false });
}

/**
 * What the uv project layer puts in the context for one of its steps, as
 * `target <- kind source` (relative): the dependencies' step (`project`) or, in
 * `install_project` mode, the project's own (`source`).
 */
async function contextOf(
  image: Image,
  dir: string,
  config: Config = uv,
  step: "project" | "source" = "project",
): Promise<string[]> {
  const rendered = await renderImage(planImage(image, "default", config));
  const folder = new RegExp(`^\\.imgtool\\/\\d+-uv_project\\/${step}(?:\\/|$)`);
  return rendered.context.flatMap((entry) =>
    entry.kind === "text" || !folder.test(entry.target) ? [] : [
      `${entry.target.replace(folder, "")} <- ${entry.kind} ${
        entry.source === dir ? "." : entry.source.slice(dir.length + 1)
      }`,
    ]
  );
}

async function stepOf(image: Image, config: Config = uv): Promise<string> {
  const { dockerfile } = await renderImage(planImage(image, "default", config));
  return dockerfile.slice(dockerfile.lastIndexOf("\nRUN ") + 1);
}

/** A uv workspace: a virtual root, an app that needs a library through the root's sources. */
const WORKSPACE = {
  "pyproject.toml": '[project]\nname = "root"\nversion = "0"\nrequires-python = ">=3.11"\n' +
    "dependencies = []\n\n[tool.uv]\npackage = false\n\n[tool.uv.workspace]\n" +
    'members = ["apps/*", "libs/*"]\nexclude = ["libs/legacy"]\n\n[tool.uv.sources]\n' +
    "shared = { workspace = true }\ntesting = { workspace = true }\n",
  "apps/api/pyproject.toml":
    '[project]\nname = "api"\nversion = "1"\nrequires-python = ">=3.11"\n' +
    'dependencies = ["shared", "httpx"]\n\n[dependency-groups]\ndev = ["testing"]\n',
  "apps/api/api/__init__.py": "",
  "apps/web/pyproject.toml": '[project]\nname = "web"\nversion = "1"\ndependencies = []\n',
  "apps/web/web/__init__.py": "",
  "libs/shared/pyproject.toml": '[project]\nname = "shared"\nversion = "1"\ndependencies = []\n',
  "libs/shared/shared/__init__.py": "X = 1\n",
  "libs/testing/pyproject.toml": '[project]\nname = "testing"\nversion = "1"\ndependencies = []\n',
  "libs/testing/testing/__init__.py": "",
  "libs/legacy/pyproject.toml": '[project]\nname = "legacy"\nversion = "0"\n',
  "libs/notes/README.md": "a folder without a pyproject is no member\n",
};

const WORKSPACE_LOCK = 'version = 1\nrevision = 3\nrequires-python = ">=3.11"\n\n' +
  '[manifest]\nmembers = ["api", "root", "shared", "testing", "web"]\n\n' +
  '[[package]]\nname = "api"\nversion = "1"\nsource = { editable = "apps/api" }\n' +
  'dependencies = [{ name = "httpx" }, { name = "shared" }]\n\n' +
  '[package.dev-dependencies]\ndev = [{ name = "testing" }]\n\n' +
  '[[package]]\nname = "httpx"\nversion = "0.28.1"\nsource = { registry = "https://pypi.org/simple" }\n\n' +
  '[[package]]\nname = "root"\nversion = "0"\nsource = { virtual = "." }\n\n' +
  '[[package]]\nname = "shared"\nversion = "1"\nsource = { editable = "libs/shared" }\n\n' +
  '[[package]]\nname = "testing"\nversion = "1"\nsource = { editable = "libs/testing" }\n\n' +
  '[[package]]\nname = "web"\nversion = "1"\nsource = { editable = "apps/web" }\n';

Deno.test("a workspace member's step gets the workspace root, every member's pyproject and the members it needs, laid out as on disk (uv docs: the lock lives at the workspace root; root sources apply to members)", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, { ...WORKSPACE, "uv.lock": WORKSPACE_LOCK });
    const image = await specImage(dir, '.withUvProject("./apps/api/pyproject.toml")');
    assert.deepEqual(await contextOf(image, dir), [
      // shared (a dependency) and testing (its dev group) are installed: whole folders.
      "libs/shared <- tree libs/shared",
      "libs/testing <- tree libs/testing",
      // The project itself: its pyproject only, so its code does not rebuild this layer.
      "apps/api/pyproject.toml <- file apps/api/pyproject.toml",
      "pyproject.toml <- file pyproject.toml",
      // The other member: uv reads it to know the workspace, and installs nothing of it.
      "apps/web/pyproject.toml <- file apps/web/pyproject.toml",
      "uv.lock <- file uv.lock",
    ]);
    const sync = await stepOf(image);
    assert.match(sync, /&& cd \/tmp\/imgtool-uv-project\/apps\/api \\\n/);
    // uv docs: `--package` runs uv sync for a workspace member from any workspace folder.
    assert.match(
      sync,
      / uv sync --locked --package api --inexact --no-editable --no-install-project\n/,
    );
  });
});

Deno.test("a workspace member in install_project mode adds its own folder to the project's step; without a lock the members still reach the dependencies' step", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, WORKSPACE);
    const whole = await specImage(
      dir,
      '.withUvProject("./apps/api/pyproject.toml", { projectInstallMode: "install_project" })',
    );
    const members = [
      "libs/shared <- tree libs/shared",
      "libs/testing <- tree libs/testing",
    ];
    const workspace = [
      "pyproject.toml <- file pyproject.toml",
      "apps/web/pyproject.toml <- file apps/web/pyproject.toml",
    ];
    assert.deepEqual(await contextOf(whole, dir), [
      ...members,
      "apps/api/pyproject.toml <- file apps/api/pyproject.toml",
      ...workspace,
    ]);
    assert.deepEqual(await contextOf(whole, dir, uv, "source"), [
      "apps/api <- tree apps/api",
      ...members,
      ...workspace,
    ]);
    // uv's pip interface applies the workspace sources itself (it finds the root above).
    const { dockerfile } = await renderImage(planImage(whole, "default", uv));
    assert.match(
      dockerfile,
      / uv pip install --python \/opt\/venv\/bin\/python --group dev -r \/tmp\/imgtool-uv-project\/apps\/api\/pyproject.toml\n/,
    );
    assert.match(
      await stepOf(whole),
      / uv pip install --python \/opt\/venv\/bin\/python --no-deps \/tmp\/imgtool-uv-project\/apps\/api\n/,
    );
    // pip knows no sources: it gets the members as file URLs, in the step's layout.
    const withPip = await stepOf(
      await specImage(dir, '.withUvProject("./apps/api/pyproject.toml")'),
      pip,
    );
    assert.match(
      withPip,
      / 'shared @ file:\/\/\/tmp\/imgtool-uv-project\/libs\/shared' httpx 'testing @ file:\/\/\/tmp\/imgtool-uv-project\/libs\/testing'\n/,
    );
  });
});

Deno.test("the workspace root's own step reads every member's pyproject and installs none of them it does not need", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, { ...WORKSPACE, "uv.lock": WORKSPACE_LOCK });
    const image = await specImage(dir, '.withUvProject("./pyproject.toml")');
    assert.deepEqual(await contextOf(image, dir), [
      "pyproject.toml <- file pyproject.toml",
      "apps/api/pyproject.toml <- file apps/api/pyproject.toml",
      "apps/web/pyproject.toml <- file apps/web/pyproject.toml",
      "libs/shared/pyproject.toml <- file libs/shared/pyproject.toml",
      "libs/testing/pyproject.toml <- file libs/testing/pyproject.toml",
      "uv.lock <- file uv.lock",
    ]);
  });
});

/** A project with path sources: one in its dependencies, one in a group, one nested. */
const PATH_SOURCES = {
  "app/pyproject.toml": '[project]\nname = "app"\nversion = "1"\ndependencies = ["core"]\n\n' +
    '[dependency-groups]\ndev = ["devtools"]\n\n[tool.uv.sources]\n' +
    'core = { path = "../libs/core", editable = true }\n' +
    'devtools = { path = "../tools/devtools" }\nunused = { path = "../libs/unused" }\n',
  "app/app/__init__.py": "",
  "libs/core/pyproject.toml": '[project]\nname = "core"\nversion = "1"\n' +
    'dependencies = ["util"]\n\n[dependency-groups]\ndev = ["core-tests"]\n\n' +
    '[tool.uv.sources]\nutil = { path = "../util" }\ncore-tests = { path = "../core-tests" }\n',
  "libs/core/core/__init__.py": "",
  "libs/util/pyproject.toml": '[project]\nname = "util"\nversion = "1"\n',
  "libs/util/util/__init__.py": "",
  "libs/core-tests/pyproject.toml": '[project]\nname = "core-tests"\nversion = "1"\n',
  "libs/unused/pyproject.toml": '[project]\nname = "unused"\nversion = "1"\n',
  "tools/devtools/pyproject.toml": '[project]\nname = "devtools"\nversion = "1"\n',
};

Deno.test("path sources reach the step in both modes, with their own path sources (uv docs: a path is relative to the pyproject that declares it; a path dependency's sources apply to its dependencies)", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, PATH_SOURCES);
    for (const mode of ["dependencies_only", "install_project"]) {
      const image = await specImage(
        dir,
        `.withUvProject("./app/pyproject.toml", { projectInstallMode: "${mode}" })`,
      );
      const locals = [
        "libs/core <- tree libs/core",
        "libs/util <- tree libs/util",
        "tools/devtools <- tree tools/devtools",
      ];
      // The dependencies' step, in both modes; the project's own, in install_project mode.
      const context = await contextOf(image, dir);
      assert.deepEqual(context, [...locals, "app/pyproject.toml <- file app/pyproject.toml"], mode);
      const project = await contextOf(image, dir, uv, "source");
      assert.deepEqual(project, mode === "install_project" ? ["app <- tree app", ...locals] : []);
      // A source for no requirement, and a library's own dev group, are not installed.
      assert.ok(![...context, ...project].some((line) => /unused|core-tests/.test(line)), mode);
      assert.match(await stepOf(image), /&& cd \/tmp\/imgtool-uv-project\/app \\\n/);
    }
  });
});

Deno.test("a path source outside the project is a validation error naming the file and the path; allowed-paths admits it", async () => {
  await withTempDir(async (outside) => {
    await withTempDir(async (dir) => {
      await writeTree(outside, {
        "lib/pyproject.toml": '[project]\nname = "lib"\nversion = "1"\n',
      });
      await writeTree(dir, {
        "pyproject.toml": '[project]\nname = "app"\nversion = "1"\ndependencies = ["lib"]\n\n' +
          `[tool.uv.sources]\nlib = { path = "${join(outside, "lib")}" }\n`,
      });
      const image = await specImage(dir, '.withUvProject("./pyproject.toml")');
      const problems = await problemsOf(image);
      assert.equal(problems.length, 1, JSON.stringify(problems, null, 2));
      assert.equal(
        problems[0].message,
        `${join(dir, "pyproject.toml")} [tool.uv.sources] lib names ${join(outside, "lib")}, ` +
          `which is outside the project ${dir}`,
      );
      assert.match(problems[0].hint!, /allowed-paths/);
      assert.equal(problems[0].layer?.method, "withUvProject");
      // Nothing of it reaches the context (validation stops the build before rendering).
      assert.deepEqual(await contextOf(image, dir), ["pyproject.toml <- file pyproject.toml"]);
      const allowed = fixtureConfig({ IMGTOOL_ALLOWED_PATHS: outside });
      assert.deepEqual(await problemsOf(image, allowed), []);
    });
  });
});

Deno.test("a path source that does not exist is a validation error naming the file that names it", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "pyproject.toml": '[project]\nname = "app"\nversion = "1"\ndependencies = ["lib"]\n\n' +
        '[tool.uv.sources]\nlib = { path = "libs/lib" }\n',
    });
    const problems = await problemsOf(await specImage(dir, '.withUvProject("./pyproject.toml")'));
    assert.deepEqual(problems.map((problem) => [problem.message, problem.file]), [[
      `${join(dir, "pyproject.toml")} [tool.uv.sources] lib names ${join(dir, "libs/lib")}, ` +
      "which does not exist",
      join(dir, "pyproject.toml"),
    ]]);
  });
});

Deno.test("required-version is checked against the configured uv image before the build (uv docs: uv refuses to run when required-version excludes it; uv.toml takes precedence over [tool.uv])", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "pyproject.toml": '[project]\nname = "app"\nversion = "1"\n\n[tool.uv]\n' +
        'required-version = ">=0.9.5"\n',
      "uv.lock": 'version = 1\nrequires-python = ">=3.8"\n',
    });
    const image = await specImage(dir, '.withUvProject("./pyproject.toml")');
    const [problem, ...others] = await problemsOf(image);
    assert.equal(others.length, 0);
    assert.equal(
      problem.message,
      `${join(dir, "pyproject.toml")} demands uv >=0.9.5 (required-version), but the ` +
        `configured uv image ${uv.images.uv} has uv ${uv.images.uv.split(":").pop()}`,
    );
    assert.match(problem.hint!, /^set \[images\] uv in imgtool\.toml/);
    const newer = fixtureConfig({ IMGTOOL_IMAGES_UV: "registry.local/uv:0.9.7" });
    assert.deepEqual(await problemsOf(image, newer), []);
    const unknown = fixtureConfig({ IMGTOOL_IMAGES_UV: "registry.local/uv:latest" });
    assert.deepEqual(await problemsOf(image, unknown), [], "a tag without a version: uv checks");

    await Deno.writeTextFile(join(dir, "uv.toml"), 'required-version = "<0.9"\n');
    const [fromUvToml] = await problemsOf(image, newer);
    assert.match(fromUvToml.message, /uv\.toml demands uv <0\.9 \(required-version\)/);
  });
});

Deno.test("required-version does not apply when pip installs a project without a lock", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "pyproject.toml": '[project]\nname = "app"\nversion = "1"\ndependencies = ["rich"]\n\n' +
        '[tool.uv]\nrequired-version = ">=99"\n',
    });
    const image = await specImage(dir, '.withUvProject("./pyproject.toml")');
    assert.equal((await problemsOf(image, uv)).length, 1, "uv runs: checked");
    assert.deepEqual(await problemsOf(image, pip), [], "pip runs: nothing to check");
  });
});

Deno.test("requires-python of the project and of its lock is checked against the image's Python", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "pyproject.toml": '[project]\nname = "app"\nversion = "1"\nrequires-python = ">=3.13"\n',
      "uv.lock": 'version = 1\nrequires-python = ">=3.13"\n',
    });
    const problems = await problemsOf(await specImage(dir, '.withUvProject("./pyproject.toml")'));
    assert.deepEqual(problems.map((problem) => problem.file), [
      join(dir, "pyproject.toml"),
      join(dir, "uv.lock"),
    ]);
    assert.match(
      problems[0].message,
      /requires Python >=3\.13 \(requires-python\), but the image has Python 3\.12$/,
    );
    assert.match(problems[0].hint!, /pythonVersion: \[3, 13\]/);
    const fits = await specImage(dir, '.withUvProject("./pyproject.toml")', "[3, 13]");
    assert.deepEqual(await problemsOf(fits), []);
  });
});

Deno.test("the tag covers the local packages' contents and their place, not where the project is", async () => {
  await withTempDir(async (first) => {
    await withTempDir(async (second) => {
      const tag = async (dir: string) =>
        (await identify(
          planImage(await specImage(dir, '.withUvProject("./app/pyproject.toml")'), "default", uv),
        )).tag;
      await writeTree(first, PATH_SOURCES);
      await writeTree(second, PATH_SOURCES);
      assert.equal(await tag(first), await tag(second));
      await Deno.writeTextFile(join(second, "libs/util/util/__init__.py"), "changed = True\n");
      assert.notEqual(await tag(first), await tag(second), "a nested path source counts");
      await Deno.writeTextFile(join(first, "libs/util/util/__init__.py"), "changed = True\n");
      assert.equal(await tag(first), await tag(second));
      await Deno.writeTextFile(join(second, "app/app/__init__.py"), "code = 1\n");
      assert.equal(
        await tag(first),
        await tag(second),
        "the project's own code does not count in dependencies_only mode",
      );
    });
  });
});

Deno.test("an invalid pyproject or lock is a validation error naming the file", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, { "pyproject.toml": "[project\n", "uv.lock": "version = 1\n" });
    const image = await specImage(dir, '.withUvProject("./pyproject.toml")');
    const [broken, ...others] = await problemsOf(image);
    assert.equal(others.length, 0);
    assert.ok(broken.message.startsWith(`${join(dir, "pyproject.toml")} is not valid TOML: `));
    await writeTree(dir, { "pyproject.toml": '[project]\nname = "app"\n', "uv.lock": "= 1\n" });
    const [lock] = await problemsOf(await specImage(dir, '.withUvProject("./pyproject.toml")'));
    assert.ok(lock.message.startsWith(`${join(dir, "uv.lock")} is not valid TOML: `));
    assert.equal(lock.hint, "regenerate it with uv lock");
  });
});

Deno.test("without a lock pip cannot pin a package to an index: a validation error names the source; uv can", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "pyproject.toml": '[project]\nname = "app"\nversion = "1"\ndependencies = ["torch"]\n\n' +
        '[tool.uv.sources]\ntorch = { index = "pytorch" }\n\n[[tool.uv.index]]\n' +
        'name = "pytorch"\nurl = "https://download.pytorch.org/whl/cpu"\nexplicit = true\n',
    });
    const image = await specImage(dir, '.withUvProject("./pyproject.toml")');
    const [problem, ...others] = await problemsOf(image, pip);
    assert.equal(others.length, 0);
    assert.match(
      problem.message,
      /pyproject\.toml \[tool\.uv\.sources\] torch: pip cannot apply an index source/,
    );
    assert.deepEqual(await problemsOf(image, uv), [], "uv's pip interface applies it");
  });
});

Deno.test("a member's step installs the lock with --frozen when a workspace project whose sources it lacks has dynamic metadata (uv docs: uv cannot check the lock without each member's metadata)", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, { ...WORKSPACE, "uv.lock": WORKSPACE_LOCK });
    const image = () => specImage(dir, '.withUvProject("./apps/api/pyproject.toml")');
    assert.match(await stepOf(await image()), / uv sync --locked /);
    // The root (whose folder the step does not get) computes its version at build time.
    await Deno.writeTextFile(
      join(dir, "pyproject.toml"),
      WORKSPACE["pyproject.toml"].replace('version = "0"', 'dynamic = ["version"]'),
    );
    assert.match(await stepOf(await image()), / uv sync --frozen /);
    // So does the other member, web.
    await writeTree(dir, {
      "pyproject.toml": WORKSPACE["pyproject.toml"],
      "apps/web/pyproject.toml": '[project]\nname = "web"\ndynamic = ["version"]\n',
    });
    assert.match(await stepOf(await image()), / uv sync --frozen /);
    // shared's folder is in the step: uv can build it to know.
    await writeTree(dir, {
      "apps/web/pyproject.toml": WORKSPACE["apps/web/pyproject.toml"],
      "libs/shared/pyproject.toml": '[project]\nname = "shared"\ndynamic = ["version"]\n',
    });
    assert.match(await stepOf(await image()), / uv sync --locked /);
  });
});

Deno.test("without a lock, a { workspace = true } source with no such member is a validation error, never a bare name pip could fetch from an index", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "pyproject.toml": '[project]\nname = "app"\nversion = "1"\ndependencies = ["shared"]\n\n' +
        '[tool.uv.sources]\nshared = { workspace = true }\n\n[tool.uv.workspace]\nmembers = ["libs/*"]\n',
      "libs/other/pyproject.toml": '[project]\nname = "other"\nversion = "1"\n',
    });
    const image = await specImage(dir, '.withUvProject("./pyproject.toml")');
    const problems = await problemsOf(image, pip);
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.match(
      problems[0].message,
      /pyproject\.toml \[tool\.uv\.sources\] shared: \{ workspace = true \}, and no member of the workspace is named shared/,
    );
  });
});
