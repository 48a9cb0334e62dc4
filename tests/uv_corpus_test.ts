// Real public uv projects (tests/fixtures/corpus/*/SOURCE.md names each repository and commit):
// which files their withUvProject step gets. uv cannot run where the tests run, so these
// check the build context and the uv command, against facts read from the projects' own
// files.
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { type Config, Image, planImage, renderImage, validateImages } from "imgtool";
import { fixtureConfig, FIXTURES } from "./helpers.ts";

const CORPUS = join(FIXTURES, "corpus");
const python = Image.fromDebianBase({ name: "corpus", pythonVersion: [3, 12] });
const uv = fixtureConfig();

interface Rendered {
  /** `target <- kind source`, relative to the project's folder of the corpus. */
  readonly context: string[];
  /** The uv step. */
  readonly step: string;
}

async function render(image: Image, project: string, config: Config): Promise<Rendered> {
  const plan = planImage(image, "default", config);
  assert.deepEqual(await validateImages([plan], { secretValues: false }), []);
  const rendered = await renderImage(plan);
  const root = join(CORPUS, project);
  return {
    context: rendered.context.flatMap((entry) =>
      entry.kind === "text" ? [] : [
        `${
          entry.target.replace(/^\.imgtool\/01-uv_project\/project\/?/, "")
            // The project's own step (install_project), after the dependencies' step.
            .replace(/^\.imgtool\/01-uv_project\/source\/?/, "project step: ") || "."
        } <- ${entry.kind} ${entry.source === root ? "." : entry.source.slice(root.length + 1)}`,
      ]
    ),
    step: rendered.dockerfile.slice(rendered.dockerfile.lastIndexOf("\nRUN ") + 1),
  };
}

function toml(path: string): Record<string, unknown> {
  return parseToml(Deno.readTextFileSync(path)) as Record<string, unknown>;
}

/** Every pyproject.toml under `dir`, relative to it. */
function pyprojects(dir: string, prefix = ""): string[] {
  return [...Deno.readDirSync(join(dir, prefix))].flatMap((entry) => {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory) return pyprojects(dir, path);
    return entry.name === "pyproject.toml" ? [path] : [];
  });
}

// --- modelcontextprotocol/python-sdk: a workspace root with dynamic metadata ----------------

const MCP = join(CORPUS, "mcp-python-sdk");
const mcpRequiredUv = (toml(join(MCP, "pyproject.toml")).tool as { uv: Record<string, string> })
  .uv["required-version"];
const newEnoughUv = fixtureConfig({ IMGTOOL_IMAGES_UV: "ghcr.io/astral-sh/uv:0.9.5" });

Deno.test("corpus mcp-python-sdk: its required-version is checked against the configured uv image", async () => {
  const image = python.withUvProject(join(MCP, "pyproject.toml"));
  const problems = await validateImages([planImage(image, "default", uv)], { secretValues: false });
  assert.equal(problems.length, 1, JSON.stringify(problems, null, 2));
  assert.ok(
    problems[0].message.startsWith(`${join(MCP, "pyproject.toml")} demands uv ${mcpRequiredUv}`),
  );
  assert.match(problems[0].hint!, /\[images\] uv/);
});

Deno.test("corpus mcp-python-sdk: the root's dependencies step gets the members it installs whole and the lock", async () => {
  const { context, step } = await render(
    python.withUvProject(join(MCP, "pyproject.toml")),
    "mcp-python-sdk",
    newEnoughUv,
  );
  // `mcp-types` reaches the root through its build hook's dependencies (only the lock says
  // so); `mcp-example-stories` (the examples/ member) through the dev group.
  assert.deepEqual(context, [
    "examples <- tree examples",
    "src/mcp-types <- tree src/mcp-types",
    "pyproject.toml <- file pyproject.toml",
    "uv.lock <- file uv.lock",
  ]);
  // Every member's pyproject reaches the step, uv reads them all.
  for (const member of pyprojects(MCP).filter((path) => path !== "pyproject.toml")) {
    assert.ok(
      context.some((line) => line.endsWith("<- tree examples") && member.startsWith("examples/")) ||
        context.some((line) =>
          line.endsWith("<- tree src/mcp-types") && member.startsWith("src/mcp-types/")
        ),
      `${member} reaches the step`,
    );
  }
  // The root's version and dependencies are dynamic: without its sources uv cannot check
  // the lock, so it installs it as it is.
  assert.deepEqual(
    (toml(join(MCP, "pyproject.toml")).project as { dynamic: string[] }).dynamic,
    ["version", "dependencies"],
  );
  assert.match(step, / uv sync --frozen --inexact --no-editable --no-install-project\n/);
  assert.match(step, /&& cd \/tmp\/imgtool-uv-project \\\n/);
});

Deno.test("corpus mcp-python-sdk: a member server that needs the root package gets the whole workspace", async () => {
  const member = "examples/servers/simple-tool";
  const dependencies = (toml(join(MCP, member, "pyproject.toml")).project as {
    dependencies: string[];
  }).dependencies;
  assert.ok(dependencies.includes("mcp"), "the member depends on the workspace root");
  const { context, step } = await render(
    python.withUvProject(join(MCP, member, "pyproject.toml")),
    "mcp-python-sdk",
    newEnoughUv,
  );
  assert.deepEqual(context, [". <- tree ."]);
  assert.match(step, /&& cd \/tmp\/imgtool-uv-project\/examples\/servers\/simple-tool \\\n/);
  assert.match(
    step,
    / uv sync --locked --package mcp-simple-tool --inexact --no-editable --no-install-project\n/,
  );
});

// --- langchain-ai/langgraph libs/langgraph: path sources to sibling libraries ---------------

const LANGGRAPH = join(CORPUS, "langgraph", "libs", "langgraph");

Deno.test("corpus langgraph: every sibling library its sources name reaches the step, and no other", async () => {
  const sources = (toml(join(LANGGRAPH, "pyproject.toml")).tool as {
    uv: { sources: Record<string, { path: string }> };
  }).uv.sources;
  const siblings = Object.values(sources).map((source) => source.path.replace(/^\.\.\//, ""))
    .sort();
  for (const mode of ["dependencies_only", "install_project"] as const) {
    const { context, step } = await render(
      python.withUvProject(join(LANGGRAPH, "pyproject.toml"), { projectInstallMode: mode }),
      "langgraph/libs",
      uv,
    );
    const trees = (step: "dependencies" | "project") =>
      context.filter((line) =>
        line.includes("<- tree") && line.startsWith("project step: ") === (step === "project")
      ).map((line) => line.split(" <- ")[0].replace(/^project step: /, ""));
    assert.deepEqual(trees("dependencies"), siblings, mode);
    assert.deepEqual(
      trees("project"),
      mode === "install_project" ? [...siblings, "langgraph"].sort() : [],
      mode,
    );
    // checkpoint-conformance is only in a sibling's own test group: uv does not install it.
    assert.ok(!context.some((line) => line.includes("checkpoint-conformance")), mode);
    assert.match(step, /&& cd \/tmp\/imgtool-uv-project\/langgraph \\\n/);
    // The dependencies' step, in both modes, sees the project's pyproject and lock only.
    assert.ok(context.includes("langgraph/pyproject.toml <- file langgraph/pyproject.toml"));
    assert.ok(context.includes("langgraph/uv.lock <- file langgraph/uv.lock"));
  }
});

Deno.test("corpus langgraph: installing from a mirror index installs the PyPI lock with --frozen", async () => {
  const lock = Deno.readTextFileSync(join(LANGGRAPH, "uv.lock"));
  assert.match(lock, /source = \{ registry = "https:\/\/pypi\.org\/simple" \}/);
  const { step } = await render(
    python.withUvProject(join(LANGGRAPH, "pyproject.toml"), {
      indexUrl: "https://mirror.example/simple",
    }),
    "langgraph/libs",
    uv,
  );
  assert.match(
    step,
    / uv sync --frozen --inexact --no-editable --no-install-project --index-url https:\/\/mirror\.example\/simple\n/,
  );
});

// --- langgraph's uv monorepo example: a member whose sources come from the root -------------

const MONOREPO = join(CORPUS, "langgraph-uv-monorepo");

Deno.test("corpus langgraph-uv-monorepo: the agent member gets the shared library the root's sources name, and the root's lock", async () => {
  const root = toml(join(MONOREPO, "pyproject.toml")) as {
    tool: { uv: { sources: Record<string, unknown>; workspace: { members: string[] } } };
  };
  assert.deepEqual({ ...root.tool.uv.sources.shared as object }, { workspace: true });
  const { context, step } = await render(
    python.withUvProject(join(MONOREPO, "apps/agent/pyproject.toml")),
    "langgraph-uv-monorepo",
    uv,
  );
  assert.deepEqual(context, [
    "libs/shared <- tree libs/shared",
    "apps/agent/pyproject.toml <- file apps/agent/pyproject.toml",
    "pyproject.toml <- file pyproject.toml",
    "uv.lock <- file uv.lock",
  ]);
  assert.match(step, /&& cd \/tmp\/imgtool-uv-project\/apps\/agent \\\n/);
  assert.match(
    step,
    / uv sync --locked --package agent --inexact --no-editable --no-install-project\n/,
  );
});

Deno.test("corpus langgraph-uv-monorepo: the virtual root reads its members' pyprojects and installs none", async () => {
  const { context } = await render(
    python.withUvProject(join(MONOREPO, "pyproject.toml")),
    "langgraph-uv-monorepo",
    uv,
  );
  assert.deepEqual(context, [
    "pyproject.toml <- file pyproject.toml",
    ...pyprojects(MONOREPO).filter((path) => path !== "pyproject.toml").sort().map((path) =>
      `${path} <- file ${path}`
    ),
    "uv.lock <- file uv.lock",
  ]);
});
