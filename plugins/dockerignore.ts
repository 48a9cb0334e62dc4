/**
 * `withDockerignore`: a `.dockerignore` file whose rules govern every file the image takes
 * from disk, in every layer, wherever this layer stands in the chain. Patterns are relative
 * to the rules file's folder, as Docker's are to its build context. The rules file's
 * content counts in the identity.
 *
 * @module
 */

import { definePlugin, type Diagnostic, paths } from "../contract.ts";

const { dirname } = paths;

/** The layer's options. */
export interface Options {
  /** The rules file, relative to the spec's folder. */
  readonly path: string;
}

/**
 * The lines of a `.dockerignore` text, as the rules take them: the rules themselves drop
 * comments (`#` in the first column only) and blank lines and trim the rest, as Docker does.
 */
export function parseDockerignore(text: string): string[] {
  return text.split(/\r?\n/);
}

/** The dockerignore plugin. */
export const dockerignore = definePlugin<Options>({
  name: "dockerignore",
  version: 1,
  validate(options, context) {
    const problems: Diagnostic[] = [];
    const path = context.resolve(options.path);
    if (!context.isFile(path)) {
      problems.push({
        message: `ignore file not found: ${path}`,
        hint: "check the path; relative paths are relative to the spec file's folder",
        file: path,
      });
    }
    return problems;
  },
  ignoreRules(options, context) {
    const text = context.readText(options.path);
    if (text === undefined) return undefined;
    const file = context.resolve(options.path);
    return { root: dirname(file), patterns: parseDockerignore(text), file };
  },
  // The rules by content, not by path: the same rules anywhere give the same identity.
  identify: (options, context) => ({ rules: context.readText(options.path) ?? null }),
  render: () => ({
    instructions: ["# (its rules apply to every file this image takes from disk)"],
  }),
}, { module: import.meta.url });

export default dockerignore;
