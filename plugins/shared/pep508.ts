/**
 * PEP 508 requirement strings, as far as imgtool needs them: which package a requirement
 * names (to find its `[tool.uv.sources]` entry) and how to point it at a local folder.
 *
 * @module
 */

/** The parts of a requirement string. */
export interface Requirement {
  /** The package name as written. */
  readonly name: string;
  /** The extras, without brackets (`["socks"]`). */
  readonly extras: readonly string[];
  /** The version specifier or `@ URL` part, trimmed (may be empty). */
  readonly constraint: string;
  /** The environment marker after `;`, trimmed, if any. */
  readonly marker?: string;
}

const REQUIREMENT =
  /^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[([^\]]*)\])?\s*([^;]*?)\s*(?:;\s*(.*?)\s*)?$/;

/**
 * Split a requirement string; `undefined` when it does not start with a package name.
 *
 * @example
 * ```ts
 * import { parseRequirement } from "./pep508.ts";
 * console.log(parseRequirement("httpx[socks]>=0.27; python_version >= '3.11'"));
 * // { name: "httpx", extras: [ "socks" ], constraint: ">=0.27", marker: "python_version >= '3.11'" }
 * ```
 */
export function parseRequirement(text: string): Requirement | undefined {
  const match = REQUIREMENT.exec(text);
  if (!match) return undefined;
  const [, name, extras, constraint, marker] = match;
  return {
    name,
    extras: (extras ?? "").split(",").map((extra) => extra.trim()).filter(Boolean),
    constraint,
    ...(marker ? { marker } : {}),
  };
}

/**
 * A package name in its normalized form (PEP 503): lower case, runs of `-`, `_`, `.` as `-`.
 *
 * @example
 * ```ts
 * import { normalizeName } from "./pep508.ts";
 * console.log(normalizeName("LangGraph_Checkpoint.SQLite")); // langgraph-checkpoint-sqlite
 * ```
 */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, "-");
}

/**
 * The normalized name a requirement string names, if it names one.
 *
 * @example
 * ```ts
 * import { requirementName } from "./pep508.ts";
 * console.log(requirementName("Shared_Lib>=1"), requirementName("./wheels/x.whl")); // shared-lib undefined
 * ```
 */
export function requirementName(text: string): string | undefined {
  if (/^\s*[./]/.test(text) || /^\s*[a-z+]+:\/\//i.test(text)) return undefined;
  const requirement = parseRequirement(text);
  return requirement ? normalizeName(requirement.name) : undefined;
}

/**
 * The requirement pointed at a local path (a folder or an archive), keeping its extras and
 * marker: `name[extras] @ file:///path ; marker`, which pip and uv both install.
 *
 * @example
 * ```ts
 * import { localRequirement, parseRequirement } from "./pep508.ts";
 * console.log(localRequirement(parseRequirement("shared[io]; os_name == 'posix'")!, "/tmp/p/libs/shared"));
 * // shared[io] @ file:///tmp/p/libs/shared ; os_name == 'posix'
 * ```
 */
export function localRequirement(requirement: Requirement, path: string): string {
  const extras = requirement.extras.length > 0 ? `[${requirement.extras.join(",")}]` : "";
  const url = `file://${path.split("/").map(encodeURIComponent).join("/")}`;
  return `${requirement.name}${extras} @ ${url}${
    requirement.marker ? ` ; ${requirement.marker}` : ""
  }`;
}
