/**
 * `imgtool status`: the deploy gate. For each selected image and each of its platforms, is
 * it in the registry, under the tag imgtool computes for the spec as it is now? `exists` or
 * `missing`, from the registry's own answer; `unknown`, with the reason, when the registry
 * could not be asked (unreachable, refused, failing, or no registry at all). Unknown never
 * counts as exists. Exit 0 only when everything exists.
 *
 * The spec is loaded and identified as `uri` does it; nothing is built, and the local engine
 * is never asked: a deploy pulls from the registry, so only the registry's answer counts. An
 * existing image used as is (`fromBase` with no layers) is looked up by its own reference.
 *
 * @module
 */

import type { Flags } from "../cli/args.ts";
import { err, out, outJson } from "../cli/output.ts";
import type { TagChecker } from "../check.ts";
import { ImgtoolError } from "../errors.ts";
import { identify, type ImageIdentity } from "../identify.ts";
import type { ImagePlan } from "../plan.ts";
import { commandRegistryClient } from "./registry_client.ts";
import { loadSpecConfig, prepare } from "./prepare.ts";

/** What the registry says of one platform of an image. */
export type PlatformState = "exists" | "missing" | "unknown";

/** One platform of an image, as `status` reports it. */
export interface PlatformStatus {
  /** The platform (`linux/amd64`). */
  readonly platform: string;
  /** Whether the registry has it. */
  readonly status: PlatformState;
  /** Why it is `unknown`: the sentence of the error that kept the registry from answering. */
  readonly reason?: string;
  /** How to make the registry answerable, for `unknown`. */
  readonly hint?: string;
}

/** One image, as `status` reports it. */
export interface ImageStatus {
  /** Its export name. */
  readonly image: string;
  /** The reference looked up: its content URI, or the base itself for an image used as is. */
  readonly uri: string;
  /** Each of its platforms. */
  readonly platforms: readonly PlatformStatus[];
}

/** Run `imgtool status`. */
export async function statusCommand(specPath: string, flags: Flags): Promise<number> {
  const config = loadSpecConfig(specPath, flags);
  let plans: readonly ImagePlan[] = [];
  // No tag cache, unlike build: a cache entry saves build a request and can at worst cost
  // it a rebuild, but the gate's `exists` lets a deploy go ahead. It must rest on what the
  // registry answers now, not on a file of this machine's past answers (one written by an
  // older imgtool, or edited, could claim platforms the manifest lacks).
  const registry = commandRegistryClient(config, flags, () => plans);
  try {
    plans = (await prepare(specPath, flags, config)).plans;
    if (!flags.quiet && !flags.json) err(`config: ${config.file ?? "none (defaults)"}`);
    const identities = await Promise.all(plans.map(identify));
    const statuses = await Promise.all(
      plans.map((plan, index) => imageStatus(plan, identities[index], registry)),
    );
    const ok = statuses.every((image) => image.platforms.every((p) => p.status === "exists"));
    if (flags.json) outJson({ ok, images: statuses });
    else printStatuses(statuses, flags.quiet);
    return ok ? 0 : 1;
  } finally {
    await registry.close();
  }
}

/**
 * Ask `registry` whether the image `identity` names exists, for each platform of `plan`. A
 * registry that cannot answer makes every platform `unknown`, with the error's sentence; an
 * image without a registry is `unknown` too. A mistake in the spec (exit 2) is thrown.
 *
 * @example
 * ```ts
 * import { defaultConfig, identify, Image, planImage } from "imgtool";
 * import { imageStatus } from "./status.ts";
 * const image = Image.fromBase("127.0.0.1:5000/team/base:1").withEnvVars({ A: "1" })
 *   .clone({ name: "app", registry: "127.0.0.1:5000/team" });
 * const plan = planImage(image, "default", defaultConfig(), { platforms: ["linux/amd64"] });
 * // A registry that has nothing, to keep the example offline.
 * const empty = { check: () => Promise.resolve({ exists: false, missing: ["linux/amd64"] }) };
 * const status = await imageStatus(plan, await identify(plan), empty);
 * console.log(status.platforms); // [ { platform: "linux/amd64", status: "missing" } ]
 * ```
 */
export async function imageStatus(
  plan: ImagePlan,
  identity: ImageIdentity,
  registry: TagChecker,
): Promise<ImageStatus> {
  const platforms = [...plan.info.platforms];
  const unknown = (reason: string, hint?: string): ImageStatus => ({
    image: plan.exportName,
    uri: identity.uri,
    platforms: platforms.map((platform) => ({ platform, status: "unknown", reason, hint })),
  });
  // An image used as is names its registry in its reference (Docker Hub when none).
  if (!identity.prebuilt && !plan.info.registry) {
    return unknown(`image "${plan.exportName}" has no registry to look in`, NO_REGISTRY_HINT);
  }
  let missing: ReadonlySet<string>;
  try {
    missing = new Set((await registry.check(identity.uri, platforms)).missing);
  } catch (error) {
    // A mistake in the spec or the command line stops the command, as it stops `uri`.
    if (!(error instanceof ImgtoolError) || error.exitCode === 2) throw error;
    return unknown(error.message, error.hint);
  }
  return {
    image: plan.exportName,
    uri: identity.uri,
    platforms: platforms.map((platform) => ({
      platform,
      status: missing.has(platform) ? "missing" : "exists",
    })),
  };
}

const NO_REGISTRY_HINT =
  "set registry in the image (registry: ...), in imgtool.toml, IMGTOOL_REGISTRY or --registry";

/**
 * The human output: a line per image and platform (`exists   linux/amd64  URI`), the reason
 * under an image the registry could not answer for, then the counts (unless `quiet`).
 */
function printStatuses(statuses: readonly ImageStatus[], quiet: boolean): void {
  const counts: Record<PlatformState, number> = { exists: 0, missing: 0, unknown: 0 };
  for (const image of statuses) {
    for (const platform of image.platforms) {
      counts[platform.status]++;
      out(`${platform.status.padEnd(7)}  ${platform.platform}  ${image.uri}`);
    }
    // Every platform of an image shares its reason: the registry was asked once for all.
    const unknown = image.platforms.find((platform) => platform.status === "unknown");
    if (unknown?.reason) out(`  ${image.image}: ${unknown.reason}`);
    if (unknown?.hint) out(`  hint: ${unknown.hint}`);
  }
  if (quiet) return;
  out(
    counts.missing + counts.unknown === 0
      ? "ready: every image exists, for every platform"
      : `not ready: ${counts.missing} missing, ${counts.unknown} unknown, ${counts.exists} exist`,
  );
}
