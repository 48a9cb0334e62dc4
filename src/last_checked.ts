/**
 * The image URIs a pushed build of a spec last asked the registry about, remembered so that
 * the next build of the same spec can ask again at once (`RegistryClient.prefetch`),
 * while it loads the spec, validates it and hashes its files. A no-op build then finds the
 * registry's answer waiting instead of waiting for it.
 *
 * It is a guess and nothing more. Every build still computes each image's URI and checks
 * exactly those; a guess that no check asks for (the spec or a file changed, so the tag did)
 * costs one request, stopped when the build ends. Like every cache of imgtool, removing the
 * folder is always safe, and only the user's own entries in a private folder are read
 * (`privateCacheDir`): a planted guess could otherwise send requests anywhere.
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
import { parseReference } from "./registry/reference.ts";
import { sha256Hex } from "./sha256.ts";

/** What selects a build's images and their URIs, besides the spec and its files. */
export interface CheckedSelection {
  /** The spec file's absolute path. */
  readonly spec: string;
  /** `--image` names. */
  readonly images: readonly string[];
  /** `--platform` values. */
  readonly platforms: readonly string[];
  /** `--registry`, if given. */
  readonly registry?: string;
}

/**
 * The folder of remembered URIs: `$XDG_CACHE_HOME/imgtool/checked`, else
 * `~/.cache/imgtool/checked`; `undefined` when neither variable is set.
 *
 * @example
 * ```ts
 * import { defaultLastCheckedDir } from "./last_checked.ts";
 * console.log(defaultLastCheckedDir({ HOME: "/home/me" })); // /home/me/.cache/imgtool/checked
 * ```
 */
export function defaultLastCheckedDir(
  env?: Record<string, string | undefined>,
): string | undefined {
  return imgtoolCacheDir("checked", env);
}

/**
 * How many specs' URIs are kept: past these, the least recently used go (`pruneCacheDir`).
 *
 * @example
 * ```ts
 * import { LAST_CHECKED_LIMITS } from "./last_checked.ts";
 * console.log(LAST_CHECKED_LIMITS.maxEntries); // 2000
 * ```
 */
export const LAST_CHECKED_LIMITS: CacheLimits = {
  maxEntries: 2000,
  maxBytes: 4 * 1024 * 1024,
  listEveryMs: LIST_CACHE_EVERY_MS,
};

/** The largest entry read back: a spec's URIs take a few hundred bytes. */
const MAX_ENTRY_BYTES = 256 * 1024;

/**
 * The URIs each spec's last pushed build checked, one small JSON file per spec and
 * selection. Reads and writes never fail: what cannot be read is no guess, and what cannot
 * be written is not remembered.
 *
 * @example
 * ```ts
 * import { LastChecked } from "./last_checked.ts";
 * const memory = new LastChecked(await Deno.makeTempDir());
 * const selection = { spec: "/work/app/spec.ts", images: [], platforms: [] };
 * console.log(memory.recall(selection)); // []
 * memory.remember(selection, ["127.0.0.1:5000/app:0123abcd"]);
 * console.log(memory.recall(selection)); // [ "127.0.0.1:5000/app:0123abcd" ]
 * ```
 */
export class LastChecked {
  readonly #dir: string;
  // What recall read, by selection key: remember then writes only what changed.
  readonly #recalled = new Map<string, string[]>();

  /** Keep the URIs in `dir` (made private when first written). */
  constructor(dir: string) {
    this.#dir = dir;
  }

  /**
   * The URIs the last build with this selection checked; `[]` when none is known (or the
   * entry is malformed, or not the user's own). Only well-formed image references count.
   */
  recall(selection: CheckedSelection): string[] {
    const key = selectionKey(selection);
    const parse = (value: unknown) => {
      const entry = value as { key?: unknown; uris?: unknown } | null;
      return entry?.key === key && Array.isArray(entry.uris)
        ? entry.uris.filter(isReference)
        : undefined;
    };
    const uris = readJsonCacheEntry(this.#file(key), MAX_ENTRY_BYTES, parse) ?? [];
    this.#recalled.set(key, uris);
    return [...uris];
  }

  /** Remember the URIs a build with this selection checked (written only when changed). */
  remember(selection: CheckedSelection, uris: readonly string[]): void {
    const key = selectionKey(selection);
    const before = this.#recalled.get(key) ?? this.recall(selection);
    if (before.length === uris.length && before.every((uri, i) => uri === uris[i])) return;
    if (writeCacheEntry(this.#file(key), `${JSON.stringify({ key, uris })}\n`)) {
      this.#recalled.set(key, [...uris]);
      pruneCacheDir(this.#dir, LAST_CHECKED_LIMITS);
    }
  }

  #file(key: string): string {
    return join(this.#dir, `${sha256Hex(key)}.json`);
  }
}

function isReference(value: unknown): value is string {
  if (typeof value !== "string") return false;
  try {
    parseReference(value);
    return true;
  } catch {
    return false;
  }
}

function selectionKey(selection: CheckedSelection): string {
  const { spec, images, platforms, registry } = selection;
  return JSON.stringify([spec, [...images], [...platforms], registry ?? null]);
}
