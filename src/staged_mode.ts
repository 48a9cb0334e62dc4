/**
 * The mode a file or folder has in the build context, and so in the image: of a file's mode
 * only the owner's executable bit counts (git keeps just that much: 100755 or 100644), and
 * folders are 0755. The identity counts modes by the same rule, so that checkouts made
 * under different umasks (0600 files, 0700 folders, group-writable 0664...) get one tag and
 * build one image, and no mode outside the rule can hide behind a tag.
 *
 * @module
 */

/** Permission bits of a folder in the build context. */
export const STAGED_FOLDER_MODE = 0o755;

/**
 * The permission bits a file (or, with `kind: "dir"`, a folder) is staged with, from its mode
 * on disk: 0755 when the owner may execute the file, else 0644; folders 0755.
 *
 * @example
 * ```ts
 * import { stagedMode } from "./staged_mode.ts";
 * const octal = (mode: number) => mode.toString(8);
 * console.log(octal(stagedMode(0o600)), octal(stagedMode(0o700)), octal(stagedMode(0o775))); // 644 755 755
 * console.log(octal(stagedMode(0o700, "dir"))); // 755
 * ```
 */
export function stagedMode(mode: number | null | undefined, kind: "file" | "dir" = "file"): number {
  if (kind === "dir") return STAGED_FOLDER_MODE;
  return ((mode ?? 0) & 0o100) !== 0 ? 0o755 : 0o644;
}
