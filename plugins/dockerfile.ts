/**
 * `Image.fromDockerfile`: build your own Dockerfile, with its folder as the build context
 * and that folder's `.dockerignore` applied. The whole context counts in the identity, so
 * editing any file the Dockerfile may copy rebuilds the image. Layers may follow: they
 * continue the Dockerfile's last stage.
 *
 * @module
 */

import { definePlugin, type Diagnostic, paths } from "../mod.ts";
import { parseDockerignore } from "./dockerignore.ts";

const { basename, dirname, join } = paths;

/** The layer's options. */
export interface Options {
  /** The Dockerfile, relative to the spec's folder. */
  readonly file: string;
}

/** The Dockerfile plugin. */
export const dockerfile = definePlugin<Options>({
  name: "dockerfile",
  kind: "base",
  validate(options, context) {
    const problems: Diagnostic[] = [];
    const path = context.resolve(options.file);
    const text = context.readText(path);
    if (text === undefined) {
      problems.push({
        message: `Dockerfile not found: ${path}`,
        hint: "check the path; relative paths are relative to the spec file's folder",
        file: path,
      });
    } else if (!/^\s*FROM\s/im.test(text)) {
      problems.push({ message: `${path} has no FROM instruction`, file: path });
    }
    return problems;
  },
  ignoreRules(options, context) {
    const folder = dirname(context.resolve(options.file));
    const file = join(folder, ".dockerignore");
    const text = context.readText(file);
    return text === undefined
      ? undefined
      : { root: folder, patterns: parseDockerignore(text), file };
  },
  identify: (options, context) => ({
    dockerfile: context.readText(options.file) ?? null,
    name: basename(context.resolve(options.file)),
    context: context.tree(dirname(context.resolve(options.file))),
  }),
  render(options, context) {
    const path = context.resolve(options.file);
    const text = context.readText(path) ?? "";
    // A `# syntax=` line only works on the first line; the configured one (if any) is there.
    const lines = text.replace(/\n+$/, "").split(/\r?\n/).filter((line) =>
      !/^#\s*syntax\s*=/i.test(line)
    );
    return { instructions: lines, context: [{ kind: "tree", source: dirname(path), target: "." }] };
  },
}, { module: import.meta.url });

export default dockerfile;
