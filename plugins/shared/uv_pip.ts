/**
 * Installing a uv project that has no `uv.lock`: what `uv pip install` or pip is given so
 * that it installs what `uv sync` would (the same extras and dependency groups, the same
 * local packages). uv's pip interface reads the project's `pyproject.toml` itself and
 * applies its `[tool.uv.sources]`; pip knows neither, so it is given the requirements one by
 * one, with each source applied here (`name @ file:///...` for local packages).
 *
 * @module
 */

import { type Diagnostic, paths, shellQuote, shellQuoteExpanding } from "../../contract.ts";
import { localRequirement, parseRequirement, requirementName } from "./pep508.ts";
import { stringsOf, tableAt, type TomlTable } from "./toml_file.ts";
import {
  extraRequirements,
  groupRequirements,
  namesOneOf,
  type Selection,
} from "./uv_selection.ts";
import { sourcesFor, type UvProjectFiles } from "./uv_workspace.ts";

const { resolve } = paths;

/** Where the install step sees a path of the project's layout. */
export type StepPath = (path: string) => string;

/** Installer arguments (shell words), and the problems that stop them. */
export interface InstallArgs {
  /** Shell words, quoted. */
  readonly args: readonly string[];
  /** Why the project cannot be installed this way. */
  readonly problems: readonly Diagnostic[];
}

/**
 * The arguments of `uv pip install` for the project at `projectInStep` (the step's working
 * directory, where `--group` reads `pyproject.toml`): the extras and groups of `selection`,
 * `-r pyproject.toml` for the dependencies, and the project itself when `wholeProject`.
 *
 * @example
 * ```ts
 * import { uvPipArgs } from "./uv_pip.ts";
 * const project = { pyproject: "/p/pyproject.toml", dir: "/p", table: {}, locals: [], members: [] };
 * const selection = { project: true, extras: ["io"], groups: [], rest: [], problems: [] };
 * console.log(uvPipArgs(project, selection, "/tmp/p", false, (path) => path, []).args);
 * // [ "--extra", "io", "-r", "/tmp/p/pyproject.toml" ]
 * ```
 */
export function uvPipArgs(
  project: UvProjectFiles,
  selection: Selection,
  projectInStep: string,
  wholeProject: boolean,
  stepPath: StepPath,
  secretIds: readonly string[],
): InstallArgs {
  const table = project.table ?? {};
  const defined = Object.keys(tableAt(table, "dependency-groups"));
  const groups = selection.groups.filter((group) => defined.includes(group));
  // Legacy `[tool.uv] dev-dependencies` are no group uv's pip interface knows: given as
  // requirements, with their sources applied as for pip.
  const legacy = selection.groups.some((group) => !defined.includes(group))
    ? applySources(project, stringsOf(tableAt(table, "tool", "uv")["dev-dependencies"]), stepPath)
    : { requirements: [], problems: [] };
  const pyproject = `${projectInStep}/pyproject.toml`;
  return {
    args: [
      ...selection.extras.flatMap((extra) => ["--extra", shellQuote(extra)]),
      ...groups.flatMap((group) => ["--group", shellQuote(group)]),
      ...(selection.project ? ["-r", shellQuote(pyproject)] : []),
      ...(selection.project && wholeProject ? [shellQuote(projectInStep)] : []),
      ...legacy.requirements.map((requirement) => shellQuoteExpanding(requirement, secretIds)),
    ],
    problems: legacy.problems,
  };
}

/**
 * The arguments of `pip install`: the project folder (`wholeProject`) or its dependencies,
 * the requirements of the selected extras and groups, each with its `[tool.uv.sources]`
 * entry applied.
 *
 * @example
 * ```ts
 * import { pipArgs } from "./uv_pip.ts";
 * const project = {
 *   pyproject: "/p/pyproject.toml",
 *   dir: "/p",
 *   table: {
 *     project: { dependencies: ["lib>=1", "rich"] },
 *     tool: { uv: { sources: { lib: { path: "../lib" } } } },
 *   },
 *   locals: [],
 *   members: [],
 * };
 * const selection = { project: true, extras: [], groups: [], rest: [], problems: [] };
 * console.log(pipArgs(project, selection, "/tmp/x/p", false, (path) => `/tmp/x${path}`, []).args);
 * // [ "'lib @ file:///tmp/x/lib'", "rich" ]
 * ```
 */
export function pipArgs(
  project: UvProjectFiles,
  selection: Selection,
  projectInStep: string,
  wholeProject: boolean,
  stepPath: StepPath,
  secretIds: readonly string[],
): InstallArgs {
  const table = project.table ?? {};
  const dependencies = stringsOf(tableAt(table, "project").dependencies);
  const sources = sourcesFor(project);
  const localNames = new Set(
    [...sources].filter(([, source]) =>
      source.entries.some((entry) => "path" in entry || entry.workspace === true)
    ).map(([name]) => name),
  );
  const wanted = [
    // A whole project brings its own dependencies, but pip must be given the local ones:
    // it cannot know where they are.
    ...(selection.project
      ? wholeProject
        ? dependencies.filter((requirement) => namesOneOf(requirement, localNames))
        : dependencies
      : []),
    ...extraRequirements(table, selection.extras),
    ...groupRequirements(table, selection.groups),
  ];
  const applied = applySources(project, wanted, stepPath);
  return {
    args: [
      ...(selection.project && wholeProject ? [shellQuote(projectInStep)] : []),
      ...applied.requirements.map((requirement) =>
        shellQuoteExpanding(requirement.trim(), secretIds)
      ),
    ],
    problems: applied.problems,
  };
}

/** Requirements with their `[tool.uv.sources]` entries applied, as pip understands them. */
function applySources(
  project: UvProjectFiles,
  requirements: readonly string[],
  stepPath: StepPath,
): { requirements: string[]; problems: Diagnostic[] } {
  const sources = sourcesFor(project);
  const members = new Map(
    (project.workspace?.members ?? []).flatMap((member) =>
      member.name ? [[member.name, member.dir]] : []
    ),
  );
  const problems: Diagnostic[] = [];
  const applied = requirements.map((text) => {
    const name = requirementName(text);
    const source = name === undefined ? undefined : sources.get(name);
    const requirement = parseRequirement(text);
    if (!source || !requirement || source.entries.length === 0) return text;
    const unsupported = (what: string) => {
      problems.push({
        message: `${source.file} [tool.uv.sources] ${name}: pip cannot apply ${what}, and the ` +
          "project has no uv.lock and the installer is pip",
        hint: 'use the uv installer ([python] installer = "uv" in imgtool.toml), or lock the ' +
          "project (uv lock)",
        file: source.file,
      });
      return text;
    };
    if (source.entries.length > 1) return unsupported("several sources with markers");
    const entry: TomlTable = source.entries[0];
    const extras = requirement.extras.length > 0 ? `[${requirement.extras.join(",")}]` : "";
    const marker = requirement.marker ? ` ; ${requirement.marker}` : "";
    if (entry.workspace === true) {
      const dir = members.get(name!);
      if (dir !== undefined) return localRequirement(requirement, stepPath(dir));
      // A bare name would let pip fetch a package of that name from an index instead.
      problems.push({
        message: `${source.file} [tool.uv.sources] ${name}: { workspace = true }, and no ` +
          `member of the workspace is named ${name}`,
        hint: "add the member to [tool.uv.workspace] members of the workspace root's " +
          "pyproject.toml, or fix the name",
        file: source.file,
      });
      return text;
    }
    if (typeof entry.path === "string") {
      return localRequirement(requirement, stepPath(resolve(source.base, entry.path)));
    }
    if (typeof entry.git === "string") {
      const ref = [entry.rev, entry.tag, entry.branch].find((value) => typeof value === "string");
      const subdirectory = typeof entry.subdirectory === "string"
        ? `#subdirectory=${entry.subdirectory}`
        : "";
      return `${requirement.name}${extras} @ git+${entry.git}${ref ? `@${ref}` : ""}` +
        `${subdirectory}${marker}`;
    }
    if (typeof entry.url === "string") {
      return `${requirement.name}${extras} @ ${entry.url}${marker}`;
    }
    return unsupported("an index source (a package pinned to one index)");
  });
  return { requirements: applied, problems };
}
