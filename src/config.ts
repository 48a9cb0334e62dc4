/**
 * Configuration: `imgtool.toml` (found next to the spec or above it, up to the project
 * boundary), overridden by `IMGTOOL_*` environment variables, overridden by command-line
 * flags.
 *
 * Every setting is declared once in {@link SETTINGS}, with its TOML key and its variable;
 * reading, precedence, type checks and `imgtool --help` all come from that one table.
 *
 * Configuration decides which programs imgtool runs (`[docker] client`) and what goes into
 * Dockerfiles, so only a file the user could have written counts:
 * - It is looked for from the spec's folder up to {@link projectBoundary} (the git work
 *   tree, else the home folder, else the spec's folder alone), never in a shared folder
 *   above such as /tmp.
 * - The file found (or named by `IMGTOOL_CONFIG`) is refused, as ssh's StrictModes refuses
 *   an `authorized_keys`, when it belongs to another user (root's files are accepted, as
 *   ssh accepts them: root could change anything anyway), when group or others may write
 *   it, or when its folder belongs to another user (root aside) or lets group or others
 *   replace it (a sticky folder such as /tmp does not). Only the folder holding the file
 *   is judged, not every folder above it as ssh does. It must be a regular file of at most
 *   1 MiB. A refused file is an error, never silently skipped. Where the user's id cannot
 *   be learnt without a permission prompt (a spec run by hand without `--allow-sys`), only
 *   the modes are checked.
 * - No value may hold a control character (U+0000 to U+001F, U+007F): values end up in
 *   Dockerfile text, where a line break starts a new instruction.
 *
 * @module
 */

import { parse as parseToml } from "smol-toml";
import { currentUid } from "./cache_dir.ts";
import { dirname, isAbsolute, join, resolve } from "./path.ts";
import { UsageError } from "./errors.ts";
import type { Platform, PythonVersion } from "./plugin.ts";
import { controlCharacterProblem } from "./text_safety.ts";

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
  /**
   * Whether `build --push` appends the layers at the end of an image that only add files and
   * settings through the registry, without the engine (default true; `--no-append` for one run).
   */
  readonly append: boolean;
  /**
   * Folders outside the project that paths named inside dependency files (requirements
   * `-e`/`file:` lines, uv script headers, pyproject path sources) may point into.
   */
  readonly allowedPaths: readonly string[];
  /** Seconds one registry request may take (each retry again); default 30. */
  readonly registryTimeout: number;
  /**
   * Extra tags `build --push` points at each image once its content tag is in the registry
   * (`latest`, `stable`); `build --tag` replaces them. Absent unless set.
   */
  readonly tags?: readonly string[];
  /** Each plugin's own table, `[plugins.<name>]`. */
  readonly plugins: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /**
   * A pool of engines to build on (`[[builders]]` entries), in the file's order; absent
   * without any. `build` spreads its work over them (`src/pool.ts`).
   */
  readonly builders?: readonly BuilderEntry[];
}

/**
 * One engine of the pool of builders: a `[[builders]]` entry of imgtool.toml. Only the file
 * sets them (no variable or flag); `--builder NAME` picks one of them by its name.
 *
 * @example
 * ```ts
 * import { type BuilderEntry, loadConfig } from "imgtool";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(
 *   `${dir}/imgtool.toml`,
 *   `[[builders]]
 * name = "arm"
 * host = "ssh://builder@arm-box"
 * platforms = ["linux/arm64"]
 * jobs = 2
 * `,
 *   { mode: 0o644 },
 * );
 * const config = loadConfig({ startDir: dir, env: { IMGTOOL_CONFIG: `${dir}/imgtool.toml` } });
 * const [arm]: readonly BuilderEntry[] = config.builders ?? [];
 * console.log(arm.name, arm.plugin, arm.platforms, arm.jobs); // arm docker [ "linux/arm64" ] 2
 * ```
 */
export interface BuilderEntry {
  /** What progress lines, `--json` and `--builder NAME` call it; unique in the pool. */
  readonly name: string;
  /** The builder plugin that builds on it (default `docker`). */
  readonly plugin: string;
  /**
   * Where the engine listens: `unix:///path`, `tcp://host[:port]` or `ssh://[user@]host[:port]`;
   * absent: the plugin's own default engine (for docker, `[docker] host` or the local socket).
   */
  readonly host?: string;
  /** The platforms it builds natively (without emulation). */
  readonly platforms: readonly Platform[];
  /** How many builds it runs at once (default 1). */
  readonly jobs: number;
  /**
   * A folder holding `ca.pem`, `cert.pem` and `key.pem` for a `tcp://` engine with TLS, as
   * Docker's `DOCKER_CERT_PATH` (relative to the file's folder).
   */
  readonly certPath?: string;
  /**
   * Whether the engine's certificate is checked against `ca.pem`, as Docker's
   * `DOCKER_TLS_VERIFY` (default: true when `cert_path` is given).
   */
  readonly tlsVerify?: boolean;
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
    append: true,
    allowedPaths: [],
    registryTimeout: 30,
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
  readonly type:
    | "string"
    | "list"
    | "platforms"
    | "python"
    | "boolean"
    | "table"
    | "installer"
    | "seconds"
    | "image"
    | "tags";
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
    key: "allowed-paths",
    describe: "folders outside the project that dependency files may name (local packages)",
    type: "list",
    apply: (c, v, base) => c.allowedPaths = (v as string[]).map((path) => resolve(base, path)),
  },
  {
    key: "registry-timeout",
    describe: "seconds a registry request may take before it is retried (default 30)",
    type: "seconds",
    apply: (c, v) => c.registryTimeout = v as number,
  },
  {
    key: "tags",
    describe: "extra tags build --push points at each image (latest, ...); --tag replaces them",
    type: "tags",
    apply: (c, v) => c.tags = v as string[],
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
    type: "image",
    apply: (c, v) => c.images = { ...c.images, python: v as string },
  },
  {
    key: "images.uv",
    describe: "image uv is copied from",
    type: "image",
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
  {
    key: "append",
    describe: "append file and setting layers through the registry when pushing (no engine)",
    type: "boolean",
    apply: (c, v) => c.append = v as boolean,
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
  /**
   * The environment to read `IMGTOOL_*` from (default: the process's), and `HOME`, which
   * bounds the search for imgtool.toml ({@link projectBoundary}).
   */
  readonly env?: Readonly<Record<string, string>>;
  /** Flag values by setting key (e.g. `{ builder: "docker" }`). */
  readonly overrides?: ConfigOverrides;
}

/**
 * Load the configuration for a spec in `startDir`: file, then variables, then flags.
 * `IMGTOOL_CONFIG` names a file to use instead of searching (checked the same way). Throws a
 * {@link UsageError} for a file that is refused or malformed, and for a value holding a
 * control character, naming where it came from.
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
  let file: string | undefined;
  if (env.IMGTOOL_CONFIG) {
    refuseControlCharacters(env.IMGTOOL_CONFIG, "IMGTOOL_CONFIG", "fix or unset IMGTOOL_CONFIG");
    file = resolve(env.IMGTOOL_CONFIG);
  } else {
    file = findConfigFile(options.startDir, env.HOME);
  }
  if (file) applyFile(config, file, env.IMGTOOL_CONFIG ? "IMGTOOL_CONFIG" : undefined);
  for (const setting of SETTINGS) {
    const name = envName(setting.key);
    const raw = env[name];
    if (raw !== undefined && raw !== "") {
      refuseControlCharacters(raw, name, `fix or unset ${name}`);
      setting.apply(config, fromText(setting, raw, name), Deno.cwd());
    }
  }
  for (const [key, raw] of Object.entries(options.overrides ?? {})) {
    if (raw === undefined) continue;
    const setting = SETTINGS.find((s) => s.key === key);
    if (!setting) throw new Error(`internal: no setting ${key}`);
    refuseControlCharacters(raw, `--${key}`, `remove it from the value of --${key}`);
    setting.apply(config, fromText(setting, raw, `--${key}`), Deno.cwd());
  }
  return Object.freeze(config);
}

/**
 * The folder above which imgtool.toml is not looked for, for a spec in `dir`: the root of
 * its git work tree (the nearest folder holding `.git`, a folder or a file, of the user's or
 * root's: a `.git` planted by another user in a shared folder marks no project, as git
 * refuses such repositories too), but never above the home
 * folder `home`; without a work tree, `home` when `dir` is inside it; else `dir` itself. A
 * `home` of `/` or a relative one counts as none.
 *
 * @example
 * ```ts
 * import { projectBoundary } from "./config.ts";
 * const home = Deno.makeTempDirSync();
 * Deno.mkdirSync(`${home}/repo/.git`, { recursive: true });
 * Deno.mkdirSync(`${home}/repo/app/images`, { recursive: true });
 * Deno.mkdirSync(`${home}/loose/images`, { recursive: true });
 * console.log(projectBoundary(`${home}/repo/app/images`, home) === `${home}/repo`); // true
 * console.log(projectBoundary(`${home}/loose/images`, home) === home); // true
 * const loose = `${home}/loose/images`;
 * console.log(projectBoundary(loose, undefined) === loose); // true
 * ```
 */
export function projectBoundary(dir: string, home?: string): string {
  const start = resolve(dir);
  const homeDir = home && isAbsolute(home) && resolve(home) !== "/"
    ? resolve(home).replace(/\/$/, "")
    : undefined;
  const underHome = homeDir !== undefined && isWithin(start, homeDir);
  const uid = currentUid();
  for (let current = start;; current = dirname(current)) {
    if (isOwnedWorkTree(join(current, ".git"), uid)) return current;
    if (underHome && current === homeDir) return homeDir;
    if (dirname(current) === current) return start;
  }
}

/** Whether `path` is `folder` or inside it (both normalized, absolute). */
function isWithin(path: string, folder: string): boolean {
  return path === folder || path.startsWith(`${folder}/`);
}

/** Whether `dotGit` exists and is the user's or root's (a planted `.git` marks no project). */
function isOwnedWorkTree(dotGit: string, uid: number | null | undefined): boolean {
  try {
    const info = Deno.lstatSync(dotGit);
    return typeof uid !== "number" || info.uid === uid || info.uid === 0;
  } catch {
    return false;
  }
}

/**
 * The nearest imgtool.toml in `dir` or a folder above it, up to {@link projectBoundary}
 * (with `home` the user's home folder). Anything by that name counts (a folder or a link
 * too): reading it then says what is wrong with it, rather than looking further up.
 *
 * @example
 * ```ts
 * import { findConfigFile } from "./config.ts";
 * const home = Deno.makeTempDirSync();
 * Deno.mkdirSync(`${home}/project/images`, { recursive: true });
 * Deno.writeTextFileSync(`${home}/project/imgtool.toml`, "");
 * const found = findConfigFile(`${home}/project/images`, home);
 * console.log(found === `${home}/project/imgtool.toml`); // true
 * // Without a home folder, only the spec's own folder is searched:
 * console.log(findConfigFile(`${home}/project/images`, undefined)); // undefined
 * ```
 */
export function findConfigFile(dir: string, home?: string): string | undefined {
  const boundary = projectBoundary(dir, home);
  for (let current = resolve(dir);; current = dirname(current)) {
    const candidate = join(current, "imgtool.toml");
    try {
      Deno.lstatSync(candidate);
      return candidate;
    } catch {
      // Not here.
    }
    if (current === boundary || dirname(current) === current) return undefined;
  }
}

/** The largest configuration file read: one is a few kilobytes. */
const MAX_CONFIG_BYTES = 1024 * 1024;

/**
 * The text of the configuration file `file`, once it is shown to be one only the user (or
 * root) could have written (see the module's documentation); `namedBy` is the variable
 * that named it, if one did. Throws a {@link UsageError} saying why and how to fix it.
 *
 * @example
 * ```ts
 * import { readConfigText } from "./config.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/imgtool.toml`, 'registry = "r"\n', { mode: 0o644 });
 * console.log(readConfigText(`${dir}/imgtool.toml`)); // registry = "r"
 * Deno.chmodSync(`${dir}/imgtool.toml`, 0o666);
 * try {
 *   readConfigText(`${dir}/imgtool.toml`);
 * } catch (error) {
 *   // ...: it is writable by group and others (mode 0666)
 *   console.log((error as Error).message);
 * }
 * ```
 */
export function readConfigText(file: string, namedBy?: string): string {
  const refuse = (why: string, hint: string) =>
    new UsageError(`refusing the configuration file ${file}: ${why}`, { hint });
  const elsewhere = namedBy
    ? `or point ${namedBy} at another file`
    : "or move it away (imgtool then uses its defaults)";
  let link: Deno.FileInfo;
  try {
    link = Deno.lstatSync(file);
  } catch {
    throw namedBy
      ? new UsageError(`${namedBy} names ${file}, which does not exist`, {
        hint: `fix the path, or unset ${namedBy}`,
      })
      : refuse("it cannot be read", "check that it exists and is readable");
  }
  const uid = currentUid();
  // The folder holding the name, then (for a link) the file and the folder it leads to.
  checkFolder(dirname(file), uid, refuse, elsewhere);
  let real = file;
  if (link.isSymlink) {
    try {
      real = Deno.realPathSync(file);
    } catch {
      throw refuse("it is a link that leads nowhere", `fix the link, ${elsewhere}`);
    }
    checkFolder(dirname(real), uid, refuse, elsewhere);
  }
  const cannotRead = (error: unknown) =>
    error instanceof UsageError ? error : refuse(
      `it cannot be read (${(error as Error).message})`,
      `check its permissions, ${elsewhere}`,
    );
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(real);
  } catch (error) {
    throw cannotRead(error);
  }
  // Never opened otherwise: opening a FIFO would wait for a writer, a device never ends.
  if (!info.isFile) {
    throw refuse("it is not a regular file", `make it a file of settings, ${elsewhere}`);
  }
  checkOwnerAndMode(real, info, uid, refuse, elsewhere);
  let handle: Deno.FsFile;
  try {
    handle = Deno.openSync(real, { read: true });
  } catch (error) {
    throw cannotRead(error);
  }
  try {
    const opened = handle.statSync();
    if (!opened.isFile || opened.ino !== info.ino || opened.dev !== info.dev) {
      throw refuse("it was replaced while being read", "run imgtool again");
    }
    const buffer = new Uint8Array(MAX_CONFIG_BYTES + 1);
    let length = 0;
    while (length < buffer.length) {
      const read = handle.readSync(buffer.subarray(length));
      if (read === null) break;
      length += read;
    }
    if (length > MAX_CONFIG_BYTES) {
      throw refuse(
        "it is larger than 1 MiB, which no configuration needs",
        `name the right file, ${elsewhere}`,
      );
    }
    return new TextDecoder().decode(buffer.subarray(0, length));
  } catch (error) {
    throw cannotRead(error);
  } finally {
    handle.close();
  }
}

type Refuse = (why: string, hint: string) => UsageError;

/** The file must be the user's or root's, and writable by its owner alone. */
function checkOwnerAndMode(
  file: string,
  info: Deno.FileInfo,
  uid: number | null | undefined,
  refuse: Refuse,
  elsewhere: string,
): void {
  if (typeof uid === "number" && info.uid !== null && info.uid !== uid && info.uid !== 0) {
    throw refuse(
      `it belongs to another user (uid ${info.uid}; you are uid ${uid}), ` +
        "who could make imgtool run what they like",
      `if you trust it, take it over (chown ${uid} ${file}), ${elsewhere}`,
    );
  }
  const mode = info.mode ?? 0;
  if ((mode & 0o022) !== 0) {
    throw refuse(
      `it is writable by ${writers(mode)} (mode ${octal(mode)})`,
      `chmod go-w ${file}`,
    );
  }
}

/** The folder must be the user's or root's, and not let others replace the file. */
function checkFolder(
  folder: string,
  uid: number | null | undefined,
  refuse: Refuse,
  elsewhere: string,
): void {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(folder);
  } catch {
    return; // Reading the file then says what is wrong.
  }
  if (typeof uid === "number" && info.uid !== null && info.uid !== uid && info.uid !== 0) {
    throw refuse(
      `its folder ${folder} belongs to another user (uid ${info.uid}; you are uid ${uid}), ` +
        "who could replace it",
      `keep the configuration in a folder of yours, ${elsewhere}`,
    );
  }
  const mode = info.mode ?? 0;
  if ((mode & 0o022) !== 0 && (mode & 0o1000) === 0) {
    throw refuse(
      `its folder ${folder} is writable by ${writers(mode)} (mode ${
        octal(mode)
      }), who could replace it`,
      `chmod go-w ${folder}, ${elsewhere}`,
    );
  }
}

function writers(mode: number): string {
  const group = (mode & 0o020) !== 0;
  const others = (mode & 0o002) !== 0;
  return group && others ? "group and others" : group ? "its group" : "others";
}

function octal(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, "0")}`;
}

/**
 * Throw a {@link UsageError} if `value` holds a control character: `what` names where the
 * value came from (`IMGTOOL_REGISTRY`, `--registry`, `/p/imgtool.toml: [images] python`),
 * `hint` how to fix it.
 */
function refuseControlCharacters(value: string, what: string, hint: string): void {
  const problem = controlCharacterProblem(value, what);
  if (problem) throw new UsageError(problem.message, { hint });
}

/**
 * Refuse every string of a parsed imgtool.toml, keys too, at any depth, that holds a
 * control character, naming it as the file writes it (`[images] python`, `[debian]
 * packages[1]`, `registry`).
 */
function refuseControlCharactersInTable(table: Record<string, unknown>, file: string): void {
  const hint = (name: string) =>
    `edit ${file}: remove it from ${name} (TOML escapes such as \\n and \\t count too)`;
  const visit = (value: unknown, tables: readonly string[], key: string, depth: number) => {
    const name = tables.length === 0 ? key : `[${tables.join(".")}] ${key}`;
    if (typeof value === "string") {
      refuseControlCharacters(value, `${file}: ${name}`, hint(name));
    } else if (Array.isArray(value)) {
      value.forEach((item, index) => visit(item, tables, `${key}[${index}]`, depth + 1));
    } else if (isTable(value) && depth < 64) {
      const inner = key === "" ? tables : [...tables, key];
      for (const [childKey, child] of Object.entries(value)) {
        const shown = tomlKey(childKey);
        const where = inner.length === 0 ? "the top level" : `[${inner.join(".")}]`;
        refuseControlCharacters(
          childKey,
          `${file}: the key ${JSON.stringify(childKey)} in ${where}`,
          hint(`the key in ${where}`),
        );
        visit(child, inner, shown, depth + 1);
      }
    }
  };
  visit(table, [], "", 0);
}

/** A key as TOML writes it: bare when it can be, else quoted. */
function tomlKey(key: string): string {
  return /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
}

function applyFile(config: Parsed, file: string, namedBy?: string): void {
  const text = readConfigText(file, namedBy);
  let table: Record<string, unknown>;
  try {
    table = parseToml(text) as Record<string, unknown>;
  } catch (error) {
    throw new UsageError(`cannot read ${file}: ${(error as Error).message}`, {
      hint: "fix the TOML syntax (see imgtool --help for the settings)",
    });
  }
  refuseControlCharactersInTable(table, file);
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
  if (table.builders !== undefined) {
    config.builders = parseBuilders(table.builders, file, base);
    seen.add("builders");
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

/** The keys of a `[[builders]]` entry, as the file writes them. */
const BUILDER_KEYS = ["name", "plugin", "host", "platforms", "jobs", "cert_path", "tls_verify"];

/** The most builds one engine is given at once: more is a typo, not a machine. */
const MAX_JOBS = 256;

/**
 * Read the `[[builders]]` entries of `file` (relative paths against `base`): every problem is
 * a {@link UsageError} naming the entry and the key. Which plugins exist is checked when a
 * build loads them, and whether a `cert_path` folder holds its files when a build uses it:
 * commands that build nothing (`uri`, `status`) do not depend on either.
 *
 * @example
 * ```ts
 * import { parseBuilders } from "./config.ts";
 * const entries = parseBuilders(
 *   [{ name: "a", host: "tcp://10.0.0.5:2376", platforms: ["linux/amd64"], cert_path: "certs" }],
 *   "/p/imgtool.toml",
 *   "/p",
 * );
 * console.log(entries[0].certPath, entries[0].tlsVerify); // /p/certs true
 * try {
 *   parseBuilders([{ name: "a", host: "http://x", platforms: ["linux/amd64"] }], "/p/imgtool.toml", "/p");
 * } catch (error) {
 *   // /p/imgtool.toml: [[builders]] "a": host "http://x" is not an engine address
 *   console.log((error as Error).message);
 * }
 * ```
 */
export function parseBuilders(value: unknown, file: string, base: string): BuilderEntry[] {
  if (!Array.isArray(value) || !value.every(isTable)) {
    throw new UsageError(`${file}: builders must be [[builders]] entries (an array of tables)`, {
      hint: 'write each engine as its own [[builders]] table: name = "...", platforms = [...]',
    });
  }
  const entries: BuilderEntry[] = [];
  const names = new Map<string, number>();
  value.forEach((table, index) => {
    const entry = parseBuilderEntry(table as Record<string, unknown>, index, file, base);
    const earlier = names.get(entry.name);
    if (earlier !== undefined) {
      throw new UsageError(
        `${file}: [[builders]] entries ${earlier + 1} and ${index + 1} are both named ${
          JSON.stringify(entry.name)
        }`,
        { hint: "give each engine of the pool a name of its own" },
      );
    }
    names.set(entry.name, index);
    entries.push(entry);
  });
  return entries;
}

/** A pool entry's name: what progress lines print and `--builder` takes. */
const ENGINE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** A builder plugin's name, as `defineBuilder` checks it. */
const PLUGIN_NAME = /^[a-z][a-z0-9_-]*$/;
const HOST_NAME = String.raw`(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)`;
const PORT = String.raw`(?::[0-9]{1,5})?`;
/** Engine addresses, as Docker's `-H` takes them. */
const ENGINE_HOSTS: Readonly<Record<string, RegExp>> = {
  unix: /^unix:\/\/\/[^\s]*$/,
  tcp: new RegExp(`^tcp://${HOST_NAME}${PORT}/?$`),
  ssh: new RegExp(`^ssh://(?:[A-Za-z0-9._][A-Za-z0-9._-]*@)?${HOST_NAME}${PORT}$`),
};

function parseBuilderEntry(
  table: Record<string, unknown>,
  index: number,
  file: string,
  base: string,
): BuilderEntry {
  const named = typeof table.name === "string" && table.name !== "";
  const where = named
    ? `${file}: [[builders]] ${JSON.stringify(table.name)}`
    : `${file}: [[builders]] entry ${index + 1}`;
  const problem = (message: string, hint: string) =>
    new UsageError(`${where}: ${message}`, { hint });
  const unknown = Object.keys(table).filter((key) => !BUILDER_KEYS.includes(key));
  if (unknown.length > 0) {
    throw problem(
      `unknown key${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}`,
      `the keys of a [[builders]] entry: ${BUILDER_KEYS.join(", ")}`,
    );
  }
  const string = (key: string): string | undefined => {
    const found = table[key];
    if (found === undefined) return undefined;
    if (typeof found !== "string") {
      throw problem(
        `${key} must be a string, got ${JSON.stringify(found)}`,
        `quote it: ${key} = "..."`,
      );
    }
    return found;
  };
  const name = string("name");
  if (name === undefined || name === "") {
    throw problem("has no name", 'give it one: name = "engine-a" (what progress lines show)');
  }
  if (!ENGINE_NAME.test(name)) {
    throw problem(
      `name ${JSON.stringify(name)} is not a valid engine name`,
      'use letters, digits, ".", "_" and "-", starting with a letter or digit, at most 63',
    );
  }
  const plugin = string("plugin") ?? "docker";
  if (!PLUGIN_NAME.test(plugin)) {
    throw problem(
      `plugin ${JSON.stringify(plugin)} is not a builder plugin name`,
      'name a builder plugin, e.g. plugin = "docker"',
    );
  }
  const host = string("host");
  const scheme = host === undefined ? undefined : /^([a-z]+):\/\//.exec(host)?.[1];
  if (host !== undefined && (scheme === undefined || !ENGINE_HOSTS[scheme]?.test(host))) {
    throw problem(
      `host ${JSON.stringify(host)} is not an engine address`,
      "use unix:///path/to/socket, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]",
    );
  }
  if (table.platforms === undefined) {
    throw problem(
      "has no platforms",
      'say which platforms it builds natively: platforms = ["linux/amd64"]',
    );
  }
  const platforms = parsePlatforms(
    Array.isArray(table.platforms) ? table.platforms : [table.platforms],
    `${where}: platforms`,
  );
  const jobs = table.jobs ?? 1;
  if (typeof jobs !== "number" || !Number.isInteger(jobs) || jobs < 1 || jobs > MAX_JOBS) {
    throw problem(
      `jobs must be a whole number from 1 to ${MAX_JOBS}, got ${JSON.stringify(jobs)}`,
      "jobs is how many builds the engine runs at once, e.g. jobs = 2",
    );
  }
  const certPath = string("cert_path");
  const tlsVerify = table.tls_verify;
  if (tlsVerify !== undefined && typeof tlsVerify !== "boolean") {
    throw problem(
      `tls_verify must be true or false, got ${JSON.stringify(tlsVerify)}`,
      "tls_verify = true",
    );
  }
  if ((certPath !== undefined || tlsVerify !== undefined) && scheme !== "tcp") {
    throw problem(
      `${certPath !== undefined ? "cert_path" : "tls_verify"} applies to tcp:// engines only`,
      "remove it, or point host at the engine's tcp:// address",
    );
  }
  return {
    name,
    plugin,
    ...(host === undefined ? {} : { host }),
    platforms,
    jobs,
    ...(certPath === undefined ? {} : { certPath: resolve(base, certPath) }),
    ...(tlsVerify === undefined && certPath === undefined ? {} : { tlsVerify: tlsVerify ?? true }),
  };
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
    case "seconds":
      return parseSeconds(value, where);
    case "image":
      if (typeof value !== "string") throw bad("an image reference (a string)");
      return parseImage(value, where);
    case "tags":
      if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
        throw bad(`a list of tags, such as ["latest"]`);
      }
      return parseTags(value, where);
  }
}

// An image reference as Docker reads one (`{major}` and `{minor}` stand for numbers): it goes
// into FROM and COPY --from as it is, where a space or a leading - would start something else.
function parseImage(value: string, where: string): string {
  const reference = value.replaceAll("{major}", "3").replaceAll("{minor}", "12");
  if (!/^[A-Za-z0-9][A-Za-z0-9._\/:@-]*$/.test(reference)) {
    throw new UsageError(`${where}: ${JSON.stringify(value)} is not an image reference`, {
      hint: "use [registry/]name[:tag][@sha256:digest], e.g. registry.internal/uv:0.8.13",
    });
  }
  return value;
}

// A request timeout: positive, at most a day (the registry client's own bounds).
function parseSeconds(value: unknown, where: string): number {
  const seconds = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds <= 0 || seconds > 86400) {
    throw new UsageError(
      `${where}: expected a number of seconds above 0 and at most 86400, got ${
        JSON.stringify(value)
      }`,
    );
  }
  return seconds;
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
    case "seconds":
      return parseSeconds(raw, where);
    case "image":
      return parseImage(raw, where);
    case "tags":
      return parseTags(raw.split(",").map((item) => item.trim()).filter(Boolean), where);
  }
}

// The OCI distribution spec's tag grammar.
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/**
 * Check extra tag names (`build --tag`, the `tags` setting) against the OCI distribution
 * spec's grammar, `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`; returns them without repeats. `where`
 * names where they came from in the error.
 *
 * @example
 * ```ts
 * import { parseTags } from "./config.ts";
 * console.log(parseTags(["latest", "v1.2", "latest"], "--tag")); // [ "latest", "v1.2" ]
 * try {
 *   parseTags(["-rc"], "--tag");
 * } catch (error) {
 *   console.log((error as Error).message); // --tag: "-rc" is not a valid tag
 * }
 * ```
 */
export function parseTags(values: readonly string[], where: string): string[] {
  for (const tag of values) {
    if (!TAG.test(tag)) {
      throw new UsageError(`${where}: ${JSON.stringify(tag)} is not a valid tag`, {
        hint: 'a tag is letters, digits, "_", "." and "-", at most 128 characters, not ' +
          'starting with "." or "-" (e.g. latest, v1.2.0, release_3)',
      });
    }
  }
  return [...new Set(values)];
}

const PLATFORMS: readonly Platform[] = ["linux/amd64", "linux/arm64"];

/**
 * Check a list of platform names.
 *
 * @example
 * ```ts
 * import { parsePlatforms } from "imgtool";
 * console.log(parsePlatforms(["linux/arm64"], "--platform")); // [ "linux/arm64" ]
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
