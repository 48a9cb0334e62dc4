/**
 * `withWorkdir`: set the working directory for later layers and for the container.
 *
 * Spellings of one directory (`/opt/app`, `/opt/app/`, `/opt//app`, `/opt/./app`) are one
 * directory: the layer identifies and renders it in one spelling, so they give one tag.
 *
 * @module
 */

import { definePlugin, type Diagnostic, dockerfileQuote, isSafePath, paths } from "../contract.ts";

/** The layer's options. */
export interface Options {
  /** The directory; a relative one is relative to the working directory before it. */
  readonly workdir: string;
}

/** The workdir plugin. */
export const workdir = definePlugin<Options>({
  name: "workdir",
  version: 1,
  validate(options) {
    const problems: Diagnostic[] = [];
    if (!isSafePath(options.workdir)) {
      problems.push({
        message: `working directory ${
          JSON.stringify(options.workdir)
        } is empty or has $, \\ or a control character`,
        hint: "give a plain path such as /app",
      });
    }
    return problems;
  },
  nextState(options, context) {
    const directory = paths.normalizeImagePath(options.workdir);
    if (directory.startsWith("/")) return { workdir: directory };
    const before = context.state.workdir;
    return {
      workdir: before ? paths.normalizeImagePath(paths.join(before, directory)) : undefined,
    };
  },
  identify: (options) => ({ workdir: paths.normalizeImagePath(options.workdir) }),
  render: (options) => ({
    instructions: [`WORKDIR ${dockerfileQuote(paths.normalizeImagePath(options.workdir))}`],
  }),
  // WORKDIR makes the folder when the image has none; a relative one is the core's to resolve.
  append(options) {
    const directory = paths.normalizeImagePath(options.workdir);
    return { files: [{ kind: "dir", target: directory }], config: { workdir: directory } };
  },
}, { module: import.meta.url });

export default workdir;
