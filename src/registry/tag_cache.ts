/**
 * What a tag was last seen to be: the digest of its manifest or index, and its platforms.
 *
 * A single-platform image names its platform only in its config blob, so checking a tag
 * costs two requests (and for registries whose blobs live behind a CDN, a redirect and a
 * second TLS handshake). A tag seen before costs one `HEAD`: when the registry still serves
 * the same digest, the platforms are those remembered, since a digest names fixed content.
 * The cache only ever saves requests: a changed or missing digest falls back to reading the
 * manifest, and a cache that cannot be read or written is no cache. Its folder is the user's
 * own and private (`privateCacheDir`): an entry another user could have written would decide
 * which platforms a build skips, so entries of other users, and malformed ones, are no
 * entries.
 *
 * @module
 */

import {
  type CacheLimits,
  imgtoolCacheDir,
  LIST_CACHE_EVERY_MS,
  pruneCacheDir,
  readJsonCacheEntry,
  writeCacheEntry,
} from "../cache_dir.ts";
import { join } from "../path.ts";
import { sha256Hex } from "../sha256.ts";
import { parsePlatform, type Platform } from "./platform.ts";
import { isDigest } from "./reference.ts";

/** A tag as last seen. */
export interface SeenTag {
  /** The digest of the manifest or index the tag named. */
  readonly digest: string;
  /** Its media type. */
  readonly mediaType: string;
  /** Its platforms, as `os/architecture[/variant]`. */
  readonly platforms: readonly Platform[];
}

/**
 * Where seen tags are kept, by full reference (`host/repository:tag`).
 *
 * @example
 * ```ts
 * import type { SeenTag, TagCache } from "./tag_cache.ts";
 * const memory = new Map<string, SeenTag>();
 * const cache: TagCache = { get: (ref) => memory.get(ref), set: (ref, seen) => memory.set(ref, seen) };
 * console.log(cache.get("127.0.0.1:5000/app:1.0")); // undefined
 * ```
 */
export interface TagCache {
  /** What the reference was last seen to be, if remembered. */
  get(reference: string): SeenTag | undefined;
  /** Remember what the reference is now. */
  set(reference: string, seen: SeenTag): void;
}

/**
 * The folder for seen tags: `$XDG_CACHE_HOME/imgtool/tags`, else `~/.cache/imgtool/tags`;
 * `undefined` when neither variable is set (the rule of `imgtoolCacheDir`).
 *
 * @example
 * ```ts
 * import { defaultTagCacheDir } from "./tag_cache.ts";
 * console.log(defaultTagCacheDir({ XDG_CACHE_HOME: "/var/cache" })); // /var/cache/imgtool/tags
 * ```
 */
export function defaultTagCacheDir(
  env?: Record<string, string | undefined>,
): string | undefined {
  return imgtoolCacheDir("tags", env);
}

/**
 * How many seen tags are kept (an entry is some 300 bytes): past these, the least recently
 * used go (`pruneCacheDir`).
 *
 * @example
 * ```ts
 * import { TAG_CACHE_LIMITS } from "./tag_cache.ts";
 * console.log(TAG_CACHE_LIMITS.maxEntries); // 5000
 * ```
 */
export const TAG_CACHE_LIMITS: CacheLimits = {
  maxEntries: 5000,
  maxBytes: 8 * 1024 * 1024,
  listEveryMs: LIST_CACHE_EVERY_MS,
};

/** The largest entry read back: one is some 300 bytes; more is not one of ours. */
const MAX_ENTRY_BYTES = 64 * 1024;

/**
 * Seen tags as small JSON files in a folder, one per reference, each written whole (to a
 * temporary name, then renamed) so that concurrent builds never read half a file.
 *
 * @example
 * ```ts
 * import { FileTagCache } from "./tag_cache.ts";
 * const cache = new FileTagCache(await Deno.makeTempDir());
 * cache.set("127.0.0.1:5000/app:1.0", {
 *   digest: `sha256:${"a".repeat(64)}`,
 *   mediaType: "application/vnd.oci.image.manifest.v1+json",
 *   platforms: ["linux/amd64"],
 * });
 * console.log(cache.get("127.0.0.1:5000/app:1.0")?.platforms); // [ "linux/amd64" ]
 * ```
 */
export class FileTagCache implements TagCache {
  readonly #dir: string;

  /** Keep seen tags in `dir` (made private when first written). */
  constructor(dir: string) {
    this.#dir = dir;
  }

  /**
   * What the reference was last seen to be; `undefined` when unknown, unreadable, malformed
   * or not the user's own.
   */
  get(reference: string): SeenTag | undefined {
    const parse = (value: unknown) => parseEntry(value, reference);
    return readJsonCacheEntry(this.#file(reference), MAX_ENTRY_BYTES, parse);
  }

  /** Remember what the reference is now; a folder that cannot be written is skipped. */
  set(reference: string, seen: SeenTag): void {
    const entry = {
      reference,
      digest: seen.digest,
      mediaType: seen.mediaType,
      platforms: [...seen.platforms],
    };
    // A failure only loses a saving: the next check reads the manifest again.
    if (writeCacheEntry(this.#file(reference), `${JSON.stringify(entry)}\n`)) {
      pruneCacheDir(this.#dir, TAG_CACHE_LIMITS);
    }
  }

  #file(reference: string): string {
    return join(this.#dir, `${sha256Hex(reference)}.json`);
  }
}

/** An entry read back, if it is well formed and about `reference`. */
function parseEntry(value: unknown, reference: string): SeenTag | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const entry = value as Record<string, unknown>;
  const { digest, mediaType, platforms } = entry;
  if (entry.reference !== reference) return undefined;
  if (typeof digest !== "string" || !isDigest(digest)) return undefined;
  if (typeof mediaType !== "string") return undefined;
  if (!Array.isArray(platforms) || !platforms.every(isPlatform)) return undefined;
  return { digest, mediaType, platforms };
}

/** Whether `value` is a platform as `os/architecture[/variant]` (a check would refuse others). */
function isPlatform(value: unknown): value is Platform {
  if (typeof value !== "string") return false;
  try {
    parsePlatform(value);
    return true;
  } catch {
    return false;
  }
}
