/**
 * `withPipPackages`: install Python packages into the image's Python environment with the
 * configured installer (uv or pip), the installer's cache on a cache mount. A package may
 * refer to one of the layer's secrets as `$NAME` (e.g. a token in a git URL): the shell of
 * the install step expands it; the Dockerfile and the image never hold its value.
 *
 * @module
 */

import { definePlugin, run, type Secret, shellQuoteExpanding } from "../mod.ts";
import {
  indexProblems,
  type IndexSettings,
  installerIdentity,
  pipInstall,
  requirementProblems,
} from "./shared/python.ts";

/** The layer's options. */
export interface Options extends IndexSettings {
  /** Requirements, in pip's syntax. */
  readonly packages: readonly string[];
}

/** The options when none are given. */
export const defaults = {
  packages: [],
  extraIndexUrls: [],
  pre: false,
  secretMounts: [],
} satisfies Options;

function quotePackages(packages: readonly string[], secrets: readonly Secret[]): string[] {
  const ids = secrets.filter((secret) => secret.asEnvVar).map((secret) => secret.variable);
  return packages.map((name) => shellQuoteExpanding(name.trim(), ids));
}

/** The pip plugin. */
export const pip = definePlugin<Options>({
  name: "pip",
  needsRoot: true,
  validate: (options) => [...requirementProblems(options.packages), ...indexProblems(options)],
  secrets: (options) => options.secretMounts,
  identify: (options, context) => ({ ...options, ...installerIdentity(context) }),
  render(options, context) {
    const step = pipInstall(
      context,
      quotePackages(options.packages, options.secretMounts),
      options,
    );
    return {
      instructions: [
        run(step.command, { mounts: step.mounts, secrets: options.secretMounts, env: step.env }),
      ],
    };
  },
}, { module: import.meta.url });

export default pip;
