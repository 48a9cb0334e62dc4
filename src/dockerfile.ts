/**
 * Writing Dockerfile text safely. Plugins build instructions with these helpers so that
 * nothing a user writes (a package name, an environment value, a path) becomes shell or
 * Dockerfile syntax. The helpers write for Docker's default escape character, `\`; on a base
 * Dockerfile with `# escape=\`` the core rewrites what they wrote (`dockerfile_escape.ts`).
 *
 * @module
 */

import { jsonArrayText } from "./dockerfile_escape.ts";
import type { Secret } from "./secret.ts";

/**
 * Quote a string for a POSIX shell: the shell sees exactly these bytes as one word.
 *
 * @example
 * ```ts
 * import { shellQuote } from "imgtool";
 * console.log(shellQuote("it's $HOME")); // 'it'\''s $HOME'
 * ```
 */
export function shellQuote(value: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return singleQuote(value);
}

/**
 * Quote a value for a Dockerfile instruction (`ENV`, `LABEL`, `WORKDIR`, `USER`): double
 * quotes, with `\`, `"` and `$` escaped so no variable is expanded. Dockerfile text cannot
 * carry line breaks; check {@link canQuoteForDockerfile} first.
 *
 * @example
 * ```ts
 * import { dockerfileQuote } from "imgtool";
 * console.log(dockerfileQuote('say "hi" to $USER')); // "say \"hi\" to \$USER"
 * ```
 */
export function dockerfileQuote(value: string): string {
  if (!canQuoteForDockerfile(value)) {
    throw new RangeError(
      `dockerfileQuote: ${JSON.stringify(value)} has a line break or control character`,
    );
  }
  return `"${value.replace(/[\\"$]/g, (char) => `\\${char}`)}"`;
}

/**
 * Can this value be written in Dockerfile text? Line breaks and other control characters
 * cannot (the Dockerfile parser joins or drops them).
 *
 * @example
 * ```ts
 * import { canQuoteForDockerfile } from "imgtool";
 * console.log(canQuoteForDockerfile("a\nb")); // false
 * ```
 */
export function canQuoteForDockerfile(value: string): boolean {
  // deno-lint-ignore no-control-regex
  return !/[\x00-\x1f\x7f]/.test(value);
}

/**
 * A BuildKit cache mount: a folder kept between builds, never part of a layer.
 *
 * @example
 * ```ts
 * import { type CacheMount, run } from "imgtool";
 * const npmCache: CacheMount = { type: "cache", target: "/root/.npm", sharing: "shared" };
 * console.log(run("npm ci", { mounts: [npmCache] }));
 * // RUN --mount=type=cache,target=/root/.npm,sharing=shared \
 * //     npm ci
 * ```
 */
export interface CacheMount {
  /** The mount type. */
  readonly type: "cache";
  /** Where the step sees it. */
  readonly target: string;
  /** How concurrent builds share it; `locked` by default. */
  readonly sharing?: "locked" | "shared" | "private";
  /** A cache id, when two targets should share one cache. */
  readonly id?: string;
}

/**
 * A bind mount of a build-context file or folder (or of another image's file).
 *
 * @example
 * ```ts
 * import { type BindMount, run } from "imgtool";
 * // A build-context file the layer placed, visible to this one step and kept out of the image.
 * const script: BindMount = {
 *   type: "bind",
 *   source: ".imgtool/02-setup/setup.sh",
 *   target: "/tmp/setup.sh",
 * };
 * console.log(run("sh /tmp/setup.sh", { mounts: [script] }));
 * ```
 */
export interface BindMount {
  /** The mount type. */
  readonly type: "bind";
  /** The path in the build context (or in `from`). */
  readonly source: string;
  /** Where the step sees it. */
  readonly target: string;
  /** An image or stage to take `source` from instead of the context. */
  readonly from?: string;
  /** Let the step write to it (writes are thrown away after the step). */
  readonly readwrite?: boolean;
}

/**
 * A mount for a `RUN` step.
 *
 * @example
 * ```ts
 * import { type Mount, mountFlag } from "imgtool";
 * const mounts: Mount[] = [
 *   { type: "cache", target: "/root/.cache/uv" },
 *   { type: "bind", source: ".imgtool/04-uv_project/uv.lock", target: "/tmp/uv.lock" },
 * ];
 * console.log(mounts.map(mountFlag).join(" "));
 * ```
 */
export type Mount = CacheMount | BindMount;

/**
 * Options for {@link run}.
 *
 * @example
 * ```ts
 * import { run, type RunOptions, Secret } from "imgtool";
 * const options: RunOptions = {
 *   mounts: [{ type: "cache", target: "/root/.cache/pip" }],
 *   secrets: [new Secret({ key: "PIP_INDEX_TOKEN" })],
 *   env: { PIP_DISABLE_PIP_VERSION_CHECK: "1" },
 * };
 * console.log(run("pip install -r /tmp/requirements.txt", options));
 * ```
 */
export interface RunOptions {
  /** Cache and bind mounts. */
  readonly mounts?: readonly Mount[];
  /** Secrets the step needs, mounted as BuildKit secrets. */
  readonly secrets?: readonly Secret[];
  /** Variables set for this step only (not kept in the image). */
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * Write a `RUN` instruction: mounts, secrets (as files under `/run/secrets`, exported as
 * environment variables where asked), then the commands joined with `&&`, one per line.
 * Commands are shell text: quote user values in them with {@link shellQuote}.
 *
 * @example
 * ```ts
 * import { run, shellQuote } from "imgtool";
 * const line = run(["apt-get update", `apt-get install -y ${shellQuote("git")}`], {
 *   mounts: [{ type: "cache", target: "/var/cache/apt" }],
 * });
 * console.log(line);
 * ```
 */
export function run(commands: string | readonly string[], options: RunOptions = {}): string {
  const flags = [
    ...(options.mounts ?? []).map(mountFlag),
    ...(options.secrets ?? []).map(secretFlag),
  ];
  const steps = typeof commands === "string" ? [commands] : [...commands];
  const exports = (options.secrets ?? []).filter((secret) => secret.asEnvVar).map((secret) =>
    `${secret.variable}="$(cat ${shellQuote(secretPath(secret))})" && export ${secret.variable}`
  );
  const env = Object.entries(options.env ?? {}).map(([name, value]) =>
    `export ${name}=${shellQuote(value)}`
  );
  const body = [...env, ...exports, ...steps];
  // BuildKit reads leading `--name=value` words of a RUN as its flags (`--mount`,
  // `--network`, `--security`), after taking out quotes and backslash escapes (`\--mount`
  // and `'--mount'` are flags too): the shell text must not start like one.
  if (/^\s*['"\\]*-/.test(body[0] ?? "")) {
    throw new RangeError(
      `run: the command ${JSON.stringify(body[0])} starts with -, which RUN would read as its flag`,
    );
  }
  const lines = [...flags, body.join(" \\\n    && ")];
  return `RUN ${lines.join(" \\\n    ")}`;
}

/**
 * Where a secret's file is inside the step: its `mount`, or `/run/secrets/<id>`.
 *
 * @example
 * ```ts
 * import { Secret, secretPath } from "imgtool";
 * console.log(secretPath(new Secret({ key: "TOKEN" }))); // /run/secrets/TOKEN
 * ```
 */
export function secretPath(secret: Secret): string {
  return secret.mount ?? `/run/secrets/${secret.id}`;
}

function secretFlag(secret: Secret): string {
  // Readable by whichever user the step runs as (BuildKit's default is 0400 for root, which
  // a base that runs as another user cannot read). The file lives on a mount of this step
  // only, seen by no other process and never written to a layer.
  return `--mount=${
    csv([
      "type=secret",
      `id=${secret.id}`,
      `target=${secretPath(secret)}`,
      "required=true",
      "mode=0444",
    ])
  }`;
}

/**
 * Write a `--mount=` flag.
 *
 * @example
 * ```ts
 * import { mountFlag } from "imgtool";
 * console.log(mountFlag({ type: "cache", target: "/root/.cache/pip" }));
 * // --mount=type=cache,target=/root/.cache/pip,sharing=locked
 * ```
 */
export function mountFlag(mount: Mount): string {
  const fields = mount.type === "cache"
    ? [
      "type=cache",
      `target=${mount.target}`,
      ...(mount.id ? [`id=${mount.id}`] : []),
      `sharing=${mount.sharing ?? "locked"}`,
    ]
    : [
      "type=bind",
      ...(mount.from ? [`from=${mount.from}`] : []),
      `source=${mount.source}`,
      `target=${mount.target}`,
      ...(mount.readwrite ? ["rw"] : []),
    ];
  return `--mount=${csv(fields)}`;
}

// Mount flags are parsed as CSV: a field with a comma or quote must be quoted.
function csv(fields: readonly string[]): string {
  return fields.map((field) => /[",\s]/.test(field) ? `"${field.replaceAll('"', '""')}"` : field)
    .join(",");
}

/**
 * Write a `COPY` instruction in JSON form, so that spaces and quotes in paths are safe.
 *
 * @example
 * ```ts
 * import { copy } from "imgtool";
 * console.log(copy([".imgtool/03-source_file/app.py"], "./", { chown: "app" }));
 * // COPY --chown=app [".imgtool/03-source_file/app.py", "./"]
 * ```
 */
export function copy(
  sources: readonly string[],
  destination: string,
  options: { chown?: string; from?: string } = {},
): string {
  const flags = [
    ...(options.from ? [`--from=${options.from}`] : []),
    ...(options.chown ? [`--chown=${options.chown}`] : []),
  ];
  return ["COPY", ...flags, jsonArrayText([...sources, destination])].join(" ");
}

/**
 * Write an `ENV` instruction with every value quoted. Values must pass
 * {@link canQuoteForDockerfile}.
 *
 * @example
 * ```ts
 * import { env } from "imgtool";
 * console.log(env({ MODE: "prod", GREETING: "hello world" }));
 * // ENV MODE="prod" GREETING="hello world"
 * ```
 */
export function env(variables: Readonly<Record<string, string>>): string {
  const pairs = Object.entries(variables).map(([name, value]) =>
    `${name}=${dockerfileQuote(value)}`
  );
  return `ENV ${pairs.join(" \\\n    ")}`;
}

/**
 * A path safe to write into Dockerfile text and `COPY` JSON: no control characters,
 * no `$` (which Dockerfile text would expand), no backslash.
 *
 * @example
 * ```ts
 * import { isSafePath } from "imgtool";
 * console.log(isSafePath("/app/src"), isSafePath("/app/$HOME")); // true false
 * ```
 */
export function isSafePath(path: string): boolean {
  // deno-lint-ignore no-control-regex
  return path.length > 0 && !/[\x00-\x1f\x7f$\\]/.test(path);
}

/**
 * An environment variable name the shell and Dockerfile accept.
 *
 * @example
 * ```ts
 * import { type Diagnostic, ENV_NAME_PATTERN } from "imgtool";
 * const problems = (names: readonly string[]): Diagnostic[] =>
 *   names.filter((name) => !ENV_NAME_PATTERN.test(name))
 *     .map((name) => ({ message: `${JSON.stringify(name)} is not a valid variable name` }));
 * console.log(problems(["HTTP_PROXY", "1BAD", "MY-VAR"]).length); // 2
 * ```
 */
export const ENV_NAME_PATTERN: RegExp = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Quote a string for a POSIX shell like {@link shellQuote}, except that references to the
 * named variables (`$NAME` or `${NAME}`) are left for the shell to expand. This is how a
 * package URL can carry a secret: `git+https://$GITHUB_PAT@github.com/acme/lib.git`.
 *
 * @example
 * ```ts
 * import { shellQuoteExpanding } from "imgtool";
 * console.log(shellQuoteExpanding("https://$TOKEN@host/x y", ["TOKEN"]));
 * // 'https://'"${TOKEN}"'@host/x y'
 * ```
 */
export function shellQuoteExpanding(value: string, variables: readonly string[]): string {
  // Only variable-name characters reach the pattern; a name with none of them names nothing.
  const valid = variables.map((name) => name.replace(/[^A-Za-z0-9_]/g, "")).filter(Boolean);
  if (valid.length === 0) return shellQuote(value);
  const names = valid.join("|");
  const pattern = new RegExp(`\\$(?:\\{(${names})\\}|(${names})(?![A-Za-z0-9_]))`, "g");
  const parts: string[] = [];
  let last = 0;
  for (const match of value.matchAll(pattern)) {
    if (match.index > last) parts.push(singleQuote(value.slice(last, match.index)));
    parts.push(`"\${${match[1] ?? match[2]}}"`);
    last = match.index + match[0].length;
  }
  if (last < value.length || parts.length === 0) parts.push(singleQuote(value.slice(last)));
  return parts.join("");
}

function singleQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}
