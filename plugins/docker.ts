/**
 * The Docker engine builder. It uses `docker buildx build` where the client has buildx,
 * and otherwise the engine's built-in BuildKit (`DOCKER_BUILDKIT=1 docker build`), which
 * builds one platform at a time: a multi-platform image is then built per platform, each
 * pushed under a per-platform tag, and joined into one OCI index in the registry.
 *
 * A remote engine is reached with `[docker] host` (`IMGTOOL_DOCKER_HOST`, passed to the client
 * as DOCKER_HOST), and each engine of a pool (`[[builders]]`, handed over as
 * `BuilderContext.engine`) with DOCKER_HOST, DOCKER_CERT_PATH and DOCKER_TLS_VERIFY for that
 * one client process. The client binary comes from `[docker] client` (`IMGTOOL_DOCKER_CLIENT`); which build path
 * it supports is detected, not assumed.
 *
 * @module
 */

import {
  type BuilderContext,
  BuildError,
  type BuildRequest,
  defineBuilder,
  type ExecOptions,
  parseImageRunConfig,
  paths,
  type Platform,
  type Probe,
} from "../contract.ts";

const { dirname } = paths;

/**
 * The docker client's environment for the engine to build on: a pool's engine
 * (`BuilderContext.engine`), else `[docker] host`, else none (the client's default).
 */
export function engineEnv(context: BuilderContext): Record<string, string> {
  const engine = context.engine;
  if (engine?.host === undefined) {
    const host = context.config.dockerHost;
    return host ? { DOCKER_HOST: host } : {};
  }
  const tls = engine.certPath !== undefined || engine.tlsVerify === true;
  return {
    DOCKER_HOST: engine.host,
    // Each set even when empty (which the client reads as unset): the user's own DOCKER_*
    // variables must not change how this one engine is reached.
    DOCKER_CERT_PATH: engine.certPath ?? "",
    DOCKER_TLS_VERIFY: engine.tlsVerify ? "1" : "",
    DOCKER_TLS: tls && !engine.tlsVerify ? "1" : "",
  };
}

/** Run the configured docker client, against the engine to build on ({@link engineEnv}). */
function runDocker(context: BuilderContext, options: ExecOptions) {
  return context.exec(context.config.dockerClient, {
    ...options,
    env: { ...options.env, ...engineEnv(context) },
  });
}

/** How a docker client can build. */
export type BuildPath = "buildx" | "builtin";

interface Detected {
  readonly path: BuildPath;
  readonly client: string;
  readonly server: string;
}

const detected = new Map<string, Promise<Detected | Probe>>();

/**
 * Find out what the configured client can do with its engine (once per client and engine
 * per process). `fresh` asks the engine again, as a pool's probe must; only an answer is
 * kept for later builds, never a failure.
 */
function detect(context: BuilderContext, fresh = false): Promise<Detected | Probe> {
  const client = context.config.dockerClient;
  const key = JSON.stringify([client, engineEnv(context)]);
  const known = detected.get(key);
  if (!fresh && known) return known;
  const asked = fresh && known ? askAgain(client, context, known) : detectUncached(client, context);
  if (!fresh) detected.set(key, asked);
  else asked.then((answer) => isProbe(answer) || detected.set(key, asked));
  return asked;
}

/** Ask an engine whose client was detected before whether it still answers (one command). */
async function askAgain(
  client: string,
  context: BuilderContext,
  known: Promise<Detected | Probe>,
): Promise<Detected | Probe> {
  const before = await known;
  if (isProbe(before)) return detectUncached(client, context);
  const answer = await askVersion(client, context);
  return "ok" in answer ? answer : before;
}

/** `docker version`: the client's and the engine's versions, or why the engine does not answer. */
async function askVersion(
  client: string,
  context: BuilderContext,
): Promise<{ client: string; server: string } | Probe> {
  let version;
  try {
    version = await runDocker(context, {
      args: ["version", "--format", "{{.Client.Version}} {{.Server.Version}}"],
    });
  } catch {
    return {
      ok: false,
      reason: `no docker client "${client}" found`,
      hint:
        "install Docker (Debian: apt-get install docker.io), or set [docker] client in imgtool.toml",
    };
  }
  const [clientVersion, serverVersion] = version.stdout.trim().split(/\s+/);
  if (version.code !== 0 || !serverVersion) {
    return {
      ok: false,
      reason: `the Docker engine${
        context.engine?.host ? ` at ${context.engine.host}` : ""
      } does not answer (${client} version: ${version.tail.split("\n").pop() ?? ""})`,
      hint: "start the engine (dockerd), or check DOCKER_HOST and your access to its socket",
    };
  }
  return { client: clientVersion, server: serverVersion };
}

async function detectUncached(client: string, context: BuilderContext): Promise<Detected | Probe> {
  const versions = await askVersion(client, context);
  if ("ok" in versions) return versions;
  const { client: clientVersion, server: serverVersion } = versions;
  const buildx = await runDocker(context, { args: ["buildx", "version"] }).catch(() => undefined);
  if (buildx?.code === 0) return { path: "buildx", client: clientVersion, server: serverVersion };
  // Clients from 23.0 on hand every BuildKit build to buildx and refuse without it.
  if (Number(clientVersion.split(".")[0]) >= 23) {
    return {
      ok: false,
      reason:
        `docker client ${clientVersion} (${client}) has no buildx plugin, and it builds with BuildKit only through buildx`,
      hint:
        "install the buildx plugin (Debian: docker-buildx), or point [docker] client at a client that " +
        "uses the engine's built-in BuildKit (docker 20.10 to 22.x)",
    };
  }
  return { path: "builtin", client: clientVersion, server: serverVersion };
}

function isProbe(value: Detected | Probe): value is Probe {
  return "ok" in value;
}

/** The common flags of a build command. */
function buildFlags(request: BuildRequest): string[] {
  return [
    "--progress=plain",
    ...(request.network === "default" ? [] : [`--network=${request.network}`]),
    "--file",
    `${request.contextDir}/Dockerfile`,
    ...request.secrets.flatMap((secret) => ["--secret", `id=${secret.id},src=${secret.file}`]),
    ...Object.entries(request.buildArgs).flatMap((
      [name, value],
    ) => ["--build-arg", `${name}=${value}`]),
  ];
}

/** A per-platform tag for built-in BuildKit builds: `repo:tag-linux-arm64`. */
export function platformTag(uri: string, platform: Platform): string {
  return `${uri}-${platform.replaceAll("/", "-")}`;
}

/**
 * Follow BuildKit's plain progress: remember each step's name and lines, so that a failure
 * can name the failing step and show its output.
 */
export class StepTracker {
  readonly #names = new Map<string, string>();
  readonly #lines = new Map<string, string[]>();
  #failed?: string;

  /** Take one line of output. */
  take(line: string): void {
    const match = /^#(\d+) (.*)$/.exec(line);
    if (!match) return;
    const [, id, rest] = match;
    const named = /^\[[^\]]*\] (.*)$/.exec(rest);
    if (named && !this.#names.has(id)) this.#names.set(id, named[1]);
    if (/^ERROR[: ]/.test(rest)) this.#failed ??= id;
    const lines = this.#lines.get(id) ?? [];
    lines.push(rest.replace(/^\d+\.\d+ /, ""));
    if (lines.length > 60) lines.shift();
    this.#lines.set(id, lines);
  }

  /** The failing step's name, if a step failed. */
  get failedStep(): string | undefined {
    return this.#failed === undefined ? undefined : this.#names.get(this.#failed);
  }

  /** The failing step's last lines of output. */
  get failedOutput(): string | undefined {
    return this.#failed === undefined ? undefined : this.#lines.get(this.#failed)?.join("\n");
  }
}

/** `--config DIR` when the image brings its own registry credentials. */
function configArgs(request: BuildRequest): string[] {
  return request.registryAuthFile ? ["--config", dirname(request.registryAuthFile)] : [];
}

async function runBuild(
  request: BuildRequest,
  context: BuilderContext,
  args: string[],
  env: Record<string, string>,
): Promise<void> {
  const tracker = new StepTracker();
  const result = await runDocker(context, {
    args: [...configArgs(request), ...args],
    env,
    signal: request.signal,
    onLine(line) {
      tracker.take(line);
      request.output(line);
    },
  });
  if (request.signal.aborted) throw new BuildError(`build of ${request.image} was interrupted`);
  if (result.code !== 0) {
    const step = tracker.failedStep;
    throw new BuildError(
      step
        ? `step failed: ${step.length > 160 ? `${step.slice(0, 160)}...` : step}`
        : `docker build failed (exit ${result.code})`,
      { output: tracker.failedOutput ?? result.tail, step },
    );
  }
}

async function push(
  request: BuildRequest,
  context: BuilderContext,
  reference: string,
): Promise<void> {
  const result = await runDocker(context, {
    args: [...configArgs(request), "push", reference],
    signal: request.signal,
    onLine: request.output,
  });
  if (result.code !== 0) {
    throw new BuildError(`docker push ${reference} failed`, {
      output: result.tail,
      hint: "check that the registry is reachable and that you are logged in (docker login)",
    });
  }
}

/** The Docker builder plugin. */
export const docker = defineBuilder({
  name: "docker",
  description: "the Docker engine (buildx when the client has it, else its built-in BuildKit)",
  local: true,
  engineSchemes: ["unix", "tcp", "ssh"],
  async probe(context) {
    // A pool's engine is asked each time: the probe tells an engine that went away.
    const found = await detect(context, context.engine !== undefined);
    if (isProbe(found)) return found;
    return {
      ok: true,
      detail: `docker ${found.client} / engine ${found.server}, ${
        found.path === "buildx" ? "buildx" : "built-in BuildKit"
      }`,
    };
  },
  async build(request, context) {
    const found = await detect(context);
    if (isProbe(found)) {
      throw new BuildError(found.ok ? "docker is not usable" : found.reason, {
        hint: found.ok ? undefined : found.hint,
      });
    }
    const contextDir = request.contextDir;
    if (found.path === "buildx") {
      const args = [
        "buildx",
        "build",
        ...buildFlags(request),
        "--platform",
        request.platforms.join(","),
        "--tag",
        request.uri,
        request.push ? "--push" : "--load",
        contextDir,
      ];
      return await runBuild(request, context, args, {});
    }
    // Built-in BuildKit: one platform per build.
    const env = { DOCKER_BUILDKIT: "1" };
    if (request.platforms.length === 1) {
      const args = [
        "build",
        ...buildFlags(request),
        "--platform",
        request.platforms[0],
        "--tag",
        request.uri,
        contextDir,
      ];
      await runBuild(request, context, args, env);
      if (request.push) await push(request, context, request.uri);
      return;
    }
    if (!request.push) {
      throw new BuildError(
        `${request.image} has ${request.platforms.length} platforms; a local engine holds one`,
        {
          hint: "add --push to build a multi-platform index, or pick one with --platform",
        },
      );
    }
    const parts: { reference: string; platform: Platform }[] = [];
    for (const platform of request.platforms) {
      const reference = platformTag(request.uri, platform);
      request.output(`--- building ${platform} as ${reference}`);
      await runBuild(request, context, [
        "build",
        ...buildFlags(request),
        "--platform",
        platform,
        "--tag",
        reference,
        contextDir,
      ], env);
      await push(request, context, reference);
      parts.push({ reference, platform });
    }
    const digest = await context.registry.putIndex(request.uri, parts);
    request.output(
      `--- pushed index ${request.uri} (${digest}) for ${request.platforms.join(", ")}`,
    );
  },
  async exists(uri, platforms, context) {
    if (platforms.length !== 1) return false;
    const result = await runDocker(context, {
      args: ["image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", uri],
    }).catch(() => undefined);
    return result?.code === 0 && result.stdout.trim() === platforms[0];
  },
  async imageConfig(reference, _platform, context) {
    const result = await runDocker(context, {
      args: ["image", "inspect", "--format", "{{json .Config}}", reference],
    });
    // Not in the engine's store: the build pulls it, and the core reads it from the registry.
    if (result.code !== 0) return undefined;
    return parseImageRunConfig(JSON.parse(result.stdout));
  },
});

export default docker;
