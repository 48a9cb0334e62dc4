/**
 * Stage "append": put the layers an {@link AppendSplit} names on top of its prefix image in
 * the registry, without a build engine, as ko and `crane append` do. Each layer with files
 * becomes one gzip-compressed tar blob (`./layer_tar.ts`); configuration changes go into a
 * copy of the prefix's image config; each platform gets a new manifest, and a prefix index
 * a new index, under the image's content tag.
 *
 * Reproducible by rule, so that the same spec, files and prefix give the same manifest
 * digest on any machine, in any folder, under any umask, after `touch`:
 * - tar entries sorted by path; every time (entries, the config's `created`, its history)
 *   is `SOURCE_DATE_EPOCH` when set, else one second after the epoch (`layerMtime`), and
 *   does not count in the tag;
 * - modes by the build context's rule (`./staged_mode.ts`): files 0755 or 0644 by the
 *   executable bit on disk, folders 0755; owner root, or the image's user when it is given
 *   as numbers (a user by name would need the image's `/etc/passwd`: such an image is
 *   built by the engine);
 * - a folder's contents go into their destination as `COPY src/ dst/` puts them: the
 *   destination itself is no entry, so a folder the image has keeps its owner and mode,
 *   and a missing one is made 0755, root's, as the engine makes it;
 * - no host name, user name or absolute path of the machine in any blob.
 *
 * @module
 */

import { type AppendedLayer, type AppendSplit, prefixIdentity } from "./append_plan.ts";
import { ImgtoolError } from "./errors.ts";
import type { ImageIdentity } from "./identify.ts";
import type { IgnoreRules } from "./ignore.ts";
import type { ImagePlan } from "./plan.ts";
import { basename, join, normalizeImagePath, resolve } from "./path.ts";
import { LayerCache } from "./layer_cache.ts";
import { sha256Hex } from "./sha256.ts";
import type { AppendedEntry, ConfigChange, Platform } from "./plugin.ts";
import type { RegistryClient } from "./registry/client.ts";
import { MAX_CONFIG_BYTES } from "./registry/client.ts";
import {
  type Descriptor,
  DOCKER_MANIFEST,
  indexEntries,
  isPlatformImage,
  manifestConfig,
  manifestKind,
} from "./registry/manifest.ts";
import { sha256Digest } from "./registry/bytes.ts";
import { STAGED_FOLDER_MODE, stagedMode } from "./staged_mode.ts";
import { type WalkedTree, walkedTree } from "./digest.ts";
import { DIR, IGNORED, SYMLINK } from "./tree_index.ts";
import { type LayerEntry, type LayerEntryList, sortByPath } from "./layer_tar.ts";
import { writeLayerBlob } from "./layer_blob.ts";
import { collectGarbage } from "./garbage.ts";

/**
 * Why an image cannot be appended after all; the caller builds it with the engine instead.
 *
 * @example
 * ```ts
 * import { AppendRefused } from "./append.ts";
 * const refused = new AppendRefused("the image runs as app, a user given by name");
 * console.log(refused instanceof Error, refused.message); // true the image runs as app, a user given by name
 * ```
 */
export class AppendRefused extends Error {
  /** Make one. */
  constructor(message: string) {
    super(message);
    this.name = "AppendRefused";
  }
}

/** What {@link appendLayers} needs. */
export interface AppendOptions {
  /** The registry client (it pushes the blobs and manifests). */
  readonly registry: RegistryClient;
  /** The image's ignore rules, which a folder's files are listed under. */
  readonly ignore: IgnoreRules;
  /** Seconds since 1970 for every time in the image (`layerMtime`: `SOURCE_DATE_EPOCH`, else 1). */
  readonly epoch: number;
  /** Receives what is being done. */
  readonly progress: (line: string) => void;
  /** `false`: write every layer whole, without the layer cache (tests compare both ways). */
  readonly layerCache?: boolean;
}

/** JSON objects as read from the registry: fields imgtool does not know are kept as they are. */
type Json = Record<string, unknown>;

const isRecord = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** The prefix as the registry served it is not an image imgtool can append to. */
function malformed(prefix: string, what: string): ImgtoolError {
  return new ImgtoolError(`the prefix image ${prefix} cannot be appended to: ${what}`, {
    hint: "rebuild it with --force (or build with --no-append), and check the registry",
  });
}

/**
 * What {@link appendLayers} wrote: the descriptor of the image under its content tag.
 *
 * @example
 * ```ts
 * import type { AppendedImage } from "./append.ts";
 * const appended: AppendedImage = {
 *   mediaType: "application/vnd.oci.image.manifest.v1+json",
 *   digest: `sha256:${"a".repeat(64)}`,
 *   size: 1024,
 *   filesChecked: true,
 * };
 * const { filesChecked, ...image } = appended; // the image's descriptor, and the flag
 * console.log(image.size, filesChecked); // 1024 true
 * ```
 */
export interface AppendedImage extends Descriptor {
  /**
   * Every file in the appended layers went in checked against the digest the image's tag
   * was computed from: each folder's files come from the first walk this process made of it,
   * the identity's (`build` computes every image's identity before it builds one), not walked
   * again since. A single file, whose digest this stage does not have, or a folder walked
   * again leaves it false. When true, the layers hold what the tag says, whatever happened
   * to the files since.
   */
  readonly filesChecked: boolean;
}

/**
 * Append `split.layers` to the prefix image `split.prefixUri` names, under `uri` (the
 * image's content tag). Returns the digest of the manifest or index written there, and
 * whether every file went in checked. Throws {@link AppendRefused} when the image cannot be
 * appended (the caller then uses the engine).
 */
export async function appendLayers(
  split: AppendSplit,
  uri: string,
  options: AppendOptions,
): Promise<AppendedImage> {
  const { registry } = options;
  const repository = uri.slice(0, uri.lastIndexOf(":"));
  const top = await registry.getManifest(split.prefixUri);
  if (!top) {
    throw new ImgtoolError(`the prefix image ${split.prefixUri} is not in the registry`, {
      hint: "build again: the prefix is built first when the registry does not have it",
    });
  }
  const isIndex = manifestKind(top.mediaType) === "index";
  const descriptors = isIndex ? imageEntries(top.json, split.prefixUri) : [];
  const manifests = isIndex
    ? await Promise.all(descriptors.map(async (entry) => {
      const found = await registry.getManifest(`${repository}@${entry.digest}`);
      if (!found) throw malformed(split.prefixUri, `it names ${entry.digest}, which is missing`);
      return found;
    }))
    : [top];
  const configs = await Promise.all(manifests.map(async (manifest) => {
    const descriptor = manifestConfig(manifest.json);
    if (typeof descriptor === "string") throw malformed(split.prefixUri, descriptor);
    if (!Array.isArray((manifest.json as Json).layers)) {
      throw malformed(split.prefixUri, `manifest ${manifest.digest} has no "layers" list`);
    }
    const bytes = await registry.getBlob(repository, descriptor.digest, {
      maxBytes: MAX_CONFIG_BYTES,
    });
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      json = undefined;
    }
    const env = isRecord(json) && isRecord(json.config) ? json.config.Env : undefined;
    if (!isRecord(json) || (env !== undefined && !isStringList(env))) {
      throw malformed(split.prefixUri, `its config ${descriptor.digest} is not an image config`);
    }
    return json;
  }));

  // One set of layer blobs serves every platform: they must agree on where files go.
  const start = runSettings(configs[0]);
  for (const config of configs.slice(1)) {
    const other = runSettings(config);
    if (other.workdir !== start.workdir || other.user !== start.user) {
      throw new AppendRefused("the prefix's platforms differ in working directory or user");
    }
  }
  const owner = numericOwner(start.user);
  const { blobs, filesChecked } = await layerBlobs(
    split.layers,
    start.workdir,
    owner,
    options,
    repository,
  );

  const written: { digest: string; size: number }[] = [];
  for (const [i, manifest] of manifests.entries()) {
    const config = applyLayers(configs[i], split.layers, blobs, options.epoch);
    const configBytes = new TextEncoder().encode(JSON.stringify(config));
    const pushedConfig = await registry.pushBlob(repository, configBytes);
    const json = manifest.json as Json;
    const layerType = manifest.mediaType === DOCKER_MANIFEST
      ? "application/vnd.docker.image.rootfs.diff.tar.gzip"
      : "application/vnd.oci.image.layer.v1.tar+gzip";
    const next: Json = {
      ...json,
      config: { ...(json.config as Json), digest: pushedConfig.digest, size: pushedConfig.size },
      layers: [
        ...(json.layers as unknown[]),
        ...blobs.filter((blob) => blob !== undefined).map((blob) => ({
          mediaType: layerType,
          digest: blob!.digest,
          size: blob!.size,
        })),
      ],
    };
    const bytes = new TextEncoder().encode(JSON.stringify(next));
    if (!isIndex) {
      const digest = await registry.putManifest(uri, bytes, manifest.mediaType);
      return { mediaType: manifest.mediaType, digest, size: bytes.length, filesChecked };
    }
    const digest = await sha256Digest(bytes);
    await registry.putManifest(`${repository}@${digest}`, bytes, manifest.mediaType);
    written.push({ digest, size: bytes.length });
    options.progress(`appended to ${platformName(descriptors[i])}: ${digest}`);
  }
  // The index keeps its other entries (none, from imgtool's builders) and their order.
  const replaced = new Map(descriptors.map((d, i) => [d.digest, i]));
  const index = top.json as Json;
  // Attestations a builder attached describe the prefix, not this image: they are left out.
  const attestation = (entry: Json) =>
    isRecord(entry.annotations) &&
    entry.annotations["vnd.docker.reference.type"] === "attestation-manifest";
  const entries = (index.manifests as Json[]).filter((entry) => !attestation(entry)).map(
    (entry) => {
      const at = replaced.get(entry.digest as string);
      if (at === undefined) return entry;
      return { ...entry, digest: written[at].digest, size: written[at].size };
    },
  );
  const bytes = new TextEncoder().encode(JSON.stringify({ ...index, manifests: entries }));
  const digest = await registry.putManifest(uri, bytes, top.mediaType);
  return { mediaType: top.mediaType, digest, size: bytes.length, filesChecked };
}

/** The image entries of an index: platform images, not attestations; at least one. */
function imageEntries(json: unknown, where: string): Descriptor[] {
  const entries = indexEntries(json);
  if (typeof entries === "string") throw malformed(where, entries);
  const images = entries.filter(isPlatformImage);
  if (images.length === 0) throw malformed(where, "its index lists no platform image");
  return images;
}

function platformName(entry: Descriptor): string {
  const p = entry.platform!;
  return [p.os, p.architecture, p.variant].filter((part) => part).join("/");
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === "string");
}

/** The working directory and user an image config runs with. */
function runSettings(config: Json): { workdir: string; user: string } {
  const run = isRecord(config.config) ? config.config : {};
  const workdir = typeof run.WorkingDir === "string" && run.WorkingDir !== ""
    ? run.WorkingDir
    : "/";
  const user = typeof run.User === "string" ? run.User : "";
  return { workdir, user };
}

/**
 * The owner of appended files for an image that runs as `user`: root for none or root, the
 * ids themselves for numbers (`1000`, as `COPY --chown=1000` gives uid and gid 1000;
 * `1000:100`); `undefined` for a user by name, whose ids only the image's `/etc/passwd`
 * knows (such an image is built by the engine).
 *
 * @example
 * ```ts
 * import { appendOwner } from "./append.ts";
 * console.log(appendOwner(""), appendOwner("1000"), appendOwner("app")); // { uid: 0, gid: 0 } { uid: 1000, gid: 1000 } undefined
 * ```
 */
export function appendOwner(user: string): { uid: number; gid: number } | undefined {
  if (user === "" || user === "root" || user === "root:root") return { uid: 0, gid: 0 };
  const match = /^(\d+)(?::(\d+))?$/.exec(user);
  if (!match) return undefined;
  const uid = Number(match[1]);
  return { uid, gid: match[2] === undefined ? uid : Number(match[2]) };
}

function numericOwner(user: string): { uid: number; gid: number } {
  const owner = appendOwner(user);
  if (owner) return owner;
  throw new AppendRefused(
    `the image runs as ${JSON.stringify(user)}, a user by name, whose ids only the image's ` +
      `/etc/passwd knows`,
  );
}

interface Blob {
  readonly digest: string;
  readonly diffId: string;
  readonly size: number;
}

/**
 * Write and push one blob per layer with files; `undefined` for the others. Each layer's
 * last blob is kept in the layer cache (`./layer_cache.ts`): the next build copies the
 * groups of files that did not change from it. `filesChecked`: see {@link AppendedImage}.
 */
async function layerBlobs(
  layers: readonly AppendedLayer[],
  startWorkdir: string,
  owner: { uid: number; gid: number },
  options: AppendOptions,
  repository: string,
): Promise<{ blobs: (Blob | undefined)[]; filesChecked: boolean }> {
  const folder = await Deno.makeTempDir({ prefix: "imgtool-layers-" });
  try {
    let workdir = startWorkdir;
    const blobs: (Blob | undefined)[] = [];
    let filesChecked = true;
    for (const layer of layers) {
      const files = layer.appended.files ?? [];
      if (files.length === 0) {
        blobs.push(undefined);
      } else {
        const listed = await layerEntries(files, workdir, owner, options.ignore);
        const { entries } = listed;
        filesChecked &&= listed.checked;
        const cache = options.layerCache === false
          ? undefined
          : LayerCache.open(layerSlot(files, workdir, owner));
        const written = await writeLayerBlob(entries, {
          duplicates: "last",
          mtime: options.epoch,
          dir: folder,
          cache,
        });
        // The layer's listing and grouping are garbage now, before the push and the next layer.
        collectGarbage();
        const { total, reused } = written.groups;
        options.progress(
          `layer ${layer.index} (${layer.method}): ${entries.length} entries, ` +
            `${written.size} bytes compressed` +
            (reused > 0 ? ` (${reused} of ${total} groups of files as last time)` : ""),
        );
        try {
          await options.registry.pushBlobFile(repository, written);
        } catch (error) {
          if (written.staged) cache!.discard(written.staged);
          throw error;
        }
        if (written.staged) cache!.keep(written.staged);
        else await Deno.remove(written.path).catch(() => {});
        blobs.push({ digest: written.digest, diffId: written.diffId, size: written.size });
      }
      const moved = layer.appended.config?.workdir;
      if (moved !== undefined) workdir = inImage(workdir, moved);
    }
    return { blobs, filesChecked };
  } finally {
    await Deno.remove(folder, { recursive: true }).catch(() => {});
  }
}

/**
 * The layer cache's slot of a layer: what it takes from where to where, not the content, so
 * that the next build of the same spec finds the last blob.
 */
function layerSlot(
  files: readonly AppendedEntry[],
  workdir: string,
  owner: { uid: number; gid: number },
): string {
  const what = files.map((file) =>
    file.kind === "file" || file.kind === "tree"
      ? [file.kind, resolve(file.source), file.target]
      : [file.kind, file.target]
  );
  return sha256Hex(JSON.stringify([what, workdir, owner.uid, owner.gid]));
}

/** `path` in the image, resolved against the working directory. */
function inImage(workdir: string, path: string): string {
  return normalizeImagePath(path.startsWith("/") ? path : join(workdir, path));
}

/**
 * The tar entries of one layer's files, and whether each file has the digest the identity's
 * walk gave it, to be checked as it is read. A path given twice is written as given last
 * (`duplicates: "last"` when the layer is written). A folder's entries are made from its
 * walk when the layer writer asks for them: a folder of 50,000 files is not 50,000 objects.
 */
async function layerEntries(
  files: readonly AppendedEntry[],
  workdir: string,
  owner: { uid: number; gid: number },
  ignore: IgnoreRules,
): Promise<{ entries: LayerEntryList; checked: boolean }> {
  const parts: LayerEntryList[] = [];
  let checked = true;
  const put = (entry: LayerEntry) => parts.push({ length: 1, entry: () => entry });
  for (const file of files) {
    // A file's target ending in `/` is a folder to put it in, under its own name.
    const named = file.kind === "file" && file.target.endsWith("/")
      ? `${file.target}${basename(file.source)}`
      : file.target;
    const target = inImage(workdir, named);
    if (target === "/" && file.kind !== "tree") {
      throw new ImgtoolError(`an appended ${file.kind} cannot be the image's root folder`);
    }
    switch (file.kind) {
      case "file": {
        checked = false;
        const info = await Deno.stat(file.source);
        if (!info.isFile) throw new ImgtoolError(`${file.source} is not a file`);
        put({
          path: target,
          kind: "file",
          mode: stagedMode(info.mode),
          ...owner,
          size: info.size,
          source: file.source,
        });
        break;
      }
      case "text": {
        const bytes = typeof file.content === "string"
          ? new TextEncoder().encode(file.content)
          : file.content;
        put({
          path: target,
          kind: "file",
          mode: stagedMode(file.mode ?? 0o644),
          ...owner,
          size: bytes.length,
          source: bytes,
        });
        break;
      }
      case "dir":
        put({ path: target, kind: "dir", mode: STAGED_FOLDER_MODE, ...owner });
        break;
      case "tree": {
        // The walk that gave the identity its digest of this folder, when it made one under
        // these rules: the files appended are the files the tag covers, listed once.
        const walked = await walkedTree(file.source, ignore, { reuse: true });
        if (walked === null) throw new ImgtoolError(`${file.source} is not a readable folder`);
        checked &&= walked.first === true && walked.unreadable.size === 0;
        parts.push(treeEntries(walked, file.source, target === "/" ? "" : target, owner));
        break;
      }
    }
  }
  return { entries: joinedLists(parts), checked };
}

/**
 * A walked folder's entries under `root` in the image (`""`: the image's root), each made
 * from the walk when asked for; names the ignore rules left out are not among them.
 */
function treeEntries(
  walked: WalkedTree,
  source: string,
  root: string,
  owner: { uid: number; gid: number },
): LayerEntryList {
  const { index, unreadable } = walked;
  const base = source.endsWith("/") ? source.slice(0, -1) : source;
  // The walk's numbers of the entries that go in (not the ignored names), in the archive's
  // order: the folder's own paths sort as the paths in the image do, the root before each
  // being one. The planner then keeps no path of its own to sort them.
  let count = 0;
  const all = new Uint32Array(index.length);
  for (let at = 0; at < index.length; at++) if (index.kinds[at] !== IGNORED) all[count++] = at;
  const numbers = sortByPath(all.subarray(0, count), (at) => index.paths[at]);
  return {
    length: count,
    sorted: true,
    entry(which): LayerEntry {
      const at = numbers[which];
      const kind = index.kinds[at];
      // The walk's paths are relative and normalized: no join needed.
      const path = `${root}/${index.paths[at]}`;
      if (kind === DIR) return { path, kind: "dir", mode: STAGED_FOLDER_MODE, ...owner };
      if (kind === SYMLINK) {
        const linkTarget = index.targets.get(at) ?? "";
        return { path, kind: "symlink", mode: 0o777, ...owner, linkTarget };
      }
      return {
        path,
        kind: "file",
        mode: stagedMode(index.mode(at)),
        uid: owner.uid,
        gid: owner.gid,
        size: index.size(at),
        source: `${base}/${index.paths[at]}`,
        // The digest the tag was computed from: the layer must hold that content.
        sha256: unreadable.has(at) ? undefined : index.digests.subarray(at * 32, at * 32 + 32),
      };
    },
  };
}

/** Lists one after another, as one list. */
function joinedLists(lists: readonly LayerEntryList[]): LayerEntryList {
  const starts: number[] = [];
  let length = 0;
  for (const list of lists) {
    starts.push(length);
    length += list.length;
  }
  const filled = lists.filter((list) => list.length > 0);
  return {
    length,
    // One list alone keeps its order.
    sorted: filled.length === 0 || (filled.length === 1 && filled[0].sorted === true),
    entry(at) {
      // The last list that starts at or before `at` (lists are few: a folder, its parents).
      let part = lists.length - 1;
      while (starts[part] > at || lists[part].length === 0) part--;
      return lists[part].entry(at - starts[part]);
    },
  };
}

/**
 * The prefix's image config with the layers applied: their configuration changes in chain
 * order, a diff id per layer with files, a history entry per layer, and the epoch as the
 * time of creation.
 */
function applyLayers(
  prefix: Json,
  layers: readonly AppendedLayer[],
  blobs: readonly (Blob | undefined)[],
  epoch: number,
): Json {
  const created = new Date(epoch * 1000).toISOString().replace(/\.000Z$/, "Z");
  const run: Json = { ...(isRecord(prefix.config) ? prefix.config : {}) };
  const rootfs: Json = { ...(isRecord(prefix.rootfs) ? prefix.rootfs : { type: "layers" }) };
  const diffIds = [...(Array.isArray(rootfs.diff_ids) ? rootfs.diff_ids : [])];
  const history = [...(Array.isArray(prefix.history) ? prefix.history : [])];
  for (const [i, layer] of layers.entries()) {
    applyChange(run, layer.appended.config ?? {});
    const blob = blobs[i];
    if (blob) diffIds.push(blob.diffId);
    history.push({
      created,
      created_by: `imgtool ${layer.plugin} (${layer.method}), appended`,
      ...(blob ? {} : { empty_layer: true }),
    });
  }
  return { ...prefix, created, config: run, rootfs: { ...rootfs, diff_ids: diffIds }, history };
}

/** Apply one layer's configuration changes, as ENV, WORKDIR, USER and LABEL do. */
function applyChange(run: Json, change: ConfigChange): void {
  if (change.env) {
    const env = Array.isArray(run.Env) ? [...run.Env as string[]] : [];
    for (const [name, value] of Object.entries(change.env)) {
      const at = env.findIndex((item) => item.startsWith(`${name}=`));
      if (at >= 0) env[at] = `${name}=${value}`;
      else env.push(`${name}=${value}`);
    }
    run.Env = env;
  }
  if (change.workdir !== undefined) {
    const before = typeof run.WorkingDir === "string" && run.WorkingDir ? run.WorkingDir : "/";
    run.WorkingDir = inImage(before, change.workdir);
  }
  if (change.user !== undefined) run.User = change.user;
  if (change.labels) {
    run.Labels = { ...(isRecord(run.Labels) ? run.Labels : {}), ...change.labels };
  }
}

/** What {@link buildByAppending} needs besides the split. */
export interface AppendBuildOptions extends AppendOptions {
  /** The image's platforms (the prefix must have them all). */
  readonly platforms: readonly Platform[];
  /** Build the prefix even when the registry has it (`--force`). */
  readonly force: boolean;
  /** Build and push the prefix image with the engine (called only when it is needed). */
  readonly buildPrefix: (prefix: ImagePlan, identity: ImageIdentity) => Promise<void>;
}

/** What {@link buildByAppending} did. */
export interface AppendBuildResult {
  /** The image under its content tag. */
  readonly image: Descriptor;
  /** Whether the prefix had to be built by the engine. */
  readonly prefixBuilt: boolean;
  /**
   * The prefix was found, not built, and every appended file went in checked against the
   * tag's digests ({@link AppendedImage}): no file the build took from disk went unchecked.
   */
  readonly filesChecked: boolean;
}

/**
 * Build an image by appending: find the prefix in the registry by its content tag (else
 * build and push it with the engine), then append the layers. Returns `undefined` when the
 * image cannot be appended after all ({@link AppendRefused}, said through `progress`): the
 * caller then builds the whole image with the engine.
 */
export async function buildByAppending(
  identity: ImageIdentity,
  split: AppendSplit,
  options: AppendBuildOptions,
): Promise<AppendBuildResult | undefined> {
  const first = split.prefix.layers.length;
  const prefix = prefixIdentity(identity, split);
  const methods = split.layers.map((layer) => layer.method).join(", ");
  let prefixBuilt = false;
  const found = options.force
    ? undefined
    : await options.registry.check(split.prefixUri, [...options.platforms]);
  if (found?.exists) {
    options.progress(`the layers before ${methods} are in the registry (${split.prefixUri})`);
  } else {
    options.progress(
      `building layers 0-${first - 1} with the engine (${split.prefixUri}), then appending ` +
        methods,
    );
    await options.buildPrefix(split.prefix, prefix);
    prefixBuilt = true;
  }
  try {
    const { filesChecked, ...image } = await appendLayers(split, identity.uri, options);
    options.progress(
      `appended ${split.layers.length} layer(s) through the registry: ${image.digest}`,
    );
    return { image, prefixBuilt, filesChecked: filesChecked && !prefixBuilt };
  } catch (error) {
    if (!(error instanceof AppendRefused)) throw error;
    options.progress(`cannot append (${error.message}): building the whole image with the engine`);
    return undefined;
  }
}
