/**
 * `withPoetryProject`: install a Poetry project into the image's Python environment.
 *
 * - `dependencies_only` (default): `pyproject.toml` and `poetry.lock` are mounted into the
 *   step and `poetry install --no-root` installs the locked dependencies.
 * - `install_project`: the whole project folder is mounted; the dependencies are installed,
 *   then the project is built as a wheel and installed (not editable), so its sources do not
 *   stay in the image.
 *
 * Poetry itself is installed once per image into `/opt/poetry` (version from
 * `[plugins.poetry_project] version`), or, with `[plugins.poetry_project] command`, taken
 * from the image as is. Poetry's cache is on a cache mount. Secrets reach the install step.
 *
 * @module
 */

import {
  definePlugin,
  type Diagnostic,
  type IdentifyContext,
  type Mount,
  paths,
  type PluginContext,
  run,
  type Secret,
  shellQuote,
} from "../mod.ts";
import { extraArgsProblems, pipInstall, projectContext, uvCommand } from "./shared/python.ts";

const { dirname, join } = paths;

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
/** Where the project is mounted in the install step. */
export const PROJECT_DIR = "/tmp/imgtool-poetry-project";
/** Where Poetry is installed. */
export const POETRY_HOME = "/opt/poetry";
const INSTALLED = "poetry_project.installed";

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
  const tool = {
    ...context,
    state: {
      ...context.state,
      python: { version: context.image.pythonVersion, python: `${POETRY_HOME}/bin/python` },
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
  return [run([makeVenv, step.command], {
    mounts: context.config.installer === "uv" ? [...step.mounts] : step.mounts,
    env: step.env,
  })];
}

/** The poetry project plugin. */
export const poetryProject = definePlugin<Options>({
  name: "poetry_project",
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
    return problems;
  },
  secrets: (options) => options.secretMounts,
  nextState: () => ({ extra: { [INSTALLED]: true } }),
  identify(options, context) {
    const pyproject = context.resolve(options.pyprojectFile);
    return {
      ...options,
      pyprojectFile: context.file(pyproject),
      poetryLock: context.file(lockFile(options, context)),
      project: options.projectInstallMode === "install_project"
        ? context.tree(dirname(pyproject))
        : null,
      poetry: settings(context).command ?? settings(context).version ?? DEFAULT_POETRY_VERSION,
      installer: context.config.installer,
    };
  },
  render(options, context) {
    const pyproject = context.resolve(options.pyprojectFile);
    const whole = options.projectInstallMode === "install_project";
    const files = projectContext(context.contextDir, pyproject, whole, {
      path: lockFile(options, context),
      name: "poetry.lock",
    });
    const poetry = poetryCommand(context);
    const install = [
      poetry,
      "install",
      "--no-root",
      "--no-interaction",
      // Without a cache mount, Poetry's cache would stay in the layer.
      ...(context.config.cacheMounts ? [] : ["--no-cache"]),
      ...(options.extraArgs ? [options.extraArgs] : []),
    ]
      .join(" ");
    const commands = [`cd ${PROJECT_DIR}`, install];
    const mounts: Mount[] = [
      {
        type: "bind" as const,
        source: `${context.contextDir}/project`,
        target: PROJECT_DIR,
        readwrite: true,
      },
      ...(context.config.cacheMounts
        ? [{ type: "cache" as const, target: "/root/.cache/pypoetry", id: "imgtool-poetry" }]
        : []),
    ];
    let env: Record<string, string> = {
      POETRY_VIRTUALENVS_CREATE: "false",
      POETRY_CACHE_DIR: "/root/.cache/pypoetry",
      ...(context.config.cacheMounts ? {} : { POETRY_NO_CACHE: "1" }),
    };
    if (whole) {
      // Poetry installs the project itself editable; build a wheel and install that instead.
      const wheel = pipInstall(context, ["--no-deps", `${PROJECT_DIR}/dist/*.whl`], {
        extraIndexUrls: [],
        pre: false,
        secretMounts: [],
      });
      commands.push(
        `${poetry} build --format wheel --no-interaction${
          context.config.cacheMounts ? "" : " --no-cache"
        }`,
        wheel.command,
      );
      mounts.push(
        ...wheel.mounts.filter((mount) => !mounts.some((m) => m.target === mount.target)),
      );
      env = { ...env, ...wheel.env };
    }
    return {
      instructions: [
        ...installPoetry(context),
        run(commands, { mounts, secrets: options.secretMounts, env }),
      ],
      context: files,
    };
  },
}, { module: import.meta.url });

export default poetryProject;
