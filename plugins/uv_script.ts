/**
 * `Image.fromUvScript`: install what a uv script's PEP 723 header declares. The header
 * (`# /// script` ... `# ///`) is TOML; `dependencies` are installed like pip packages,
 * and local `file://` dependencies are mounted into the step and installed from there.
 * `requires-python` picks the image's Python version (see `Image.fromUvScript`).
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
} from "../mod.ts";
import {
  indexProblems,
  type IndexSettings,
  installerIdentity,
  pipInstall,
  requirementProblems,
} from "./shared/python.ts";

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
  return { requiresPython, dependencies };
}

const KNOWN_MINORS = [8, 9, 10, 11, 12, 13, 14];

/**
 * The lowest Python 3 version (3.8 to 3.14) that a `requires-python` specifier allows, or
 * `undefined` if none does.
 *
 * @example
 * ```ts
 * import { pythonVersionFor } from "./uv_script.ts";
 * console.log(pythonVersionFor(">=3.11,<3.13")); // [ 3, 11 ]
 * ```
 */
export function pythonVersionFor(specifier: string): PythonVersion | undefined {
  const clauses = specifier.split(",").map((clause) => clause.trim()).filter(Boolean);
  const allows = (minor: number) =>
    clauses.every((clause) => {
      const match = /^(>=|<=|==|!=|~=|>|<)\s*(\d+)(?:\.(\d+|\*))?((?:\.[\d*]+)*)$/.exec(clause);
      if (!match) return true; // not a version comparison: leave it to the installer
      const [, op, majorText, raw, rest] = match;
      const major = Number(majorText);
      if (major !== 3) {
        // Every 3.x compares alike with another major version.
        if (op === "!=") return true;
        if (op === "==") return false;
        return op.startsWith(">") || op === "~=" ? 3 > major : 3 < major;
      }
      const wanted = raw === undefined || raw === "*" ? undefined : Number(raw);
      if (wanted === undefined) return op !== "!=" && op !== "<";
      // A patch part (3.11.2): some 3.11 releases are above it, and some below.
      const patch = /^\.\d+/.test(rest);
      switch (op) {
        case ">=":
          return minor >= wanted;
        case "~=":
          // ~=3.11 is >=3.11,==3.*; ~=3.11.2 is >=3.11.2,==3.11.*
          return patch ? minor === wanted : minor >= wanted;
        case ">":
          return minor > wanted || (minor === wanted && patch);
        case "<=":
          return minor <= wanted;
        case "<":
          return minor < wanted || (minor === wanted && patch && !/^(?:\.0)+$/.test(rest));
        case "==":
          return minor === wanted;
        case "!=":
          return !(minor === wanted && !patch);
      }
      return true;
    });
  const minor = KNOWN_MINORS.find(allows);
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

/** Where local dependencies are mounted in the install step. */
export const LOCAL_DIR = "/tmp/imgtool-local";

/** The uv script plugin. */
export const uvScript = definePlugin<Options>({
  name: "uv_script",
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
    for (const dependency of parsed.dependencies) {
      const local = localPath(dependency);
      if (local !== undefined && !context.isDirectory(local) && !context.isFile(local)) {
        problems.push({ message: `local dependency not found: ${local}`, file: local });
      }
    }
    if (parsed.requiresPython && !pythonVersionFor(parsed.requiresPython)) {
      problems.push({
        message: `no Python 3.8-3.14 satisfies requires-python ${
          JSON.stringify(parsed.requiresPython)
        }`,
      });
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
      ...installerIdentity(context),
    };
  },
  render(options, context) {
    const parsed = header(options, context) ?? { dependencies: [] };
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
    const step = pipInstall(context, args, options);
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
