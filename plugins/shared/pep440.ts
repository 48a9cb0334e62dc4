/**
 * PEP 440 version specifiers as the uv layers ask about them: does a tool version (uv's
 * `required-version`) or a Python minor version (a `requires-python`) satisfy what a project
 * demands? Both rest on the one constraint reader in `./python.ts`.
 *
 * @module
 */
import { pythonVersionAllows, versionAllows } from "./python.ts";

export { versionAllows };

/**
 * Whether some release of Python `major.minor` satisfies a `requires-python` specifier
 * (`>=3.12.4` admits 3.12: its later patch releases qualify); what imgtool cannot read, or a
 * bare version, is left to the installer (`true`).
 *
 * @example
 * ```ts
 * import { pythonAllows } from "./pep440.ts";
 * console.log(pythonAllows(">=3.11,<3.13", [3, 12]), pythonAllows(">=3.13", [3, 12])); // true false
 * ```
 */
export function pythonAllows(specifier: string, python: readonly [number, number]): boolean {
  // A bare version (`3.12`) is no PEP 440 comparison (Poetry reads it as `==`): uv decides.
  const comparisons = specifier.split(",").filter((clause) => /^\s*(?:[=!~<>]|$)/.test(clause));
  return pythonVersionAllows(comparisons.join(","), python) !== false;
}
