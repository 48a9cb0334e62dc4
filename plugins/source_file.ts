/**
 * `withSourceFile`: copy one file into the image. Without a destination it lands in the
 * working directory under its own name; a relative destination is relative to the working
 * directory; a destination ending in `/` is a folder to put it in.
 *
 * @module
 */

import { copy, definePlugin, type Diagnostic, isSafePath, paths } from "../mod.ts";

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
  validate(options, context) {
    const problems: Diagnostic[] = [];
    const path = context.resolve(options.src);
    if (!context.isFile(path)) {
      problems.push({
        message: context.isDirectory(path)
          ? `${path} is a folder, not a file`
          : `file not found: ${path}`,
        hint: context.isDirectory(path)
          ? "use withSourceFolder for folders"
          : "check the path; relative paths are relative to the spec file's folder",
        file: path,
      });
    }
    for (const part of [basename(path), options.dst ?? "."]) {
      if (!isSafePath(part)) {
        problems.push({
          message: `${
            JSON.stringify(part)
          } has $, \\ or a control character, which a Dockerfile cannot copy safely`,
          hint: "rename the file or pick another destination",
        });
      }
    }
    return problems;
  },
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
