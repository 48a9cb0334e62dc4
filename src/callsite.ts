/**
 * Finding "the spec line": the innermost stack frame outside imgtool's own modules and,
 * where possible, outside plugin modules. Layers remember it, so that messages can point at
 * the user's call and relative paths resolve against the folder of the file that made it.
 *
 * @module
 */

import { dirname, fromFileUrl } from "./path.ts";

/** A calling location. */
export interface CallSite {
  /** The module URL. */
  readonly url: string;
  /** The file path, for `file:` URLs. */
  readonly file?: string;
  /** The line. */
  readonly line?: number;
  /** The file's folder. */
  readonly dir?: string;
}

// imgtool's own source: frames in these are never "the user's line".
const ROOT = new URL("../", import.meta.url).href;
const CORE_PREFIXES = [`${ROOT}src/`, `${ROOT}plugins/`, `${ROOT}mod.ts`];
// Modules that define plugins: their frames are skipped when a caller beyond them exists,
// so that a plugin's own factory functions do not count as the spec line.
const pluginModules = new Set<string>();

/** Remember a module that defines plugins. */
export function registerPluginModule(url: string): void {
  pluginModules.add(url);
}

const FRAME = /((?:file|https?|data|blob):[^\s()]+?):(\d+):(\d+)\)?$/;

/** The innermost frame of the user's code, preferring frames outside plugin modules. */
export function callerOutside(): CallSite | undefined {
  let fallback: CallSite | undefined;
  for (const line of (new Error().stack ?? "").split("\n").slice(1)) {
    const match = FRAME.exec(line.trim());
    if (!match) continue;
    const [, url, lineNumber] = match;
    if (CORE_PREFIXES.some((prefix) => url.startsWith(prefix))) continue;
    const file = url.startsWith("file:") ? fromFileUrl(url) : undefined;
    const site = { url, file, line: Number(lineNumber), dir: file ? dirname(file) : undefined };
    if (!pluginModules.has(url)) return site;
    fallback ??= site;
  }
  return fallback;
}
