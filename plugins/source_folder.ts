/**
 * `withSourceFolder`: copy a folder into the image, minus what the image's `.dockerignore`
 * excludes. Without a destination, the folder lands in the working directory under its own
 * name; with a destination, the folder lands as that destination (as the seed does); with
 * `copyContentsOnly` and no destination, its contents land directly in the working
 * directory.
 *
 * Folders with any name (`data[v2]`, `a b`, `ünï`) are copied exactly: Docker reads a `COPY`
 * source as a pattern, so the build context holds the folder under a neutral name and the
 * Dockerfile copies its contents, which Docker copies recursively without reading any name
 * inside as a pattern. Without a destination, the folder keeps its own name inside that
 * neutral one, so the Dockerfile never spells it.
 *
 * @module
 */

import { copy, definePlugin, paths } from "../contract.ts";
import { sourceProblems } from "./shared/source.ts";

const { basename } = paths;

/** The layer's options. */
export interface Options {
  /** The folder, relative to the spec's folder. */
  readonly src: string;
  /** Where it goes in the image; relative to the working directory when relative. */
  readonly dst?: string;
  /** Copy the folder's contents into `dst` instead of the folder itself. */
  readonly copyContentsOnly: boolean;
}

/** The options when none are given. */
export const defaults = { src: ".", copyContentsOnly: false } satisfies Options;

/**
 * Where the folder's contents go in the image, as a folder path ending in `/`.
 *
 * @example
 * ```ts
 * import { destination } from "./source_folder.ts";
 * const options = { src: "./data[v2]", copyContentsOnly: false };
 * console.log(destination(options, "data[v2]")); // ./data[v2]/
 * console.log(destination({ ...options, dst: "/opt/data" }, "data[v2]")); // /opt/data/
 * ```
 */
export function destination(options: Options, name: string): string {
  const folder = options.dst ?? (options.copyContentsOnly ? "." : `./${name}`);
  return folder.endsWith("/") ? folder : `${folder}/`;
}

/** The source folder plugin. */
export const sourceFolder = definePlugin<Options>({
  name: "source_folder",
  version: 1,
  validate: (options, context) => sourceProblems(options.src, options.dst, "folder", context),
  identify: (options, context) => ({
    tree: context.tree(options.src),
    name: basename(context.resolve(options.src)),
    dst: options.dst ?? null,
    copyContentsOnly: options.copyContentsOnly,
  }),
  render(options, context) {
    const source = context.resolve(options.src);
    const name = basename(source);
    // Neutral: a COPY source is a pattern, and only the top-level path is one.
    const staging = `${context.contextDir}/tree`;
    const ownName = options.dst === undefined && !options.copyContentsOnly;
    // Without a destination, `staging` holds the folder itself: copied into `./`, it lands
    // at destination(options, name) without its name in the Dockerfile.
    const into = ownName ? "./" : destination(options, name);
    return {
      instructions: [copy([`${staging}/`], into, { chown: context.state.user })],
      context: [{ kind: "tree", source, target: ownName ? `${staging}/${name}` : staging }],
    };
  },
  append(options, context) {
    const source = context.resolve(options.src);
    return { files: [{ kind: "tree", source, target: destination(options, basename(source)) }] };
  },
}, { module: import.meta.url });

export default sourceFolder;
