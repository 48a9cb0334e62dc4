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
import { fileDigest, sha256Async, type WalkedTree, walkedTree } from "./digest.ts";
import { type FileStat, statFile } from "./file_stat.ts";
import { basename, dirname, relative, resolve } from "./path.ts";
import type { ImagePlan } from "./plan.ts";
import { IDENTITY_SCHEME, layerIdentity } from "./identify.ts";
import { stagedMode } from "./staged_mode.ts";
import { DIR, FILE, IGNORED, SYMLINK, type TreeIndex } from "./tree_index.ts";

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
 * The files one layer reads, listed on demand from the walks and looks that found them:
 * what {@link TreeLayer.files} holds (see {@link FileListing.record}), without an object of
 * thousands of properties. `imgtool explain` compares a record's tree with these.
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage } from "imgtool";
 * import { listedTree } from "./identity_tree.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/app.py`, "print('hi')\n");
 * const image = Image.fromBase("debian:bookworm").withSourceFile(`${dir}/app.py`, "/app/");
 * const tree = await listedTree(planImage(image, "default", defaultConfig()), `${dir}/spec.ts`);
 * const { files } = tree.layers[1];
 * files.forEach((path, fact) => console.log(path, fact !== null && "size" in fact && fact.size)); // app.py 12
 * console.log(files.size, Object.keys(files.record())); // 1 [ "app.py" ]
 * ```
 */
export class FileListing {
  readonly #parts: readonly FileSource[];
  #record: Readonly<Record<string, FileFact>> | undefined;

  /** The files of `parts`, each a file or a folder a layer reads. */
  constructor(parts: readonly FileSource[]) {
    this.#parts = parts;
  }

  /** The files of a tree's record, as {@link TreeLayer.files} holds them. */
  static of(files: Readonly<Record<string, FileFact>>): FileListing {
    const paths = Object.keys(files);
    const listing = new FileListing([{
      size: paths.length,
      forEach: (visit) => paths.forEach((path) => visit(path, files[path])),
    }]);
    listing.#record = files;
    return listing;
  }

  /** How many files (paths) there are. */
  get size(): number {
    if (this.#parts.length === 1) return this.#parts[0].size;
    return Object.keys(this.record()).length;
  }

  /** Call `visit` with each file's path and fact, once per path, in no set order. */
  forEach(visit: (path: string, fact: FileFact) => void): void {
    // One source names each path once; several may name one path twice: the record says
    // which fact counts.
    if (this.#parts.length === 1) return this.#parts[0].forEach(visit);
    const record = this.record();
    for (const path of Object.keys(record)) visit(path, record[path]);
  }

  /**
   * Hold these files against `files` (another tree's, by path): `visit` is called for each
   * path not on both sides with the same fact ({@link sameFact}), with its fact on each side
   * (`undefined`: not on that side). A large folder is held against it in one pass that
   * makes nothing for the files that are the same.
   */
  differences(
    files: Readonly<Record<string, FileFact>>,
    visit: (path: string, before: FileFact | undefined, after: FileFact | undefined) => void,
  ): void {
    const [only] = this.#parts;
    if (this.#parts.length === 1 && only instanceof WalkedFiles) {
      return only.differences(files, visit);
    }
    const record = this.record();
    let found = 0;
    for (const path of Object.keys(record)) {
      const after = record[path];
      if (!Object.hasOwn(files, path)) {
        visit(path, undefined, after);
        continue;
      }
      found++;
      if (!sameFact(files[path], after)) visit(path, files[path], after);
    }
    visitGone(files, found, (path) => Object.hasOwn(record, path), visit);
  }

  /**
   * The JSON of {@link FileListing.record} as `JSON.stringify` writes it, to be written in
   * UTF-8: for one folder, from its walk, without an object or a string per file.
   */
  json(): JsonPiece {
    const [only] = this.#parts;
    if (this.#record === undefined && this.#parts.length === 1 && only instanceof WalkedFiles) {
      return only.json();
    }
    return textPiece(JSON.stringify(this.record()));
  }

  /**
   * The files as {@link TreeLayer.files} holds them: by path, in path order (a path named
   * twice keeps its first place and its last fact, as `Object.fromEntries` would).
   */
  record(): Readonly<Record<string, FileFact>> {
    if (this.#record !== undefined) return this.#record;
    const paths: string[] = [];
    const facts: FileFact[] = [];
    for (const part of this.#parts) {
      part.forEach((path, fact) => {
        paths.push(path);
        facts.push(fact);
      });
    }
    const order = pathOrder(paths);
    const record: Record<string, FileFact> = {};
    // Deno has no `__proto__` accessor: a file of that name is a property like any.
    for (const at of order) record[paths[at]] = facts[at];
    return this.#record = record;
  }
}

/**
 * Whether two facts of a file are the same: for files, content, size and executable bit; for
 * links, their targets; unreadable, both.
 *
 * @example
 * ```ts
 * import { sameFact } from "./identity_tree.ts";
 * const file = { sha256: "ab".repeat(32), executable: false, size: 3 };
 * console.log(sameFact(file, { ...file }), sameFact(file, { ...file, executable: true })); // true false
 * console.log(sameFact(null, null), sameFact(file, { symlink: file.sha256 })); // true false
 * ```
 */
export function sameFact(a: FileFact, b: FileFact): boolean {
  if (a === null || b === null) return a === b;
  if ("symlink" in a || "symlink" in b) {
    return "symlink" in a && "symlink" in b && a.symlink === b.symlink;
  }
  return a.sha256 === b.sha256 && a.size === b.size && a.executable === b.executable;
}

/**
 * The places of `paths` in path order. Walk order is path order but where a name sorts
 * before `/` ("a-b" after the folder "a"): a stable sort of numbers, nearly sorted already,
 * is quick.
 */
function pathOrder(paths: readonly string[]): number[] {
  const order = Array.from(paths, (_, at) => at);
  return order.sort((i, j) => (paths[i] < paths[j] ? -1 : paths[i] > paths[j] ? 1 : i - j));
}

/**
 * The places of `paths` in the order an object made by setting them in path order lists
 * its keys (and `JSON.stringify` writes them): array indexes first, in the order of
 * numbers, then the others in path order.
 */
function keyOrder(paths: readonly string[]): number[] {
  const order = pathOrder(paths);
  const indexes = order.filter((at) => isArrayIndex(paths[at]));
  if (indexes.length === 0) return order;
  indexes.sort((i, j) => Number(paths[i]) - Number(paths[j]));
  return [...indexes, ...order.filter((at) => !isArrayIndex(paths[at]))];
}

/** Whether `key` is an array index, which an object lists before its other keys. */
function isArrayIndex(key: string): boolean {
  const first = key.charCodeAt(0);
  return first >= 48 && first <= 57 && /^(?:0|[1-9][0-9]{0,9})$/.test(key) &&
    Number(key) < 2 ** 32 - 1;
}

const encoder = new TextEncoder();
const bytesOf = (text: string) => encoder.encode(text);

/**
 * Bytes written one after another into one array, made once with room for them all: the
 * pages of a fresh array cost when first written (some 4 ms a megabyte on this project's
 * machines), so a large JSON is written where it stays, never copied into a bigger one.
 *
 * @example
 * ```ts
 * import { ByteWriter } from "./identity_tree.ts";
 * const out = new ByteWriter(16, 2);
 * out.text("{}");
 * out.put(new Uint8Array([0x21]));
 * console.log(new TextDecoder().decode(out.bytes.subarray(2, out.at))); // {}!
 * ```
 */
export class ByteWriter {
  /** The array written into. */
  readonly bytes: Uint8Array;
  /** Where the next byte goes. */
  at: number;
  readonly #sink: ((bytes: Uint8Array) => void) | undefined;

  /**
   * An array of `room` bytes, written from `at`. With a `sink`, the array is a window: what
   * is written is handed to the sink whenever more is asked for than there is room left
   * ({@link ByteWriter.ensure}), and by {@link ByteWriter.flush}.
   */
  constructor(room: number, at = 0, sink?: (bytes: Uint8Array) => void) {
    this.bytes = new Uint8Array(room);
    this.at = at;
    this.#sink = sink;
  }

  /**
   * Make sure `n` more bytes fit, to be written into {@link ByteWriter.bytes} from
   * {@link ByteWriter.at}: with a sink, what is written so far is handed over first when
   * they would not.
   */
  ensure(n: number): void {
    if (this.at + n <= this.bytes.length) return;
    // Room is counted before writing: running out is a mistake in the counting.
    if (this.#sink === undefined || n > this.bytes.length) {
      throw new RangeError("ByteWriter: not enough room");
    }
    this.flush();
  }

  /** Hand what is written to the sink (with one), and write from the start again. */
  flush(): void {
    if (this.#sink === undefined || this.at === 0) return;
    this.#sink(this.bytes.subarray(0, this.at));
    this.at = 0;
  }

  /** Write `text` in UTF-8. */
  text(text: string): void {
    let rest = text;
    for (;;) {
      const { read, written } = encoder.encodeInto(rest, this.bytes.subarray(this.at));
      this.at += written;
      if (read === rest.length) return;
      this.ensure(this.bytes.length);
      rest = rest.slice(read);
    }
  }

  /** Write `bytes`. */
  put(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.bytes.set(bytes, this.at);
    this.at += bytes.length;
  }
}

/**
 * JSON to be written into a {@link ByteWriter}: at most `room` bytes.
 *
 * @example
 * ```ts
 * import { ByteWriter, type JsonPiece } from "./identity_tree.ts";
 * const piece: JsonPiece = { room: 6, write: (out) => out.text("[1,2]") };
 * const out = new ByteWriter(piece.room);
 * piece.write(out);
 * console.log(out.at); // 5
 * ```
 */
export interface JsonPiece {
  /** The most bytes it takes. */
  readonly room: number;
  /** Write it at `out.at`, and move `out.at` past it. */
  write(out: ByteWriter): void;
}

/**
 * `text` as a piece (a UTF-16 unit takes 3 bytes of UTF-8 at most).
 *
 * @example
 * ```ts
 * import { textPiece } from "./identity_tree.ts";
 * console.log(textPiece("{}").room); // 6
 * ```
 */
export function textPiece(text: string): JsonPiece {
  return { room: text.length * 3, write: (out) => out.text(text) };
}

/** The pieces of a file's fact (see `WalkedFiles.#fact`), in UTF-8. */
const FACT = {
  open: bytesOf(':{"sha256":"'),
  executable: bytesOf('","executable":true,"size":'),
  notExecutable: bytesOf('","executable":false,"size":'),
  none: bytesOf(":null"),
};
const [COMMA, COLON, OPEN, CLOSE, ZERO] = bytesOf(",:{}0");
const QUOTE = 0x22;
/** The ASCII codes of the hex digits. */
const HEX_DIGITS = bytesOf("0123456789abcdef");

/**
 * Visit the paths of `files` that are not here (`has` says which are), with their facts:
 * none when all of them were `found` here (each path here being one of them at most).
 */
function visitGone(
  files: Readonly<Record<string, FileFact>>,
  found: number,
  has: (path: string) => boolean,
  visit: (path: string, before: FileFact | undefined, after: FileFact | undefined) => void,
): void {
  const paths = Object.keys(files);
  if (found === paths.length) return;
  for (const path of paths) if (!has(path)) visit(path, files[path], undefined);
}

/** The files of one reference: a single file, or a folder's as a walk found them. */
interface FileSource {
  readonly size: number;
  forEach(visit: (path: string, fact: FileFact) => void): void;
}

/**
 * A layer of a {@link ListedTree}: a {@link TreeLayer} whose files are listed on demand.
 *
 * @example
 * ```ts
 * import type { ListedLayer } from "./identity_tree.ts";
 * const count = (layer: ListedLayer) => layer.files.size;
 * console.log(typeof count); // function
 * ```
 */
export type ListedLayer = Omit<TreeLayer, "files"> & { readonly files: FileListing };

/**
 * An identity tree whose layers list their files on demand ({@link listedTree}).
 *
 * @example
 * ```ts
 * import type { ListedTree } from "./identity_tree.ts";
 * const files = (tree: ListedTree) => tree.layers.reduce((n, layer) => n + layer.files.size, 0);
 * console.log(typeof files); // function
 * ```
 */
export type ListedTree = Omit<IdentityTree, "layers"> & { readonly layers: readonly ListedLayer[] };

/**
 * The identity tree of a planned image whose spec is `specFile` (an absolute path: paths in
 * the tree are relative to its folder). Reads the files the layers name, from the digest
 * cache where they are unchanged; a folder is listed by the walk that takes its digest, in
 * one pass. `options.afterIdentify` says that this process computed the plan's identity a
 * moment ago: its folders are then listed from the walks the identity made (nothing in them
 * is looked at again, and the tree is the one the tag was computed over), and the digests of
 * its single files are in memory.
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
  const listed = await listedTree(plan, specFile, options);
  return {
    ...listed,
    layers: listed.layers.map((layer) => ({ ...layer, files: layer.files.record() })),
  };
}

/**
 * {@link identityTree}, each layer's files listed on demand (a {@link FileListing}) rather
 * than made into a record: the same tree, for comparing it with another without building
 * an object per file of a large folder.
 */
export async function listedTree(
  plan: ImagePlan,
  specFile: string,
  options: { readonly afterIdentify?: boolean } = {},
): Promise<ListedTree> {
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
    const layer: ListedLayer = {
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
      files: new FileListing(facts.flatMap((fact) => fact.files ? [fact.files] : [])),
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

/**
 * The JSON of a tree as `JSON.stringify` writes the {@link IdentityTree} {@link identityTree}
 * makes of the same listing, in UTF-8: each layer's files written from their walks
 * ({@link FileListing.json}), without an object or a string per file.
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage } from "imgtool";
 * import { identityTree, listedTree, treeJson } from "./identity_tree.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.mkdirSync(`${dir}/src`);
 * Deno.writeTextFileSync(`${dir}/src/app.py`, "print('hi')\n");
 * const plan = planImage(
 *   Image.fromBase("debian:bookworm").withSourceFolder(`${dir}/src`, "/app"),
 *   "default",
 *   defaultConfig(),
 * );
 * const json = new TextDecoder().decode(treeJson(await listedTree(plan, `${dir}/spec.ts`)));
 * console.log(json === JSON.stringify(await identityTree(plan, `${dir}/spec.ts`))); // true
 * ```
 */
export function treeJson(tree: ListedTree): Uint8Array {
  const out = writeJson(treePieces(tree));
  return out.bytes.subarray(0, out.at);
}

/**
 * The JSON of a tree as {@link treeJson} writes it, in pieces to be written with others by
 * {@link writeJson} (a record's predicate writes its own JSON around them).
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage } from "imgtool";
 * import { listedTree, textPiece, treePieces, writeJson } from "./identity_tree.ts";
 * const plan = planImage(Image.fromBase("debian:bookworm"), "default", defaultConfig());
 * const pieces = [textPiece('{"tree":'), ...treePieces(await listedTree(plan, "/app/spec.ts")), textPiece("}")];
 * const out = writeJson(pieces);
 * console.log(JSON.parse(new TextDecoder().decode(out.bytes.subarray(0, out.at))).tree.format); // imgtool-identity-tree/1
 * ```
 */
export function treePieces(tree: ListedTree): JsonPiece[] {
  // Each layer's files stand as a string no tree can hold (a fresh random name) while the
  // rest is written by `JSON.stringify`; then the files' JSON goes in its place.
  const marker = `imgtool-files-${crypto.randomUUID()}-`;
  const [first, ...rest] = JSON.stringify({
    ...tree,
    layers: tree.layers.map((layer, at) => ({ ...layer, files: `${marker}${at}` })),
  }).split(`"${marker}`);
  const pieces = [textPiece(first)];
  for (const piece of rest) {
    const end = piece.indexOf('"');
    pieces.push(tree.layers[Number(piece.slice(0, end))].files.json());
    pieces.push(textPiece(piece.slice(end + 1)));
  }
  return pieces;
}

/**
 * `pieces` written one after another into one new array, from byte `reserve` on (the bytes
 * before are left for the caller to fill): the JSON is written once, where it stays.
 *
 * @example
 * ```ts
 * import { textPiece, writeJson } from "./identity_tree.ts";
 * const out = writeJson([textPiece("[1,"), textPiece("2]")], 4);
 * console.log(out.at, new TextDecoder().decode(out.bytes.subarray(4, out.at))); // 9 [1,2]
 * ```
 */
export function writeJson(pieces: readonly JsonPiece[], reserve = 0): ByteWriter {
  const room = reserve + pieces.reduce((sum, piece) => sum + piece.room, 0);
  const out = new ByteWriter(room, reserve);
  for (const piece of pieces) piece.write(out);
  return out;
}

/**
 * `pieces` written one after another and handed to `sink` in chunks of at most `chunk`
 * bytes (each valid only during the call): a large JSON is never whole in memory.
 *
 * @example
 * ```ts
 * import { textPiece, writeJsonTo } from "./identity_tree.ts";
 * const chunks: string[] = [];
 * writeJsonTo([textPiece("[1,"), textPiece("2]")], (bytes) => chunks.push(new TextDecoder().decode(bytes)), 4);
 * console.log(chunks); // [ "[1,2", "]" ]
 * ```
 */
export function writeJsonTo(
  pieces: readonly JsonPiece[],
  sink: (bytes: Uint8Array) => void,
  chunk = 256 << 10,
): void {
  const out = new ByteWriter(chunk, 0, sink);
  for (const piece of pieces) piece.write(out);
  out.flush();
}

/** What one file or folder reference reads. */
interface RefFacts {
  /** Its files; none when it is missing. */
  readonly files?: FileSource;
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
    let info: FileStat | undefined;
    try {
      info = statFile(ref.path);
    } catch {
      // Missing: the identity counts it as missing too.
    }
    const digest = info?.isFile ? await fileDigest(ref.path, info) : null;
    if (!digest || !info) return { folders: [], missing: [label] };
    const fact = fileFact(digest, info.size);
    return { files: { size: 1, forEach: (visit) => visit(label, fact) }, folders: [], missing: [] };
  }
  // One walk gives the listing and every file's digest, as the tree's digest took them:
  // after the identity, the walk it just made (no entry is looked at again); else a walk now,
  // which reads only files changed since the digest cache remembered them, and gives no file
  // a cache entry of its own (as `fileDigest` gives a file it hashes).
  const walked = await walkedTree(ref.path, plan.ignore, { reuse: afterIdentify });
  if (walked === null) return { folders: [], missing: [label] };
  const { index } = walked;
  const prefix = label === "." ? "" : `${label}/`;
  const folders: string[] = [];
  // A link counts by the SHA-256 of its target, as written.
  const links = new Map<number, FileFact>();
  let size = 0;
  for (let at = 0; at < index.length; at++) {
    const kind = index.kinds[at];
    if (kind === DIR) folders.push(prefix + index.paths[at]);
    else if (kind === SYMLINK) {
      links.set(at, { symlink: await sha256Async(index.targets.get(at) ?? "") });
    }
    if (kind === FILE || kind === SYMLINK) size++;
  }
  return { files: new WalkedFiles(walked, prefix, links, size), folders, missing: [] };
}

/** The files of a walked folder, their facts made as they are visited. */
class WalkedFiles implements FileSource {
  constructor(
    readonly walked: WalkedTree,
    /** What comes before each path relative to the folder: its label and `/`, or nothing. */
    readonly prefix: string,
    /** Each link's fact, by entry. */
    readonly links: ReadonlyMap<number, FileFact>,
    readonly size: number,
  ) {}

  forEach(visit: (path: string, fact: FileFact) => void): void {
    const { index } = this.walked;
    // Every digest as hex at once, cut per file (one string, not one per file).
    const hex = index.hexAll();
    for (let at = 0; at < index.length; at++) {
      const kind = index.kinds[at];
      if (kind === FILE || kind === SYMLINK) {
        visit(this.prefix + index.paths[at], this.#fact(at, hex));
      }
    }
  }

  /**
   * {@link FileListing.json} of these files: each name and fact as `JSON.stringify` writes
   * them, in the order of the record's keys, straight into bytes.
   */
  json(): JsonPiece {
    const { index, unreadable } = this.walked;
    const { kinds } = index;
    const entries: number[] = [];
    for (let at = 0; at < index.length; at++) {
      if (kinds[at] === FILE || kinds[at] === SYMLINK) entries.push(at);
    }
    // By the folder's own paths: the prefix is the same before each, so the order is that of
    // the full names, and no string is made per file. Only without one can a name be a
    // number, which an object's keys put first.
    const { prefix } = this;
    const order = prefix === ""
      ? keyOrder(entries.map((at) => index.paths[at])).map((k) => entries[k])
      : entries.sort((i, j) => (index.paths[i] < index.paths[j] ? -1 : 1));
    const count = order.length;
    const links = new Map<number, Uint8Array>();
    for (const at of order) {
      if (kinds[at] !== SYMLINK) continue;
      links.set(at, encoder.encode(JSON.stringify(this.links.get(at))));
    }
    // A comma, the name, and a fact: a file's (sizes up to 16 digits) or `:` and a link's.
    const fileRoom = (at: number) =>
      2 + (plainNameLength(prefix, index.paths[at]) ?? 6 * (prefix + index.paths[at]).length + 2) +
      (links.get(at)?.length ?? 127);
    let room = 2;
    for (const at of order) room += fileRoom(at);
    // Written straight into the output's array, nothing made per file but for names that need
    // escaping: names one byte a character, the pieces of a fact copied, digests in hex from
    // their bytes.
    const [open, yes, no, none] = [FACT.open, FACT.executable, FACT.notExecutable, FACT.none];
    const write = (out: ByteWriter) => {
      const { bytes } = out;
      const { digests, paths } = index;
      // Looked up only where there are any: the loop runs once per file.
      const anyLinks = links.size > 0, anyUnreadable = unreadable.size > 0;
      const put = (piece: Uint8Array) => {
        for (let i = 0; i < piece.length; i++) bytes[end++] = piece[i];
      };
      out.ensure(1);
      let end = out.at;
      bytes[end++] = OPEN;
      for (let k = 0; k < count; k++) {
        const at = order[k];
        // The most this file takes (see `room`), in a writer that passes on what it wrote.
        out.at = end;
        out.ensure(fileRoom(at));
        end = out.at;
        if (k > 0) bytes[end++] = COMMA;
        const plain = writePlainName(bytes, end, prefix, paths[at]);
        if (plain >= 0) end = plain;
        else {
          out.at = end;
          out.text(JSON.stringify(prefix + paths[at]));
          end = out.at;
        }
        const link = anyLinks ? links.get(at) : undefined;
        if (link !== undefined) {
          bytes[end++] = COLON;
          put(link);
        } else if (anyUnreadable && unreadable.has(at)) {
          put(none);
        } else {
          put(open);
          for (let i = at * 32, last = i + 32; i < last; i++) {
            bytes[end++] = HEX_DIGITS[digests[i] >> 4];
            bytes[end++] = HEX_DIGITS[digests[i] & 15];
          }
          put(executable(index, at) ? yes : no);
          end = writeDigits(bytes, end, index.size(at));
          bytes[end++] = CLOSE;
        }
      }
      out.at = end;
      out.ensure(1);
      bytes[out.at++] = CLOSE;
    };
    return { room, write };
  }

  /** {@link FileListing.differences}, looking each path of `files` up in the walk. */
  differences(
    files: Readonly<Record<string, FileFact>>,
    visit: (path: string, before: FileFact | undefined, after: FileFact | undefined) => void,
  ): void {
    const { index, unreadable } = this.walked;
    const { prefix } = this;
    // The loop only notes what differs: anything more in it (a call that makes a fact, or
    // visits) makes V8's code for the whole loop twice as slow.
    const gone: string[] = [];
    const differing: number[] = [];
    let found = 0;
    // A record lists paths in path order, a walk nearly so: where the last path was found,
    // the next is most often the next file, found without a look-up.
    let next = 0;
    for (const path of Object.keys(files)) {
      while (next < index.length && index.kinds[next] !== FILE && index.kinds[next] !== SYMLINK) {
        next++;
      }
      const at = path.startsWith(prefix) ? index.find(path.slice(prefix.length), next) : -1;
      const kind = at < 0 ? IGNORED : index.kinds[at];
      if (kind !== FILE && kind !== SYMLINK) {
        gone.push(path);
        continue;
      }
      next = at + 1;
      found++;
      // The many files that are the same: held against the walk as they are, no fact made.
      const before = files[path];
      const same = kind === FILE && before !== null && "sha256" in before &&
        !unreadable.has(at) && before.size === index.size(at) &&
        before.executable === executable(index, at) && index.hasHex(at, before.sha256);
      if (!same) differing.push(at);
    }
    for (const path of gone) visit(path, files[path], undefined);
    for (const at of differing) {
      const path = prefix + index.paths[at];
      const after = this.#fact(at);
      if (!sameFact(files[path], after)) visit(path, files[path], after);
    }
    if (found === this.size) return;
    // Files REF's tree does not have.
    for (let at = 0; at < index.length; at++) {
      const kind = index.kinds[at];
      if (kind !== FILE && kind !== SYMLINK) continue;
      const path = prefix + index.paths[at];
      if (!Object.hasOwn(files, path)) visit(path, undefined, this.#fact(at));
    }
  }

  /** The fact of entry `at` (a file or link); `hex`, when given, is `index.hexAll()`. */
  #fact(at: number, hex?: string): FileFact {
    const { index, unreadable } = this.walked;
    if (index.kinds[at] === SYMLINK) return this.links.get(at)!;
    if (unreadable.has(at)) return null;
    return {
      sha256: hex === undefined ? index.hex(at) : hex.slice(at * 64, at * 64 + 64),
      executable: executable(index, at),
      size: index.size(at),
    };
  }
}

/** Whether a UTF-16 unit stands for itself in JSON and in one byte of UTF-8. */
function isPlain(code: number): boolean {
  return code >= 0x20 && code < 0x80 && code !== 0x22 && code !== 0x5c;
}

/** The length of `"prefix+path"` as JSON, when every character of it is plain; else none. */
function plainNameLength(prefix: string, path: string): number | undefined {
  for (let i = 0; i < prefix.length; i++) if (!isPlain(prefix.charCodeAt(i))) return undefined;
  for (let i = 0; i < path.length; i++) if (!isPlain(path.charCodeAt(i))) return undefined;
  return prefix.length + path.length + 2;
}

/**
 * Write `"prefix+path"` as JSON at `at` when every character of it is plain; returns where
 * it ends, or -1 (having written nothing that counts) when one needs escaping or UTF-8.
 */
function writePlainName(bytes: Uint8Array, at: number, prefix: string, path: string): number {
  let end = at;
  bytes[end++] = QUOTE;
  for (let i = 0; i < prefix.length; i++) {
    const code = prefix.charCodeAt(i);
    if (!isPlain(code)) return -1;
    bytes[end++] = code;
  }
  for (let i = 0; i < path.length; i++) {
    const code = path.charCodeAt(i);
    if (!isPlain(code)) return -1;
    bytes[end++] = code;
  }
  bytes[end++] = QUOTE;
  return end;
}

/** Write `value` (a whole number, not negative) in decimal at `at`; where it ends. */
function writeDigits(out: Uint8Array, at: number, value: number): number {
  let digits = 1;
  for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  let rest = value;
  for (let place = at + digits - 1; place >= at; place--) {
    out[place] = ZERO + rest % 10;
    rest = Math.floor(rest / 10);
  }
  return at + digits;
}

/** Whether file `at` of `index` counts as executable: the one mode bit that counts. */
function executable(index: TreeIndex, at: number): boolean {
  return (stagedMode(index.mode(at)) & 0o100) !== 0;
}

function fileFact(digest: { mode: number; sha256: string }, size: number): FileFact {
  return { sha256: digest.sha256, executable: (digest.mode & 0o100) !== 0, size };
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

function sortedUnique(values: readonly string[]): string[] {
  return [...new Set(values)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function nonEmpty<K extends string>(key: K, values: string[]): { [P in K]?: string[] } {
  return (values.length > 0 ? { [key]: values } : {}) as { [P in K]?: string[] };
}
