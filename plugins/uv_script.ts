/**
 * `Image.fromUvScript`: install what a uv script's PEP 723 header declares. The header
 * (`# /// script` ... `# ///`) is TOML; `dependencies` are installed like pip packages,
 * and local `file://` dependencies (which must lie inside the project) are mounted into the
 * step and installed from there. The header's `[tool.uv]` settings are honoured as `uv run`
 * would (`exclude-newer`, `no-build`, index settings, ...), or named as unsupported.
 * `requires-python` must allow the image's Python version (see `Image.fromUvScript`).
 *
 * @module
 */

import { parse as parseToml } from "smol-toml";
import {
  controlCharacterProblem,
  definePlugin,
  type Diagnostic,
  type IdentifyContext,
  paths,
  type PythonVersion,
  run,
  shellQuote,
  shellQuoteExpanding,
} from "../contract.ts";
import { pythonAllows } from "./shared/pep440.ts";
import {
  environmentIdentity,
  indexProblems,
  type IndexSettings,
  installerIdentity,
  pipInstall,
  requirementProblems,
} from "./shared/python.ts";
import { isTable, type TomlTable } from "./shared/toml_file.ts";
import { requiresPythonProblem, uvVersionProblem } from "./shared/uv.ts";
import { scriptSettings } from "./shared/uv_script_settings.ts";

const { basename, fromFileUrl } = paths;

/** The layer's options. */
export interface Options extends IndexSettings {
  /** The script, relative to the spec's folder. */
  readonly script: string;
}

/** What a script header declares. */
export interface ScriptHeader {
  /** The `requires-python` specifier, if any. */
  readonly requiresPython?: string;
  /** The dependencies, in pip's syntax. */
  readonly dependencies: readonly string[];
  /** The script's own uv settings (`[tool.uv]`), if any. */
  readonly uv?: TomlTable;
}

const BLOCK = /^# \/\/\/ script\s*$([\s\S]*?)^# \/\/\/\s*$/m;

/**
 * Parse a script's PEP 723 header. Throws an `Error` saying what is wrong when there is no
 * header or its TOML is invalid.
 *
 * @example
 * ```ts
 * import { parseScriptHeader } from "./uv_script.ts";
 * const header = parseScriptHeader('# /// script\n# requires-python = ">=3.12"\n# dependencies = ["httpx"]\n# ///\n');
 * console.log(header.dependencies); // [ "httpx" ]
 * ```
 */
export function parseScriptHeader(text: string): ScriptHeader {
  const match = BLOCK.exec(text);
  if (!match) throw new Error("no `# /// script` header block");
  const toml = match[1].split(/\r?\n/).filter((line) => line !== "")
    .map((line) => {
      if (line === "#") return "";
      if (!line.startsWith("# ")) {
        throw new Error(`header line ${JSON.stringify(line)} does not start with "# "`);
      }
      return line.slice(2);
    }).join("\n");
  let table: Record<string, unknown>;
  try {
    table = parseToml(toml) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`the header is not valid TOML: ${(error as Error).message}`);
  }
  const { dependencies = [], "requires-python": requiresPython } = table;
  if (!Array.isArray(dependencies) || !dependencies.every((d) => typeof d === "string")) {
    throw new Error("`dependencies` must be a list of strings");
  }
  if (requiresPython !== undefined && typeof requiresPython !== "string") {
    throw new Error("`requires-python` must be a string");
  }
  const tool = table.tool;
  const uv = isTable(tool) ? tool.uv : undefined;
  if ((tool !== undefined && !isTable(tool)) || (uv !== undefined && !isTable(uv))) {
    throw new Error("`tool.uv` must be a table");
  }
  return { requiresPython, dependencies, ...(uv ? { uv } : {}) };
}

const KNOWN_MINORS = [8, 9, 10, 11, 12, 13, 14];

/**
 * The Python 3 version (3.8 to 3.14) to run a script with: `preferred` (the configured
 * version) when the `requires-python` specifier allows it, else the lowest it allows, else
 * `undefined`.
 *
 * @example
 * ```ts
 * import { pythonVersionFor } from "./uv_script.ts";
 * console.log(pythonVersionFor(">=3.11,<3.13"), pythonVersionFor(">=3.11", [3, 12])); // [ 3, 11 ] [ 3, 12 ]
 * ```
 */
export function pythonVersionFor(
  specifier: string,
  preferred?: PythonVersion,
): PythonVersion | undefined {
  if (preferred && pythonAllows(specifier, preferred)) return preferred;
  const minor = KNOWN_MINORS.find((candidate) => pythonAllows(specifier, [3, candidate]));
  return minor === undefined ? undefined : [3, minor];
}

/** A local (`file://`) dependency and the folder it points at. */
function localPath(dependency: string): string | undefined {
  const url = /(?:^|@\s*)(file:\/\/\S+)/.exec(dependency)?.[1];
  if (!url) return undefined;
  try {
    return fromFileUrl(url);
  } catch {
    return undefined;
  }
}

function header(options: Options, context: IdentifyContext): ScriptHeader | undefined {
  const text = context.readText(options.script);
  if (text === undefined) return undefined;
  try {
    return parseScriptHeader(text);
  } catch {
    return undefined;
  }
}

/**
 * The index options of the install step: the spec's, then the script's own settings, as
 * uv puts its command line before its settings (the spec's index URL wins; extra index URLs
 * of both count, the spec's first).
 */
function installOptions(
  options: Options,
  parsed: ScriptHeader,
  context: IdentifyContext,
): IndexSettings {
  const settings = scriptSettings(
    parsed.uv ?? {},
    context.config.installer,
    context.resolve(options.script),
  );
  const extraArgs = [...settings.args, ...(options.extraArgs ? [options.extraArgs] : [])];
  return {
    ...options,
    indexUrl: options.indexUrl ?? settings.indexUrl,
    extraIndexUrls: [...options.extraIndexUrls, ...settings.extraIndexUrls],
    pre: options.pre || settings.pre,
    extraArgs: extraArgs.length > 0 ? extraArgs.join(" ") : undefined,
  };
}

/** What the script's own settings change in the install step. */
function settingsIdentity(options: Options, uv: TomlTable, context: IdentifyContext) {
  const { args, indexUrl, extraIndexUrls, pre } = scriptSettings(
    uv,
    context.config.installer,
    context.resolve(options.script),
  );
  return { args, indexUrl: indexUrl ?? null, extraIndexUrls, pre };
}

/** Where local dependencies are mounted in the install step. */
export const LOCAL_DIR = "/tmp/imgtool-local";

/** The uv script plugin. */
export const uvScript = definePlugin<Options>({
  name: "uv_script",
  version: 1,
  needsRoot: true,
  validate(options, context) {
    const path = context.resolve(options.script);
    const text = context.readText(path);
    if (text === undefined) {
      return [{
        message: `script not found: ${path}`,
        hint: "check the path; relative paths are relative to the spec file's folder",
        file: path,
      }];
    }
    let parsed: ScriptHeader;
    try {
      parsed = parseScriptHeader(text);
    } catch (error) {
      return [{
        message: `${path}: ${(error as Error).message}`,
        hint: "start the script with a PEP 723 block: # /// script, # dependencies = [...], # ///",
        file: path,
      }];
    }
    const problems: Diagnostic[] = [...indexProblems(options)];
    parsed.dependencies.forEach((dependency, index) => {
      const problem = controlCharacterProblem(
        dependency,
        `dependency ${index + 1} in the script header of ${path}`,
      );
      if (problem) problems.push({ ...problem, file: path });
    });
    const remote = parsed.dependencies.filter((dependency) => localPath(dependency) === undefined);
    if (remote.length > 0) problems.push(...requirementProblems(remote));
    parsed.dependencies.forEach((dependency, index) => {
      const local = localPath(dependency);
      if (local === undefined) return;
      if (!context.isDirectory(local) && !context.isFile(local)) {
        problems.push({ message: `local dependency not found: ${local}`, file: local });
        return;
      }
      // A header written by someone else must not pull files from outside the project.
      const outside = context.outsideProject(
        local,
        `${path} (its script header, dependency ${index + 1})`,
      );
      if (outside) problems.push(outside);
    });
    if (parsed.requiresPython && !pythonVersionFor(parsed.requiresPython)) {
      problems.push({
        message: `no Python 3.8-3.14 satisfies requires-python ${
          JSON.stringify(parsed.requiresPython)
        }`,
      });
    } else if (parsed.requiresPython && context.state.python) {
      const problem = requiresPythonProblem(
        path,
        parsed.requiresPython,
        context.state.python.version,
      );
      if (problem) problems.push(problem);
    }
    const settings = scriptSettings(parsed.uv ?? {}, context.config.installer, path);
    problems.push(...settings.problems);
    problems.push(
      ...indexProblems({
        indexUrl: settings.indexUrl,
        extraIndexUrls: settings.extraIndexUrls,
        pre: false,
        secretMounts: [],
      }).map((problem) => ({ ...problem, file: path })),
    );
    const required = parsed.uv?.["required-version"];
    if (typeof required === "string" && context.config.installer === "uv") {
      const problem = uvVersionProblem(
        { file: path, specifier: required },
        context.config.images.uv,
      );
      if (problem) problems.push(problem);
    }
    return problems;
  },
  secrets: (options) => options.secretMounts,
  identify(options, context) {
    const parsed = header(options, context);
    return {
      ...options,
      script: basename(context.resolve(options.script)),
      requiresPython: parsed?.requiresPython ?? null,
      dependencies: (parsed?.dependencies ?? []).map((dependency) => {
        const local = localPath(dependency);
        if (local === undefined) return dependency;
        return context.isFile(local) ? context.file(local) : context.tree(local);
      }),
      // Only scripts with settings of their own have them in the identity.
      ...(parsed?.uv ? { settings: settingsIdentity(options, parsed.uv, context) } : {}),
      ...installerIdentity(context),
      ...environmentIdentity(context),
    };
  },
  render(options, context) {
    const parsed: ScriptHeader = header(options, context) ?? { dependencies: [] };
    const ids = options.secretMounts.filter((secret) => secret.asEnvVar).map((secret) =>
      secret.variable
    );
    const entries: { source: string; target: string; mountPath: string; file: boolean }[] = [];
    const args = parsed.dependencies.map((dependency, index) => {
      const local = localPath(dependency);
      if (local === undefined) return shellQuoteExpanding(dependency, ids);
      const name = `${index}/${basename(local)}`;
      const file = context.isFile(local);
      entries.push({
        source: local,
        target: `${context.contextDir}/${name}`,
        mountPath: `${LOCAL_DIR}/${name}`,
        file,
      });
      return shellQuote(`${LOCAL_DIR}/${name}`);
    });
    if (args.length === 0) return { instructions: ["# (the script declares no dependencies)"] };
    const step = pipInstall(context, args, installOptions(options, parsed, context));
    return {
      instructions: [
        run(step.command, {
          mounts: [
            ...entries.map((entry) => ({
              type: "bind" as const,
              source: entry.target,
              target: entry.mountPath,
              readwrite: true,
            })),
            ...step.mounts,
          ],
          secrets: options.secretMounts,
          env: step.env,
        }),
      ],
      context: entries.map((entry) => ({
        kind: entry.file ? "file" as const : "tree" as const,
        source: entry.source,
        target: entry.target,
      })),
    };
  },
}, { module: import.meta.url });

export default uvScript;
