/**
 * What an appended layer's last blob was made of, kept so that the next one reuses it: the
 * blob (a run of gzip members, one per group of entries: `./layer_blob.ts`), the
 * uncompressed bytes of its small groups, and a record naming each member by the key of
 * what went into it (headers and content digests). A rebuild after one file changed then
 * compresses one group and copies the rest, instead of reading and compressing every file.
 *
 * A slot is one layer of one spec (its sources and where they go), in
 * `imgtoolCacheDir("layers")`: `<slot>.json` (the record), `<slot>.gz` (the blob) and
 * `<slot>.raw` (the small groups' tar bytes: groups that changed are appended to it, so that
 * a rebuild writes only those; it is rewritten with the live groups alone once most of it is
 * stale). Nothing kept is believed blindly: every
 * member and every raw group is checked against the SHA-256 the record gives before it is
 * used, and a record written by another Deno (whose deflate may compress differently) is no
 * record, so that a layer's bytes never depend on what the cache held. Files that do not
 * agree (two builds of one slot at once) only cost a miss. The folder is private (as every
 * cache of imgtool's) and kept within {@link LAYER_CACHE_LIMITS}; removing it is safe.
 *
 * @module
 */

import {
  type CacheLimits,
  imgtoolCacheDir,
  noteCacheUse,
  privateCacheDir,
  pruneCacheDir,
  readJsonCacheEntry,
  writeCacheEntry,
} from "./cache_dir.ts";
import { writeAllSync } from "./fs.ts";
import { join } from "./path.ts";

/** One gzip member of a kept blob, and the group of entries it holds. */
export interface KeptMember {
  /** The group's key: SHA-256 (hex) of its headers and its files' content digests. */
  readonly key: string;
  /** Where the member starts in the kept blob. */
  readonly offset: number;
  /** Its length in bytes (compressed). */
  readonly length: number;
  /** SHA-256 (hex) of the member's bytes. */
  readonly sha256: string;
  /** Where the group's tar bytes start in the raw file; -1 when they are not kept. */
  readonly rawOffset: number;
  /** The length of the group's tar bytes. */
  readonly rawLength: number;
  /** SHA-256 (hex) of the group's tar bytes. */
  readonly rawSha256: string;
}

/** A blob written for a slot, not yet kept ({@link LayerCache.keep}). */
export interface StagedLayer {
  /** The new blob's file (in the cache folder). */
  readonly blobPath: string;
  /** The members of the new blob, in order (their raw bytes in the slot's raw file). */
  readonly members: readonly KeptMember[];
}

/** Where new groups' tar bytes go: the end of the slot's raw file. */
export interface RawAppender {
  /** The file, opened to append. */
  readonly file: Deno.FsFile;
  /** Its length when opened: the offset of the first byte appended. */
  readonly at: number;
}

/** How many slots, and how many bytes, the layer cache keeps (three files per slot). */
export const LAYER_CACHE_LIMITS: CacheLimits = { maxEntries: 3 * 24, maxBytes: 2_000_000_000 };

const FORMAT = "imgtool-layer-cache/1";
// The deflate that wrote the members: another one may write other bytes for the same input.
const COMPRESSOR = `deno ${Deno.version.deno}`;
const MAX_RECORD_BYTES = 64 * 1024 * 1024;
// Stale bytes a raw file may hold beyond its live ones before it is rewritten.
const STALE_RAW_BYTES = 16 * 1024 * 1024;

/**
 * The kept blob of one slot (possibly none yet), and where the next one is written.
 *
 * @example
 * ```ts
 * import { LayerCache } from "./layer_cache.ts";
 * const cache = LayerCache.open("0".repeat(64), `${Deno.makeTempDirSync()}/layers`);
 * console.log(cache?.find("f".repeat(64))); // undefined
 * ```
 */
export class LayerCache {
  /** The cache folder: the next blob and raw file are written here. */
  readonly dir: string;
  readonly #slot: string;
  readonly #members: Map<string, KeptMember>;
  #blob: Deno.FsFile | undefined | null;
  #raw: Deno.FsFile | undefined | null;

  private constructor(dir: string, slot: string, members: Map<string, KeptMember>) {
    this.dir = dir;
    this.#slot = slot;
    this.#members = members;
  }

  /**
   * The cache of `slot` (hex) in `dir` (default: imgtool's `layers` cache folder);
   * `undefined` when there is no private cache folder to use.
   */
  static open(slot: string, dir?: string): LayerCache | undefined {
    const folder = dir ?? imgtoolCacheDir("layers");
    if (folder === undefined || !HEX64.test(slot)) return undefined;
    if (!privateCacheDir(folder)) return undefined;
    const record = readJsonCacheEntry(join(folder, `${slot}.json`), MAX_RECORD_BYTES, readRecord);
    const members = new Map((record ?? []).map((member) => [member.key, member]));
    if (record) {
      noteCacheUse(join(folder, `${slot}.gz`));
      noteCacheUse(join(folder, `${slot}.raw`));
    }
    return new LayerCache(folder, slot, members);
  }

  /** The kept member of the group with `key`, if any. */
  find(key: string): KeptMember | undefined {
    return this.#members.get(key);
  }

  /**
   * Read `length` bytes at `offset` of the kept blob (`"blob"`) or raw file (`"raw"`) into
   * `into`; `false` when they cannot be read whole (the files changed or are gone).
   */
  read(which: "blob" | "raw", offset: number, into: Uint8Array): boolean {
    const file = this.#file(which);
    if (!file) return false;
    try {
      file.seekSync(offset, Deno.SeekMode.Start);
      for (let at = 0; at < into.length;) {
        const n = file.readSync(into.subarray(at));
        if (n === null || n === 0) return false;
        at += n;
      }
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The slot's raw file opened to append the tar bytes of new groups; `undefined` when it
   * cannot be (then no raw bytes are kept this time).
   */
  appendRaw(): RawAppender | undefined {
    try {
      const file = Deno.openSync(join(this.dir, `${this.#slot}.raw`), {
        write: true,
        append: true,
        create: true,
        mode: 0o600,
      });
      return { file, at: file.statSync().size };
    } catch {
      return undefined;
    }
  }

  /**
   * Make `staged` the slot's kept blob, once the blob was pushed: the blob takes the old
   * one's place (one rename), then the record; the raw file is rewritten with the groups
   * still named once most of its bytes are stale. Never fails: a cache only saves work.
   */
  keep(staged: StagedLayer): void {
    const base = join(this.dir, this.#slot);
    let members = staged.members;
    try {
      members = this.#compacted(members);
    } catch {
      members = members.map((member) => ({ ...member, rawOffset: -1 }));
    }
    this.close();
    try {
      Deno.renameSync(staged.blobPath, `${base}.gz`);
      const record = { format: FORMAT, compressor: COMPRESSOR, members };
      writeCacheEntry(`${base}.json`, `${JSON.stringify(record)}\n`);
    } catch {
      this.discard(staged);
    }
    pruneCacheDir(this.dir, LAYER_CACHE_LIMITS);
  }

  /** Remove the blob of `staged` (one that was not pushed). */
  discard(staged: Pick<StagedLayer, "blobPath">): void {
    try {
      Deno.removeSync(staged.blobPath);
    } catch {
      // Gone already.
    }
  }

  /** `members` with the raw file rewritten to hold their groups alone, when most is stale. */
  #compacted(members: readonly KeptMember[]): readonly KeptMember[] {
    const raw = join(this.dir, `${this.#slot}.raw`);
    const live = members.reduce((sum, m) => sum + (m.rawOffset >= 0 ? m.rawLength : 0), 0);
    if (Deno.statSync(raw).size <= 2 * live + STALE_RAW_BYTES) return members;
    const temporary = `${raw}.${crypto.randomUUID()}.tmp`;
    const moved: KeptMember[] = [];
    try {
      using out = Deno.openSync(temporary, { write: true, createNew: true, mode: 0o600 });
      let at = 0;
      for (const member of members) {
        if (member.rawOffset < 0) {
          moved.push(member);
          continue;
        }
        const bytes = new Uint8Array(member.rawLength);
        if (!this.read("raw", member.rawOffset, bytes)) {
          moved.push({ ...member, rawOffset: -1 });
          continue;
        }
        writeAllSync(out, bytes);
        moved.push({ ...member, rawOffset: at });
        at += bytes.length;
      }
      Deno.renameSync(temporary, raw);
    } catch (error) {
      try {
        Deno.removeSync(temporary);
      } catch {
        // Not made.
      }
      throw error;
    }
    return moved;
  }

  /** Close the kept files (they are opened on the first read). */
  close(): void {
    this.#blob?.close();
    this.#raw?.close();
    this.#blob = this.#raw = null;
  }

  #file(which: "blob" | "raw"): Deno.FsFile | undefined {
    const current = which === "blob" ? this.#blob : this.#raw;
    if (current !== undefined) return current ?? undefined;
    let opened: Deno.FsFile | null = null;
    try {
      opened = Deno.openSync(join(this.dir, `${this.#slot}.${which === "blob" ? "gz" : "raw"}`));
    } catch {
      opened = null;
    }
    if (which === "blob") this.#blob = opened;
    else this.#raw = opened;
    return opened ?? undefined;
  }
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * The most a gzip member of `rawLength` tar bytes can take: deflate's stored blocks add 5
 * bytes per 64 KiB, each flush a few more, the gzip header and trailer 18. A record naming
 * a longer member is damaged (and believed, would have a buffer of that size allocated).
 */
const gzipBound = (rawLength: number) => rawLength + Math.ceil(rawLength / 256) + 1024;

/** The members of a record, or `undefined` when it is not one this Deno wrote. */
function readRecord(value: unknown): KeptMember[] | undefined {
  const record = value as { format?: unknown; compressor?: unknown; members?: unknown };
  if (record?.format !== FORMAT || record.compressor !== COMPRESSOR) return undefined;
  if (!Array.isArray(record.members)) return undefined;
  const count = (n: unknown, min = 0) => Number.isSafeInteger(n) && (n as number) >= min;
  for (const member of record.members as KeptMember[]) {
    if (
      typeof member !== "object" || member === null || !HEX64.test(member.key) ||
      !HEX64.test(member.sha256) || !HEX64.test(member.rawSha256) || !count(member.offset) ||
      !count(member.length, 1) || !count(member.rawOffset, -1) || !count(member.rawLength) ||
      member.length > gzipBound(member.rawLength)
    ) return undefined;
  }
  return record.members as KeptMember[];
}
