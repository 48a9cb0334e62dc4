/**
 * `withPipPackages`: install Python packages into the image's Python environment with the
 * configured installer (uv or pip), the installer's cache on a cache mount. A package may
 * refer to one of the layer's secrets as `$NAME` (e.g. a token in a git URL): the shell of
 * the install step expands it; the Dockerfile and the image never hold its value.
 *
 * The installer resolves all the packages of one step together, so their order means
 * nothing: the layer identifies and installs them in one order ({@link installOrder}), and
 * `["pandas", "numpy"]` and `["numpy", "pandas"]` give one tag and one step.
 *
 * @module
 */

import { definePlugin, run, type Secret, shellQuoteExpanding } from "../contract.ts";
import {
  environmentIdentity,
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

/**
 * The packages of one step in the order they are identified and installed: trimmed, each
 * once, sorted.
 *
 * @example
 * ```ts
 * import { installOrder } from "./pip.ts";
 * console.log(installOrder(["pandas", " numpy==2.1.0", "pandas"])); // [ "numpy==2.1.0", "pandas" ]
 * ```
 */
export function installOrder(packages: readonly string[]): string[] {
  return [...new Set(packages.map((name) => name.trim()))].sort();
}

function quotePackages(packages: readonly string[], secrets: readonly Secret[]): string[] {
  const ids = secrets.filter((secret) => secret.asEnvVar).map((secret) => secret.variable);
  return installOrder(packages).map((name) => shellQuoteExpanding(name, ids));
}

/** The pip plugin. */
export const pip = definePlugin<Options>({
  name: "pip",
  version: 1,
  needsRoot: true,
  validate: (options) => [...requirementProblems(options.packages), ...indexProblems(options)],
  secrets: (options) => options.secretMounts,
  identify: (options, context) => ({
    ...options,
    packages: installOrder(options.packages),
    ...installerIdentity(context),
    ...environmentIdentity(context),
  }),
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
