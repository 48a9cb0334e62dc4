/**
 * Stage "load": import a spec and collect the images it exports, the default export first,
 * then named exports in source order. A default (or named) export may also be an array of
 * images. The spec is imported by an absolute `file:` URL built from the working directory,
 * which is what a compiled binary can load. Every way a spec can fail to load (unreadable,
 * a missing import, a throw, a default export that is not an image) is a {@link SpecError}
 * that says what, where and how to fix it.
 *
 * @module
 */

import { dirname, fromFileUrl, resolve, toFileUrl } from "./path.ts";
import { SpecError, systemError } from "./errors.ts";
import { FileReadError, isDirectory, readWholeText, readWholeTextSync } from "./fs.ts";
import { type Image, Image as ImageClass, isImage } from "./image.ts";

/** An image a spec exports, with its export name. */
export interface ExportedImage {
  /** `default`, a named export, or `name[i]` for an array element. */
  readonly exportName: string;
  /** The export the image came from (without an index). */
  readonly exportKey: string;
  /** The image. */
  readonly image: Image;
}

/** A loaded spec. */
export interface LoadedSpec {
  /** The spec file's absolute path. */
  readonly file: string;
  /** Its images, in order. */
  readonly images: readonly ExportedImage[];
}

/**
 * Import the spec at `path` (relative to the working directory) and collect its images.
 * Throws a {@link SpecError} when it cannot be loaded or exports no image.
 */
export async function loadSpec(path: string): Promise<LoadedSpec> {
  const file = resolve(Deno.cwd(), path);
  // Read asynchronously: what loads the spec is synchronous work, and these turns of the
  // event loop let network work started before it move on (a build's early HEAD).
  let source: string;
  let module: Record<string, unknown>;
  try {
    source = await readWholeText(file, { what: "spec file" });
  } catch (error) {
    throw specReadError(file, error);
  }
  checkImports(file, source);
  try {
    module = await import(toFileUrl(file).href);
  } catch (error) {
    throw loadFailure(file, error);
  }
  const images = collect(file, module, exportOrder(source));
  if (images.length === 0) {
    const names = Object.keys(module);
    throw new SpecError(`${file} exports no Image`, {
      hint: names.length > 0
        ? `its exports (${
          names.join(", ")
        }) are not images; export an Image, e.g. export default Image.fromDebianBase()`
        : 'export an image, e.g. export default Image.fromDebianBase().withPipPackages("numpy")',
    });
  }
  return { file, images };
}

/**
 * Pick images by export name (`default` for the default export). Throws a
 * {@link SpecError} naming the exports when a name matches none.
 */
export function selectImages(spec: LoadedSpec, names: readonly string[]): ExportedImage[] {
  if (names.length === 0) return [...spec.images];
  const picked = spec.images.filter((image) =>
    names.includes(image.exportName) || names.includes(image.exportKey)
  );
  const unknown = names.filter((name) =>
    !spec.images.some((image) => image.exportName === name || image.exportKey === name)
  );
  if (unknown.length > 0) {
    throw new SpecError(
      `${spec.file} has no image export ${unknown.map((n) => JSON.stringify(n)).join(", ")}`,
      {
        hint: `its images: ${[...new Set(spec.images.map((image) => image.exportKey))].join(", ")}`,
      },
    );
  }
  return picked;
}

function collect(
  file: string,
  module: Record<string, unknown>,
  order: readonly string[],
): ExportedImage[] {
  const rank = (key: string) => {
    if (key === "default") return -1;
    const at = order.indexOf(key);
    return at === -1 ? order.length : at;
  };
  const keys = Object.keys(module).sort((a, b) =>
    rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0)
  );
  const images: ExportedImage[] = [];
  for (const key of keys) {
    const value = module[key];
    if (isImage(value)) {
      images.push({ exportName: key, exportKey: key, image: value });
    } else if (Array.isArray(value)) {
      // A named array of other things is the spec's own data (a list of packages); an array
      // that holds images, or the default export, holds nothing else.
      const stray = value.findIndex((item) => !isImage(item));
      if (stray !== -1 && (key === "default" || value.some(isImage))) {
        throw new SpecError(
          `${file}: element [${stray}] of the ${exportLabel(key)} is ${
            describeValue(value[stray])
          }, not an Image`,
          {
            hint: `an exported array holds only Images: remove that element, or export it ${
              key === "default" ? "by a name of its own" : "apart"
            }`,
          },
        );
      }
      if (stray !== -1) continue;
      value.forEach((image, index) =>
        images.push({ exportName: `${key}[${index}]`, exportKey: key, image: image as Image })
      );
    } else if (key === "default") {
      throw new SpecError(
        `${file}: the default export is ${describeValue(value)}, not an Image`,
        {
          hint: typeof value === "function"
            ? "export the Image the function makes: call it (export default Image.fromDebianBase())"
            : value instanceof Promise
            ? "await it: export default await makeImage()"
            : "export default an Image or an array of Images; export other values by name",
        },
      );
    }
  }
  return images;
}

function exportLabel(key: string): string {
  return key === "default" ? "default export" : `export ${key}`;
}

/** A value as a user would recognise it in a message: `a number (42)`, `a function (f)`. */
function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (typeof value === "function") {
    return `a function${value.name ? ` (${value.name})` : ""}`;
  }
  if (typeof value === "string") {
    const shown = value.length > 40 ? `${value.slice(0, 40)}...` : value;
    return `a string (${JSON.stringify(shown)})`;
  }
  if (typeof value !== "object") return `a ${typeof value} (${String(value)})`;
  if (Array.isArray(value)) return "an array";
  if (value instanceof Promise) return "a Promise";
  const name = Object.getPrototypeOf(value)?.constructor?.name;
  return name && name !== "Object" ? `a ${name}` : "an object";
}

/** Named exports in the order the source declares them (module namespaces sort by name). */
export function exportOrder(source: string): string[] {
  const names: string[] = [];
  const declaration =
    /\bexport\s+(?:declare\s+)?(?:const|let|var|function\*?|async\s+function\*?|class)\s+([A-Za-z_$][\w$]*)/g;
  const list = /\bexport\s*\{([^}]*)\}/g;
  const found: { at: number; name: string }[] = [];
  for (const match of source.matchAll(declaration)) found.push({ at: match.index, name: match[1] });
  for (const match of source.matchAll(list)) {
    for (const part of match[1].split(",")) {
      const name = part.trim().split(/\s+as\s+/).pop()?.trim();
      if (name) found.push({ at: match.index, name });
    }
  }
  for (const { name } of found.sort((a, b) => a.at - b.at)) {
    if (!names.includes(name)) names.push(name);
  }
  return names;
}

/** Why the spec (or a module it imports) cannot be read, as a {@link SpecError}. */
function specReadError(file: string, error: unknown): unknown {
  if (!(error instanceof FileReadError)) return error;
  if (error.reason === "missing") {
    return new SpecError(`spec file not found: ${file}`, {
      hint:
        "give the path of a .ts file that exports images, e.g. imgtool build spec.ts (imgtool init writes one)",
    });
  }
  if (error.reason === "not-a-file" && isDirectory(file)) {
    return new SpecError(`${file} is not a file`, {
      hint: "give the path of the spec's .ts file, not of its folder",
    });
  }
  // Permission denied, a name too long, a file where a folder should be: say which.
  const said = error.reason === "unreadable"
    ? systemError(error.cause, { doing: "reading the spec" })
    : undefined;
  if (said) return new SpecError(said.message, { hint: said.hint, cause: error });
  return new SpecError(error.message, { hint: error.hint, cause: error });
}

const IMPORT =
  /(?:\bimport|\bexport)\s[^"'`;]*?\bfrom\s*["']([^"']+)["']|\bimport\s*\(?\s*["']([^"']+)["']/g;
const REMOTE = /^(?:https?|jsr|npm):/;

/**
 * Refuse remote imports (`https:`, `jsr:`, `npm:`) in the spec and the local files it
 * imports, before running anything: the imgtool binary can load only what is on disk, and
 * a spec should behave the same under `deno run` as in the binary. `node:` built-ins and
 * local files are fine. `entrySource` is the entry's text, when the caller has read it.
 */
export function checkImports(entry: string, entrySource?: string): void {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    let source: string;
    try {
      source = file === entry && entrySource !== undefined
        ? entrySource
        : readWholeTextSync(file, { what: "module" });
    } catch (error) {
      // The import itself reports a missing file, or a folder; a pipe, a device or a huge
      // file would hang it, or fill the memory.
      const reason = error instanceof FileReadError ? error.reason : "unreadable";
      if (reason === "missing" || reason === "unreadable" || isDirectory(file)) return;
      throw specReadError(file, error);
    }
    for (const match of source.matchAll(IMPORT)) {
      const specifier = match[1] ?? match[2];
      if (REMOTE.test(specifier)) {
        const line = source.slice(0, match.index).split("\n").length;
        throw new SpecError(`${file}:${line} imports ${specifier}, which imgtool cannot load`, {
          hint: 'a spec may import "imgtool", node: built-ins and local .ts files; remote ' +
            "(https:, jsr:, npm:) imports are not available to the imgtool binary: copy the code " +
            "into a local file and import that",
        });
      }
      if (specifier.startsWith(".") || specifier.startsWith("/")) {
        visit(resolve(dirname(file), specifier));
      }
    }
  };
  visit(entry);
}

function loadFailure(file: string, error: unknown): SpecError {
  // Deno's module errors say where in their text ("at file:///spec.ts:2:8") and add hints
  // for its own command line ("try running deno add"): keep the place, drop the rest.
  const text = stripAnsi(error instanceof Error ? error.message : String(error));
  let where: string | undefined;
  const kept: string[] = [];
  for (const line of text.split("\n")) {
    const at = /^\s*at (file:\/\/\S+?):(\d+):(\d+)\s*$/.exec(line);
    if (at) where ??= `${fromFileUrl(at[1])}:${at[2]}:${at[3]}`;
    else if (!/^\s*hint: /.test(line)) kept.push(line);
  }
  const message = kept.join("\n").replace(/file:\/\/\/[^\s"']+/g, (url) => fromFileUrl(url));
  where ??= error instanceof Error ? specFrame(error, file) : undefined;
  const missing = /^Module not found "(.+?)"\.?$/.exec(kept[0] ?? "");
  if (missing) {
    return new SpecError(
      `${file} failed to load: ${where ?? "it"} imports ${
        missing[1].startsWith("file:") ? fromFileUrl(missing[1]) : missing[1]
      }, which does not exist`,
      {
        hint: "fix the import's path: a relative import is relative to the file that has it",
        cause: error,
      },
    );
  }
  // "Import '/x/helper.ts' failed." then "0: Permission denied (os error 13)".
  const failed = /^Import '(.+)' failed\.\n\s*\d+: (.+ \(os error \d+\))$/m.exec(message);
  if (failed) {
    const said = systemError(new Error(`${failed[2]}: open '${failed[1]}'`));
    return new SpecError(
      `${file} failed to load: ${where ?? "it"} imports ${failed[1]}, which ${
        said ? said.message.replace(/^cannot open .*: /, "cannot be read: ") : "cannot be read"
      }`,
      { hint: said?.hint ?? "check that the user running imgtool can read it", cause: error },
    );
  }
  const unmapped = /^Import "(.+?)" not a dependency/.exec(kept[0] ?? "");
  if (unmapped) {
    return new SpecError(
      `${file} failed to load: ${where ?? "it"} imports "${unmapped[1]}", which is not a ` +
        "module imgtool knows",
      {
        hint: 'a spec may import "imgtool", node: built-ins and local files ("./helper.ts"); ' +
          "copy other code into a local file and import that",
        cause: error,
      },
    );
  }
  return new SpecError(
    `${file} failed to load: ${firstLine(message)}${where ? `\n  at ${where}` : ""}`,
    {
      hint: isParseError(error, message)
        ? "fix the syntax error in the spec"
        : misspeltMethodHint(message) ??
          "fix the error in the spec (it ran and threw while being imported)",
      cause: error,
    },
  );
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

function stripAnsi(text: string): string {
  return text.replace(ANSI, "");
}

/**
 * For "x.withDockerIgnore is not a function": the `Image` method meant, when one is near
 * (letter case aside, or one or two letters off).
 */
function misspeltMethodHint(message: string): string | undefined {
  const name = /\.(\w+) is not a function/.exec(message)?.[1];
  if (name === undefined) return undefined;
  const methods = [
    ...Object.getOwnPropertyNames(ImageClass.prototype),
    ...Object.getOwnPropertyNames(ImageClass),
  ].filter((method) => /^(with|from)[A-Z]/.test(method) || method === "clone");
  const near = methods
    .map((method) => ({ method, distance: editDistance(name.toLowerCase(), method.toLowerCase()) }))
    .filter(({ distance }) => distance <= 2)
    .sort((a, b) => a.distance - b.distance)[0];
  return near && `Image has no method ${name}: did you mean ${near.method}?`;
}

/** Levenshtein distance: the fewest insertions, deletions and substitutions. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j] + 1,
        current[j - 1] + 1,
        previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length];
}

// Deno reports a spec it cannot parse with a plain Error whose message says so.
function isParseError(error: unknown, message: string): boolean {
  return error instanceof SyntaxError ||
    /\b(?:Expected|Unexpected|Unterminated|parse error)\b/i.test(message);
}

function firstLine(text: string): string {
  const lines = text.split("\n").filter((line) => line.trim() !== "");
  return lines.slice(0, 3).join("\n  ");
}

function specFrame(error: Error, file: string): string | undefined {
  const url = toFileUrl(file).href;
  const line = (error.stack ?? "").split("\n").find((l) => l.includes(url));
  const match = line && /:(\d+):(\d+)\)?\s*$/.exec(line);
  return match ? `${file}:${match[1]}:${match[2]}` : undefined;
}
