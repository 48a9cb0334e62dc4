/**
 * `withRequirements`: install the packages of a requirements file, with pip or uv. The file
 * and the files it includes with `-r`/`-c` (at any depth, relative to the file that names
 * them) are bind-mounted into the install step rather than copied into a layer; their
 * contents count in the identity.
 *
 * Local code a requirements file names reaches the build too, and its content counts in the
 * tag: local projects (`-e .`, `-e ../lib`, `./pkg[extra]`, `name @ file:...`, `file:` URLs
 * absolute or relative, `#egg=` and `subdirectory=` fragments), archives (`./wheels/x.whl`,
 * with or without `--hash`), `--find-links` folders and `file:` indexes. Each is mounted into
 * the install step in a folder of its own and the lines naming it are rewritten to point there.
 *
 * - **Where relative paths point.** As with pip and uv, includes and `--find-links` are relative
 *   to the file that names them, and paths in requirement lines to the folder pip runs in:
 *   imgtool takes that to be the requirements file's folder, or the spec's folder when every
 *   such path resolves from there and not from the file's (as with `requirements/dev.txt`
 *   holding `-e .`, run from the project root).
 * - **Editable lines are installed as ordinary packages.** The source is in a mount that is gone
 *   after the step, so an editable install would point nowhere; the image gets the package in
 *   its `site-packages`, as `pip install ./lib` does. (To keep the source in the image, copy it
 *   with `withSourceFolder` and install it there with `withCommands`.)
 * - **The project boundary.** Every path named inside a requirements file must lie inside the
 *   project (the spec's git work tree, else the spec's folder) or a folder `allowed-paths`
 *   allows; otherwise validation names the file, line and path. The file the spec names may be
 *   anywhere.
 * - **Hash checking.** Once any line has `--hash` (or `--require-hashes`), pip and uv check the
 *   hash of every requirement and refuse editable and folder requirements; validation says so
 *   before the build. Local archives with their `--hash` work.
 *
 * @module
 */

import {
  definePlugin,
  type Diagnostic,
  type IdentifyContext,
  paths,
  run,
  type Secret,
  shellQuote,
  type ValidateContext,
} from "../contract.ts";
import { environmentIdentity, installerIdentity, pipInstall } from "./shared/python.ts";
import {
  analyzeRequirements,
  isPlainFileName,
  type RequirementsSet,
  type ResolvedReference,
  usable,
} from "./shared/requirements_set.ts";

/** The layer's options. */
export interface Options {
  /** The requirements file, relative to the spec's folder. */
  readonly file: string;
  /** Secrets the install step needs. */
  readonly secretMounts: readonly Secret[];
}

/** Where the files are mounted in the install step. */
export const MOUNT_DIR = "/tmp/imgtool-requirements";

/**
 * The requirements file and every file it includes, with the local code they name.
 *
 * @example
 * ```ts
 * import { Image } from "imgtool";
 * import { requirementSet } from "./requirements.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/requirements.txt`, "-r base.txt\nrich\n");
 * Deno.writeTextFileSync(`${dir}/base.txt`, "numpy==2.1.0\n");
 * const layer = Image.fromBase("python:3.12").withRequirements(`${dir}/requirements.txt`)
 *   .layers[1];
 * const set = requirementSet(layer.options as never, {
 *   resolve: (path: string) => path,
 *   readText: (path: string) => Deno.readTextFileSync(path),
 *   isFile: () => true,
 *   isDirectory: () => false,
 * } as never);
 * console.log(set.files.map((file) => file.target)); // [ "requirements.txt", "base.txt" ]
 * ```
 */
export function requirementSet(options: Options, context: IdentifyContext): RequirementsSet {
  return analyzeRequirements(context.resolve(options.file), context.resolve("."), MOUNT_DIR, {
    readText: (path) => context.readText(path),
    isFile: (path) => context.isFile(path),
    isDirectory: (path) => context.isDirectory(path),
  });
}

// Where a reference stands, for messages: `/work/app/requirements.txt line 3`.
const where = (ref: { file: string; line: number }) => `${ref.file} line ${ref.line}`;

/** The requirements plugin. */
export const requirements = definePlugin<Options>({
  name: "requirements",
  version: 1,
  needsRoot: true,
  validate(options, context) {
    const set = requirementSet(options, context);
    const problems: Diagnostic[] = [];
    for (const file of set.files) {
      if (file.text !== undefined) continue;
      problems.push({
        message: `requirements file not found: ${file.path}`,
        hint: file.includedBy
          ? `${where(file.includedBy)} includes it; includes are relative to the including ` +
            "file's folder"
          : "check the path; relative paths are relative to the spec file's folder",
        file: file.path,
      });
    }
    for (const ref of set.references) problems.push(...referenceProblems(ref, set, context));
    return problems;
  },
  secrets: (options) => options.secretMounts,
  identify(options, context) {
    const set = requirementSet(options, context);
    return {
      files: set.files.map((file) => ({ name: file.name, file: context.file(file.path) })),
      secrets: options.secretMounts,
      ...installerIdentity(context),
      ...environmentIdentity(context),
      // Only when there are any: specs without local code keep the tags they had.
      ...(set.locals.length > 0
        ? {
          locals: set.locals.map((local) => ({
            name: local.target,
            content: local.kind === "file" || !context.isDirectory(local.path)
              ? context.file(local.path)
              : context.tree(local.path),
          })),
        }
        : {}),
    };
  },
  render(options, context) {
    const set = requirementSet(options, context);
    const first = set.files[0];
    const step = pipInstall(context, ["-r", shellQuote(`${MOUNT_DIR}/${first.target}`)], {
      extraIndexUrls: [],
      pre: false,
      secretMounts: options.secretMounts,
    });
    // Builds of local projects write into their folder (build/, *.egg-info): writable, and
    // the writes are thrown away with the mount.
    const writable = set.locals.some((local) => local.kind === "tree");
    return {
      instructions: [
        run(step.command, {
          mounts: [
            {
              type: "bind",
              source: context.contextDir,
              target: MOUNT_DIR,
              ...(writable ? { readwrite: true } : {}),
            },
            ...step.mounts,
          ],
          secrets: options.secretMounts,
          env: step.env,
        }),
      ],
      context: [
        ...set.files.map((file) =>
          file.rewritten === undefined
            ? {
              kind: "file" as const,
              source: file.path,
              target: `${context.contextDir}/${file.target}`,
            }
            : {
              kind: "text" as const,
              content: file.rewritten,
              target: `${context.contextDir}/${file.target}`,
            }
        ),
        ...set.locals.map((local) => ({
          kind: local.kind,
          source: local.path,
          target: `${context.contextDir}/${local.target}`,
        })),
      ],
    };
  },
}, { module: import.meta.url });

/** The problems of one reference: outside the project, missing, or not installable. */
function referenceProblems(
  ref: ResolvedReference,
  set: RequirementsSet,
  context: ValidateContext,
): Diagnostic[] {
  const at = where(ref);
  if (ref.problem) {
    return [{
      message: `${at}: ${ref.problem}`,
      hint: "write the path itself, of a folder or file inside the project (`-e ./lib`, " +
        "`./wheels/x.whl`)",
      file: ref.file,
    }];
  }
  const outside = context.outsideProject(ref.absolute, at);
  if (outside) return [outside];
  if (ref.role === "requirements" || ref.role === "constraints") return [];
  const isFile = context.isFile(ref.absolute);
  if (ref.role === "find-links" || ref.role === "index-url") {
    if (isFile || context.isDirectory(ref.absolute)) return [];
    return [{
      message: `${at}: ${ref.given} names ${ref.absolute}, which does not exist`,
      hint: ref.role === "find-links"
        ? "--find-links paths are relative to the requirements file's folder (or, when " +
          "not there, to the folder pip runs in)"
        : "check the path of the file: URL",
      file: ref.file,
    }];
  }
  if (!usable(ref.absolute, ref.subdirectory, context)) return [notInstallable(ref, set, context)];
  const problems: Diagnostic[] = [];
  if (isFile && !isPlainFileName(paths.basename(ref.absolute))) {
    problems.push({
      message: `${at}: the file name ${
        JSON.stringify(paths.basename(ref.absolute))
      } has characters a requirements line cannot carry`,
      hint: "rename the file (wheel and sdist names have letters, digits, . _ + - only)",
      file: ref.file,
    });
  }
  if (set.hashLine && !isFile) {
    const turnedOn = where(set.hashLine);
    problems.push({
      message: ref.role === "editable"
        ? `${at}: the editable requirement ${ref.given} cannot be installed with hash ` +
          `checking, which ${turnedOn} turns on`
        : `${at}: the folder ${ref.given} cannot be installed with hash checking, which ` +
          `${turnedOn} turns on`,
      hint: "pip and uv check a hash of every requirement once one line has --hash, and a " +
        "folder has none: build a wheel of it and list the wheel with its --hash, or install " +
        "the local project from a requirements file of its own, without hashes",
      file: ref.file,
    });
  }
  return problems;
}

function notInstallable(
  ref: ResolvedReference,
  set: RequirementsSet,
  context: ValidateContext,
): Diagnostic {
  const at = where(ref);
  const project = ref.subdirectory ? paths.join(ref.absolute, ref.subdirectory) : ref.absolute;
  const exists = context.isDirectory(project);
  const message = exists
    ? `${at}: ${ref.given} names ${project}, which has no pyproject.toml or setup.py`
    : `${at}: ${ref.given} names ${project}, which does not exist`;
  const relativePath = !paths.isAbsolute(ref.path);
  const other = set.otherWorkingDir;
  return {
    message,
    hint: relativePath
      ? "paths in requirement lines are relative to the folder pip runs in; imgtool runs it " +
        `in ${set.workingDir}${
          other ? ` (when every path resolves from ${other} instead, it runs it there)` : ""
        }: fix the path`
      : "point the line at a project folder (with pyproject.toml or setup.py) or an archive",
    file: ref.file,
  };
}

export default requirements;
