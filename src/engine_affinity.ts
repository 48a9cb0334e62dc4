/**
 * Which engine of a pool of builders built an image for a platform last time, remembered so
 * that the next build of it goes there again when that engine is free: its BuildKit cache
 * then serves the steps that did not change.
 *
 * It is a preference and nothing more: an engine that is busy, down, or no longer in the
 * pool is passed over. Like every cache of imgtool, removing the folder is always safe, and
 * only the user's own entries in a private folder are read (`privateCacheDir`).
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
} from "./cache_dir.ts";
import { join } from "./path.ts";
import { sha256Hex } from "./sha256.ts";

/**
 * The folder of remembered engines: `$XDG_CACHE_HOME/imgtool/engines`, else
 * `~/.cache/imgtool/engines`; `undefined` when neither variable is set.
 *
 * @example
 * ```ts
 * import { defaultEngineAffinityDir } from "./engine_affinity.ts";
 * console.log(defaultEngineAffinityDir({ HOME: "/home/me" })); // /home/me/.cache/imgtool/engines
 * ```
 */
export function defaultEngineAffinityDir(
  env?: Record<string, string | undefined>,
): string | undefined {
  return imgtoolCacheDir("engines", env);
}

/**
 * How many images' engines are kept: past these, the least recently used go.
 *
 * @example
 * ```ts
 * import { ENGINE_AFFINITY_LIMITS } from "./engine_affinity.ts";
 * console.log(ENGINE_AFFINITY_LIMITS.maxEntries); // 5000
 * ```
 */
export const ENGINE_AFFINITY_LIMITS: CacheLimits = {
  maxEntries: 5000,
  maxBytes: 2 * 1024 * 1024,
  listEveryMs: LIST_CACHE_EVERY_MS,
};

/** The largest entry read back: one is a few dozen bytes. */
const MAX_ENTRY_BYTES = 4096;

/** An engine name as `[[builders]]` allows it. */
const ENGINE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/**
 * The key of an image's work for one platform: its repository (the URI without the tag,
 * which changes with every edit) and the platform.
 *
 * @example
 * ```ts
 * import { affinityKey } from "./engine_affinity.ts";
 * console.log(affinityKey("127.0.0.1:5000/team/api:0123abcd", "linux/arm64"));
 * // 127.0.0.1:5000/team/api linux/arm64
 * ```
 */
export function affinityKey(uri: string, platform: string): string {
  const at = uri.lastIndexOf(":");
  const repository = at > uri.lastIndexOf("/") ? uri.slice(0, at) : uri;
  return `${repository} ${platform}`;
}

/**
 * The engine that last built each image and platform, one small JSON file per key. Reads
 * and writes never fail: what cannot be read is no preference, and what cannot be written
 * is not remembered.
 *
 * @example
 * ```ts
 * import { EngineAffinity } from "./engine_affinity.ts";
 * const memory = new EngineAffinity(await Deno.makeTempDir());
 * console.log(memory.recall("127.0.0.1:5000/api linux/arm64")); // undefined
 * memory.remember("127.0.0.1:5000/api linux/arm64", "arm-box");
 * console.log(memory.recall("127.0.0.1:5000/api linux/arm64")); // arm-box
 * ```
 */
export class EngineAffinity {
  readonly #dir: string;

  /** Keep the entries in `dir` (made private when first written). */
  constructor(dir: string) {
    this.#dir = dir;
  }

  /** The engine that last built `key`, if one is remembered. */
  recall(key: string): string | undefined {
    return readJsonCacheEntry(this.#file(key), MAX_ENTRY_BYTES, (value) => {
      const entry = value as { key?: unknown; engine?: unknown } | null;
      return entry?.key === key && typeof entry.engine === "string" &&
          ENGINE_NAME.test(entry.engine)
        ? entry.engine
        : undefined;
    });
  }

  /** Remember that `engine` built `key` (written only when it changed). */
  remember(key: string, engine: string): void {
    if (this.recall(key) === engine) return;
    if (writeCacheEntry(this.#file(key), `${JSON.stringify({ key, engine })}\n`)) {
      pruneCacheDir(this.#dir, ENGINE_AFFINITY_LIMITS);
    }
  }

  #file(key: string): string {
    return join(this.#dir, `${sha256Hex(key)}.json`);
  }
}
