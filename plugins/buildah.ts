/**
 * The buildah builder: daemonless builds of the same Dockerfile (`buildah bud`), into
 * buildah's own image store. Several platforms build into one manifest list, pushed whole
 * as one index.
 *
 * @module
 */

import {
  type BuilderContext,
  BuildError,
  type BuildRequest,
  defineBuilder,
  parseImageRunConfig,
} from "../contract.ts";

/** Follow buildah's output: the current step, and the lines since it started. */
export class BuildahSteps {
  #step?: string;
  #lines: string[] = [];

  /** Take one line of output. */
  take(line: string): void {
    const match = /^STEP \d+(?:\/\d+)?: (.*)$/.exec(line);
    if (match) {
      this.#step = match[1];
      this.#lines = [];
      return;
    }
    this.#lines.push(line);
    if (this.#lines.length > 60) this.#lines.shift();
  }

  /** The step that ran last. */
  get step(): string | undefined {
    return this.#step;
  }

  /** The output since that step started. */
  get output(): string {
    return this.#lines.join("\n");
  }
}

async function run(
  request: BuildRequest,
  context: BuilderContext,
  args: string[],
  what: string,
): Promise<void> {
  const steps = new BuildahSteps();
  const result = await context.exec("buildah", {
    args,
    signal: request.signal,
    onLine(line) {
      steps.take(line);
      request.output(line);
    },
  });
  if (request.signal.aborted) throw new BuildError(`build of ${request.image} was interrupted`);
  if (result.code !== 0) {
    const step = what === "build" ? steps.step : undefined;
    throw new BuildError(
      step ? `step failed: ${step}` : `buildah ${what} failed (exit ${result.code})`,
      {
        output: step ? steps.output : result.tail,
        step,
      },
    );
  }
}

/** The buildah builder plugin. */
export const buildah = defineBuilder({
  name: "buildah",
  description: "buildah (daemonless; Debian package buildah)",
  local: true,
  async probe(context) {
    const result = await context.exec("buildah", { args: ["version", "--json"] }).catch(() =>
      undefined
    );
    if (!result || result.code !== 0) {
      return {
        ok: false,
        reason: "buildah is not installed or does not run",
        hint: "install it (Debian: apt-get install buildah)",
      };
    }
    const version = /"version":\s*"([^"]+)"/.exec(result.stdout)?.[1] ?? "unknown version";
    return { ok: true, detail: `buildah ${version}` };
  },
  async build(request, context) {
    const tls = `--tls-verify=${request.insecureRegistry ? "false" : "true"}`;
    const auth = request.registryAuthFile ? ["--authfile", request.registryAuthFile] : [];
    const multi = request.platforms.length > 1;
    if (multi) {
      // A manifest list left from an earlier build would collect duplicate entries.
      await context.exec("buildah", { args: ["manifest", "rm", request.uri] }).catch(() =>
        undefined
      );
    }
    await run(request, context, [
      "bud",
      // --no-cache, not --layers: buildah 1.28 reuses a cached RUN step when the files
      // bind-mounted into it changed but the step's text did not, which would build a stale
      // image under a new tag. imgtool's own tags already skip whole images that exist.
      "--no-cache",
      // Without --force-rm, a failing step leaves its working container (and its image) behind.
      "--force-rm",
      tls,
      ...auth,
      ...(request.network === "default" ? [] : [`--network=${request.network}`]),
      "--file",
      `${request.contextDir}/Dockerfile`,
      "--platform",
      request.platforms.join(","),
      // type=file: without it, buildah (1.28) takes the secret from the environment variable
      // named like its id whenever one is set (it always is for a secret given by variable)
      // and reads the variable named by `src` instead of the file: the step gets "".
      ...request.secrets.flatMap((
        secret,
      ) => ["--secret", `id=${secret.id},src=${secret.file},type=file`]),
      ...Object.entries(request.buildArgs).flatMap((
        [name, value],
      ) => ["--build-arg", `${name}=${value}`]),
      multi ? "--manifest" : "--tag",
      request.uri,
      request.contextDir,
    ], "build");
    if (!request.push) return;
    const destination = `docker://${request.uri}`;
    await run(
      request,
      context,
      multi
        ? ["manifest", "push", "--all", tls, ...auth, request.uri, destination]
        : ["push", tls, ...auth, request.uri, destination],
      "push",
    );
  },
  async exists(uri, platforms, context) {
    if (platforms.length !== 1) return false;
    const result = await context.exec("buildah", {
      args: [
        "inspect",
        "--type",
        "image",
        "--format",
        "{{.OCIv1.OS}}/{{.OCIv1.Architecture}}",
        uri,
      ],
    }).catch(() => undefined);
    return result?.code === 0 && result.stdout.trim() === platforms[0];
  },
  async imageConfig(reference, _platform, context) {
    const result = await context.exec("buildah", {
      args: ["inspect", "--type", "image", "--format", "{{json .OCIv1.Config}}", reference],
    });
    // Not in buildah's store: the build pulls it, and the core reads it from the registry.
    if (result.code !== 0) return undefined;
    return parseImageRunConfig(JSON.parse(result.stdout));
  },
});

export default buildah;
