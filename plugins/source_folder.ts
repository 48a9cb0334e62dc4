/**
 * `withSourceFolder`: copy a folder into the image, minus what the image's `.dockerignore`
 * excludes. Without a destination, the folder lands in the working directory under its own
 * name; with a destination, the folder lands as that destination (as the seed does); with
 * `copyContentsOnly` and no destination, its contents land directly in the working
 * directory.
 *
 * @module
 */

import { copy, definePlugin, paths } from "../mod.ts";
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

/** Where the folder's contents go in the image, as a folder path ending in `/`. */
export function destination(options: Options, name: string): string {
  const folder = options.dst ?? (options.copyContentsOnly ? "." : `./${name}`);
  return folder.endsWith("/") ? folder : `${folder}/`;
}

/** The source folder plugin. */
export const sourceFolder = definePlugin<Options>({
  name: "source_folder",
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
    const target = `${context.contextDir}/${name}`;
    return {
      instructions: [
        copy([`${target}/`], destination(options, name), { chown: context.state.user }),
      ],
      context: [{ kind: "tree", source, target }],
    };
  },
}, { module: import.meta.url });

export default sourceFolder;
