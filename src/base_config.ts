/**
 * Stage "base config": before an image whose base is an existing image is rendered for a
 * build, read which user that base runs as. On a base that runs as another user than root,
 * the steps of layers that need root then run as root and switch back, files copied in
 * belong to that user, and the image runs as that user again (`./render.ts` does this from
 * `ImageState.user`).
 *
 * The builder's local store is asked first (a local image is what the build starts from),
 * then the registry. Only rendering uses the answer: tags are computed from the spec alone,
 * so `uri` stays offline, and a base's user counts in the tag as the rest of the base does,
 * through its reference.
 *
 * @module
 */

import type { BuilderContext, BuilderPlugin, ImageRunConfig } from "./builder.ts";
import { ImgtoolError } from "./errors.ts";
import { type BaseFacts, type ImagePlan, planImage } from "./plan.ts";

/** A user as Docker's `USER` and `COPY --chown` take it: a name or id, optionally `:group`. */
const USER = /^[A-Za-z0-9_][A-Za-z0-9_.-]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/;

/**
 * The non-root user a base image's config names, or `undefined` when it runs as root (no
 * user, `root`, `0`, with any group). Throws for a user that is not a plain name or id:
 * the value comes from a registry and would be written into the Dockerfile.
 *
 * @example
 * ```ts
 * import { baseUser } from "./base_config.ts";
 * console.log(baseUser({ user: "app:app", env: [] }, "example.com/app:1")); // app:app
 * console.log(baseUser({ user: "0:0", env: [] }, "example.com/app:1")); // undefined
 * ```
 */
export function baseUser(config: ImageRunConfig, reference: string): string | undefined {
  const user = config.user?.trim();
  if (!user) return undefined;
  if (!USER.test(user)) {
    throw new ImgtoolError(
      `base image ${reference} runs as user ${JSON.stringify(user.slice(0, 100))}, which is ` +
        "not a user name or id that imgtool can write into a Dockerfile",
      { hint: "use a base image whose config names a plain user (name or id, optionally :group)" },
    );
  }
  const name = user.split(":")[0];
  return name === "root" || name === "0" ? undefined : user;
}

/** Where a base image's config was read, and what it says. */
export interface BaseConfigRead {
  /** The config, when it could be read. */
  readonly config?: ImageRunConfig;
  /** Where it came from (`local store of docker`, `registry`), or why it could not be read. */
  readonly source: string;
}

/**
 * Read how the base image of `plan` runs on the plan's first platform: from the builder's
 * local store, else from the registry. Never throws for an image that cannot be read: the
 * build itself then says what is wrong with the base.
 */
export async function readBaseConfig(
  reference: string,
  plan: ImagePlan,
  builder: BuilderPlugin,
  context: BuilderContext,
): Promise<BaseConfigRead> {
  const platform = plan.info.platforms[0];
  const problems: string[] = [];
  try {
    const local = await builder.imageConfig?.(reference, platform, context);
    if (local) return { config: local, source: `the local store of ${builder.name}` };
  } catch (error) {
    problems.push(`${builder.name}: ${(error as Error)?.message ?? error}`);
  }
  try {
    const remote = await context.registry.imageConfig?.(reference, platform);
    if (remote) return { config: remote, source: "the registry" };
    problems.push("the registry does not have it");
  } catch (error) {
    problems.push((error as Error)?.message ?? String(error));
  }
  return { source: problems.join("; ") || "nothing could read it" };
}

/**
 * The plan to render for a build: `plan` with the chain's state started from what its base
 * image's config says (the user it runs as). Plans without an existing base image are
 * returned as they are. `progress` hears which user the base runs as, or why it could not
 * be read.
 *
 * @example
 * ```ts
 * import type { BuilderContext, BuilderPlugin } from "imgtool";
 * import { defaultConfig, Image, planImage } from "imgtool";
 * import { planForBase } from "./base_config.ts";
 * const builder = {
 *   name: "fake",
 *   imageConfig: () => Promise.resolve({ user: "app", env: [] }),
 * } as unknown as BuilderPlugin;
 * const context = { registry: {} } as unknown as BuilderContext;
 * const image = Image.fromBase("example.com/runs-as-app:1").withAptPackages("curl");
 * const plan = planImage(image, "default", defaultConfig());
 * const planned = await planForBase(plan, builder, context, () => {});
 * console.log(planned.layers[1].context.state.user); // app
 * ```
 */
export async function planForBase(
  plan: ImagePlan,
  builder: BuilderPlugin,
  context: BuilderContext,
  progress: (line: string) => void,
): Promise<ImagePlan> {
  const reference = plan.baseReference;
  if (reference === undefined || plan.reference !== undefined) return plan;
  const read = await readBaseConfig(reference, plan, builder, context);
  if (!read.config) {
    progress(
      `could not read how base image ${reference} runs (${read.source}); ` +
        "layers render as for a base that runs as root",
    );
    return plan;
  }
  const facts: BaseFacts = { user: baseUser(read.config, reference) };
  if (facts.user === undefined) return plan;
  progress(
    `base image ${reference} runs as user ${facts.user} (from ${read.source}): ` +
      "steps that need root run as root, and the image runs as it",
  );
  return planImage(plan.image, plan.exportName, plan.config, {
    platforms: plan.info.platforms,
  }, facts);
}
