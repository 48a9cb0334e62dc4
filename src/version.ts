/**
 * imgtool's version: the one in deno.json, embedded in the binary and printed by
 * `imgtool --version`.
 *
 * @module
 */

import manifest from "../deno.json" with { type: "json" };

/**
 * imgtool's version.
 *
 * @example
 * ```ts
 * import { VERSION } from "imgtool";
 * console.log(`imgtool ${VERSION}`); // imgtool <version>
 * ```
 */
export const VERSION: string = manifest.version;
