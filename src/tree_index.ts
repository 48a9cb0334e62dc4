/**
 * A tree index: what one walk of a folder tree (or a look at a single file) found, entry by
 * entry in walk order, with the stat key of each entry and the SHA-256 of each file; and its
 * binary form, the digest cache's file format.
 *
 * Why binary, and why this layout: a warm identity compares every entry's stat key with the
 * one remembered, as git's index does, and for 20,000 files a JSON cache cost more to parse
 * than the walk itself. Here the whole index is one read; the stat keys are a `Float64Array`
 * over the bytes read (no parse, no object per entry); the paths are one UTF-8 block split
 * once; digests stay 32 bytes each until one is needed as hex. Entries the ignore rules left
 * out are kept too, by name only, and each folder's entry knows where its contents end: a
 * folder whose own stat is unchanged holds the same names, so they come from here instead of
 * from listing the folder again (git's untracked cache does the same).
 *
 * The layout (little-endian, as every platform Deno runs on; numbers at multiples of 8 bytes):
 *
 * | bytes            | what                                                                  |
 * | ---------------- | --------------------------------------------------------------------- |
 * | 24               | `imgtool-tree-index/1`, zero-padded: the format                       |
 * | 6 × u32          | entries, root bytes, path bytes, target bytes, flags, 0               |
 * | 32               | the tree's digest (flag 1: present)                                   |
 * | 6 f64            | the root's stat key (flag 2: believed)                                |
 * | entries × 6 f64  | per entry: size, mtime (ms), ctime (ms), inode, device, mode          |
 * | entries × u32    | per entry: the number of the first entry after it and its contents    |
 * | entries × 32     | per entry: SHA-256 of a file's content (when believed, else zeros)    |
 * | entries × 1      | per entry: kind (0 file, 1 folder, 2 symbolic link, 3 ignored)        |
 * | entries × 1      | per entry: 1 when its digest (a folder: its names) may be believed    |
 * | root bytes       | the root's absolute path, UTF-8                                       |
 * | path bytes       | each entry's path relative to the root, UTF-8, each ended by a NUL    |
 * | target bytes     | each symbolic link's target, in entry order, each ended by a NUL      |
 * | 0-7              | zeros, to a multiple of 8                                             |
 * | 8                | checksum of everything before it                                      |
 *
 * Anything that does not fit this exactly (another format, another root, a length or count
 * that does not add up, an unknown kind, a wrong checksum) is no index at all.
 *
 * @module
 */

import { type FileStat, fileStatFromKey, type StatKey } from "./file_stat.ts";
import { concatBytes } from "./registry/bytes.ts";

export type { StatKey } from "./file_stat.ts";

/** An entry's kind: a regular file. */
export const FILE = 0;
/** An entry's kind: a folder. */
export const DIR = 1;
/** An entry's kind: a symbolic link. */
export const SYMLINK = 2;
/** An entry's kind: a name the ignore rules left out (not walked, no stat). */
export const IGNORED = 3;
/** An entry's kind. */
export type Kind = typeof FILE | typeof DIR | typeof SYMLINK | typeof IGNORED;

/** Stat fields kept per entry, in this order. */
const SIZE = 0, MTIME = 1, CTIME = 2, INO = 3, DEV = 4, MODE = 5;
/** Numbers kept per entry. */
const FIELDS = 6;
const DIGEST_BYTES = 32;
const MAGIC = "imgtool-tree-index/1";
const MAGIC_BYTES = 24;
const HEADER_BYTES = MAGIC_BYTES + 6 * 4 + DIGEST_BYTES + FIELDS * 8;
const HAS_TREE_DIGEST = 1;
const ROOT_BELIEVED = 2;

/** The value of the hex digit at `at` in `hex` (lower case, as digests are written). */
function nibble(hex: string, at: number): number {
  const code = hex.charCodeAt(at);
  return code <= 57 ? code - 48 : code - 87;
}

/** Hex digits of every byte, for digests read back as text. */
const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

/** The same digits as ASCII codes, two per byte: a digest's hex is written into bytes. */
const HEX_CODES = new Uint8Array(HEX.flatMap((digits) => [...digits].map((c) => c.charCodeAt(0))));
/** Both digits of each byte as one little-endian 16-bit number: one write per byte. */
const HEX_PAIRS = new Uint16Array(HEX_CODES.buffer);
const hexPairs = new Uint16Array(DIGEST_BYTES);
const hexBytes = new Uint8Array(hexPairs.buffer);
const asciiDecoder = new TextDecoder();

/** The arrays of a {@link TreeIndex} read back from a file. */
interface IndexParts {
  readonly paths: string[];
  readonly pathBlock: Uint8Array;
  readonly kinds: Uint8Array;
  readonly stats: Float64Array;
  readonly ends: Uint32Array;
  readonly digests: Uint8Array;
  readonly believed: Uint8Array;
  readonly targets: Map<number, string>;
  readonly rootStat: Float64Array;
  readonly rootBelieved: boolean;
  readonly treeDigest: string | undefined;
}

/**
 * The entries of one walk, in walk order: paths, kinds, stat keys, digests and whether each
 * may be believed, the root's own stat key, and the tree's digest when every file's digest
 * may be believed. Grows as entries are added; the arrays are views over one buffer when
 * read back from a file.
 *
 * @example
 * ```ts
 * import { FILE, TreeIndex } from "./tree_index.ts";
 * const index = new TreeIndex();
 * index.add("a.txt", FILE, { size: 1, mtime: 1000, ctime: 1000, ino: 7, dev: 1, mode: 0o100644 });
 * index.setDigest(0, "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb");
 * console.log(index.length, index.hex(0).slice(0, 8)); // 1 ca978112
 * ```
 */
export class TreeIndex {
  /** Each entry's path relative to the root (`""` for a single file). */
  paths: string[];
  /**
   * The same paths as UTF-8, each ended by a NUL, in entry order, as read from the index's
   * file (`undefined` for an index made in memory, or once an entry is added): C strings
   * ready for the system.
   */
  pathBlock: Uint8Array | undefined;
  /** Each entry's {@link Kind}. */
  kinds: Uint8Array;
  /** Each entry's stat key: size, mtime, ctime, inode, device, mode. */
  stats: Float64Array;
  /** Each entry's SHA-256 (32 bytes), for files whose digest is known. */
  digests: Uint8Array;
  /** 1 where an entry's digest (a folder's: its names) may be believed in a later run. */
  believed: Uint8Array;
  /** Each symbolic link's target, by entry number. */
  targets: Map<number, string>;
  /** The root's own stat key (a folder's: its names below). */
  readonly rootStat: Float64Array;
  /** Whether the root's names may be believed while its stat key is unchanged. */
  rootBelieved: boolean;
  /** The tree's digest, when it was taken over exactly these entries, every file believed. */
  treeDigest: string | undefined;
  #length: number;
  #ends: Uint32Array | undefined;
  #byPath: Map<string, number> | undefined;

  /**
   * An empty index, with room for `capacity` entries before it grows; or one over `parts`
   * (as read back from a file: as many entries as paths).
   */
  constructor(from: number | IndexParts = 64) {
    if (typeof from === "number") {
      this.paths = [];
      this.pathBlock = undefined;
      this.kinds = new Uint8Array(from);
      this.stats = new Float64Array(from * FIELDS);
      this.digests = new Uint8Array(from * DIGEST_BYTES);
      this.believed = new Uint8Array(from);
      this.targets = new Map();
      this.rootStat = new Float64Array(FIELDS).fill(-1);
      this.rootBelieved = false;
      this.treeDigest = undefined;
      this.#length = 0;
    } else {
      ({
        paths: this.paths,
        pathBlock: this.pathBlock,
        kinds: this.kinds,
        stats: this.stats,
        digests: this.digests,
        believed: this.believed,
        targets: this.targets,
        rootStat: this.rootStat,
        rootBelieved: this.rootBelieved,
        treeDigest: this.treeDigest,
      } = from);
      this.#ends = from.ends;
      this.#length = from.paths.length;
    }
  }

  /** How many entries it holds. */
  get length(): number {
    return this.#length;
  }

  /**
   * Add an entry with the stat key `stat` (none for an ignored name, which has no `lstat`);
   * returns its number.
   */
  add(path: string, kind: Kind, stat: StatKey | undefined, target?: string): number {
    const at = this.#push(path, kind, target);
    writeStat(this.stats, at * FIELDS, stat);
    return at;
  }

  /** Copy entries `0..count` of `index` (digests, believed flags and targets too). */
  addFirst(index: TreeIndex, count: number): void {
    for (let at = 0; at < count; at++) {
      this.#push(index.paths[at], index.kinds[at] as Kind, index.targets.get(at));
    }
    this.stats.set(index.stats.subarray(0, count * FIELDS));
    this.digests.set(index.digests.subarray(0, count * DIGEST_BYTES));
    this.believed.set(index.believed.subarray(0, count));
  }

  /** Set the root's stat key from `info`, and whether its names may be believed. */
  setRoot(info: StatKey, believed: boolean): void {
    writeStat(this.rootStat, 0, info);
    this.rootBelieved = believed;
  }

  /** Whether the root's stat key is `info`'s and its names may be believed. */
  rootUnchanged(info: StatKey): boolean {
    return this.rootBelieved && sameStat(this.rootStat, 0, info);
  }

  #push(path: string, kind: Kind, target: string | undefined): number {
    const at = this.#length;
    if (at === this.kinds.length) this.#grow();
    this.paths.push(path);
    this.pathBlock = undefined;
    this.kinds[at] = kind;
    if (target !== undefined) this.targets.set(at, target);
    this.#length = at + 1;
    this.#byPath = undefined;
    this.#ends = undefined;
    return at;
  }

  /** Entry `at`'s size in bytes. */
  size(at: number): number {
    return this.stats[at * FIELDS + SIZE];
  }

  /** Entry `at`'s mode as `stat` gives it (type and permission bits); `null` if none. */
  mode(at: number): number | null {
    const mode = this.stats[at * FIELDS + MODE];
    return mode < 0 ? null : mode;
  }

  /** The later of entry `at`'s modification and change times, in milliseconds. */
  changed(at: number): number {
    return Math.max(this.stats[at * FIELDS + MTIME], this.stats[at * FIELDS + CTIME]);
  }

  /** Whether entry `at` has the same stat key as entry `other` of `index`. */
  sameStat(at: number, index: TreeIndex, other: number): boolean {
    const a = this.stats, b = index.stats;
    const i = at * FIELDS, j = other * FIELDS;
    return a[i + SIZE] === b[j + SIZE] && a[i + MTIME] === b[j + MTIME] &&
      a[i + CTIME] === b[j + CTIME] && a[i + INO] === b[j + INO] &&
      a[i + DEV] === b[j + DEV] && a[i + MODE] === b[j + MODE];
  }

  /** Whether entry `at` has the stat key of `info`. */
  hasStat(at: number, info: StatKey): boolean {
    return sameStat(this.stats, at * FIELDS, info);
  }

  /** Whether entry `at` has the stat key whose numbers are `key` (as `LstatKeys` gives them). */
  hasKey(at: number, key: Float64Array): boolean {
    const s = this.stats, i = at * FIELDS;
    return s[i + SIZE] === key[SIZE] && s[i + MTIME] === key[MTIME] &&
      s[i + CTIME] === key[CTIME] && s[i + INO] === key[INO] && s[i + DEV] === key[DEV] &&
      s[i + MODE] === key[MODE];
  }

  /** What `lstat` said of entry `at` when it was remembered (its type from its mode). */
  statOf(at: number): FileStat {
    return fileStatFromKey(this.stats, at * FIELDS);
  }

  /** The entry at `path`, or -1; `hint` is where to look first (walks come in order). */
  find(path: string, hint = -1): number {
    if (hint >= 0 && hint < this.#length && this.paths[hint] === path) return hint;
    if (this.#byPath === undefined) {
      this.#byPath = new Map();
      for (let at = 0; at < this.#length; at++) this.#byPath.set(this.paths[at], at);
    }
    return this.#byPath.get(path) ?? -1;
  }

  /**
   * The paths of the entries in the folder of entry `at` (-1: the root), as the walk found
   * them: sorted, ignored ones included.
   */
  contentsOf(at: number): string[] {
    const ends = this.#ends ??= subtreeEnds(this);
    const paths: string[] = [];
    const end = at < 0 ? this.#length : ends[at];
    for (let child = at + 1; child < end; child = ends[child]) paths.push(this.paths[child]);
    return paths;
  }

  /** Set entry `at`'s digest from hex, or from the digest of entry `other` of `index`. */
  setDigest(at: number, hex: string): void;
  setDigest(at: number, index: TreeIndex, other: number): void;
  setDigest(at: number, from: string | TreeIndex, other = 0): void {
    const base = at * DIGEST_BYTES;
    if (typeof from === "string") {
      for (let i = 0; i < DIGEST_BYTES; i++) {
        this.digests[base + i] = (nibble(from, i * 2) << 4) | nibble(from, i * 2 + 1);
      }
    } else {
      const start = other * DIGEST_BYTES;
      for (let i = 0; i < DIGEST_BYTES; i++) this.digests[base + i] = from.digests[start + i];
    }
  }

  /** Entry `at`'s digest as lowercase hex. */
  hex(at: number): string {
    // One flat string per digest: adding 32 pieces would make 31 strings on the way, and
    // trees ask this of every file.
    const base = at * DIGEST_BYTES;
    for (let i = 0; i < DIGEST_BYTES; i++) hexPairs[i] = HEX_PAIRS[this.digests[base + i]];
    return asciiDecoder.decode(hexBytes);
  }

  /** Whether entry `at`'s digest is `hex` (lowercase), told without making a string. */
  hasHex(at: number, hex: string): boolean {
    if (hex.length !== DIGEST_BYTES * 2) return false;
    const base = at * DIGEST_BYTES;
    for (let i = 0; i < DIGEST_BYTES; i++) {
      const pair = HEX_PAIRS[this.digests[base + i]];
      if (hex.charCodeAt(i * 2) !== (pair & 0xff) || hex.charCodeAt(i * 2 + 1) !== pair >> 8) {
        return false;
      }
    }
    return true;
  }

  /**
   * Every entry's digest as hex, 64 digits each, in entry order (zeros where none): a whole
   * tree's digests as one string, which `slice` cuts without copying.
   */
  hexAll(): string {
    const count = this.#length * DIGEST_BYTES;
    const pairs = new Uint16Array(count);
    for (let i = 0; i < count; i++) pairs[i] = HEX_PAIRS[this.digests[i]];
    return asciiDecoder.decode(new Uint8Array(pairs.buffer));
  }

  /** For each entry, the number of the first entry after it and everything below it. */
  ends(): Uint32Array {
    return this.#ends ??= subtreeEnds(this);
  }

  #grow(): void {
    const capacity = Math.max(16, this.kinds.length * 2);
    const grown = <T extends Uint8Array | Float64Array>(array: T, size: number): T => {
      const next = new (array.constructor as new (length: number) => T)(size);
      next.set(array);
      return next;
    };
    this.kinds = grown(this.kinds, capacity);
    this.stats = grown(this.stats, capacity * FIELDS);
    this.digests = grown(this.digests, capacity * DIGEST_BYTES);
    this.believed = grown(this.believed, capacity);
  }
}

/** Write the stat key `info` (none: -1 each) at `base` of `stats`. */
function writeStat(stats: Float64Array, base: number, info: StatKey | undefined): void {
  stats[base + SIZE] = info?.size ?? -1;
  stats[base + MTIME] = info?.mtime ?? -1;
  stats[base + CTIME] = info?.ctime ?? -1;
  stats[base + INO] = info?.ino ?? -1;
  stats[base + DEV] = info?.dev ?? -1;
  stats[base + MODE] = info?.mode ?? -1;
}

/** Whether the stat key at `base` of `stats` is `info`. */
function sameStat(stats: Float64Array, base: number, info: StatKey): boolean {
  return stats[base + SIZE] === info.size && stats[base + MTIME] === info.mtime &&
    stats[base + CTIME] === info.ctime && stats[base + INO] === info.ino &&
    stats[base + DEV] === info.dev && stats[base + MODE] === info.mode;
}

/** Where each entry's subtree ends: a folder's after its last descendant, else itself + 1. */
function subtreeEnds(index: TreeIndex): Uint32Array {
  const count = index.length;
  const ends = new Uint32Array(count);
  const open: number[] = [];
  for (let at = 0; at <= count; at++) {
    const path = at < count ? index.paths[at] : "";
    while (open.length > 0) {
      const folder = index.paths[open[open.length - 1]];
      const inside = at < count && path.length > folder.length &&
        path.charCodeAt(folder.length) === 47 && path.startsWith(folder);
      if (inside) break;
      ends[open.pop()!] = at;
    }
    if (at === count) break;
    if (index.kinds[at] === DIR) open.push(at);
    else ends[at] = at + 1;
  }
  return ends;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

const align8 = (n: number) => (n + 7) & ~7;

/**
 * The binary form of `index` for the tree at `root` (see the module's documentation).
 *
 * @example
 * ```ts
 * import { decodeTreeIndex, encodeTreeIndex, FILE, TreeIndex } from "./tree_index.ts";
 * const index = new TreeIndex();
 * index.add("a.txt", FILE, { size: 1, mtime: 1000, ctime: 1000, ino: 7, dev: 1, mode: 0o100644 });
 * const bytes = encodeTreeIndex("/project/src", index);
 * console.log(decodeTreeIndex(bytes, "/project/src")?.paths); // [ "a.txt" ]
 * console.log(decodeTreeIndex(bytes, "/elsewhere")); // undefined
 * ```
 */
export function encodeTreeIndex(root: string, index: TreeIndex): Uint8Array {
  const pieces: Uint8Array[] = [];
  writeTreeIndex(root, index, (piece) => pieces.push(piece.slice()));
  return concatBytes(pieces);
}

/**
 * The bytes {@link encodeTreeIndex} gives, handed to `write` in pieces of at most 64 KiB,
 * each valid only during the call: an index of 50,000 entries (some 5 MB) is written to its
 * file without being made whole in memory first.
 *
 * @example
 * ```ts
 * import { encodeTreeIndex, FILE, TreeIndex, writeTreeIndex } from "./tree_index.ts";
 * const index = new TreeIndex();
 * index.add("a.txt", FILE, { size: 1, mtime: 1000, ctime: 1000, ino: 7, dev: 1, mode: 0o100644 });
 * let length = 0;
 * writeTreeIndex("/project/src", index, (piece) => length += piece.length);
 * console.log(length === encodeTreeIndex("/project/src", index).length); // true
 * ```
 */
export function writeTreeIndex(
  root: string,
  index: TreeIndex,
  write: (piece: Uint8Array) => void,
): void {
  const count = index.length;
  const rootBytes = encoder.encode(root);
  let pathLength = 0;
  for (let at = 0; at < count; at += PATH_BATCH) pathLength += utf8Length(pathBatch(index, at));
  const targets: string[] = [];
  for (let at = 0; at < count; at++) {
    if (index.kinds[at] === SYMLINK) targets.push(index.targets.get(at) ?? "");
  }
  const targetBytes = encoder.encode(targets.map((target) => `${target}\0`).join(""));
  const layout = layoutOf(count, rootBytes.length, pathLength, targetBytes.length);
  const head = new Uint8Array(HEADER_BYTES);
  const view = new DataView(head.buffer);
  head.set(encoder.encode(MAGIC));
  const flags = (index.treeDigest ? HAS_TREE_DIGEST : 0) | (index.rootBelieved ? ROOT_BELIEVED : 0);
  const header = [count, rootBytes.length, pathLength, targetBytes.length, flags, 0];
  header.forEach((value, i) => view.setUint32(MAGIC_BYTES + i * 4, value, true));
  if (index.treeDigest) {
    for (let i = 0; i < DIGEST_BYTES; i++) {
      head[layout.treeDigest + i] = (nibble(index.treeDigest, i * 2) << 4) |
        nibble(index.treeDigest, i * 2 + 1);
    }
  }
  new Float64Array(head.buffer, layout.rootStat, FIELDS).set(index.rootStat);
  const out = new ChecksummedPieces(write);
  out.put(head);
  out.put(bytesOf(index.stats.subarray(0, count * FIELDS)));
  out.put(bytesOf(index.ends()));
  // Only believed digests are kept: the others mean nothing to a later run. Runs of believed
  // files go as they are, the others as zeros (a view per entry made garbage).
  for (let at = 0; at < count;) {
    const kept = (n: number) => index.believed[n] === 1 && index.kinds[n] === FILE;
    let end = at + 1;
    while (end < count && kept(end) === kept(at)) end++;
    if (kept(at)) out.put(index.digests.subarray(at * DIGEST_BYTES, end * DIGEST_BYTES));
    else out.zeros((end - at) * DIGEST_BYTES);
    at = end;
  }
  out.put(index.kinds.subarray(0, count));
  out.put(index.believed.subarray(0, count));
  out.put(rootBytes);
  for (let at = 0; at < count; at += PATH_BATCH) out.put(encoder.encode(pathBatch(index, at)));
  out.put(targetBytes);
  out.end(layout.checksum);
}

/** How many paths {@link writeTreeIndex} encodes at once. */
const PATH_BATCH = 4096;

/** A typed array's bytes, as a view. */
function bytesOf(array: Float64Array | Uint32Array): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

/**
 * The paths of entries `at` on, a few thousand of them, each ended by a NUL: the paths are
 * measured and written a batch at a time, one string and one array per batch, not per path.
 */
function pathBatch(index: TreeIndex, at: number): string {
  return `${index.paths.slice(at, Math.min(index.length, at + PATH_BATCH)).join("\0")}\0`;
}

/** Anything but ASCII, whose UTF-8 is longer than the string. */
const NOT_ASCII = /[^\0-\x7f]/;

/**
 * The length of `text` in UTF-8, as `TextEncoder` encodes it (a lone surrogate as U+FFFD's 3
 * bytes). Counted character by character, 20,000 paths took 12 ms of a cold identity, all of
 * it after the hashing; a native scan finds most text plain ASCII at once.
 */
function utf8Length(text: string): number {
  return NOT_ASCII.test(text) ? encoder.encode(text).length : text.length;
}

/**
 * Bytes passed on in pieces of 64 KiB through one buffer, with {@link checksum} taken as they
 * go; {@link ChecksummedPieces.end} pads them to a multiple of 8 and adds the checksum.
 */
class ChecksummedPieces {
  readonly #write: (piece: Uint8Array) => void;
  readonly #buffer = new Uint8Array(64 << 10);
  readonly #words = new Int32Array(this.#buffer.buffer);
  #fill = 0;
  #total = 0;
  #wordCount = 0;
  #a = 0x811c9dc5 | 0;
  #b = 0x9e3779b9 | 0;

  constructor(write: (piece: Uint8Array) => void) {
    this.#write = write;
  }

  put(bytes: Uint8Array): void {
    for (let at = 0; at < bytes.length;) {
      const n = Math.min(bytes.length - at, this.#buffer.length - this.#fill);
      this.#buffer.set(n === bytes.length ? bytes : bytes.subarray(at, at + n), this.#fill);
      this.#fill += n;
      at += n;
      if (this.#fill === this.#buffer.length) this.#flush();
    }
    this.#total += bytes.length;
  }

  zeros(length: number): void {
    for (let left = length; left > 0;) {
      const n = Math.min(left, this.#buffer.length - this.#fill);
      this.#buffer.fill(0, this.#fill, this.#fill + n);
      this.#fill += n;
      left -= n;
      if (this.#fill === this.#buffer.length) this.#flush();
    }
    this.#total += length;
  }

  /** Pad to `checksumAt` (the next multiple of 8) and write the checksum after. */
  end(checksumAt: number): void {
    this.zeros(checksumAt - this.#total);
    this.#flush();
    const tail = new Uint8Array(8);
    const view = new DataView(tail.buffer);
    view.setUint32(0, (this.#a ^ this.#wordCount) >>> 0, true);
    view.setUint32(4, this.#b >>> 0, true);
    this.#write(tail);
  }

  /** Take the checksum of, and pass on, the whole 8-byte groups buffered; keep the rest. */
  #flush(): void {
    const whole = this.#fill & ~7;
    const words = this.#words;
    let a = this.#a, b = this.#b;
    const count = whole >> 2;
    for (let i = 0; i < count; i += 2) {
      a = Math.imul(a ^ words[i], 0x01000193);
      b = Math.imul(b ^ words[i + 1], 0x01000193);
    }
    this.#a = a;
    this.#b = b;
    this.#wordCount += count;
    if (whole > 0) this.#write(this.#buffer.subarray(0, whole));
    this.#buffer.copyWithin(0, whole, this.#fill);
    this.#fill -= whole;
  }
}

/**
 * The index in `bytes` (as {@link encodeTreeIndex} wrote it) if it is whole, well formed and
 * about `root`; else `undefined`. Its arrays are views over `bytes`.
 */
export function decodeTreeIndex(bytes: Uint8Array, root: string): TreeIndex | undefined {
  if (bytes.length < HEADER_BYTES + 8 || bytes.byteOffset % 8 !== 0) return undefined;
  for (let i = 0; i < MAGIC_BYTES; i++) {
    if (bytes[i] !== (i < MAGIC.length ? MAGIC.charCodeAt(i) : 0)) return undefined;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const [count, rootLength, pathLength, targetLength, flags, zero] = Array.from(
    { length: 6 },
    (_, i) => view.getUint32(MAGIC_BYTES + i * 4, true),
  );
  if (zero !== 0 || (flags & ~(HAS_TREE_DIGEST | ROOT_BELIEVED)) !== 0) return undefined;
  const layout = layoutOf(count, rootLength, pathLength, targetLength);
  if (layout.total !== bytes.length) return undefined;
  const [a, b] = checksum(bytes, layout.checksum);
  if (view.getUint32(layout.checksum, true) !== a) return undefined;
  if (view.getUint32(layout.checksum + 4, true) !== b) return undefined;
  const at = (offset: number) => bytes.byteOffset + offset;
  try {
    if (decoder.decode(bytes.subarray(layout.root, layout.root + rootLength)) !== root) {
      return undefined;
    }
    const pathBlock = bytes.subarray(layout.paths, layout.paths + pathLength);
    const paths = decoder.decode(pathBlock).split("\0");
    // Each path ends with a NUL: one more piece than entries, the last one empty.
    if (paths.length !== count + 1 || paths.pop() !== "") return undefined;
    const kinds = bytes.subarray(layout.kinds, layout.kinds + count);
    const believed = bytes.subarray(layout.believed, layout.believed + count);
    const ends = new Uint32Array(bytes.buffer, at(layout.ends), count);
    const targetList = decoder.decode(
      bytes.subarray(layout.targets, layout.targets + targetLength),
    ).split("\0");
    if (targetList.pop() !== "") return undefined;
    const targets = new Map<number, string>();
    for (let entry = 0; entry < count; entry++) {
      if (kinds[entry] > IGNORED || believed[entry] > 1) return undefined;
      // Subtrees nest: each ends after its entry, and no further than its folder's.
      if (ends[entry] <= entry || ends[entry] > count) return undefined;
      if (kinds[entry] !== DIR && ends[entry] !== entry + 1) return undefined;
      if (kinds[entry] === SYMLINK) {
        if (targets.size === targetList.length) return undefined;
        targets.set(entry, targetList[targets.size]);
      }
    }
    if (targets.size !== targetList.length) return undefined;
    let treeDigest: string | undefined;
    if (flags & HAS_TREE_DIGEST) {
      treeDigest = "";
      for (let i = layout.treeDigest; i < layout.treeDigest + DIGEST_BYTES; i++) {
        treeDigest += HEX[bytes[i]];
      }
    }
    return new TreeIndex({
      paths,
      pathBlock,
      kinds,
      believed,
      stats: new Float64Array(bytes.buffer, at(layout.stats), count * FIELDS),
      ends,
      digests: bytes.subarray(layout.digests, layout.digests + count * DIGEST_BYTES),
      targets,
      rootStat: new Float64Array(bytes.buffer, at(layout.rootStat), FIELDS),
      rootBelieved: (flags & ROOT_BELIEVED) !== 0,
      treeDigest,
    });
  } catch {
    return undefined; // Not UTF-8.
  }
}

/** Where each section starts, and the whole length. */
function layoutOf(count: number, root: number, paths: number, targets: number) {
  const treeDigest = MAGIC_BYTES + 6 * 4;
  const rootStat = treeDigest + DIGEST_BYTES;
  const stats = HEADER_BYTES;
  const ends = stats + count * FIELDS * 8;
  const digests = ends + count * 4;
  const kinds = digests + count * DIGEST_BYTES;
  const believed = kinds + count;
  const rootAt = believed + count;
  const pathsAt = rootAt + root;
  const targetsAt = pathsAt + paths;
  const checksumAt = align8(targetsAt + targets);
  return {
    treeDigest,
    rootStat,
    stats,
    ends,
    digests,
    kinds,
    believed,
    root: rootAt,
    paths: pathsAt,
    targets: targetsAt,
    checksum: checksumAt,
    total: checksumAt + 8,
  };
}

/**
 * Two 32-bit lanes over the first `length` bytes (a multiple of 8), four bytes at a time:
 * it catches a file cut short, spliced or damaged; it is no defence against a writer who
 * means harm (the cache folder is the user's own: see `./cache_dir.ts`).
 */
function checksum(bytes: Uint8Array, length: number): [number, number] {
  const words = new Int32Array(bytes.buffer, bytes.byteOffset, length / 4);
  let a = 0x811c9dc5 | 0, b = 0x9e3779b9 | 0;
  for (let i = 0; i < words.length; i += 2) {
    a = Math.imul(a ^ words[i], 0x01000193);
    b = Math.imul(b ^ words[i + 1], 0x01000193);
  }
  return [(a ^ words.length) >>> 0, b >>> 0];
}

/**
 * Whether `a` and `b` would be written alike (entries, stat keys, believed digests, targets,
 * root, tree digest): then a new walk has nothing to add to what is stored.
 *
 * @example
 * ```ts
 * import { FILE, sameIndex, TreeIndex } from "./tree_index.ts";
 * const make = (mtime: number) => {
 *   const index = new TreeIndex();
 *   index.add("a", FILE, { size: 1, mtime, ctime: 1000, ino: 7, dev: 1, mode: 0o100644 });
 *   return index;
 * };
 * console.log(sameIndex(make(1000), make(1000)), sameIndex(make(1000), make(2000))); // true false
 * ```
 */
export function sameIndex(a: TreeIndex, b: TreeIndex): boolean {
  if (a.length !== b.length || a.treeDigest !== b.treeDigest) return false;
  if (a.rootBelieved !== b.rootBelieved || a.rootStat.some((n, i) => n !== b.rootStat[i])) {
    return false;
  }
  for (let at = 0; at < a.length; at++) {
    if (a.paths[at] !== b.paths[at] || a.kinds[at] !== b.kinds[at]) return false;
    if (a.believed[at] !== b.believed[at] || !a.sameStat(at, b, at)) return false;
    if (a.kinds[at] === SYMLINK && a.targets.get(at) !== b.targets.get(at)) return false;
    if (a.believed[at] === 1 && a.kinds[at] === FILE) {
      const start = at * DIGEST_BYTES;
      for (let i = start; i < start + DIGEST_BYTES; i++) {
        if (a.digests[i] !== b.digests[i]) return false;
      }
    }
  }
  return true;
}
