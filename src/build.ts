/**
 * Stage "build": render an image, write its build context to a private temporary folder,
 * hand its secrets over as files in another private folder, and run the builder. Both
 * folders are removed afterwards, whether the build worked, failed or was interrupted.
 * A failing step is traced back to the layer, method and spec line that emitted it.
 *
 * @module
 */

import type { BuilderContext, BuilderPlugin } from "./builder.ts";
import { planForBase } from "./base_config.ts";
import { writeContext } from "./context.ts";
import { BuildError } from "./errors.ts";
import type { ImageIdentity } from "./identify.ts";
import type { ImagePlan } from "./plan.ts";
import type { Platform } from "./plugin.ts";
import { type RenderedSection, renderImage } from "./render.ts";
import { prepareSecrets, redactor, writeRegistryAuth } from "./secrets.ts";
import { parseReference } from "./registry/reference.ts";
import { join } from "./path.ts";

/** Options for {@link buildImage}. */
export interface BuildOptions {
  /** Push to the registry. */
  readonly push: boolean;
  /** Whether the image's registry is reached over plain HTTP. */
  readonly insecureRegistry: boolean;
  /** Stops the build. */
  readonly signal: AbortSignal;
  /** Receives the builder's output, secret values masked. */
  readonly output: (line: string) => void;
  /** Receives what imgtool itself finds out on the way (which user the base runs as). */
  readonly progress?: (line: string) => void;
  /**
   * Build only these of the image's platforms (a pool builds each platform of an image on
   * its own engine); default: all of them.
   */
  readonly platforms?: readonly Platform[];
  /** The reference to produce instead of the image's URI (a per-platform tag). */
  readonly uri?: string;
}

/** Build one image with `builder`. Throws a {@link BuildError} naming the failing layer. */
export async function buildImage(
  plan: ImagePlan,
  identity: ImageIdentity,
  builder: BuilderPlugin,
  context: BuilderContext,
  options: BuildOptions,
): Promise<void> {
  const forBase = await planForBase(plan, builder, context, options.progress ?? (() => {}));
  const rendered = await renderImage(forBase);
  const contextDir = await Deno.makeTempDir({ prefix: "imgtool-context-" });
  const secretsDir = await Deno.makeTempDir({ prefix: "imgtool-secrets-" });
  try {
    await Deno.chmod(secretsDir, 0o700);
    await writeContext(rendered, contextDir, plan.ignore);
    const secrets = await prepareSecrets(rendered.secrets, plan.config, secretsDir);
    const auth = plan.spec.registrySecret && plan.info.registry
      ? await writeRegistryAuth(
        parseReference(identity.uri).registry,
        plan.spec.registrySecret,
        plan.config,
        join(secretsDir, "registry-auth"),
      )
      : undefined;
    const mask = redactor([...secrets.values, ...(auth?.values ?? [])]);
    const maskedContext: BuilderContext = {
      ...context,
      exec: (command, execOptions) =>
        context.exec(command, {
          ...execOptions,
          onLine: execOptions.onLine ? (line) => execOptions.onLine?.(mask(line)) : undefined,
        }).then((result) => ({
          ...result,
          stdout: mask(result.stdout),
          stderr: mask(result.stderr),
          tail: mask(result.tail),
        })),
    };
    try {
      await builder.build({
        image: plan.exportName,
        uri: options.uri ?? identity.uri,
        platforms: options.platforms ?? plan.info.platforms,
        contextDir,
        buildArgs: rendered.buildArgs,
        secrets: secrets.secrets,
        push: options.push,
        network: plan.config.network,
        insecureRegistry: options.insecureRegistry,
        registryAuthFile: auth?.file,
        signal: options.signal,
        output: (line) => options.output(mask(line)),
      }, maskedContext);
    } catch (error) {
      if (error instanceof BuildError) {
        throw withLayer(error, rendered.sections, plan.exportName, mask);
      }
      throw error;
    }
  } finally {
    await Deno.remove(contextDir, { recursive: true }).catch(() => {});
    await Deno.remove(secretsDir, { recursive: true }).catch(() => {});
  }
}

/** Name the layer a failing step came from, when the builder said which step failed. */
function withLayer(
  error: BuildError,
  sections: readonly RenderedSection[],
  image: string,
  mask: (text: string) => string,
): BuildError {
  const section = error.step ? findSection(error.step, sections) : undefined;
  const where = section
    ? `image "${image}", layer ${section.index} (${section.method}, plugin ${section.plugin})` +
      (section.callSite ? ` at ${section.callSite}` : "")
    : `image "${image}"`;
  const hint = error.hint ??
    (section ? `fix what ${section.method} asks for (see the failing step's output)` : undefined);
  // The builder's own error is not kept as the cause: its text is unmasked.
  return new BuildError(mask(`${where}: ${error.message}`), {
    hint: hint === undefined ? undefined : mask(hint),
    output: error.output === undefined ? undefined : mask(error.output),
    step: error.step,
  });
}

const squash = (text: string) => text.replace(/\\\n/g, " ").replace(/\s+/g, " ").trim();

/** The section whose instruction the builder's step name starts like. */
export function findSection(
  step: string,
  sections: readonly RenderedSection[],
): RenderedSection | undefined {
  const wanted = squash(step);
  const probe = wanted.slice(0, 80);
  return sections.find((section) =>
    section.instructions.some((instruction) => {
      const text = squash(instruction);
      return text.startsWith(probe) || wanted.startsWith(text.slice(0, 80));
    })
  );
}
