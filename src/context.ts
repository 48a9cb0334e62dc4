/**
 * Writing a rendered build context to disk: the Dockerfile, generated files, and the files
 * and folders layers take from disk, minus what the image's `.dockerignore` excludes.
 * Files are staged 0755 or 0644 by their executable bit, folders 0755; symbolic links stay links. imgtool applies the ignore rules itself, so a
 * rules file the context holds at its root (from a `fromDockerfile` folder) is made to
 * exclude nothing more when the builder reads it: the user's rules govern the user's files,
 * never the files imgtool staged for later layers.
 *
 * @module
 */

import { dirname, join } from "./path.ts";
import { listTree } from "./digest.ts";
import { STAGED_FOLDER_MODE, stagedMode } from "./staged_mode.ts";
import type { IgnoreRules } from "./ignore.ts";
import type { RenderedImage } from "./render.ts";

/**
 * Write `rendered` into `dir` (which must be empty or missing): `dir/Dockerfile` and the
 * context files beside it.
 */
export async function writeContext(
  rendered: RenderedImage,
  dir: string,
  ignore: IgnoreRules,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  for (const entry of rendered.context) {
    const target = join(dir, entry.target);
    await Deno.mkdir(dirname(target), { recursive: true });
    if (entry.kind === "text") {
      await Deno.writeFile(
        target,
        typeof entry.content === "string" ? new TextEncoder().encode(entry.content) : entry.content,
        { mode: entry.mode ?? 0o644 },
      );
      await Deno.chmod(target, entry.mode ?? 0o644);
    } else if (entry.kind === "file") {
      await copyFile(entry.source, target);
    } else {
      await copyTree(entry.source, target, ignore);
    }
  }
  const dockerfile = join(dir, "Dockerfile");
  // A file the user's tree put there (their own Dockerfile, say), or a link: replaced, never
  // written through.
  const userDockerfile = await Deno.lstat(dockerfile).then(() => true, () => false);
  if (userDockerfile) await Deno.remove(dockerfile, { recursive: true });
  await Deno.writeTextFile(dockerfile, rendered.dockerfile);
  for (const name of BUILDER_RULES_FILES) {
    await settleRulesFile(join(dir, name), userDockerfile);
  }
}

/**
 * The rules files a builder reads at the root of the context it is given: BuildKit's
 * (`Dockerfile.dockerignore` first, for the Dockerfile named `Dockerfile`) and buildah's.
 *
 * @example
 * ```ts
 * import { BUILDER_RULES_FILES } from "./context.ts";
 * // A fromDockerfile folder holding one of these puts it at the root of the build context.
 * console.log(BUILDER_RULES_FILES.includes(".dockerignore")); // true
 * ```
 */
export const BUILDER_RULES_FILES: readonly string[] = [
  ".dockerignore",
  "Dockerfile.dockerignore",
  ".containerignore",
];

/**
 * What imgtool adds to a rules file that the context holds at its root (one the user's
 * `fromDockerfile` folder put there): imgtool applied the image's rules itself when it wrote
 * the context, so the builder must exclude nothing more, least of all the files later layers
 * staged under `.imgtool/`. Only the generated `Dockerfile` stays out of the user's `COPY .`
 * when no file of theirs stood in its place.
 *
 * @example
 * ```ts
 * import { rulesFileSuffix } from "./context.ts";
 * console.log(rulesFileSuffix(false).trim().split("\n").slice(-2)); // [ "!**", "Dockerfile" ]
 * ```
 */
export function rulesFileSuffix(userDockerfile: boolean): string {
  return [
    "",
    "# Added by imgtool, which applied the rules above when it wrote this build context:",
    "# the builder excludes nothing more (imgtool's own files under .imgtool/ stay).",
    "!**",
    ...(userDockerfile ? [] : ["Dockerfile"]),
    "",
  ].join("\n");
}

async function settleRulesFile(path: string, userDockerfile: boolean): Promise<void> {
  let info;
  try {
    info = await Deno.lstat(path);
  } catch {
    return; // the user's rules excluded it, or there was none
  }
  if (info.isDirectory) return; // no builder reads a folder as rules
  if (info.isSymlink) {
    // Never written through; the rules it pointed to are applied already.
    await Deno.remove(path);
    await Deno.writeTextFile(path, rulesFileSuffix(userDockerfile), { mode: 0o644 });
    return;
  }
  await Deno.writeTextFile(path, rulesFileSuffix(userDockerfile), { append: true });
}

// Files are staged 0755 or 0644 by their executable bit, folders 0755: the rule the identity
// counts modes by (src/staged_mode.ts), so that one tag is one build context.
async function copyFile(source: string, target: string): Promise<void> {
  await Deno.copyFile(source, target);
  await Deno.chmod(target, stagedMode((await Deno.stat(source)).mode));
}

async function copyTree(source: string, target: string, ignore: IgnoreRules): Promise<void> {
  const entries = listTree(source, ignore);
  if (entries === null) throw new Error(`${source} is not a readable folder`);
  await Deno.mkdir(target, { recursive: true });
  for (const entry of entries) {
    const destination = join(target, entry.path);
    if (entry.type === "dir") {
      await Deno.mkdir(destination, { recursive: true });
    } else if (entry.type === "symlink") {
      await Deno.symlink(entry.target ?? "", destination);
    } else {
      await copyFile(entry.absolute, destination);
    }
  }
  // Listed entries carry their staged modes (folders 0755); the folder itself is one too.
  for (const entry of entries.filter((e) => e.type === "dir")) {
    await Deno.chmod(join(target, entry.path), entry.mode);
  }
  await Deno.chmod(target, STAGED_FOLDER_MODE);
}
