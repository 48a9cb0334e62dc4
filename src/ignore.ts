/**
 * `.dockerignore` matching with Docker's rules (not gitignore's): patterns are relative to
 * the folder of the rules file, `**` spans folders, `!` re-includes, the last match wins.
 *
 * @module
 */

import dockerignoreModule, { type Ignore } from "@balena/dockerignore";
import { isAbsolute, relative, sep } from "node:path";
import type { IgnoreRuleSet } from "./plugin.ts";

type Matcher = Ignore;
// The package is CommonJS: its default export is the factory itself, whatever its typings say.
const dockerignore = dockerignoreModule as unknown as (
  options?: { ignorecase?: boolean },
) => Ignore;

/**
 * The ignore rules of one image: every rule set its layers contributed.
 *
 * @example
 * ```ts
 * import { defaultConfig, definePlugin, type IgnoreRules, Image, planImage } from "imgtool";
 * const noBuildOutput = definePlugin<Record<string, never>>({
 *   name: "no_build_output",
 *   ignoreRules: () => ({ root: "/project", patterns: ["build", "*.log"] }),
 *   render: () => ({ instructions: [] }),
 * });
 * const image = Image.fromDebianBase().withLayer(noBuildOutput.layer({}));
 * const rules: IgnoreRules = planImage(image, "default", defaultConfig()).ignore;
 * console.log(rules.ignores("/project/build"), rules.ignores("/project/src")); // true false
 * ```
 */
export class IgnoreRules {
  readonly #sets: { root: string; matcher: Matcher; negates: boolean }[];

  /** Combine rule sets; a path is ignored when any set ignores it. */
  constructor(sets: readonly IgnoreRuleSet[]) {
    this.#sets = sets.map((set) => ({
      root: set.root,
      // Docker matches case-sensitively on Linux; the package defaults to insensitive.
      matcher: dockerignore({ ignorecase: false }).add([...set.patterns]),
      negates: set.patterns.some((pattern) => pattern.trim().startsWith("!")),
    }));
  }

  /** Are there any rules? */
  get empty(): boolean {
    return this.#sets.length === 0;
  }

  /**
   * Is `path` ignored? It is matched relative to each rules file's folder; a path outside
   * that folder is matched relative to `fallbackRoot` (the folder being copied) instead.
   */
  ignores(path: string, fallbackRoot?: string): boolean {
    for (const set of this.#sets) {
      const rel = relativeInside(set.root, path) ??
        (fallbackRoot === undefined ? undefined : relativeInside(fallbackRoot, path));
      if (rel !== undefined && rel !== "" && set.matcher.ignores(rel)) return true;
    }
    return false;
  }

  /**
   * May a folder that is itself ignored still hold files that are not (a `!` pattern)?
   * If not, a walk can skip the whole folder.
   */
  mayReinclude(): boolean {
    return this.#sets.some((set) => set.negates);
  }
}

function relativeInside(root: string, path: string): string | undefined {
  const rel = relative(root, path);
  if (rel.startsWith("..") || isAbsolute(rel)) return undefined;
  return sep === "/" ? rel : rel.split(sep).join("/");
}
