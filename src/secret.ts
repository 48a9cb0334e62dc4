/**
 * Build secrets. A secret reaches a build only as a BuildKit secret mount: never in a layer,
 * a build argument, the history or a log line.
 *
 * @module
 */

const SECRET_BRAND = Symbol.for("imgtool.secret");
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The options of a {@link Secret}.
 *
 * @example
 * ```ts
 * import { Image, Secret, type SecretOptions } from "imgtool";
 * const options: SecretOptions = { key: "npmrc", group: "ci", mount: "/root/.npmrc" };
 * const secret = new Secret(options);
 * console.log(secret.id, secret.asEnvVar); // CI_NPMRC false
 * const image = Image.fromDebianBase().withCommands("npm ci", { secretMounts: secret });
 * ```
 */
export interface SecretOptions {
  /** The secret's name. */
  key: string;
  /** A group; the value then comes from `GROUP_KEY` (upper case, `-` becomes `_`). */
  group?: string;
  /** Where the step sees the secret as a file; without it, the step sees an environment variable. */
  mount?: string;
  /**
   * Expose the secret as an environment variable (the default when there is no `mount`):
   * `true` for the variable named {@link Secret.id}, or the name of the variable to set.
   */
  asEnvVar?: boolean | string;
}

/**
 * A secret a build step needs. Its value comes, at build time, from the environment variable
 * named {@link Secret.id} (`KEY`, or `GROUP_KEY` with a group, in upper case with `-` as `_`,
 * as Flyte does) or from a file configured in imgtool.toml. Inside the step it is an
 * environment variable ({@link Secret.variable}), or a file at `mount`.
 *
 * @example
 * ```ts
 * import { Image, Secret } from "imgtool";
 *
 * const token = new Secret({ key: "GITHUB_PAT" });
 * const netrc = new Secret({ key: "netrc", group: "ci", mount: "/root/.netrc" });
 * const apt = new Secret({ key: "apt-secret", mount: "/etc/apt/apt-secret" });
 * const pat = new Secret({ key: "github-pat", asEnvVar: "GH_TOKEN" });
 * const image = Image.fromDebianBase()
 *   .withPipPackages("private-package", { secretMounts: [token, netrc] });
 * console.log(token.id, netrc.id, apt.id); // GITHUB_PAT CI_NETRC APT_SECRET
 * console.log(pat.id, pat.variable); // GITHUB_PAT GH_TOKEN
 * ```
 */
export class Secret {
  /** The secret's name. */
  readonly key: string;
  /** The group, if any. */
  readonly group?: string;
  /** The file path the step sees the secret at, if any. */
  readonly mount?: string;
  /** Whether the step sees the secret as an environment variable. */
  readonly asEnvVar: boolean;
  /** The variable's name when `asEnvVar` named one. */
  readonly envVar?: string;

  /** Describe a secret. Nothing is read until a build needs the value. */
  constructor(options: SecretOptions) {
    this.key = options.key;
    this.group = options.group;
    this.mount = options.mount;
    const asEnvVar = options.asEnvVar ?? options.mount === undefined;
    this.asEnvVar = asEnvVar !== false;
    if (typeof asEnvVar === "string") this.envVar = asEnvVar;
    Object.defineProperty(this, SECRET_BRAND, { value: true });
    Object.freeze(this);
  }

  /**
   * The secret's id: the environment variable its value comes from, and its name in the step.
   * As in the original, it is the group and key in upper case with `-` as `_`: `GROUP_KEY`,
   * or `KEY` (`apt-secret` is `APT_SECRET`).
   */
  get id(): string {
    return [this.group, this.key].filter(Boolean)
      .map((part) => part!.toUpperCase().replaceAll("-", "_")).join("_");
  }

  /** The environment variable the step sees: the name `asEnvVar` gave, else {@link id}. */
  get variable(): string {
    return this.envVar ?? this.id;
  }

  /** Problems with the secret's description itself (not its value). */
  problems(): string[] {
    const problems: string[] = [];
    if (!ENV_NAME.test(this.id)) {
      problems.push(
        `secret key ${JSON.stringify(this.key)}${
          this.group === undefined ? "" : ` (group ${JSON.stringify(this.group)})`
        } gives the id ${
          JSON.stringify(this.id)
        }, which is not a valid environment variable name (letters, digits, _ and -; not starting with a digit)`,
      );
    }
    if (this.envVar !== undefined && !ENV_NAME.test(this.envVar)) {
      problems.push(
        `secret ${this.id}: asEnvVar ${
          JSON.stringify(this.envVar)
        } is not a valid environment variable name (letters, digits, _; not starting with a digit)`,
      );
    }
    if (this.mount !== undefined && !this.mount.startsWith("/")) {
      problems.push(
        `secret ${this.id}: mount ${JSON.stringify(this.mount)} must be an absolute path`,
      );
    }
    return problems;
  }

  /** A readable form that never includes a value. */
  toString(): string {
    return `Secret(${this.id})`;
  }
}

/**
 * What the user may pass as `secretMounts`.
 *
 * @example
 * ```ts
 * import { Image, Secret, type SecretRequest, toSecrets } from "imgtool";
 * const netrc = new Secret({ key: "netrc", mount: "/root/.netrc" });
 * const request: SecretRequest = ["GITHUB_PAT", netrc];
 * const image = Image.fromDebianBase().withPipPackages("acme-internal", { secretMounts: request });
 * console.log(toSecrets(request).map((secret) => secret.id)); // [ "GITHUB_PAT", "NETRC" ]
 * ```
 */
export type SecretRequest = string | Secret | readonly (string | Secret)[];

/**
 * Normalize a `secretMounts` option into a list of secrets.
 *
 * @example
 * ```ts
 * import { toSecrets } from "imgtool";
 * console.log(toSecrets("GITHUB_PAT").map((secret) => secret.id)); // [ "GITHUB_PAT" ]
 * ```
 */
export function toSecrets(request: SecretRequest | undefined): Secret[] {
  if (request === undefined) return [];
  const items = typeof request === "string" || isSecret(request) ? [request] : request;
  return items.map((item) => typeof item === "string" ? new Secret({ key: item }) : item);
}

/**
 * Is this value a secret (made by any copy of imgtool)?
 *
 * @example
 * ```ts
 * import { isSecret, Secret } from "imgtool";
 * console.log(isSecret(new Secret({ key: "A" }))); // true
 * ```
 */
export function isSecret(value: unknown): value is Secret {
  return typeof value === "object" && value !== null &&
    (value as Record<symbol, unknown>)[SECRET_BRAND] === true;
}
