/**
 * `withSourceFile`: copy one file into the image. Without a destination it lands in the
 * working directory under its own name; a relative destination is relative to the working
 * directory; a destination ending in `/` is a folder to put it in.
 *
 * Files with any name (`[id].txt`, `*.py`, `a b.txt`, `ünï.txt`) are copied exactly: Docker
 * reads a `COPY` source as a pattern, so the file is staged in a folder of its own in the
 * build context and the Dockerfile copies that folder's contents, which Docker never reads
 * as patterns. Only a file whose name is neither a pattern nor needs escaping is copied by
 * its own path when the destination has no trailing `/`, which keeps Docker's rule for that
 * case: the file goes into the destination when the image has a folder there.
 *
 * @module
 */

import { copy, definePlugin, isSafePath, paths } from "../contract.ts";
import { sourceProblems } from "./shared/source.ts";

const { basename, dirname } = paths;

/** The layer's options. */
export interface Options {
  /** The file, relative to the spec's folder. */
  readonly src: string;
  /** Where it goes in the image. */
  readonly dst?: string;
}

/**
 * Where a file goes: `into` a folder (ending in `/`), under `name`. `byPath` is set when the
 * Dockerfile copies the file by its own path to `dst` instead of copying its staging folder
 * (a plain name and a destination without a trailing `/`: Docker then puts the file into
 * `dst` when the image has a folder there, else at `dst`).
 */
export interface Placement {
  /** The folder the file lands in, ending in `/`. */
  readonly into: string;
  /** The file's name there. */
  readonly name: string;
  /** Copy the file by its path to this destination instead (Docker's own rule applies). */
  readonly byPath?: string;
}

// What Docker reads as a pattern in a COPY source (Go's filepath.Match syntax).
const PATTERN = /[*?[\]]/;

/**
 * Is the destination a folder to put the file in: it ends in `/`, or in a `.` or `..`
 * segment?
 *
 * @example
 * ```ts
 * import { isFolderDestination } from "./source_file.ts";
 * console.log(isFolderDestination("conf/"), isFolderDestination("."), isFolderDestination("a.py"));
 * // true true false
 * ```
 */
export function isFolderDestination(dst: string): boolean {
  return dst.endsWith("/") || /(^|\/)\.\.?$/.test(dst);
}

/**
 * Where the file called `name` lands for the destination `dst` (see {@link Placement}).
 *
 * @example
 * ```ts
 * import { placement } from "./source_file.ts";
 * console.log(placement("[id].txt", undefined)); // { into: "./", name: "[id].txt" }
 * console.log(placement("[id].txt", "/opt/app/id.txt")); // { into: "/opt/app/", name: "id.txt" }
 * console.log(placement("main.py", "/opt/app").byPath); // /opt/app
 * ```
 */
export function placement(name: string, dst: string | undefined): Placement {
  if (dst === undefined) return { into: "./", name };
  if (isFolderDestination(dst)) return { into: dst.endsWith("/") ? dst : `${dst}/`, name };
  const folder = dirname(dst);
  const into = folder.endsWith("/") ? folder : `${folder}/`;
  if (isSafePath(name) && !PATTERN.test(name)) return { into, name, byPath: dst };
  return { into, name: basename(dst) };
}

/** The source file plugin. */
export const sourceFile = definePlugin<Options>({
  name: "source_file",
  version: 1,
  validate: (options, context) => sourceProblems(options.src, options.dst, "file", context),
  identify: (options, context) => ({
    file: context.file(options.src),
    name: basename(context.resolve(options.src)),
    dst: options.dst ?? null,
  }),
  render(options, context) {
    const source = context.resolve(options.src);
    const place = placement(basename(source), options.dst);
    // A folder of its own: its contents are exactly this file, under the name it gets.
    const folder = `${context.contextDir}/file`;
    const target = `${folder}/${place.name}`;
    const chown = context.state.user;
    return {
      instructions: [
        place.byPath !== undefined
          ? copy([target], place.byPath, { chown })
          : copy([`${folder}/`], place.into, { chown }),
      ],
      context: [{ kind: "file", source, target }],
    };
  },
  // By path, Docker puts the file into a folder the image has at `dst`; appended, `dst` is
  // the file's path (docs/plugins.md says so).
  append(options, context) {
    const source = context.resolve(options.src);
    const place = placement(basename(source), options.dst);
    return {
      files: [{ kind: "file", source, target: place.byPath ?? `${place.into}${place.name}` }],
    };
  },
}, { module: import.meta.url });

export default sourceFile;
