/**
 * The builder plugin contract. Builders (the Docker engine, buildah, remote engines) turn a
 * rendered build context into an image, locally or pushed. The core picks one by name from
 * the CLI, configuration or detection, and never asks which one it has.
 *
 * @module
 */

import type { Config } from "./config.ts";
import type { ExecOptions, ExecResult } from "./exec.ts";
import type { Platform } from "./plugin.ts";
import type { BuildSecret } from "./secrets.ts";
import { type ImageRunConfig, runtimeConfig } from "./registry/manifest.ts";
export type { ImageRunConfig } from "./registry/manifest.ts";

/**
 * One image to build.
 *
 * @example
 * ```ts
 * import { BuildError, type BuildRequest, defineBuilder } from "imgtool";
 * export const kaniko = defineBuilder({
 *   name: "kaniko",
 *   description: "builds with the kaniko executor and pushes",
 *   local: false,
 *   probe: () => Promise.resolve({ ok: true, detail: "/kaniko/executor" }),
 *   async build(request: BuildRequest, context) {
 *     const args = ["--context", request.contextDir, "--destination", request.uri];
 *     const result = await context.exec("/kaniko/executor", {
 *       args: request.push ? args : [...args, "--no-push"],
 *       signal: request.signal,
 *       onLine: request.output,
 *     });
 *     if (result.code !== 0) {
 *       throw new BuildError(`${request.image}: kaniko failed`, { output: result.tail });
 *     }
 *   },
 * });
 * ```
 */
export interface BuildRequest {
  /** The image's export name, for messages. */
  readonly image: string;
  /** The reference to produce (`registry/name:tag`). */
  readonly uri: string;
  /** Platforms to build for. With several, the result is one multi-platform index. */
  readonly platforms: readonly Platform[];
  /** The build context folder; its `Dockerfile` is the one to build. */
  readonly contextDir: string;
  /** Build arguments. */
  readonly buildArgs: Readonly<Record<string, string>>;
  /** Secrets, each as a file, for `--secret id=...,src=...`. */
  readonly secrets: readonly BuildSecret[];
  /** Push to the registry (true) or keep the image in the local store (false). */
  readonly push: boolean;
  /** The network build steps use (`host`, `none`, `default`). */
  readonly network: string;
  /** Whether the registry is reached over plain HTTP. */
  readonly insecureRegistry: boolean;
  /**
   * A Docker `config.json` granting access to the image's registry, when the image has a
   * registry secret (for docker: `--config` its folder; for buildah: `--authfile`).
   */
  readonly registryAuthFile?: string;
  /** Stops the build when aborted. */
  readonly signal: AbortSignal;
  /**
   * Receives the builder's output, a line at a time; secret values in it are masked, each
   * line of a multi-line one too. Pass whole lines: half a line may hold half a secret line,
   * which no mask recognizes.
   */
  readonly output: (line: string) => void;
}

/**
 * What a builder may do with registries besides pushing through its own tool.
 *
 * @example
 * ```ts
 * import { defineBuilder, type RegistryAccess } from "imgtool";
 * export const perPlatform = defineBuilder({
 *   name: "per_platform",
 *   description: "builds each platform on its own, then joins them in one index",
 *   local: false,
 *   probe: () => Promise.resolve({ ok: true, detail: "ready" }),
 *   async build(request, context) {
 *     const registry: RegistryAccess = context.registry;
 *     const manifests = request.platforms.map((platform) => ({
 *       reference: `${request.uri}-${platform.replace("/", "-")}`,
 *       platform,
 *     }));
 *     // ... build and push each manifests[i].reference here ...
 *     await registry.putIndex(request.uri, manifests);
 *   },
 * });
 * ```
 */
export interface RegistryAccess {
  /** Make `target` an index over per-platform manifests in the same repository. */
  putIndex(target: string, manifests: { reference: string; platform: Platform }[]): Promise<string>;
  /**
   * How an image in a registry runs on `platform` (its config's user, working directory and
   * environment); `undefined` when the registry does not have it.
   */
  imageConfig?(reference: string, platform: Platform): Promise<ImageRunConfig | undefined>;
}

/**
 * Read the runtime part of an image config object (Docker's and OCI's `Config`: `User`,
 * `WorkingDir`, `Env`), as a builder's {@link BuilderPlugin.imageConfig} hook gets it from
 * its tool. Values of other types read as absent.
 *
 * @example
 * ```ts
 * import { parseImageRunConfig } from "imgtool";
 * const inspected = JSON.parse('{"User":"app","WorkingDir":"/home/app","Env":["A=1"]}');
 * console.log(parseImageRunConfig(inspected));
 * // { user: "app", workdir: "/home/app", env: [ "A=1" ] }
 * ```
 */
export function parseImageRunConfig(config: unknown): ImageRunConfig {
  return runtimeConfig({ config });
}

/**
 * What a builder's hooks can use.
 *
 * @example
 * ```ts
 * import { type BuilderContext, defineBuilder } from "imgtool";
 * export const podman = defineBuilder({
 *   name: "podman",
 *   description: "builds with podman",
 *   local: true,
 *   async probe(context: BuilderContext) {
 *     const result = await context.exec("podman", { args: ["--version"] }).catch(() => undefined);
 *     if (result?.code === 0) return { ok: true, detail: result.stdout.trim() };
 *     return { ok: false, reason: "podman is not installed", hint: "install podman" };
 *   },
 *   async build(request, context: BuilderContext) {
 *     const args = ["build", "--network", context.config.network, "-t", request.uri];
 *     const onLine = request.output;
 *     await context.exec("podman", { args: [...args, request.contextDir], onLine });
 *   },
 * });
 * ```
 */
export interface BuilderContext {
  /** The configuration. */
  readonly config: Readonly<Config>;
  /** Registry operations. */
  readonly registry: RegistryAccess;
  /**
   * Run a tool, streaming its output a whole line at a time; secret values in the output
   * (`onLine`, `stdout`, `stderr`, `tail`) are masked, each line of a multi-line one too.
   */
  exec(command: string, options: ExecOptions): Promise<ExecResult>;
  /**
   * The engine to build on, when the build runs on a pool of builders (`[[builders]]` in
   * imgtool.toml): every hook (probe, build, exists, imageConfig) then works with that engine
   * alone. Absent: the plugin's own default, as without a pool.
   */
  readonly engine?: EngineTarget;
}

/**
 * The address schemes of engines a builder can work with (`[[builders]] host`).
 *
 * @example
 * ```ts
 * import type { EngineScheme } from "imgtool";
 * const schemes: readonly EngineScheme[] = ["unix", "tcp", "ssh"];
 * console.log(schemes.includes("tcp")); // true
 * ```
 */
export type EngineScheme = "unix" | "tcp" | "ssh";

/**
 * One engine of a pool of builders, as the core hands it to a builder plugin in
 * {@link BuilderContext.engine}: the `[[builders]]` entry's name, its address, and the TLS
 * files of a `tcp://` engine, with Docker's meaning (`DOCKER_HOST`, `DOCKER_CERT_PATH`,
 * `DOCKER_TLS_VERIFY`). A plugin passes them to its tool for that one process, never through
 * its own environment: builds on several engines run at once. When the core probes an
 * engine (before it hands it work, and after a build on it fails), the probe must ask the
 * engine now, not answer from a cache: that is how an engine that went away is told from
 * a failing step.
 *
 * @example
 * ```ts
 * import { type BuilderContext, BuildError, defineBuilder, type EngineTarget } from "imgtool";
 *
 * // The client's environment for one engine: set even when empty, so that the user's own
 * // DOCKER_* variables cannot send the build elsewhere.
 * export function engineEnv(engine: EngineTarget): Record<string, string> {
 *   if (engine.host === undefined) return {};
 *   return {
 *     DOCKER_HOST: engine.host,
 *     DOCKER_CERT_PATH: engine.certPath ?? "",
 *     DOCKER_TLS_VERIFY: engine.tlsVerify ? "1" : "",
 *   };
 * }
 *
 * export const remoteDocker = defineBuilder({
 *   name: "remote_docker",
 *   description: "docker build on the engine the pool names",
 *   local: true,
 *   engineSchemes: ["unix", "tcp", "ssh"],
 *   async probe(context: BuilderContext) {
 *     const env = context.engine ? engineEnv(context.engine) : {};
 *     const result = await context.exec("docker", { args: ["version"], env });
 *     if (result.code === 0) return { ok: true, detail: "the engine answers" };
 *     return { ok: false, reason: "the engine does not answer", hint: "start it" };
 *   },
 *   async build(request, context) {
 *     const env = { DOCKER_BUILDKIT: "1", ...(context.engine ? engineEnv(context.engine) : {}) };
 *     const args = ["build", "--platform", request.platforms.join(","), "-t", request.uri];
 *     const result = await context.exec("docker", {
 *       args: [...args, request.contextDir],
 *       env,
 *       signal: request.signal,
 *       onLine: request.output,
 *     });
 *     if (result.code !== 0) throw new BuildError(`${request.image}: docker build failed`);
 *   },
 * });
 * ```
 */
export interface EngineTarget {
  /** The `[[builders]]` entry's name (for messages). */
  readonly name: string;
  /**
   * Where the engine listens (`unix:///path`, `tcp://host:port`, `ssh://user@host`); absent:
   * the plugin's own default engine.
   */
  readonly host?: string;
  /** A folder holding `ca.pem`, `cert.pem` and `key.pem` (Docker's `DOCKER_CERT_PATH`). */
  readonly certPath?: string;
  /** Whether the engine's certificate is checked against `ca.pem` (`DOCKER_TLS_VERIFY`). */
  readonly tlsVerify?: boolean;
}

/**
 * Whether a builder can run here.
 *
 * @example
 * ```ts
 * import type { Probe } from "imgtool";
 * const describe = (name: string, probe: Probe) =>
 *   probe.ok ? `${name}: ${probe.detail}` : `${name}: ${probe.reason} (fix: ${probe.hint})`;
 * const probe: Probe = { ok: false, reason: "not installed", hint: "apt-get install buildah" };
 * console.log(describe("buildah", probe));
 * // buildah: not installed (fix: apt-get install buildah)
 * ```
 */
export type Probe =
  | { readonly ok: true; readonly detail: string }
  | { readonly ok: false; readonly reason: string; readonly hint: string };

/**
 * A builder plugin.
 *
 * @example
 * ```ts
 * import { defineBuilder } from "imgtool";
 *
 * export const echoBuilder = defineBuilder({
 *   name: "echo",
 *   description: "prints what it would build",
 *   local: true,
 *   probe: () => Promise.resolve({ ok: true, detail: "always ready" }),
 *   async build(request) {
 *     request.output(`would build ${request.uri} from ${request.contextDir}`);
 *   },
 * });
 * ```
 */
export interface BuilderPlugin {
  /** The name users pick it by (`--builder NAME`). */
  readonly name: string;
  /** One line for `--help` and error messages. */
  readonly description: string;
  /** Whether it builds into this machine's image store (`withLocalV2` needs such a builder). */
  readonly local: boolean;
  /**
   * The engine addresses it can build on, by scheme (`[[builders]] host`; see
   * {@link EngineTarget}). Leave it out when it builds only where imgtool runs: a pool entry
   * with a `host` for it is then refused.
   */
  readonly engineSchemes?: readonly EngineScheme[];
  /** Can it run here? Says what is missing and how to install it when not. */
  probe(context: BuilderContext): Promise<Probe>;
  /** Build (and push, when asked). Throws a `BuildError` naming the failing step. */
  build(request: BuildRequest, context: BuilderContext): Promise<void>;
  /**
   * Is the image in this builder's local store, for every platform? Used to skip local
   * builds (no `--push`). Leave it out when the builder keeps no local store.
   */
  exists?(uri: string, platforms: readonly Platform[], context: BuilderContext): Promise<boolean>;
  /**
   * How an image in this builder's local store runs (its config's user, working directory
   * and environment), or `undefined` when the store does not have it. The core asks before
   * rendering an image whose base is an existing image, since a local image is what the
   * build starts from. Leave it out when the builder keeps no local store.
   */
  imageConfig?(
    reference: string,
    platform: Platform,
    context: BuilderContext,
  ): Promise<ImageRunConfig | undefined>;
}

/**
 * Define a builder plugin (checks its shape).
 *
 * @example
 * ```ts
 * import { defineBuilder } from "imgtool";
 * const builder = defineBuilder({
 *   name: "noop",
 *   description: "does nothing",
 *   local: false,
 *   probe: () => Promise.resolve({ ok: false, reason: "not real", hint: "pick another builder" }),
 *   build: () => Promise.resolve(),
 * });
 * console.log(builder.name); // noop
 * ```
 */
export function defineBuilder(builder: BuilderPlugin): BuilderPlugin {
  if (!/^[a-z][a-z0-9_-]*$/.test(builder.name)) {
    throw new TypeError(`defineBuilder: invalid builder name ${JSON.stringify(builder.name)}`);
  }
  for (const hook of ["probe", "build"] as const) {
    if (typeof builder[hook] !== "function") {
      throw new TypeError(`defineBuilder: builder "${builder.name}" has no ${hook} hook`);
    }
  }
  return Object.freeze({ ...builder });
}
