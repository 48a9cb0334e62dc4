/**
 * `.dockerignore` matching with Docker's rules (not gitignore's): patterns are relative to
 * the folder of the rules file, `**` spans folders, `!` re-includes, the last match wins.
 *
 * Written here rather than taken from npm: the package was CommonJS, and loading it started
 * Deno's Node compatibility layer. The rules are those of current Docker on Linux, step by
 * step:
 *
 * - each line is cleaned as `ignorefile.ReadAll` does: a line starting with `#` is a comment
 *   (only in the first column), surrounding white space goes, a leading `!` excludes, the rest
 *   is `filepath.Clean`ed and loses a leading `/`;
 * - each pattern is checked and compiled as moby's `patternmatcher` does: the syntax of Go's
 *   `filepath.Match`, then `*` for `[^/]*`, `?` for `[^/]`, `**` for any folders (none
 *   included), `[...]` classes and `\` escapes handed to Go's regexp syntax, which
 *   `src/go_regexp.ts` matches in linear time, as Go does (a JavaScript `RegExp` could take
 *   minutes on a pattern like `*a*a*a*a*a*a*a*a*a*a*a*a*b`);
 * - paths are matched as BuildKit's walk does (`MatchesUsingParentResults`): every pattern a
 *   folder matched still matches everything inside it, and the last pattern that matches
 *   decides.
 *
 * Docker 20.10 differed in places: it escaped fewer regexp characters (`+ ( ) | { }`), took
 * `**x` and `^` differently, checked `!` patterns against parent folders, and skipped folders
 * whose re-includes had wildcards. These rules follow Docker 23 and later (BuildKit).
 *
 * @module
 */

import { UsageError } from "./errors.ts";
import { compileGoRegexp, GoSyntaxError } from "./go_regexp.ts";
import { isAbsolute, normalize, relative } from "./path.ts";
import type { IgnoreRuleSet } from "./plugin.ts";

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
  readonly #sets: CompiledSet[];

  /**
   * Combine rule sets; a path is ignored when any set ignores it. Throws a `UsageError` for a
   * pattern Docker rejects (`[`, a trailing `\`, a lone `!`, a reversed range like `[z-a]`).
   */
  constructor(sets: readonly IgnoreRuleSet[]) {
    this.#sets = sets.map((set) => new CompiledSet(set));
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
      if (rel !== undefined && rel !== "" && set.ignores(rel)) return true;
    }
    return false;
  }

  /**
   * May a folder that is itself ignored still hold files that are not (a `!` pattern)?
   * If not, a walk can skip the whole folder.
   */
  mayReinclude(): boolean {
    return this.#sets.some((set) => set.reincludes);
  }
}

/** How a compiled pattern compares a path (patternmatcher's shortcuts, then its regexp). */
const EXACT = 0, PREFIX = 1, SUFFIX = 2, REGEXP = 3;

interface Pattern {
  /** A `!` pattern: a match re-includes. */
  readonly exclusion: boolean;
  readonly kind: typeof EXACT | typeof PREFIX | typeof SUFFIX | typeof REGEXP;
  /** EXACT: the path; PREFIX: its start; SUFFIX: its end. */
  readonly text: string;
  /** SUFFIX `**\/x` also matches `x` itself. */
  readonly bare: string | undefined;
  /** REGEXP: the compiled test. */
  readonly test: ((path: string) => boolean) | undefined;
}

function matches(pattern: Pattern, path: string): boolean {
  switch (pattern.kind) {
    case EXACT:
      return path === pattern.text;
    case PREFIX:
      return path.startsWith(pattern.text);
    case SUFFIX:
      return path.endsWith(pattern.text) || path === pattern.bare;
    default:
      return pattern.test!(path);
  }
}

/** One rules file's patterns, compiled, and the walk state that makes matching cheap. */
class CompiledSet {
  readonly root: string;
  readonly patterns: readonly Pattern[];
  readonly reincludes: boolean;
  // The folders above the last path asked about and what each pattern said of them. Walks
  // ask about siblings in a row, so shared folders are matched once, not once per file.
  readonly #folders: string[] = [];
  readonly #results: Uint8Array[] = [];

  constructor(set: IgnoreRuleSet) {
    this.root = set.root;
    const patterns: Pattern[] = [];
    set.patterns.forEach((line, index) => {
      // ReadAll drops a byte order mark from the file's first line only.
      const cleaned = cleanLine(index === 0 ? line.replace(/^\uFEFF/, "") : line);
      // Where a bad pattern is: the file and line when the set says which file it is.
      const where = set.file === undefined ? `rules of ${set.root}` : `${set.file}:${index + 1}`;
      if (cleaned !== undefined) patterns.push(compile(cleaned, line, where));
    });
    this.patterns = patterns;
    this.reincludes = patterns.some((pattern) => pattern.exclusion);
  }

  /** Is `rel` (relative to the set's folder, normalized, not empty) ignored? */
  ignores(rel: string): boolean {
    const folders = this.#folders, results = this.#results;
    let parent: Uint8Array | undefined;
    let depth = 0;
    for (let slash = rel.indexOf("/"); slash !== -1; slash = rel.indexOf("/", slash + 1)) {
      const known = folders[depth];
      if (known === undefined || known.length !== slash || !rel.startsWith(known)) {
        folders.length = results.length = depth;
        const result = new Uint8Array(this.patterns.length);
        const folder = rel.slice(0, slash);
        decide(this.patterns, folder, parent, result);
        folders.push(folder);
        results.push(result);
      }
      parent = results[depth++];
    }
    return decide(this.patterns, rel, parent, undefined);
  }
}

/**
 * Decide one path, given what each pattern said of its folder (`parent`, none at the top):
 * what a folder matched stays matched inside it; otherwise a pattern is tried only when it
 * could change the outcome (a `!` pattern once something matched, another pattern before).
 * Records in `result` which patterns matched, for the paths inside it.
 */
function decide(
  patterns: readonly Pattern[],
  path: string,
  parent: Uint8Array | undefined,
  result: Uint8Array | undefined,
): boolean {
  let ignored = false;
  for (let index = 0; index < patterns.length; index++) {
    const pattern = patterns[index];
    let match = parent !== undefined && parent[index] === 1;
    if (!match) {
      if (pattern.exclusion !== ignored) continue;
      match = matches(pattern, path);
    }
    if (match) {
      if (result !== undefined) result[index] = 1;
      ignored = !pattern.exclusion;
    }
  }
  return ignored;
}

/** A line as `ignorefile.ReadAll` leaves it, or undefined for a comment or a blank line. */
function cleanLine(line: string): string | undefined {
  // The comment test comes before trimming: "  # x" is a pattern, as in Docker.
  if (line.startsWith("#")) return undefined;
  let pattern = trimSpace(line);
  if (pattern === "") return undefined;
  const exclusion = pattern.startsWith("!");
  if (exclusion) pattern = trimSpace(pattern.slice(1));
  if (pattern !== "") {
    pattern = clean(pattern);
    if (pattern.length > 1 && pattern.startsWith("/")) pattern = pattern.slice(1);
  }
  return exclusion ? `!${pattern}` : pattern;
}

/** Compile a cleaned line as `patternmatcher.New` and `Pattern.compile` do. */
function compile(cleaned: string, line: string, where: string): Pattern {
  const reject = (reason: string, hint: string) =>
    new UsageError(
      `invalid .dockerignore pattern ${JSON.stringify(line.trim())} (${where}): ${reason}`,
      { hint },
    );
  // New cleans again, with the `!` still on: "!/" becomes a lone "!".
  let text = clean(trimSpace(cleaned));
  const exclusion = text.startsWith("!");
  if (exclusion) {
    if (text.length === 1) {
      throw reject("a lone ! re-includes nothing", "name what to re-include: !path");
    }
    text = text.slice(1);
  }
  const syntax = globSyntaxError(text);
  if (syntax !== undefined) {
    throw reject(syntax, "Docker rejects it too; escape a literal [ or \\ with a backslash");
  }
  const { kind, source } = translateGlob(text);
  let test: ((path: string) => boolean) | undefined;
  if (kind === REGEXP) {
    try {
      test = compileGoRegexp(`${source}$`);
    } catch (error) {
      if (!(error instanceof GoSyntaxError)) throw error;
      throw reject(error.message, "Docker fails the build on it; escape the character with \\");
    }
  }
  const suffix = kind === SUFFIX ? text.slice(2) : "";
  return {
    exclusion,
    kind,
    text: kind === PREFIX ? text.slice(0, -2) : kind === SUFFIX ? suffix : text,
    bare: suffix.startsWith("/") ? suffix.slice(1) : undefined,
    test,
  };
}

const BAD_CLASS = "a [ class is not closed, is empty, or has an incomplete range";

/**
 * Why Go's `filepath.Match` rejects `pattern`, if it does; Docker checks every pattern
 * with it. Only classes and escapes can be malformed.
 */
function globSyntaxError(pattern: string): string | undefined {
  const chars = Array.from(pattern);
  let at = 0;
  // One class member (a character, escaped or not); false when it is missing or ends the text.
  const member = (): boolean => {
    if (at >= chars.length || chars[at] === "-" || chars[at] === "]") return false;
    if (chars[at] === "\\" && ++at >= chars.length) return false;
    return ++at < chars.length;
  };
  while (at < chars.length) {
    const char = chars[at++];
    if (char === "\\") {
      if (at++ >= chars.length) return "a trailing \\ escapes nothing";
    } else if (char === "[") {
      if (chars[at] === "^") at++;
      for (let members = 0;; members++) {
        if (chars[at] === "]" && members > 0) {
          at++;
          break;
        }
        if (!member()) return BAD_CLASS;
        if (chars[at] === "-") {
          at++;
          if (!member()) return BAD_CLASS;
        }
      }
    }
  }
  return undefined;
}

/**
 * The Go regexp (without its final `$`) and the kind patternmatcher compiles `pattern` to.
 * A `**` at the very start makes a suffix match unless something later needs a regexp.
 */
function translateGlob(pattern: string): { kind: Pattern["kind"]; source: string } {
  const chars = Array.from(pattern);
  let kind: Pattern["kind"] = EXACT;
  let source = "^";
  for (let step = 0, at = 0; at < chars.length; step++) {
    const char = chars[at++];
    if (char === "*" && chars[at] === "*") {
      at++;
      if (chars[at] === "/") at++;
      if (at < chars.length) {
        source += "(.*/)?";
        kind = REGEXP;
      } else if (kind === EXACT) {
        kind = PREFIX;
      } else {
        source += ".*";
        kind = REGEXP;
      }
      if (step === 0) kind = SUFFIX;
    } else if (char === "*") {
      source += "[^/]*";
      kind = REGEXP;
    } else if (char === "?") {
      source += "[^/]";
      kind = REGEXP;
    } else if (".+()|{}$".includes(char)) {
      source += `\\${char}`;
    } else if (char === "\\") {
      if (at < chars.length) {
        source += `\\${chars[at++]}`;
        kind = REGEXP;
      } else {
        source += "\\";
      }
    } else {
      source += char;
      if (char === "[" || char === "]") kind = REGEXP;
    }
  }
  return { kind, source };
}

/** Go's `strings.TrimSpace`: Unicode white space, but not the byte order mark. */
function trimSpace(text: string): string {
  return text.replace(GO_SPACE_AROUND, "");
}

const GO_SPACE_AROUND =
  /^[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;

/** Go's `filepath.Clean`: `normalize`, without a trailing slash. */
function clean(path: string): string {
  const normal = normalize(path);
  return normal.length > 1 && normal.endsWith("/") ? normal.slice(0, -1) : normal;
}

/** A path that `relative` would change: `//`, `.` or `..` segments, a trailing slash. */
const NOT_NORMAL = /\/\/|\/\.\.?(?:\/|$)|.\/$/;

/** `path` relative to `root` when it is inside it (`""` for `root` itself). */
function relativeInside(root: string, path: string): string | undefined {
  // The common case, an absolute normalized path under an absolute normalized root, needs
  // no splitting: walks ask about every file of large trees.
  if (isAbsolute(path) && isAbsolute(root) && !NOT_NORMAL.test(path) && !NOT_NORMAL.test(root)) {
    if (path === root) return "";
    if (root === "/") return path.slice(1);
    return path.startsWith(root) && path.charCodeAt(root.length) === 47
      ? path.slice(root.length + 1)
      : undefined;
  }
  const rel = relative(root, path);
  return rel === ".." || rel.startsWith("../") ? undefined : rel;
}
