/**
 * `withSourceFile`: copy one file into the image. Without a destination it lands in the
 * working directory under its own name; a relative destination is relative to the working
 * directory; a destination ending in `/` is a folder to put it in.
 *
 * @module
 */

import { copy, definePlugin, paths } from "../mod.ts";
import { sourceProblems } from "./shared/source.ts";

const { basename } = paths;

/** The layer's options. */
export interface Options {
  /** The file, relative to the spec's folder. */
  readonly src: string;
  /** Where it goes in the image. */
  readonly dst?: string;
}

/** The source file plugin. */
export const sourceFile = definePlugin<Options>({
  name: "source_file",
  validate: (options, context) => sourceProblems(options.src, options.dst, "file", context),
  identify: (options, context) => ({
    file: context.file(options.src),
    name: basename(context.resolve(options.src)),
    dst: options.dst ?? null,
  }),
  render(options, context) {
    const name = basename(context.resolve(options.src));
    const target = `${context.contextDir}/${name}`;
    return {
      instructions: [copy([target], options.dst ?? `./${name}`, { chown: context.state.user })],
      context: [{ kind: "file", source: context.resolve(options.src), target }],
    };
  },
}, { module: import.meta.url });

export default sourceFile;
