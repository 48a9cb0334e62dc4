/**
 * Configuration: `imgtool.toml` (found next to the spec or above it), overridden by
 * `IMGTOOL_*` environment variables, overridden by command-line flags.
 *
 * Every setting is declared once in {@link SETTINGS}, with its TOML key and its variable;
 * reading, precedence, type checks and `imgtool --help` all come from that one table.
 *
 * @module
 */

import { parse as parseToml } from "smol-toml";
import { exists } from "./fs.ts";
import { dirname, join, resolve } from "./path.ts";
import { UsageError } from "./errors.ts";
import type { Platform, PythonVersion } from "./plugin.ts";

/**
 * Where the Python layers' installer comes from.
 *
 * @example
 * ```ts
 * import { defaultConfig, type Installer } from "imgtool";
 * const installer: Installer = defaultConfig().installer;
 * console.log(installer === "uv" ? "uv pip install" : "pip install"); // uv pip install
 * ```
 */
export type Installer = "uv" | "pip";

/**
 * The resolved configuration every stage and plugin sees.
 *
 * @example
 * ```ts
 * import { defaultConfig } from "imgtool";
 * const config = defaultConfig();
 * console.log(config.images.python); // python:{major}.{minor}-slim-bookworm
 * ```
 */
export interface Config {
  /** The imgtool.toml the settings came from, if one was found. */
  readonly file?: string;
  /** The registry for images that name none (`host[:port][/namespace]`). */
  readonly registry?: string;
  /** The builder plugin to use, or `auto` to detect one. */
  readonly builder: string;
  /** Platforms for images that name none. */
  readonly platforms?: readonly Platform[];
  /** The Python version for images that name none. */
  readonly pythonVersion: PythonVersion;
  /** The network build steps use (`host`, `none` or `default`). */
  readonly network: string;
  /** Registries reached over plain HTTP besides loopback ones. */
  readonly insecureRegistries: readonly string[];
  /** Images the built-in recipes start from: mirror them here. */
  readonly images: {
    /** The Python base image; `{major}` and `{minor}` are replaced. */
    readonly python: string;
    /** The image uv is copied from. */
    readonly uv: string;
  };
  /** How Python packages are installed: with uv (from {@link Config.images}) or with pip. */
  readonly installer: Installer;
  /** Packages the Debian base recipe installs. */
  readonly debianPackages: readonly string[];
  /** Reference names for `Image.fromRefName`, to image URIs. */
  readonly refs: Readonly<Record<string, string>>;
  /** The docker client binary. */
  readonly dockerClient: string;
  /** A remote Docker engine to build on (`tcp://host:2376`, `ssh://user@host`), as DOCKER_HOST. */
  readonly dockerHost?: string;
  /** A folder holding secret values as files named after their ids. */
  readonly secretsDir?: string;
  /** Secret ids to files holding their values. */
  readonly secretFiles: Readonly<Record<string, string>>;
  /** A `# syntax=` frontend line to write at the top of Dockerfiles; none by default. */
  readonly dockerfileSyntax?: string;
  /** Whether install steps use BuildKit cache mounts. */
  readonly cacheMounts: boolean;
  /** Each plugin's own table, `[plugins.<name>]`. */
  readonly plugins: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

/**
 * The configuration before any file, variable or flag.
 *
 * @example
 * ```ts
 * import { defaultConfig } from "imgtool";
 * console.log(defaultConfig().installer); // uv
 * ```
 */
export function defaultConfig(): Config {
  return {
    builder: "auto",
    pythonVersion: [3, 12],
    network: "host",
    insecureRegistries: [],
    images: { python: "python:{major}.{minor}-slim-bookworm", uv: "ghcr.io/astral-sh/uv:0.8.13" },
    installer: "uv",
    debianPackages: ["build-essential", "ca-certificates"],
    refs: {},
    dockerClient: "docker",
    secretFiles: {},
    cacheMounts: true,
    plugins: {},
  };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type Parsed = Mutable<Config>;

/** One setting: its TOML key, its variable, how to read it, where it goes. */
export interface Setting {
  /** The TOML key, dotted for tables (`images.python`). */
  readonly key: string;
  /** One line for `imgtool --help`. */
  readonly describe: string;
  /** How values are read and checked. */
  readonly type: "string" | "list" | "platforms" | "python" | "boolean" | "table" | "installer";
  /** Put a checked value into the configuration; `base` resolves relative paths. */
  readonly apply: (config: Parsed, value: unknown, base: string) => void;
}

/** Every setting imgtool reads. The variable is `IMGTOOL_` + the key in upper snake case. */
export const SETTINGS: readonly Setting[] = [
  {
    key: "registry",
    describe: "registry for images that name none",
    type: "string",
    apply: (c, v) => c.registry = v as string,
  },
  {
    key: "builder",
    describe: "builder plugin (auto, docker, buildah, ...)",
    type: "string",
    apply: (c, v) => c.builder = v as string,
  },
  {
    key: "platforms",
    describe: "default platforms (linux/amd64, linux/arm64)",
    type: "platforms",
    apply: (c, v) => c.platforms = v as Platform[],
  },
  {
    key: "python-version",
    describe: "default Python version, e.g. 3.12",
    type: "python",
    apply: (c, v) => c.pythonVersion = v as PythonVersion,
  },
  {
    key: "network",
    describe: "network for build steps (host, none, default)",
    type: "string",
    apply: (c, v) => c.network = v as string,
  },
  {
    key: "insecure-registries",
    describe: "registries reached over plain HTTP",
    type: "list",
    apply: (c, v) => c.insecureRegistries = v as string[],
  },
  {
    key: "images.python",
    describe: "Python base image ({major}, {minor} replaced)",
    type: "string",
    apply: (c, v) => c.images = { ...c.images, python: v as string },
  },
  {
    key: "images.uv",
    describe: "image uv is copied from",
    type: "string",
    apply: (c, v) => c.images = { ...c.images, uv: v as string },
  },
  {
    key: "python.installer",
    describe: "installer for Python packages (uv or pip)",
    type: "installer",
    apply: (c, v) => c.installer = v as Installer,
  },
  {
    key: "debian.packages",
    describe: "packages the Debian base recipe installs",
    type: "list",
    apply: (c, v) => c.debianPackages = v as string[],
  },
  {
    key: "refs",
    describe: "reference names to image URIs (Image.fromRefName)",
    type: "table",
    apply: (c, v) => c.refs = { ...c.refs, ...v as Record<string, string> },
  },
  {
    key: "docker.client",
    describe: "docker client binary",
    type: "string",
    apply: (c, v) => c.dockerClient = v as string,
  },
  {
    key: "docker.host",
    describe: "a remote Docker engine (tcp://..., ssh://...)",
    type: "string",
    apply: (c, v) => c.dockerHost = v as string,
  },
  {
    key: "secrets.dir",
    describe: "folder of secret values, one file per secret id",
    type: "string",
    apply: (c, v, base) => c.secretsDir = resolve(base, v as string),
  },
  {
    key: "secrets.files",
    describe: "secret ids to files holding their values",
    type: "table",
    apply: (c, v, base) => {
      const files = Object.entries(v as Record<string, string>)
        .map(([id, file]) => [id, resolve(base, file)]);
      c.secretFiles = { ...c.secretFiles, ...Object.fromEntries(files) };
    },
  },
  {
    key: "dockerfile.syntax",
    describe: "a # syntax= frontend for generated Dockerfiles",
    type: "string",
    apply: (c, v) => c.dockerfileSyntax = v as string,
  },
  {
    key: "cache.mounts",
    describe: "use BuildKit cache mounts in install steps",
    type: "boolean",
    apply: (c, v) => c.cacheMounts = v as boolean,
  },
];

/** The variable that overrides a setting. */
export function envName(key: string): string {
  return `IMGTOOL_${key.replace(/[.-]/g, "_").toUpperCase()}`;
}

/**
 * Flags that override settings, as the CLI parsed them.
 *
 * @example
 * ```ts
 * import { type ConfigOverrides, loadConfig } from "imgtool";
 * // What `imgtool build --builder buildah --python-version 3.11` passes on.
 * const overrides: ConfigOverrides = { builder: "buildah", "python-version": "3.11" };
 * const config = loadConfig({ startDir: Deno.cwd(), env: {}, overrides });
 * console.log(config.builder, config.pythonVersion.join(".")); // buildah 3.11
 * ```
 */
export type ConfigOverrides = Readonly<Record<string, string | undefined>>;

/**
 * Options for {@link loadConfig}.
 *
 * @example
 * ```ts
 * import { loadConfig, type LoadConfigOptions } from "imgtool";
 * const options: LoadConfigOptions = {
 *   startDir: Deno.cwd(),
 *   env: { IMGTOOL_REGISTRY: "registry.internal:5000/team" },
 *   overrides: { network: "none" },
 * };
 * const config = loadConfig(options);
 * console.log(config.registry, config.network); // registry.internal:5000/team none
 * ```
 */
export interface LoadConfigOptions {
  /** Where to start looking for imgtool.toml (the spec's folder). */
  readonly startDir: string;
  /** The environment to read `IMGTOOL_*` from. */
  readonly env?: Readonly<Record<string, string>>;
  /** Flag values by setting key (e.g. `{ builder: "docker" }`). */
  readonly overrides?: ConfigOverrides;
}

/**
 * Load the configuration for a spec in `startDir`: file, then variables, then flags.
 * `IMGTOOL_CONFIG` names a file to use instead of searching.
 *
 * @example
 * ```ts
 * import { loadConfig } from "imgtool";
 * const config = loadConfig({ startDir: Deno.cwd(), env: {}, overrides: { builder: "docker" } });
 * console.log(config.builder); // docker
 * ```
 */
export function loadConfig(options: LoadConfigOptions): Config {
  const env = options.env ?? Deno.env.toObject();
  const config = defaultConfig() as Parsed;
  const file = env.IMGTOOL_CONFIG ? resolve(env.IMGTOOL_CONFIG) : findConfigFile(options.startDir);
  if (file) applyFile(config, file);
  for (const setting of SETTINGS) {
    const raw = env[envName(setting.key)];
    if (raw !== undefined && raw !== "") {
      setting.apply(config, fromText(setting, raw, envName(setting.key)), Deno.cwd());
    }
  }
  for (const [key, raw] of Object.entries(options.overrides ?? {})) {
    if (raw === undefined) continue;
    const setting = SETTINGS.find((s) => s.key === key);
    if (!setting) throw new Error(`internal: no setting ${key}`);
    setting.apply(config, fromText(setting, raw, `--${key}`), Deno.cwd());
  }
  return Object.freeze(config);
}

/** The nearest imgtool.toml in `dir` or a folder above it. */
export function findConfigFile(dir: string): string | undefined {
  for (let current = resolve(dir);; current = dirname(current)) {
    const candidate = join(current, "imgtool.toml");
    if (exists(candidate)) return candidate;
    if (dirname(current) === current) return undefined;
  }
}

function applyFile(config: Parsed, file: string): void {
  let table: Record<string, unknown>;
  try {
    table = parseToml(Deno.readTextFileSync(file)) as Record<string, unknown>;
  } catch (error) {
    throw new UsageError(`cannot read ${file}: ${(error as Error).message}`, {
      hint: "fix the TOML syntax (see imgtool --help for the settings)",
    });
  }
  config.file = file;
  const base = dirname(file);
  const seen = new Set<string>();
  for (const setting of SETTINGS) {
    const value = lookup(table, setting.key);
    if (value === undefined) continue;
    seen.add(setting.key);
    setting.apply(config, fromToml(setting, value, `${file}: ${setting.key}`), base);
  }
  if (isTable(table.plugins)) {
    config.plugins = table.plugins as Record<string, Record<string, unknown>>;
    seen.add("plugins");
  }
  const unknown = leafKeys(table).filter((key) =>
    ![...seen].some((known) => key === known || key.startsWith(`${known}.`))
  );
  if (unknown.length > 0) {
    throw new UsageError(
      `${file}: unknown setting${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}`,
      {
        hint: `known settings: ${SETTINGS.map((s) => s.key).join(", ")}, plugins.<name>`,
      },
    );
  }
}

function lookup(table: Record<string, unknown>, key: string): unknown {
  let value: unknown = table;
  for (const part of key.split(".")) {
    if (!isTable(value)) return undefined;
    value = value[part];
  }
  return value;
}

function leafKeys(table: Record<string, unknown>, prefix = ""): string[] {
  return Object.entries(table).flatMap(([key, value]) =>
    isTable(value) && !["refs", "files"].includes(key)
      ? leafKeys(value, `${prefix}${key}.`)
      : [`${prefix}${key}`]
  );
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function fromToml(setting: Setting, value: unknown, where: string): unknown {
  const bad = (expected: string) =>
    new UsageError(`${where}: expected ${expected}, got ${JSON.stringify(value)}`);
  switch (setting.type) {
    case "string":
      if (typeof value !== "string") throw bad("a string");
      return value;
    case "boolean":
      if (typeof value !== "boolean") throw bad("true or false");
      return value;
    case "list":
      if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
        throw bad("a list of strings");
      }
      return value;
    case "table":
      if (!isTable(value) || !Object.values(value).every((v) => typeof v === "string")) {
        throw bad("a table of strings");
      }
      return { ...value };
    case "platforms":
      return parsePlatforms(Array.isArray(value) ? value : [value], where);
    case "python":
      // A bare TOML number would read 3.10 as 3.1: only strings and [major, minor] pairs.
      if (typeof value === "number") throw bad(`a string such as "3.12" (quote it)`);
      return parsePythonVersion(Array.isArray(value) ? value.join(".") : String(value), where);
    case "installer":
      return parseInstaller(value, where);
  }
}

function fromText(setting: Setting, raw: string, where: string): unknown {
  switch (setting.type) {
    case "string":
      return raw;
    case "boolean":
      if (!["true", "false", "1", "0"].includes(raw)) {
        throw new UsageError(`${where}: expected true or false, got ${JSON.stringify(raw)}`);
      }
      return raw === "true" || raw === "1";
    case "list":
      return raw.split(",").map((item) => item.trim()).filter(Boolean);
    case "table":
      return Object.fromEntries(
        raw.split(",").map((pair) => {
          const at = pair.indexOf("=");
          if (at < 1) {
            throw new UsageError(
              `${where}: expected name=value pairs, got ${JSON.stringify(pair)}`,
            );
          }
          return [pair.slice(0, at).trim(), pair.slice(at + 1).trim()];
        }),
      );
    case "platforms":
      return parsePlatforms(raw.split(","), where);
    case "python":
      return parsePythonVersion(raw, where);
    case "installer":
      return parseInstaller(raw, where);
  }
}

const PLATFORMS: readonly Platform[] = ["linux/amd64", "linux/arm64"];

/**
 * Check a list of platform names.
 *
 * @example
 * ```ts
 * import { parsePlatforms } from "imgtool";
 * console.log(parsePlatforms(["linux/arm64"], "--platform")); // ["linux/arm64"]
 * ```
 */
export function parsePlatforms(values: readonly unknown[], where: string): Platform[] {
  const platforms = values.map((value) => typeof value === "string" ? value.trim() : value);
  for (const platform of platforms) {
    if (!PLATFORMS.includes(platform as Platform)) {
      throw new UsageError(`${where}: unknown platform ${JSON.stringify(platform)}`, {
        hint: `use ${PLATFORMS.join(" or ")}`,
      });
    }
  }
  if (platforms.length === 0) throw new UsageError(`${where}: no platform given`);
  return [...new Set(platforms as Platform[])];
}

function parsePythonVersion(raw: string, where: string): PythonVersion {
  const match = /^(\d+)\.(\d+)$/.exec(raw.trim());
  if (!match) {
    throw new UsageError(
      `${where}: expected a Python version like 3.12, got ${JSON.stringify(raw)}`,
    );
  }
  return [Number(match[1]), Number(match[2])];
}

function parseInstaller(value: unknown, where: string): Installer {
  if (value !== "uv" && value !== "pip") {
    throw new UsageError(`${where}: expected "uv" or "pip", got ${JSON.stringify(value)}`);
  }
  return value;
}

// The configuration that `Image.uri` reads. The CLI sets it before it imports a spec; a
// program that imports imgtool directly gets the file found from its working directory.
let active: Config | undefined;

/**
 * The configuration in effect for `uri` and `identifier`.
 *
 * @example
 * ```ts
 * import { activeConfig } from "imgtool";
 * console.log(activeConfig().builder);
 * ```
 */
export function activeConfig(): Config {
  active ??= loadConfig({ startDir: safeCwd() });
  return active;
}

/**
 * Put a configuration in effect for `uri` and `identifier` (the CLI does this).
 *
 * @example
 * ```ts
 * import { defaultConfig, setActiveConfig } from "imgtool";
 * setActiveConfig(defaultConfig());
 * ```
 */
export function setActiveConfig(config: Config): void {
  active = config;
}

function safeCwd(): string {
  try {
    return Deno.cwd();
  } catch {
    return "/";
  }
}
