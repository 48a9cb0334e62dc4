/**
 * The settings a layer's hooks read, so that every setting that changes what a layer renders
 * counts in its identity, whether or not the plugin's `identify` hook names it.
 *
 * Why: a plugin's render may read `context.config.cacheMounts`, `context.settings.version`
 * or `context.image.pythonVersion` and render differently for each value. Asking every
 * plugin (users' too) to repeat each such read in its `identify` hook makes forgetting one a
 * tag that hides a difference. Instead the core hands the hooks a context whose `config`,
 * `settings` and `image` note what is read, and the values read count in the layer's digest.
 * A setting no hook of the layer reads does not count, so an image that never reads the
 * Python version keeps its tag whatever the version is set to.
 *
 * What counts as a read: a property read (`config.images.uv`), an `in` test, listing an
 * object's keys (`Object.keys(config.refs)` counts the whole table). Copying the whole
 * configuration (`{ ...context.config }`) counts what can change a recipe, not the settings of
 * {@link BUILD_ONLY_CONFIG} or the image's naming ({@link NAMING_INFO}): those only count when
 * a hook names them. The settings of {@link MACHINE_CONFIG} (paths of this machine) never
 * count. Only what a hook reads before it returns counts (for an `async` hook:
 * before its first `await`), so that the synchronous identity (`Image.uri`) and the
 * asynchronous one agree.
 *
 * The lock's digests count the same way: each `context.pinned(reference)` call is noted, and
 * when the lock has an entry for the reference, the digest counts as the read
 * `lock.<reference>`. A reference without an entry adds nothing, so that without a lock file
 * every tag is what it was; the references are kept all the same
 * ({@link SettingRecording.images}): they are the images `imgtool lock` resolves.
 *
 * @module
 */

import type { PluginContext } from "./plugin.ts";

/**
 * Configuration keys that say how or where an image is built, not what it holds. Copying the
 * whole configuration does not count them; a hook that reads one by name does count it.
 *
 * @example
 * ```ts
 * import { BUILD_ONLY_CONFIG } from "./setting_reads.ts";
 * console.log(BUILD_ONLY_CONFIG.has("network"), BUILD_ONLY_CONFIG.has("cacheMounts")); // true false
 * ```
 */
export const BUILD_ONLY_CONFIG: ReadonlySet<string> = new Set([
  "registry",
  "builder",
  "platforms",
  "pythonVersion",
  "network",
  "insecureRegistries",
  "registryTimeout",
  "tags",
]);

/**
 * Configuration keys of this machine: paths and endpoints (where the configuration file,
 * secrets, docker client and engine are; which folders outside the project dependency files
 * may name). They never count, even read by name: a tag does not depend on the machine, and
 * what they let into a build context counts as the files themselves (`context.file`,
 * `context.tree`).
 *
 * @example
 * ```ts
 * import { MACHINE_CONFIG } from "./setting_reads.ts";
 * console.log(MACHINE_CONFIG.has("allowedPaths"), MACHINE_CONFIG.has("installer")); // true false
 * ```
 */
export const MACHINE_CONFIG: ReadonlySet<string> = new Set([
  "file",
  "allowedPaths",
  "secretsDir",
  "secretFiles",
  "dockerClient",
  "dockerHost",
  "builders",
  "append",
]);

/**
 * Image facts that name an image rather than say what it holds: copying the whole
 * `context.image` does not count them (the tag ignores names); reading one by name does.
 *
 * @example
 * ```ts
 * import { NAMING_INFO } from "./setting_reads.ts";
 * console.log([...NAMING_INFO]); // [ "exportName", "name", "registry" ]
 * ```
 */
export const NAMING_INFO: ReadonlySet<string> = new Set(["exportName", "name", "registry"]);

/**
 * A context that notes the settings its hooks read, and what they read.
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage } from "imgtool";
 * import { recordSettingReads } from "./setting_reads.ts";
 * const plan = planImage(Image.fromBase("debian:bookworm"), "default", defaultConfig());
 * const recording = recordSettingReads(plan.layers[0].context);
 * const cache = recording.context.config.cacheMounts; // a hook reads a setting
 * recording.stop();
 * console.log(cache, recording.reads()); // true { "config.cacheMounts": true }
 * ```
 */
export interface SettingRecording<C extends PluginContext> {
  /** The context to give the hooks: `config`, `settings` and `image` note what is read. */
  readonly context: C;
  /** End the recording: reads from now on are not noted. */
  stop(): void;
  /**
   * What was read, by path (`config.images.uv`, `settings.version`, `image.pythonVersion`,
   * `lock.<reference>` for a lock entry), sorted by path. Values are JSON data without objects
   * (an object is a list of `[key, value]` pairs), so that no setting can pose as a file
   * reference of a contribution.
   */
  reads(): Record<string, unknown>;
  /** Every reference the hooks asked `context.pinned` about, with an entry or not, sorted. */
  images(): string[];
}

/**
 * Give `context` to hooks through {@link SettingRecording.context} to learn which settings
 * they read.
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage } from "imgtool";
 * import { recordSettingReads } from "./setting_reads.ts";
 * const image = Image.fromBase("debian:bookworm").withPipPackages("numpy");
 * const pip = planImage(image, "default", defaultConfig()).layers[1];
 * const recording = recordSettingReads(pip.context);
 * await pip.layer.plugin.render(pip.layer.options, { ...recording.context, contextDir: "." });
 * recording.stop();
 * console.log(Object.keys(recording.reads()).includes("config.installer")); // true
 * ```
 */
export function recordSettingReads<C extends PluginContext>(context: C): SettingRecording<C> {
  const noted = new Map<string, unknown>();
  const asked = new Set<string>();
  let recording = true;
  const note = (path: string, value: unknown) => {
    if (recording && !noted.has(path)) noted.set(path, snapshot(value));
  };
  const pinned = (reference: string) => {
    const result = context.pinned(reference);
    if (recording) {
      asked.add(reference);
      // The digest the lock holds: what `name:tag@<digest>` added.
      if (result !== reference) {
        note(`lock.${reference}`, result.slice(result.lastIndexOf("@") + 1));
      }
    }
    return result;
  };
  return {
    context: {
      ...context,
      pinned,
      config: view(context.config, "config", note, {
        copyOnly: BUILD_ONLY_CONFIG,
        never: MACHINE_CONFIG,
      }),
      settings: view(context.settings, "settings", note, { table: true }),
      image: view(context.image, "image", note, { copyOnly: NAMING_INFO }),
    },
    stop() {
      recording = false;
    },
    reads() {
      return Object.fromEntries([...noted].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    },
    images() {
      return [...asked].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    },
  };
}

type Note = (path: string, value: unknown) => void;

/** How a {@link view} notes reads. */
interface ViewKind {
  /** Keys that a wholesale copy (`{ ...view }`) does not note; a read by name does. */
  readonly copyOnly?: ReadonlySet<string>;
  /** Keys never noted. */
  readonly never?: ReadonlySet<string>;
  /** A table whose set of keys can matter (`refs`, a plugin's settings): listing it counts. */
  readonly table?: boolean;
}

/**
 * A view of `target` that notes reads under `path`. Nested plain objects are views of their
 * own (tables); anything else is noted whole when read. The view's target is an unfrozen
 * copy, so that it may hand out views of nested (frozen) objects.
 */
function view<T extends object>(target: T, path: string, note: Note, kind: ViewKind): T {
  const copyOnly = kind.copyOnly ?? new Set<string>();
  const never = kind.never ?? new Set<string>();
  // A spread asks for each key's descriptor just before reading it: so a read is told apart
  // from a copy.
  let copying: string | undefined;
  const at = (key: string) => `${path}.${key}`;
  return new Proxy({ ...target }, {
    get(copy, key) {
      const value = Reflect.get(copy, key);
      if (typeof key === "symbol") return value;
      const copied = copying === key;
      copying = undefined;
      if (never.has(key)) return value;
      if (isPlainObject(value)) return view(value, at(key), note, { table: true });
      if (!(copied && copyOnly.has(key))) note(at(key), value);
      return value;
    },
    has(copy, key) {
      if (typeof key === "string" && !never.has(key)) note(at(key), Reflect.get(copy, key));
      return Reflect.has(copy, key);
    },
    getOwnPropertyDescriptor(copy, key) {
      copying = typeof key === "string" ? key : undefined;
      return Reflect.getOwnPropertyDescriptor(copy, key);
    },
    ownKeys(copy) {
      // Listing a table reads all of it; the top level's keys are the context's fixed shape.
      if (kind.table) note(path, copy);
      return Reflect.ownKeys(copy);
    },
  }) as T;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** A value read, as JSON data without objects (see {@link SettingRecording.reads}). */
function snapshot(value: unknown): unknown {
  if (value === undefined || value === null) return null;
  if (typeof value === "number") return Number.isFinite(value) ? value : String(value);
  if (typeof value === "string" || typeof value === "boolean") return value;
  if (Array.isArray(value)) return value.map(snapshot);
  if (value instanceof Date) return value.toISOString();
  if (isPlainObject(value)) {
    return Object.keys(value).sort().map((key) => [key, snapshot(value[key])]);
  }
  return String(value);
}
