/**
 * `withUvProject`: install a uv project into the image's Python environment, as uv users
 * install it.
 *
 * - `dependencies_only` (default): the project's `pyproject.toml` and lock are mounted into
 *   the step, and its dependencies installed without the project itself, so editing the
 *   project's code does not rebuild this layer.
 * - `install_project`: the same step, then a later one that mounts the whole project folder
 *   (minus `.dockerignore` exclusions) and installs the project, not editable; editing the
 *   project's code reuses the dependency layer, and its sources do not stay in the image.
 *
 * In both modes the step also gets what uv needs besides: the workspace the project belongs
 * to (the root's and every member's `pyproject.toml`), `uv.toml`, and the whole folder of each
 * local package it installs (`[tool.uv.sources]` path sources and workspace members, as the
 * sources and the lock name them), all laid out as on disk.
 *
 * With a `uv.lock`, `uv sync` installs it (`--inexact`, so packages of earlier layers stay;
 * the default dependency groups, as uv's own default; `--no-install-project` in the
 * dependencies' step); without one, `uv pip install` (or pip) installs what `uv sync` would,
 * the project itself with `--no-deps` after its dependencies.
 *
 * Every step installs into the environment the image's other Python layers use: the known
 * venv of the Debian base recipe, else the environment of the image's `python3`
 * (`UV_PROJECT_ENVIRONMENT` set to its `sys.prefix`, as uv's docs say to target a system
 * environment), after a check that the image has one.
 *
 * @module
 */

import { parse as parseToml } from "smol-toml";
import {
  type ContextEntry,
  definePlugin,
  type Diagnostic,
  type IdentifyContext,
  paths,
  type RenderContext,
  run,
  shellQuote,
  shellQuoteExpanding,
} from "../contract.ts";
import {
  environmentIdentity,
  indexArgs,
  indexProblems,
  type IndexSettings,
  installerCache,
  installerIdentity,
  pipInstall,
  pythonCheck,
  targetEnvironment,
  uvCommand,
  uvMount,
} from "./shared/python.ts";
import { isTable, readToml, stringsOf, tableAt } from "./shared/toml_file.ts";
import {
  lockCheckFlag,
  requiredUvVersions,
  requiresPythonProblem,
  uvVersionProblem,
} from "./shared/uv.ts";
import { pipArgs, uvPipArgs } from "./shared/uv_pip.ts";
import { selectionFor, shellWords } from "./shared/uv_selection.ts";
import {
  insideBoundary,
  readUvProject,
  type UvLayout,
  uvLayout,
  type UvProjectFiles,
} from "./shared/uv_workspace.ts";

const { join } = paths;

/** How the project is installed. */
export type InstallMode = "dependencies_only" | "install_project";

/** The layer's options. */
export interface Options extends IndexSettings {
  /** The project's `pyproject.toml`, relative to the spec's folder. */
  readonly pyprojectFile: string;
  /** The lock file; default `uv.lock` at the workspace root or beside the pyproject. */
  readonly uvlock?: string;
  /** Dependencies only, or the project too. */
  readonly projectInstallMode: InstallMode;
}

/** Where the project's layout is mounted in the install step. */
export const PROJECT_DIR = "/tmp/imgtool-uv-project";

/**
 * The `[project] dependencies` of a pyproject.toml text; none when it cannot be read or
 * parsed (validation and the installer report those).
 *
 * @example
 * ```ts
 * import { projectDependencies } from "./uv_project.ts";
 * console.log(projectDependencies('[project]\nname = "x"\ndependencies = ["rich"]\n')); // [ "rich" ]
 * ```
 */
export function projectDependencies(text: string | undefined): string[] {
  if (text === undefined) return [];
  try {
    return stringsOf(tableAt(parseToml(text), "project").dependencies);
  } catch {
    return [];
  }
}

/** The project as its files describe it. */
function projectOf(options: Options, context: IdentifyContext): UvProjectFiles {
  return readUvProject(
    context,
    context.resolve(options.pyprojectFile),
    options.uvlock === undefined ? undefined : context.resolve(options.uvlock),
  );
}

/**
 * The files of an install step, the project's whole folder (`wholeProject`) or only what
 * its dependencies need: only what exists inside the project boundary.
 */
function layoutOf(
  project: UvProjectFiles,
  wholeProject: boolean,
  context: IdentifyContext,
): UvLayout {
  return uvLayout(
    project,
    wholeProject,
    (path, kind) =>
      insideBoundary(context, path) &&
      (kind === "tree" ? context.isDirectory(path) : context.isFile(path)),
  );
}

/** Where the step sees a path of the layout. */
function inStep(layout: UvLayout, path: string): string {
  const at = paths.relative(layout.root, path);
  return at === "" ? PROJECT_DIR : `${PROJECT_DIR}/${at}`;
}

function secretIds(options: Options): string[] {
  return options.secretMounts.filter((secret) => secret.asEnvVar).map((secret) => secret.variable);
}

/** The uv project plugin. */
export const uvProject = definePlugin<Options>({
  name: "uv_project",
  // 2: workspaces and path sources reach the step, `uv sync --inexact`, --locked or --frozen
  // by the lock, and without a lock the extras and groups `uv sync` would install.
  version: 2,
  needsRoot: true,
  validate(options, context) {
    const problems: Diagnostic[] = [...indexProblems(options)];
    const pyproject = context.resolve(options.pyprojectFile);
    if (!context.isFile(pyproject)) {
      problems.push({
        message: `pyproject file not found: ${pyproject}`,
        hint: "check the path; relative paths are relative to the spec file's folder",
        file: pyproject,
      });
    }
    if (options.uvlock !== undefined && !context.isFile(options.uvlock)) {
      problems.push({
        message: `uv.lock not found: ${context.resolve(options.uvlock)}`,
        file: context.resolve(options.uvlock),
      });
    }
    if (!["dependencies_only", "install_project"].includes(options.projectInstallMode)) {
      problems.push({
        message: `unknown projectInstallMode ${JSON.stringify(options.projectInstallMode)}`,
        hint: 'use "dependencies_only" or "install_project"',
      });
    }
    if (!context.isFile(pyproject)) return problems;

    const read = readToml(context, pyproject);
    if (read instanceof Error) {
      return [...problems, {
        message: `${pyproject} is not valid TOML: ${read.message}`,
        hint: "fix the file; uv reads it too",
        file: pyproject,
      }];
    }
    const project = projectOf(options, context);
    const lock = project.lock;
    const lockRead = lock ? readToml(context, lock.path) : undefined;
    if (lock && lockRead instanceof Error) {
      problems.push({
        message: `${lock.path} is not valid TOML: ${lockRead.message}`,
        hint: "regenerate it with uv lock",
        file: lock.path,
      });
    }
    // Paths the project's files name: they must exist and lie inside the project.
    for (const local of [...project.locals, ...project.members]) {
      if (!context.isDirectory(local.path) && !context.isFile(local.path)) {
        problems.push({
          message: `${local.namedIn} names ${local.path}, which does not exist`,
          hint: `fix the path in ${local.file}`,
          file: local.file,
        });
        continue;
      }
      const outside = context.outsideProject(local.path, local.namedIn);
      if (outside) problems.push(outside);
    }
    // uv runs with a lock, or as the installer: it demands its version before anything.
    if (lock || context.config.installer === "uv") {
      const dirs = [project.dir, ...(project.workspace ? [project.workspace.root] : [])];
      for (const demand of requiredUvVersions(context, dirs)) {
        const problem = uvVersionProblem(demand, context.config.images.uv);
        if (problem) problems.push(problem);
      }
    }
    const python = context.state.python?.version;
    if (python) {
      const demands: [string, unknown][] = [
        [pyproject, tableAt(project.table, "project")["requires-python"]],
        ...(lock?.table ? [[lock.path, lock.table["requires-python"]] as [string, unknown]] : []),
      ];
      for (const [file, specifier] of demands) {
        if (typeof specifier !== "string") continue;
        const problem = requiresPythonProblem(file, specifier, python);
        if (problem) problems.push(problem);
      }
    }
    if (!lock) {
      const selection = selectionFor(project.table ?? {}, options.extraArgs);
      problems.push(...selection.problems);
      if (context.config.installer === "pip") {
        // The dependencies are installed in a step of their own in both modes.
        const layout = layoutOf(project, false, context);
        problems.push(
          ...pipArgs(
            project,
            selection,
            inStep(layout, project.dir),
            false,
            (path) => inStep(layout, path),
            secretIds(options),
          ).problems,
        );
      }
    }
    return problems;
  },
  secrets: (options) => options.secretMounts,
  identify(options, context) {
    const project = projectOf(options, context);
    // The whole project's layout holds everything the dependencies' step takes too.
    const whole = options.projectInstallMode === "install_project";
    const layout = layoutOf(project, whole, context);
    return {
      ...options,
      pyprojectFile: context.file(project.pyproject),
      uvlock: project.lock ? context.file(project.lock.path) : null,
      // Where each file goes counts; where the project is on this machine does not.
      projectAt: layout.projectAt,
      layout: layout.entries.map((entry) => ({
        at: entry.at,
        content: entry.kind === "tree" ? context.tree(entry.source) : context.file(entry.source),
      })),
      // With a lock, uv syncs whatever the installer setting.
      ...installerIdentity(context, project.lock ? "uv" : context.config.installer),
      ...environmentIdentity(context),
      // Keys added for what older versions did not render keep the tags they had.
      ...(whole ? { steps: "dependencies, then the project" } : {}),
    };
  },
  render(options, context) {
    const project = projectOf(options, context);
    const step = (wholeProject: boolean) =>
      project.lock
        ? syncStep(project, options, context, wholeProject)
        : pipStep(project, options, context, wholeProject);
    // Dependencies first, in a step of their own: editing the project's code reuses it;
    // then, in `install_project` mode, the project itself from its whole folder.
    const steps = [
      step(false),
      ...(options.projectInstallMode === "install_project" ? [step(true)] : []),
    ]
      .filter((found) => found !== undefined);
    if (steps.length === 0) {
      return { instructions: ["# (the project declares no dependencies)"] };
    }
    return {
      instructions: steps.map((step) => step.instruction),
      context: steps.flatMap((step) => step.files),
    };
  },
}, { module: import.meta.url });

/** One install step: its `RUN` instruction and the files it mounts. */
interface Step {
  readonly instruction: string;
  readonly files: ContextEntry[];
}

/**
 * The files of a step's layout in the build context, under `<contextDir>/<folder>`, and the
 * mount that shows them to the step at {@link PROJECT_DIR}.
 */
function staged(layout: UvLayout, context: RenderContext, folder: string) {
  const target = `${context.contextDir}/${folder}`;
  return {
    files: layout.entries.map((entry): ContextEntry => ({
      kind: entry.kind,
      source: entry.source,
      target: `${target}${entry.at === "" ? "" : `/${entry.at}`}`,
    })),
    mount: { type: "bind" as const, source: target, target: PROJECT_DIR, readwrite: true },
  };
}

/**
 * Without a lock: `uv pip install` (or pip) of what pyproject.toml asks for, with the extras
 * and groups `uv sync` would install (`wholeProject` false), or of the project alone, with
 * `--no-deps`, since the step before installed its dependencies (`wholeProject` true).
 * `undefined` when there is nothing to install.
 */
function pipStep(
  project: UvProjectFiles,
  options: Options,
  context: RenderContext,
  wholeProject: boolean,
): Step | undefined {
  const selection = selectionFor(project.table ?? {}, options.extraArgs);
  const ids = secretIds(options);
  const words = shellWords(options.extraArgs ?? "");
  // The user's words stay as written unless selection options were taken out of them.
  const extraArgs = selection.rest.length === words.length
    ? options.extraArgs
    : selection.rest.map((word) => shellQuoteExpanding(word, ids)).join(" ") || undefined;
  const layout = layoutOf(project, wholeProject, context);
  const projectInStep = inStep(layout, project.dir);
  let args: readonly string[];
  if (wholeProject) {
    // `--only-group` installs no project (as `uv sync --only-group`).
    if (!selection.project) return undefined;
    const noDeps = selection.rest.includes("--no-deps") ? [] : ["--no-deps"];
    args = [...noDeps, shellQuote(projectInStep)];
  } else {
    args = (context.config.installer === "uv" ? uvPipArgs : pipArgs)(
      project,
      selection,
      projectInStep,
      false,
      (path) => inStep(layout, path),
      ids,
    ).args;
    if (args.length === 0) return undefined;
  }
  const step = pipInstall(context, args, { ...options, extraArgs }, { checkedForPython: true });
  const { files, mount } = staged(layout, context, wholeProject ? "source" : "project");
  return {
    instruction: run([...pythonCheck(context), `cd ${shellQuote(projectInStep)}`, step.command], {
      mounts: [mount, ...step.mounts],
      secrets: options.secretMounts,
      env: step.env,
    }),
    files,
  };
}

/**
 * With a lock: `uv sync --inexact` into the image's environment, of the locked dependencies
 * only (`--no-install-project`), or of the project from its whole folder (`wholeProject`),
 * as uv's Docker guide has it (intermediate layers).
 */
function syncStep(
  project: UvProjectFiles,
  options: Options,
  context: RenderContext,
  wholeProject: boolean,
): Step {
  const lock = project.lock!;
  const layout = layoutOf(project, wholeProject, context);
  const dynamic = (table: unknown) => stringsOf(tableAt(table, "project").dynamic).length > 0;
  const check = lockCheckFlag({
    lock: lock.table ?? {},
    indexUrl: options.indexUrl,
    extraIndexUrls: options.extraIndexUrls,
    extraArgs: options.extraArgs,
    settings: [
      project.table ?? {},
      ...(project.workspace ? [project.workspace.table] : []),
      ...[project.dir, project.workspace?.root ?? project.dir].flatMap((dir) => {
        const table = readToml(context, join(dir, "uv.toml"));
        return isTable(table) ? [table] : [];
      }),
    ],
    // uv cannot check a lock against a workspace member it would have to build to know.
    dynamicWithoutSources: (!wholeProject && dynamic(project.table)) ||
      [
        ...project.members.map((member) => member.path),
        ...(project.workspace && project.workspace.root !== project.dir
          ? [project.workspace.root]
          : []),
      ].some((dir) =>
        !layout.entries.some((entry) =>
          entry.kind === "tree" && `${dir}/`.startsWith(`${entry.source}/`)
        ) && dynamic(readToml(context, join(dir, "pyproject.toml")))
      ),
  });
  const name = tableAt(project.table, "project")["name"];
  const memberName = project.workspace && project.workspace.root !== project.dir &&
      typeof name === "string"
    ? name
    : undefined;
  // The environment python3 uses (or the known venv): uv sync would make a venv of its own.
  const target = targetEnvironment(context, "UV_PROJECT_ENVIRONMENT");
  const sync = [
    ...target.commands,
    `cd ${shellQuote(inStep(layout, project.dir))}`,
    [
      uvCommand(context),
      "sync",
      ...(check ? [check] : []),
      // A member, named as uv's docs have it: `--package` picks a member from anywhere in
      // the workspace (the step also runs in the member's folder).
      ...(memberName ? ["--package", shellQuote(memberName)] : []),
      // uv sync is exact by default: it would remove what earlier layers installed.
      "--inexact",
      "--no-editable",
      ...(wholeProject ? [] : ["--no-install-project"]),
      // Without a cache mount, uv's cache would stay in the layer.
      ...(context.config.cacheMounts ? [] : ["--no-cache"]),
      ...indexArgs({ ...context, config: { ...context.config, installer: "uv" } }, options),
    ].join(" "),
  ];
  const { files, mount } = staged(layout, context, wholeProject ? "source" : "project");
  return {
    instruction: run(sync, {
      mounts: [mount, ...installerCache(context, "uv"), ...uvMount(context)],
      secrets: options.secretMounts,
      env: { UV_LINK_MODE: "copy", UV_PYTHON_DOWNLOADS: "never", ...target.env },
    }),
    files,
  };
}

/**
 * The lock in use (the one the spec names, else `uv.lock` at the workspace root or beside
 * the pyproject), or `undefined` when the project has none.
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage } from "imgtool";
 * import { lockFile, type Options } from "./uv_project.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/pyproject.toml`, '[project]\nname = "app"\nversion = "1"\n');
 * Deno.writeTextFileSync(`${dir}/uv.lock`, "version = 1\n");
 * const image = Image.fromDebianBase().withUvProject(`${dir}/pyproject.toml`);
 * const layer = image.layers[1];
 * const context = planImage(image, "default", defaultConfig()).layers[1].context;
 * console.log(lockFile(layer.options as Options, context) === `${dir}/uv.lock`); // true
 * ```
 */
export function lockFile(options: Options, context: IdentifyContext): string | undefined {
  return projectOf(options, context).lock?.path;
}

export default uvProject;
