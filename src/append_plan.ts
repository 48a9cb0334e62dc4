/**
 * Which layers of an image can be appended through the registry, without a build engine:
 * the longest run of layers at the end of the chain whose plugins describe them as files
 * and configuration changes (their `append` hook). The layers before that run are the
 * prefix, an image of its own whose tag the Merkle chain already gives (the tag an image
 * made of just those layers has), built by the engine once and found by that tag later.
 *
 * @module
 */

import type { ImageIdentity } from "./identify.ts";
import type { ImagePlan } from "./plan.ts";
import type { Appended } from "./plugin.ts";

/**
 * One layer to append: where it is in the chain and what it adds.
 *
 * @example
 * ```ts
 * import type { AppendedLayer } from "./append_plan.ts";
 * const layer: AppendedLayer = {
 *   index: 3,
 *   plugin: "env_vars",
 *   method: "withEnvVars",
 *   appended: { config: { env: { MODE: "prod" } } },
 * };
 * console.log(layer.appended.files === undefined); // true
 * ```
 */
export interface AppendedLayer {
  /** Its place in the chain. */
  readonly index: number;
  /** Its plugin's name (the image's history names it). */
  readonly plugin: string;
  /** The method that made it, for messages. */
  readonly method: string;
  /** What it adds. */
  readonly appended: Appended;
}

/**
 * An image split into a prefix the engine builds and layers appended to it.
 *
 * @example
 * ```ts
 * import { defaultConfig, identifySync, Image, planImage } from "imgtool";
 * import { appendSplit } from "./append_plan.ts";
 * const image = Image.fromBase("127.0.0.1:5000/python:3.11")
 *   .clone({ name: "app", registry: "127.0.0.1:5000" })
 *   .withCommands("true")
 *   .withEnvVars({ MODE: "prod" });
 * const plan = planImage(image, "default", defaultConfig());
 * const split = appendSplit(plan, identifySync(plan));
 * console.log(split?.prefix.layers.length, split?.layers.map((l) => l.plugin)); // 2 [ "env_vars" ]
 * ```
 */
export interface AppendSplit {
  /** The image of the layers before the appended ones. */
  readonly prefix: ImagePlan;
  /** The prefix's reference: the image's repository, with the prefix's own content tag. */
  readonly prefixUri: string;
  /** The layers appended to it, in chain order. */
  readonly layers: readonly AppendedLayer[];
}

/**
 * Split `plan` for appending, or `undefined` when its last layer needs the engine (or the
 * image is not built at all). A layer whose `append` hook throws counts as one that needs
 * the engine: the engine path reports the problem, if there is one, as it always did.
 */
export function appendSplit(plan: ImagePlan, identity: ImageIdentity): AppendSplit | undefined {
  if (identity.prebuilt || plan.reference !== undefined) return undefined;
  const layers: AppendedLayer[] = [];
  let first = plan.layers.length;
  for (let index = plan.layers.length - 1; index > 0; index--) {
    const { layer, context } = plan.layers[index];
    if (layer.plugin.kind === "base" || layer.plugin.append === undefined) break;
    // Secrets are mounted by the engine's steps: a layer with any is the engine's.
    if ((layer.plugin.secrets?.(layer.options, context) ?? []).length > 0) break;
    let appended: Appended | undefined;
    try {
      appended = layer.plugin.append(layer.options, context);
    } catch {
      break;
    }
    if (appended === undefined) break;
    layers.unshift({ index, plugin: layer.plugin.name, method: layer.origin.method, appended });
    first = index;
  }
  if (layers.length === 0) return undefined;
  const digest = identity.layerDigests[first - 1];
  const repository = identity.uri.slice(0, identity.uri.lastIndexOf(":"));
  return {
    prefix: { ...plan, layers: plan.layers.slice(0, first) },
    prefixUri: `${repository}:${digest.slice(0, identity.tag.length)}`,
    layers,
  };
}

/**
 * The identity of a split image's prefix: its own content tag (the chain's digest after the
 * prefix's last layer) in the image's repository.
 *
 * @example
 * ```ts
 * import { defaultConfig, identifySync, Image, planImage } from "imgtool";
 * import { appendSplit, prefixIdentity } from "./append_plan.ts";
 * const image = Image.fromBase("127.0.0.1:5000/python:3.11")
 *   .clone({ name: "app", registry: "127.0.0.1:5000" })
 *   .withCommands("true")
 *   .withWorkdir("/app");
 * const plan = planImage(image, "default", defaultConfig());
 * const identity = identifySync(plan);
 * const prefix = prefixIdentity(identity, appendSplit(plan, identity)!);
 * console.log(prefix.tag === identity.layerDigests[1].slice(0, 32)); // true
 * ```
 */
export function prefixIdentity(identity: ImageIdentity, split: AppendSplit): ImageIdentity {
  return {
    tag: split.prefixUri.slice(split.prefixUri.lastIndexOf(":") + 1),
    uri: split.prefixUri,
    layerDigests: identity.layerDigests.slice(0, split.prefix.layers.length),
    prebuilt: false,
  };
}
