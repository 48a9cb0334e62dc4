/**
 * One image layer as a blob on disk: the layer's tar (`./layer_tar.ts`) in groups of
 * entries, each group compressed as one gzip member by the platform's
 * `CompressionStream("gzip")`, the members one after another. A gzip file may hold several
 * members, and every reader of image layers reads them as one stream (Go's `compress/gzip`,
 * which Docker, containerd and the registries' tools use, by default; GNU gzip; Python's
 * `gzip`); eStargz layers are built the same way, one member per file.
 *
 * Why groups: a group's member depends on its entries only, so a rebuild after one file
 * changed compresses that file's group and copies the others from the last blob
 * (`./layer_cache.ts`), instead of reading and compressing every file. Where a group ends
 * depends on the entries only, never on what the cache holds: after an entry whose name
 * hashes to 0 modulo 16 (so that an edit moves no boundary but its own), once the group
 * holds 1 MiB, and around an entry of 256 KiB or more, which is a group of its own. The
 * blob's bytes are the same with the cache, without it, or with a damaged one.
 *
 * Why the gzip bytes are stable: Deno's gzip header has mtime 0, no file name and OS byte
 * 255 (unknown), whatever the machine; its deflate output does depend on how the input is
 * cut into chunks (each chunk ends in a flush), which is why a group's tar comes in blocks
 * of a fixed size counted from the group's start. The compressor itself is Deno's (the
 * flate2 crate): a Deno whose deflate compresses differently would give other gzip bytes
 * for the same tar (the diff id stays); the tests pin the digest of a known layer, so that
 * such a change shows, and the cache keeps the version of the Deno that wrote it.
 *
 * Memory stays flat in the size of the files: a group of small files is at most about
 * 1 MiB, and a large file goes through in 1 MiB blocks. Hashing uses the system's libcrypto
 * (`./libcrypto.ts`), else `node:crypto`, loaded when the first layer is written: a no-op
 * build writes none (and must not start the Node layer, which `node:crypto` does).
 *
 * @module
 */

import { BuildError, systemError } from "./errors.ts";
import { writeAllSync } from "./fs.ts";
import type { KeptMember, LayerCache, RawAppender, StagedLayer } from "./layer_cache.ts";
import { fastSha256 } from "./libcrypto.ts";
import {
  type LayerEntry,
  type LayerEntryList,
  planLayer,
  type PlannedEntry,
  type PlannedLayer,
  type Sha256Hasher,
  TAR_END,
  tarEntryBlocks,
  tarHeaderLength,
} from "./layer_tar.ts";
import { hexOf } from "./sha256.ts";
import { madeGarbage } from "./garbage.ts";

/** The media type of a layer blob as {@link writeLayerBlob} writes it. */
export const OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";

/** A layer written to disk: what a manifest and an image config say of it, and where it is. */
export interface LayerBlob {
  /** `sha256:<hex>` of the gzip bytes: the blob's digest, as the manifest lists it. */
  readonly digest: string;
  /** `sha256:<hex>` of the uncompressed tar: the diff id, as the image config lists it. */
  readonly diffId: string;
  /** The size of the gzip bytes. */
  readonly size: number;
  /**
   * The file that holds the gzip bytes. Without a cache the caller removes it; with one, the
   * caller hands `staged` to the cache's `keep` (once pushed) or `discard`.
   */
  readonly path: string;
  /** How many groups of entries (gzip members) the blob has, and how many were copied. */
  readonly groups: { readonly total: number; readonly reused: number };
  /** With a cache: the new blob and raw bytes, to keep for the next build. */
  readonly staged?: StagedLayer;
}

/** How {@link writeLayerBlob} writes the layer. */
export interface WriteLayerOptions {
  /** The modification time of every entry, in seconds (`SOURCE_DATE_EPOCH`, or a constant). */
  readonly mtime: number;
  /** The folder to write the blob into (as a new temporary file) when there is no cache. */
  readonly dir: string;
  /** The last blob of this layer, whose groups may be copied; the new blob is written there. */
  readonly cache?: LayerCache;
  /** A path listed more than once: an error (the default), or the last entry wins. */
  readonly duplicates?: "error" | "last";
}

// A group closes once its tar bytes reach this...
const GROUP_BYTES = 1 << 20;
// ...and an entry at least this large (header and content) is a group of its own.
const ALONE_BYTES = 256 << 10;
// The tar bytes of small groups kept per layer at most, to copy them rather than read the files.
const MAX_RAW_BYTES = 512 * 1024 * 1024;
// The pieces a large member is checked and copied in.
const PIECE = 1 << 20;

type Hasher = Sha256Hasher & { copy(): Hasher; digest(): Uint8Array };

/**
 * Write the layer of `entries` as a gzip-compressed tar into a new file (in `options.dir`,
 * or the cache's folder), and return its digest, diff id, size and path. The same entries
 * (same paths, kinds, modes, owners, contents and link targets) and the same mtime give the
 * same bytes, wherever the files are and whatever their times. A file given with its
 * `sha256` whose content is not that is an error. On any failure (a file that cannot be
 * read, or that changes while it is read) the new files are removed and the error thrown.
 *
 * @example
 * ```ts
 * import { writeLayerBlob } from "./layer_blob.ts";
 * const dir = await Deno.makeTempDir();
 * const layer = await writeLayerBlob([
 *   { path: "/app", kind: "dir", mode: 0o755, uid: 0, gid: 0 },
 *   { path: "/app/hello.txt", kind: "file", mode: 0o644, uid: 0, gid: 0,
 *     source: new TextEncoder().encode("hello\n") },
 * ], { mtime: 1, dir });
 * const onDisk = await Deno.stat(layer.path);
 * console.log(layer.digest.startsWith("sha256:"), layer.size === onDisk.size); // true true
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeLayerBlob(
  entries: readonly LayerEntry[] | LayerEntryList,
  options: WriteLayerOptions,
): Promise<LayerBlob> {
  const sha256: () => Hasher = await fastSha256();
  // Entries are checked, and their sizes known, before any file is made.
  const planned = planLayer(entries, options.mtime, { duplicates: options.duplicates });
  const groups = layerGroups(new SizedEntries(planned), options.mtime, sha256);
  madeGarbage(planned.length);
  const cache = options.cache;
  const dir = cache?.dir ?? options.dir;
  let blobPath: string;
  try {
    blobPath = await Deno.makeTempFile({ dir, prefix: "layer-", suffix: ".gz.tmp" });
  } catch (error) {
    throw systemError(error, { doing: "writing a layer" }) ?? error;
  }
  const writer = new BlobWriter(blobPath, cache?.appendRaw(), options.mtime, sha256);
  try {
    let reused = 0;
    for (const group of groups) {
      const kept = group.key === undefined ? undefined : cache?.find(group.key);
      // Its kept tar bytes, else the files read again (a large group's, or damaged ones).
      const copied = kept !== undefined && kept.rawLength === group.rawLength &&
        (writer.copy(group, kept, cache!) || await writer.copyLarge(group, kept, cache!));
      if (copied) reused++;
      else await writer.compress(group);
    }
    await writer.compress({ entries: NO_ENTRIES, rawLength: TAR_END.length, alone: false });
    cache?.close();
    const written = writer.finish();
    return {
      ...written,
      path: blobPath,
      groups: { total: groups.length + 1, reused },
      ...(cache ? { staged: { blobPath, members: writer.members } } : {}),
    };
  } catch (error) {
    writer.close();
    cache?.close();
    // Tar bytes appended to the cache's raw file meanwhile are named by no record: they go
    // when it is next rewritten.
    await Deno.remove(blobPath).catch(() => {});
    throw systemError(error, { doing: `writing a layer to ${blobPath}` }) ?? error;
  }
}

/** A run of entries that goes into one gzip member. */
interface Group {
  /** Its entries, made when they are written (a large layer's are never all made at once). */
  readonly entries: GroupEntries;
  /** SHA-256 (hex) of its headers and contents' digests; none when a content is not known. */
  readonly key?: string;
  /** The length of its tar bytes. */
  readonly rawLength: number;
  /** A large entry alone: its tar bytes are read from disk again rather than kept. */
  readonly alone: boolean;
}

/** A group's entries: numbers `start` to `end` (not included) of the archive's. */
interface GroupEntries {
  readonly start: number;
  readonly end: number;
  /** The entries, each made anew. */
  make(): PlannedEntry[];
}

const NO_ENTRIES: GroupEntries = { start: 0, end: 0, make: () => [] };

/**
 * The planned entries with every file's size known: a file from disk listed without one is
 * looked at once, and keeps that size whenever it is made again.
 */
class SizedEntries {
  readonly planned: PlannedLayer;
  readonly #sizes = new Map<number, number>();

  constructor(planned: PlannedLayer) {
    this.planned = planned;
  }

  /** Entry `at` of the archive, with its size. */
  entry(at: number): PlannedEntry {
    const item = this.planned.entry(at);
    const { entry } = item;
    if (entry.kind !== "file" || entry.size !== undefined || typeof entry.source !== "string") {
      return item;
    }
    let size = this.#sizes.get(at);
    if (size === undefined) {
      let info: Deno.FileInfo;
      try {
        info = Deno.statSync(entry.source);
      } catch (error) {
        const doing = `reading ${entry.source} into the layer (as ${entry.path})`;
        throw systemError(error, { doing }) ?? error;
      }
      // Not a regular file: the tar writer says so when it comes to it, before opening it.
      size = info.size;
      this.#sizes.set(at, size);
    }
    return { ...item, entry: { ...entry, size } };
  }

  /** Entries `start` to `end` (not included), to be made when they are written. */
  group(start: number, end: number): GroupEntries {
    return {
      start,
      end,
      make: () => {
        const made: PlannedEntry[] = [];
        for (let at = start; at < end; at++) made.push(this.entry(at));
        return made;
      },
    };
  }
}

/**
 * The entries cut into groups (see the module doc), each with its key: the SHA-256 of what
 * its tar bytes are made of (every header field and each content's digest, and the rules'
 * version), which the header bytes themselves are a function of.
 */
function layerGroups(
  sized: SizedEntries,
  mtime: number,
  sha256: () => Hasher,
): Group[] {
  const groups: Group[] = [];
  let start = 0;
  // The group's fields as JSON text, each after a comma (text only: an array of them, joined
  // and encoded, made three times the garbage).
  let fields = "";
  const opening = `[${JSON.stringify(GROUP_FORMAT)},${mtime}`;
  let digests = new Uint8Array(32 * 64);
  let known = true;
  let rawLength = 0;
  const close = (end: number, alone: boolean) => {
    if (end === start) return;
    let key: string | undefined;
    if (known) {
      const hash = sha256();
      hash.update(encoder.encode(`${opening}${fields}]`));
      hash.update(digests.subarray(0, (end - start) * 32));
      key = hexOf(hash.digest());
    }
    groups.push({ entries: sized.group(start, end), rawLength, alone, key });
    start = end;
    fields = "";
    known = true;
    rawLength = 0;
  };
  const count = sized.planned.length;
  for (let k = 0; k < count; k++) {
    const item = sized.entry(k);
    const { entry } = item;
    const size = entry.kind !== "file"
      ? 0
      : entry.source instanceof Uint8Array
      ? entry.source.length
      : entry.size!;
    const length = tarHeaderLength(item, size, mtime) + Math.ceil(size / 512) * 512;
    const alone = length >= ALONE_BYTES;
    if (alone) close(k, false);
    const at = (k - start) * 32;
    if (digests.length < at + 32) {
      const grown = new Uint8Array(digests.length * 2);
      grown.set(digests);
      digests = grown;
    }
    const content = entry.source instanceof Uint8Array
      ? sha256DigestOf(sha256, entry.source)
      : entry.kind === "file"
      ? entry.sha256
      : undefined;
    if (content) digests.set(content, at);
    else digests.fill(0, at, at + 32);
    if (entry.kind === "file" && !content) known = false;
    // As JSON: a name or link target with a newline or NUL cannot pass for two entries.
    fields += `,${
      JSON.stringify([
        item.name,
        entry.kind,
        entry.mode,
        entry.uid,
        entry.gid,
        size,
        entry.linkTarget ?? null,
      ])
    }`;
    rawLength += length;
    if (alone || rawLength >= GROUP_BYTES || (nameHash(item.name) & 15) === 0) close(k + 1, alone);
  }
  close(count, false);
  return groups;
}

// The version of the tar rules a group's key stands for: a new rule means new keys.
const GROUP_FORMAT = "imgtool-layer-group/1";
const encoder = new TextEncoder();

function sha256DigestOf(sha256: () => Hasher, bytes: Uint8Array): Uint8Array {
  const hash = sha256();
  hash.update(bytes);
  return hash.digest();
}

/** FNV-1a of a name: where groups end does not depend on the names' lengths or contents' sizes. */
function nameHash(name: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193);
  }
  return hash >>> 0;
}

/** Writes the blob (and, with a cache, the raw bytes of small groups), hashing as it goes. */
class BlobWriter {
  readonly members: KeptMember[] = [];
  readonly #blob: Deno.FsFile;
  readonly #raw: Deno.FsFile | undefined;
  #rawEnd: number;
  readonly #mtime: number;
  readonly #sha256: () => Hasher;
  #tar: Hasher;
  readonly #gzip: Hasher;
  #size = 0;
  #rawSize = 0;

  constructor(
    blobPath: string,
    raw: RawAppender | undefined,
    mtime: number,
    sha256: () => Hasher,
  ) {
    this.#blob = Deno.openSync(blobPath, { write: true, truncate: true });
    this.#raw = raw?.file;
    this.#rawEnd = raw?.at ?? 0;
    this.#mtime = mtime;
    this.#sha256 = sha256;
    this.#tar = sha256();
    this.#gzip = sha256();
  }

  /** Compress a group as a new member. */
  async compress(group: Group): Promise<void> {
    const keepRaw = this.#raw !== undefined && !group.alone &&
      this.#rawSize + group.rawLength <= MAX_RAW_BYTES;
    const offset = this.#size, rawOffset = this.#rawEnd;
    const member = this.#sha256(), raw = this.#sha256();
    const gzip = new CompressionStream("gzip");
    const input = gzip.writable.getWriter();
    const drained = (async () => {
      for await (const chunk of gzip.readable) {
        member.update(chunk);
        this.#writeBlob(chunk);
      }
    })();
    try {
      const blocks = group.entries.end === group.entries.start
        ? [TAR_END]
        : tarEntryBlocks(group.entries.make(), {
          mtime: this.#mtime,
          recycle: true,
          sha256: this.#sha256,
        });
      for await (const block of blocks) {
        this.#tar.update(block);
        raw.update(block);
        if (keepRaw) this.#writeRaw(block);
        // Settles once the compressor has taken the block: only then may it be reused.
        await input.write(block);
      }
      await input.close();
      await drained;
    } catch (error) {
      await input.abort(error).catch(() => {});
      await drained.catch(() => {});
      throw error;
    }
    if (group.key === undefined) return;
    this.members.push({
      key: group.key,
      offset,
      length: this.#size - offset,
      sha256: hexOf(member.digest()),
      rawOffset: keepRaw ? rawOffset : -1,
      rawLength: group.rawLength,
      rawSha256: hexOf(raw.digest()),
    });
  }

  /**
   * Copy a small group's member and tar bytes from the cache, both checked against their
   * digests first; `false` (nothing written) when they are not kept or do not check out.
   */
  copy(group: Group, kept: KeptMember, cache: LayerCache): boolean {
    if (kept.rawOffset < 0 || group.alone) return false;
    const buffer = this.#scratch(kept.rawLength + kept.length);
    const raw = buffer.subarray(0, kept.rawLength);
    const member = buffer.subarray(kept.rawLength);
    if (!cache.read("raw", kept.rawOffset, raw) || !cache.read("blob", kept.offset, member)) {
      return false;
    }
    if (this.#hex(raw) !== kept.rawSha256 || this.#hex(member) !== kept.sha256) return false;
    // The tar bytes stay where they are in the raw file: only new groups are appended.
    const keepRaw = this.#raw !== undefined && this.#rawSize + raw.length <= MAX_RAW_BYTES;
    if (keepRaw) this.#rawSize += raw.length;
    this.members.push({ ...kept, offset: this.#size, rawOffset: keepRaw ? kept.rawOffset : -1 });
    this.#tar.update(raw);
    this.#writeBlob(member);
    return true;
  }

  /**
   * Copy a large group's member from the cache once it checks out, its tar bytes read from
   * the files again (and checked against the digest kept); `false` (nothing written) when
   * the member does not check out or the files' bytes are not the kept ones.
   */
  async copyLarge(group: Group, kept: KeptMember, cache: LayerCache): Promise<boolean> {
    const piece = new Uint8Array(Math.min(PIECE, kept.length));
    const pieces = function* () {
      for (let at = 0; at < kept.length; at += piece.length) {
        const part = piece.subarray(0, Math.min(piece.length, kept.length - at));
        if (!cache.read("blob", kept.offset + at, part)) return false;
        yield part;
      }
      return true;
    };
    const check = this.#sha256();
    let whole = true;
    const reading = pieces();
    for (let step = reading.next();; step = reading.next()) {
      if (step.done) {
        whole = step.value;
        break;
      }
      check.update(step.value);
    }
    if (!whole || hexOf(check.digest()) !== kept.sha256) return false;
    // The tar bytes are hashed into a copy of the diff id's hash, kept only if they match.
    const tar = this.#tar.copy(), raw = this.#sha256();
    for await (
      const block of tarEntryBlocks(group.entries.make(), {
        mtime: this.#mtime,
        recycle: true,
        sha256: this.#sha256,
      })
    ) {
      tar.update(block);
      raw.update(block);
    }
    if (hexOf(raw.digest()) !== kept.rawSha256) return false;
    const offset = this.#size;
    const copying = pieces();
    for (let step = copying.next(); !step.done; step = copying.next()) {
      this.#writeBlob(step.value);
    }
    if (this.#size - offset !== kept.length) {
      throw new BuildError(`the layer cache changed while imgtool copied from it`, {
        hint: "build again",
      });
    }
    this.#tar = tar;
    this.members.push({ ...kept, offset, rawOffset: -1 });
    return true;
  }

  /** The blob's digest, diff id and size; closes the files. */
  finish(): { digest: string; diffId: string; size: number } {
    this.close();
    return {
      digest: `sha256:${hexOf(this.#gzip.digest())}`,
      diffId: `sha256:${hexOf(this.#tar.digest())}`,
      size: this.#size,
    };
  }

  close(): void {
    for (const file of [this.#blob, this.#raw]) {
      try {
        file?.close();
      } catch {
        // Closed already.
      }
    }
  }

  #buffer = new Uint8Array(0);

  /** A buffer of `length` bytes, reused from group to group (valid until the next call). */
  #scratch(length: number): Uint8Array {
    if (this.#buffer.length < length) this.#buffer = new Uint8Array(Math.max(length, 2 << 20));
    return this.#buffer.subarray(0, length);
  }

  #hex(bytes: Uint8Array): string {
    return hexOf(sha256DigestOf(this.#sha256, bytes));
  }

  #writeBlob(bytes: Uint8Array): void {
    this.#gzip.update(bytes);
    writeAllSync(this.#blob, bytes);
    this.#size += bytes.length;
  }

  #writeRaw(bytes: Uint8Array): void {
    writeAllSync(this.#raw!, bytes);
    this.#rawEnd += bytes.length;
    this.#rawSize += bytes.length;
  }
}
