/**
 * Stage "plan": turn an image into the chain of layers the other stages walk, with what
 * each layer sees: the image-level facts, the configuration, the lock's digests
 * (`context.pinned`, from the lock file in effect: `./lock.ts`) and the image state the
 * layers before it left. Also gathers the image's `.dockerignore` rules, which govern the
 * whole chain. Synchronous and free of I/O beyond what plugins' `ignoreRules` read and the
 * lock file (read once per process), so that `Image.uri` can use it.
 *
 * @module
 */

import { isDirectory, isFile, readWholeTextSync } from "./fs.ts";
import { resolve } from "./path.ts";
import { projectRoot } from "./project.ts";
import type { Config } from "./config.ts";
import type { Diagnostic } from "./errors.ts";
import { IgnoreRules } from "./ignore.ts";
import { defaultName, type Image, type ImageSpec, specOf } from "./image.ts";
import { activeLock } from "./lock.ts";
import { pinReference } from "./pinning.ts";
import type {
  FileRef,
  IdentifyContext,
  IgnoreRuleSet,
  ImageInfo,
  ImageState,
  Layer,
  Platform,
  PluginContext,
  TreeRef,
} from "./plugin.ts";

/**
 * A layer in its place in the chain.
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage, type PlannedLayer } from "imgtool";
 * const image = Image.fromBase("debian:bookworm").withWorkdir("/app");
 * const plan = planImage(image, "default", defaultConfig());
 * const last: PlannedLayer = plan.layers[plan.layers.length - 1];
 * console.log(last.layer.origin.method, last.context.index); // withWorkdir 1
 * ```
 */
export interface PlannedLayer {
  /** The layer. */
  readonly layer: Layer;
  /** What its hooks see. */
  readonly context: IdentifyContext;
}

/**
 * One image, planned.
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, type ImagePlan, planImage } from "imgtool";
 * const image = Image.fromBase("debian:bookworm-slim");
 * const plan: ImagePlan = planImage(image, "base", defaultConfig());
 * // A base with no layers is used as is: it has a reference and is never built.
 * console.log(plan.info.name, plan.reference); // debian debian:bookworm-slim
 * console.log(plan.layers.length, plan.problems.length); // 1 0
 * ```
 */
export interface ImagePlan {
  /** The export that holds the image (`default` for the default export). */
  readonly exportName: string;
  /** The image. */
  readonly image: Image;
  /** Its description. */
  readonly spec: ImageSpec;
  /** The image-level facts every hook sees. */
  readonly info: ImageInfo;
  /** The configuration. */
  readonly config: Config;
  /** The chain, base first. */
  readonly layers: readonly PlannedLayer[];
  /** The `.dockerignore` rules of the whole chain. */
  readonly ignore: IgnoreRules;
  /**
   * When the image is an existing image used as is (a base with no layers), its reference
   * (pinned by digest when the lock has an entry for it): such an image is never built.
   */
  readonly reference?: string;
  /**
   * The existing image the base layer names, if it names one (whether or not layers follow),
   * pinned by digest when the lock has an entry for it.
   */
  readonly baseReference?: string;
  /** Problems found while planning (a plugin hook that threw, a chain without a base). */
  readonly problems: readonly Diagnostic[];
}

/**
 * What the command line overrides in every image.
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage, type PlanOverrides } from "imgtool";
 * // What `imgtool build --platform linux/arm64` does to every image.
 * const overrides: PlanOverrides = { platforms: ["linux/arm64"] };
 * const image = Image.fromDebianBase({ name: "app", platform: "linux/amd64" });
 * const plan = planImage(image, "default", defaultConfig(), overrides);
 * console.log(plan.info.platforms); // [ "linux/arm64" ]
 * ```
 */
export interface PlanOverrides {
  /** Platforms to build for, instead of the image's own. */
  readonly platforms?: readonly Platform[];
}

/**
 * What a build learned about the base image before rendering (`./base_config.ts`): it starts
 * the chain's state, so layers render for it. Never known to `uri`, and never part of a tag.
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage, type BaseFacts } from "imgtool";
 * const facts: BaseFacts = { user: "app" };
 * const image = Image.fromBase("example.com/runs-as-app:1").withAptPackages("curl");
 * const plan = planImage(image, "default", defaultConfig(), {}, facts);
 * console.log(plan.layers[1].context.state.user); // app
 * ```
 */
export interface BaseFacts {
  /** The user the base image runs as, when it is not root. */
  readonly user?: string;
}

const EMPTY_STATE: ImageState = Object.freeze({ extra: Object.freeze({}) });

/**
 * Plan one image.
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage } from "imgtool";
 * const plan = planImage(Image.fromBase("debian:bookworm").withWorkdir("/app"), "default", defaultConfig());
 * console.log(plan.layers.length); // 2
 * ```
 */
export function planImage(
  image: Image,
  exportName: string,
  config: Config,
  overrides: PlanOverrides = {},
  baseFacts: BaseFacts = {},
): ImagePlan {
  const spec = specOf(image);
  const problems: Diagnostic[] = [];
  const { images: locked } = activeLock();
  const pinned = (reference: string) => pinReference(reference, locked);
  const info: ImageInfo = Object.freeze({
    exportName,
    name: spec.name,
    registry: spec.registry ?? config.registry,
    // Sorted and without repeats: the same set of platforms is the same image.
    platforms: Object.freeze(
      [
        ...new Set<Platform>(
          overrides.platforms ?? spec.platforms ?? config.platforms ?? ["linux/amd64"],
        ),
      ]
        .sort(),
    ),
    pythonVersion: spec.pythonVersion ?? config.pythonVersion,
    baseImage: spec.baseImage,
  });

  // First pass: states, in chain order. Ignore rules are collected as we go; they are
  // complete only after the pass, and every file reference sees the complete set.
  const ruleSets: IgnoreRuleSet[] = [];
  const layers: PlannedLayer[] = [];
  let state = baseFacts.user === undefined
    ? EMPTY_STATE
    : Object.freeze({ ...EMPTY_STATE, user: baseFacts.user });
  spec.layers.forEach((layer, index) => {
    const context = makeContext({ layer, index, info, config, state, pinned });
    const report = (error: unknown, hook: string) =>
      problems.push(hookProblem(exportName, layer, index, hook, error));
    try {
      const rules = layer.plugin.ignoreRules?.(layer.options, context);
      if (rules) ruleSets.push(rules);
    } catch (error) {
      report(error, "ignoreRules");
    }
    try {
      const change = layer.plugin.nextState?.(layer.options, context);
      if (change) {
        state = Object.freeze({ ...state, ...change, extra: { ...state.extra, ...change.extra } });
      }
    } catch (error) {
      report(error, "nextState");
    }
    layers.push({ layer, context });
  });
  const ignore = new IgnoreRules(ruleSets);

  const base = spec.layers[0];
  if (!base || (base.plugin.kind ?? "layer") !== "base") {
    problems.push({
      image: exportName,
      message: "the image has no base layer",
      hint:
        "start the image with Image.fromBase, fromDebianBase, fromDockerfile, fromRefName or fromUvScript",
    });
  }
  spec.layers.slice(1).forEach((layer, offset) => {
    if (layer.plugin.kind === "base") {
      problems.push(layerProblem(exportName, layer, offset + 1, {
        message: `a base layer (${layer.origin.method}) can only start an image`,
        hint: "start a new image with it instead of adding it with withLayer",
      }));
    }
  });

  // The base image a clone names is pinned as the base layer's `FROM` pins it.
  let baseReference = spec.baseImage === undefined ? undefined : pinned(spec.baseImage);
  if (base?.plugin.reference && baseReference === undefined) {
    try {
      baseReference = base.plugin.reference(base.options, layers[0].context);
    } catch (error) {
      problems.push(hookProblem(exportName, base, 0, "reference", error));
    }
  }
  // A base that stands for an existing image, with no layers on it, is that image.
  const reference = base?.plugin.reference && spec.layers.length === 1 ? baseReference : undefined;

  // An image without a name takes its base's repository name.
  const named = info.name !== undefined ? info : Object.freeze({
    ...info,
    name: defaultName(baseReference ?? "image"),
  });
  const finalLayers = named === info ? layers : layers.map((planned) => ({
    layer: planned.layer,
    context: { ...planned.context, image: named },
  }));

  return {
    exportName,
    image,
    spec,
    info: named,
    config,
    layers: finalLayers,
    ignore,
    reference,
    baseReference,
    problems,
  };
}

interface ContextParts {
  readonly layer: Layer;
  readonly index: number;
  readonly info: ImageInfo;
  readonly config: Config;
  readonly state: ImageState;
  readonly pinned: (reference: string) => string;
}

function makeContext(parts: ContextParts): IdentifyContext {
  const { layer, index, info, config, state, pinned } = parts;
  const resolvePath = (path: string) => resolve(layer.origin.dir, path);
  const context: PluginContext = {
    image: info,
    config,
    settings: config.plugins[layer.plugin.name] ?? {},
    state,
    index,
    resolve: resolvePath,
    projectRoot: projectRoot(layer.origin.dir),
    pinned,
  };
  return Object.freeze({
    ...context,
    file: (path: string): FileRef => ({ $ref: "file", path: resolvePath(path) }),
    tree: (path: string): TreeRef => ({ $ref: "tree", path: resolvePath(path) }),
    readText(path: string): string | undefined {
      // A file that cannot be read whole (missing, a pipe or device, too large) reads as
      // missing: `uri` never fails for it, and the layer's validation names the file.
      try {
        return readWholeTextSync(resolvePath(path));
      } catch {
        return undefined;
      }
    },
    isFile: (path: string) => isFile(resolvePath(path)),
    isDirectory: (path: string) => isDirectory(resolvePath(path)),
  });
}

/** A problem found in a layer, with where it came from. */
export function layerProblem(
  exportName: string,
  layer: Layer,
  index: number,
  problem: { message: string; hint?: string; file?: string },
): Diagnostic {
  const { file, line } = layer.origin;
  return {
    ...problem,
    image: exportName,
    layer: { plugin: layer.plugin.name, method: layer.origin.method, index },
    callSite: file ? `${file}${line ? `:${line}` : ""}` : undefined,
  };
}

/** A plugin hook that threw, as a problem that names the plugin. */
export function hookProblem(
  exportName: string,
  layer: Layer,
  index: number,
  hook: string,
  error: unknown,
): Diagnostic {
  const message = error instanceof Error ? error.message : String(error);
  const prefix = `plugin "${layer.plugin.name}" failed in ${hook}: `;
  return layerProblem(exportName, layer, index, {
    // Errors from the identify stage already say which plugin and hook failed.
    message: message.startsWith(prefix) ? message : `${prefix}${message}`,
    hint: "this is a bug in the plugin, or options it cannot handle; check the options you gave",
  });
}
