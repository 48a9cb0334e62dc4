/**
 * Registry credentials from Docker's `config.json`: inline `auths` entries, per-registry
 * `credHelpers` and the default `credsStore`, the last two run as
 * `docker-credential-<name> get` (a process boundary: server URL on stdin, JSON on stdout).
 *
 * @module
 */

import { join } from "../path.ts";
import { readCapped } from "./bytes.ts";
import { CredentialsError } from "./errors.ts";
import { DOCKER_HUB, DOCKER_HUB_CONFIG_KEY } from "./reference.ts";

/** Credentials for one registry, with where they came from (for messages, never the secret). */
export interface Credential {
  /** The user name; `<token>` style helpers give an identity token instead of a password. */
  username: string;
  /** The password or personal access token, for Basic auth and token requests. */
  password?: string;
  /** An OAuth2 refresh token (`identitytoken`), exchanged at the token server. */
  identityToken?: string;
  /** Where these came from, e.g. `credHelpers in /root/.docker/config.json`. */
  source: string;
}

/** One `auths` entry of config.json, as written there. */
export interface DockerAuthEntry {
  /** base64 of `username:password`. */
  auth?: string;
  /** The user name, when written apart from `auth`. */
  username?: string;
  /** The password, when written apart from `auth`. */
  password?: string;
  /** An OAuth2 refresh token. */
  identitytoken?: string;
}

/** The parts of Docker's config.json that say where credentials are. */
export interface DockerConfig {
  /** The file these came from. */
  path: string;
  /** Inline credentials, keyed by registry (`https://index.docker.io/v1/`, `ghcr.io`, ...). */
  auths: Record<string, DockerAuthEntry>;
  /** A credential helper name per registry (`docker-credential-<name>`). */
  credHelpers: Record<string, string>;
  /** The default credential helper name, for registries without a `credHelpers` entry. */
  credsStore?: string;
}

/**
 * The directory holding Docker's config.json: `override`, else `$DOCKER_CONFIG`, else
 * `~/.docker`.
 *
 * @example
 * ```ts
 * import { dockerConfigDir } from "./credentials.ts";
 * console.log(dockerConfigDir("/tmp/docker-config")); // /tmp/docker-config
 * ```
 */
export function dockerConfigDir(override?: string): string {
  if (override !== undefined) return override;
  const fromEnv = Deno.env.get("DOCKER_CONFIG");
  if (fromEnv) return fromEnv;
  // As Docker's CLI does: the home folder is $HOME.
  return join(Deno.env.get("HOME") ?? "/root", ".docker");
}

/**
 * Read `<dir>/config.json`; `undefined` when there is none. A file that is not valid JSON
 * or has the wrong shape is a {@link CredentialsError} naming the file.
 *
 * @example
 * ```ts
 * import { readDockerConfig } from "./credentials.ts";
 * const config = await readDockerConfig(await Deno.makeTempDir());
 * console.log(config); // undefined
 * ```
 */
export async function readDockerConfig(dir?: string): Promise<DockerConfig | undefined> {
  const path = join(dockerConfigDir(dir), "config.json");
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw new CredentialsError(`cannot read Docker config ${path}`, {
      hint: "check the file's permissions, or point DOCKER_CONFIG at another directory",
      cause: error,
    });
  }
  return parseDockerConfig(text, path);
}

/**
 * Parse the text of a config.json; `path` is only used in messages.
 *
 * @example
 * ```ts
 * import { parseDockerConfig } from "./credentials.ts";
 * const config = parseDockerConfig('{"credHelpers": {"ghcr.io": "pass"}}', "config.json");
 * console.log(config.credHelpers["ghcr.io"]); // pass
 * ```
 */
export function parseDockerConfig(text: string, path: string): DockerConfig {
  function bad(what: string): never {
    throw new CredentialsError(`Docker config ${path} is not valid: ${what}`, {
      hint: "fix the file (run `docker login` again to rewrite it), or move it away",
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    // The parser's message may quote file content, which can be a secret: say only where.
    bad("it is not JSON");
  }
  if (!isRecord(raw)) bad("it is not a JSON object");
  const auths: Record<string, DockerAuthEntry> = {};
  if (raw.auths !== undefined) {
    if (!isRecord(raw.auths)) bad(`"auths" is not an object`);
    for (const [key, value] of Object.entries(raw.auths)) {
      if (!isRecord(value)) bad(`auths[${JSON.stringify(key)}] is not an object`);
      const entry: DockerAuthEntry = {};
      for (const field of ["auth", "username", "password", "identitytoken"] as const) {
        const v = value[field];
        if (v === undefined || v === null) continue;
        if (typeof v !== "string") bad(`auths[${JSON.stringify(key)}].${field} is not a string`);
        entry[field] = v;
      }
      auths[key] = entry;
    }
  }
  const credHelpers: Record<string, string> = {};
  if (raw.credHelpers !== undefined) {
    if (!isRecord(raw.credHelpers)) bad(`"credHelpers" is not an object`);
    for (const [key, value] of Object.entries(raw.credHelpers)) {
      if (typeof value !== "string") bad(`credHelpers[${JSON.stringify(key)}] is not a string`);
      credHelpers[key] = value;
    }
  }
  const credsStore = raw.credsStore;
  if (credsStore !== undefined && typeof credsStore !== "string") {
    bad(`"credsStore" is not a string`);
  }
  return { path, auths, credHelpers, credsStore: credsStore || undefined };
}

/**
 * The registry name a config.json key stands for: scheme and path dropped, Docker Hub's
 * aliases folded into `docker.io`.
 *
 * @example
 * ```ts
 * import { registryFromConfigKey } from "./credentials.ts";
 * console.log(registryFromConfigKey("https://index.docker.io/v1/")); // docker.io
 * console.log(registryFromConfigKey("http://127.0.0.1:5000/v2/")); // 127.0.0.1:5000
 * ```
 */
export function registryFromConfigKey(key: string): string {
  const host = key.replace(/^[a-z]+:\/\//i, "").split("/")[0].toLowerCase();
  return host === "index.docker.io" || host === "registry-1.docker.io" ? DOCKER_HUB : host;
}

/**
 * The server URL Docker stores and asks helpers about for a registry:
 * `https://index.docker.io/v1/` for Docker Hub, the registry itself otherwise.
 *
 * @example
 * ```ts
 * import { credentialServerUrl } from "./credentials.ts";
 * console.log(credentialServerUrl("docker.io"), credentialServerUrl("ghcr.io"));
 * // https://index.docker.io/v1/ ghcr.io
 * ```
 */
export function credentialServerUrl(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_CONFIG_KEY : registry;
}

/**
 * Find the credentials for `registry` (`docker.io`, `127.0.0.1:5000`) in a config: its
 * `credHelpers` entry first, then an inline `auths` entry, then the `credsStore`.
 * `undefined` means anonymous.
 *
 * @example
 * ```ts
 * import { lookupCredential, parseDockerConfig } from "./credentials.ts";
 * const config = parseDockerConfig(
 *   JSON.stringify({ auths: { "127.0.0.1:5000": { auth: btoa("user:pass") } } }),
 *   "config.json",
 * );
 * const credential = await lookupCredential(config, "127.0.0.1:5000");
 * console.log(credential?.username); // user
 * ```
 */
export async function lookupCredential(
  config: DockerConfig,
  registry: string,
): Promise<Credential | undefined> {
  const wanted = registry.toLowerCase();
  for (const [key, helper] of Object.entries(config.credHelpers)) {
    if (registryFromConfigKey(key) === wanted) {
      return await runCredentialHelper(helper, credentialServerUrl(registry), {
        configPath: config.path,
        setting: "credHelpers",
      });
    }
  }
  for (const [key, entry] of Object.entries(config.auths)) {
    if (registryFromConfigKey(key) !== wanted) continue;
    const credential = credentialFromAuthEntry(entry, key, config.path);
    if (credential) return credential;
  }
  if (config.credsStore) {
    return await runCredentialHelper(config.credsStore, credentialServerUrl(registry), {
      configPath: config.path,
      setting: "credsStore",
    });
  }
  return undefined;
}

/**
 * The credentials an `auths` entry holds; `undefined` for an empty entry (which is how
 * Docker marks registries whose secrets live in a `credsStore`).
 *
 * @example
 * ```ts
 * import { credentialFromAuthEntry } from "./credentials.ts";
 * const credential = credentialFromAuthEntry({ username: "me", password: "pw" }, "ghcr.io", "c.json");
 * console.log(credential?.source); // auths["ghcr.io"] in c.json
 * ```
 */
export function credentialFromAuthEntry(
  entry: DockerAuthEntry,
  key: string,
  configPath: string,
): Credential | undefined {
  const source = `auths[${JSON.stringify(key)}] in ${configPath}`;
  if (entry.identitytoken) {
    return { username: entry.username ?? "", identityToken: entry.identitytoken, source };
  }
  if (entry.auth) {
    let decoded: string;
    try {
      decoded = new TextDecoder("utf-8", { fatal: true }).decode(
        Uint8Array.from(atob(entry.auth), (c) => c.charCodeAt(0)),
      );
    } catch {
      throw new CredentialsError(`${source}: "auth" is not valid base64`, {
        hint: `run \`docker login ${registryFromConfigKey(key)}\` again to rewrite it`,
      });
    }
    const colon = decoded.indexOf(":");
    if (colon === -1) {
      throw new CredentialsError(`${source}: "auth" does not decode to username:password`, {
        hint: `run \`docker login ${registryFromConfigKey(key)}\` again to rewrite it`,
      });
    }
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), source };
  }
  if (entry.username !== undefined && entry.password !== undefined) {
    return { username: entry.username, password: entry.password, source };
  }
  return undefined;
}

const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const HELPER_OUTPUT_MAX = 1024 * 1024;
const HELPER_TIMEOUT_MS = 60_000;

/**
 * Ask `docker-credential-<helper> get` for the credentials of `serverUrl`. `undefined` when
 * the helper has none for it; a {@link CredentialsError} when the helper is missing, fails,
 * times out or answers something that is not its JSON.
 *
 * @example
 * ```ts
 * import { runCredentialHelper } from "./credentials.ts";
 * import { CredentialsError } from "./errors.ts";
 * try {
 *   await runCredentialHelper("surely-not-installed", "ghcr.io");
 * } catch (error) {
 *   console.log(error instanceof CredentialsError); // true
 * }
 * ```
 */
export async function runCredentialHelper(
  helper: string,
  serverUrl: string,
  context: { configPath?: string; setting?: string; timeoutMs?: number } = {},
): Promise<Credential | undefined> {
  const program = `docker-credential-${helper}`;
  const where = context.configPath
    ? ` (${context.setting ?? "credential helper"} in ${context.configPath})`
    : "";
  const fixConfig = context.configPath
    ? `, or remove it from ${context.setting ?? "the config"} in ${context.configPath}`
    : "";
  if (!HELPER_NAME.test(helper)) {
    throw new CredentialsError(
      `credential helper name ${JSON.stringify(helper)}${where} is not valid`,
      {
        hint: `a helper name is what follows docker-credential- in the program's name${fixConfig}`,
      },
    );
  }
  const timeoutMs = context.timeoutMs ?? HELPER_TIMEOUT_MS;
  const signal = AbortSignal.timeout(timeoutMs);
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program, {
      args: ["get"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      signal,
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new CredentialsError(`credential helper ${program}${where} is not installed`, {
        hint: `install ${program} and put it on PATH${fixConfig}`,
        cause: error,
      });
    }
    throw new CredentialsError(`cannot run credential helper ${program}${where}`, {
      hint: `check that ${program} is executable${fixConfig}`,
      cause: error,
    });
  }
  function tooMuch(): never {
    throw new CredentialsError(`credential helper ${program} wrote more than 1 MiB`, {
      hint: `check ${program}${fixConfig}`,
    });
  }
  const writer = child.stdin.getWriter();
  let stdout: Uint8Array;
  try {
    // stderr is drained (a full pipe would stall the helper) and never shown.
    [stdout] = await Promise.all([
      readCapped(child.stdout, HELPER_OUTPUT_MAX, tooMuch),
      readCapped(child.stderr, HELPER_OUTPUT_MAX, tooMuch),
      (async function writeServerUrl() {
        // A helper that exits without reading stdin makes the write fail; its status says more.
        await writer.write(new TextEncoder().encode(serverUrl)).catch(function ignore() {});
        await writer.close().catch(function ignore() {});
      })(),
    ]);
  } catch (error) {
    // Our own child, by its handle: stop it rather than leave it running.
    try {
      child.kill();
    } catch { /* already gone */ }
    await child.status;
    throw error;
  }
  const status = await child.status;
  const out = new TextDecoder().decode(stdout).trim();
  if (signal.aborted) {
    throw new CredentialsError(
      `credential helper ${program} did not answer within ${timeoutMs / 1000} s`,
      {
        hint: `check that ${program} works: echo ${serverUrl} | ${program} get`,
      },
    );
  }
  if (!status.success) {
    // Helpers say "credentials not found in native keychain" when they have nothing for us.
    if (/credentials not found/i.test(out)) return undefined;
    // Never quote what it wrote: a helper may well print the secret, or part of it, as it
    // fails. Whoever runs it by hand sees its message.
    throw new CredentialsError(
      `credential helper ${program}${where} failed for ${serverUrl} (exit status ` +
        `${status.code}); its output is not shown, as it may hold a secret`,
      {
        hint: `run \`echo ${serverUrl} | ${program} get\` to see its message and fix it ` +
          `(unlock or log in to the credential store, or run \`docker login ${serverUrl}\`)` +
          fixConfig,
      },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(out);
  } catch {
    parsed = undefined;
  }
  if (
    !isRecord(parsed) || typeof parsed.Username !== "string" || typeof parsed.Secret !== "string"
  ) {
    // Never quote the output: it may well hold the secret.
    throw new CredentialsError(
      `credential helper ${program} answered for ${serverUrl} with something that is not ` +
        `its JSON ({"Username": ..., "Secret": ...})`,
      { hint: `check that ${program} works: echo ${serverUrl} | ${program} get` },
    );
  }
  const source = `credential helper ${program}`;
  if (parsed.Username === "<token>") {
    return { username: "", identityToken: parsed.Secret, source };
  }
  return { username: parsed.Username, password: parsed.Secret, source };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
