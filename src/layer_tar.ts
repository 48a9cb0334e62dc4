/**
 * The tar archive of one image layer, written byte-stably: the same entries and the same
 * mtime give the same bytes on any machine, from any folder, under any umask, after `touch`.
 *
 * Every header field is fixed by a rule, none comes from the disk but the file's bytes:
 * - entries sorted by their image path, compared as UTF-8 bytes; names without the leading
 *   `/` (`app/main.py`), folders ending in `/` (`app/`), as docker's layers have them;
 * - mode, uid and gid as the caller gives them, mtime the one given for the whole layer, no
 *   atime or ctime, empty uname and gname, devmajor and devminor 0;
 * - the ustar format (numbers in octal); a name that is not ASCII or does not fit the
 *   ustar fields (100 bytes, or a 155-byte prefix and a 100-byte name split at a `/`), a
 *   link target that does not fit in 100 bytes or is not ASCII, and a uid, gid or size too
 *   large for its octal field go in a PAX extended header before the entry (records sorted
 *   by key; the header named `<dir>/PaxHeaders.0/<file>`, with mode, owner and mtime 0, as
 *   Go's archive/tar, and so docker, writes it). Non-ASCII names go to PAX because PAX says
 *   they are UTF-8, where a ustar field is bytes in whatever encoding the reader assumes;
 * - no padding after the two zero blocks that end the archive.
 *
 * The archive comes out in blocks of a fixed size (the last one shorter): where one block
 * ends depends on the bytes only, never on how reads of the files happened to return, so a
 * compressor that flushes per chunk (Deno's `CompressionStream` does) gives the same bytes
 * too. Files are read in pieces straight into the block being filled: memory stays flat in
 * the size of the files. A file that is shorter or longer than announced when read is an
 * error that names it, never a corrupt archive.
 *
 * Why a writer of our own and not an npm package: the layer's bytes are its digest, so every
 * byte must follow a rule written here, not a library's defaults (the mtime when none is
 * given, how a PAX header is named, whether a non-ASCII name goes to PAX), which a version
 * bump could change; the size check and the fixed blocks are ours to get right anyway, and
 * the format with its checks is a few hundred lines. The tests read the archives back with
 * GNU tar and Python's tarfile.
 *
 * @module
 */

import { BuildError, systemError, UsageError } from "./errors.ts";

/** One entry of a layer: a file, a folder or a symbolic link, at a path in the image. */
export interface LayerEntry {
  /** Where it goes in the image: absolute, POSIX, normalized (`/app/src/main.py`). */
  readonly path: string;
  /** What it is. */
  readonly kind: "file" | "dir" | "symlink";
  /** Its permission bits (`0o644`, `0o755`; at most `0o7777`). */
  readonly mode: number;
  /** Its owner's user id. */
  readonly uid: number;
  /** Its owner's group id. */
  readonly gid: number;
  /**
   * A file's size in bytes, as listed: the file must have exactly this many bytes when it
   * is read. Without it, the size of the opened file is used (and must not change while it
   * is read).
   */
  readonly size?: number;
  /** A file's content: the path of a file on disk, or the bytes themselves. */
  readonly source?: string | Uint8Array;
  /** A symbolic link's target, as the link holds it (`../lib/x.so`, `/usr/bin/python3`). */
  readonly linkTarget?: string;
  /**
   * The SHA-256 (32 bytes) of a file's content, as the build listed it (the digest its
   * image's tag was computed from). When given, the bytes read must have it: a file that
   * changed since it was listed is an error, never a layer that differs from its tag.
   */
  readonly sha256?: Uint8Array;
}

/** An incremental SHA-256, as `node:crypto`'s `createHash("sha256")` makes one. */
export interface Sha256Hasher {
  /** Hash more bytes. */
  update(data: Uint8Array): unknown;
  /** The digest of everything hashed (32 bytes). */
  digest(): Uint8Array;
}

/** How {@link layerTarBlocks} writes the archive. */
export interface LayerTarOptions {
  /** The modification time of every entry, in whole seconds since the epoch. */
  readonly mtime: number;
  /** The size of the blocks the archive comes out in (a multiple of 512). Default 1 MiB. */
  readonly blockSize?: number;
  /**
   * Reuse the memory of each full block once the consumer asks for the next one: memory
   * then stays at a few blocks, however big the layer, without waiting for the garbage
   * collector (which takes its time with blocks this large). A block is valid only until
   * the next one is asked for; the last, shorter one is a copy of its own.
   */
  readonly recycle?: boolean;
  /** Makes the hashers that check files given with a `sha256`; needed when any entry has one. */
  readonly sha256?: () => Sha256Hasher;
}

/** The size of the blocks {@link layerTarBlocks} yields by default: 1 MiB. */
export const LAYER_TAR_BLOCK = 1 << 20;

/**
 * The mtime of every entry when `SOURCE_DATE_EPOCH` is not set: one second after the epoch,
 * as Jib writes it, since some tools take a time of 0 for "no time".
 */
export const DEFAULT_LAYER_MTIME = 1;

const RECORD = 512;
// The largest numbers that fit the octal fields: 7 digits (mode, uid, gid), 11 (size, mtime).
const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;
const encoder = new TextEncoder();

/**
 * The mtime of a layer's entries: `SOURCE_DATE_EPOCH` when it is set (whole seconds since
 * the epoch, as reproducible-builds.org defines it), else {@link DEFAULT_LAYER_MTIME}. A
 * value that is not a whole number of seconds is refused, as that definition asks.
 *
 * @example
 * ```ts
 * import { layerMtime } from "./layer_tar.ts";
 * console.log(layerMtime("1700000000"), layerMtime(undefined), layerMtime("")); // 1700000000 1 1
 * ```
 */
export function layerMtime(sourceDateEpoch: string | undefined): number {
  if (sourceDateEpoch === undefined || sourceDateEpoch === "") return DEFAULT_LAYER_MTIME;
  const seconds = Number(sourceDateEpoch);
  if (!/^\d+$/.test(sourceDateEpoch) || !Number.isSafeInteger(seconds) || seconds > MAX_OCTAL_11) {
    throw new UsageError(
      `SOURCE_DATE_EPOCH is ${JSON.stringify(sourceDateEpoch)}, which is not a whole number ` +
        `of seconds since 1970-01-01 (at most ${MAX_OCTAL_11})`,
      { hint: "set it to a time such as `git log -1 --format=%ct`, or unset it" },
    );
  }
  return seconds;
}

/**
 * A layer's entries, made one at a time when asked for: a folder of 50,000 files is then a
 * few arrays its walk has already (`../append.ts`), not 50,000 objects held at once.
 *
 * @example
 * ```ts
 * import type { LayerEntry, LayerEntryList } from "./layer_tar.ts";
 * // Ten folders, each made when it is asked for.
 * const folders: LayerEntryList = {
 *   length: 10,
 *   entry: (at): LayerEntry => ({ path: `/data/${at}`, kind: "dir", mode: 0o755, uid: 0, gid: 0 }),
 * };
 * console.log(folders.entry(3).path); // /data/3
 * ```
 */
export interface LayerEntryList {
  /** How many entries there are. */
  readonly length: number;
  /** Entry `at` (from 0): the same entry each time, though it may be a new object. */
  entry(at: number): LayerEntry;
  /**
   * The entries come in the archive's order already ({@link sortByPath}), no path twice:
   * {@link planLayer} then checks that order instead of keeping every path to sort them.
   */
  readonly sorted?: boolean;
}

/** An entry checked and ready to write, with its name in the archive ({@link planLayer}). */
export interface PlannedEntry {
  readonly entry: LayerEntry;
  /** The name in the archive: no leading `/`, a folder's with a trailing `/`. */
  readonly name: string;
}

/** How {@link planLayer} treats a path given more than once. */
export interface PlanOptions {
  /**
   * `"error"` (the default): such a path is not valid. `"last"`: the entry given last (the
   * highest number in the list) is the one written, as a later `COPY` to the same path wins.
   */
  readonly duplicates?: "error" | "last";
}

/**
 * A layer's entries checked and in the archive's order ({@link planLayer}). Holds each
 * entry's path and its place in that order; the entries themselves are made from the list
 * when asked for, so that a large layer is never all objects at once.
 *
 * @example
 * ```ts
 * import { planLayer } from "./layer_tar.ts";
 * const planned = planLayer([
 *   { path: "/b", kind: "dir", mode: 0o755, uid: 0, gid: 0 },
 *   { path: "/a", kind: "file", mode: 0o644, uid: 0, gid: 0, source: new Uint8Array(1) },
 * ], 1);
 * console.log(planned.length, planned.entry(0).name, [...planned].map((p) => p.name)); // 2 a [ "a", "b/" ]
 * ```
 */
export class PlannedLayer implements Iterable<PlannedEntry> {
  readonly #list: LayerEntryList;
  readonly #order: Uint32Array | undefined;

  /** The entries of `list` in the order `order` gives (numbers in the list); none: as listed. */
  constructor(list: LayerEntryList, order?: Uint32Array) {
    this.#list = list;
    this.#order = order;
  }

  /** How many entries the archive has. */
  get length(): number {
    return this.#order?.length ?? this.#list.length;
  }

  /** The archive's entry number `at` (from 0), made from the list. */
  entry(at: number): PlannedEntry {
    const entry = this.#list.entry(this.#order === undefined ? at : this.#order[at]);
    const relative = entry.path.slice(1);
    return { entry, name: entry.kind === "dir" ? `${relative}/` : relative };
  }

  /** Entries `start` to `end` (not included), in the archive's order. */
  slice(start = 0, end = this.length): PlannedEntry[] {
    const entries: PlannedEntry[] = [];
    for (let at = start; at < end; at++) entries.push(this.entry(at));
    return entries;
  }

  /** Every entry, in the archive's order, each made as it is reached. */
  *[Symbol.iterator](): Iterator<PlannedEntry> {
    for (let at = 0; at < this.length; at++) yield this.entry(at);
  }
}

/**
 * Check the entries and sort them as the archive lists them; throws a {@link UsageError}
 * naming every entry that cannot be written (a relative or unnormalized path, a path given
 * twice unless `options.duplicates` is `"last"`, a mode out of range, a file without
 * content, ...) before anything is read. Each entry is asked for once here; only its path
 * is kept.
 *
 * @example
 * ```ts
 * import { planLayer } from "./layer_tar.ts";
 * const dir = { kind: "dir", mode: 0o755, uid: 0, gid: 0 } as const;
 * const planned = planLayer([{ path: "/b", ...dir }, { path: "/a", ...dir, mode: 0o700 },
 *   { path: "/a", ...dir }], 1, { duplicates: "last" });
 * console.log([...planned].map((p) => `${p.name} ${p.entry.mode.toString(8)}`)); // [ "a/ 755", "b/ 755" ]
 * ```
 */
export function planLayer(
  entries: readonly LayerEntry[] | LayerEntryList,
  mtime: number,
  options: PlanOptions = {},
): PlannedLayer {
  const list: LayerEntryList = Array.isArray(entries)
    ? { length: entries.length, entry: (at) => (entries as readonly LayerEntry[])[at] }
    : entries as LayerEntryList;
  const problems: string[] = [];
  if (!Number.isSafeInteger(mtime) || mtime < 0 || mtime > MAX_OCTAL_11) {
    problems.push(`the mtime ${mtime} is not a whole number of seconds from 0 to ${MAX_OCTAL_11}`);
  }
  const count = list.length;
  // Entry `at`, when it can be written; else its problem is noted.
  const valid = (at: number): LayerEntry | undefined => {
    const entry = list.entry(at);
    const problem = entryProblem(entry);
    if (problem === undefined) return entry;
    problems.push(`${JSON.stringify(entry.path)}: ${problem}`);
  };
  let order: Uint32Array | undefined;
  if (list.sorted) {
    // Checked as they come: only the last path is kept.
    let last: string | undefined;
    for (let at = 0; at < count; at++) {
      const entry = valid(at);
      if (entry === undefined) continue;
      if (last !== undefined && comparePaths(last, entry.path) >= 0) {
        problems.push(`${JSON.stringify(entry.path)}: not after ${JSON.stringify(last)}`);
      }
      last = entry.path;
    }
  } else {
    const paths: string[] = new Array(count);
    let kept = 0;
    const numbers = new Uint32Array(count);
    for (let at = 0; at < count; at++) {
      const entry = valid(at);
      if (entry === undefined) continue;
      paths[at] = entry.path;
      numbers[kept++] = at;
    }
    // The same path by its number in the list, so that the last one given comes last.
    const sorted = sortByPath(numbers.subarray(0, kept), (at) => paths[at]);
    let written = 0;
    for (let i = 0; i < sorted.length; i++) {
      const next = i + 1 < sorted.length ? paths[sorted[i + 1]] : undefined;
      if (next === paths[sorted[i]]) {
        if (options.duplicates !== "last") problems.push(`${JSON.stringify(next)}: listed twice`);
        continue;
      }
      sorted[written++] = sorted[i];
    }
    order = sorted.slice(0, written);
  }
  if (problems.length > 0) {
    throw new UsageError(
      `cannot write a layer: ${problems.length === 1 ? "an entry is" : "entries are"} not ` +
        `valid:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
      { hint: "this is a bug in the layer's plugin: report it with these lines" },
    );
  }
  return new PlannedLayer(list, order);
}

const ASTRAL = /[\uD800-\uDFFF]/;

/**
 * How two paths stand in a layer's archive: by their UTF-8 bytes (which is the order of
 * their UTF-16 code units, unless one has characters beyond the Basic Multilingual Plane).
 *
 * @example
 * ```ts
 * import { comparePaths } from "./layer_tar.ts";
 * console.log(comparePaths("/a", "/b") < 0, comparePaths("/\uffff", "/😀") < 0); // true true
 * ```
 */
export function comparePaths(x: string, y: string): number {
  if (ASTRAL.test(x) || ASTRAL.test(y)) return compareBytes(encoder.encode(x), encoder.encode(y));
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * `numbers` sorted in place by the paths `pathOf` gives them, in a layer archive's order
 * ({@link comparePaths}); the same path by number. Each path is looked at once for
 * characters beyond the Basic Multilingual Plane, not at every comparison.
 *
 * @example
 * ```ts
 * import { sortByPath } from "./layer_tar.ts";
 * const paths = ["/b", "/a", "/a"];
 * console.log(sortByPath(new Uint32Array([0, 1, 2]), (n) => paths[n])); // Uint32Array(3) [ 1, 2, 0 ]
 * ```
 */
export function sortByPath(numbers: Uint32Array, pathOf: (n: number) => string): Uint32Array {
  const astral = new Set<number>();
  for (const n of numbers) if (ASTRAL.test(pathOf(n))) astral.add(n);
  return numbers.sort((a, b) => {
    const x = pathOf(a), y = pathOf(b);
    const byPath = astral.size > 0 && (astral.has(a) || astral.has(b))
      ? compareBytes(encoder.encode(x), encoder.encode(y))
      : x < y
      ? -1
      : x > y
      ? 1
      : 0;
    return byPath !== 0 ? byPath : a - b;
  });
}

// An empty, `.` or `..` segment, or a trailing `/`, in a path that starts with `/`.
const UNNORMALIZED = /\/(?:\.{0,2})(?:\/|$)/;

/** Why an entry cannot be written, or `undefined` when it can. */
function entryProblem(entry: LayerEntry): string | undefined {
  const { path, kind } = entry;
  if (typeof path !== "string" || !path.startsWith("/") || path === "/") {
    return "the path must be absolute and below / (the root folder is not an entry)";
  }
  if (!path.isWellFormed() || path.includes("\0")) {
    return "the path has a NUL character or a broken UTF-16 surrogate";
  }
  if (UNNORMALIZED.test(path)) {
    return "the path must be normalized: no empty, `.` or `..` segments, no trailing /";
  }
  if (kind !== "file" && kind !== "dir" && kind !== "symlink") {
    return `the kind ${JSON.stringify(kind)} is not file, dir or symlink`;
  }
  if (!Number.isInteger(entry.mode) || entry.mode < 0 || entry.mode > 0o7777) {
    return `the mode ${entry.mode} is not permission bits (0 to 0o7777)`;
  }
  if (!Number.isSafeInteger(entry.uid) || entry.uid < 0) {
    return `the uid ${entry.uid} is not a whole number >= 0`;
  }
  if (!Number.isSafeInteger(entry.gid) || entry.gid < 0) {
    return `the gid ${entry.gid} is not a whole number >= 0`;
  }
  if (kind === "file") {
    const { source, size } = entry;
    if (typeof source !== "string" && !(source instanceof Uint8Array)) {
      return "a file needs a source: a path on disk or bytes";
    }
    if (size !== undefined && (!Number.isSafeInteger(size) || size < 0)) {
      return `the size ${size} is not a whole number >= 0`;
    }
    if (source instanceof Uint8Array && size !== undefined && size !== source.length) {
      return `the size ${size} is not the length of its bytes (${source.length})`;
    }
    if (entry.linkTarget !== undefined) return "a file has no link target";
    const digest = entry.sha256;
    if (digest !== undefined && !(digest instanceof Uint8Array && digest.length === 32)) {
      return "the sha256 of its content must be 32 bytes";
    }
  } else {
    if (entry.source !== undefined || (entry.size ?? 0) !== 0) {
      return `a ${kind === "dir" ? "folder" : "symbolic link"} has no content or size`;
    }
    if (kind === "symlink") {
      const target = entry.linkTarget;
      if (typeof target !== "string" || target === "") return "a symbolic link needs a target";
      if (!target.isWellFormed() || target.includes("\0")) {
        return "the link target has a NUL character or a broken UTF-16 surrogate";
      }
    } else if (entry.linkTarget !== undefined) {
      return "a folder has no link target";
    }
  }
  return undefined;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareBytes(a, b) === 0;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/**
 * The tar archive of a layer (see the module doc for its rules), in blocks of
 * `options.blockSize` bytes, the last one shorter. The entries are checked before anything
 * is read; a file that cannot be read, or whose size is not the one announced, throws
 * (a {@link BuildError} naming the file) where it is met, so the blocks already yielded
 * must be thrown away.
 *
 * @example
 * ```ts
 * import { layerTarBlocks } from "./layer_tar.ts";
 * const entries = [
 *   { path: "/app", kind: "dir", mode: 0o755, uid: 0, gid: 0 },
 *   { path: "/app/hello.txt", kind: "file", mode: 0o644, uid: 0, gid: 0,
 *     source: new TextEncoder().encode("hello\n") },
 * ] as const;
 * let length = 0;
 * for await (const block of layerTarBlocks(entries, { mtime: 1 })) length += block.length;
 * // Two headers, one record of content, two zero records, of 512 bytes each.
 * console.log(length); // 2560
 * ```
 */
export async function* layerTarBlocks(
  entries: readonly LayerEntry[] | LayerEntryList,
  options: LayerTarOptions,
): AsyncGenerator<Uint8Array<ArrayBuffer>, void, undefined> {
  const blockSize = options.blockSize ?? LAYER_TAR_BLOCK;
  if (!Number.isInteger(blockSize) || blockSize < RECORD || blockSize % RECORD !== 0) {
    throw new UsageError(`the tar block size ${blockSize} is not a multiple of ${RECORD}`, {
      hint: "leave blockSize out, or give a multiple of 512",
    });
  }
  const planned = planLayer(entries, options.mtime);
  const out = new BlockWriter(blockSize, options.recycle ?? false);
  yield* writeEntries(planned, out, options);
  out.put(TAR_END);
  yield* out.full();
  yield* out.rest();
}

/** The two zero records that end an archive. */
export const TAR_END: Uint8Array<ArrayBuffer> = new Uint8Array(2 * RECORD);

/**
 * The archive bytes of entries {@link planLayer} gave (in its order), without the two zero
 * records that end an archive: a run of a layer's entries, which the caller puts together
 * with the rest. Blocks as {@link layerTarBlocks} yields them, counted from the first entry.
 *
 * @example
 * ```ts
 * import { planLayer, tarEntryBlocks } from "./layer_tar.ts";
 * const planned = planLayer([
 *   { path: "/hello.txt", kind: "file", mode: 0o644, uid: 0, gid: 0,
 *     source: new TextEncoder().encode("hello\n") },
 * ], 1);
 * let length = 0;
 * for await (const block of tarEntryBlocks(planned, { mtime: 1 })) length += block.length;
 * console.log(length); // 1024
 * ```
 */
export async function* tarEntryBlocks(
  planned: Iterable<PlannedEntry>,
  options: LayerTarOptions,
): AsyncGenerator<Uint8Array<ArrayBuffer>, void, undefined> {
  const out = new BlockWriter(options.blockSize ?? LAYER_TAR_BLOCK, options.recycle ?? false);
  yield* writeEntries(planned, out, options);
  yield* out.rest();
}

/**
 * The bytes an entry's content is preceded by in the archive: its header, after a PAX
 * extended header when one is needed; `size` is the content's length.
 *
 * @example
 * ```ts
 * import { planLayer, tarHeader } from "./layer_tar.ts";
 * const [planned] = planLayer([{ path: "/app", kind: "dir", mode: 0o755, uid: 0, gid: 0 }], 1);
 * console.log(tarHeader(planned, 0, 1).length); // 512
 * ```
 */
export function tarHeader(planned: PlannedEntry, size: number, mtime: number): Uint8Array {
  const out = new BlockWriter(RECORD, false);
  writeHeader(out, planned.name, planned.entry, size, mtime);
  const blocks = [...out.full()];
  const bytes = new Uint8Array(blocks.length * RECORD);
  blocks.forEach((block, i) => bytes.set(block, i * RECORD));
  return bytes;
}

/**
 * The length of {@link tarHeader}'s bytes, without making them when no PAX header is needed
 * (the name and link target ASCII and short, the numbers within their fields).
 *
 * @example
 * ```ts
 * import { planLayer, tarHeaderLength } from "./layer_tar.ts";
 * const [short] = planLayer([{ path: "/app", kind: "dir", mode: 0o755, uid: 0, gid: 0 }], 1);
 * const [long] = planLayer([{ path: "/é", kind: "dir", mode: 0o755, uid: 0, gid: 0 }], 1);
 * console.log(tarHeaderLength(short, 0, 1), tarHeaderLength(long, 0, 1)); // 512 1536
 * ```
 */
export function tarHeaderLength(planned: PlannedEntry, size: number, mtime: number): number {
  const { name, entry } = planned;
  const plain = name.length <= 100 && isAscii(name) && entry.uid <= MAX_OCTAL_7 &&
    entry.gid <= MAX_OCTAL_7 && size <= MAX_OCTAL_11 &&
    (entry.linkTarget === undefined ||
      (entry.linkTarget.length <= 100 && isAscii(entry.linkTarget)));
  return plain ? RECORD : tarHeader(planned, size, mtime).length;
}

async function* writeEntries(
  planned: Iterable<PlannedEntry>,
  out: BlockWriter,
  options: LayerTarOptions,
): AsyncGenerator<Uint8Array<ArrayBuffer>, void, undefined> {
  for (const { entry, name } of planned) {
    if (entry.kind !== "file") {
      writeHeader(out, name, entry, 0, options.mtime);
    } else if (entry.source instanceof Uint8Array) {
      writeHeader(out, name, entry, entry.source.length, options.mtime);
      out.put(entry.source);
      out.pad();
    } else {
      yield* writeFile(out, name, entry, entry.source as string, options);
    }
    yield* out.full();
  }
}

/** Collects the archive into blocks of one size; full blocks are taken out as they fill. */
class BlockWriter {
  #size: number;
  #block: Uint8Array<ArrayBuffer>;
  #fill = 0;
  #done: Uint8Array<ArrayBuffer>[] = [];
  #recycle: boolean;
  #free: Uint8Array<ArrayBuffer>[] = [];
  /** Bytes written so far, for padding to 512. */
  written = 0;

  constructor(size: number, recycle: boolean) {
    this.#size = size;
    this.#recycle = recycle;
    this.#block = new Uint8Array(size);
  }

  /** Append bytes. */
  put(bytes: Uint8Array): void {
    for (let at = 0; at < bytes.length;) {
      const n = Math.min(bytes.length - at, this.#size - this.#fill);
      this.#block.set(bytes.subarray(at, at + n), this.#fill);
      this.#fill += n;
      at += n;
      this.written += n;
      if (this.#fill === this.#size) this.#seal();
    }
  }

  /** The free part of the current block, to read a file straight into. */
  room(): Uint8Array {
    return this.#block.subarray(this.#fill);
  }

  /** Count `n` bytes as written into {@link BlockWriter.room}. */
  commit(n: number): void {
    this.#fill += n;
    this.written += n;
    if (this.#fill === this.#size) this.#seal();
  }

  /** Zeros up to the next multiple of 512. */
  pad(): void {
    const rest = (RECORD - (this.written % RECORD)) % RECORD;
    if (rest > 0) this.put(new Uint8Array(rest));
  }

  /** The blocks filled since the last call. */
  *full(): Generator<Uint8Array<ArrayBuffer>> {
    while (this.#done.length > 0) {
      const block = this.#done.shift()!;
      yield block;
      // Asked for the next one: with recycle, the consumer is done with this one.
      if (this.#recycle) this.#free.push(block);
    }
  }

  /** The last, partly filled block (if any). */
  *rest(): Generator<Uint8Array<ArrayBuffer>> {
    if (this.#fill > 0) yield this.#block.slice(0, this.#fill);
    this.#fill = 0;
  }

  #seal(): void {
    // A new block, or (recycle) one the consumer is done with: whoever took the last one may
    // still be reading it.
    this.#done.push(this.#block);
    this.#block = this.#free.pop() ?? new Uint8Array(this.#size);
    this.#fill = 0;
  }
}

/**
 * Write a file from disk: its header (with the size announced, or the opened file's), then
 * its bytes read straight into the blocks, checking that exactly that many come.
 */
async function* writeFile(
  out: BlockWriter,
  name: string,
  entry: LayerEntry,
  source: string,
  options: LayerTarOptions,
): AsyncGenerator<Uint8Array<ArrayBuffer>, void, undefined> {
  const check = entry.sha256 === undefined ? undefined : options.sha256?.();
  if (entry.sha256 !== undefined && check === undefined) {
    throw new UsageError(`${entry.path} has a sha256 to check, but no hasher was given`, {
      hint: "pass options.sha256 (node:crypto's createHash) to the tar writer",
    });
  }
  // Synchronous reads: a layer is mostly small files, and a synchronous open, stat and read
  // costs a fraction of an asynchronous one; the generator yields between blocks, so the
  // compressor and the writer behind it still run while a large file is read.
  let file: Deno.FsFile;
  try {
    // Only a regular file is opened: opening a named pipe put in a file's place since it was
    // listed would wait for a writer for ever.
    if (!Deno.statSync(source).isFile) throw notRegular(source, entry.path);
    file = Deno.openSync(source);
  } catch (error) {
    if (error instanceof BuildError) throw error;
    throw readError(error, source, entry.path);
  }
  try {
    let info: Deno.FileInfo;
    try {
      info = file.statSync();
    } catch (error) {
      throw readError(error, source, entry.path);
    }
    if (!info.isFile) throw notRegular(source, entry.path);
    const size = entry.size ?? info.size;
    writeHeader(out, name, entry, size, options.mtime);
    let left = size;
    while (left > 0) {
      const room = out.room();
      const into = room.length > left ? room.subarray(0, left) : room;
      let n: number | null;
      try {
        n = file.readSync(into);
      } catch (error) {
        throw readError(error, source, entry.path);
      }
      if (n === null || n === 0) throw changedSize(source, entry.path, size, size - left, false);
      check?.update(into.subarray(0, n));
      out.commit(n);
      left -= n;
      yield* out.full();
    }
    // One more byte would mean the file grew while it was read: the archive would not hold
    // the file as it is now, and the layer would not be what the build listed.
    let extra: number | null;
    try {
      extra = file.readSync(new Uint8Array(1));
    } catch (error) {
      throw readError(error, source, entry.path);
    }
    if (extra !== null && extra > 0) throw changedSize(source, entry.path, size, size + 1, true);
    if (check && !sameBytes(check.digest(), entry.sha256!)) {
      throw new BuildError(
        `${source} changed while imgtool built the layer (as ${entry.path}): its content is ` +
          `not the one the image's tag was computed from`,
        { hint: "something is writing to it: build again once it is done" },
      );
    }
    out.pad();
  } finally {
    file.close();
  }
}

function notRegular(source: string, path: string): BuildError {
  return new BuildError(
    `cannot put ${source} into the layer as ${path}: it is not a regular file`,
    { hint: "list only regular files as files (folders and links have kinds of their own)" },
  );
}

function changedSize(
  source: string,
  path: string,
  size: number,
  read: number,
  grew: boolean,
): BuildError {
  const what = grew
    ? `it had more than the ${size} bytes listed`
    : `it ended after ${read} of the ${size} bytes listed`;
  return new BuildError(
    `${source} changed while imgtool read it into the layer (as ${path}): ${what}`,
    { hint: "something is writing to it: build again once it is done" },
  );
}

function readError(error: unknown, source: string, path: string): Error {
  return systemError(error, { doing: `reading ${source} into the layer (as ${path})` }) ??
    (error instanceof Error ? error : new Error(String(error)));
}

/** Write the header of an entry, with a PAX extended header before it when one is needed. */
function writeHeader(
  out: BlockWriter,
  name: string,
  entry: LayerEntry,
  size: number,
  mtime: number,
): void {
  const pax: [string, string][] = [];
  let nameField = name;
  let prefixField = "";
  if (!isAscii(name) || name.length > 100) {
    const split = isAscii(name) ? splitUstarPath(name) : undefined;
    if (split) {
      [prefixField, nameField] = split;
    } else {
      pax.push(["path", name]);
      nameField = toAscii(name);
    }
  }
  let linkField = "";
  if (entry.kind === "symlink") {
    linkField = entry.linkTarget!;
    if (!isAscii(linkField) || linkField.length > 100) {
      pax.push(["linkpath", linkField]);
      linkField = toAscii(linkField);
    }
  }
  const uid = entry.uid > MAX_OCTAL_7 ? (pax.push(["uid", String(entry.uid)]), 0) : entry.uid;
  const gid = entry.gid > MAX_OCTAL_7 ? (pax.push(["gid", String(entry.gid)]), 0) : entry.gid;
  const sizeField = size > MAX_OCTAL_11 ? (pax.push(["size", String(size)]), 0) : size;
  if (pax.length > 0) {
    const records = paxRecords(pax);
    const slash = name.lastIndexOf("/", name.length - 2);
    const paxName = `${name.slice(0, slash + 1)}PaxHeaders.0/${name.slice(slash + 1)}`;
    out.put(ustarHeader({
      name: toAscii(paxName),
      prefix: "",
      mode: 0,
      uid: 0,
      gid: 0,
      size: records.length,
      mtime: 0,
      type: "x",
      link: "",
    }));
    out.put(records);
    out.pad();
  }
  out.put(ustarHeader({
    name: nameField,
    prefix: prefixField,
    mode: entry.mode,
    uid,
    gid,
    size: sizeField,
    mtime,
    type: entry.kind === "file" ? "0" : entry.kind === "dir" ? "5" : "2",
    link: linkField,
  }));
}

/**
 * Split a long ASCII name into a ustar prefix (at most 155 bytes) and name (at most 100),
 * at the last `/` that allows it, as Go's archive/tar does; `undefined` when none does.
 */
function splitUstarPath(name: string): [string, string] | undefined {
  let length = name.length;
  if (length > 156) length = 156;
  else if (name.endsWith("/")) length--;
  const i = name.lastIndexOf("/", length - 1);
  if (i <= 0) return undefined;
  const rest = name.length - i - 1;
  if (rest === 0 || rest > 100 || i > 155) return undefined;
  return [name.slice(0, i), name.slice(i + 1)];
}

/** PAX records (`<length> <key>=<value>\n`), sorted by key, as UTF-8. */
function paxRecords(records: [string, string][]): Uint8Array {
  const text = records.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, value]) => {
    const body = ` ${key}=${value}\n`;
    const bodyLength = encoder.encode(body).length;
    // The length counts its own digits: grow it until it is stable.
    let length = bodyLength + String(bodyLength).length;
    while (bodyLength + String(length).length !== length) {
      length = bodyLength + String(length).length;
    }
    return `${length}${body}`;
  }).join("");
  return encoder.encode(text);
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** The ASCII characters of `text` (others dropped), for the fields a PAX record overrides. */
function toAscii(text: string): string {
  let ascii = "";
  for (let i = 0; i < text.length && ascii.length < 100; i++) {
    if (text.charCodeAt(i) <= 0x7f) ascii += text[i];
  }
  return ascii;
}

/** The 512-byte ustar header of the given values (strings are ASCII and fit their fields). */
function ustarHeader(fields: {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  type: string;
  link: string;
}): Uint8Array {
  const header = new Uint8Array(RECORD);
  const text = (offset: number, value: string) => {
    for (let i = 0; i < value.length; i++) header[offset + i] = value.charCodeAt(i);
  };
  const octal = (offset: number, width: number, value: number) =>
    text(offset, `${value.toString(8).padStart(width - 1, "0")}\0`);
  text(0, fields.name);
  octal(100, 8, fields.mode);
  octal(108, 8, fields.uid);
  octal(116, 8, fields.gid);
  octal(124, 12, fields.size);
  octal(136, 12, fields.mtime);
  text(148, "        "); // The checksum is summed with its own field as spaces.
  text(156, fields.type);
  text(157, fields.link);
  text(257, "ustar\0");
  text(263, "00");
  // uname and gname (265, 297) stay empty: no user or group name from this machine.
  octal(329, 8, 0);
  octal(337, 8, 0);
  text(345, fields.prefix);
  let sum = 0;
  for (const byte of header) sum += byte;
  text(148, `${sum.toString(8).padStart(6, "0")}\0 `);
  return header;
}
