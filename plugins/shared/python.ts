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
} from "../../contract.ts";

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

/**
 * The mount that gives a step a `uv` binary from the configured uv image (as `imgtool.lock`
 * pins it), if needed.
 */
export function uvMount(context: PluginContext): BindMount[] {
  if (context.state.hasUv) return [];
  const from = context.pinned(context.config.images.uv);
  return [{ type: "bind", from, source: "/uv", target: UV_MOUNT_PATH }];
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
 * The first command of an install step on a base whose Python imgtool does not know: it fails
 * the step with what to do when the image has no `python3` (the failure report names the
 * layer and the spec line).
 *
 * @example
 * ```ts
 * import { NEEDS_PYTHON } from "./python.ts";
 * console.log(NEEDS_PYTHON.startsWith("{ command -v python3")); // true
 * ```
 */
// A group of its own, so that it binds as one command between the step's other `&&`s.
export const NEEDS_PYTHON: string = `{ command -v python3 >/dev/null 2>&1 || { printf '%s\\n' ${
  shellQuote(
    "imgtool: this layer installs Python packages, and the base image has no python3 on " +
      "PATH: start from Image.fromDebianBase(), or install Python first " +
      '(withAptPackages(["python3", "python3-venv", "python3-pip"]))',
  )
} >&2; exit 1; }; }`;

/**
 * The commands a step that uses the image's `python3` runs first: {@link NEEDS_PYTHON} when
 * imgtool knows no Python environment of the image, else none.
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage } from "imgtool";
 * import { NEEDS_PYTHON, pythonCheck } from "./python.ts";
 * const on = (image: Image) => planImage(image.withPipPackages("rich"), "x", defaultConfig()).layers[1].context;
 * console.log(pythonCheck(on(Image.fromBase("debian:bookworm")))[0] === NEEDS_PYTHON); // true
 * console.log(pythonCheck(on(Image.fromDebianBase()))); // []
 * ```
 */
export function pythonCheck(context: PluginContext): string[] {
  return context.state.python ? [] : [NEEDS_PYTHON];
}

/**
 * Whether imgtool knows the virtual environment the image's layers install into (the Debian
 * base recipe's `/opt/venv`). When it does not, steps install into the environment of the
 * image's `python3` (a venv's, when one is first on `PATH`), which may be the system's:
 * Debian's is marked externally managed (PEP 668), and installing into it must be allowed.
 */
function knowsVenv(context: PluginContext): boolean {
  return context.state.python?.venv !== undefined;
}

/** The interpreter whose environment a step installs into, as a shell word. */
function interpreter(context: PluginContext): string {
  return context.state.python ? shellQuote(context.state.python.python) : "python3";
}

/**
 * The environment variables that let pip install into an environment imgtool knows no venv
 * of: `PIP_BREAK_SYSTEM_PACKAGES` (pip 23.0.1 and later honour it; older pips, which know
 * no PEP 668, ignore it, where the `--break-system-packages` flag would fail them).
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage } from "imgtool";
 * import { pipEnvironment } from "./python.ts";
 * const plan = planImage(Image.fromBase("debian:bookworm").withPipPackages("rich"), "x", defaultConfig());
 * console.log(pipEnvironment(plan.layers[1].context)); // { PIP_BREAK_SYSTEM_PACKAGES: "1" }
 * ```
 */
export function pipEnvironment(context: PluginContext): Record<string, string> {
  return knowsVenv(context) ? {} : { PIP_BREAK_SYSTEM_PACKAGES: "1" };
}

/** How a step names the environment it installs into, in a variable of a tool's. */
export interface TargetEnvironment {
  /** Commands to run first: the check for python3, then the variable set and exported. */
  readonly commands: readonly string[];
  /** The variable, when its value is known when rendering (a known venv). */
  readonly env: Readonly<Record<string, string>>;
}

/**
 * Set `variable` (`UV_PROJECT_ENVIRONMENT`, Poetry's `VIRTUAL_ENV`) to the environment the
 * image's layers install into: the known venv, else the prefix of the image's interpreter
 * (`sys.prefix`: a venv's folder, or the Python installation's prefix such as `/usr`),
 * computed in the step, after the check that the image has a `python3`.
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage } from "imgtool";
 * import { NEEDS_PYTHON, targetEnvironment } from "./python.ts";
 * const on = (image: Image) => planImage(image, "x", defaultConfig()).layers[1].context;
 * const recipe = on(Image.fromDebianBase().withPipPackages("rich"));
 * console.log(targetEnvironment(recipe, "VIRTUAL_ENV").env); // { VIRTUAL_ENV: "/opt/venv" }
 * const plain = on(Image.fromBase("debian:bookworm").withPipPackages("rich"));
 * const [check, set] = targetEnvironment(plain, "VIRTUAL_ENV").commands;
 * console.log(check === NEEDS_PYTHON, set.split(" && ")[0]); // true VIRTUAL_ENV="$(python3 -c 'import sys; print(sys.prefix)')"
 * ```
 */
export function targetEnvironment(context: PluginContext, variable: string): TargetEnvironment {
  const venv = context.state.python?.venv;
  if (venv !== undefined) return { commands: [], env: { [variable]: venv } };
  return {
    commands: [
      ...pythonCheck(context),
      // An assignment alone fails when its command substitution does; `export` would not.
      `${variable}="$(${interpreter(context)} -c 'import sys; print(sys.prefix)')" && ` +
      `export ${variable}`,
    ],
    env: {},
  };
}

/**
 * The target environment's part of a layer's identity: nothing over a known venv (the tags
 * of the Debian base recipe stay), else which interpreter's environment the steps install
 * into, so that steps rendered for it never share a tag with the older recipe for it.
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage } from "imgtool";
 * import { environmentIdentity } from "./python.ts";
 * const plan = planImage(Image.fromBase("debian:bookworm").withPipPackages("rich"), "x", defaultConfig());
 * console.log(environmentIdentity(plan.layers[1].context).pythonEnvironment); // sys.prefix of python3
 * ```
 */
export function environmentIdentity(context: PluginContext): { pythonEnvironment?: string } {
  if (knowsVenv(context)) return {};
  return { pythonEnvironment: `sys.prefix of ${context.state.python?.python ?? "python3"}` };
}

/**
 * `pip install` (or `uv pip install`) of `args` into the image's Python environment,
 * with the index options. `args` are already shell words. Without a known venv, that is the
 * environment of the image's `python3`, even when it is the system's, checked for first
 * unless `step.checkedForPython` says an earlier command of the step did.
 */
export function pipInstall(
  context: PluginContext,
  args: readonly string[],
  index: IndexSettings,
  step: { readonly checkedForPython?: boolean } = {},
): InstallStep {
  const python = context.state.python;
  const options = indexArgs(context, index);
  const noCache = context.config.cacheMounts
    ? []
    : [context.config.installer === "uv" ? "--no-cache" : "--no-cache-dir"];
  // Without a known environment the step uses the image's python3: say so plainly when the
  // base has none, rather than fail on `--python ""` or `python3: not found`.
  const guard = step.checkedForPython ? [] : pythonCheck(context);
  if (context.config.installer === "uv") {
    // Without a known environment: the image's python3 (a venv's, if it is on PATH).
    const target = [
      "--python",
      python ? shellQuote(python.python) : '"$(command -v python3)"',
      ...(knowsVenv(context) ? [] : ["--break-system-packages"]),
    ];
    const install = [uvCommand(context), "pip", "install", ...target, ...noCache, ...options]
      .concat(args).join(" ");
    return {
      command: [...guard, install].join(" && "),
      mounts: [...installerCache(context), ...uvMount(context)],
      env: { UV_LINK_MODE: "copy", UV_PYTHON_DOWNLOADS: "never" },
    };
  }
  const install = [
    interpreter(context),
    "-m",
    "pip",
    "install",
    "--disable-pip-version-check",
    ...noCache,
    ...options,
    ...args,
  ].join(" ");
  return {
    command: [...guard, install].join(" && "),
    mounts: installerCache(context),
    env: pipEnvironment(context),
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

// --- version constraints: `requires-python`, Poetry's `requires-poetry` --------------------

/** A PEP 440 version: epoch, release numbers, and the pre-, post- and dev-release parts. */
interface ParsedVersion {
  readonly epoch: number;
  readonly release: readonly number[];
  /** Phase (0 a, 1 b, 2 rc) and number. */
  readonly pre?: readonly [number, number];
  readonly post?: number;
  readonly dev?: number;
}

/** One comparison; a constraint is alternatives (`||`), each a list that must all hold. */
interface VersionClause {
  readonly op: "==" | "!=" | "<" | "<=" | ">" | ">=" | "===" | "*";
  readonly version?: ParsedVersion;
  /** `==` and `!=` only: compare the release as a prefix (`3.11.*`). */
  readonly wildcard?: boolean;
  /** `===` only: the text, compared as it is. */
  readonly text?: string;
}

const PRE_PHASES: Readonly<Record<string, number>> = {
  a: 0,
  alpha: 0,
  b: 1,
  beta: 1,
  c: 2,
  rc: 2,
  pre: 2,
  preview: 2,
};

// PEP 440's permissive spelling (its appendix regular expression), local label ignored.
const VERSION_TEXT = new RegExp(
  "^v?(?:(\\d+)!)?(\\d+(?:\\.\\d+)*)" +
    "(?:[-_.]?(alpha|beta|preview|pre|rc|a|b|c)[-_.]?(\\d+)?)?" +
    "(?:-(\\d+)|[-_.]?(post|rev|r)[-_.]?(\\d+)?)?" +
    "(?:[-_.]?(dev)[-_.]?(\\d+)?)?" +
    "(?:\\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?$",
  "i",
);

function parseVersion(text: string): ParsedVersion | undefined {
  const match = VERSION_TEXT.exec(text.trim());
  if (!match) return undefined;
  const [, epoch, release, phase, pre, postDash, postWord, post, dev, devNumber] = match;
  return {
    epoch: Number(epoch ?? 0),
    release: release.split(".").map(Number),
    pre: phase === undefined ? undefined : [PRE_PHASES[phase.toLowerCase()], Number(pre ?? 0)],
    post: postDash !== undefined
      ? Number(postDash)
      : postWord !== undefined
      ? Number(post ?? 0)
      : undefined,
    dev: dev === undefined ? undefined : Number(devNumber ?? 0),
  };
}

function compareNumbers(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const difference = (a[i] ?? 0) - (b[i] ?? 0);
    if (difference !== 0) return Math.sign(difference);
  }
  return 0;
}

// PEP 440's order: 1.0.dev1 < 1.0a1.dev1 < 1.0a1 < 1.0 < 1.0.post1.dev1 < 1.0.post1.
function versionOrder(version: ParsedVersion): number[] {
  const pre = version.pre ??
    (version.post === undefined && version.dev !== undefined ? [-1, 0] : [3, 0]);
  return [
    ...pre,
    version.post ?? -1,
    version.dev ?? Number.MAX_SAFE_INTEGER,
  ];
}

function compareVersions(a: ParsedVersion, b: ParsedVersion): number {
  return Math.sign(a.epoch - b.epoch) || compareNumbers(a.release, b.release) ||
    compareNumbers(versionOrder(a), versionOrder(b));
}

function isFinal(version: ParsedVersion): boolean {
  return version.pre === undefined && version.dev === undefined;
}

/** The release `version` with segment `index` raised by one and the rest dropped. */
function bumped(version: ParsedVersion, index: number): ParsedVersion {
  const release = version.release.slice(0, index + 1);
  while (release.length <= index) release.push(0);
  release[index] += 1;
  return { epoch: version.epoch, release };
}

function clauseAllows(clause: VersionClause, version: ParsedVersion, text: string): boolean {
  const wanted = clause.version as ParsedVersion;
  switch (clause.op) {
    case "*":
      return true;
    case "===":
      return text.trim() === clause.text;
    case "==":
    case "!=": {
      const equal = clause.wildcard
        ? version.epoch === wanted.epoch &&
          compareNumbers(version.release.slice(0, wanted.release.length), wanted.release) === 0
        : compareVersions(version, wanted) === 0;
      return clause.op === "==" ? equal : !equal;
    }
    case "<=":
      return compareVersions(version, wanted) <= 0;
    case ">=":
      return compareVersions(version, wanted) >= 0;
    case "<":
      // `<3.12` does not allow 3.12's own pre-releases (PEP 440).
      return compareVersions(version, wanted) < 0 &&
        !(isFinal(wanted) && !isFinal(version) &&
          compareNumbers(version.release, wanted.release) === 0);
    case ">":
      // `>3.12` does not allow 3.12's post-releases (PEP 440).
      return compareVersions(version, wanted) > 0 &&
        !(wanted.post === undefined && version.post !== undefined &&
          compareNumbers(version.release, wanted.release) === 0);
  }
}

// One clause: an operator (PEP 440's or Poetry's `^`, `~`), then a version or a wildcard.
const CLAUSE = /\s*(===|==|!=|~=|<=|>=|<|>|\^|~|=)?\s*([^\s,|<>=!~^]+)\s*,?/y;

/** The clauses one operator and version stand for, or `undefined` if they mean nothing. */
function clausesOf(op: string | undefined, text: string): VersionClause[] | undefined {
  if (op === "===") return [{ op: "===", text }];
  if (text === "*") {
    return op === undefined || op === "==" || op === "=" ? [{ op: "*" }] : undefined;
  }
  const wildcard = text.endsWith(".*");
  const version = parseVersion(wildcard ? text.slice(0, -2) : text);
  if (version === undefined) return undefined;
  const { length } = version.release;
  switch (op) {
    case undefined:
    case "=":
    case "==":
      return [{ op: "==", version, wildcard }];
    case "!=":
      return [{ op: "!=", version, wildcard }];
    case "^": {
      // Up to the next change of the left-most non-zero segment (Poetry's caret).
      const nonZero = version.release.findIndex((segment) => segment !== 0);
      const index = nonZero === -1 ? length - 1 : nonZero;
      return [{ op: ">=", version }, { op: "<", version: bumped(version, index) }];
    }
    case "~":
      return [{ op: ">=", version }, { op: "<", version: bumped(version, length > 1 ? 1 : 0) }];
    case "~=":
      // PEP 440 wants at least two release segments (tools read `~=2` differently).
      if (length < 2 || wildcard) return undefined;
      return [{ op: ">=", version }, { op: "<", version: bumped(version, length - 2) }];
    default:
      return wildcard ? undefined : [{ op: op as VersionClause["op"], version }];
  }
}

/** A constraint as alternatives of all-of lists, or `undefined` if it is not one. */
function parseConstraint(constraint: string): VersionClause[][] | undefined {
  const alternatives: VersionClause[][] = [];
  for (const alternative of constraint.split(/\|\|?/)) {
    const clauses: VersionClause[] = [];
    const text = alternative.trim();
    CLAUSE.lastIndex = 0;
    while (CLAUSE.lastIndex < text.length) {
      const start = CLAUSE.lastIndex;
      const match = CLAUSE.exec(text);
      if (!match || CLAUSE.lastIndex === start) return undefined;
      const found = clausesOf(match[1], match[2]);
      if (found === undefined) return undefined;
      clauses.push(...found);
    }
    alternatives.push(clauses.length > 0 ? clauses : [{ op: "*" }]);
  }
  return alternatives;
}

/**
 * Whether `version` satisfies `constraint`, written in PEP 440's syntax (`>=2.0,<3`, `~=2.1`,
 * `==2.*`) or Poetry's (`^2.1`, `~2.1`, `2.1.*`, `>=1.2 <2 || ^3`); `undefined` when either is
 * not one imgtool understands, so that nothing is claimed about it.
 *
 * @example
 * ```ts
 * import { versionAllows } from "./python.ts";
 * console.log(versionAllows(">=2.0,<3", "2.1.3"), versionAllows("^1.8", "2.1.3")); // true false
 * console.log(versionAllows("a lot", "2.1.3")); // undefined
 * ```
 */
export function versionAllows(constraint: string, version: string): boolean | undefined {
  const alternatives = parseConstraint(constraint);
  const parsed = parseVersion(version);
  if (alternatives === undefined || parsed === undefined) return undefined;
  return alternatives.some((clauses) =>
    clauses.every((clause) => clauseAllows(clause, parsed, version))
  );
}

/**
 * Whether a release of Python `major.minor` (any patch release) satisfies a
 * `requires-python`-style constraint (PEP 440's syntax or Poetry's); `undefined` when the
 * constraint is not one imgtool understands.
 *
 * @example
 * ```ts
 * import { pythonVersionAllows } from "./python.ts";
 * console.log(pythonVersionAllows("^3.11", [3, 12]), pythonVersionAllows("3.8.6", [3, 12])); // true false
 * console.log(pythonVersionAllows(">=3.12.4", [3, 12])); // true
 * ```
 */
export function pythonVersionAllows(
  constraint: string,
  python: readonly [number, number],
): boolean | undefined {
  const alternatives = parseConstraint(constraint);
  if (alternatives === undefined) return undefined;
  // Python's patch releases stay far below 100.
  for (let patch = 0; patch < 100; patch++) {
    const text = `${python[0]}.${python[1]}.${patch}`;
    const version = parseVersion(text) as ParsedVersion;
    const allowed = alternatives.some((clauses) =>
      clauses.every((clause) => clauseAllows(clause, version, text))
    );
    if (allowed) return true;
  }
  return false;
}
