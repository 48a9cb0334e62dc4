/**
 * `withEnvVars`: set environment variables in the image. Values arrive byte for byte:
 * Dockerfile text carries quotes, `$` and backslashes escaped; text with line breaks or
 * other control characters, which Dockerfile text cannot carry, goes through a build
 * argument.
 *
 * With `expand`, a value may refer to variables the image already has: `$NAME` and
 * `${NAME}` are left for the Dockerfile's `ENV` to expand (to the value the image's
 * configuration holds before this layer; empty when unset, as `HOME` is, which containers
 * get only when they start), and everything else stays literal, `${NAME:-default}` and `$1`
 * included. All variables of a layer are set by one `ENV`, so a reference to a variable the
 * same layer sets sees its value from before the layer.
 *
 * Without `expand`, validation warns about each value that holds such a reference, which
 * stays literal (a warning: the value is valid, but `/opt/bin:$PATH` is rarely meant
 * literally).
 *
 * @module
 */

import {
  canQuoteForDockerfile,
  definePlugin,
  type Diagnostic,
  ENV_NAME_PATTERN,
} from "../contract.ts";

/** The layer's options. */
export interface Options {
  /** Variable names to values. */
  readonly envVars: Readonly<Record<string, string>>;
  /** Expand `$NAME` and `${NAME}` in values to the image's variables. */
  readonly expand: boolean;
}

/** The options when none are given. */
export const defaults = { envVars: {}, expand: false } satisfies Options;

/** A piece of a value: literal text, or (with `expand`) a reference to a variable. */
export type Segment = { readonly text: string } | { readonly variable: string };

// `${NAME}` or `$NAME`, with the names a POSIX shell reads (ASCII letters, digits, `_`).
const REFERENCE = /\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g;

/**
 * Split a value into literal text and references to variables (`$NAME`, `${NAME}`).
 *
 * @example
 * ```ts
 * import { segments } from "./env_vars.ts";
 * console.log(segments("/opt/tool/bin:$PATH"));
 * // [ { text: "/opt/tool/bin:" }, { variable: "PATH" } ]
 * console.log(segments("${HOME}/x costs $5 ${A:-b}"));
 * // [ { variable: "HOME" }, { text: "/x costs $5 ${A:-b}" } ]
 * ```
 */
export function segments(value: string): Segment[] {
  const parts: Segment[] = [];
  let last = 0;
  for (const match of value.matchAll(REFERENCE)) {
    if (match.index > last) parts.push({ text: value.slice(last, match.index) });
    parts.push({ variable: match[1] ?? match[2] });
    last = match.index + match[0].length;
  }
  if (last < value.length) parts.push({ text: value.slice(last) });
  return parts;
}

/**
 * The build argument that carries a value (or, with `expand`, the piece `piece` of it) that
 * Dockerfile text cannot carry. The layer's index keeps two layers that set one variable
 * apart: build arguments are one per build.
 *
 * @example
 * ```ts
 * import { buildArgName } from "./env_vars.ts";
 * console.log(buildArgName("BANNER", 2), buildArgName("BANNER", 2, 0));
 * // IMGTOOL_ENV_2_BANNER IMGTOOL_ENV_2_BANNER_0
 * ```
 */
export function buildArgName(name: string, layerIndex: number, piece?: number): string {
  return `IMGTOOL_ENV_${layerIndex}_${name}${piece === undefined ? "" : `_${piece}`}`;
}

/**
 * Text inside a double-quoted Dockerfile word, read back exactly: `\`, `"` and `$` escaped.
 *
 * @example
 * ```ts
 * import { escapeInQuotes } from "./env_vars.ts";
 * console.log(escapeInQuotes('say "hi" to $USER')); // say \"hi\" to \$USER
 * ```
 */
export function escapeInQuotes(text: string): string {
  return text.replace(/[\\"$]/g, (char) => `\\${char}`);
}

/**
 * The warning for a value that, without `expand`, keeps references such as `$PATH` as
 * literal text: most often the user meant to extend the image's variable. `undefined` when
 * the value refers to nothing (`$5`, `$$`, `${A:-b}` are not references).
 *
 * @example
 * ```ts
 * import { literalReferenceWarning } from "./env_vars.ts";
 * const warning = literalReferenceWarning("PATH", "/opt/tool/bin:$PATH");
 * console.log(warning?.message); // ENV PATH holds "$PATH", which stays literal
 * console.log(literalReferenceWarning("PRICE", "costs $5")); // undefined
 * ```
 */
export function literalReferenceWarning(name: string, value: string): Diagnostic | undefined {
  const references = new Set<string>();
  const variables = new Set<string>();
  let at = 0;
  for (const part of segments(value)) {
    if ("variable" in part) {
      // As written: `$PATH` or `${PATH}`.
      const written = value.startsWith("${", at) ? `\${${part.variable}}` : `$${part.variable}`;
      references.add(written);
      variables.add(part.variable);
      at += written.length;
    } else {
      at += part.text.length;
    }
  }
  if (references.size === 0) return undefined;
  const quoted = [...references].map((reference) => JSON.stringify(reference));
  return {
    severity: "warning",
    message: `ENV ${name} holds ${listed(quoted)}, which ${
      quoted.length === 1 ? "stays" : "stay"
    } literal`,
    hint: `pass { expand: true } to withEnvVars to refer to the image's ${
      listed([...variables])
    }, or ignore this if the text is meant literally`,
  };
}

/** `a`, `a and b`, `a, b and c`. */
function listed(items: readonly string[]): string {
  return items.length < 2
    ? items.join("")
    : `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

/** The env vars plugin. */
export const envVars = definePlugin<Options>({
  name: "env_vars",
  version: 1,
  // Text with line breaks travels as build arguments (see render): byte for byte.
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
      } else if (!options.expand) {
        const warning = literalReferenceWarning(name, value);
        if (warning) problems.push(warning);
      }
    }
    return problems;
  },
  // `expand` counts only when set, so that literal layers keep the tags they had.
  identify: (options) => ({
    envVars: options.envVars,
    ...(options.expand ? { expand: true } : {}),
  }),
  render(options, context) {
    const buildArgs: Record<string, string> = {};
    const pairs = Object.entries(options.envVars).map(([name, value]) => {
      const parts: Segment[] = options.expand ? segments(value) : [{ text: value }];
      const word = parts.map((part, piece) => {
        if ("variable" in part) return `\${${part.variable}}`;
        if (canQuoteForDockerfile(part.text)) return escapeInQuotes(part.text);
        const arg = buildArgName(name, context.index, options.expand ? piece : undefined);
        buildArgs[arg] = part.text;
        return `\${${arg}}`;
      });
      return `${name}="${word.join("")}"`;
    });
    if (pairs.length === 0) return { instructions: [] };
    // One ENV: a reference sees the image's value from before this layer, whatever the order.
    const instructions = [
      ...Object.keys(buildArgs).map((arg) => `ARG ${arg}`),
      `ENV ${pairs.join(" \\\n    ")}`,
    ];
    return { instructions, buildArgs };
  },
  // Values go into the image config exactly; references to expand need the engine's ENV.
  append: (options) => options.expand ? undefined : { config: { env: options.envVars } },
}, { module: import.meta.url });

export default envVars;
