/**
 * `withPoetryProject`: install a Poetry project into the image's Python environment.
 *
 * - `dependencies_only` (default): `pyproject.toml`, `poetry.lock` (and `poetry.toml`, when
 *   there is one) are mounted into the step with the project's local path dependencies, and
 *   `poetry install --no-root` installs the locked dependencies.
 * - `install_project`: the same step, then a later one that mounts the whole project folder,
 *   builds the project as a wheel into a fresh `dist/` and installs it (not editable). Editing
 *   the project's code reuses the dependency layer; its sources do not stay in the image.
 *
 * Local path dependencies (`name = { path = "../lib", develop = true }`, in any group, and
 * those the lock file or the path dependencies themselves name) reach the step at the same
 * relative places. Poetry installs `develop = true` ones as editable links into the step's
 * mount, which is gone after the step, so each one Poetry installed editable is then built
 * as a wheel and installed in its place. Paths must lie inside the project boundary.
 *
 * The project's demands are checked before building: `requires-poetry` against the Poetry
 * version installed, `requires-python` (and Poetry's `python` dependency) against the
 * image's Python, when the image's Python is known.
 *
 * Poetry itself is installed once per image into `/opt/poetry` (version from
 * `[plugins.poetry_project] version`), or, with `[plugins.poetry_project] command`, taken
 * from the image as is. Poetry's cache is on a cache mount. Secrets reach the install steps.
 *
 * @module
 */

import {
  type Config,
  type ContextEntry,
  definePlugin,
  type Diagnostic,
  type IdentifyContext,
  type Mount,
  paths,
  type PluginContext,
  run,
  type Secret,
  shellQuote,
} from "../contract.ts";
import {
  environmentIdentity,
  extraArgsProblems,
  pipEnvironment,
  pipInstall,
  pythonCheck,
  pythonVersionAllows,
  targetEnvironment,
  uvCommand,
  versionAllows,
} from "./shared/python.ts";
import { isTable, readToml, tableAt, type TomlTable } from "./shared/toml_file.ts";

const { dirname, join, relative, resolve } = paths;

/** The layer's options. */
export interface Options {
  /** The project's `pyproject.toml`, relative to the spec's folder. */
  readonly pyprojectFile: string;
  /** The lock file; default `poetry.lock` beside the pyproject. */
  readonly poetryLock?: string;
  /** More arguments for `poetry install`, as shell words. */
  readonly extraArgs?: string;
  /** Secrets the install step needs. */
  readonly secretMounts: readonly Secret[];
  /** Dependencies only, or the project too. */
  readonly projectInstallMode: "dependencies_only" | "install_project";
}

/** The plugin's settings (`[plugins.poetry_project]` in imgtool.toml). */
export interface Settings {
  /** Poetry version to install; default {@link DEFAULT_POETRY_VERSION}. */
  readonly version?: string;
  /** Use this `poetry` command from the image instead of installing Poetry. */
  readonly command?: string;
}

/** The Poetry version installed when the settings name none. */
export const DEFAULT_POETRY_VERSION = "2.1.3";
/** Where the project (with its local dependencies around it) is mounted in the install steps. */
export const PROJECT_DIR = "/tmp/imgtool-poetry-project";
/** Where Poetry is installed. */
export const POETRY_HOME = "/opt/poetry";
const INSTALLED = "poetry_project.installed";
// Local dependencies are followed this far (through the path dependencies' own pyprojects).
const MAX_LOCAL_DEPENDENCIES = 500;

// Exit 0 when the distribution named by argv[1] is installed editable (PEP 610 direct_url.json).
const EDITABLE_CHECK = "import importlib.metadata as m, json, sys; " +
  "d = next(iter(m.distributions(name=sys.argv[1])), None); " +
  'u = json.loads((d and d.read_text("direct_url.json")) or "{}"); ' +
  'sys.exit(0 if u.get("dir_info", {}).get("editable") else 1)';

function settings(context: PluginContext): Settings {
  return context.settings as Settings;
}

/** The lock file in use. */
export function lockFile(options: Options, context: IdentifyContext): string {
  return options.poetryLock !== undefined
    ? context.resolve(options.poetryLock)
    : join(dirname(context.resolve(options.pyprojectFile)), "poetry.lock");
}

function poetryCommand(context: PluginContext): string {
  return settings(context).command ?? `${POETRY_HOME}/bin/poetry`;
}

/** The step that installs Poetry itself, unless the image has it already. */
function installPoetry(context: PluginContext): string[] {
  if (settings(context).command !== undefined || context.state.extra[INSTALLED]) return [];
  const version = settings(context).version ?? DEFAULT_POETRY_VERSION;
  const requirement = shellQuote(`poetry==${version}`);
  // Poetry's own venv: installing into it needs no PEP 668 override.
  const tool = {
    ...context,
    state: {
      ...context.state,
      python: {
        version: context.image.pythonVersion,
        venv: POETRY_HOME,
        python: `${POETRY_HOME}/bin/python`,
      },
    },
  };
  const step = pipInstall(tool, [requirement], {
    extraIndexUrls: [],
    pre: false,
    secretMounts: [],
  });
  const makeVenv = context.config.installer === "uv"
    ? `${uvCommand(context)} venv ${POETRY_HOME} --python "$(command -v python3)"`
    : `python3 -m venv ${POETRY_HOME}`;
  // Made from the image's python3: say so plainly when the base has none.
  return [run([...pythonCheck(context), makeVenv, step.command], {
    mounts: context.config.installer === "uv" ? [...step.mounts] : step.mounts,
    env: step.env,
  })];
}

// --- what the project's files say --------------------------------------------------------

/**
 * A folder or archive the project depends on by path.
 *
 * @example
 * ```ts
 * import type { LocalDependency } from "./poetry_project.ts";
 * const lib: LocalDependency = {
 *   name: "shared-lib",
 *   path: "/repo/libs/shared",
 *   namedIn: "/repo/apps/api/pyproject.toml ([tool.poetry.dependencies] shared-lib)",
 * };
 * console.log(`${lib.namedIn} names ${lib.path}`);
 * ```
 */
export interface LocalDependency {
  /** The distribution's name, as the file that named it spells it. */
  readonly name: string;
  /** Its absolute path. */
  readonly path: string;
  /** The file that named it, and where (`/repo/app/pyproject.toml ([tool.poetry.dependencies] lib)`). */
  readonly namedIn: string;
}

type Table = TomlTable;

/** A TOML file's top table, or the problem reading it; neither when it cannot be read. */
function readPoetryToml(
  context: IdentifyContext,
  file: string,
): { table?: Table; problem?: Diagnostic } {
  const read = readToml(context, file);
  if (!(read instanceof Error)) return { table: read };
  return {
    problem: {
      message: `${file} is not valid TOML: ${read.message.split("\n")[0]}`,
      hint: "fix the file (`poetry check` reports the same)",
      file,
    },
  };
}

/**
 * The path dependencies a pyproject declares in `[tool.poetry.dependencies]`, the legacy
 * `[tool.poetry.dev-dependencies]` and every `[tool.poetry.group.<name>.dependencies]`,
 * with their paths resolved against the pyproject's folder.
 *
 * @example
 * ```ts
 * import { poetryPathDependencies } from "./poetry_project.ts";
 * const pyproject = {
 *   tool: { poetry: { group: { dev: { dependencies: { lib: { path: "../lib", develop: true } } } } } },
 * };
 * const [lib] = poetryPathDependencies(pyproject, "/repo/app/pyproject.toml");
 * console.log(lib.name, lib.path); // lib /repo/lib
 * ```
 */
export function poetryPathDependencies(pyproject: unknown, file: string): LocalDependency[] {
  const poetry = tableAt(pyproject, "tool", "poetry");
  const sections: [string, Table][] = [
    ["[tool.poetry.dependencies]", tableAt(poetry, "dependencies")],
    ["[tool.poetry.dev-dependencies]", tableAt(poetry, "dev-dependencies")],
    ...Object.entries(tableAt(poetry, "group")).map(([group, value]): [string, Table] => [
      `[tool.poetry.group.${group}.dependencies]`,
      tableAt(value, "dependencies"),
    ]),
  ];
  const found: LocalDependency[] = [];
  for (const [section, dependencies] of sections) {
    for (const [name, spec] of Object.entries(dependencies)) {
      // A dependency may be several constraints, each with its own source.
      for (const constraint of Array.isArray(spec) ? spec : [spec]) {
        if (!isTable(constraint) || typeof constraint.path !== "string") continue;
        found.push({
          name,
          path: resolve(dirname(file), constraint.path),
          namedIn: `${file} (${section} ${name})`,
        });
      }
    }
  }
  return found;
}

/** The problems of `[project]` dependencies that name a local path by an absolute URL. */
function absoluteUrlProblems(pyproject: Table, file: string): Diagnostic[] {
  const project = tableAt(pyproject, "project");
  const lists: [string, unknown][] = [
    ["[project] dependencies", project.dependencies],
    ...Object.entries(tableAt(project, "optional-dependencies")).map((
      [extra, list],
    ): [string, unknown] => [`[project.optional-dependencies] ${extra}`, list]),
  ];
  const problems: Diagnostic[] = [];
  for (const [section, list] of lists) {
    for (const requirement of Array.isArray(list) ? list : []) {
      if (typeof requirement !== "string") continue;
      const match = /^\s*([A-Za-z0-9][A-Za-z0-9._-]*)[^@]*@\s*(file:\S*)/.exec(requirement);
      if (!match) continue;
      problems.push({
        message: `${file} (${section}) names ${match[2]}, a path on this machine that the ` +
          "build cannot reach",
        hint: `name it by a relative path in [tool.poetry.dependencies]: ${match[1]} = ` +
          '{ path = "../relative/path" }',
        file,
      });
    }
  }
  return problems;
}

/** The local packages a lock file lists (`[package.source] type = "directory"` or `"file"`). */
function lockedLocalDependencies(lock: Table, projectDir: string, file: string): LocalDependency[] {
  const packages = Array.isArray(lock.package) ? lock.package : [];
  return packages.flatMap((entry): LocalDependency[] => {
    const source = tableAt(entry, "source");
    if (!isTable(entry) || typeof entry.name !== "string") return [];
    if (!["directory", "file"].includes(String(source.type))) return [];
    if (typeof source.url !== "string") return [];
    return [{
      name: entry.name,
      path: resolve(projectDir, source.url),
      namedIn: `${file} (package ${entry.name})`,
    }];
  });
}

/** The project's local dependencies, and the problems found reading the files that name them. */
interface LocalDependencies {
  /** Every local dependency, once each, in the order they were found. */
  readonly dependencies: readonly LocalDependency[];
  /** Files that could not be parsed, or that name local paths the build cannot reach. */
  readonly problems: readonly Diagnostic[];
}

/**
 * The project's local dependencies: the path dependencies of its pyproject (every group),
 * the local packages of its lock file, and, folder by folder, the path dependencies of
 * those dependencies' own pyprojects (Poetry loads them, so they must be there too).
 */
function localDependencies(options: Options, context: IdentifyContext): LocalDependencies {
  const pyproject = context.resolve(options.pyprojectFile);
  const projectDir = dirname(pyproject);
  const problems: Diagnostic[] = [];
  const found = new Map<string, LocalDependency>();
  const queue: LocalDependency[] = [];
  const add = (dependencies: readonly LocalDependency[]) => {
    for (const dependency of dependencies) {
      if (found.has(dependency.path) || dependency.path === projectDir) continue;
      if (found.size >= MAX_LOCAL_DEPENDENCIES) return;
      found.set(dependency.path, dependency);
      queue.push(dependency);
    }
  };
  const own = readPoetryToml(context, pyproject);
  if (own.problem) problems.push(own.problem);
  if (own.table) {
    add(poetryPathDependencies(own.table, pyproject));
    problems.push(...absoluteUrlProblems(own.table, pyproject));
  }
  const lock = lockFile(options, context);
  const locked = readPoetryToml(context, lock);
  if (locked.problem) problems.push(locked.problem);
  if (locked.table) add(lockedLocalDependencies(locked.table, projectDir, lock));
  while (queue.length > 0) {
    // Reading a pyproject copies nothing: paths outside the project are reported by validate.
    const dependency = queue.shift() as LocalDependency;
    if (!context.isDirectory(dependency.path)) continue;
    const file = join(dependency.path, "pyproject.toml");
    if (!context.isFile(file)) continue;
    const theirs = readPoetryToml(context, file);
    if (theirs.problem) problems.push(theirs.problem);
    if (theirs.table) add(poetryPathDependencies(theirs.table, file));
  }
  return { dependencies: [...found.values()], problems };
}

function isInside(path: string, folder: string): boolean {
  return path === folder || path.startsWith(`${folder.replace(/\/$/, "")}/`);
}

/** The problems of the project's demands on the Poetry version and the image's Python. */
function demandProblems(options: Options, context: IdentifyContext): Diagnostic[] {
  const pyproject = context.resolve(options.pyprojectFile);
  const parsed = readPoetryToml(context, pyproject).table;
  if (parsed === undefined) return [];
  const problems: Diagnostic[] = [];
  const requiresPoetry = tableAt(parsed, "tool", "poetry")["requires-poetry"];
  const { command, version = DEFAULT_POETRY_VERSION } = settings(context);
  // With `command`, the image's own Poetry runs: its version is not known here.
  if (
    typeof requiresPoetry === "string" && command === undefined &&
    versionAllows(requiresPoetry, version) === false
  ) {
    problems.push({
      message: `${pyproject} requires Poetry ${requiresPoetry} ([tool.poetry] requires-poetry), ` +
        `but imgtool installs Poetry ${version}`,
      hint: "set a Poetry version that satisfies it in imgtool.toml: " +
        '[plugins.poetry_project] version = "<version>"',
      file: pyproject,
    });
  }
  const python = context.state.python?.version;
  if (python === undefined) return problems;
  const demands: [string, unknown][] = [
    ["[project] requires-python", tableAt(parsed, "project")["requires-python"]],
    ["[tool.poetry.dependencies] python", tableAt(parsed, "tool", "poetry", "dependencies").python],
  ];
  for (const [where, demand] of demands) {
    if (typeof demand !== "string" || pythonVersionAllows(demand, python) !== false) continue;
    const fitting = [8, 9, 10, 11, 12, 13, 14].find((minor) =>
      pythonVersionAllows(demand, [3, minor])
    );
    problems.push({
      message: `${pyproject} requires Python ${demand} (${where}), but the image has Python ` +
        python.join("."),
      hint: `build the image with a Python that satisfies it: pythonVersion${
        fitting === undefined ? "" : ` [3, ${fitting}]`
      } in the spec, or python-version in imgtool.toml`,
      file: pyproject,
    });
  }
  return problems;
}

// --- the build context -------------------------------------------------------------------

/** Where the project and its local dependencies stand relative to each other. */
interface Layout {
  /** The folder that holds the project and every local dependency. */
  readonly root: string;
  /** The project's folder, relative to the root (`""` when it is the root). */
  readonly project: string;
  /** Local folders (to copy whole) and archives, with their distribution names. */
  readonly folders: readonly LocalDependency[];
  readonly archives: readonly LocalDependency[];
}

function layout(options: Options, context: IdentifyContext): Layout {
  const projectDir = dirname(context.resolve(options.pyprojectFile));
  const { dependencies } = localDependencies(options, context);
  const archives = dependencies.filter((dependency) => context.isFile(dependency.path));
  const folders = dependencies.filter((dependency) => !context.isFile(dependency.path));
  let root = projectDir;
  for (const place of [...folders.map((d) => d.path), ...archives.map((d) => dirname(d.path))]) {
    while (!isInside(place, root)) root = dirname(root);
  }
  const byPath = (a: LocalDependency, b: LocalDependency) => a.path < b.path ? -1 : 1;
  return {
    root,
    project: relative(root, projectDir),
    folders: folders.sort(byPath),
    archives: archives.sort(byPath),
  };
}

/** Where a path of the layout is in the install steps. */
function mounted(place: Layout, path: string): string {
  const inside = relative(place.root, path);
  return inside === "" ? PROJECT_DIR : `${PROJECT_DIR}/${inside}`;
}

/** A file or folder of the project to copy, and where it stands (an absolute path). */
interface Placed {
  readonly kind: "file" | "tree";
  readonly source: string;
  readonly at: string;
}

/**
 * The context entries of one step, under `target`, laid out as on disk: the local
 * dependencies (minus those inside a folder `copiedFolders` copies whole), then `own`.
 */
function stagedFiles(
  place: Layout,
  target: string,
  copiedFolders: readonly string[],
  own: readonly Placed[],
): ContextEntry[] {
  const covered = (path: string) =>
    copiedFolders.some((folder) => folder !== path && isInside(path, folder));
  const at = (path: string) => {
    const inside = relative(place.root, path);
    return inside === "" ? target : `${target}/${inside}`;
  };
  return [
    ...place.folders.filter((d) => !covered(d.path)).map((d): ContextEntry => ({
      kind: "tree",
      source: d.path,
      target: at(d.path),
    })),
    ...place.archives.filter((d) => !covered(d.path)).map((d): ContextEntry => ({
      kind: "file",
      source: d.path,
      target: at(d.path),
    })),
    ...own.map((entry): ContextEntry => ({
      kind: entry.kind,
      source: entry.source,
      target: at(entry.at),
    })),
  ];
}

/** Is this local folder a Poetry project, which `poetry build` can build without a network? */
function isPoetryProject(folder: string, context: IdentifyContext): boolean {
  const file = join(folder, "pyproject.toml");
  const parsed = context.isFile(file) ? readPoetryToml(context, file).table : undefined;
  if (parsed === undefined) return false;
  const backend = tableAt(parsed, "build-system")["build-backend"];
  return typeof tableAt(parsed, "tool", "poetry").name === "string" ||
    (typeof backend === "string" && backend.startsWith("poetry.core"));
}

/** The poetry project plugin. */
export const poetryProject = definePlugin<Options>({
  name: "poetry_project",
  version: 1,
  needsRoot: true,
  validate(options, context) {
    const problems: Diagnostic[] = [...extraArgsProblems(options.extraArgs)];
    const pyproject = context.resolve(options.pyprojectFile);
    if (!context.isFile(pyproject)) {
      problems.push({
        message: `pyproject file not found: ${pyproject}`,
        hint: "check the path; relative paths are relative to the spec file's folder",
        file: pyproject,
      });
    }
    const lock = lockFile(options, context);
    if (!context.isFile(lock)) {
      problems.push({
        message: `poetry.lock not found: ${lock}`,
        hint: "run `poetry lock` in the project, or pass poetryLock",
        file: lock,
      });
    }
    if (!["dependencies_only", "install_project"].includes(options.projectInstallMode)) {
      problems.push({
        message: `unknown projectInstallMode ${JSON.stringify(options.projectInstallMode)}`,
        hint: 'use "dependencies_only" or "install_project"',
      });
    }
    const { version, command } = settings(context);
    if (
      version !== undefined &&
      (typeof version !== "string" || !/^[0-9][0-9A-Za-z.*+!-]*$/.test(version))
    ) {
      problems.push({
        message: `[plugins.poetry_project] version ${JSON.stringify(version)} is not a version`,
      });
    }
    if (command !== undefined && typeof command !== "string") {
      problems.push({ message: "[plugins.poetry_project] command must be a string" });
    }
    const local = localDependencies(options, context);
    problems.push(...local.problems);
    for (const dependency of local.dependencies) {
      const outside = context.outsideProject(dependency.path, dependency.namedIn);
      // Names and paths reach the install step's shell text, which cannot carry them.
      // deno-lint-ignore no-control-regex
      const control = /[\x00-\x1f\x7f]/;
      if (control.test(dependency.name) || control.test(dependency.path)) {
        problems.push({
          message: `${dependency.namedIn} names ${
            JSON.stringify(dependency.path)
          }, whose name or path holds a control character`,
          hint: "rename the dependency or its folder",
          file: dependency.path,
        });
      } else if (outside) {
        problems.push(outside);
      } else if (!context.isFile(dependency.path) && !context.isDirectory(dependency.path)) {
        problems.push({
          message: `${dependency.namedIn} names ${dependency.path}, which does not exist`,
          hint: "fix the path (it is relative to the folder of the file that names it), " +
            "then run `poetry lock`",
          file: dependency.path,
        });
      }
    }
    problems.push(...demandProblems(options, context));
    return problems;
  },
  secrets: (options) => options.secretMounts,
  nextState: () => ({ extra: { [INSTALLED]: true } }),
  identify(options, context) {
    const pyproject = context.resolve(options.pyprojectFile);
    const projectDir = dirname(pyproject);
    const whole = options.projectInstallMode === "install_project";
    const place = layout(options, context);
    const poetryToml = join(projectDir, "poetry.toml");
    const local = [...place.folders, ...place.archives]
      .map((dependency) => ({
        path: relative(projectDir, dependency.path),
        name: dependency.name,
        content: context.isFile(dependency.path)
          ? context.file(dependency.path)
          : context.tree(dependency.path),
      }))
      .sort((a, b) => a.path < b.path ? -1 : 1);
    return {
      ...options,
      pyprojectFile: context.file(pyproject),
      poetryLock: context.file(lockFile(options, context)),
      project: whole ? context.tree(projectDir) : null,
      poetry: settings(context).command ?? settings(context).version ?? DEFAULT_POETRY_VERSION,
      installer: context.config.installer,
      ...environmentIdentity(context),
      // Keys added for what older versions did not render keep the tags they had.
      ...(local.length > 0 ? { localDependencies: local } : {}),
      ...(context.isFile(poetryToml) ? { poetryToml: context.file(poetryToml) } : {}),
      ...(whole
        ? { steps: "dependencies, then the project as a wheel built into a fresh dist" }
        : {}),
    };
  },
  render(options, context) {
    const pyproject = context.resolve(options.pyprojectFile);
    const projectDir = dirname(pyproject);
    const whole = options.projectInstallMode === "install_project";
    const place = layout(options, context);
    const poetry = poetryCommand(context);
    const cacheMounts = context.config.cacheMounts;
    const workdir = mounted(place, projectDir);
    const python = context.state.python ? shellQuote(context.state.python.python) : "python3";
    const reinstall = context.config.installer === "uv" ? "--reinstall" : "--force-reinstall";
    // Each step mounts one cache at most: buildah 1.28 keeps every `sharing=locked` cache of
    // a step but the last locked until the build ends, and a later step that asks for one
    // of those waits forever. Installing local wheels needs no cache.
    // (A copy of the configuration would read every setting, and settings read count in the
    // tag: only cacheMounts is overridden, the rest is read through.)
    const uncached = {
      ...context,
      config: Object.create(context.config, { cacheMounts: { value: false } }) as Config,
    };
    // Without a known environment both steps check for python3 first, once.
    const checkForPython = pythonCheck(context);
    const installLocal = (target: string) =>
      pipInstall(uncached, ["--no-deps", reinstall, target], {
        extraIndexUrls: [],
        pre: false,
        secretMounts: [],
      }, { checkedForPython: true });
    // Poetry's own build writes into dist/; a stale one from the host must not be installed.
    // Folder names come from disk: quoted, all but the wheel glob.
    const buildWheel = (folder: string) => [
      `rm -rf ${shellQuote(`${folder}/dist`)}`,
      `(cd ${shellQuote(folder)} && ${poetry} build --format wheel --no-interaction --no-cache)`,
      installLocal(`${shellQuote(`${folder}/dist`)}/*.whl`).command,
    ];
    const withMounts = (source: string, cache: readonly Mount[]): Mount[] => {
      const mounts: Mount[] = [
        { type: "bind", source, target: PROJECT_DIR, readwrite: true },
        ...cache,
      ];
      // The uv binary, when the image has none: a bind mount, not a cache.
      for (const mount of installLocal(PROJECT_DIR).mounts) {
        if (!mounts.some((m) => m.target === mount.target)) mounts.push(mount);
      }
      return mounts;
    };

    // Step 1: the locked dependencies, local ones as real packages.
    const dependencyDir = `${context.contextDir}/project`;
    const poetryToml = join(projectDir, "poetry.toml");
    const files = stagedFiles(place, dependencyDir, place.folders.map((d) => d.path), [
      { kind: "file", source: pyproject, at: join(projectDir, "pyproject.toml") },
      { kind: "file", source: lockFile(options, context), at: join(projectDir, "poetry.lock") },
      // Poetry's settings for the project (sources, installer options) apply as on the host.
      ...(context.isFile(poetryToml)
        ? [{ kind: "file" as const, source: poetryToml, at: poetryToml }]
        : []),
    ]);
    const install = [
      poetry,
      "install",
      "--no-root",
      "--no-interaction",
      // Without a cache mount, Poetry's cache would stay in the layer.
      ...(cacheMounts ? [] : ["--no-cache"]),
      ...(options.extraArgs ? [options.extraArgs] : []),
    ].join(" ");
    // Poetry installs into the environment VIRTUAL_ENV names (with virtualenvs.create off,
    // it would otherwise take the one its own interpreter was made from): without a known
    // venv, python3's, so that every layer's packages end up where python3 finds them.
    const dependencySteps = [
      ...targetEnvironment(context, "VIRTUAL_ENV").commands,
      `cd ${shellQuote(workdir)}`,
      install,
    ];
    for (const folder of place.folders) {
      const at = mounted(place, folder.path);
      const build = isPoetryProject(folder.path, context)
        ? buildWheel(at)
        : [installLocal(shellQuote(at)).command];
      dependencySteps.push(
        `if ${python} -c "$IMGTOOL_POETRY_EDITABLE" ${shellQuote(folder.name)}; then ${
          build.join(" && ")
        }; fi`,
      );
    }
    const local = place.folders.length > 0;
    const instructions = [
      ...installPoetry(context),
      ...(local
        ? ["# Local path dependencies Poetry installed editable are reinstalled as wheels."]
        : []),
      run(dependencySteps, {
        mounts: withMounts(
          dependencyDir,
          cacheMounts
            ? [{ type: "cache", target: "/root/.cache/pypoetry", id: "imgtool-poetry" }]
            : [],
        ),
        secrets: options.secretMounts,
        env: {
          POETRY_VIRTUALENVS_CREATE: "false",
          POETRY_CACHE_DIR: "/root/.cache/pypoetry",
          ...(cacheMounts ? {} : { POETRY_NO_CACHE: "1" }),
          // Poetry 1.x installs with pip, which must be let into an externally managed Python.
          ...pipEnvironment(context),
          ...(local ? { ...installLocal(PROJECT_DIR).env } : {}),
          ...(local ? { IMGTOOL_POETRY_EDITABLE: EDITABLE_CHECK } : {}),
        },
      }),
    ];

    // Step 2 (install_project): the project itself, built from its whole folder.
    if (whole) {
      const sourceDir = `${context.contextDir}/source`;
      files.push(
        ...stagedFiles(
          place,
          sourceDir,
          [projectDir, ...place.folders.map((d) => d.path)],
          [{ kind: "tree", source: projectDir, at: projectDir }],
        ),
      );
      instructions.push(run([...checkForPython, ...buildWheel(workdir)], {
        mounts: withMounts(sourceDir, []),
        secrets: options.secretMounts,
        env: {
          POETRY_VIRTUALENVS_CREATE: "false",
          // Whatever Poetry keeps while building stays in the mount, which the step drops.
          POETRY_CACHE_DIR: `${PROJECT_DIR}/.imgtool-poetry-cache`,
          ...installLocal(PROJECT_DIR).env,
        },
      }));
    }
    return { instructions, context: files };
  },
}, { module: import.meta.url });

export default poetryProject;
