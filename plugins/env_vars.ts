/**
 * `withEnvVars`: set environment variables in the image. Values arrive byte for byte:
 * Dockerfile text carries quotes, `$` and backslashes escaped; values with line breaks or
 * other control characters, which Dockerfile text cannot carry, go through a build argument.
 *
 * @module
 */

import {
  canQuoteForDockerfile,
  definePlugin,
  type Diagnostic,
  env,
  ENV_NAME_PATTERN,
} from "../mod.ts";

/** The layer's options. */
export interface Options {
  /** Variable names to values. */
  readonly envVars: Readonly<Record<string, string>>;
}

/** The options when none are given. */
export const defaults = { envVars: {} } satisfies Options;

/** The build argument that carries a value Dockerfile text cannot. */
export function buildArgName(name: string): string {
  return `IMGTOOL_ENV_${name}`;
}

/** The env vars plugin. */
export const envVars = definePlugin<Options>({
  name: "env_vars",
  // Values with line breaks travel as build arguments (see render): byte for byte.
  literalOptions: ["envVars"],
  validate(options) {
    const problems: Diagnostic[] = [];
    const entries = Object.entries(options.envVars);
    if (entries.length === 0) problems.push({ message: "no variables given" });
    for (const [name, value] of entries) {
      if (!ENV_NAME_PATTERN.test(name)) {
        problems.push({
          message: `${JSON.stringify(name)} is not a valid environment variable name`,
          hint: "use letters, digits and _, not starting with a digit",
        });
      }
      if (typeof value !== "string") {
        problems.push({
          message: `the value of ${name} is a ${typeof value}, not a string`,
          hint: `write it as a string: ${name}: "${String(value)}"`,
        });
      } else if (value.includes("\0")) {
        problems.push({
          message: `the value of ${name} holds a NUL character (U+0000) at character ${
            value.indexOf("\0") + 1
          }, which no environment variable can hold`,
          hint: "remove it; if the value comes from a file, check how it was read",
        });
      }
    }
    return problems;
  },
  identify: (options) => ({ envVars: options.envVars }),
  render(options) {
    const plain: Record<string, string> = {};
    const viaArgs: Record<string, string> = {};
    for (const [name, value] of Object.entries(options.envVars)) {
      if (canQuoteForDockerfile(value)) plain[name] = value;
      else viaArgs[name] = value;
    }
    const instructions = [
      ...Object.keys(viaArgs).map((name) => `ARG ${buildArgName(name)}`),
      ...Object.keys(viaArgs).map((name) => `ENV ${name}="\${${buildArgName(name)}}"`),
      ...(Object.keys(plain).length > 0 ? [env(plain)] : []),
    ];
    const buildArgs = Object.fromEntries(
      Object.entries(viaArgs).map(([name, value]) => [buildArgName(name), value]),
    );
    return { instructions, buildArgs };
  },
}, { module: import.meta.url });

export default envVars;
