/**
 * What uv itself checks before it installs, checked by imgtool at validation instead of
 * halfway through a build: the uv version a project demands (`required-version`), the Python
 * versions it allows (`requires-python`), and whether `uv sync --locked` can accept the lock
 * (else `--frozen`).
 *
 * @module
 */

import {
  type Diagnostic,
  type IdentifyContext,
  paths,
  type PythonVersion,
} from "../../contract.ts";
import { pythonAllows, versionAllows } from "./pep440.ts";
import { isTable, readToml, stringsOf, tableAt, type TomlTable } from "./toml_file.ts";

/**
 * The uv version of a uv image reference (`ghcr.io/astral-sh/uv:0.8.13`,
 * `mirror/uv:0.8.13-python3.12-bookworm`), or `undefined` when its tag names no version.
 *
 * @example
 * ```ts
 * import { uvImageVersion } from "./uv.ts";
 * console.log(uvImageVersion("ghcr.io/astral-sh/uv:0.8.13"), uvImageVersion("uv:latest")); // 0.8.13 undefined
 * ```
 */
export function uvImageVersion(image: string): string | undefined {
  const name = image.split("@")[0];
  const last = name.slice(name.lastIndexOf("/") + 1);
  const tag = last.includes(":") ? last.slice(last.indexOf(":") + 1) : "";
  return /^v?(\d+\.\d+(?:\.\d+)*)(?![\w.])/.exec(tag)?.[1] ??
    /^v?(\d+\.\d+(?:\.\d+)*)-/.exec(tag)?.[1];
}

/** A `required-version` a file demands of uv. */
export interface UvVersionDemand {
  /** The file (`uv.toml`, or `pyproject.toml` with `[tool.uv]`). */
  readonly file: string;
  /** The specifier, as written. */
  readonly specifier: string;
}

/**
 * The `required-version` that uv reads for the folders `dirs` (a project's folder and its
 * workspace root): `uv.toml` first, else `[tool.uv]` of `pyproject.toml`, as uv does.
 *
 * @example
 * ```ts
 * import type { IdentifyContext } from "../../contract.ts";
 * import { requiredUvVersions } from "./uv.ts";
 * const files: Record<string, string> = { "/repo/uv.toml": 'required-version = ">=0.9"\n' };
 * const context = { readText: (path: string) => files[path] } as unknown as IdentifyContext;
 * console.log(requiredUvVersions(context, ["/repo"])); // [ { file: "/repo/uv.toml", specifier: ">=0.9" } ]
 * ```
 */
export function requiredUvVersions(
  context: IdentifyContext,
  dirs: readonly string[],
): UvVersionDemand[] {
  const demands: UvVersionDemand[] = [];
  for (const dir of new Set(dirs)) {
    const uvToml = paths.join(dir, "uv.toml");
    const own = readToml(context, uvToml);
    const pyproject = paths.join(dir, "pyproject.toml");
    const [file, settings] = isTable(own)
      ? [uvToml, own]
      : [pyproject, tableAt(readToml(context, pyproject), "tool", "uv")];
    const specifier = settings["required-version"];
    if (typeof specifier === "string") demands.push({ file, specifier });
  }
  return demands;
}

/**
 * The problem, if the configured uv image's uv does not satisfy `demand`. A uv image whose
 * tag names no version cannot be checked here; uv checks it when it runs.
 *
 * @example
 * ```ts
 * import { uvVersionProblem } from "./uv.ts";
 * const problem = uvVersionProblem({ file: "/repo/uv.toml", specifier: ">=0.9.5" }, "ghcr.io/astral-sh/uv:0.8.13");
 * console.log(problem?.message);
 * // /repo/uv.toml demands uv >=0.9.5 (required-version), but the configured uv image ghcr.io/astral-sh/uv:0.8.13 has uv 0.8.13
 * ```
 */
export function uvVersionProblem(
  demand: UvVersionDemand,
  uvImage: string,
): Diagnostic | undefined {
  const version = uvImageVersion(uvImage);
  if (version === undefined || versionAllows(demand.specifier, version) !== false) return undefined;
  const repository = uvImage.split("@")[0].replace(/:[^:/]*$/, "");
  return {
    message: `${demand.file} demands uv ${demand.specifier} (required-version), but the ` +
      `configured uv image ${uvImage} has uv ${version}`,
    hint: `set [images] uv in imgtool.toml to a uv image whose uv satisfies ${demand.specifier} ` +
      `(e.g. uv = "${repository}:<version>"), or relax required-version`,
    file: demand.file,
  };
}

/**
 * The problem, if Python `version` (the image's) is not one `specifier` (a
 * `requires-python` read from `file`) allows; the hint names a version it allows.
 *
 * @example
 * ```ts
 * import { requiresPythonProblem } from "./uv.ts";
 * console.log(requiresPythonProblem("/repo/pyproject.toml", ">=3.13", [3, 12])?.hint);
 * // set pythonVersion: [3, 13] on the image (or python-version = "3.13" in imgtool.toml)
 * ```
 */
export function requiresPythonProblem(
  file: string,
  specifier: string,
  version: PythonVersion,
): Diagnostic | undefined {
  if (pythonAllows(specifier, version)) return undefined;
  const minor = [8, 9, 10, 11, 12, 13, 14].find((candidate) =>
    pythonAllows(specifier, [3, candidate])
  );
  return {
    message: `${file} requires Python ${specifier} (requires-python), but the image has ` +
      `Python ${version.join(".")}`,
    hint: minor === undefined
      ? "no Python 3.8-3.14 satisfies it: fix requires-python"
      : `set pythonVersion: [3, ${minor}] on the image (or python-version = "3.${minor}" in ` +
        "imgtool.toml)",
    file,
  };
}

const PYPI = "https://pypi.org/simple";

// Index options of uv sync whose values imgtool cannot compare with the lock's.
const INDEX_FLAGS =
  /(?:^|\s)(?:--index|--default-index|--index-url|--extra-index-url|--find-links|-i|-f|--no-index)(?:[\s=]|$)/;

/** What decides between `uv sync --locked` and `--frozen`. */
export interface LockCheckInputs {
  /** The lock. */
  readonly lock: TomlTable;
  /** The index URLs the step passes (`--index-url`, `--extra-index-url`). */
  readonly indexUrl?: string;
  /** Extra index URLs the step passes. */
  readonly extraIndexUrls: readonly string[];
  /** The user's extra `uv sync` arguments. */
  readonly extraArgs?: string;
  /** Parsed pyproject.toml / uv.toml files whose index settings uv reads. */
  readonly settings: readonly TomlTable[];
  /** Whether some project whose sources the step lacks declares dynamic metadata. */
  readonly dynamicWithoutSources: boolean;
}

/**
 * `--locked` when uv can check the lock in the step and would accept it, else `--frozen`;
 * `undefined` when the user's arguments already say which. Per uv's docs, `--locked` fails
 * when the lock is not up to date, and uv holds a lock out of date when an index is given
 * (on the command line or in configuration) and a locked package comes from a registry that
 * is not among the indexes given; and it needs the sources of a project with dynamic
 * metadata to check it. `--frozen` installs the lock as it is.
 *
 * @example
 * ```ts
 * import { lockCheckFlag } from "./uv.ts";
 * const lock = { package: [{ name: "httpx", source: { registry: "https://pypi.org/simple" } }] };
 * const base = { lock, extraIndexUrls: [], settings: [], dynamicWithoutSources: false };
 * console.log(lockCheckFlag(base), lockCheckFlag({ ...base, indexUrl: "https://mirror.example/simple" }));
 * // --locked --frozen
 * ```
 */
export function lockCheckFlag(inputs: LockCheckInputs): "--locked" | "--frozen" | undefined {
  const words = inputs.extraArgs ?? "";
  if (/(?:^|\s)--(?:locked|frozen)(?:\s|$)/.test(words)) return undefined;
  if (inputs.dynamicWithoutSources) return "--frozen";
  const given = inputs.indexUrl !== undefined || inputs.extraIndexUrls.length > 0;
  if (!given) return "--locked";
  if (INDEX_FLAGS.test(words)) return "--frozen";
  const configured = inputs.settings.flatMap((table) => {
    const uv = isTable(table.tool) ? tableAt(table, "tool", "uv") : table;
    return [
      ...(typeof uv["index-url"] === "string" ? [uv["index-url"]] : []),
      ...stringsOf(uv["extra-index-url"]),
      ...(Array.isArray(uv.index) ? uv.index : []).filter(isTable)
        .flatMap((index) => typeof index.url === "string" ? [index.url] : []),
    ];
  });
  const known = new Set(
    [inputs.indexUrl ?? PYPI, ...inputs.extraIndexUrls, ...configured].map(comparableUrl),
  );
  const locked = (Array.isArray(inputs.lock.package) ? inputs.lock.package : []).filter(isTable)
    .flatMap((item) => {
      const registry = tableAt(item, "source").registry;
      return typeof registry === "string" && /^[a-z+]+:\/\//i.test(registry) ? [registry] : [];
    });
  return locked.every((url) => known.has(comparableUrl(url))) ? "--locked" : "--frozen";
}

// uv compares index URLs without credentials; a trailing slash is no difference.
function comparableUrl(url: string): string {
  return url.replace(/^([a-z+]+:\/\/)[^/@]*@/i, "$1").replace(/\/+$/, "");
}
