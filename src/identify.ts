/**
 * Stage "identify": the content identity of every layer, and from it the image's tag.
 *
 * A Merkle chain: the root covers the identity scheme, the platforms, the base image
 * `clone` set and the configured `# syntax` line (the core renders it); each layer's digest
 * covers its parent's digest, its plugin's name and version, its contribution (from the
 * plugin's `identify` hook) in canonical encoding, with the files it reads replaced by their
 * content digests, and the settings its hooks read (`./setting_reads.ts`): each
 * configuration value, plugin setting and image fact (the Python version among them) that
 * its `nextState`, `identify` or `render` hook reads, with the value read, and the digest the
 * lock holds for each image reference they pin (`context.pinned`). A shared prefix
 * therefore has one identity wherever it is used; a setting changes the tag of exactly the
 * images with a layer that reads it, so the Python version counts from the first layer that
 * reads it (the Debian base does; `fromBase` and a pip layer on it do not).
 *
 * @module
 */

import { canonicalJson, collectRefs, type Ref } from "./canonical.ts";
import {
  fileDigest,
  fileDigestSync,
  sha256,
  sha256Async,
  treeDigest,
  treeDigestSync,
} from "./digest.ts";
import type { IgnoreRules } from "./ignore.ts";
import type { ImagePlan, PlannedLayer } from "./plan.ts";
import type { IdentifyContext } from "./plugin.ts";
import { recordSettingReads } from "./setting_reads.ts";

/**
 * The identity of one planned image.
 *
 * @example
 * ```ts
 * import { defaultConfig, identifySync, Image, type ImageIdentity, planImage } from "imgtool";
 * const image = Image.fromDebianBase({ name: "app" }).withWorkdir("/app");
 * const identity: ImageIdentity = identifySync(planImage(image, "default", defaultConfig()));
 * console.log(identity.uri === `app:${identity.tag}`); // true
 * console.log(identity.layerDigests.length, identity.prebuilt); // 2 false
 * ```
 */
export interface ImageIdentity {
  /** The tag: the first 32 hex digits of the last layer's digest. */
  readonly tag: string;
  /** `<registry>/<name>:<tag>`, `<name>:<tag>`, or the base reference for unbuilt bases. */
  readonly uri: string;
  /** The digest of every layer, base first. */
  readonly layerDigests: readonly string[];
  /** Whether the image is an existing one used as is (never built). */
  readonly prebuilt: boolean;
}

/**
 * The identity scheme: bump it when the encoding or the rendering of built-in recipes
 * changes incompatibly. The chain's root covers it.
 *
 * @example
 * ```ts
 * import { IDENTITY_SCHEME } from "./identify.ts";
 * console.log(IDENTITY_SCHEME.startsWith("imgtool-identity/")); // true
 * ```
 */
export const IDENTITY_SCHEME = "imgtool-identity/2";
const TAG_LENGTH = 32;

/**
 * The identity of an image, hashing files synchronously (for `Image.uri`).
 *
 * @example
 * ```ts
 * import { defaultConfig, identifySync, Image, planImage } from "imgtool";
 * const plan = planImage(Image.fromDebianBase({ name: "app" }), "default", defaultConfig());
 * console.log(identifySync(plan).uri);
 * ```
 */
export function identifySync(plan: ImagePlan): ImageIdentity {
  const steps = chain(
    plan,
    plan.layers.map(layerIdentity),
    (ref) => digestRefSync(ref, plan.ignore),
  );
  for (let step = steps.next();; step = steps.next(sha256(step.value))) {
    if (step.done) return step.value;
  }
}

/**
 * The identity of an image, hashing the files of each layer in parallel.
 *
 * @example
 * ```ts
 * import { defaultConfig, identify, Image, planImage } from "imgtool";
 * const plan = planImage(Image.fromDebianBase({ name: "app" }), "default", defaultConfig());
 * console.log((await identify(plan)).tag);
 * ```
 */
export async function identify(plan: ImagePlan): Promise<ImageIdentity> {
  // Hash every file and tree the chain reads first, all in parallel; then walk the chain.
  const layers = plan.layers.map(layerIdentity);
  const refs = layers.flatMap((layer) => collectRefs(layer.contribution));
  const unique = [...new Map(refs.map((ref) => [refKey(ref), ref])).values()];
  const values = await Promise.all(unique.map((ref) => digestRef(ref, plan.ignore)));
  const digests = new Map(unique.map((ref, index) => [refKey(ref), values[index]]));
  // Web Crypto: the TypeScript hasher runs interpreted in a fresh process (same digests).
  const steps = chain(plan, layers, (ref) => digests.get(refKey(ref)));
  for (let step = steps.next();; step = steps.next(await sha256Async(step.value))) {
    if (step.done) return step.value;
  }
}

function refKey(ref: Ref): string {
  return `${ref.$ref}:${ref.path}`;
}

/**
 * The Merkle chain, as a generator: it yields each text to hash and is sent back its
 * SHA-256, so that one walk serves the synchronous and the asynchronous hashing.
 */
function* chain(
  plan: ImagePlan,
  layers: readonly LayerIdentity[],
  digestOf: (ref: Ref) => unknown,
): Generator<string, ImageIdentity, string> {
  let parent: string = yield canonicalJson({
    scheme: IDENTITY_SCHEME,
    platforms: plan.info.platforms,
    baseImage: plan.info.baseImage,
    // Rendering puts it at the top of the Dockerfile, in place of the base's own.
    syntax: plan.config.dockerfileSyntax,
  }, noRefs);
  const layerDigests: string[] = [];
  for (const [index, planned] of plan.layers.entries()) {
    const { contribution, settings } = layers[index];
    const { plugin } = planned.layer;
    parent = yield canonicalJson({
      parent,
      plugin: plugin.name,
      version: plugin.version ?? 1,
      contribution,
      settings,
    }, digestOf);
    layerDigests.push(parent);
  }
  if (plan.reference !== undefined) {
    const tag = plan.reference.split("@")[0].match(/:([^:/]+)$/)?.[1] ?? "latest";
    return { tag, uri: plan.reference, layerDigests, prebuilt: true };
  }
  const tag = parent.slice(0, TAG_LENGTH);
  const repository = plan.info.registry
    ? `${plan.info.registry}/${plan.info.name}`
    : plan.info.name;
  return { tag, uri: `${repository}:${tag}`, layerDigests, prebuilt: false };
}

/** What a layer puts in its digest besides its parent and its plugin. */
export interface LayerIdentity {
  /** What its identify hook says, or its options. */
  readonly contribution: unknown;
  /**
   * The settings its hooks read, with the values read, and the lock's digest of each image
   * it pins (see `./setting_reads.ts`).
   */
  readonly settings: Record<string, unknown>;
  /** The image references its hooks pinned, with a lock entry or not. */
  readonly images: readonly string[];
}

/**
 * The image references the layers of `plan` start from or copy from, as their hooks ask
 * `context.pinned` about them (with a lock entry or not, pinned by digest or not), sorted and
 * without repeats: the images `imgtool lock` resolves. Reads what the hooks read; no registry.
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage } from "imgtool";
 * import { imagesUsed } from "./identify.ts";
 * const plan = planImage(Image.fromBase("debian:bookworm").withWorkdir("/app"), "default", defaultConfig());
 * console.log(imagesUsed(plan)); // [ "debian:bookworm" ]
 * ```
 */
export function imagesUsed(plan: ImagePlan): string[] {
  const images = new Set(plan.layers.flatMap((planned) => recordLayer(planned).images));
  return [...images].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * A layer's contribution, and the settings its `nextState`, `identify` and `render` hooks
 * read. The hooks return data and have no effects (the plugin contract), so running them
 * here only to see what they read changes nothing; what they fail at here is reported where
 * it belongs (planning, validation, rendering), except `identify`, without which there is no
 * identity (it throws that failure).
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage } from "imgtool";
 * import { layerIdentity } from "./identify.ts";
 * const plan = planImage(Image.fromBase("debian:bookworm").withWorkdir("/app"), "x", defaultConfig());
 * console.log(layerIdentity(plan.layers[1]).contribution); // { workdir: "/app" }
 * ```
 */
export function layerIdentity(planned: PlannedLayer): LayerIdentity {
  const recorded = recordLayer(planned);
  if ("failure" in recorded) throw recorded.failure;
  return recorded;
}

/** {@link layerIdentity}, with the failure of the identify hook instead of its value. */
function recordLayer(
  planned: PlannedLayer,
): LayerIdentity | (Omit<LayerIdentity, "contribution"> & { readonly failure: unknown }) {
  const { plugin, options } = planned.layer;
  const recording = recordSettingReads(planned.context);
  const { context } = recording;
  try {
    plugin.nextState?.(options, context);
  } catch {
    // Planning reported it.
  }
  let value: { contribution: unknown } | { failure: unknown };
  try {
    value = { contribution: contributionIn(planned, context) };
  } catch (failure) {
    value = { failure };
  }
  try {
    // The same folder as rendering gives the layer (src/render.ts).
    const contextDir = `.imgtool/${String(planned.context.index).padStart(2, "0")}-${plugin.name}`;
    const rendered: unknown = plugin.render(options, { ...context, contextDir });
    if (rendered instanceof Promise) rendered.catch(() => {});
  } catch {
    // Rendering the image reports it.
  }
  recording.stop();
  return { ...value, settings: recording.reads(), images: recording.images() };
}

/** A layer's contribution: what its identify hook says, or its options. */
export function contribution(planned: PlannedLayer): unknown {
  return contributionIn(planned, planned.context);
}

function contributionIn(planned: PlannedLayer, context: IdentifyContext): unknown {
  const { plugin, options } = planned.layer;
  if (!plugin.identify) return options;
  let value: unknown;
  try {
    value = plugin.identify(options, context);
  } catch (error) {
    throw new Error(
      `plugin "${plugin.name}" failed in identify: ${(error as Error)?.message ?? error}`,
      { cause: error },
    );
  }
  if (value === undefined) {
    throw new Error(
      `plugin "${plugin.name}" failed in identify: it returned nothing (return null for no contribution)`,
    );
  }
  return value;
}

function noRefs(): never {
  throw new Error("internal: the identity root has no file references");
}

function digestRefSync(ref: Ref, ignore: IgnoreRules): unknown {
  return ref.$ref === "file"
    ? { $file: fileDigestSync(ref.path) }
    : { $tree: treeDigestSync(ref.path, ignore) };
}

async function digestRef(ref: Ref, ignore: IgnoreRules): Promise<unknown> {
  return ref.$ref === "file"
    ? { $file: await fileDigest(ref.path) }
    : { $tree: await treeDigest(ref.path, ignore) };
}
