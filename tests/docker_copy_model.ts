/**
 * A model of where Docker's `COPY` puts files, from its documented rules, to check the
 * source layers' Dockerfiles against without an engine (the end-to-end tests check the
 * engine itself):
 *
 * - a source is a pattern (Go's `filepath.Match`: `*`, `?`, `[`, and `\` escapes); this
 *   model refuses sources that hold those, and `$`, which the Dockerfile would expand;
 * - a source that is a folder (or ends in `/`) copies the folder's contents, recursively,
 *   into the destination, a folder;
 * - a source that is a file lands in the destination when it ends in `/` (under the
 *   file's name), else at the destination (when the image has no folder there).
 *
 * @module
 */

import assert from "node:assert/strict";
import { join, posix } from "node:path";
import type { RenderedImage } from "../mod.ts";

/** Every file of the build context (its path there) and the file on disk it comes from. */
function contextFiles(rendered: RenderedImage): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string, target: string) => {
    for (const entry of Deno.readDirSync(dir)) {
      const from = join(dir, entry.name);
      const to = `${target}/${entry.name}`;
      if (entry.isDirectory) walk(from, to);
      else files.set(to, from);
    }
  };
  for (const entry of rendered.context) {
    if (entry.kind === "file") files.set(entry.target, entry.source);
    else if (entry.kind === "tree") walk(entry.source, entry.target);
  }
  return files;
}

/**
 * The files the `COPY` instructions of `rendered` put in the image (absolute paths in the
 * image, with `workdir` as the working directory) and the file on disk each comes from.
 */
export function copiedFiles(rendered: RenderedImage, workdir: string): Map<string, string> {
  const files = contextFiles(rendered);
  const placed = new Map<string, string>();
  for (const line of rendered.dockerfile.split("\n")) {
    if (!line.startsWith("COPY ") || line.includes("--from=")) continue;
    const words: string[] = JSON.parse(line.slice(line.indexOf("[")));
    const destination = words.pop()!;
    const into = posix.resolve(workdir, destination);
    for (const source of words) {
      assert.doesNotMatch(source, /[*?[\\$]/, `COPY source ${source} is a pattern or expands`);
      const path = posix.normalize(source).replace(/\/$/, "");
      const file = source.endsWith("/") ? undefined : files.get(path);
      if (file !== undefined) {
        placed.set(destination.endsWith("/") ? `${into}/${posix.basename(path)}` : into, file);
        continue;
      }
      const inside = [...files].filter(([target]) => target.startsWith(`${path}/`));
      assert.ok(inside.length > 0, `COPY source ${source} is not in the build context`);
      for (const [target, from] of inside) {
        placed.set(`${into}/${target.slice(path.length + 1)}`, from);
      }
    }
  }
  return placed;
}
