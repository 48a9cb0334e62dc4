/**
 * A requirements file with everything it names on disk, resolved as pip and uv resolve it and
 * laid out for a build step that sees it all under one folder:
 *
 * - `-r`/`-c` includes are relative to the file that names them, at any depth;
 * - local projects, archives and relative `file:` URLs in requirement lines are relative to
 *   the folder pip runs in. imgtool takes that to be the top requirements file's folder, or
 *   the spec's folder when every such path resolves from there and not from the file's (as
 *   with `requirements/dev.txt` holding `-e .`, run from the project root);
 * - `--find-links` paths are relative to the file that names them when they exist there, else
 *   to that working folder (pip's rule).
 *
 * Requirement files keep their places relative to the top file's folder; files outside it, and
 * every local project, archive or link folder, go to folders of their own (`_included/N/`,
 * `_local/N/`), and the lines that name them are rewritten to point there. Editable (`-e`)
 * local projects are rewritten as ordinary requirements: the build step's mount is gone after
 * the step, so an editable install would point nowhere.
 *
 * @module
 */

import { paths } from "../../contract.ts";
import {
  logicalLines,
  physicalLines,
  type Reference,
  scanLine,
  type ScannedLine,
} from "./requirements_file.ts";

const { basename, dirname, isAbsolute, join, normalize, relative, resolve } = paths;

/** What the analysis reads from disk (a plugin context provides it). */
export interface FileAccess {
  /** A text file's content, or `undefined` when it cannot be read whole. */
  readText(path: string): string | undefined;
  /** Is there a file at the path? */
  isFile(path: string): boolean;
  /** Is there a folder at the path? */
  isDirectory(path: string): boolean;
}

/** A reference of a line, with the file and line that hold it and where it points. */
export interface ResolvedReference extends Reference {
  /** The requirements file that holds it. */
  readonly file: string;
  /** Its line in that file (the first physical line). */
  readonly line: number;
  /** The absolute path it names. */
  readonly absolute: string;
}

/** One requirements file of the set. */
export interface RequirementsFile {
  /** Its absolute path. */
  readonly path: string;
  /** Its path relative to the top file's folder (its name in the identity). */
  readonly name: string;
  /** Where it goes, relative to the layer's folder in the build context. */
  readonly target: string;
  /** The include that named it (none for the top file). */
  readonly includedBy?: ResolvedReference;
  /** Its content, or `undefined` when it cannot be read. */
  readonly text?: string;
  /** Its logical lines. */
  readonly lines: readonly ScannedLine[];
  /** Its content with references rewritten, when any reference needs it. */
  readonly rewritten?: string;
}

/** A local project, archive or links folder the set brings into the build. */
export interface LocalTarget {
  /** Its absolute path on disk. */
  readonly path: string;
  /** A file (a wheel, an sdist, a links page) or a folder. */
  readonly kind: "file" | "tree";
  /** Where it goes, relative to the layer's folder in the build context. */
  readonly target: string;
  /** The references that name it. */
  readonly references: readonly ResolvedReference[];
}

/** A requirements file, its includes, and the local code they name. */
export interface RequirementsSet {
  /** The files, the top one first, then includes in the order they are met. */
  readonly files: readonly RequirementsFile[];
  /** The local projects, archives and link folders, in the order they are met. */
  readonly locals: readonly LocalTarget[];
  /** Every reference to something local (includes too). */
  readonly references: readonly ResolvedReference[];
  /** The folder relative local paths of requirement lines resolve against. */
  readonly workingDir: string;
  /** The other folder that was considered for it (when it differs). */
  readonly otherWorkingDir?: string;
  /** The first line that turns on hash checking, if any. */
  readonly hashLine?: { readonly file: string; readonly line: number };
}

interface Visit {
  readonly path: string;
  readonly text?: string;
  readonly lines: readonly ScannedLine[];
  readonly includedBy?: Reference;
}

const INCLUDE_ROLES = new Set(["requirements", "constraints"]);
const RESERVED = /^_(local|included)(\/|$)/;

/**
 * Read `file` and everything it includes, resolve what they name, and lay it out under
 * `mountDir` (where the build step sees the layer's folder).
 *
 * @example
 * ```ts
 * import { analyzeRequirements } from "./requirements_set.ts";
 * const files: Record<string, string> = {
 *   "/p/requirements.txt": "-r more/dev.txt\n-e ./lib\n",
 *   "/p/more/dev.txt": "pytest\n",
 *   "/p/lib/pyproject.toml": "[project]\nname = 'lib'\n",
 * };
 * const set = analyzeRequirements("/p/requirements.txt", "/p", "/mnt", {
 *   readText: (path) => files[path],
 *   isFile: (path) => path in files,
 *   isDirectory: (path) => path === "/p" || path === "/p/lib" || path === "/p/more",
 * });
 * console.log(set.files.map((file) => file.target)); // [ "requirements.txt", "more/dev.txt" ]
 * console.log(set.locals.map((local) => local.target)); // [ "_local/0/lib" ]
 * console.log(set.files[0].rewritten);
 * // -r more/dev.txt
 * // /mnt/_local/0/lib
 * ```
 */
export function analyzeRequirements(
  file: string,
  specDir: string,
  mountDir: string,
  fs: FileAccess,
): RequirementsSet {
  const root = dirname(file);
  const visits = collect(file, fs);
  const fileDirs = new Map(visits.map((visit) => [visit.path, dirname(visit.path)]));

  // The working folder: the top file's, or the spec's when only that makes the paths work.
  const candidates = [...new Set([root, specDir])];
  const relativeToCwd = visits.flatMap((visit) =>
    visit.lines.flatMap((line) =>
      line.references.filter((ref) =>
        (ref.role === "requirement" || ref.role === "editable") && !ref.problem &&
        !isAbsolute(ref.path)
      )
    )
  );
  const workingDir =
    candidates.find((dir) =>
      relativeToCwd.every((ref) => usable(resolve(dir, ref.path), ref.subdirectory, fs))
    ) ?? root;

  const references: ResolvedReference[] = [];
  const resolved = new Map<Reference, ResolvedReference>();
  for (const visit of visits) {
    for (const line of visit.lines) {
      for (const ref of line.references) {
        const found = {
          ...ref,
          file: visit.path,
          line: line.number,
          absolute: absoluteOf(ref, fileDirs.get(visit.path) ?? root, workingDir, fs),
        };
        resolved.set(ref, found);
        references.push(found);
      }
    }
  }

  // Places: requirement files under the top file's folder keep theirs; the rest are moved.
  const targets = new Map<string, string>();
  let included = 0;
  for (const visit of visits) {
    const name = relative(root, visit.path);
    const keep = !name.startsWith("..") && !RESERVED.test(name);
    targets.set(
      visit.path,
      keep ? name : `_included/${included++}/${safeName(basename(visit.path))}`,
    );
  }
  const locals: LocalTarget[] = [];
  const localOf = new Map<string, LocalTarget & { references: ResolvedReference[] }>();
  for (const ref of references) {
    if (INCLUDE_ROLES.has(ref.role) || ref.problem) continue;
    let local = localOf.get(ref.absolute);
    if (local === undefined) {
      const kind = fs.isFile(ref.absolute) ? "file" : "tree";
      const name = basename(ref.absolute) || "root";
      local = {
        path: ref.absolute,
        kind,
        target: `_local/${locals.length}/${kind === "file" ? name : safeName(name)}`,
        references: [],
      };
      localOf.set(ref.absolute, local);
      locals.push(local);
    }
    local.references.push(ref);
  }

  const location = (ref: ResolvedReference): string | undefined => {
    if (ref.problem) return undefined;
    if (!INCLUDE_ROLES.has(ref.role)) return `${mountDir}/${localOf.get(ref.absolute)!.target}`;
    const target = targets.get(ref.absolute);
    if (target === undefined) return undefined;
    // A relative include that lands where its file is placed stays as it is written.
    const from = dirname(targets.get(ref.file)!);
    if (!ref.url && !isAbsolute(ref.path) && normalize(join(from, ref.path)) === target) {
      return undefined;
    }
    return `${mountDir}/${target}`;
  };

  const files = visits.map((visit): RequirementsFile => {
    const rewritten = visit.text === undefined
      ? undefined
      : rewrite(visit.text, visit.lines, (ref) => {
        const found = resolved.get(ref)!;
        const place = location(found);
        return place === undefined ? undefined : replacement(found, place);
      });
    return {
      path: visit.path,
      name: relative(root, visit.path),
      target: targets.get(visit.path)!,
      includedBy: visit.includedBy ? resolved.get(visit.includedBy) : undefined,
      text: visit.text,
      lines: visit.lines,
      rewritten,
    };
  });

  const hashing = visits.flatMap((visit) =>
    visit.lines.filter((line) => line.hashes || line.requireHashes)
      .map((line) => ({ file: visit.path, line: line.number }))
  );
  return {
    files,
    locals,
    references,
    workingDir,
    otherWorkingDir: candidates.find((dir) => dir !== workingDir),
    hashLine: hashing[0],
  };
}

/**
 * Whether a path is something pip can install: an archive or other file, or a folder with a
 * `pyproject.toml` or `setup.py` (in its `subdirectory`, when one is given).
 *
 * @example
 * ```ts
 * import { usable } from "./requirements_set.ts";
 * const fs = {
 *   readText: () => undefined,
 *   isFile: (path: string) => path === "/p/lib/pyproject.toml",
 *   isDirectory: (path: string) => path === "/p/lib",
 * };
 * console.log(usable("/p/lib", undefined, fs), usable("/p", undefined, fs)); // true false
 * ```
 */
export function usable(path: string, subdirectory: string | undefined, fs: FileAccess): boolean {
  if (fs.isFile(path)) return true;
  const project = subdirectory ? join(path, subdirectory) : path;
  return fs.isDirectory(project) &&
    (fs.isFile(join(project, "pyproject.toml")) || fs.isFile(join(project, "setup.py")));
}

// The file and its includes, depth first in file order, each once.
function collect(file: string, fs: FileAccess): Visit[] {
  const visits: Visit[] = [];
  const seen = new Set<string>();
  const visit = (path: string, includedBy?: Reference) => {
    if (seen.has(path)) return;
    seen.add(path);
    const text = fs.readText(path);
    const lines = text === undefined ? [] : logicalLines(text).map(scanLine);
    visits.push({ path, text, lines, includedBy });
    for (const line of lines) {
      for (const ref of line.references) {
        if (INCLUDE_ROLES.has(ref.role) && !ref.problem) {
          visit(resolve(dirname(path), ref.path), ref);
        }
      }
    }
  };
  visit(file);
  return visits;
}

function absoluteOf(ref: Reference, fileDir: string, workingDir: string, fs: FileAccess): string {
  if (isAbsolute(ref.path)) return normalize(ref.path);
  if (INCLUDE_ROLES.has(ref.role)) return resolve(fileDir, ref.path);
  if (ref.role === "find-links") {
    const besideFile = resolve(fileDir, ref.path);
    if (fs.isDirectory(besideFile) || fs.isFile(besideFile)) return besideFile;
  }
  return resolve(workingDir, ref.path);
}

function replacement(ref: ResolvedReference, place: string): string {
  const location = ref.url ? `file://${place}` : place;
  return `${ref.prefix}${location}${ref.suffix}`;
}

/** The file's text with the given replacements; `undefined` when nothing is replaced. */
function rewrite(
  text: string,
  lines: readonly ScannedLine[],
  replace: (ref: Reference) => string | undefined,
): string | undefined {
  const physical = physicalLines(text);
  const out: string[] = [];
  let changed = false;
  let next = 0;
  for (const line of lines) {
    const from = line.number - 1;
    const spans = line.references.flatMap((ref) => {
      const text = replace(ref);
      return text === undefined ? [] : [{ start: ref.start, end: ref.end, text }];
    }).sort((a, b) => b.start - a.start);
    if (spans.length === 0) {
      out.push(...physical.slice(from, from + line.count));
    } else {
      let logical = line.text;
      for (const span of spans) {
        logical = logical.slice(0, span.start) + span.text + logical.slice(span.end);
      }
      out.push(logical);
      changed = true;
    }
    next = from + line.count;
  }
  out.push(...physical.slice(next));
  return changed ? out.join("\n") : undefined;
}

// A name that needs no quoting in a requirements line.
function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._+-]/g, "_") || "_";
}

/**
 * Whether a file name can stand in a rewritten requirements line as it is (wheel and sdist
 * names must keep their exact name, so they cannot be renamed to fit).
 *
 * @example
 * ```ts
 * import { isPlainFileName } from "./requirements_set.ts";
 * console.log(isPlainFileName("app-1.0+local-py3-none-any.whl"), isPlainFileName("my app.whl")); // true false
 * ```
 */
export function isPlainFileName(name: string): boolean {
  return /^[A-Za-z0-9._+!-]+$/.test(name);
}
