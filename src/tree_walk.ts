/**
 * The walk of a folder tree that every tree digest, build context and identity tree starts
 * from: entries in a fixed order (each folder's names sorted, a folder before what it holds),
 * minus what the ignore rules exclude, each with what `lstat` said of it.
 *
 * The walk hands each entry to a callback instead of building a list: the tree digest keeps
 * only a few numbers per entry (`./tree_index.ts`), where a list of objects holding a
 * `Deno.FileInfo` each (four `Date`s) would cost several times the memory of 20,000 files.
 * Entries are `lstat`ed through `./file_stat.ts`: numbers only, and on Linux without Deno's op.
 *
 * @module
 */

import { type FileStat, lstatFile, statFile } from "./file_stat.ts";
import type { IgnoreRules } from "./ignore.ts";
import { join } from "./path.ts";
import { stagedMode } from "./staged_mode.ts";
import { DIR, FILE, IGNORED, type Kind, SYMLINK } from "./tree_index.ts";

/**
 * Called for each entry of a walk, in walk order: its path relative to the root
 * (`/`-separated), its absolute path (`join(root, path)`: absolute when the root is),
 * its kind, what `lstat` said of it (nothing for an ignored name), and a symbolic link's
 * target.
 */
export type VisitEntry = (
  path: string,
  absolute: string,
  kind: Kind,
  info: FileStat | undefined,
  target?: string,
) => void;

/** How a walk goes, besides its ignore rules. */
export interface WalkOptions {
  /**
   * Also visit the names the ignore rules leave out (kind `IGNORED`, no `lstat`), when the
   * rules re-include nothing (else they are walked into, and not visited).
   */
  readonly visitIgnored?: boolean;
  /**
   * What a folder holds, without listing it: called with the folder's path (`""`: the root)
   * and its `lstat` (the root's `stat`); returns the paths (relative to the root, as the walk
   * spells them) of the entries in it, ignored ones included, sorted as the walk sorts them,
   * or `undefined` to list the folder. An entry that is not there any more is skipped. Used
   * only where ignored names are visited (`visitIgnored`).
   */
  readonly contents?: (path: string, info: FileStat) => readonly string[] | undefined;
  /**
   * The `lstat` of an entry (its absolute path, and its path relative to the root), where
   * the caller may know it already; without it, {@link lstatFile}. Throws as `lstatFile` does.
   */
  readonly lstat?: (absolute: string, path: string) => FileStat;
}

/**
 * What the walk of `root` puts before each entry's path to make its absolute path: the
 * root's path and a `/` (nothing for `.`).
 *
 * @example
 * ```ts
 * import { walkTop } from "./tree_walk.ts";
 * console.log(walkTop("/srv/app"), walkTop("/srv/app/"), JSON.stringify(walkTop("."))); // /srv/app/ /srv/app/ ""
 * ```
 */
export function walkTop(root: string): string {
  const base = join(root);
  return base === "." ? "" : base.endsWith("/") ? base : `${base}/`;
}

/**
 * Walk the tree at `root`, minus what `ignore` excludes, calling `visit` for each entry.
 * Returns false, having visited nothing or only part of the tree, when `root` is not a
 * readable folder or holds a folder this user may not list. Sockets, fifos and devices are
 * left out: they cannot be copied into an image; so are entries gone before their `lstat`.
 *
 * @example
 * ```ts
 * import { walkTree } from "./tree_walk.ts";
 * const root = await Deno.makeTempDir();
 * await Deno.mkdir(`${root}/src`);
 * await Deno.writeTextFile(`${root}/src/main.py`, "print(1)\n");
 * const paths: string[] = [];
 * walkTree(root, undefined, (path) => paths.push(path));
 * console.log(paths); // [ "src", "src/main.py" ]
 * ```
 */
export function walkTree(
  root: string,
  ignore: IgnoreRules | undefined,
  visit: VisitEntry,
  options: WalkOptions = {},
): boolean {
  const base = join(root);
  let rootInfo: FileStat;
  try {
    rootInfo = statFile(base);
  } catch {
    return false;
  }
  if (!rootInfo.isDirectory) return false;
  const rules = ignore?.empty === false ? ignore : undefined;
  const prune = !rules?.mayReinclude();
  const visitIgnored = prune && options.visitIgnored === true;
  // A folder's remembered contents hold its ignored names only when they were visited: with
  // rules that re-include, ignored folders are walked into instead, and always listed.
  const known = visitIgnored ? options.contents : undefined;
  const top = walkTop(root);
  const lstat = options.lstat ?? lstatFile;
  // Ignored folders walked for what a `!` pattern may bring back: each is visited only
  // once something inside it is.
  const pending: { path: string; absolute: string; info: FileStat }[] = [];
  const emit = (
    path: string,
    absolute: string,
    kind: Kind,
    info: FileStat,
    target?: string,
  ) => {
    for (const folder of pending) visit(folder.path, folder.absolute, DIR, folder.info);
    pending.length = 0;
    visit(path, absolute, kind, info, target);
  };
  const walk = (dir: string, prefix: string, dirInfo: FileStat): void => {
    // Paths handed over as they are: no string is made per entry to compare with them.
    let paths = known?.(prefix, dirInfo);
    if (paths === undefined) {
      const names: string[] = [];
      for (const entry of Deno.readDirSync(dir)) names.push(entry.name);
      names.sort();
      paths = prefix === "" ? names : names.map((name) => `${prefix}/${name}`);
    }
    for (const path of paths) {
      const absolute = top + path;
      const ignored = rules !== undefined && rules.ignores(absolute, root);
      if (ignored && prune) {
        if (visitIgnored) visit(path, absolute, IGNORED, undefined);
        continue;
      }
      let info: FileStat;
      try {
        info = lstat(absolute, path);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) continue; // Gone since the listing.
        throw error;
      }
      if (info.isDirectory) {
        if (!ignored) {
          emit(path, absolute, DIR, info);
          walk(absolute, path, info);
        } else {
          pending.push({ path, absolute, info });
          walk(absolute, path, info);
          if (pending.at(-1)?.path === path) pending.pop();
        }
      } else if (ignored) {
        continue;
      } else if (info.isSymlink) {
        emit(path, absolute, SYMLINK, info, Deno.readLinkSync(absolute));
      } else if (info.isFile) {
        emit(path, absolute, FILE, info);
      }
    }
  };
  try {
    walk(base, "", rootInfo);
  } catch (error) {
    // A folder this user may not list or enter: the tree counts as unreadable, as a missing
    // one does (`uri` never fails for it); validation names the folder.
    if (error instanceof Deno.errors.PermissionDenied) return false;
    throw error;
  }
  return true;
}

/**
 * One entry of a folder tree.
 *
 * @example
 * ```ts
 * import { listTree, type TreeEntry } from "./tree_walk.ts";
 * const root = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${root}/run.sh`, "echo hi\n", { mode: 0o755 });
 * const [entry]: TreeEntry[] = listTree(root)!;
 * console.log(entry.path, entry.type, entry.mode.toString(8), entry.size); // run.sh file 755 8
 * ```
 */
export interface TreeEntry {
  /** The path relative to the tree's root, `/`-separated. */
  readonly path: string;
  /** The absolute path. */
  readonly absolute: string;
  /** File, folder or symbolic link. */
  readonly type: "file" | "dir" | "symlink";
  /**
   * The permission bits it is staged with in a build context (`stagedMode`): 0755 or 0644
   * for files by the executable bit, 0755 for folders.
   */
  readonly mode: number;
  /** Size in bytes, for files. */
  readonly size: number;
  /** The link's target, for symbolic links. */
  readonly target?: string;
  /** What `lstat` said of it, for files (hashing needs no second stat). */
  readonly info?: FileStat;
}

/**
 * List a folder's tree in walk order ({@link walkTree}), minus what `ignore` excludes.
 * Returns `null` when `root` is not a readable folder, or holds a folder this user may not
 * list.
 *
 * @example
 * ```ts
 * import { listTree } from "./tree_walk.ts";
 * console.log(listTree("/no/such/folder")); // null
 * ```
 */
export function listTree(root: string, ignore?: IgnoreRules): TreeEntry[] | null {
  const entries: TreeEntry[] = [];
  const readable = walkTree(root, ignore, (path, absolute, kind, info, target) => {
    if (info === undefined) return; // Not asked for: no ignored name is visited.
    if (kind === FILE) {
      entries.push({
        path,
        absolute,
        type: "file",
        mode: stagedMode(info.mode),
        size: info.size,
        info,
      });
    } else if (kind === DIR) {
      entries.push({ path, absolute, type: "dir", mode: stagedMode(info.mode, "dir"), size: 0 });
    } else {
      entries.push({
        path,
        absolute,
        type: "symlink",
        mode: stagedMode(info.mode),
        size: 0,
        target,
      });
    }
  });
  return readable ? entries : null;
}
