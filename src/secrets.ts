/**
 * Where secret values come from at build time, and how they reach a builder: as files in
 * a private temporary folder, handed to BuildKit as `--secret id=...,src=...`, deleted after
 * the build. Values are never logged; {@link redactor} masks them in builder output, line
 * by line and in its base64 forms, so that a multi-line secret printed by a step is masked too.
 *
 * @module
 */

import { isFile, readWholeText, readWholeTextSync } from "./fs.ts";
import { join } from "./path.ts";
import { encodeBase64 } from "./registry/errors.ts";
import type { Config } from "./config.ts";
import type { Secret } from "./secret.ts";

/** Where a secret's value is. */
export type SecretSource =
  | { readonly kind: "env"; readonly name: string }
  | { readonly kind: "file"; readonly path: string };

/**
 * Where the value of secret `id` comes from: the environment variable `id`, else a file
 * named in `[secrets.files]`, else `<[secrets] dir>/<id>`. `undefined` when none has it.
 */
export function secretSource(
  id: string,
  config: Config,
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): SecretSource | undefined {
  if (env(id) !== undefined) return { kind: "env", name: id };
  const named = config.secretFiles[id];
  if (named !== undefined && isFile(named)) return { kind: "file", path: named };
  if (config.secretsDir !== undefined) {
    const path = join(config.secretsDir, id);
    if (isFile(path)) return { kind: "file", path };
  }
  return undefined;
}

/**
 * A secret handed to a builder: its id and a file holding its value.
 *
 * @example
 * ```ts
 * import type { BuildSecret } from "imgtool";
 * // A builder hands each secret to BuildKit by its file, never by its value.
 * const secretArgs = (secrets: readonly BuildSecret[]) =>
 *   secrets.flatMap((secret) => ["--secret", `id=${secret.id},src=${secret.file}`]);
 * console.log(secretArgs([{ id: "GITHUB_PAT", file: "/tmp/imgtool-secrets/GITHUB_PAT" }]));
 * // [ "--secret", "id=GITHUB_PAT,src=/tmp/imgtool-secrets/GITHUB_PAT" ]
 * ```
 */
export interface BuildSecret {
  /** The secret id. */
  readonly id: string;
  /** A file with the value (mode 0600, in a private folder). */
  readonly file: string;
}

/** Secret files for a build, and the values to mask in its output. */
export interface PreparedSecrets {
  /** The secrets, each as a file. */
  readonly secrets: readonly BuildSecret[];
  /** The values, for masking. */
  readonly values: readonly string[];
}

/**
 * Write each secret's value to a file in `dir` (created 0700). Secrets whose value is
 * already a file are passed by that file.
 */
export async function prepareSecrets(
  secrets: readonly Secret[],
  config: Config,
  dir: string,
): Promise<PreparedSecrets> {
  const unique = [...new Map(secrets.map((secret) => [secret.id, secret])).values()];
  const prepared: BuildSecret[] = [];
  const values: string[] = [];
  for (const secret of unique) {
    const source = secretSource(secret.id, config);
    if (!source) {
      throw new Error(`internal: secret ${secret.id} has no value (validation missed it)`);
    }
    if (source.kind === "file") {
      prepared.push({ id: secret.id, file: source.path });
      values.push(await readWholeText(source.path, { what: `the file of secret ${secret.id}` }));
    } else {
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      const file = join(dir, secret.id);
      const value = Deno.env.get(source.name) ?? "";
      await Deno.writeTextFile(file, value, { mode: 0o600 });
      prepared.push({ id: secret.id, file });
      values.push(value);
    }
  }
  return { secrets: prepared, values };
}

/**
 * A function that replaces every secret value in a text with `***`, in whatever form a build
 * step may print it. For each value it masks:
 *
 * - the value itself and the value trimmed of surrounding whitespace, wherever they occur,
 *   whatever their length (a short secret is still a secret);
 * - each line of a multi-line value (a PEM key, a `.netrc`; lines end in LF, CRLF or CR),
 *   trimmed, because builders stream output a line at a time, each line behind a prefix of
 *   their own (BuildKit's `#7 0.123 `), so the whole value never appears in one piece.
 *   Blank and whitespace-only lines are not masked: they are in every text and hide nothing.
 *   Marker lines such as `-----BEGIN PRIVATE KEY-----` are not secret but are masked with the
 *   rest, which is harmless;
 * - the base64 of the value (of its UTF-8 bytes, as given and trimmed), whole and as the
 *   76-column lines that `base64` wraps it into, and the base64 of each line.
 *
 * A line of at least four characters is masked wherever it occurs (base64 pieces always have
 * four or more). A shorter line (a JSON key's `{` and `}`) is masked only where it is the last
 * word of a line of the text, as a step's output line is behind the builder's prefix: masking
 * every `}` in a build log would garble the log and protect nothing. Overlapping and adjacent
 * matches become one `***`.
 *
 * @example
 * ```ts
 * import { redactor } from "imgtool";
 * console.log(redactor(["hunter2"])("password is hunter2")); // password is ***
 *
 * const key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkq\nhkiG9w0BAQEFAASC\n-----END KEY-----\n";
 * const mask = redactor([key]);
 * console.log(mask("#7 0.123 MIIEvQIBADANBgkq")); // #7 0.123 ***
 * ```
 */
export function redactor(values: readonly string[]): (text: string) => string {
  const anywhere = new Set<string>();
  const lastWord = new Set<string>();
  for (const value of values) {
    for (const form of wholeForms(value)) anywhere.add(form);
    for (const piece of pieceForms(value)) {
      (piece.length >= MIN_PIECE ? anywhere : lastWord).add(piece);
    }
  }
  for (const form of anywhere) lastWord.delete(form);
  if (anywhere.size === 0 && lastWord.size === 0) return (text) => text;
  const finder = new NeedleFinder(anywhere);
  const lastWords = lastWord.size === 0 ? undefined : new RegExp(
    `(?<=^|[ \\t])(?:${[...lastWord].sort(longestFirst).map(escapeRegExp).join("|")})(?=[ \\t]*$)`,
    "gm",
  );
  return (text) => {
    const spans = finder.find(text);
    if (lastWords) {
      for (const match of text.matchAll(lastWords)) {
        spans.push([match.index, match.index + match[0].length]);
      }
    }
    return spans.length === 0 ? text : replaceSpans(text, spans, "***");
  };
}

/** Lines of a secret shorter than this are masked only as the last word of a line. */
const MIN_PIECE = 4;

/** `base64` (GNU coreutils) wraps its output at 76 columns. */
const BASE64_WRAP = 76;

/** The value and its trimmed form: masked wherever they occur, however short. */
function wholeForms(value: string): string[] {
  return [value, value.trim()].filter((form) => form.length > 0);
}

/** The lines of a value and the base64 forms of it and of its lines (see {@link redactor}). */
function pieceForms(value: string): string[] {
  const lines = value.split(/\r\n|\r|\n/).filter((line) => line.trim() !== "");
  const encoded = wholeForms(value).map(encodeBase64);
  return [
    ...lines.map((line) => line.trim()),
    ...encoded,
    ...encoded.flatMap((text) => wrapped(text, BASE64_WRAP)),
    ...lines.flatMap((line) => [line, line.trim()]).map(encodeBase64),
  ];
}

/** `text` cut into lines of `width` characters (the last one may be shorter). */
function wrapped(text: string, width: number): string[] {
  const lines: string[] = [];
  for (let start = 0; start < text.length; start += width) {
    lines.push(text.slice(start, start + width));
  }
  return lines;
}

/**
 * Finds where any of many needles (each at least {@link MIN_PIECE} characters long, except
 * whole values) occur in a text, in time that grows with the text rather than with the number
 * of needles: a large secret file yields thousands of lines and base64 pieces.
 */
class NeedleFinder {
  /** Needles of at least MIN_PIECE characters by their first MIN_PIECE, longest first. */
  readonly #byPrefix = new Map<string, string[]>();
  /** Needles shorter than MIN_PIECE (short whole values), searched one by one. */
  readonly #short: string[] = [];

  constructor(needles: Iterable<string>) {
    for (const needle of [...needles].sort(longestFirst)) {
      if (needle.length < MIN_PIECE) {
        this.#short.push(needle);
        continue;
      }
      const prefix = needle.slice(0, MIN_PIECE);
      const bucket = this.#byPrefix.get(prefix);
      if (bucket) bucket.push(needle);
      else this.#byPrefix.set(prefix, [needle]);
    }
  }

  /** The spans `[start, end)` of the longest needle starting at each position. */
  find(text: string): [number, number][] {
    const spans: [number, number][] = [];
    if (this.#byPrefix.size > 0) {
      for (let at = 0; at + MIN_PIECE <= text.length; at++) {
        const bucket = this.#byPrefix.get(text.slice(at, at + MIN_PIECE));
        const needle = bucket?.find((candidate) => text.startsWith(candidate, at));
        if (needle) spans.push([at, at + needle.length]);
      }
    }
    for (const needle of this.#short) {
      for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
        spans.push([at, at + needle.length]);
      }
    }
    return spans;
  }
}

/** `text` with each span replaced by `mark`; overlapping and adjacent spans become one. */
function replaceSpans(text: string, spans: [number, number][], mark: string): string {
  spans.sort((a, b) => a[0] - b[0]);
  let out = "";
  let done = 0;
  let [start, end] = spans[0];
  for (const [nextStart, nextEnd] of spans.slice(1)) {
    if (nextStart <= end) {
      end = Math.max(end, nextEnd);
      continue;
    }
    out += text.slice(done, start) + mark;
    done = end;
    [start, end] = [nextStart, nextEnd];
  }
  return out + text.slice(done, start) + mark + text.slice(end);
}

const longestFirst = (a: string, b: string) => b.length - a.length;

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, "\\$&");
}

/** A user name and password for a registry. */
export interface RegistryCredentials {
  /** The user name. */
  readonly username: string;
  /** The password or token. */
  readonly password: string;
}

/**
 * The credentials a registry secret holds: `user:password`, or a token (used with the user
 * name `imgtool`). `undefined` when the secret has no value.
 */
export function registryCredentials(
  secret: Secret,
  config: Config,
): RegistryCredentials | undefined {
  const source = secretSource(secret.id, config);
  if (!source) return undefined;
  const value =
    (source.kind === "env"
      ? Deno.env.get(source.name) ?? ""
      : readWholeTextSync(source.path, { what: `the file of secret ${secret.id}` }))
      .trim();
  const colon = value.indexOf(":");
  return colon > 0
    ? { username: value.slice(0, colon), password: value.slice(colon + 1) }
    : { username: "imgtool", password: value };
}

/**
 * Write a Docker `config.json` granting access to `registry` with a registry secret's
 * credentials into `dir` (mode 0600). Returns the file and the values to mask.
 */
export async function writeRegistryAuth(
  registry: string,
  secret: Secret,
  config: Config,
  dir: string,
): Promise<{ file: string; values: string[] }> {
  const credentials = registryCredentials(secret, config);
  if (!credentials) throw new Error(`internal: registry secret ${secret.id} has no value`);
  const auth = btoa(`${credentials.username}:${credentials.password}`);
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, "config.json");
  await Deno.writeTextFile(file, JSON.stringify({ auths: { [registry]: { auth } } }), {
    mode: 0o600,
  });
  return { file, values: [credentials.password, auth] };
}
