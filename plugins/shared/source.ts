/**
 * What the source layers (a file, a folder) check alike before anything is copied: the
 * source exists and is of its kind, and the destination can be written in a Dockerfile.
 * The source's own name may be anything: the layers never write it in the Dockerfile
 * unless Docker would read it literally. Built only on the public API.
 *
 * @module
 */

import { type Diagnostic, isSafePath, type ValidateContext } from "../../contract.ts";

/**
 * The problems of copying `src` (a `kind`, relative to the spec's folder) to `dst`.
 *
 * @example
 * ```ts
 * import type { ValidateContext } from "../../contract.ts";
 * import { sourceProblems } from "./source.ts";
 * const context = {
 *   resolve: (path: string) => `/work/app/${path}`,
 *   isFile: () => false,
 *   isDirectory: () => true,
 * } as unknown as ValidateContext;
 * console.log(sourceProblems("src", "/app", "file", context)[0].message);
 * // /work/app/src is a folder, not a file
 * ```
 */
export function sourceProblems(
  src: string,
  dst: string | undefined,
  kind: "file" | "folder",
  context: ValidateContext,
): Diagnostic[] {
  const problems: Diagnostic[] = [];
  const path = context.resolve(src);
  const isKind = kind === "file" ? context.isFile(path) : context.isDirectory(path);
  if (!isKind) {
    const other = kind === "file" ? context.isDirectory(path) : context.isFile(path);
    problems.push({
      message: other
        ? `${path} is a ${kind === "file" ? "folder" : "file"}, not a ${kind}`
        : `${kind} not found: ${path}`,
      hint: other
        ? kind === "file"
          ? "use withSourceFolder for folders"
          : "use withSourceFile for single files"
        : "check the path; relative paths are relative to the spec file's folder",
      file: path,
    });
  }
  if (dst !== undefined && !isSafePath(dst)) {
    problems.push({
      message: `the destination ${
        JSON.stringify(dst)
      } is empty or has $, \\ or a control character, which a Dockerfile cannot copy to safely`,
      hint: "pick another destination",
    });
  }
  return problems;
}
