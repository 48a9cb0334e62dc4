/**
 * Stage "check": does an image already exist where the build would put it, for every
 * platform it asks for? Pushed builds ask the registry; local builds ask the builder's
 * image store. An unreachable registry is an error, never a reason to assume anything.
 *
 * @module
 */

import type { BuilderContext, BuilderPlugin } from "./builder.ts";
import type { ImageIdentity } from "./identify.ts";
import type { ImagePlan } from "./plan.ts";
import type { Platform } from "./plugin.ts";

/** What the registry client answers about a tag. */
export interface TagStatus {
  /** The tag exists and has every requested platform. */
  readonly exists: boolean;
  /** Requested platforms the tag lacks. */
  readonly missing: readonly string[];
}

/** Something that can tell whether a tag exists in a registry. */
export interface TagChecker {
  /** Look the tag up for these platforms. */
  check(reference: string, platforms: Platform[]): Promise<TagStatus>;
}

/** Where the check looked, and what it found. */
export interface CheckResult {
  /** Whether the image is there, for every platform. */
  readonly exists: boolean;
  /** Where it looked: `registry` or `local`. */
  readonly where: "registry" | "local" | "base";
  /** Platforms that are missing (registry checks only). */
  readonly missing: readonly string[];
}

/** Check one image: in the registry when pushing, else in the builder's local store. */
export async function checkImage(
  plan: ImagePlan,
  identity: ImageIdentity,
  options: {
    push: boolean;
    registry: TagChecker;
    builder?: BuilderPlugin;
    builderContext?: BuilderContext;
  },
): Promise<CheckResult> {
  if (identity.prebuilt) return { exists: true, where: "base", missing: [] };
  const platforms = [...plan.info.platforms];
  if (options.push) {
    const status = await options.registry.check(identity.uri, platforms);
    return { exists: status.exists, where: "registry", missing: status.missing };
  }
  const { builder, builderContext } = options;
  const exists = builder?.exists && builderContext
    ? await builder.exists(identity.uri, platforms, builderContext)
    : false;
  return { exists, where: "local", missing: exists ? [] : platforms };
}
