/**
 * What differs between two identity trees (`./identity_tree.ts`): the one in an image's
 * provenance record, and the spec's now. It answers "why is this tag not that one?": only
 * what differs, each difference naming the layer it is in (its place, the method that made
 * it and the spec line) and the change.
 *
 * Layers are paired by plugin and method in chain order (a longest common subsequence), so
 * that a layer added or removed is one difference, not a difference in every layer after it.
 * Files are compared by path; a folder the spec now names by another path (moved, the same
 * content) is compared with the one it replaced.
 *
 * @module
 */

import type { Dependency } from "./provenance.ts";
import {
  type FileFact,
  FileListing,
  type IdentityTree,
  type ListedLayer,
  type ListedTree,
  type TreeLayer,
} from "./identity_tree.ts";

/** A layer of either kind of tree: its files in a record, or listed on demand. */
type AnyLayer = TreeLayer | ListedLayer;

/**
 * A layer as a difference names it.
 *
 * @example
 * ```ts
 * import type { LayerName } from "./identity_diff.ts";
 * const layer: LayerName = { index: 2, plugin: "pip", method: "withPipPackages", file: "spec.ts", line: 5 };
 * console.log(layer.method); // withPipPackages
 * ```
 */
export interface LayerName {
  /** Its place in the chain, from 0 (the base). */
  readonly index: number;
  /** Its plugin. */
  readonly plugin: string;
  /** The method that made it. */
  readonly method: string;
  /** The spec file that called the method, relative to the spec's folder. */
  readonly file: string | null;
  /** The line of that call. */
  readonly line: number | null;
}

/**
 * The kinds of difference.
 *
 * @example
 * ```ts
 * import type { DifferenceKind } from "./identity_diff.ts";
 * const kind: DifferenceKind = "file-changed";
 * console.log(kind); // file-changed
 * ```
 */
export type DifferenceKind =
  | "scheme"
  | "platforms"
  | "python-version"
  | "base-image"
  | "syntax"
  | "base-digest"
  | "layer-added"
  | "layer-removed"
  | "plugin-version"
  | "tool-version"
  | "option"
  | "setting"
  | "moved"
  | "file-added"
  | "file-removed"
  | "file-changed"
  | "mode-changed"
  | "folder-added"
  | "folder-removed"
  | "missing-now"
  | "found-now";

/**
 * One difference. `old` is REF's side and `new` the spec's now; either is left out where it
 * has none (an option added or removed).
 *
 * @example
 * ```ts
 * import { describeDifference, type Difference } from "./identity_diff.ts";
 * const change: Difference = {
 *   kind: "file-changed",
 *   layer: { index: 2, plugin: "source_folder", method: "withSourceFolder", file: "spec.ts", line: 6 },
 *   what: "src/app.py",
 * };
 * console.log(describeDifference(change)); // layer 2 withSourceFolder (spec.ts:6): file changed: src/app.py
 * ```
 */
export interface Difference {
  /** What kind of change. */
  readonly kind: DifferenceKind;
  /** The layer it is in: the spec's now, or REF's for a removed layer; none for the image. */
  readonly layer?: LayerName;
  /** What changed: an option's or setting's key path, a file's path, an image reference. */
  readonly what?: string;
  /** The value in REF's record. */
  readonly old?: unknown;
  /** The value now. */
  readonly new?: unknown;
}

/**
 * Every difference between the tree in REF's record (`old`) and the spec's now (`now`), in
 * chain order: the image's facts first, then layer by layer.
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage } from "imgtool";
 * import { identityTree } from "./identity_tree.ts";
 * import { compareTrees, describeDifference } from "./identity_diff.ts";
 * const treeOf = (workdir: string) =>
 *   identityTree(planImage(Image.fromBase("debian:bookworm").withWorkdir(workdir), "default", defaultConfig()), "/work/spec.ts");
 * const differences = compareTrees(await treeOf("/app"), await treeOf("/srv"));
 * console.log(differences.map((d) => describeDifference(d).replace(/\(.*\)/, "(…)"))); // [ 'layer 1 withWorkdir (…): option workdir: "/app" → "/srv"' ]
 * ```
 */
export function compareTrees(old: IdentityTree, now: IdentityTree | ListedTree): Difference[] {
  const differences: Difference[] = [];
  const image = (kind: DifferenceKind, before: unknown, after: unknown, layer?: LayerName) => {
    if (!same(before, after)) differences.push({ kind, old: before, new: after, layer });
  };
  image("scheme", old.scheme, now.scheme);
  image("platforms", old.image.platforms, now.image.platforms);
  const reader = now.layers.find((layer) => "image.pythonVersion" in layer.settings);
  image("python-version", old.image.pythonVersion, now.image.pythonVersion, nameOf(reader));
  image("base-image", old.image.baseImage, now.image.baseImage);
  image("syntax", old.image.syntax, now.image.syntax);
  for (const [before, after] of alignLayers(old.layers, now.layers)) {
    if (!after) differences.push({ kind: "layer-removed", layer: nameOf(before) });
    else if (!before) differences.push({ kind: "layer-added", layer: nameOf(after) });
    else differences.push(...compareLayers(before, after));
  }
  return differences;
}

/**
 * The images that moved: each reference both lists with a digest, whose digests differ,
 * named with the layer of `tree` that uses it (the base layer, unless another names it).
 *
 * @example
 * ```ts
 * import { compareDependencies } from "./identity_diff.ts";
 * const [a, b] = [`sha256:${"a".repeat(64)}`, `sha256:${"b".repeat(64)}`];
 * const moved = compareDependencies([{ reference: "python:3.12", digest: a }], [{ reference: "python:3.12", digest: b }]);
 * console.log(moved.map((d) => `${d.kind} ${d.what}`)); // [ "base-digest python:3.12" ]
 * ```
 */
export function compareDependencies(
  old: readonly Dependency[],
  now: readonly Dependency[],
  tree?: IdentityTree | ListedTree,
): Difference[] {
  const before = new Map(old.map((dependency) => [dependency.reference, dependency.digest]));
  const differences: Difference[] = [];
  for (const { reference, digest } of now) {
    const was = before.get(reference);
    if (!was || !digest || was === digest) continue;
    const user = tree?.layers.find((layer) =>
      JSON.stringify([layer.contribution, layer.settings]).includes(JSON.stringify(reference))
    ) ?? tree?.layers[0];
    differences.push({
      kind: "base-digest",
      layer: nameOf(user),
      what: reference,
      old: was,
      new: digest,
    });
  }
  return differences;
}

/**
 * One line for a difference: the layer (its place, method and spec line) or `image`, then
 * the change.
 *
 * @example
 * ```ts
 * import { describeDifference } from "./identity_diff.ts";
 * console.log(describeDifference({ kind: "platforms", old: ["linux/amd64"], new: ["linux/amd64", "linux/arm64"] }));
 * // image: platforms linux/amd64 → linux/amd64, linux/arm64
 * ```
 */
export function describeDifference(difference: Difference): string {
  const { layer, what } = difference;
  const where = layer
    ? `layer ${layer.index} ${layer.method}${
      layer.file ? ` (${layer.file}${layer.line ? `:${layer.line}` : ""})` : ""
    }`
    : "image";
  const change = `${shown(difference.old)} → ${shown(difference.new)}`;
  const text: Record<DifferenceKind, () => string> = {
    "scheme": () => `identity scheme ${change} (this imgtool computes tags another way)`,
    "platforms": () => `platforms ${list(difference.old)} → ${list(difference.new)}`,
    "python-version": () => `Python version ${change}`,
    "base-image": () => `base image ${change}`,
    "syntax": () => `Dockerfile syntax ${change}`,
    "base-digest": () => `base ${what} moved: ${short(difference.old)} → ${short(difference.new)}`,
    "layer-added": () => `layer added (${layer?.plugin})`,
    "layer-removed": () => `layer removed (${layer?.plugin}; in REF's spec)`,
    "plugin-version": () => `plugin ${layer?.plugin} version ${change}`,
    "tool-version": () => `tool version ${what}: ${change}`,
    "option": () => `option ${what}: ${change}`,
    "setting": () => `setting ${what}: ${change}`,
    "moved": () => `${what} moved: ${shown(difference.old)} → ${shown(difference.new)}`,
    "file-added": () => `file added: ${what}`,
    "file-removed": () => `file removed: ${what}`,
    "file-changed": () => `file changed: ${what}`,
    "mode-changed": () =>
      `file mode changed: ${what} (${difference.new ? "now executable" : "no longer executable"})`,
    "folder-added": () => `folder added: ${what}`,
    "folder-removed": () => `folder removed: ${what}`,
    "missing-now": () => `missing now: ${what}`,
    "found-now": () => `no longer missing: ${what}`,
  };
  return `${where}: ${text[difference.kind]()}`;
}

function nameOf(layer: AnyLayer): LayerName;
function nameOf(layer: AnyLayer | undefined): LayerName | undefined;
function nameOf(layer: AnyLayer | undefined): LayerName | undefined {
  if (!layer) return undefined;
  const { index, plugin, method, file, line } = layer;
  return { index, plugin, method, file, line };
}

/**
 * The layers of both chains in order, paired where they are the same layer (the same plugin
 * and method, in a longest common subsequence); unpaired ones stand alone.
 */
function alignLayers(
  old: readonly TreeLayer[],
  now: readonly AnyLayer[],
): [TreeLayer | undefined, AnyLayer | undefined][] {
  const key = (layer: AnyLayer) => `${layer.plugin}\0${layer.method}`;
  // lengths[i][j]: the longest common subsequence of old[i..] and now[j..].
  const lengths = Array.from({ length: old.length + 1 }, () => new Array(now.length + 1).fill(0));
  for (let i = old.length - 1; i >= 0; i--) {
    for (let j = now.length - 1; j >= 0; j--) {
      lengths[i][j] = key(old[i]) === key(now[j])
        ? lengths[i + 1][j + 1] + 1
        : Math.max(lengths[i + 1][j], lengths[i][j + 1]);
    }
  }
  const pairs: [TreeLayer | undefined, AnyLayer | undefined][] = [];
  let i = 0;
  let j = 0;
  while (i < old.length || j < now.length) {
    if (i < old.length && j < now.length && key(old[i]) === key(now[j])) {
      pairs.push([old[i++], now[j++]]);
    } else if (j < now.length && (i === old.length || lengths[i][j + 1] >= lengths[i + 1][j])) {
      pairs.push([undefined, now[j++]]);
    } else {
      pairs.push([old[i++], undefined]);
    }
  }
  return pairs;
}

/** The differences inside one layer present in both chains. */
function compareLayers(old: TreeLayer, now: AnyLayer): Difference[] {
  const layer = nameOf(now);
  const differences: Difference[] = [];
  if (!same(old.version, now.version)) {
    differences.push({ kind: "plugin-version", layer, old: old.version, new: now.version });
  }
  // Files and folders the layer now names by another path: compared as the same.
  const moves = movedPaths(old.contribution, now.contribution);
  for (const [before, after] of moves) {
    differences.push({ kind: "moved", layer, what: "path", old: before, new: after });
  }
  const settings: Difference[] = [];
  for (const key of unionKeys(old.settings, now.settings)) {
    const [before, after] = [old.settings[key], now.settings[key]];
    // The image-level Python version says it once for all the layers that read it.
    if (same(before, after) || key === "image.pythonVersion") continue;
    const values = {
      ...(key in old.settings ? { old: before } : {}),
      ...(key in now.settings ? { new: after } : {}),
    };
    if (key.startsWith("lock.")) {
      settings.push({ kind: "base-digest", layer, what: key.slice("lock.".length), ...values });
    } else {
      const kind = /version/i.test(key) || key.startsWith("config.images.")
        ? "tool-version"
        : "setting";
      settings.push({ kind, layer, what: key, ...values });
    }
  }
  for (const change of valueChanges(old.contribution, now.contribution, "")) {
    // A setting the plugin also puts in its contribution is said once, as the setting.
    const { old: before, new: after } = change.values;
    if (settings.some((setting) => same(setting.old, before) && same(setting.new, after))) {
      continue;
    }
    const kind = /version/i.test(change.key) ? "tool-version" : "option";
    differences.push({ kind, layer, what: change.key || "(options)", ...change.values });
  }
  differences.push(...settings);
  differences.push(...fileChanges(old, now, moves, layer));
  return differences;
}

/** The file and folder references of a contribution (`{ $file: PATH }`, `{ $tree: PATH }`). */
function refsOf(value: unknown, into: { kind: string; path: string }[] = []) {
  const ref = asRef(value);
  if (ref) into.push(ref);
  else if (Array.isArray(value)) { for (const item of value) refsOf(item, into); }
  else if (isObject(value)) {
    for (const key of Object.keys(value).sort()) {
      refsOf(value[key], into);
    }
  }
  return into;
}

function asRef(value: unknown): { kind: string; path: string } | undefined {
  if (!isObject(value)) return undefined;
  const keys = Object.keys(value);
  if (keys.length !== 1 || (keys[0] !== "$file" && keys[0] !== "$tree")) return undefined;
  const path = value[keys[0]];
  return typeof path === "string" ? { kind: keys[0], path } : undefined;
}

/** Paths the contribution names in the same place, of the same kind, but spelled otherwise. */
function movedPaths(old: unknown, now: unknown): [string, string][] {
  const before = refsOf(old);
  const after = refsOf(now);
  if (before.length !== after.length) return [];
  return before.flatMap((ref, index): [string, string][] =>
    ref.kind === after[index].kind && ref.path !== after[index].path
      ? [[ref.path, after[index].path]]
      : []
  );
}

/** A changed value inside a contribution, by key path. */
interface ValueChange {
  readonly key: string;
  readonly values: { old?: unknown; new?: unknown };
}

/**
 * How two contributions differ, by key path: objects member by member; arrays of objects
 * element by element when they have the same length; anything else whole. Two file or
 * folder references of one kind are alike here (their content is compared as files).
 */
function valueChanges(
  old: unknown,
  now: unknown,
  path: string,
  present = [true, true],
): ValueChange[] {
  const values = { ...(present[0] ? { old } : {}), ...(present[1] ? { new: now } : {}) };
  if (same(old, now)) return [];
  const [refBefore, refAfter] = [asRef(old), asRef(now)];
  if (refBefore && refAfter && refBefore.kind === refAfter.kind) return [];
  if (isObject(old) && isObject(now) && !refBefore && !refAfter) {
    return unionKeys(old, now).flatMap((key) =>
      valueChanges(old[key], now[key], keyPath(path, key), [key in old, key in now])
    );
  }
  if (
    Array.isArray(old) && Array.isArray(now) && old.length === now.length &&
    [...old, ...now].some((item) => isObject(item) || Array.isArray(item))
  ) {
    return old.flatMap((item, index) => valueChanges(item, now[index], `${path}[${index}]`));
  }
  return [{ key: path, values }];
}

function keyPath(path: string, key: string): string {
  const name = /^[A-Za-z_$][\w$]*$/.test(key) ? key : JSON.stringify(key);
  return path === "" ? name : /^[A-Za-z_$]/.test(name) ? `${path}.${name}` : `${path}[${name}]`;
}

/** Files and folders added, removed, changed; paths that went missing or came back. */
function fileChanges(
  old: TreeLayer,
  now: AnyLayer,
  moves: readonly [string, string][],
  layer: LayerName,
): Difference[] {
  const rename = (path: string) => {
    for (const [before, after] of moves) {
      if (path === before) return after;
      if (before === ".") return `${after}/${path}`;
      if (path.startsWith(`${before}/`)) return `${after}${path.slice(before.length)}`;
    }
    return path;
  };
  const oldMissing = new Set((old.missing ?? []).map(rename));
  const newMissing = new Set(now.missing ?? []);
  const oldFiles = moves.length > 0 ? renamed(old.files, rename) : old.files;
  const newFiles = now.files instanceof FileListing ? now.files : FileListing.of(now.files);
  // Trees of many thousand files: only the paths that differ are visited, and sorted.
  const changed: Difference[] = [];
  const added: string[] = [];
  const removed: string[] = [];
  newFiles.differences(oldFiles, (path, before, after) => {
    // A file named by itself that went missing (or came back) is said so below.
    if (before === undefined) {
      added.push(path);
      if (!oldMissing.has(path)) changed.push({ kind: "file-added", layer, what: path });
    } else if (after === undefined) {
      removed.push(path);
      if (!newMissing.has(path)) changed.push({ kind: "file-removed", layer, what: path });
    } else if (!sameContent(before, after)) {
      changed.push({ kind: "file-changed", layer, what: path });
    } else if (executable(before) !== executable(after)) {
      const [from, to] = [executable(before), executable(after)];
      changed.push({ kind: "mode-changed", layer, what: path, old: from, new: to });
    }
  });
  const differences = changed.sort((a, b) => (a.what! < b.what! ? -1 : a.what! > b.what! ? 1 : 0));
  // A folder added or removed with files in it says nothing the files do not.
  const holds = (folder: string, files: string[]) => files.some((f) => f.startsWith(`${folder}/`));
  const oldFolders = new Set((old.folders ?? []).map(rename));
  const newFolders = new Set(now.folders ?? []);
  for (const folder of [...new Set([...oldFolders, ...newFolders])].sort()) {
    if (!oldFolders.has(folder) && !holds(folder, added)) {
      differences.push({ kind: "folder-added", layer, what: folder });
    } else if (!newFolders.has(folder) && !holds(folder, removed)) {
      differences.push({ kind: "folder-removed", layer, what: folder });
    }
  }
  for (const path of newMissing) {
    if (!oldMissing.has(path)) differences.push({ kind: "missing-now", layer, what: path });
  }
  for (const path of oldMissing) {
    if (!newMissing.has(path)) differences.push({ kind: "found-now", layer, what: path });
  }
  return differences;
}

/** A tree's files with each path `rename`d. */
function renamed(
  files: Readonly<Record<string, FileFact>>,
  rename: (path: string) => string,
): Record<string, FileFact> {
  const record: Record<string, FileFact> = {};
  for (const path of Object.keys(files)) record[rename(path)] = files[path];
  return record;
}

function executable(fact: FileFact | undefined): boolean {
  return fact !== null && fact !== undefined && "executable" in fact && fact.executable;
}

function sameContent(a: FileFact | undefined, b: FileFact | undefined): boolean {
  if (!a || !b) return a === b;
  if ("symlink" in a || "symlink" in b) return same(a, b);
  return a.sha256 === b.sha256 && a.size === b.size;
}

function unionKeys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Equal as JSON data (object keys in any order). */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, index) => same(item, b[index]));
  }
  if (isObject(a) && isObject(b)) {
    const keys = unionKeys(a, b);
    return keys.every((key) => key in a && key in b && same(a[key], b[key]));
  }
  return false;
}

/** A value for a line: JSON, its middle cut when long; `(none)` when there is none. */
function shown(value: unknown): string {
  if (value === undefined) return "(none)";
  const text = JSON.stringify(value);
  return text.length <= 120 ? text : `${text.slice(0, 58)}…${text.slice(-58)}`;
}

function list(value: unknown): string {
  return Array.isArray(value) ? value.join(", ") || "(none)" : shown(value);
}

/** A digest, short enough to read: `sha256:0123456789ab`. */
function short(value: unknown): string {
  return typeof value === "string" ? value.slice(0, 19) : shown(value);
}
