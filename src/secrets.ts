/**
 * Where secret values come from at build time, and how they reach a builder: as files in
 * a private temporary folder, handed to BuildKit as `--secret id=...,src=...`, deleted after
 * the build. Values are never logged; {@link redactor} masks them in builder output.
 *
 * @module
 */

import { isFile } from "./fs.ts";
import { join } from "./path.ts";
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
      values.push(await Deno.readTextFile(source.path));
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
 * A function that replaces every secret value in a text with `***`. Values shorter than
 * four characters are masked too: a short secret is still a secret.
 *
 * @example
 * ```ts
 * import { redactor } from "imgtool";
 * console.log(redactor(["hunter2"])("password is hunter2")); // password is ***
 * ```
 */
export function redactor(values: readonly string[]): (text: string) => string {
  const needles = [...new Set(values.flatMap((value) => [value, value.trim()]))]
    .filter((value) => value.length > 0)
    .sort((a, b) => b.length - a.length);
  if (needles.length === 0) return (text) => text;
  return (text) => needles.reduce((out, needle) => out.replaceAll(needle, "***"), text);
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
    (source.kind === "env" ? Deno.env.get(source.name) ?? "" : Deno.readTextFileSync(source.path))
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
