/**
 * A uv script's own settings (`[tool.uv]` in its PEP 723 header), as `uv run` would honour
 * them, turned into installer options: `exclude-newer`, `no-build`, `no-binary`, the index
 * settings (`index-url`, `extra-index-url`, `index`, `find-links`), `prerelease`,
 * `resolution`. `required-version` is checked against the configured uv image elsewhere.
 * Any other setting, or one the installer cannot honour, is a problem that names it.
 *
 * @module
 */

import {
  controlCharacterProblem,
  type Diagnostic,
  type Installer,
  shellQuote,
} from "../../contract.ts";
import { isTable, type TomlTable } from "./toml_file.ts";

/** The installer options a script's settings ask for. */
export interface ScriptSettings {
  /** More installer arguments, as quoted shell words. */
  readonly args: readonly string[];
  /** The script's index URL, if it names one. */
  readonly indexUrl?: string;
  /** The script's extra index URLs. */
  readonly extraIndexUrls: readonly string[];
  /** Whether the script allows pre-releases (`prerelease = "allow"`). */
  readonly pre: boolean;
  /** Settings that cannot be honoured, each named. */
  readonly problems: readonly Diagnostic[];
}

/** The settings imgtool honours, for messages. */
export const HONOURED_SETTINGS: readonly string[] = [
  "exclude-newer",
  "no-build",
  "no-binary",
  "index-url",
  "extra-index-url",
  "index",
  "find-links",
  "prerelease",
  "resolution",
  "required-version",
];

/**
 * The installer options for a script's `[tool.uv]` table (`settings`) read from `script`,
 * for `installer`.
 *
 * @example
 * ```ts
 * import { scriptSettings } from "./uv_script_settings.ts";
 * const settings = scriptSettings({ "exclude-newer": "2025-01-01T00:00:00Z", "no-build": true }, "uv", "job.py");
 * console.log(settings.args); // [ "--exclude-newer", "2025-01-01T00:00:00Z", "--no-build" ]
 * ```
 */
export function scriptSettings(
  settings: TomlTable,
  installer: Installer,
  script: string,
): ScriptSettings {
  const args: string[] = [];
  const extraIndexUrls: string[] = [];
  const problems: Diagnostic[] = [];
  let indexUrl: string | undefined;
  let pre = false;
  const where = (key: string) => `[tool.uv] ${key} in the script header of ${script}`;
  const problem = (key: string, message: string, hint: string) =>
    problems.push({ message: `${where(key)} ${message}`, hint, file: script });
  const viaUv = (key: string) =>
    problem(key, "needs the uv installer; pip has no such option", 'set [python] installer = "uv"');
  const text = (key: string, value: unknown): string | undefined => {
    const string = value instanceof Date ? value.toISOString() : value;
    if (typeof string !== "string") {
      problem(key, "must be a string", "fix the header");
      return undefined;
    }
    const unsafe = controlCharacterProblem(string, where(key));
    if (unsafe) {
      problems.push({ ...unsafe, file: script });
      return undefined;
    }
    return string;
  };
  const texts = (key: string, value: unknown): string[] =>
    Array.isArray(value)
      ? value.flatMap((item) => text(key, item) ?? [])
      : (problem(key, "must be a list of strings", "fix the header"), []);
  const flag = (key: string, value: unknown): boolean => {
    if (typeof value !== "boolean") problem(key, "must be true or false", "fix the header");
    return value === true;
  };

  for (const [key, value] of Object.entries(settings)) {
    switch (key) {
      case "exclude-newer": {
        const cutoff = text(key, value);
        if (cutoff === undefined) break;
        if (installer === "uv") args.push("--exclude-newer", shellQuote(cutoff));
        else viaUv(key);
        break;
      }
      case "no-build":
        if (flag(key, value)) {
          args.push(...(installer === "uv" ? ["--no-build"] : ["--only-binary", ":all:"]));
        }
        break;
      case "no-binary":
        if (flag(key, value)) args.push("--no-binary", ":all:");
        break;
      case "index-url":
        indexUrl = text(key, value) ?? indexUrl;
        break;
      case "extra-index-url":
        extraIndexUrls.push(...texts(key, value));
        break;
      case "index":
        for (const index of Array.isArray(value) ? value : [value]) {
          if (!isTable(index) || typeof index.url !== "string") {
            problem(key, "entries must be tables with a url", "fix the header");
            continue;
          }
          if (index.explicit === true) {
            problem(
              key,
              `names the explicit index ${
                JSON.stringify(index.url)
              }, which only [tool.uv.sources] can use`,
              "imgtool does not apply [tool.uv.sources] of scripts: make the index not explicit, " +
                "or name the packages with `name @ URL`",
            );
            continue;
          }
          const url = text(key, index.url);
          if (url === undefined) continue;
          // uv prefers [[tool.uv.index]] entries over the default index, in order, as it
          // prefers --extra-index-url over --index-url.
          if (index.default === true && indexUrl === undefined) indexUrl = url;
          else extraIndexUrls.push(url);
        }
        break;
      case "find-links":
        for (const link of texts(key, value)) {
          if (/^https?:\/\//i.test(link)) args.push("--find-links", shellQuote(link));
          else {
            problem(
              key,
              `names the local path ${JSON.stringify(link)}`,
              "serve the files over http(s), or install them with withSourceFolder and withCommands",
            );
          }
        }
        break;
      case "prerelease": {
        const mode = text(key, value);
        if (mode === undefined) break;
        if (mode === "allow") pre = true;
        else if (installer === "uv") args.push(`--prerelease=${shellQuote(mode)}`);
        else if (mode !== "if-necessary-or-explicit") viaUv(key);
        break;
      }
      case "resolution": {
        const mode = text(key, value);
        if (mode === undefined) break;
        if (installer === "uv") args.push("--resolution", shellQuote(mode));
        else if (mode !== "highest") viaUv(key);
        break;
      }
      case "required-version":
        break; // checked against the configured uv image
      default:
        problem(
          key,
          "is not supported by imgtool",
          `remove it; imgtool honours ${HONOURED_SETTINGS.join(", ")}`,
        );
    }
  }
  return {
    args,
    ...(indexUrl !== undefined ? { indexUrl } : {}),
    extraIndexUrls,
    pre,
    problems,
  };
}
