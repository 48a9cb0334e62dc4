/**
 * Finding "the spec line": the innermost stack frame outside imgtool's own modules and,
 * where possible, outside plugin modules. Layers remember it, so that messages can point at
 * the user's call and relative paths resolve against the folder of the file that made it.
 *
 * @module
 */

import { dirname, fromFileUrl, toFileUrl } from "./path.ts";

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

// imgtool's own code: frames in these are never "the user's line". From the sources, that
// is src/, plugins/ and mod.ts; in the bundle (scripts/bundle.ts), the bundle's own folder,
// where this module's chunk sits beside all the others.
const HERE = new URL("./", import.meta.url).href;
const ROOT = new URL("../", import.meta.url).href;
const CORE_PREFIXES = [HERE, `${ROOT}src/`, `${ROOT}plugins/`, `${ROOT}mod.ts`];
// Modules that define plugins: their frames are skipped when a caller beyond them exists,
// so that a plugin's own factory functions do not count as the spec line.
const pluginModules = new Set<string>();

/** Remember a module that defines plugins. */
export function registerPluginModule(url: string): void {
  pluginModules.add(url);
}

/** What V8 tells of a stack frame (the structured form of `Error.stack`). */
interface StackFrame {
  getFileName(): string | null | undefined;
  getLineNumber(): number | null;
}

type ErrorHooks = ErrorConstructor & {
  prepareStackTrace?: (error: Error, frames: StackFrame[]) => unknown;
  captureStackTrace(target: object, below?: (...args: never[]) => unknown): void;
};

/**
 * The frames above `below` (at most `limit`), as V8 gives them: cheaper than the text of
 * `new Error().stack`, which maps every frame through the source map.
 */
function framesAbove(below: (...args: never[]) => unknown, limit = 10): StackFrame[] {
  const hooks = Error as ErrorHooks;
  const previous = { prepare: hooks.prepareStackTrace, limit: Error.stackTraceLimit };
  hooks.prepareStackTrace = (_error, frames) => frames;
  Error.stackTraceLimit = limit;
  try {
    const holder: { stack?: unknown } = {};
    hooks.captureStackTrace(holder, below);
    return Array.isArray(holder.stack) ? holder.stack : [];
  } finally {
    hooks.prepareStackTrace = previous.prepare;
    Error.stackTraceLimit = previous.limit;
  }
}

/**
 * The module URL of the code that called `callee`. One frame is all it needs, and capturing
 * one costs a tenth of capturing ten: every plugin definition asks this once.
 */
export function callerModule(callee: (...args: never[]) => unknown): string | undefined {
  const [frame] = framesAbove(callee, 1);
  return frame && frameUrl(frame);
}

/** A frame's module URL: Deno names local modules by path, others by URL. */
function frameUrl(frame: StackFrame): string | undefined {
  const name = frame.getFileName();
  if (!name) return undefined;
  return name.startsWith("/") ? toFileUrl(name).href : name;
}

/** The innermost frame of the user's code, preferring frames outside plugin modules. */
export function callerOutside(): CallSite | undefined {
  let fallback: StackFrame | undefined;
  let fallbackUrl = "";
  for (const frame of framesAbove(callerOutside)) {
    const url = frameUrl(frame);
    if (!url || url.startsWith("ext:") || url.startsWith("node:")) continue;
    if (CORE_PREFIXES.some((prefix) => url.startsWith(prefix))) continue;
    if (!pluginModules.has(url)) return site(url, frame);
    if (!fallback) [fallback, fallbackUrl] = [frame, url];
  }
  return fallback && site(fallbackUrl, fallback);
}

function site(url: string, frame: StackFrame): CallSite {
  const file = url.startsWith("file:") ? fromFileUrl(url) : undefined;
  return {
    url,
    file,
    line: frame.getLineNumber() ?? undefined,
    dir: file ? dirname(file) : undefined,
  };
}
