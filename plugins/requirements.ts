/**
 * `withRequirements`: install the packages of a requirements file. The file, and the files
 * it includes with `-r`/`-c`, are bind-mounted into the install step rather than copied
 * into a layer; their contents count in the identity.
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
} from "../mod.ts";
import { installerIdentity, pipInstall } from "./shared/python.ts";

const { dirname, relative, resolve } = paths;

/** The layer's options. */
export interface Options {
  /** The requirements file, relative to the spec's folder. */
  readonly file: string;
  /** Secrets the install step needs. */
  readonly secretMounts: readonly Secret[];
}

/** Where the files are mounted in the install step. */
export const MOUNT_DIR = "/tmp/imgtool-requirements";

const INCLUDE = /^\s*(?:-r|--requirement|-c|--constraint)(?:\s+|=)(\S+)/;

/**
 * The requirements file and every file it includes, relative to the first one's folder.
 * Files that cannot be read are listed all the same (validation reports them).
 */
export function requirementFiles(
  file: string,
  readText: (path: string) => string | undefined,
): { path: string; relative: string }[] {
  const root = dirname(file);
  const seen = new Map<string, string>();
  const visit = (path: string) => {
    if (seen.has(path)) return;
    seen.set(path, relative(root, path));
    for (const line of (readText(path) ?? "").split(/\r?\n/)) {
      const match = INCLUDE.exec(line);
      if (match) visit(resolve(dirname(path), match[1]));
    }
  };
  visit(file);
  return [...seen].map(([path, rel]) => ({ path, relative: rel }));
}

function files(options: Options, context: IdentifyContext) {
  return requirementFiles(context.resolve(options.file), (path) => context.readText(path));
}

/** The requirements plugin. */
export const requirements = definePlugin<Options>({
  name: "requirements",
  needsRoot: true,
  validate(options, context) {
    const problems: Diagnostic[] = [];
    for (const file of files(options, context)) {
      if (!context.isFile(file.path)) {
        problems.push({
          message: `requirements file not found: ${file.path}`,
          hint: "check the path; relative paths are relative to the spec file's folder",
          file: file.path,
        });
      } else if (file.relative.startsWith("..")) {
        problems.push({
          message: `${file.path} is included from outside the requirements file's folder`,
          hint: "keep included requirement files in the same folder or below it",
          file: file.path,
        });
      }
    }
    return problems;
  },
  secrets: (options) => options.secretMounts,
  identify: (options, context) => ({
    files: files(options, context).map((file) => ({
      name: file.relative,
      file: context.file(file.path),
    })),
    secrets: options.secretMounts,
    ...installerIdentity(context),
  }),
  render(options, context) {
    const found = files(options, context);
    const first = found[0];
    const step = pipInstall(context, ["-r", shellQuote(`${MOUNT_DIR}/${first.relative}`)], {
      extraIndexUrls: [],
      pre: false,
      secretMounts: options.secretMounts,
    });
    return {
      instructions: [
        run(step.command, {
          mounts: [{ type: "bind", source: context.contextDir, target: MOUNT_DIR }, ...step.mounts],
          secrets: options.secretMounts,
          env: step.env,
        }),
      ],
      context: found.map((file) => ({
        kind: "file" as const,
        source: file.path,
        target: `${context.contextDir}/${file.relative}`,
      })),
    };
  },
}, { module: import.meta.url });

export default requirements;
