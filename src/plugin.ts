/**
 * The layer plugin contract. Every layer type imgtool knows (apt, pip, source folder, ...)
 * is written against this interface, and so are users' own plugins: the core only ever
 * calls these hooks and never asks which plugin it is talking to.
 *
 * A plugin is a plain object with a `name` and hooks for the phases it takes part in.
 * Hooks return data; none of them writes files or starts processes.
 *
 * | phase     | hook          | runs                                                  |
 * |-----------|---------------|-------------------------------------------------------|
 * | plan      | `nextState`   | once per layer, in chain order, to track the image   |
 * | plan      | `ignoreRules` | once per layer, to collect the image's ignore rules  |
 * | validate  | `validate`    | before anything is built, also by `imgtool validate` |
 * | validate  | `secrets`     | to learn which secrets the layer's steps need        |
 * | identify  | `identify`    | to compute the content identity (the tag)            |
 * | render    | `render`      | to write the Dockerfile and the build context         |
 *
 * @module
 */

import type { Config } from "./config.ts";
import type { Diagnostic } from "./errors.ts";
import type { Secret } from "./secret.ts";
import { callerModule, callerOutside, registerPluginModule } from "./callsite.ts";

/**
 * A target platform, `os/arch[/variant]`.
 *
 * @example
 * ```ts
 * import { Image, type Platform } from "imgtool";
 * const arm: Platform = "linux/arm64";
 * const image = Image.fromDebianBase({ name: "edge-agent", platform: arm });
 * console.log(image.spec.platforms); // [ "linux/arm64" ]
 * ```
 */
export type Platform = "linux/amd64" | "linux/arm64";

/**
 * A Python version as a `[major, minor]` pair.
 *
 * @example
 * ```ts
 * import { Image, type PythonVersion } from "imgtool";
 * const version: PythonVersion = [3, 11];
 * const image = Image.fromDebianBase({ name: "legacy", pythonVersion: version });
 * console.log(image.spec.pythonVersion?.join(".")); // 3.11
 * ```
 */
export type PythonVersion = readonly [number, number];

/**
 * The Python environment that later layers install packages into.
 *
 * @example
 * ```ts
 * import { definePlugin, type PythonEnv, run, shellQuote } from "imgtool";
 * export const pipInstall = definePlugin<{ readonly pkg: string }>({
 *   name: "pip_install",
 *   render(options, context) {
 *     const env: PythonEnv | undefined = context.state.python;
 *     const python = env?.python ?? "python3";
 *     const command = `${shellQuote(python)} -m pip install ${shellQuote(options.pkg)}`;
 *     return { instructions: [run(command)] };
 *   },
 * });
 * ```
 */
export interface PythonEnv {
  /** The interpreter's version. */
  readonly version: PythonVersion;
  /** The virtual environment, when the base made one (it is on `PATH`). */
  readonly venv?: string;
  /** The interpreter to install for. */
  readonly python: string;
}

/**
 * What the image looks like at a point in its chain: what the layers before a layer have
 * set up. Base layers start it; layers change it through {@link LayerPlugin.nextState}.
 *
 * @example
 * ```ts
 * import { definePlugin, dockerfileQuote, type ImageState } from "imgtool";
 * // Switch to an existing user: files later layers copy then belong to it.
 * export const switchUser = definePlugin<{ readonly user: string }>({
 *   name: "switch_user",
 *   nextState: (options): Partial<ImageState> => ({
 *     user: options.user,
 *     extra: { switch_user: options.user },
 *   }),
 *   render: (options) => ({ instructions: [`USER ${dockerfileQuote(options.user)}`] }),
 * });
 * ```
 */
export interface ImageState {
  /** The working directory, when a layer set one and it is known. */
  readonly workdir?: string;
  /**
   * The user the image runs as, when a layer switched to one (`USER`); copied files are
   * owned by it (`COPY --chown`).
   */
  readonly user?: string;
  /** The Python environment, when the base set one up. */
  readonly python?: PythonEnv;
  /** Whether `uv` is on `PATH` in the image. */
  readonly hasUv?: boolean;
  /** Facts custom plugins keep for each other, by key. Prefix keys with your plugin name. */
  readonly extra: Readonly<Record<string, unknown>>;
}

/**
 * The image-level facts of the image a layer belongs to.
 *
 * @example
 * ```ts
 * import { definePlugin, type ImageInfo } from "imgtool";
 * export const cudaRuntime = definePlugin<Record<string, never>>({
 *   name: "cuda_runtime",
 *   validate(_options, context) {
 *     const info: ImageInfo = context.image;
 *     if (info.platforms.every((platform) => platform === "linux/amd64")) return [];
 *     return [{ message: `image "${info.exportName}" must be built for linux/amd64 only` }];
 *   },
 *   render: () => ({ instructions: ["ENV NVIDIA_VISIBLE_DEVICES=all"] }),
 * });
 * ```
 */
export interface ImageInfo {
  /** The export that holds the image in the spec (`default` for the default export). */
  readonly exportName: string;
  /** The image name, if set. */
  readonly name?: string;
  /** The registry, if set. */
  readonly registry?: string;
  /** The platforms the image is built for. */
  readonly platforms: readonly Platform[];
  /** The image's Python version. */
  readonly pythonVersion: PythonVersion;
  /** A base image that replaces the base layer's default (set by `clone({ baseImage })`). */
  readonly baseImage?: string;
}

/**
 * Where a layer was made: the method the user called, and the spec line that called it.
 *
 * @example
 * ```ts
 * import { Image, type LayerOrigin } from "imgtool";
 * const image = Image.fromDebianBase().withAptPackages("git");
 * const origin: LayerOrigin = image.layers[1].origin;
 * // In a spec, `file` and `line` name the call, e.g. /work/app/spec.ts:4.
 * const where = origin.file ? `${origin.file}:${origin.line}` : "an unknown line";
 * console.log(`${origin.method} at ${where}; relative paths resolve in ${origin.dir}`);
 * ```
 */
export interface LayerOrigin {
  /** The method, as users know it: `withAptPackages`, `Image.fromDebianBase`, ... */
  readonly method: string;
  /** The calling file, as a path. */
  readonly file?: string;
  /** The calling line. */
  readonly line?: number;
  /** The folder relative paths of this layer resolve against: the calling file's folder. */
  readonly dir: string;
}

/**
 * Which part of an image's chain a plugin's layers play.
 *
 * @example
 * ```ts
 * import { Image, type LayerKind } from "imgtool";
 * const image = Image.fromDebianBase().withWorkdir("/app");
 * const kinds: LayerKind[] = image.layers.map((layer) => layer.plugin.kind ?? "layer");
 * console.log(kinds); // [ "base", "layer" ]
 * ```
 */
export type LayerKind = "base" | "layer";

/**
 * One step of an image: a plugin, the options the user gave, and where the user gave them.
 * Layers are made by {@link PluginDefinition.layer}; they are frozen values.
 *
 * @example
 * ```ts
 * import { definePlugin, Image, type Layer } from "imgtool";
 * interface Options { readonly text: string }
 * const plugin = definePlugin<Options>({
 *   name: "banner",
 *   render: (options) => ({ instructions: [`LABEL banner=${JSON.stringify(options.text)}`] }),
 * });
 * // The factory users call: `.withLayer(banner("hello"))`.
 * export const banner = (text: string): Layer<Options> => plugin.layer({ text }, "banner");
 * const image = Image.fromDebianBase().withLayer(banner("hello"));
 * console.log(image.layers[1].origin.method, image.layers[1].options); // banner { text: "hello" }
 * ```
 */
export interface Layer<O = unknown> {
  /** The plugin that validates, identifies and renders this layer. */
  readonly plugin: LayerPlugin<O>;
  /** The options, as the user gave them. */
  readonly options: Readonly<O>;
  /** The method and spec line the layer came from. */
  readonly origin: LayerOrigin;
}

/**
 * What every hook can see.
 *
 * @example
 * ```ts
 * import { definePlugin, dockerfileQuote, type PluginContext } from "imgtool";
 * // Every hook's context is a PluginContext: `root` comes from `[plugins.app_home]`.
 * const home = (app: string, context: PluginContext) =>
 *   `${typeof context.settings.root === "string" ? context.settings.root : "/opt"}/${app}`;
 * export const appHome = definePlugin<{ readonly app: string }>({
 *   name: "app_home",
 *   nextState: (options, context) => ({ workdir: home(options.app, context) }),
 *   identify: (options, context) => ({ home: home(options.app, context) }),
 *   render: (options, context) => ({
 *     instructions: [`WORKDIR ${dockerfileQuote(home(options.app, context))}`],
 *   }),
 * });
 * ```
 */
export interface PluginContext {
  /** The image the layer belongs to. */
  readonly image: ImageInfo;
  /** The resolved configuration (imgtool.toml, `IMGTOOL_*`, flags). */
  readonly config: Readonly<Config>;
  /** This plugin's own table from imgtool.toml (`[plugins.<name>]`), or `{}`. */
  readonly settings: Readonly<Record<string, unknown>>;
  /** The state of the image before this layer. */
  readonly state: ImageState;
  /** The layer's place in the chain: 0 for the base. */
  readonly index: number;
  /** Resolve a path the user gave against the folder of the spec line that made the layer. */
  resolve(path: string): string;
  /**
   * The project the spec belongs to (its git work tree, else the spec's folder). Paths named
   * inside dependency files must lie in it, or in a folder configuration allows: check them
   * with {@link ValidateContext.outsideProject}.
   */
  readonly projectRoot: string;
  /**
   * `reference` as the spec folder's `imgtool.lock` pins it: `name:tag@sha256:…` (the
   * readable name kept; the digest wins) when the lock has an entry for it, else `reference`
   * unchanged (also when it is pinned by digest already). Write every image reference the
   * layer puts into the Dockerfile (`FROM`, `COPY --from`, `RUN --mount=...,from=`) as
   * `context.pinned(reference)`: the core notes each call, so that the locked digest counts
   * in the layer's identity and `imgtool lock` learns which images the spec uses.
   * Synchronous and offline: it reads the lock, never a registry.
   *
   * @example
   * ```ts
   * import { copy, definePlugin } from "imgtool";
   * // Copy a static binary out of a tool's image, at the digest the lock holds for it.
   * export const jqBinary = definePlugin<{ readonly version: string }>({
   *   name: "jq_binary",
   *   render: (options, context) => ({
   *     instructions: [
   *       copy(["/jq"], "/usr/local/bin/jq", {
   *         from: context.pinned(`ghcr.io/jqlang/jq:${options.version}`),
   *       }),
   *     ],
   *   }),
   * });
   * ```
   */
  pinned(reference: string): string;
}

/**
 * A reference to a file whose content and mode count in the identity.
 *
 * @example
 * ```ts
 * import { copy, definePlugin, type FileRef } from "imgtool";
 * export const appConfig = definePlugin<{ readonly file: string }>({
 *   name: "app_config",
 *   // The file's content and mode count in the tag, not its path on this machine.
 *   identify: (options, context): { file: FileRef } => ({ file: context.file(options.file) }),
 *   render(options, context) {
 *     const target = `${context.contextDir}/app.toml`;
 *     return {
 *       instructions: [copy([target], "/etc/app/app.toml")],
 *       context: [{ kind: "file", source: context.resolve(options.file), target }],
 *     };
 *   },
 * });
 * ```
 */
export interface FileRef {
  /** Marks the value for the identity encoder. */
  readonly $ref: "file";
  /** The absolute path. */
  readonly path: string;
}

/**
 * A reference to a folder whose tree (names, modes, contents) counts in the identity.
 *
 * @example
 * ```ts
 * import { copy, definePlugin, type TreeRef } from "imgtool";
 * export const assets = definePlugin<{ readonly dir: string }>({
 *   name: "static_assets",
 *   // Every file under the folder, after the image's ignore rules, counts in the tag.
 *   identify: (options, context): { tree: TreeRef } => ({ tree: context.tree(options.dir) }),
 *   render(options, context) {
 *     const target = `${context.contextDir}/assets`;
 *     return {
 *       instructions: [copy([target], "/srv/assets")],
 *       context: [{ kind: "tree", source: context.resolve(options.dir), target }],
 *     };
 *   },
 * });
 * ```
 */
export interface TreeRef {
  /** Marks the value for the identity encoder. */
  readonly $ref: "tree";
  /** The absolute path. */
  readonly path: string;
}

/**
 * What `identify` sees: the plugin context, plus a way to name the files it reads.
 *
 * @example
 * ```ts
 * import { definePlugin, type IdentifyContext } from "imgtool";
 * // The lock file counts in the tag when there is one; otherwise the manifest does.
 * const dependencies = (options: { readonly dir: string }, context: IdentifyContext) =>
 *   context.isFile(`${options.dir}/package-lock.json`)
 *     ? context.file(`${options.dir}/package-lock.json`)
 *     : context.file(`${options.dir}/package.json`);
 * export const npmDeps = definePlugin<{ readonly dir: string }>({
 *   name: "npm_deps",
 *   identify: (options, context) => ({ dependencies: dependencies(options, context) }),
 *   render: () => ({ instructions: ["RUN npm ci"] }),
 * });
 * ```
 */
export interface IdentifyContext extends PluginContext {
  /** Stand for a file's content and mode in the contribution (a missing file counts as missing). */
  file(path: string): FileRef;
  /** Stand for a folder's whole tree, after the image's ignore rules. */
  tree(path: string): TreeRef;
  /** Read a small text file now (synchronously), or `undefined` if it cannot be read. */
  readText(path: string): string | undefined;
  /** Is there a file (not a folder) at this path? */
  isFile(path: string): boolean;
  /** Is there a folder at this path? */
  isDirectory(path: string): boolean;
}

/**
 * What `validate` sees.
 *
 * @example
 * ```ts
 * import { definePlugin, type ValidateContext } from "imgtool";
 * export const entrypoint = definePlugin<{ readonly script: string }>({
 *   name: "entrypoint_script",
 *   validate(options, context: ValidateContext) {
 *     if (!context.isFile(options.script)) return [{ message: `not found: ${options.script}` }];
 *     if (!context.isIgnored(options.script)) return [];
 *     return [{ message: `${options.script} is excluded by .dockerignore`, hint: "add a ! rule" }];
 *   },
 *   render: (options) => ({ instructions: [`ENTRYPOINT ${JSON.stringify([options.script])}`] }),
 * });
 * ```
 */
export interface ValidateContext extends IdentifyContext {
  /** Is this path excluded by the image's `.dockerignore` rules? */
  isIgnored(path: string): boolean;
  /**
   * The problem with a path that a file (not the spec) named, when it lies outside the
   * project and every folder `allowed-paths` allows, or `undefined`. `namedIn` says which
   * file named it and where (`requirements.txt line 3`).
   */
  outsideProject(path: string, namedIn: string): Diagnostic | undefined;
}

/**
 * What `render` sees.
 *
 * @example
 * ```ts
 * import { copy, definePlugin, type RenderContext } from "imgtool";
 * export const motdFile = definePlugin<{ readonly text: string }>({
 *   name: "motd_file",
 *   render(options, context: RenderContext) {
 *     const target = `${context.contextDir}/motd`;
 *     return {
 *       instructions: [copy([target], "/etc/motd")],
 *       context: [{ kind: "text", content: `${options.text}\n`, target }],
 *     };
 *   },
 * });
 * ```
 */
export interface RenderContext extends IdentifyContext {
  /** A folder of the build context reserved for this layer (relative, `/`-separated). */
  readonly contextDir: string;
}

/**
 * A file or folder the layer puts into the build context.
 *
 * @example
 * ```ts
 * import type { ContextEntry } from "imgtool";
 * // What a render hook may put in the build context, each under its `context.contextDir`.
 * const entries: ContextEntry[] = [
 *   { kind: "file", source: "/work/app/main.py", target: ".imgtool/03-app/main.py" },
 *   { kind: "tree", source: "/work/app/src", target: ".imgtool/03-app/src" },
 *   { kind: "text", content: "cd /app && exec python main.py", target: ".imgtool/03-app/run.sh" },
 * ];
 * console.log(entries.map((entry) => entry.kind)); // [ "file", "tree", "text" ]
 * ```
 */
export type ContextEntry =
  | {
    /** Copy a file from disk. */
    readonly kind: "file";
    /** Its absolute path on disk. */
    readonly source: string;
    /** Its path in the build context. */
    readonly target: string;
  }
  | {
    /** Copy a folder from disk, minus what the image's ignore rules exclude. */
    readonly kind: "tree";
    /** Its absolute path on disk. */
    readonly source: string;
    /** Its path in the build context. */
    readonly target: string;
  }
  | {
    /** Write generated content. */
    readonly kind: "text";
    /** The content. */
    readonly content: string | Uint8Array;
    /** Its path in the build context. */
    readonly target: string;
    /** File mode; default 0o644. */
    readonly mode?: number;
  };

/**
 * A layer's part of the Dockerfile and build context.
 *
 * @example
 * ```ts
 * import { definePlugin, type Rendered } from "imgtool";
 * // Dockerfile text cannot carry a line break; a build argument can.
 * export const banner = definePlugin<{ readonly text: string }>({
 *   name: "multiline_banner",
 *   render: (options): Rendered => ({
 *     instructions: ["ARG BANNER", `RUN printf '%s\\n' "$BANNER" > /etc/banner`],
 *     buildArgs: { BANNER: options.text },
 *   }),
 * });
 * ```
 */
export interface Rendered {
  /**
   * Dockerfile instructions, one per element, in order. An element is exactly one
   * instruction: a line break must follow a `\` (a continuation), and the last line must
   * not end in one. The core refuses anything else, so no value can start an instruction.
   */
  readonly instructions: readonly string[];
  /**
   * Base layers only: Dockerfile text taken as it is from a file the user wrote (as
   * `fromDockerfile` does), placed before {@link Rendered.instructions}. It is the user's
   * own Dockerfile, so it is not checked instruction by instruction; its last line must not
   * continue onto what follows.
   */
  readonly dockerfileText?: string;
  /**
   * Base layers only: parser directives (`syntax`, `escape`, `check`) the Dockerfile must
   * start with, by name. A `syntax` set in configuration takes the place of this one.
   */
  readonly directives?: Readonly<Record<string, string>>;
  /** Files the instructions refer to, placed in the build context. */
  readonly context?: readonly ContextEntry[];
  /** Build arguments the instructions read (values that Dockerfile text cannot carry). */
  readonly buildArgs?: Readonly<Record<string, string>>;
}

/**
 * What a layer adds to the image when it can be appended through the registry, without a
 * build engine: files, which become one tar layer, and configuration changes. A plugin that
 * describes its layer this way (its {@link LayerPlugin.append} hook) lets `build --push`
 * append it, and every layer after it that can be appended too, to an image the engine
 * built of the layers before it. The hook must describe the same image its `render` makes:
 * the same files with the same contents (modes come by the core's rule, 0755 or 0644 by the
 * executable bit on disk, folders 0755) and the same settings.
 *
 * @example
 * ```ts
 * import type { Appended } from "imgtool";
 * // A file from disk, a generated one, and two settings.
 * const appended: Appended = {
 *   files: [
 *     { kind: "file", source: "/work/app/main.py", target: "/app/main.py" },
 *     { kind: "text", content: "ok\n", target: "/app/health", mode: 0o644 },
 *   ],
 *   config: { env: { MODE: "prod" }, workdir: "/app" },
 * };
 * console.log(appended.files?.length); // 2
 * ```
 */
export interface Appended {
  /**
   * The files the layer adds, in one layer. A relative `target` is relative to the image's
   * working directory at this point of the chain (as a Dockerfile's `COPY` destination is).
   */
  readonly files?: readonly AppendedEntry[];
  /** Changes to the image's configuration, applied after the files. */
  readonly config?: ConfigChange;
}

/**
 * One thing an appended layer puts in the image.
 *
 * @example
 * ```ts
 * import type { AppendedEntry } from "imgtool";
 * const entries: AppendedEntry[] = [
 *   { kind: "file", source: "/work/app/main.py", target: "main.py" },
 *   { kind: "tree", source: "/work/app/src", target: "/app/src" },
 *   { kind: "dir", target: "/var/log/app" },
 * ];
 * console.log(entries.map((entry) => entry.kind)); // [ "file", "tree", "dir" ]
 * ```
 */
export type AppendedEntry =
  | {
    /** A file from disk (a symbolic link is followed, as `COPY` follows a named file). */
    readonly kind: "file";
    /** Its absolute path on disk. */
    readonly source: string;
    /** Its path in the image; ending in `/`, the folder it goes into under its own name. */
    readonly target: string;
  }
  | {
    /**
     * A folder's contents, minus what the image's ignore rules exclude, into the folder
     * `target` (as `COPY src/ target/`: the folder itself is not an entry, its files and
     * subfolders are; missing parents are made 0755, owned by root).
     */
    readonly kind: "tree";
    /** Its absolute path on disk. */
    readonly source: string;
    /** The folder it goes into, in the image. */
    readonly target: string;
  }
  | {
    /** Generated content. */
    readonly kind: "text";
    /** The content. */
    readonly content: string | Uint8Array;
    /** Its path in the image. */
    readonly target: string;
    /** Its mode: 0o755 when executable, else 0o644 (the default). */
    readonly mode?: number;
  }
  | {
    /** A folder, 0755 (as `WORKDIR` makes one). */
    readonly kind: "dir";
    /** Its path in the image. */
    readonly target: string;
  };

/**
 * Changes an appended layer makes to the image's configuration, as the Dockerfile
 * instructions of the same names do.
 *
 * @example
 * ```ts
 * import type { ConfigChange } from "imgtool";
 * // ENV MODE=prod, WORKDIR /app, LABEL team=ml
 * const change: ConfigChange = { env: { MODE: "prod" }, workdir: "/app", labels: { team: "ml" } };
 * console.log(Object.keys(change)); // [ "env", "workdir", "labels" ]
 * ```
 */
export interface ConfigChange {
  /** Environment variables to set, exactly as given (no `$NAME` expansion). */
  readonly env?: Readonly<Record<string, string>>;
  /** The working directory; relative to the current one when relative. */
  readonly workdir?: string;
  /** The user the image runs as. */
  readonly user?: string;
  /** Labels to set. */
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * `.dockerignore` rules and the folder their patterns are relative to.
 *
 * @example
 * ```ts
 * import { definePlugin, type IgnoreRuleSet } from "imgtool";
 * // Keep local environments and build output out of every file the image takes from disk.
 * export const pythonIgnores = definePlugin<{ readonly root: string }>({
 *   name: "python_ignores",
 *   ignoreRules: (options, context): IgnoreRuleSet => ({
 *     root: context.resolve(options.root),
 *     patterns: [".venv", ".pytest_cache", "dist"],
 *   }),
 *   render: () => ({ instructions: [] }),
 * });
 * ```
 */
export interface IgnoreRuleSet {
  /** The folder the patterns are relative to (the rules file's folder). */
  readonly root: string;
  /** The patterns, in file order, in Docker's syntax. */
  readonly patterns: readonly string[];
  /** The rules file the patterns are the lines of, for messages about a bad pattern. */
  readonly file?: string;
}

/**
 * A value or a promise of it.
 *
 * @example
 * ```ts
 * import type { Awaitable, Rendered } from "imgtool";
 * // A hook may return its result or a promise of it; `await` takes both.
 * async function instructionCount(render: () => Awaitable<Rendered>): Promise<number> {
 *   return (await render()).instructions.length;
 * }
 * console.log(await instructionCount(() => ({ instructions: ["USER app"] }))); // 1
 * console.log(await instructionCount(() => Promise.resolve({ instructions: [] }))); // 0
 * ```
 */
export type Awaitable<T> = T | Promise<T>;

/**
 * A layer plugin: a name and hooks. `O` is the type of the options its layers carry.
 *
 * @example
 * ```ts
 * import { definePlugin, shellQuote, type Rendered } from "imgtool";
 *
 * interface Options { readonly message: string }
 *
 * export const motd = definePlugin<Options>({
 *   name: "motd",
 *   validate(options) {
 *     return options.message.length > 0 ? [] : [{ message: "the message is empty" }];
 *   },
 *   render(options): Rendered {
 *     return { instructions: [`RUN printf '%s\\n' ${shellQuote(options.message)} > /etc/motd`] };
 *   },
 * });
 * ```
 */
export interface LayerPlugin<O = unknown> {
  /** The plugin's name, in snake_case; errors from its hooks carry it. */
  readonly name: string;
  /**
   * The recipe's version: an integer from 1 (the default when left out). Part of every
   * layer's identity: bump it when the plugin starts rendering differently in a way that
   * changes the image, so that images built by the old recipe are rebuilt rather than reused
   * under the same tag. (Tool versions the recipe installs count on their own, as the
   * settings they are read from.)
   */
  readonly version?: number;
  /** `"base"` for plugins whose layer starts an image (renders `FROM`); default `"layer"`. */
  readonly kind?: LayerKind;
  /**
   * The layer's steps need root (they install system-wide). When a layer before it switched
   * the user ({@link ImageState.user}), the core runs this layer's instructions as root and
   * switches back after them.
   */
  readonly needsRoot?: boolean;
  /**
   * Options (top-level keys) whose strings this plugin carries into the image safely
   * whatever they hold, for example as build arguments or context files. The core checks
   * every other string in a layer's options for line breaks and control characters, which
   * Dockerfile text cannot carry, and reports them as validation problems.
   */
  readonly literalOptions?: readonly string[];

  /**
   * Base layers only: when the base stands for an image that already exists, its reference.
   * An image that has this base and no layers is never built; its `uri` is this reference.
   * Return `undefined` (or leave the hook out) for bases that must be built.
   */
  reference?(options: O, context: PluginContext): string | undefined;

  /**
   * How this layer changes the image for the layers after it (working directory, Python
   * environment, user). Runs synchronously while the chain is planned, and may read the
   * files the layer names (`context.readText`). Returning nothing leaves the state as it was.
   */
  nextState?(options: O, context: IdentifyContext): Partial<ImageState> | undefined;

  /**
   * `.dockerignore` rules this layer adds. They govern every file the image takes from
   * disk, in every layer of the chain, before or after this one. Runs synchronously.
   */
  ignoreRules?(options: O, context: IdentifyContext): IgnoreRuleSet | undefined;

  /**
   * The layer's problems: missing files, invalid names, options that do not fit together.
   * Return every problem at once; an empty array or nothing means the layer is fine.
   * Thrown errors are reported as problems of this plugin. A diagnostic with
   * `severity: "warning"` points out what is valid but rarely meant: it is reported the
   * same way (image, layer, method, spec line), marked `warning:`, and never fails
   * `validate` or stops a build.
   *
   * @example
   * ```ts
   * import { definePlugin } from "imgtool";
   * export const exposePort = definePlugin<{ readonly port: number }>({
   *   name: "expose_port",
   *   validate: (options) =>
   *     options.port < 1024
   *       ? [{ severity: "warning", message: `port ${options.port} needs root to listen on` }]
   *       : [],
   *   render: (options) => ({ instructions: [`EXPOSE ${options.port}`] }),
   * });
   * ```
   */
  validate?(options: O, context: ValidateContext): Awaitable<readonly Diagnostic[] | void>;

  /**
   * The secrets this layer's steps mount. The core checks each has a value before a build,
   * passes them to the builder, and keeps their values out of every log line.
   */
  secrets?(options: O, context: PluginContext): readonly Secret[];

  /**
   * The layer's contribution to the image identity: a JSON-like value (plain objects,
   * arrays, strings, finite numbers, booleans, null) in which files and folders the layer
   * reads appear as `context.file(path)` / `context.tree(path)`. The core encodes it
   * canonically and hashes the files. Runs synchronously (an image's `uri` is a property).
   * Leaving the hook out makes the layer's options its contribution.
   */
  identify?(options: O, context: IdentifyContext): unknown;

  /** The layer's Dockerfile instructions and build-context files. */
  render(options: O, context: RenderContext): Awaitable<Rendered>;

  /**
   * The layer as files and configuration changes ({@link Appended}), when it needs no build
   * engine: `build --push` may then append it through the registry. Return `undefined` when
   * this layer, with these options, needs the engine (a value to expand, a step to run).
   * Leaving the hook out means the layer always needs the engine.
   *
   * @example
   * ```ts
   * import { definePlugin } from "imgtool";
   * export const healthFile = definePlugin<{ readonly text: string }>({
   *   name: "health_file",
   *   render: () => ({
   *     instructions: ["COPY .imgtool/health /health"],
   *     // (the context entry that stages the file is left out of this example)
   *   }),
   *   append: (options) => ({
   *     files: [{ kind: "text", content: options.text, target: "/health" }],
   *   }),
   * });
   * ```
   */
  append?(options: O, context: IdentifyContext): Appended | undefined;
}

/**
 * A plugin ready to make layers.
 *
 * @example
 * ```ts
 * import { definePlugin, Image, type PluginDefinition } from "imgtool";
 * interface Options { readonly key: string; readonly value: string }
 * const label: PluginDefinition<Options> = definePlugin<Options>({
 *   name: "label",
 *   render: (o) => ({ instructions: [`LABEL ${o.key}=${JSON.stringify(o.value)}`] }),
 * });
 * const layer = label.layer({ key: "team", value: "ml" }, "withLabel");
 * const image = Image.fromDebianBase().withLayer(layer);
 * console.log(label.name, image.layers[1].origin.method); // label withLabel
 * ```
 */
export interface PluginDefinition<O> extends LayerPlugin<O> {
  /**
   * Make a layer of this plugin. `method` names what the user called, for messages;
   * it defaults to `withLayer(<name>)`.
   */
  layer(options: O, method?: string): Layer<O>;
}

/**
 * Options of {@link definePlugin}.
 *
 * @example
 * ```ts
 * import { definePlugin } from "imgtool";
 * export const label = definePlugin<{ readonly text: string }>({
 *   name: "label",
 *   render: (o) => ({ instructions: [`LABEL note=${JSON.stringify(o.text)}`] }),
 * }, { module: import.meta.url });
 * console.log(label.name); // label
 * ```
 */
export interface DefinePluginOptions {
  /**
   * The URL of the module that defines the plugin: `import.meta.url`. Its frames are
   * skipped when finding the spec line of a layer, so that the plugin's own helpers are
   * never "the spec line". Left out, it is read from the call stack; naming it saves that
   * stack capture, which costs milliseconds the first time in a large module.
   */
  readonly module?: string;
}

const LAYER_BRAND = Symbol.for("imgtool.layer");
const NAME_PATTERN = /^[a-z][a-z0-9_]*$/;

/**
 * Define a layer plugin. The result is the plugin itself plus a `layer()` factory, whose
 * layers remember the spec line that made them (for messages and relative paths).
 *
 * @example
 * ```ts
 * import { definePlugin, Image } from "imgtool";
 *
 * const hello = definePlugin<{ readonly who: string }>({
 *   name: "hello",
 *   render: (options) => ({ instructions: [`LABEL hello=${JSON.stringify(options.who)}`] }),
 * });
 *
 * const image = Image.fromBase("debian:bookworm").withLayer(hello.layer({ who: "world" }));
 * console.log(image.uri);
 * ```
 */
export function definePlugin<O>(
  plugin: LayerPlugin<O>,
  options: DefinePluginOptions = {},
): PluginDefinition<O> {
  if (typeof plugin?.name !== "string" || !NAME_PATTERN.test(plugin.name)) {
    throw new TypeError(
      `definePlugin: the plugin name ${
        JSON.stringify(plugin?.name)
      } must be snake_case (a-z, 0-9, _), starting with a letter`,
    );
  }
  if (typeof plugin.render !== "function") {
    throw new TypeError(`definePlugin: plugin "${plugin.name}" has no render hook`);
  }
  const version: unknown = plugin.version;
  if (version !== undefined && !(Number.isSafeInteger(version) && (version as number) >= 1)) {
    throw new TypeError(
      `definePlugin: plugin "${plugin.name}" has version ${JSON.stringify(version)}; ` +
        "a version is an integer from 1 (bump it when the recipe changes)",
    );
  }
  // Frames in the defining module are skipped when finding who made a layer, so that a
  // plugin's own factory functions do not count as "the spec line".
  const definer = options.module ?? callerModule(definePlugin);
  if (definer) registerPluginModule(definer);
  const definition: PluginDefinition<O> = {
    ...plugin,
    layer(options: O, method?: string): Layer<O> {
      return createLayer(definition, options, method ?? `withLayer(${plugin.name})`);
    },
  };
  return Object.freeze(definition);
}

/**
 * Make a layer of a plugin directly. Prefer `definePlugin(...).layer(options)`.
 *
 * @example
 * ```ts
 * import { createLayer, definePlugin } from "imgtool";
 * const noop = definePlugin<Record<string, never>>({ name: "noop", render: () => ({ instructions: [] }) });
 * const layer = createLayer(noop, {}, "withNoop");
 * console.log(layer.origin.method); // withNoop
 * ```
 */
export function createLayer<O>(plugin: LayerPlugin<O>, options: O, method: string): Layer<O> {
  const site = callerOutside();
  const layer = {
    [LAYER_BRAND]: true,
    plugin,
    options: frozenCopy(options),
    origin: Object.freeze({ method, file: site?.file, line: site?.line, dir: site?.dir ?? cwd() }),
  };
  return Object.freeze(layer) as Layer<O>;
}

/**
 * Is this value a layer (made by any copy of imgtool)?
 *
 * @example
 * ```ts
 * import { isLayer } from "imgtool";
 * console.log(isLayer({})); // false
 * ```
 */
export function isLayer(value: unknown): value is Layer {
  return typeof value === "object" && value !== null &&
    (value as Record<symbol, unknown>)[LAYER_BRAND] === true;
}

function cwd(): string {
  try {
    return Deno.cwd();
  } catch {
    return "/";
  }
}

/** A frozen copy of plain arrays and objects, so later edits to the user's values change nothing. */
function frozenCopy<T>(value: T): T {
  if (Array.isArray(value)) return Object.freeze(value.map(frozenCopy)) as T;
  if (
    typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype
  ) {
    const copy: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) copy[key] = frozenCopy(inner);
    return Object.freeze(copy) as T;
  }
  return value;
}
