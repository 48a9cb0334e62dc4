/**
 * The identity tree of an image: what its tag covers, as plain JSON a person (and
 * `imgtool explain`) can read. The tag is a digest over a chain of layers (`./identify.ts`);
 * this is the same chain spelled out: the image-level facts that count, and per layer its
 * plugin and version, where the spec made it, its canonical contribution, the settings its
 * hooks read, and every file it reads, each by the SHA-256 of its content and its executable
 * bit, folders expanded into their files after the image's ignore rules.
 *
 * What counts in the tag is all here, so that a tree tells why a tag is what it is, and
 * specs with one tag have one tree (their layers made on the same lines of a spec in the same
 * place). Beside it, labels that do not count, so that a reader can find things: the method
 * and spec line of each layer, and paths relative to the spec's folder (`../` allowed). A
 * path whose way from the spec's folder would climb to `/`, or above the user's home folder,
 * would name the machine's folders (and a user): it is named `<outside>/<its name>` instead.
 * No absolute path, no secret value (a secret counts by its name), nothing of the machine.
 *
 * Digests come from the digest cache and the process's memory, as the identity's do (a file
 * the identity hashed is not read again).
 *
 * @module
 */

import { canonicalJson, collectRefs, type Ref } from "./canonical.ts";
import { fileDigest, listTree, treeDigest } from "./digest.ts";
import { basename, dirname, relative, resolve } from "./path.ts";
import type { ImagePlan } from "./plan.ts";
import { IDENTITY_SCHEME, layerIdentity } from "./identify.ts";

/**
 * The version of the tree's own shape: bump it when a field changes meaning.
 *
 * @example
 * ```ts
 * import { TREE_FORMAT } from "./identity_tree.ts";
 * console.log(TREE_FORMAT); // imgtool-identity-tree/1
 * ```
 */
export const TREE_FORMAT = "imgtool-identity-tree/1";

// The identity scheme of `./identify.ts` (its `SCHEME`), which the chain's root covers.

/**
 * One file a layer reads: its content's SHA-256 (hex), its executable bit (the only mode bit
 * that counts), its size; for a symbolic link inside a folder, the SHA-256 of its target
 * (which counts as written, and could name a path of the machine); `null` when it could not
 * be read.
 *
 * @example
 * ```ts
 * import type { FileFact } from "./identity_tree.ts";
 * const fact: FileFact = { sha256: "ab".repeat(32), executable: false, size: 12 };
 * console.log(fact !== null && "sha256" in fact); // true
 * ```
 */
export type FileFact =
  | { readonly sha256: string; readonly executable: boolean; readonly size: number }
  | { readonly symlink: string }
  | null;

/**
 * The image-level facts of a tree.
 *
 * @example
 * ```ts
 * import type { ImageFacts } from "./identity_tree.ts";
 * const facts: ImageFacts = {
 *   platforms: ["linux/amd64"],
 *   baseImage: null,
 *   syntax: null,
 *   pythonVersion: "3.12",
 *   base: "python:3.12-slim-bookworm",
 * };
 * console.log(facts.platforms.join(",")); // linux/amd64
 * ```
 */
export interface ImageFacts {
  /** The platforms, sorted (they count). */
  readonly platforms: readonly string[];
  /** The base image `clone({ baseImage })` set, if any (it counts). */
  readonly baseImage: string | null;
  /** The configured `# syntax` line of the Dockerfile, if any (it counts). */
  readonly syntax: string | null;
  /** The Python version (`3.12`), when a layer reads it (then it counts), else `null`. */
  readonly pythonVersion: string | null;
  /** The image the base layer starts from (pinned when the lock pins it), if it names one. */
  readonly base: string | null;
}

/**
 * One layer of a tree.
 *
 * @example
 * ```ts
 * import type { TreeLayer } from "./identity_tree.ts";
 * const layer: TreeLayer = {
 *   index: 1,
 *   plugin: "workdir",
 *   version: 1,
 *   method: "withWorkdir",
 *   file: "spec.ts",
 *   line: 4,
 *   contribution: { workdir: "/app" },
 *   settings: {},
 *   files: {},
 * };
 * console.log(`layer ${layer.index} ${layer.method} (${layer.file}:${layer.line})`); // layer 1 withWorkdir (spec.ts:4)
 * ```
 */
export interface TreeLayer {
  /** Its place in the chain, from 0 (the base). */
  readonly index: number;
  /** Its plugin's name. */
  readonly plugin: string;
  /** Its plugin's recipe version (1 when the plugin names none, as the identity counts it). */
  readonly version: number;
  /** The method that made it (`withPipPackages`); a label, it does not count. */
  readonly method: string;
  /** The spec file that called the method, relative to the spec's folder; a label. */
  readonly file: string | null;
  /** The line of that call; a label. */
  readonly line: number | null;
  /**
   * What its `identify` hook says (or its options), canonically: object keys sorted, a
   * secret as `{ $secret: NAME, mount, asEnvVar }`, a file as `{ $file: PATH }` and a folder
   * as `{ $tree: PATH }` (paths as in {@link TreeLayer.files}, which holds their content).
   */
  readonly contribution: unknown;
  /** The settings its hooks read, with the values read, by path (`config.installer`). */
  readonly settings: Readonly<Record<string, unknown>>;
  /** Every file it reads, by path relative to the spec's folder; folders expanded. */
  readonly files: Readonly<Record<string, FileFact>>;
  /** The folders inside the folders it reads (they count, empty ones too), when any. */
  readonly folders?: readonly string[];
  /** The files and folders it names that are missing or cannot be read, when any. */
  readonly missing?: readonly string[];
}

/**
 * An image's identity tree (see the module's documentation).
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage } from "imgtool";
 * import { identityTree, type IdentityTree } from "./identity_tree.ts";
 * const image = Image.fromBase("debian:bookworm").withWorkdir("/app");
 * const plan = planImage(image, "default", defaultConfig());
 * const tree: IdentityTree = await identityTree(plan, "/work/app/spec.ts");
 * console.log(tree.layers.map((layer) => layer.plugin)); // [ "base_image", "workdir" ]
 * ```
 */
export interface IdentityTree {
  /** {@link TREE_FORMAT}. */
  readonly format: string;
  /** The identity scheme the tag was computed by. */
  readonly scheme: string;
  /** The image-level facts. */
  readonly image: ImageFacts;
  /** The layers, base first. */
  readonly layers: readonly TreeLayer[];
}

/**
 * The identity tree of a planned image whose spec is `specFile` (an absolute path: paths in
 * the tree are relative to its folder). Reads the files the layers name, from the digest
 * cache where they are unchanged. `options.afterIdentify` says that this process computed
 * the plan's identity a moment ago, so that the digests of its files are in memory: the
 * folders' digest caches are then not read again.
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage } from "imgtool";
 * import { identityTree } from "./identity_tree.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.mkdirSync(`${dir}/src`);
 * Deno.writeTextFileSync(`${dir}/src/app.py`, "print('hi')\n");
 * const image = Image.fromBase("debian:bookworm").withSourceFolder(`${dir}/src`, "/app");
 * const tree = await identityTree(planImage(image, "default", defaultConfig()), `${dir}/spec.ts`);
 * console.log(Object.keys(tree.layers[1].files)); // [ "src/app.py" ]
 * console.log(JSON.stringify(tree.layers[1].contribution)); // {"copyContentsOnly":false,"dst":"/app","name":"src","tree":{"$tree":"src"}}
 * ```
 */
export async function identityTree(
  plan: ImagePlan,
  specFile: string,
  options: { readonly afterIdentify?: boolean } = {},
): Promise<IdentityTree> {
  const layers = plan.layers.map(layerIdentity);
  const labels = new PathLabels(dirname(resolve(specFile)));
  const reads = new Map<string, Promise<RefFacts>>();
  const readsOf = (ref: Ref) => {
    const key = `${ref.$ref}:${ref.path}`;
    let facts = reads.get(key);
    if (!facts) {
      facts = refFacts(ref, labels.of(ref.path), plan, options.afterIdentify ?? false);
      reads.set(key, facts);
    }
    return facts;
  };
  const treeLayers = await Promise.all(plan.layers.map(async (planned, index) => {
    const { contribution, settings } = layers[index];
    const refs = collectRefs(contribution);
    const facts = await Promise.all(refs.map(readsOf));
    const { plugin, origin } = planned.layer;
    const layer: TreeLayer = {
      index,
      plugin: plugin.name,
      version: plugin.version ?? 1,
      method: origin.method,
      file: origin.file ? labels.of(origin.file) : null,
      line: origin.line ?? null,
      contribution: JSON.parse(
        canonicalJson(contribution, (ref) => ({ [`$${ref.$ref}`]: labels.of(ref.path) })),
      ),
      settings,
      files: sortedRecord(facts.flatMap((fact) => fact.files)),
      ...nonEmpty("folders", sortedUnique(facts.flatMap((fact) => fact.folders))),
      ...nonEmpty("missing", sortedUnique(facts.flatMap((fact) => fact.missing))),
    };
    return layer;
  }));
  const python = layers.map((layer) => layer.settings["image.pythonVersion"])
    .find((value) => value !== undefined);
  return {
    format: TREE_FORMAT,
    scheme: IDENTITY_SCHEME,
    image: {
      platforms: [...plan.info.platforms],
      baseImage: plan.info.baseImage ?? null,
      syntax: plan.config.dockerfileSyntax ?? null,
      pythonVersion: Array.isArray(python) ? python.join(".") : null,
      base: plan.baseReference ?? null,
    },
    layers: treeLayers,
  };
}

/** What one file or folder reference reads. */
interface RefFacts {
  readonly files: readonly [string, FileFact][];
  readonly folders: readonly string[];
  readonly missing: readonly string[];
}

async function refFacts(
  ref: Ref,
  label: string,
  plan: ImagePlan,
  afterIdentify: boolean,
): Promise<RefFacts> {
  if (ref.$ref === "file") {
    let info: Deno.FileInfo | undefined;
    try {
      info = await Deno.stat(ref.path);
    } catch {
      // Missing: the identity counts it as missing too.
    }
    const digest = info?.isFile ? await fileDigest(ref.path, info) : null;
    if (!digest || !info) return { files: [], folders: [], missing: [label] };
    return { files: [[label, fileFact(digest, info.size)]], folders: [], missing: [] };
  }
  // The identity hashed this tree: asking for its digest again loads what it remembered
  // into this process's memory (from the tree's digest cache), so that no file below is
  // read again, and no file gets a cache entry of its own (as `fileDigest` gives a file it
  // hashes). Files changed since (or too new to be remembered) are hashed again.
  // Two walks of the folder: the digest call fills the memory the listing takes each
  // file's digest from (digest.ts gives no per-file digests of a tree in one call).
  if (!afterIdentify) await treeDigest(ref.path, plan.ignore);
  const entries = listTree(ref.path, plan.ignore);
  if (entries === null) return { files: [], folders: [], missing: [label] };
  const under = (path: string) => label === "." ? path : `${label}/${path}`;
  const files: [string, FileFact][] = [];
  const folders: string[] = [];
  for (const entry of entries) {
    if (entry.type === "dir") {
      folders.push(under(entry.path));
    } else if (entry.type === "symlink") {
      files.push([under(entry.path), { symlink: await sha256Text(entry.target ?? "") }]);
    } else {
      const digest = await fileDigest(entry.absolute, entry.info);
      files.push([under(entry.path), digest ? fileFact(digest, entry.size) : null]);
    }
  }
  return { files, folders, missing: [] };
}

function fileFact(digest: { mode: number; sha256: string }, size: number): FileFact {
  return { sha256: digest.sha256, executable: (digest.mode & 0o100) !== 0, size };
}

async function sha256Text(text: string): Promise<string> {
  const hash = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(hash), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * Paths as the tree names them: relative to the spec's folder, unless the way there climbs
 * to `/` or above the home folder (it would then spell out the machine's folders): then
 * `<outside>/<name>`, numbered when two such paths share a name.
 */
class PathLabels {
  readonly #specDir: string;
  readonly #home: string | undefined;
  readonly #outside = new Map<string, string>();
  readonly #taken = new Set<string>();

  constructor(specDir: string) {
    this.#specDir = specDir;
    const home = Deno.env.get("HOME");
    this.#home = home ? resolve(home) : undefined;
  }

  of(path: string): string {
    const absolute = resolve(path);
    const from = this.#specDir.split("/").filter(Boolean);
    const to = absolute.split("/").filter(Boolean);
    let shared = 0;
    while (shared < from.length && shared < to.length && from[shared] === to[shared]) shared++;
    const common = `/${to.slice(0, shared).join("/")}`;
    const aboveHome = this.#home !== undefined && this.#home.startsWith(`${common}/`) &&
      common !== this.#home;
    if (shared > 0 && !aboveHome) return relative(this.#specDir, absolute) || ".";
    let label = this.#outside.get(absolute);
    if (label === undefined) {
      const name = basename(absolute) || "root";
      label = `<outside>/${name}`;
      for (let n = 2; this.#taken.has(label); n++) label = `<outside-${n}>/${name}`;
      this.#outside.set(absolute, label);
      this.#taken.add(label);
    }
    return label;
  }
}

function sortedRecord(entries: readonly [string, FileFact][]): Record<string, FileFact> {
  const sorted = [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(sorted);
}

function sortedUnique(values: readonly string[]): string[] {
  return [...new Set(values)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function nonEmpty<K extends string>(key: K, values: string[]): { [P in K]?: string[] } {
  return (values.length > 0 ? { [key]: values } : {}) as { [P in K]?: string[] };
}
