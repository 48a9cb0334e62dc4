// Real public Poetry monorepos (issue 18 item 6, the Poetry part; sources and commits in each
// fixture's SOURCE.md): for each, which files reach the build context and where, and, with
// Debian's Poetry where the machine has it, that Poetry itself finds every path dependency
// in the staged context. None of them can be built here: their dependencies (pydantic,
// fastapi, pika, ...) are on PyPI, which this machine cannot reach; the buildable monorepo
// is tests/fixtures/poetry_monorepo (tests/e2e/poetry_local_test.ts).
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { Image, planImage, renderImage, validateImages } from "../mod.ts";
import { writeContext } from "../src/context.ts";
import { fixtureConfig, FIXTURES, runProcess, withTempDir } from "./helpers.ts";

const CORPUS = join(FIXTURES, "corpus");
const config = fixtureConfig();

interface CorpusCase {
  /** The fixture folder under tests/fixtures/corpus. */
  readonly project: string;
  /** The pyproject the image installs, relative to the fixture folder. */
  readonly pyproject: string;
  /** A Python the project allows. */
  readonly python: readonly [number, number];
  /**
   * What must reach the dependency step, relative to the fixture folder: `tree` for folders
   * copied whole, `file` for single files. Read off the project's layout and README, not off
   * imgtool's output.
   */
  readonly staged: readonly string[];
  /** The local packages Poetry installs editable (develop = true), to be replaced by wheels. */
  readonly editable: readonly string[];
}

const CASES: readonly CorpusCase[] = [
  {
    // A virtual root whose members come in only through dependency groups.
    project: "adriangb-python-monorepo",
    pyproject: "poetry/pyproject.toml",
    python: [3, 12],
    staged: [
      "file poetry/pyproject.toml",
      "file poetry/poetry.lock",
      "file poetry/poetry.toml",
      "tree poetry/workspaces/app",
      "tree poetry/workspaces/cli",
      "tree poetry/workspaces/lib",
    ],
    editable: ["namespace-app", "namespace-cli", "namespace-lib"],
  },
  {
    // A service whose libraries are path dependencies of the legacy dev-dependencies table.
    project: "dermidgen-python-monorepo",
    pyproject: "stack/service-one/pyproject.toml",
    python: [3, 12],
    staged: [
      "file stack/service-one/pyproject.toml",
      "file stack/service-one/poetry.lock",
      "file stack/service-one/poetry.toml",
      "tree libs/libmq",
      "tree libs/libtelemetry",
    ],
    editable: ["libmq", "libtelemetry"],
  },
  {
    // root -> api -> core, database -> core: only the lock (and api's pyproject) name the last two.
    project: "ya-mori-python-monorepo",
    pyproject: "sample_2/pyproject.toml",
    python: [3, 8],
    staged: [
      "file sample_2/pyproject.toml",
      "file sample_2/poetry.lock",
      "tree sample_2/api",
      "tree sample_2/core",
      "tree sample_2/database",
    ],
    editable: ["api", "core", "database"],
  },
];

function imageOf(corpus: CorpusCase, python = corpus.python): Image {
  // The tests folder is inside the repository, so the corpus is inside the project boundary.
  return Image.fromDebianBase({ name: corpus.project, pythonVersion: python })
    .withPoetryProject(join(CORPUS, corpus.project, corpus.pyproject));
}

for (const corpus of CASES) {
  Deno.test(`corpus ${corpus.project}: every local package reaches the dependency step, laid out as in the repository`, async () => {
    const root = join(CORPUS, corpus.project);
    const plan = planImage(imageOf(corpus), "default", config);
    assert.deepEqual(await validateImages([plan], { secretValues: false }), []);
    const rendered = await renderImage(plan);
    const prefix = ".imgtool/01-poetry_project/project/";
    const layoutRoots = new Set<string>();
    const staged = rendered.context.map((entry) => {
      assert.notEqual(entry.kind, "text");
      if (entry.kind === "text") return "";
      // Where it sits in the step is where it sits on disk, relative to the others: every
      // entry is its source's path below one common folder.
      const place = relative(root, entry.source);
      assert.ok(entry.target.startsWith(prefix), entry.target);
      const inStep = entry.target.slice(prefix.length);
      assert.ok(place.endsWith(inStep), `${entry.target} keeps the layout of ${place}`);
      layoutRoots.add(place.slice(0, place.length - inStep.length));
      return `${entry.kind} ${place}`;
    });
    assert.equal(layoutRoots.size, 1, [...layoutRoots].join(", "));
    assert.deepEqual(staged.sort(), [...corpus.staged].sort());
    const checked = [...rendered.dockerfile.matchAll(/"\$IMGTOOL_POETRY_EDITABLE" (\S+);/g)]
      .map((match) => match[1]);
    assert.deepEqual(checked.sort(), [...corpus.editable].sort());
  });
}

Deno.test("corpus ya-mori-python-monorepo: its python = 3.8.6 pin is a validation error on a 3.12 image", async () => {
  const [corpus] = CASES.filter((c) => c.project === "ya-mori-python-monorepo");
  const problems = await validateImages([planImage(imageOf(corpus, [3, 12]), "default", config)], {
    secretValues: false,
  });
  assert.deepEqual(problems.map((p) => p.message), [
    `${join(CORPUS, corpus.project, corpus.pyproject)} requires Python 3.8.6 ` +
    "([tool.poetry.dependencies] python), but the image has Python 3.12",
  ]);
  assert.match(problems[0].hint ?? "", /pythonVersion \[3, 8\]/);
});

const poetry = await runProcess("/usr/bin/poetry", ["--version"]).then(
  (ran) => ran.code === 0,
  () => false,
);

Deno.test({
  name:
    "corpus adriangb-python-monorepo: Poetry itself installs every member from the staged context",
  ignore: !poetry,
  async fn() {
    const [corpus] = CASES.filter((c) => c.project === "adriangb-python-monorepo");
    const plan = planImage(imageOf(corpus), "default", config);
    const rendered = await renderImage(plan);
    await withTempDir(async (dir) => {
      const context = join(dir, "context");
      await writeContext(rendered, context, plan.ignore);
      const venv = join(dir, "venv");
      const made = await runProcess("/usr/bin/python3", ["-m", "venv", "--without-pip", venv]);
      assert.equal(made.code, 0, made.stderr);
      const project = join(context, ".imgtool", "01-poetry_project", "project");
      // A dry run reads the lock and every path dependency's pyproject, and downloads nothing.
      const ran = await runProcess("/usr/bin/poetry", ["install", "--no-root", "--dry-run", "-n"], {
        cwd: project,
        env: {
          VIRTUAL_ENV: venv,
          POETRY_VIRTUALENVS_CREATE: "false",
          POETRY_CACHE_DIR: join(dir, "cache"),
          POETRY_CONFIG_DIR: join(dir, "config"),
        },
      });
      assert.equal(ran.code, 0, `${ran.stdout}\n${ran.stderr}`);
      const local = [...ran.stdout.matchAll(/Installing (\S+) \(\S+ (\/\S+)\)/g)]
        .map(([, name, path]) => `${name} ${relative(project, path)}`);
      assert.deepEqual(local.sort(), [
        "namespace-app workspaces/app",
        "namespace-cli workspaces/cli",
        "namespace-lib workspaces/lib",
      ]);
    });
  },
});
