/**
 * One walk of a tree held against what an earlier walk remembered (its `TreeIndex`), entry
 * by entry as the walk goes: a file whose stat key is the remembered one, and whose digest
 * was believed, keeps that digest; every other file is to be read. When the walk finds the
 * very entries remembered, in the same places, every file unchanged, the tree's digest is
 * the remembered one, and nothing needs encoding or hashing at all.
 *
 * It also tells the walk what a folder holds when its own stat key is the remembered one
 * (`contentsOf`): adding, removing or renaming an entry changes its folder's modification and
 * change times, so an unchanged folder holds the names it held (the folder's times being
 * settled when remembered, as a file's must be). Every entry is still `lstat`ed: a file's
 * content can change without its folder's times changing.
 *
 * While every entry so far is the remembered one in the same place, nothing is written per
 * entry (one string and six number comparisons each); at the first difference the entries
 * so far are copied from the remembered index, and from then on this walk's index is built.
 *
 * @module
 */

import { settled } from "./digest_cache.ts";
import { type FileStat, lstatFile, LstatKeys, statFile } from "./file_stat.ts";
import type { IgnoreRules } from "./ignore.ts";
import { join } from "./path.ts";
import { DIR, FILE, IGNORED, type Kind, sameIndex, SYMLINK, TreeIndex } from "./tree_index.ts";
import { type VisitEntry, walkTop } from "./tree_walk.ts";

/**
 * A walk matched against a remembered index.
 *
 * @example
 * ```ts
 * import { TreeRecall } from "./tree_recall.ts";
 * import { walkTree } from "./tree_walk.ts";
 * const root = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${root}/a.txt`, "a");
 * const first = new TreeRecall(undefined, Date.now());
 * walkTree(root, undefined, first.visit, first.walkOptions);
 * console.log(first.unhashed.length, first.unchanged()); // 1 undefined
 * ```
 */
export class TreeRecall {
  /** What an earlier walk remembered, if anything. */
  readonly known: TreeIndex | undefined;
  /** When the walk began (milliseconds since the epoch), for the settled rule. */
  readonly since: number;
  /** The entries (by number) of the files to read, in walk order. */
  readonly unhashed: number[] = [];
  /** Their absolute paths. */
  readonly absolutes: string[] = [];
  /** Their bytes, in all. */
  unhashedBytes = 0;
  /** Files that could not be read: their digests are `null`. */
  readonly unreadable: Set<number> = new Set();
  /** Called when a file to read is found, with its place in {@link TreeRecall.unhashed}. */
  onUnhashed: ((n: number) => void) | undefined;
  /** What the walk needs besides the visits: ignored names visited, known folders' contents. */
  readonly walkOptions: {
    readonly visitIgnored: true;
    readonly contents: (path: string, info: FileStat) => readonly string[] | undefined;
    readonly lstat: (absolute: string, path: string) => FileStat;
  };
  // This walk's entries, once they differ from the remembered ones.
  #index: TreeIndex | undefined;
  #count = 0;
  // Whether every entry so far is the remembered one in the same place, unchanged.
  #same: boolean;
  // The remembered place of the entry visited last (-1: none).
  #lastKnown = -1;
  // Where the remembered entries stand relative to this walk's (after an insertion, -1...).
  #shift = 0;
  #rootInfo: FileStat | undefined;
  // 1 for each remembered entry whose `lstat` now is the remembered one (checkRemembered).
  #verified: Uint8Array | undefined;

  /** Match a walk against `known`; `since` is when the walk began. */
  constructor(known: TreeIndex | undefined, since: number) {
    this.known = known;
    this.since = since;
    this.#same = known !== undefined;
    this.walkOptions = { visitIgnored: true, contents: this.#contents, lstat: this.#lstat };
  }

  /** This walk's entries, with the digests known so far. */
  get index(): TreeIndex {
    return this.#index ?? this.#build();
  }

  /**
   * Before the walk, as git refreshes its index: `lstat` each remembered entry, in the
   * index's order, and compare it with the remembered stat key, making nothing per entry.
   * Returns true when the tree at `root` is as remembered: the root's and every entry's stat
   * key the remembered one, every file's digest and every folder's names believed, each
   * link's target the same, and `ignore` leaving out the very names left out before. The walk
   * would then visit exactly the remembered entries, each unchanged, so it need not run:
   * {@link TreeRecall.unchanged} says so at once. Otherwise the walk runs (`walkTree` with
   * {@link TreeRecall.visit} and the walk options), and takes the stat of each entry found
   * unchanged here from the index instead of asking the system again.
   */
  checkRemembered(root: string, ignore: IgnoreRules | undefined): boolean {
    const known = this.known;
    if (known === undefined || this.#count > 0) return false;
    let rootInfo: FileStat;
    try {
      rootInfo = statFile(join(root));
    } catch {
      return false; // The walk says what is wrong.
    }
    if (!rootInfo.isDirectory) return false;
    const top = walkTop(root);
    const rules = ignore?.empty === false ? ignore : undefined;
    // Rules that may bring back what they leave out are walked into (tree_walk.ts): listed.
    let same = known.rootUnchanged(rootInfo) && !rules?.mayReinclude();
    using keys = new LstatKeys(top, known.length);
    const key = keys.key;
    const { paths, kinds, believed } = known;
    // Each path is handed to the system from the index's own bytes, where it can be.
    let block = keys.direct ? known.pathBlock : undefined;
    let start = 0;
    const verified = this.#verified = new Uint8Array(known.length);
    for (let at = 0; at < known.length; at++) {
      const kind = kinds[at];
      const path = paths[at];
      let cPath: Uint8Array | undefined;
      if (block !== undefined) {
        const end = block.indexOf(0, start);
        // Each path ends with a NUL (decodeTreeIndex counts them); if one did not, no C string.
        if (end < 0) block = undefined;
        else cPath = block.subarray(start, end + 1);
        start = end + 1;
      }
      if (same && (rules?.ignores(top + path, root) ?? false) !== (kind === IGNORED)) {
        same = false;
      }
      if (kind === IGNORED) continue;
      if (!(cPath === undefined ? keys.read(path) : keys.readAt(cPath, path))) {
        same = false;
        continue;
      }
      if (!known.hasKey(at, key)) {
        same = false;
        continue;
      }
      verified[at] = 1;
      // A link is as remembered when its target is: nothing about it is to be believed.
      if (kind === SYMLINK) {
        if (same && !this.#sameTarget(top + path, at)) same = false;
      } else if (believed[at] !== 1) {
        same = false; // A file to hash, or a folder to list: the walk has work to do.
      }
    }
    if (!same) return false;
    this.#rootInfo = rootInfo;
    this.#count = known.length;
    return true;
  }

  /** Whether the link at `absolute` still points where entry `at` of the index did. */
  #sameTarget(absolute: string, at: number): boolean {
    try {
      return Deno.readLinkSync(absolute) === this.known!.targets.get(at);
    } catch {
      return false;
    }
  }

  /** The walk's `lstat`: from the index for an entry found unchanged by checkRemembered. */
  readonly #lstat = (absolute: string, path: string): FileStat => {
    const verified = this.#verified;
    if (verified !== undefined) {
      // Where the entry about to be visited stands in the index, if it is there.
      const at = this.#count + this.#shift;
      if (verified[at] === 1 && this.known!.paths[at] === path) return this.known!.statOf(at);
    }
    return lstatFile(absolute);
  };

  /** The walk's callback (`walkTree`). */
  readonly visit: VisitEntry = (path, absolute, kind, info, target) => {
    const at = this.#count++;
    const known = this.known;
    if (
      this.#index === undefined && known !== undefined &&
      this.#matches(at, path, kind, info, target)
    ) {
      this.#lastKnown = at;
      return;
    }
    const index = this.#index ?? this.#build(at);
    index.add(path, kind, info, target);
    let old = -1;
    if (known !== undefined) {
      old = known.find(path, at + this.#shift);
      if (old >= 0) this.#shift = old - at;
    }
    this.#lastKnown = old;
    const unchanged = old >= 0 && known!.kinds[old] === kind &&
      (kind === IGNORED || known!.hasStat(old, info!));
    if (old !== at || !unchanged) this.#same = false;
    else if (kind === SYMLINK && known!.targets.get(old) !== target) this.#same = false;
    if (kind === DIR) {
      const believed = unchanged && known!.believed[old] === 1;
      if (believed || settled(index.changed(at), this.since)) index.believed[at] = 1;
    }
    if (kind !== FILE) return;
    if (unchanged && known!.believed[old] === 1) {
      index.setDigest(at, known!, old);
      index.believed[at] = 1;
    } else {
      this.#same = false;
      this.unhashed.push(at);
      this.absolutes.push(absolute);
      this.unhashedBytes += info!.size;
      this.onUnhashed?.(this.unhashed.length - 1);
    }
  };

  /** Whether the `at`th entry visited is the remembered one there, as remembered. */
  #matches(at: number, path: string, kind: Kind, info?: FileStat, target?: string): boolean {
    const known = this.known!;
    if (at >= known.length || known.paths[at] !== path || known.kinds[at] !== kind) return false;
    if (kind === IGNORED) return true;
    if (!known.hasStat(at, info!)) return false;
    if (kind === FILE) return known.believed[at] === 1;
    if (kind === SYMLINK) return known.targets.get(at) === target;
    // A folder remembered too new to believe its names, settled now: worth remembering anew.
    return known.believed[at] === 1 || !settled(known.changed(at), this.since);
  }

  /** Start this walk's index: the first `count` entries are the remembered ones. */
  #build(count = this.#count): TreeIndex {
    const index = new TreeIndex(Math.max(16, this.known?.length ?? 0, count));
    if (this.known !== undefined) index.addFirst(this.known, count);
    return this.#index = index;
  }

  /** What a folder the walk is about to enter holds, when that can be believed. */
  readonly #contents = (path: string, info: FileStat): readonly string[] | undefined => {
    const known = this.known;
    if (path === "") {
      this.#rootInfo = info;
      return known?.rootUnchanged(info) ? known.contentsOf(-1) : undefined;
    }
    const at = this.#lastKnown;
    if (known === undefined || at < 0 || known.kinds[at] !== DIR) return undefined;
    if (known.believed[at] !== 1 || known.paths[at] !== path || !known.hasStat(at, info)) {
      return undefined;
    }
    return known.contentsOf(at);
  };

  /**
   * The remembered tree digest, when the walk found exactly the remembered entries, in the
   * same places, every file unchanged and its digest believed; else `undefined`.
   */
  unchanged(): string | undefined {
    const known = this.known;
    return this.#same && known!.length === this.#count ? known!.treeDigest : undefined;
  }

  /** The digest of the `n`th file read (hex), or `null`: it could not be read. */
  hashed(n: number, digest: string | null): void {
    const at = this.unhashed[n];
    if (digest === null) {
      this.unreadable.add(at);
      return;
    }
    const index = this.index;
    index.setDigest(at, digest);
    // Believed later only if it could not have changed within its recorded times.
    if (settled(index.changed(at), this.since)) index.believed[at] = 1;
  }

  /** Whether entry `at` (a file) has a digest: remembered, or read now. */
  hasDigest(at: number): boolean {
    return !this.unreadable.has(at);
  }

  /**
   * The index to remember once the tree's digest is `digest`: this walk's, holding the tree
   * digest when every file's digest is believed; and whether it is worth writing (it differs
   * from the remembered one, and remembers something).
   */
  remember(digest: string): { index: TreeIndex; write: boolean } {
    const known = this.known, root = this.#rootInfo;
    // Settled once is settled while unchanged (a clock set back in tests would say otherwise).
    const rootBelieved = root !== undefined && (known?.rootUnchanged(root) ||
      settled(Math.max(root.mtime, root.ctime), this.since));
    // Everything as remembered: the remembered index is this walk's.
    if (
      this.#index === undefined && known !== undefined && this.#count === known.length &&
      known.treeDigest === digest &&
      (root === undefined || (known.rootUnchanged(root) && known.rootBelieved === rootBelieved))
    ) {
      return { index: known, write: false };
    }
    const index = this.index;
    if (root !== undefined) index.setRoot(root, rootBelieved);
    let believedAll = true, believedAny = false;
    for (let at = 0; at < index.length; at++) {
      if (index.kinds[at] !== FILE) continue;
      if (index.believed[at] === 1) believedAny = true;
      else believedAll = false;
    }
    index.treeDigest = believedAll ? digest : undefined;
    const worth = believedAny || believedAll || known !== undefined;
    return { index, write: worth && !(known && sameIndex(known, index)) };
  }
}
