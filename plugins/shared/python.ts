/**
 * What the Python layers (pip, requirements, uv script, uv project, poetry project) share:
 * how to install packages into the image's Python environment with the configured
 * installer, and how to check package and index options. Built only on the public API.
 *
 * @module
 */

import {
  type BindMount,
  type CacheMount,
  type ContextEntry,
  type Diagnostic,
  type Mount,
  paths,
  type PluginContext,
  type Secret,
  shellQuote,
  shellQuoteExpanding,
} from "../../mod.ts";

/** Index options as the layers keep them. */
export interface IndexSettings {
  readonly indexUrl?: string;
  readonly extraIndexUrls: readonly string[];
  readonly pre: boolean;
  readonly extraArgs?: string;
  readonly secretMounts: readonly Secret[];
}

/** An install command and the mounts it needs. */
export interface InstallStep {
  /** The shell command. */
  readonly command: string;
  /** Cache mounts and the uv binary mount. */
  readonly mounts: readonly Mount[];
  /** Variables for the step. */
  readonly env: Readonly<Record<string, string>>;
}

/** Where a uv binary is bind-mounted when the image has none of its own. */
export const UV_MOUNT_PATH = "/tmp/imgtool-uv/uv";

/** The mount that gives a step a `uv` binary from the configured uv image, if needed. */
export function uvMount(context: PluginContext): BindMount[] {
  return context.state.hasUv
    ? []
    : [{ type: "bind", from: context.config.images.uv, source: "/uv", target: UV_MOUNT_PATH }];
}

/** The `uv` command to call: the image's own, or the mounted one. */
export function uvCommand(context: PluginContext): string {
  return context.state.hasUv ? "uv" : UV_MOUNT_PATH;
}

/**
 * The installer's part of a layer's identity: which installer runs the step, and the uv image
 * when the step mounts uv from it. Packages installed by uv and by pip differ, so switching
 * must change the tag; over the Debian base recipe the base already counts both, over other
 * bases (`fromBase`, `fromRefName`, `fromDockerfile`) only the layer can.
 */
export function installerIdentity(
  context: PluginContext,
  installer = context.config.installer,
): { installer: string; uvImage: string | null } {
  return {
    installer,
    uvImage: installer === "uv" && !context.state.hasUv ? context.config.images.uv : null,
  };
}

/** The cache mount for the configured installer, if cache mounts are on. */
export function installerCache(
  context: PluginContext,
  installer = context.config.installer,
): CacheMount[] {
  if (!context.config.cacheMounts) return [];
  return installer === "uv"
    ? [{ type: "cache", target: "/root/.cache/uv", id: "imgtool-uv" }]
    : [{ type: "cache", target: "/root/.cache/pip", id: "imgtool-pip" }];
}

/**
 * `pip install` (or `uv pip install`) of `args` into the image's Python environment,
 * with the index options. `args` are already shell words.
 */
export function pipInstall(
  context: PluginContext,
  args: readonly string[],
  index: IndexSettings,
): InstallStep {
  const python = context.state.python;
  const options = indexArgs(context, index);
  const noCache = context.config.cacheMounts
    ? []
    : [context.config.installer === "uv" ? "--no-cache" : "--no-cache-dir"];
  if (context.config.installer === "uv") {
    // Without a known environment: the image's python3 (a venv's, if it is on PATH).
    const target = python
      ? ["--python", shellQuote(python.python)]
      : ["--python", '"$(command -v python3)"', "--break-system-packages"];
    return {
      command: [uvCommand(context), "pip", "install", ...target, ...noCache, ...options, ...args]
        .join(" "),
      mounts: [...installerCache(context), ...uvMount(context)],
      env: { UV_LINK_MODE: "copy", UV_PYTHON_DOWNLOADS: "never" },
    };
  }
  const interpreter = python ? shellQuote(python.python) : "python3";
  return {
    command: [
      interpreter,
      "-m",
      "pip",
      "install",
      "--disable-pip-version-check",
      ...noCache,
      ...options,
      ...args,
    ]
      .join(" "),
    mounts: installerCache(context),
    env: {},
  };
}

/** The index options as installer arguments. */
export function indexArgs(context: PluginContext, index: IndexSettings): string[] {
  const secretIds = index.secretMounts.filter((secret) => secret.asEnvVar).map((secret) =>
    secret.variable
  );
  const quote = (value: string) => shellQuoteExpanding(value, secretIds);
  const uv = context.config.installer === "uv";
  return [
    ...(index.indexUrl ? ["--index-url", quote(index.indexUrl)] : []),
    ...index.extraIndexUrls.flatMap((url) => ["--extra-index-url", quote(url)]),
    ...(index.pre ? [uv ? "--prerelease=allow" : "--pre"] : []),
    // Extra arguments are the user's shell words, by contract.
    ...(index.extraArgs ? [index.extraArgs] : []),
  ];
}

// PEP 508 names, optionally with extras and a version specifier, or a direct reference.
const REQUIREMENT =
  /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?:\s*\[[A-Za-z0-9._,\s-]*\])?\s*(?:[<>=!~;@ ].*)?$/;
const DIRECT = /^(?:git\+)?(?:https?|ssh|file):\/\//;

/** Problems with the given requirement strings. */
export function requirementProblems(packages: readonly string[]): Diagnostic[] {
  if (packages.length === 0) {
    return [{ message: "no packages given", hint: "name at least one package" }];
  }
  return packages.flatMap((requirement): Diagnostic[] => {
    // Control characters are reported where the text came from: by the core for options
    // (it names the option), by the plugin that read a file for the file's lines.
    // deno-lint-ignore no-control-regex
    if (/[\x00-\x1f\x7f]/.test(requirement)) return [];
    const text = requirement.trim();
    if (text.startsWith("-")) {
      return [{
        message: `package ${JSON.stringify(requirement)} looks like an option`,
        hint: "pass installer options in extraArgs, not as packages",
      }];
    }
    if (!REQUIREMENT.test(text) && !DIRECT.test(text)) {
      return [{
        message: `package ${JSON.stringify(requirement)} is not a valid requirement`,
        hint: 'use pip\'s syntax: "name", "name==1.2", "name[extra]>=1", or a URL',
      }];
    }
    return [];
  });
}

/** Problems with index URLs. */
export function indexProblems(index: IndexSettings): Diagnostic[] {
  const urls = [...(index.indexUrl ? [index.indexUrl] : []), ...index.extraIndexUrls];
  return [
    ...extraArgsProblems(index.extraArgs),
    ...urls.flatMap((url): Diagnostic[] => {
      try {
        const parsed = new URL(url.replace(/\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/g, "x"));
        if (!["http:", "https:", "file:"].includes(parsed.protocol)) throw new Error("protocol");
        return [];
      } catch {
        return [{ message: `index URL ${JSON.stringify(url)} is not an http(s) or file URL` }];
      }
    }),
  ];
}

/**
 * Problems of `extraArgs`, shell words the user writes: a trailing `\` would continue the
 * Dockerfile line into the next instruction. (Control characters are the core's to report.)
 *
 * @example
 * ```ts
 * import { extraArgsProblems } from "./python.ts";
 * console.log(extraArgsProblems("--no-deps").length, extraArgsProblems("--no-deps \\").length); // 0 1
 * ```
 */
export function extraArgsProblems(extraArgs: string | undefined): Diagnostic[] {
  if (extraArgs === undefined || !/\\\s*$/.test(extraArgs)) return [];
  return [{
    message: `extraArgs ${JSON.stringify(extraArgs)} ends in \\, which would join the next ` +
      "Dockerfile instruction to the install step",
    hint: "remove the \\ at the end",
  }];
}

/**
 * The build-context files of a Python project layer, under `<contextDir>/project`: the whole
 * project folder (`install_project`), or only its `pyproject.toml` and its lock file, when
 * there is one, under the name `lockName`.
 *
 * @example
 * ```ts
 * import { projectContext } from "./python.ts";
 * const files = projectContext(".imgtool/02-poetry", "/work/app/pyproject.toml", false, {
 *   path: "/work/app/poetry.lock",
 *   name: "poetry.lock",
 * });
 * console.log(files.map((file) => file.target));
 * // [ ".imgtool/02-poetry/project/pyproject.toml", ".imgtool/02-poetry/project/poetry.lock" ]
 * ```
 */
export function projectContext(
  contextDir: string,
  pyproject: string,
  wholeProject: boolean,
  lock: { readonly path: string; readonly name: string } | undefined,
): ContextEntry[] {
  const target = `${contextDir}/project`;
  if (wholeProject) {
    return [{ kind: "tree", source: paths.dirname(pyproject), target }];
  }
  return [
    { kind: "file", source: pyproject, target: `${target}/pyproject.toml` },
    ...(lock
      ? [{ kind: "file" as const, source: lock.path, target: `${target}/${lock.name}` }]
      : []),
  ];
}
