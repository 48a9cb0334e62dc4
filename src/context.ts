/**
 * Writing a rendered build context to disk: the Dockerfile, generated files, and the files
 * and folders layers take from disk, minus what the image's `.dockerignore` excludes.
 * Modes are kept; symbolic links stay links.
 *
 * @module
 */

import { dirname, join } from "./path.ts";
import { listTree } from "./digest.ts";
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
  await Deno.writeTextFile(join(dir, "Dockerfile"), rendered.dockerfile);
}

async function copyFile(source: string, target: string): Promise<void> {
  await Deno.copyFile(source, target);
  const { mode } = await Deno.stat(source);
  if (mode !== null) await Deno.chmod(target, mode & 0o7777);
}

async function copyTree(source: string, target: string, ignore: IgnoreRules): Promise<void> {
  const entries = listTree(source, ignore);
  if (entries === null) throw new Error(`${source} is not a readable folder`);
  await Deno.mkdir(target, { recursive: true });
  const { mode } = await Deno.stat(source);
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
  // Folder modes last, so that read-only folders did not stop us filling them.
  for (const entry of entries.filter((e) => e.type === "dir").reverse()) {
    await Deno.chmod(join(target, entry.path), entry.mode);
  }
  if (mode !== null) await Deno.chmod(target, mode & 0o7777);
}
