/**
 * What a uv project is on disk: its `pyproject.toml`, the workspace it belongs to (the
 * nearest `[tool.uv.workspace]` above it that lists it, and that workspace's members), the
 * local packages its `[tool.uv.sources]` and its `uv.lock` name (path sources, workspace
 * members, transitively), and where uv expects the lock. From that, the layout of the files
 * an install step needs, mirrored from one common folder so that every relative path the
 * project's files name still points at the same thing inside the step.
 *
 * Built on the public API, plus reading folder listings to expand the workspace's `members`
 * globs, as uv does.
 *
 * @module
 */

import { type IdentifyContext, isInside, paths, type PluginContext } from "../../contract.ts";
import { normalizeName, requirementName } from "./pep508.ts";
import { isTable, readToml, stringsOf, tableAt, type TomlTable } from "./toml_file.ts";

const { dirname, join, relative, resolve } = paths;

/** A path that a project file names, and which file names it where. */
export interface NamedPath {
  /** The absolute path. */
  readonly path: string;
  /** The file that names it. */
  readonly file: string;
  /** Which file names it and where, for messages (`pyproject.toml [tool.uv.sources] lib`). */
  readonly namedIn: string;
}

/** A member of a uv workspace. */
export interface WorkspaceMember {
  /** The member's folder. */
  readonly dir: string;
  /** Its normalized `[project] name`, if it has one. */
  readonly name?: string;
  /** Its parsed `pyproject.toml`. */
  readonly table: TomlTable;
}

/** A uv workspace: its root folder, the root's pyproject and every member. */
export interface Workspace {
  /** The workspace root (the folder of the `pyproject.toml` with `[tool.uv.workspace]`). */
  readonly root: string;
  /** The root's parsed `pyproject.toml`. */
  readonly table: TomlTable;
  /** Every member, the root first. */
  readonly members: readonly WorkspaceMember[];
}

/** A uv project as the files describe it. */
export interface UvProjectFiles {
  /** The project's `pyproject.toml` (the file the spec names). */
  readonly pyproject: string;
  /** The project's folder. */
  readonly dir: string;
  /** Its parsed pyproject, or `undefined` when it cannot be read or parsed. */
  readonly table?: TomlTable;
  /** The workspace it is a member of, if any. */
  readonly workspace?: Workspace;
  /** The lock file in use, and where uv looks for it. */
  readonly lock?: { readonly path: string; readonly at: string; readonly table?: TomlTable };
  /** Local packages the project's install needs (path sources, members), transitively. */
  readonly locals: readonly NamedPath[];
  /** Workspace members, named by the workspace's `members` globs. */
  readonly members: readonly NamedPath[];
}

/** Is `path` inside the project boundary or a folder configuration allows? */
export function insideBoundary(context: PluginContext, path: string): boolean {
  return isInside(path, [context.projectRoot, ...context.config.allowedPaths]);
}

/**
 * Read a uv project: `pyproject` (absolute) and, when given, the lock file the spec names
 * (else `uv.lock` at the workspace root or beside the pyproject, when there is one).
 *
 * @example
 * ```ts
 * import { Image, planImage, defaultConfig } from "imgtool";
 * import { readUvProject } from "./uv_workspace.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/pyproject.toml`, '[project]\nname = "app"\nversion = "1"\n');
 * const plan = planImage(Image.fromDebianBase().withUvProject(`${dir}/pyproject.toml`), "x", defaultConfig());
 * console.log(readUvProject(plan.layers[1].context, `${dir}/pyproject.toml`).lock); // undefined
 * ```
 */
export function readUvProject(
  context: IdentifyContext,
  pyproject: string,
  lockOption?: string,
): UvProjectFiles {
  const dir = dirname(pyproject);
  const read = readToml(context, pyproject);
  const table = isTable(read) ? read : undefined;
  const workspace = table ? findWorkspace(context, dir, table) : undefined;
  const lockAt = join(workspace?.root ?? dir, "uv.lock");
  const lockPath = lockOption ?? (context.isFile(lockAt) ? lockAt : undefined);
  const lockRead = lockPath === undefined ? undefined : readToml(context, lockPath);
  const lock = lockPath === undefined
    ? undefined
    : { path: lockPath, at: lockAt, ...(isTable(lockRead) ? { table: lockRead } : {}) };
  const members = workspace
    ? workspace.members.filter((member) => member.dir !== workspace.root).map((member) => ({
      path: member.dir,
      file: join(workspace.root, "pyproject.toml"),
      namedIn: `${join(workspace.root, "pyproject.toml")} [tool.uv.workspace] members`,
    }))
    : [];
  const locals = table
    ? uniqueByPath([
      ...sourceLocals(context, { pyproject, dir, table, workspace }),
      ...(lock?.table ? lockLocals(lock.table, dirname(lock.at), dir, lock.path) : []),
    ]).filter((local) => local.path !== dir)
    : [];
  return {
    pyproject,
    dir,
    ...(table ? { table } : {}),
    ...(workspace ? { workspace } : {}),
    ...(lock ? { lock } : {}),
    locals,
    members,
  };
}

// --- workspaces ---------------------------------------------------------------------------

/** The workspace `dir` belongs to: its own, or the nearest one above that lists it. */
function findWorkspace(
  context: IdentifyContext,
  dir: string,
  table: TomlTable,
): Workspace | undefined {
  if (isTable(tableAt(table, "tool", "uv")["workspace"])) {
    return { root: dir, table, members: workspaceMembers(context, dir, table) };
  }
  // Up to the project boundary: files above it are not the project's.
  for (let current = dirname(dir); insideBoundary(context, current); current = dirname(current)) {
    const candidate = readToml(context, join(current, "pyproject.toml"));
    if (isTable(candidate) && isTable(tableAt(candidate, "tool", "uv")["workspace"])) {
      const spec = tableAt(candidate, "tool", "uv", "workspace");
      const at = relative(current, dir);
      const listed = stringsOf(spec.members).some((glob) => globMatches(glob, at)) &&
        !stringsOf(spec.exclude).some((glob) => globMatches(glob, at));
      // uv stops at the first workspace root above a project; one that does not list the
      // project leaves it on its own.
      return listed
        ? {
          root: current,
          table: candidate,
          members: workspaceMembers(context, current, candidate),
        }
        : undefined;
    }
    if (current === "/") break;
  }
  return undefined;
}

/** The members of the workspace rooted at `root`: the root, then its `members` globs. */
function workspaceMembers(
  context: IdentifyContext,
  root: string,
  table: TomlTable,
): WorkspaceMember[] {
  const spec = tableAt(table, "tool", "uv", "workspace");
  const excluded = stringsOf(spec.exclude);
  const members: WorkspaceMember[] = [memberOf(root, table)];
  const seen = new Set([root]);
  for (const glob of stringsOf(spec.members)) {
    for (const dir of expandGlob(root, glob)) {
      if (seen.has(dir)) continue;
      if (excluded.some((pattern) => globMatches(pattern, relative(root, dir)))) continue;
      // uv requires a pyproject.toml in each member; folders without one are not members.
      const member = readToml(context, join(dir, "pyproject.toml"));
      if (!isTable(member)) continue;
      seen.add(dir);
      members.push(memberOf(dir, member));
    }
  }
  return members;
}

function memberOf(dir: string, table: TomlTable): WorkspaceMember {
  const name = tableAt(table, "project")["name"];
  return { dir, table, ...(typeof name === "string" ? { name: normalizeName(name) } : {}) };
}

// Glob expansion stops after this many folders: a `**` over a huge tree must not hang.
const GLOB_BUDGET = 20_000;

/** The folders under `root` that `glob` (uv's `members` syntax) matches, sorted. */
function expandGlob(root: string, glob: string): string[] {
  const segments = glob.split("/").filter((segment) => segment !== "" && segment !== ".");
  const found = new Set<string>();
  let budget = GLOB_BUDGET;
  const walk = (dir: string, index: number): void => {
    if (--budget < 0) return;
    if (index === segments.length) {
      found.add(dir);
      return;
    }
    const segment = segments[index];
    if (segment === "**") {
      walk(dir, index + 1);
      for (const child of subfolders(dir)) walk(child, index);
    } else if (!/[*?[]/.test(segment)) {
      const next = resolve(dir, segment);
      if (isFolder(next)) walk(next, index + 1);
    } else {
      const pattern = segmentPattern(segment);
      for (const child of subfolders(dir)) {
        if (pattern.test(child.slice(child.lastIndexOf("/") + 1))) walk(child, index + 1);
      }
    }
  };
  walk(root, 0);
  return [...found].sort();
}

function subfolders(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)]
      // Hidden folders (.venv, .git) are never members.
      .filter((entry) => entry.isDirectory && !entry.name.startsWith("."))
      .map((entry) => join(dir, entry.name))
      .sort();
  } catch {
    return [];
  }
}

function isFolder(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

function segmentPattern(segment: string): RegExp {
  return new RegExp(`^${globBody(segment)}$`);
}

function globBody(glob: string): string {
  let body = "";
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i];
    if (char === "*" && glob[i + 1] === "*") {
      body += ".*";
      i++;
      if (glob[i + 1] === "/") i++;
    } else if (char === "*") body += "[^/]*";
    else if (char === "?") body += "[^/]";
    else if (char === "[") {
      const end = glob.indexOf("]", i + 1);
      if (end < 0) body += "\\[";
      else {
        const inner = glob.slice(i + 1, end).replace(/^!/, "^").replace(/\\/g, "\\\\");
        body += `[${inner}]`;
        i = end;
      }
    } else body += char.replace(/[.+^${}()|\\\]]/g, "\\$&");
  }
  return body;
}

/**
 * Does a workspace glob (`packages/*`, `libs/**`) match the relative path `path`?
 *
 * @example
 * ```ts
 * import { globMatches } from "./uv_workspace.ts";
 * console.log(globMatches("packages/*", "packages/api"), globMatches("packages/*", "apps/api")); // true false
 * ```
 */
export function globMatches(glob: string, path: string): boolean {
  const clean = (text: string) =>
    text.split("/").filter((segment) => segment !== "" && segment !== ".").join("/");
  try {
    return new RegExp(`^${globBody(clean(glob))}$`).test(clean(path));
  } catch {
    return false;
  }
}

// --- local packages ------------------------------------------------------------------------

interface Visit {
  readonly pyproject: string;
  readonly dir: string;
  readonly table: TomlTable;
  readonly workspace?: Workspace;
}

/**
 * The local paths that `[tool.uv.sources]` name for the requirements uv installs with the
 * project: `{ path = ... }` and `{ workspace = true }` sources of its dependencies, extras,
 * dependency groups and build requirements, and, transitively, of the local packages they
 * name (their dependencies and extras). A member's sources override the workspace root's.
 */
function sourceLocals(context: IdentifyContext, start: Visit): NamedPath[] {
  const found: NamedPath[] = [];
  const visited = new Set<string>();
  const workspace = start.workspace;
  const rootFile = workspace ? join(workspace.root, "pyproject.toml") : undefined;
  const membersByName = new Map(
    (workspace?.members ?? []).flatMap((member) => member.name ? [[member.name, member]] : []),
  );
  const visit = (project: Visit, withGroups: boolean): void => {
    if (visited.has(project.dir)) return;
    visited.add(project.dir);
    const own = sourcesOf(project.table);
    const isMember = workspace?.members.some((member) => member.dir === project.dir) ?? false;
    const inherited = isMember && workspace ? sourcesOf(workspace.table) : new Map();
    for (const name of neededNames(project.table, withGroups)) {
      const ownEntries = own.get(name);
      const entries = ownEntries ?? inherited.get(name) ?? [];
      // A source is relative to the file that declares it.
      const [declaredIn, base] = ownEntries
        ? [project.pyproject, project.dir]
        : [rootFile ?? project.pyproject, workspace?.root ?? project.dir];
      const namedIn = `${declaredIn} [tool.uv.sources] ${name}`;
      for (const entry of entries) {
        if (entry.workspace === true) {
          const member = membersByName.get(name);
          if (!member) continue; // uv itself says the member is missing
          found.push({ path: member.dir, file: declaredIn, namedIn });
          visit({ ...member, pyproject: join(member.dir, "pyproject.toml"), workspace }, false);
          continue;
        }
        const named = typeof entry.path === "string"
          ? entry.path
          : typeof entry.workspace === "string"
          ? entry.workspace
          : undefined;
        if (named === undefined) continue;
        const path = resolve(base, named);
        found.push({ path, file: declaredIn, namedIn });
        // Files outside the boundary are not read: validation refuses them.
        if (!insideBoundary(context, path) || !context.isDirectory(path)) continue;
        const nested = readToml(context, join(path, "pyproject.toml"));
        if (isTable(nested)) {
          visit(
            { pyproject: join(path, "pyproject.toml"), dir: path, table: nested, workspace },
            false,
          );
        }
      }
    }
  };
  visit(start, true);
  return found;
}

/** The `[tool.uv.sources]` entries that apply to a package of a project, and their origin. */
export interface AppliedSource {
  /** The source tables (more than one when they carry markers). */
  readonly entries: readonly TomlTable[];
  /** The file that declares them. */
  readonly file: string;
  /** The folder their relative paths are relative to. */
  readonly base: string;
}

/**
 * The sources that apply to the project's own requirements, by normalized package name:
 * its own `[tool.uv.sources]`, else the workspace root's.
 *
 * @example
 * ```ts
 * import { sourcesFor } from "./uv_workspace.ts";
 * const sources = sourcesFor({
 *   pyproject: "/repo/pyproject.toml",
 *   dir: "/repo",
 *   table: { tool: { uv: { sources: { Lib: { path: "libs/lib" } } } } },
 *   locals: [],
 *   members: [],
 * });
 * console.log(sources.get("lib")?.entries); // [ { path: "libs/lib" } ]
 * ```
 */
export function sourcesFor(project: UvProjectFiles): Map<string, AppliedSource> {
  const applied = new Map<string, AppliedSource>();
  const workspace = project.workspace;
  if (workspace && workspace.root !== project.dir) {
    for (const [name, entries] of sourcesOf(workspace.table)) {
      applied.set(name, {
        entries,
        file: join(workspace.root, "pyproject.toml"),
        base: workspace.root,
      });
    }
  }
  for (const [name, entries] of sourcesOf(project.table ?? {})) {
    applied.set(name, { entries, file: project.pyproject, base: project.dir });
  }
  return applied;
}

/** `[tool.uv.sources]` by normalized package name, each as a list of source tables. */
function sourcesOf(table: TomlTable): Map<string, TomlTable[]> {
  const sources = new Map<string, TomlTable[]>();
  for (const [name, value] of Object.entries(tableAt(table, "tool", "uv", "sources"))) {
    const list = Array.isArray(value) ? value : [value];
    sources.set(normalizeName(name), list.filter(isTable));
  }
  return sources;
}

/** The normalized names a project's requirements name (with its groups when asked). */
function neededNames(table: TomlTable, withGroups: boolean): Set<string> {
  const project = tableAt(table, "project");
  const requirements = [
    ...stringsOf(project.dependencies),
    ...Object.values(tableAt(project, "optional-dependencies")).flatMap(stringsOf),
    ...stringsOf(tableAt(table, "build-system").requires),
    ...(withGroups
      ? [
        ...Object.values(tableAt(table, "dependency-groups")).flatMap(stringsOf),
        ...stringsOf(tableAt(table, "tool", "uv")["dev-dependencies"]),
      ]
      : []),
  ];
  return new Set(requirements.flatMap((text) => requirementName(text) ?? []));
}

const LOCAL_SOURCES = ["editable", "directory", "path", "virtual"] as const;

/** A locked package's local path (relative sources are relative to the lock's folder). */
function lockedPath(lockDir: string, item: TomlTable): string | undefined {
  const source = tableAt(item, "source");
  for (const kind of LOCAL_SOURCES) {
    if (typeof source[kind] === "string") return resolve(lockDir, source[kind] as string);
  }
  return undefined;
}

/**
 * The local packages the lock installs with the project at `projectDir`: everything its
 * locked package depends on (with every extra, and its own dependency groups), transitively,
 * that the lock records with a local source. Without a locked package for the project (a
 * virtual workspace root), every local package of the lock.
 */
function lockLocals(
  lock: TomlTable,
  lockDir: string,
  projectDir: string,
  lockFile: string,
): NamedPath[] {
  const packages = (Array.isArray(lock.package) ? lock.package : []).filter(isTable);
  const byName = new Map<string, TomlTable[]>();
  for (const item of packages) {
    if (typeof item.name !== "string") continue;
    const name = normalizeName(item.name);
    byName.set(name, [...(byName.get(name) ?? []), item]);
  }
  const named = (item: TomlTable): NamedPath | undefined => {
    const path = lockedPath(lockDir, item);
    return path === undefined
      ? undefined
      : { path, file: lockFile, namedIn: `${lockFile} package ${String(item.name)}` };
  };
  const roots = packages.filter((item) => lockedPath(lockDir, item) === projectDir);
  if (roots.length === 0) return packages.flatMap((item) => named(item) ?? []);
  const seen = new Set<TomlTable>(roots);
  const queue = [...roots];
  const found: NamedPath[] = [];
  while (queue.length > 0) {
    const item = queue.shift()!;
    const isRoot = roots.includes(item);
    const dependencies = [
      ...(Array.isArray(item.dependencies) ? item.dependencies : []),
      ...Object.values(tableAt(item, "optional-dependencies")).flat(),
      ...(isRoot ? Object.values(tableAt(item, "dev-dependencies")).flat() : []),
    ].filter(isTable);
    for (const dependency of dependencies) {
      if (typeof dependency.name !== "string") continue;
      for (const next of byName.get(normalizeName(dependency.name)) ?? []) {
        if (seen.has(next)) continue;
        seen.add(next);
        queue.push(next);
        const local = named(next);
        if (local) found.push(local);
      }
    }
  }
  return found;
}

function uniqueByPath(list: readonly NamedPath[]): NamedPath[] {
  const seen = new Set<string>();
  return list.filter((item) => !seen.has(item.path) && seen.add(item.path));
}

// --- the layout of the install step ---------------------------------------------------------

/** One file or folder of the install step, at a path relative to the layout's root. */
export interface LayoutEntry {
  /** A single file, or a whole folder. */
  readonly kind: "file" | "tree";
  /** Where it is on disk. */
  readonly source: string;
  /** Where it goes, relative to the layout's root (`""` for the root itself). */
  readonly at: string;
}

/** The files of a uv project's install step, mirrored from one common folder. */
export interface UvLayout {
  /** The common folder on disk. */
  readonly root: string;
  /** The project's folder, relative to the root (`""` when it is the root). */
  readonly projectAt: string;
  /** Files and folders, folders first, none inside another folder of the list. */
  readonly entries: readonly LayoutEntry[];
}

/**
 * What the install step needs, laid out as on disk: the project's whole folder
 * (`wholeProject`) or only its `pyproject.toml`; the workspace root's `pyproject.toml` and
 * every member's (uv reads them all to know the workspace); `uv.toml` beside the project and
 * the workspace root; the whole folder of every local package the install needs; and the
 * lock where uv looks for it. Paths outside the project boundary or missing are left out
 * (validation reports them).
 *
 * @example
 * ```ts
 * import { uvLayout } from "./uv_workspace.ts";
 * const layout = uvLayout({
 *   pyproject: "/repo/apps/api/pyproject.toml",
 *   dir: "/repo/apps/api",
 *   locals: [{ path: "/repo/libs/core", file: "/repo/apps/api/pyproject.toml", namedIn: "" }],
 *   members: [],
 * }, false, () => true);
 * console.log(layout.projectAt, layout.entries.map((entry) => `${entry.kind} ${entry.at}`));
 * // apps/api [ "tree libs/core", "file apps/api/pyproject.toml" ]
 * ```
 */
export function uvLayout(
  project: UvProjectFiles,
  wholeProject: boolean,
  usable: (path: string, kind: "file" | "tree") => boolean,
): UvLayout {
  const trees: string[] = [];
  const files: { source: string; position: string }[] = [];
  if (wholeProject) trees.push(project.dir);
  else files.push({ source: project.pyproject, position: join(project.dir, "pyproject.toml") });
  for (const local of project.locals) {
    if (usable(local.path, "tree")) trees.push(local.path);
    else if (usable(local.path, "file")) files.push({ source: local.path, position: local.path });
  }
  const workspace = project.workspace;
  if (workspace && workspace.root !== project.dir) {
    const root = join(workspace.root, "pyproject.toml");
    files.push({ source: root, position: root });
  }
  for (const member of project.members) {
    const file = join(member.path, "pyproject.toml");
    if (usable(file, "file")) files.push({ source: file, position: file });
  }
  for (const dir of new Set([project.dir, workspace?.root ?? project.dir])) {
    const file = join(dir, "uv.toml");
    if (usable(file, "file")) files.push({ source: file, position: file });
  }
  // Last: the lock the spec chose takes the place of any other in a folder copied whole.
  if (project.lock) files.push({ source: project.lock.path, position: project.lock.at });

  const within = (path: string, folder: string) =>
    path === folder || path.startsWith(folder === "/" ? "/" : `${folder}/`);
  const keptTrees = [...new Set(trees)].sort((a, b) => a.length - b.length || (a < b ? -1 : 1))
    .filter((tree, index, all) => !all.slice(0, index).some((outer) => within(tree, outer)))
    .sort();
  const seenPositions = new Set<string>();
  const keptFiles = files.filter((file) => {
    if (seenPositions.has(file.position)) return false;
    seenPositions.add(file.position);
    const inTree = keptTrees.some((tree) => within(file.position, tree));
    return !(inTree && file.source === file.position);
  });
  const root = commonFolder([
    project.dir,
    ...(workspace ? [workspace.root] : []),
    ...keptTrees,
    ...keptFiles.map((file) => dirname(file.position)),
  ]);
  const at = (path: string) => relative(root, path);
  return {
    root,
    projectAt: at(project.dir),
    entries: [
      ...keptTrees.map((tree) => ({ kind: "tree" as const, source: tree, at: at(tree) })),
      ...keptFiles.map((file) => ({
        kind: "file" as const,
        source: file.source,
        at: at(file.position),
      })),
    ],
  };
}

function commonFolder(folders: readonly string[]): string {
  let common = folders[0].split("/").filter(Boolean);
  for (const folder of folders.slice(1)) {
    const parts = folder.split("/").filter(Boolean);
    let length = 0;
    while (length < common.length && common[length] === parts[length]) length++;
    common = common.slice(0, length);
  }
  return `/${common.join("/")}`;
}
