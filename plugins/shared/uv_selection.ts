/**
 * Which extras and dependency groups a uv project installs, as `uv sync` decides it: the
 * default groups (`dev`, or `[tool.uv] default-groups`), changed by the selection options
 * the user passes in `extraArgs` (`--no-dev`, `--group`, `--only-group`, `--extra`, ...).
 * Without a lock the project is installed with `uv pip install` or pip, which know none of
 * these options: the selection is computed here and given to them in their own terms, so that
 * the same options mean the same thing with and without a lock.
 *
 * @module
 */

import type { Diagnostic } from "../../contract.ts";
import { requirementName } from "./pep508.ts";
import { isTable, stringsOf, tableAt, type TomlTable } from "./toml_file.ts";

/** The extras and groups to install, and what else `extraArgs` held. */
export interface Selection {
  /** Whether the project's own dependencies (and the project) are installed. */
  readonly project: boolean;
  /** The extras, by name as the pyproject spells them. */
  readonly extras: readonly string[];
  /** The dependency groups, by name as the pyproject spells them. */
  readonly groups: readonly string[];
  /** The words of `extraArgs` that are not selection options, to pass on as they are. */
  readonly rest: readonly string[];
  /** Problems: `uv sync`-only options, unknown groups or extras. */
  readonly problems: readonly Diagnostic[];
}

/**
 * Split shell words the way a POSIX shell would for plain words and quotes (no expansion).
 * Never throws: an unclosed quote runs to the end.
 *
 * @example
 * ```ts
 * import { shellWords } from "./uv_selection.ts";
 * console.log(shellWords(`--group 'docs site' --no-dev`)); // [ "--group", "docs site", "--no-dev" ]
 * ```
 */
export function shellWords(text: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (/\s/.test(char)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (char === "'") {
      const end = text.indexOf("'", i + 1);
      word = (word ?? "") + text.slice(i + 1, end < 0 ? text.length : end);
      i = end < 0 ? text.length : end;
    } else if (char === '"') {
      let value = "";
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === "\\" && i + 1 < text.length && /["\\$`]/.test(text[i + 1])) i++;
        value += text[i];
      }
      word = (word ?? "") + value;
    } else if (char === "\\" && i + 1 < text.length) {
      word = (word ?? "") + text[++i];
    } else {
      word = (word ?? "") + char;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

// Options of `uv sync` that take a value, and those that take none, which `uv pip install`
// does not have (from uv's `SyncArgs` less its `PipInstallArgs`).
const SELECTION_WITH_VALUE = ["--extra", "--no-extra", "--group", "--no-group", "--only-group"];
const SYNC_ONLY_WITH_VALUE = [
  "--no-install-package",
  "--only-install-package",
  "--package",
  "--script",
  "--output-format",
];
const SYNC_ONLY = [
  "--active",
  "--no-active",
  "--no-install-project",
  "--only-install-project",
  "--no-install-workspace",
  "--only-install-workspace",
  "--no-install-local",
  "--only-install-local",
  "--locked",
  "--frozen",
  "--all-packages",
  "--check",
  "--no-check",
];

/**
 * The groups `uv sync` installs by default for a project: `[tool.uv] default-groups` (a list,
 * or `"all"`), else `dev`; only groups the project defines.
 *
 * @example
 * ```ts
 * import { defaultGroups } from "./uv_selection.ts";
 * console.log(defaultGroups({ "dependency-groups": { dev: ["pytest"], docs: ["mkdocs"] } })); // [ "dev" ]
 * ```
 */
export function defaultGroups(pyproject: TomlTable): string[] {
  const defined = groupNames(pyproject);
  const setting = tableAt(pyproject, "tool", "uv")["default-groups"];
  if (setting === "all") return defined;
  const wanted = Array.isArray(setting) ? stringsOf(setting) : ["dev"];
  return defined.filter((name) => wanted.map(normal).includes(normal(name)));
}

/** The dependency groups a pyproject defines (legacy `[tool.uv] dev-dependencies` as `dev`). */
function groupNames(pyproject: TomlTable): string[] {
  const names = Object.keys(tableAt(pyproject, "dependency-groups"));
  const legacy = stringsOf(tableAt(pyproject, "tool", "uv")["dev-dependencies"]);
  if (legacy.length > 0 && !names.map(normal).includes("dev")) names.push("dev");
  return names;
}

function normal(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, "-");
}

/**
 * The extras and groups `uv sync` would install for `pyproject` given the words of
 * `extraArgs`, and the other words. `uv sync`-only options are problems: without a lock they
 * have no meaning (`--locked` needs a lock to check).
 *
 * @example
 * ```ts
 * import { selectionFor } from "./uv_selection.ts";
 * const pyproject = { "dependency-groups": { dev: ["pytest"], docs: ["mkdocs"] } };
 * const selection = selectionFor(pyproject, "--no-dev --group docs --no-build");
 * console.log(selection.groups, selection.rest); // [ "docs" ] [ "--no-build" ]
 * ```
 */
export function selectionFor(pyproject: TomlTable, extraArgs: string | undefined): Selection {
  const words = shellWords(extraArgs ?? "");
  const flags = new Map<string, string[]>();
  const seen = (flag: string) => flags.has(flag);
  const rest: string[] = [];
  const syncOnly: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const [flag, inline] = words[i].startsWith("--") && words[i].includes("=")
      ? [words[i].slice(0, words[i].indexOf("=")), words[i].slice(words[i].indexOf("=") + 1)]
      : [words[i], undefined];
    if (SELECTION_WITH_VALUE.includes(flag)) {
      const value = inline ?? words[++i];
      if (value !== undefined) flags.set(flag, [...(flags.get(flag) ?? []), value]);
    } else if (
      ["--all-extras", "--dev", "--no-dev", "--only-dev", "--all-groups", "--no-default-groups"]
        .includes(flag)
    ) {
      flags.set(flag, []);
    } else if (SYNC_ONLY.includes(flag)) {
      syncOnly.push(flag);
    } else if (SYNC_ONLY_WITH_VALUE.includes(flag)) {
      syncOnly.push(flag);
      if (inline === undefined) i++;
    } else if (flag === "--no-editable" || flag === "--inexact") {
      // What imgtool does anyway: installs are never editable, nor exact.
    } else {
      rest.push(words[i]);
    }
  }
  const problems: Diagnostic[] = syncOnly.map((flag) => ({
    message: `extraArgs has ${flag}, an option of uv sync; the project has no uv.lock, so it ` +
      "is installed with pip install (uv's or pip's), which has no such option",
    hint: `remove ${flag} from extraArgs, or lock the project (uv lock) and pass its uv.lock`,
  }));

  const defined = groupNames(pyproject);
  const extrasDefined = Object.keys(tableAt(pyproject, "project", "optional-dependencies"));
  const find = (names: readonly string[], name: string) =>
    names.find((candidate) => normal(candidate) === normal(name));
  const checked = (kind: "group" | "extra", names: readonly string[], wanted: string[]) =>
    wanted.flatMap((name) => {
      const found = find(names, name);
      if (found === undefined) {
        problems.push({
          message: `extraArgs asks for the ${kind} ${JSON.stringify(name)}, which ` +
            `the pyproject does not define`,
          hint: kind === "group"
            ? "define it in [dependency-groups], or fix the name"
            : "define it in [project.optional-dependencies], or fix the name",
        });
      }
      return found ?? [];
    });

  const only = [...(flags.get("--only-group") ?? []), ...(seen("--only-dev") ? ["dev"] : [])];
  const excluded = [...(flags.get("--no-group") ?? []), ...(seen("--no-dev") ? ["dev"] : [])]
    .map(normal);
  const included = only.length > 0 ? only : [
    ...(seen("--no-default-groups") ? [] : defaultGroups(pyproject)),
    ...(seen("--all-groups") ? defined : []),
    ...(flags.get("--group") ?? []),
    ...(seen("--dev") ? ["dev"] : []),
  ];
  // Exclusions win over inclusions, as in uv.
  const groups = [...new Set(checked("group", defined, included))]
    .filter((name) => !excluded.includes(normal(name)));
  const noExtras = (flags.get("--no-extra") ?? []).map(normal);
  const extras = [
    ...new Set(
      seen("--all-extras")
        ? extrasDefined
        : checked("extra", extrasDefined, flags.get("--extra") ?? []),
    ),
  ].filter((name) => !noExtras.includes(normal(name)));
  return { project: only.length === 0, extras, groups, rest, problems };
}

/**
 * The requirement strings of `groups` (with `{ include-group = ... }` followed, and legacy
 * `[tool.uv] dev-dependencies` as part of `dev`).
 *
 * @example
 * ```ts
 * import { groupRequirements } from "./uv_selection.ts";
 * const pyproject = { "dependency-groups": { test: ["pytest"], dev: [{ "include-group": "test" }, "ruff"] } };
 * console.log(groupRequirements(pyproject, ["dev"])); // [ "pytest", "ruff" ]
 * ```
 */
export function groupRequirements(pyproject: TomlTable, groups: readonly string[]): string[] {
  const table = tableAt(pyproject, "dependency-groups");
  const requirements: string[] = [];
  const visiting = new Set<string>();
  const add = (group: string): void => {
    const key = Object.keys(table).find((name) => normal(name) === normal(group));
    if (visiting.has(normal(group))) return;
    visiting.add(normal(group));
    for (
      const item of Array.isArray(key === undefined ? undefined : table[key])
        ? table[key!] as unknown[]
        : []
    ) {
      if (typeof item === "string") requirements.push(item);
      else if (isTable(item) && typeof item["include-group"] === "string") {
        add(item["include-group"]);
      }
    }
    if (normal(group) === "dev") {
      requirements.push(...stringsOf(tableAt(pyproject, "tool", "uv")["dev-dependencies"]));
    }
  };
  for (const group of groups) add(group);
  return [...new Set(requirements)];
}

/**
 * The requirement strings of `extras` in `[project.optional-dependencies]`.
 *
 * @example
 * ```ts
 * import { extraRequirements } from "./uv_selection.ts";
 * console.log(extraRequirements({ project: { "optional-dependencies": { io: ["fsspec"] } } }, ["io"])); // [ "fsspec" ]
 * ```
 */
export function extraRequirements(pyproject: TomlTable, extras: readonly string[]): string[] {
  const table = tableAt(pyproject, "project", "optional-dependencies");
  return extras.flatMap((extra) => stringsOf(table[extra]));
}

/**
 * Whether a requirement names one of `names` (normalized).
 *
 * @example
 * ```ts
 * import { namesOneOf } from "./uv_selection.ts";
 * console.log(namesOneOf("Shared_Lib>=1", new Set(["shared-lib"]))); // true
 * ```
 */
export function namesOneOf(requirement: string, names: ReadonlySet<string>): boolean {
  const name = requirementName(requirement);
  return name !== undefined && names.has(name);
}
