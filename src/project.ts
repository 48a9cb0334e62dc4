/**
 * The project boundary for paths that files name. A spec may name any file its user can
 * read; a requirements file, a uv script header or a pyproject may only name paths inside
 * the project (the spec's git work tree, else the spec's folder) or inside a folder the
 * configuration allows (`allowed-paths`). Otherwise a dependency file written by someone
 * else could pull `~/.ssh` into a build context.
 *
 * @module
 */

import { projectBoundary } from "./config.ts";
import type { Diagnostic } from "./errors.ts";
import { resolve } from "./path.ts";

const roots = new Map<string, string>();

/**
 * The project a spec in `dir` belongs to: the root of its git work tree, else `dir` itself.
 *
 * @example
 * ```ts
 * import { projectRoot } from "imgtool";
 * const dir = Deno.makeTempDirSync();
 * Deno.mkdirSync(`${dir}/.git`);
 * Deno.mkdirSync(`${dir}/images`);
 * console.log(projectRoot(`${dir}/images`) === dir); // true
 * ```
 */
export function projectRoot(dir: string): string {
  let root = roots.get(dir);
  if (root === undefined) {
    root = projectBoundary(dir, undefined);
    roots.set(dir, root);
  }
  return root;
}

/**
 * Whether `path` lies inside one of `folders`, judged by where it really is: links are
 * followed as far as they exist, so a link inside the project that points out of it is out.
 *
 * @example
 * ```ts
 * import { isInside } from "imgtool";
 * console.log(isInside("/repo/libs/a", ["/repo"]), isInside("/repo/../etc", ["/repo"])); // true false
 * ```
 */
export function isInside(path: string, folders: readonly string[]): boolean {
  const real = realPath(resolve(path));
  return folders.some((folder) => {
    const root = realPath(resolve(folder)).replace(/\/$/, "");
    return real === root || real.startsWith(`${root}/`) || root === "";
  });
}

/**
 * The problem with a path that a file named, when it lies outside the project and every
 * allowed folder: which file named which path, and how to fix it. `namedIn` says where
 * (`requirements.txt line 3`).
 *
 * @example
 * ```ts
 * import { outsideProjectProblem } from "imgtool";
 * const problem = outsideProjectProblem("/home/me/.ssh", "script.py (its header)", "/repo", []);
 * console.log(problem?.message);
 * // script.py (its header) names /home/me/.ssh, which is outside the project /repo
 * ```
 */
export function outsideProjectProblem(
  path: string,
  namedIn: string,
  root: string,
  allowed: readonly string[],
): Diagnostic | undefined {
  if (isInside(path, [root, ...allowed])) return undefined;
  return {
    message: `${namedIn} names ${path}, which is outside the project ${root}`,
    hint: "move it into the project, or allow its folder in imgtool.toml: " +
      `allowed-paths = [${JSON.stringify(path)}]`,
    file: path,
  };
}

// The real path of the longest existing prefix, with the rest appended as it is.
function realPath(path: string): string {
  let rest = "";
  for (let current = path;;) {
    try {
      return Deno.realPathSync(current) + rest;
    } catch {
      const at = current.lastIndexOf("/");
      if (at <= 0) return path;
      rest = current.slice(at) + rest;
      current = current.slice(0, at);
    }
  }
}
