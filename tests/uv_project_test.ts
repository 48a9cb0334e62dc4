// withUvProject renders what uv users run. uv cannot be installed on the machines the tests
// run on, so the tests that depend on how uv behaves say which documented behaviour they
// rely on ("uv docs: ..."), from uv's documentation (docs/concepts/projects/sync.md,
// docs/guides/integration/docker.md, docs/pip/packages.md) and its command-line reference.
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  type Config,
  type Diagnostic,
  Image,
  planImage,
  renderImage,
  validateImages,
} from "imgtool";
import { writeContext } from "../src/context.ts";
import * as images from "./fixtures/project/images.ts";
import {
  asText,
  dockerfileOf,
  fixtureConfig,
  renderGolden,
  withTempDir,
  writeTree,
} from "./helpers.ts";
import { projectDependencies } from "../plugins/uv_project.ts";

const uv = fixtureConfig();
const pip = fixtureConfig({}, { "python.installer": "pip" });
const noCache = fixtureConfig({}, { "cache.mounts": "false" });

/** The uv project step of a Dockerfile: the last instruction. */
function step(dockerfile: string): string {
  return dockerfile.slice(dockerfile.lastIndexOf("\nRUN ") + 1);
}

/** The RUN instructions that mount the context folder of layer `layer` (`01-uv_project`). */
function runsOf(dockerfile: string, layer: string): string[] {
  return dockerfile.split("\n\n").flatMap((block) => block.split(/\n(?=RUN )/))
    .filter((text) => text.startsWith("RUN ") && text.includes(`source=.imgtool/${layer}/`))
    .map((text) => text.trimEnd());
}

let specs = 0;

/** The image a new spec in `dir` exports: `Image.fromDebianBase(...)` then `chain`. */
async function specImage(dir: string, chain: string): Promise<Image> {
  // A new file each time: a module is imported once.
  const spec = join(dir, `spec${++specs}.ts`);
  await Deno.writeTextFile(
    spec,
    'import { Image } from "imgtool";\n' +
      'const python = Image.fromDebianBase({ name: "app", pythonVersion: [3, 12] });\n' +
      `export default python${chain};\n`,
  );
  return (await import(pathToFileURL(spec).href)).default;
}

async function problemsOf(image: Image, config: Config): Promise<Diagnostic[]> {
  return await validateImages([planImage(image, "default", config)], { secretValues: false });
}

const PYPROJECT = '[project]\nname = "app"\nversion = "1.0"\nrequires-python = ">=3.11"\n' +
  'dependencies = ["httpx>=0.27"]\n\n[dependency-groups]\ndev = ["pytest>=8"]\n' +
  'docs = ["mkdocs"]\n';

/** A lock made against `registry`, as uv writes one for PYPROJECT. */
function lockAgainst(registry: string): string {
  return 'version = 1\nrevision = 3\nrequires-python = ">=3.11"\n\n' +
    '[[package]]\nname = "app"\nversion = "1.0"\nsource = { editable = "." }\n' +
    'dependencies = [{ name = "httpx" }]\n\n[package.dev-dependencies]\n' +
    'dev = [{ name = "pytest" }]\n\n' +
    `[[package]]\nname = "httpx"\nversion = "0.28.1"\nsource = { registry = "${registry}" }\n\n` +
    `[[package]]\nname = "pytest"\nversion = "8.3.5"\nsource = { registry = "${registry}" }\n`;
}

Deno.test("uv_project plugin with a lock installs only the locked dependencies by default", async (t) => {
  const golden = await renderGolden(images.uvProjectLocked, uv);
  assert.match(golden, /&& uv sync --locked --inexact --no-editable --no-install-project\n/);
  assert.match(golden, /export UV_PROJECT_ENVIRONMENT=\/opt\/venv/);
  assert.match(golden, /project\/pyproject.toml <- file uvproj\/pyproject.toml/);
  assert.match(golden, /project\/uv.lock <- file uvproj\/uv.lock/);
  assert.doesNotMatch(golden, /<- tree/, "only the two files reach the context");
  await t.assertSnapshot(golden, asText);
});

Deno.test("uv_project plugin with a lock in install_project mode syncs the dependencies, then the whole project (uv docs, Docker guide: `uv sync --no-install-project` with only pyproject.toml and uv.lock as an intermediate layer, then `uv sync` with the project's files)", async (t) => {
  const golden = await renderGolden(images.uvProjectLockedInstall, uv);
  const [dependencies, project] = runsOf(golden, "01-uv_project");
  // The fixture's lock holds no registry package: the index given contradicts nothing.
  const index = "--index-url https://pypi.example/simple --prerelease=allow";
  assert.match(
    dependencies,
    new RegExp(`&& uv sync --locked --inexact --no-editable --no-install-project ${index}$`),
  );
  assert.match(dependencies, /source=\.imgtool\/01-uv_project\/project,target=/);
  assert.match(project, new RegExp(`&& uv sync --locked --inexact --no-editable ${index}$`));
  assert.match(project, /source=\.imgtool\/01-uv_project\/source,target=/);
  // The dependencies' step sees the two files; only the project's step sees the folder.
  assert.match(
    golden,
    /\.imgtool\/01-uv_project\/project\/pyproject.toml <- file uvproj\/pyproject.toml/,
  );
  assert.match(golden, /\.imgtool\/01-uv_project\/project\/uv.lock <- file uvproj\/uv.lock/);
  assert.match(golden, /\.imgtool\/01-uv_project\/source <- tree uvproj\n/);
  assert.equal(golden.match(/<- tree/g)?.length, 1);
  await t.assertSnapshot(golden, asText);
});

Deno.test("uv_project plugin without a lock lets uv resolve pyproject.toml", async (t) => {
  const golden = await renderGolden(images.uvProjectNoLock, uv);
  assert.match(
    golden,
    /uv pip install --python \/opt\/venv\/bin\/python -r \/tmp\/imgtool-uv-project\/pyproject.toml\n/,
  );
  assert.doesNotMatch(golden, /uv sync/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("uv_project plugin without a lock in install_project mode installs the dependencies, then the project alone (uv docs: `uv pip install -r pyproject.toml` installs the requirements the project declares; `--no-deps` installs only the packages listed, without their dependencies)", async (t) => {
  const golden = await renderGolden(images.uvProjectNoLockInstall, uv);
  const [dependencies, project] = runsOf(golden, "01-uv_project");
  const install = "uv pip install --python /opt/venv/bin/python " +
    "--extra-index-url https://mirror.example/simple";
  assert.ok(
    dependencies.endsWith(`${install} -r /tmp/imgtool-uv-project/pyproject.toml`),
    dependencies,
  );
  assert.match(dependencies, /source=\.imgtool\/01-uv_project\/project,target=/);
  assert.ok(project.endsWith(`${install} --no-deps /tmp/imgtool-uv-project`), project);
  assert.match(project, /source=\.imgtool\/01-uv_project\/source,target=/);
  assert.match(golden, /\.imgtool\/01-uv_project\/source <- tree uvproj_nolock\n/);
  assert.equal(golden.match(/<- tree/g)?.length, 1);
  await t.assertSnapshot(golden, asText);
});

Deno.test("uv_project plugin without a lock in install_project mode gives pip the dependencies, then the project folder with --no-deps", async () => {
  const [dependencies, project] = runsOf(
    await dockerfileOf(images.uvProjectNoLockInstall, pip),
    "01-uv_project",
  );
  assert.ok(
    dependencies.endsWith(
      "-m pip install --disable-pip-version-check --extra-index-url " +
        "https://mirror.example/simple 'httpx>=0.27' rich",
    ),
    dependencies,
  );
  assert.ok(
    project.endsWith(
      "-m pip install --disable-pip-version-check --extra-index-url " +
        "https://mirror.example/simple --no-deps /tmp/imgtool-uv-project",
    ),
    project,
  );
});

Deno.test("uv_project plugin without a lock gives pip the dependencies, not pyproject.toml", async (t) => {
  // pip's -r reads requirements files only: `pip install -r pyproject.toml` fails.
  const golden = await renderGolden(images.uvProjectNoLock, pip);
  assert.doesNotMatch(golden, /-r \/tmp\/imgtool-uv-project\/pyproject.toml/);
  assert.match(golden, /-m pip install --disable-pip-version-check 'httpx>=0\.27' rich\n/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("uv_project plugin with a lock uses uv sync even when the installer is pip", async (t) => {
  const golden = await renderGolden(images.uvProjectLocked, pip);
  assert.match(
    golden,
    /--mount=type=bind,from=ghcr.io\/astral-sh\/uv:0.8.13,source=\/uv,target=\/tmp\/imgtool-uv\/uv/,
  );
  assert.match(
    golden,
    /&& \/tmp\/imgtool-uv\/uv sync --locked --inexact --no-editable --no-install-project\n/,
  );
  await t.assertSnapshot(golden, asText);
});

Deno.test("uv_project plugin without cache mounts tells uv sync not to cache", async (t) => {
  const golden = await renderGolden(images.uvProjectLocked, noCache);
  assert.doesNotMatch(golden, /type=cache/);
  assert.match(
    golden,
    /&& uv sync --locked --inexact --no-editable --no-install-project --no-cache\n/,
  );
  await t.assertSnapshot(golden, asText);
});

Deno.test("uv_project plugin without a lock and without dependencies installs nothing with pip", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, { "pyproject.toml": '[project]\nname = "empty"\nversion = "0"\n' });
    const image = Image.fromDebianBase().withUvProject(join(dir, "pyproject.toml"));
    const dockerfile = await dockerfileOf(image, pip);
    assert.match(dockerfile, /# \(the project declares no dependencies\)\n/);
    assert.doesNotMatch(dockerfile, /pip install --disable-pip-version-check\s*\n/);
  });
});

/** Every file under `dir`, by path relative to it, with its bytes as text. */
async function filesUnder(dir: string): Promise<Record<string, string>> {
  const found: Record<string, string> = {};
  const walk = async (folder: string, prefix: string): Promise<void> => {
    for await (const entry of Deno.readDir(folder)) {
      const path = join(folder, entry.name);
      if (entry.isDirectory) await walk(path, `${prefix}${entry.name}/`);
      else found[`${prefix}${entry.name}`] = await Deno.readTextFile(path);
    }
  };
  await walk(dir, "");
  return found;
}

for (
  const [what, lock, config] of [
    ["with a lock", true, uv],
    ["without a lock, with uv", false, uv],
    ["without a lock, with pip", false, pip],
  ] as const
) {
  Deno.test(`install_project ${what}: editing a source file leaves the dependencies' step and every file it mounts as they were, so the builder reuses that layer`, async () => {
    await withTempDir(async (dir) => {
      await writeTree(dir, {
        "pyproject.toml": PYPROJECT.replace(
          "[dependency-groups]",
          "[build-system]\n" +
            'requires = ["hatchling"]\nbuild-backend = "hatchling.build"\n\n[dependency-groups]',
        ),
        ...(lock ? { "uv.lock": lockAgainst("https://pypi.org/simple") } : {}),
        "src/app/__init__.py": "VERSION = 1\n",
      });
      const image = await specImage(
        dir,
        '.withUvProject("./pyproject.toml", { projectInstallMode: "install_project" })',
      );
      // The Dockerfile and the context as the builder gets them.
      const staged = async (out: string) => {
        const plan = planImage(image, "default", config);
        const rendered = await renderImage(plan);
        await writeContext(rendered, out, plan.ignore);
        return runsOf(rendered.dockerfile, "01-uv_project");
      };
      const [before, after] = [join(dir, "out1"), join(dir, "out2")];
      const [dependencies, project] = await staged(before);
      await Deno.writeTextFile(join(dir, "src/app/__init__.py"), "VERSION = 2\n");
      const [dependenciesAfter, projectAfter] = await staged(after);
      assert.equal(dependenciesAfter, dependencies);
      const mounted = /source=(\.imgtool\/01-uv_project\/[a-z]+),target=/;
      const folder = mounted.exec(dependencies)![1];
      assert.deepEqual(
        await filesUnder(join(after, folder)),
        await filesUnder(join(before, folder)),
      );
      assert.ok(
        !Object.keys(await filesUnder(join(before, folder))).some((f) => f.endsWith(".py")),
      );
      // The project's own step sees the edit: it is the one that runs again.
      assert.equal(projectAfter, project);
      const source = mounted.exec(project)![1];
      assert.notEqual(source, folder);
      assert.equal(
        (await filesUnder(join(after, source)))["src/app/__init__.py"],
        "VERSION = 2\n",
      );
    });
  });
}

Deno.test("on a base whose Python environment imgtool does not know, uv sync installs into python3's environment, not a venv of its own (uv docs: set UV_PROJECT_ENVIRONMENT to the prefix of the Python installation to target the system environment; `--inexact` keeps what earlier layers installed)", async () => {
  const image = Image.fromBase("debian:bookworm").withPipPackages("rich").withUvProject(
    join(import.meta.dirname!, "fixtures/project/uvproj/pyproject.toml"),
    { projectInstallMode: "install_project" },
  );
  const steps = runsOf(await dockerfileOf(image, uv), "02-uv_project");
  assert.equal(steps.length, 2);
  for (const sync of steps) {
    assert.doesNotMatch(sync, /\/opt\/venv/);
    const order = [
      "{ command -v python3 >/dev/null",
      `UV_PROJECT_ENVIRONMENT="$(python3 -c 'import sys; print(sys.prefix)')" && ` +
      "export UV_PROJECT_ENVIRONMENT",
      " sync --locked --inexact ",
    ].map((mark) => sync.indexOf(mark));
    assert.ok(order.every((at, i) => at >= 0 && (i === 0 || at > order[i - 1])), sync);
  }
});

Deno.test("uv sync keeps what earlier layers installed (uv docs: `uv sync` is exact by default and removes packages not in the lock; `--inexact` keeps them)", async () => {
  const image = Image.fromDebianBase({ name: "app" })
    .withPipPackages("numpy==2.1.0")
    .withUvProject(join(import.meta.dirname!, "fixtures/project/uvproj/pyproject.toml"));
  const sync = step(await dockerfileOf(image, uv));
  assert.match(sync, / uv sync [^\n]*--inexact/);
  assert.doesNotMatch(sync, /--exact/);
});

Deno.test("a lock made against another index installs with --frozen (uv docs: --locked fails when the lock is out of date, and with an index given uv holds out of date a lock whose packages come from a registry not given; --frozen installs the lock as it is)", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "pyproject.toml": PYPROJECT,
      "uv.lock": lockAgainst("https://pypi.org/simple"),
    });
    const sync = async (options: string) =>
      step(
        await dockerfileOf(
          await specImage(dir, `.withUvProject("./pyproject.toml", ${options})`),
          uv,
        ),
      );
    assert.match(await sync("{}"), / uv sync --locked /, "no index given: uv accepts the lock");
    assert.match(
      await sync('{ indexUrl: "https://mirror.example/simple" }'),
      / uv sync --frozen --inexact --no-editable --no-install-project --index-url https:\/\/mirror\.example\/simple\n/,
    );
    assert.match(
      await sync('{ indexUrl: "https://pypi.org/simple/" }'),
      / uv sync --locked /,
      "the lock's own index is no other index",
    );
    assert.match(
      await sync('{ extraIndexUrls: "https://extra.example/simple" }'),
      / uv sync --locked /,
      "with only an extra index, PyPI stays among the indexes",
    );
    assert.match(
      await sync('{ extraArgs: "--frozen" }'),
      / uv sync --inexact --no-editable --no-install-project --frozen\n/,
      "the user's own --frozen is not contradicted (uv: --locked and --frozen conflict)",
    );
  });
});

Deno.test("a lock whose project has dynamic metadata installs its dependencies with --frozen (uv docs: uv needs a project's sources to check the lock against dynamic metadata)", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "pyproject.toml": PYPROJECT.replace('version = "1.0"', 'dynamic = ["version"]'),
      "uv.lock": lockAgainst("https://pypi.org/simple"),
    });
    const dependencies = await specImage(dir, '.withUvProject("./pyproject.toml")');
    assert.match(step(await dockerfileOf(dependencies, uv)), / uv sync --frozen /);
    const whole = await specImage(
      dir,
      '.withUvProject("./pyproject.toml", { projectInstallMode: "install_project" })',
    );
    assert.match(
      step(await dockerfileOf(whole, uv)),
      / uv sync --locked /,
      "its sources are there",
    );
  });
});

Deno.test("with a lock the dev group follows uv's default, and extraArgs decide otherwise (uv docs: the dev group is synced by default; --no-dev excludes it)", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "pyproject.toml": PYPROJECT,
      "uv.lock": lockAgainst("https://pypi.org/simple"),
    });
    const plain = step(
      await dockerfileOf(await specImage(dir, '.withUvProject("./pyproject.toml")'), uv),
    );
    assert.doesNotMatch(plain, /--no-dev|--only-dev|--group|--no-default-groups/);
    const noDev = step(
      await dockerfileOf(
        await specImage(dir, '.withUvProject("./pyproject.toml", { extraArgs: "--no-dev" })'),
        uv,
      ),
    );
    assert.match(noDev, / uv sync --locked [^\n]* --no-dev\n/);
  });
});

Deno.test("without a lock uv pip installs the groups uv sync would, from the project's folder (uv docs: `uv pip install --group` reads ./pyproject.toml and does not apply to -r sources)", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "pyproject.toml": PYPROJECT +
        '\n[project.optional-dependencies]\nio = ["fsspec"]\n',
    });
    const install = async (options: string) =>
      step(
        await dockerfileOf(
          await specImage(dir, `.withUvProject("./pyproject.toml", ${options})`),
          uv,
        ),
      );
    const plain = await install("{}");
    assert.match(plain, /&& cd \/tmp\/imgtool-uv-project \\\n/);
    assert.match(
      plain,
      / uv pip install --python \/opt\/venv\/bin\/python --group dev -r \/tmp\/imgtool-uv-project\/pyproject.toml\n/,
    );
    assert.match(
      await install('{ extraArgs: "--no-dev --group docs --extra io" }'),
      / uv pip install --python \/opt\/venv\/bin\/python --extra io --group docs -r \/tmp\/imgtool-uv-project\/pyproject.toml\n/,
    );
    assert.match(
      await install('{ extraArgs: "--only-group docs --no-build-isolation" }'),
      / uv pip install --python \/opt\/venv\/bin\/python --no-build-isolation --group docs\n/,
      "--only-group installs the group without the project; other options pass on",
    );
  });
});

Deno.test("without a lock pip gets the requirements of the groups and extras uv sync would install", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "pyproject.toml": PYPROJECT + '\n[project.optional-dependencies]\nio = ["fsspec"]\n',
    });
    const install = async (options: string) =>
      step(
        await dockerfileOf(
          await specImage(dir, `.withUvProject("./pyproject.toml", ${options})`),
          pip,
        ),
      );
    assert.match(await install("{}"), / 'httpx>=0\.27' 'pytest>=8'\n/);
    assert.match(
      await install('{ extraArgs: "--no-dev --extra io" }'),
      /--disable-pip-version-check 'httpx>=0\.27' fsspec\n/,
    );
  });
});

Deno.test("without a lock an option only uv sync has is a validation error that names it", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, { "pyproject.toml": PYPROJECT });
    const image = await specImage(
      dir,
      '.withUvProject("./pyproject.toml", { extraArgs: "--frozen --no-install-project --no-dev" })',
    );
    const messages = (await problemsOf(image, uv)).map((problem) => problem.message);
    assert.equal(messages.length, 2, messages.join("\n"));
    assert.match(
      messages[0],
      /^extraArgs has --frozen, an option of uv sync; the project has no uv\.lock/,
    );
    assert.match(messages[1], /^extraArgs has --no-install-project/);
  });
});

Deno.test("projectDependencies() reads [project] dependencies and tolerates what it cannot read", () => {
  assert.deepEqual(
    projectDependencies(
      '[project]\nname = "x"\ndependencies = ["a>=1", "b[c]; python_version>\'3\'"]\n',
    ),
    ["a>=1", "b[c]; python_version>'3'"],
  );
  assert.deepEqual(projectDependencies('[project]\nname = "x"\n'), []);
  assert.deepEqual(projectDependencies("not = [valid"), []);
  assert.deepEqual(projectDependencies(undefined), []);
});
