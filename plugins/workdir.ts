/**
 * `withWorkdir`: set the working directory for later layers and for the container.
 *
 * @module
 */

import { definePlugin, type Diagnostic, dockerfileQuote, isSafePath, paths } from "../mod.ts";

/** The layer's options. */
export interface Options {
  /** The directory; a relative one is relative to the working directory before it. */
  readonly workdir: string;
}

/** The workdir plugin. */
export const workdir = definePlugin<Options>({
  name: "workdir",
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
    if (options.workdir.startsWith("/")) return { workdir: paths.normalize(options.workdir) };
    const before = context.state.workdir;
    return { workdir: before ? paths.join(before, options.workdir) : undefined };
  },
  render: (options) => ({ instructions: [`WORKDIR ${dockerfileQuote(options.workdir)}`] }),
}, { module: import.meta.url });

export default workdir;
