/**
 * `withUvProject`: install a uv project into the image's Python environment.
 *
 * - `dependencies_only` (default): only `pyproject.toml` and `uv.lock` are mounted into the
 *   step, and the locked dependencies are installed without the project, so editing the
 *   project's code does not rebuild this layer.
 * - `install_project`: the whole project folder (minus `.dockerignore` exclusions) is
 *   mounted and installed, not editable; its sources do not stay in the image.
 *
 * Without a lock file, the dependencies of `pyproject.toml` are resolved at build time.
 *
 * @module
 */

import { parse as parseToml } from "smol-toml";
import {
  definePlugin,
  type Diagnostic,
  type IdentifyContext,
  paths,
  run,
  shellQuote,
  shellQuoteExpanding,
} from "../mod.ts";
import {
  indexArgs,
  indexProblems,
  type IndexSettings,
  installerCache,
  installerIdentity,
  pipInstall,
  projectContext,
  uvCommand,
  uvMount,
} from "./shared/python.ts";

const { basename, dirname, join } = paths;

/** How the project is installed. */
export type InstallMode = "dependencies_only" | "install_project";

/** The layer's options. */
export interface Options extends IndexSettings {
  /** The project's `pyproject.toml`, relative to the spec's folder. */
  readonly pyprojectFile: string;
  /** The lock file; default `uv.lock` beside the pyproject, when there is one. */
  readonly uvlock?: string;
  /** Dependencies only, or the project too. */
  readonly projectInstallMode: InstallMode;
}

/** Where the project is mounted in the install step. */
export const PROJECT_DIR = "/tmp/imgtool-uv-project";

/** The lock file in use, or `undefined` when the project has none. */
export function lockFile(options: Options, context: IdentifyContext): string | undefined {
  if (options.uvlock !== undefined) return context.resolve(options.uvlock);
  const beside = join(dirname(context.resolve(options.pyprojectFile)), "uv.lock");
  return context.isFile(beside) ? beside : undefined;
}

/**
 * The `[project] dependencies` of a pyproject.toml text; none when it cannot be read or
 * parsed (validation and the installer report those).
 */
export function projectDependencies(text: string | undefined): string[] {
  if (text === undefined) return [];
  try {
    const project = (parseToml(text) as { project?: { dependencies?: unknown } }).project;
    const dependencies = project?.dependencies;
    return Array.isArray(dependencies)
      ? dependencies.filter((item): item is string => typeof item === "string")
      : [];
  } catch {
    return [];
  }
}

/** The uv project plugin. */
export const uvProject = definePlugin<Options>({
  name: "uv_project",
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
    return problems;
  },
  secrets: (options) => options.secretMounts,
  identify(options, context) {
    const lock = lockFile(options, context);
    const pyproject = context.resolve(options.pyprojectFile);
    return {
      ...options,
      pyprojectFile: context.file(pyproject),
      uvlock: lock ? context.file(lock) : null,
      project: options.projectInstallMode === "install_project"
        ? context.tree(dirname(pyproject))
        : null,
      // With a lock, uv syncs whatever the installer setting.
      ...installerIdentity(context, lock ? "uv" : context.config.installer),
    };
  },
  render(options, context) {
    const pyproject = context.resolve(options.pyprojectFile);
    const lock = lockFile(options, context);
    const whole = options.projectInstallMode === "install_project";
    const files = projectContext(
      context.contextDir,
      pyproject,
      whole,
      lock ? { path: lock, name: "uv.lock" } : undefined,
    );
    const projectMount = {
      type: "bind" as const,
      source: `${context.contextDir}/project`,
      target: PROJECT_DIR,
      readwrite: true,
    };
    const pyprojectName = whole ? basename(pyproject) : "pyproject.toml";
    if (!lock) {
      // No lock: let the installer resolve what pyproject.toml asks for. uv reads the
      // dependencies from pyproject.toml itself; pip cannot (`-r` takes requirements files
      // only), so it is given them as arguments.
      const ids = options.secretMounts.filter((secret) => secret.asEnvVar).map((s) => s.variable);
      const args = whole
        ? [PROJECT_DIR]
        : context.config.installer === "uv"
        ? ["-r", shellQuote(`${PROJECT_DIR}/${pyprojectName}`)]
        : projectDependencies(context.readText(pyproject)).map((dependency) =>
          shellQuoteExpanding(dependency.trim(), ids)
        );
      if (args.length === 0) {
        return { instructions: ["# (the project declares no dependencies)"] };
      }
      const step = pipInstall(context, args, options);
      return {
        instructions: [run(step.command, {
          mounts: [projectMount, ...step.mounts],
          secrets: options.secretMounts,
          env: step.env,
        })],
        context: files,
      };
    }
    const sync = [
      `cd ${PROJECT_DIR}`,
      [
        uvCommand(context),
        "sync",
        "--locked",
        "--no-editable",
        ...(whole ? [] : ["--no-install-project"]),
        // Without a cache mount, uv's cache would stay in the layer.
        ...(context.config.cacheMounts ? [] : ["--no-cache"]),
        ...indexArgs({ ...context, config: { ...context.config, installer: "uv" } }, options),
      ].join(" "),
    ];
    return {
      instructions: [run(sync, {
        mounts: [projectMount, ...installerCache(context, "uv"), ...uvMount(context)],
        secrets: options.secretMounts,
        env: {
          UV_LINK_MODE: "copy",
          UV_PYTHON_DOWNLOADS: "never",
          UV_PROJECT_ENVIRONMENT: context.state.python?.venv ?? "/opt/venv",
        },
      })],
      context: files,
    };
  },
}, { module: import.meta.url });

export default uvProject;
