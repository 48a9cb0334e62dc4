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
 *   included), `[...]` classes and `\` escapes handed to Go's regexp syntax, which is
 *   translated here to JavaScript's;
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
  readonly regexp: RegExp | undefined;
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
      return pattern.regexp!.test(path);
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
  let regexp: RegExp | undefined;
  if (kind === REGEXP) {
    try {
      regexp = new RegExp(goRegexpToJs(`${source}$`), "u");
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
    regexp,
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

/** A regexp Go would not compile; Docker then fails the build on the pattern. */
class GoSyntaxError extends Error {}

/**
 * Translate Go's regexp syntax (RE2, Perl flags) to a JavaScript `u` regexp, for what a
 * compiled glob can hold: literals, `^` `$` `.` groups and repeats, classes with ranges,
 * POSIX and Perl classes, and escapes. Go's meaning is kept where JavaScript differs: `.`
 * stops only at `\n`, `\s` is ASCII, `]` alone is a literal.
 */
function goRegexpToJs(source: string): string {
  const chars = Array.from(source);
  let at = 0, open = 0, out = "";
  while (at < chars.length) {
    const char = chars[at++];
    if (char === "\\") {
      // Escapes that only mean something outside a class, then those that work in both.
      const escape = chars[at];
      if (escape === "A" || escape === "z") {
        out += escape === "A" ? "^" : "$";
        at++;
      } else if (escape === "b" || escape === "B") {
        out += `\\${escape}`;
        at++;
      } else if (escape === "Q") {
        // Literal text up to \E (or the end).
        for (at++; at < chars.length && !(chars[at] === "\\" && chars[at + 1] === "E"); at++) {
          out += literal(chars[at].codePointAt(0)!);
        }
        at += 2;
      } else {
        const [member, next] = classEscape(chars, at - 1);
        out += typeof member === "number" ? literal(member) : `[${member}]`;
        at = next;
      }
    } else if (char === "[") {
      let negated = false;
      if (chars[at] === "^") {
        negated = true;
        at++;
      }
      let members = "";
      for (let first = true; first || chars[at] !== "]"; first = false) {
        if (at >= chars.length) throw new GoSyntaxError("a [ class is not closed");
        const [member, next] = classMember(chars, at);
        members += member;
        at = next;
      }
      at++;
      out += `[${negated ? "^" : ""}${members}]`;
    } else if (char === ".") {
      out += "[^\\n]";
    } else if (char === "(") {
      if (chars[at] === "?") throw new GoSyntaxError("(? groups are not supported");
      out += "(?:";
      open++;
    } else if (char === ")") {
      if (open-- === 0) throw new GoSyntaxError("a ) has no matching (");
      out += ")";
    } else if ("^$|*+?".includes(char)) {
      out += char;
    } else {
      // `]`, `{` and `}` alone are literals in Go (patternmatcher escapes braces anyway).
      out += literal(char.codePointAt(0)!);
    }
  }
  if (open !== 0) throw new GoSyntaxError("a ( is not closed");
  return out;
}

/** One member of a Go class at `at`: a POSIX or Perl class, a character, or a range. */
function classMember(chars: readonly string[], at: number): [string, number] {
  if (chars[at] === "[" && chars[at + 1] === ":") {
    // Go takes everything up to the next ":]" as the class name, even past a "]".
    const rest = chars.slice(at).join("");
    const end = rest.indexOf(":]", 2);
    if (end !== -1) {
      const ranges = posixClasses().get(rest.slice(0, end + 2));
      if (ranges === undefined) throw new GoSyntaxError(`unknown class ${rest.slice(0, end + 2)}`);
      return [ranges, at + Array.from(rest.slice(0, end + 2)).length];
    }
  }
  const [low, afterLow] = classChar(chars, at);
  if (typeof low === "string") return [low, afterLow];
  if (chars[afterLow] === "-" && afterLow + 1 < chars.length && chars[afterLow + 1] !== "]") {
    const [high, afterHigh] = classChar(chars, afterLow + 1);
    if (typeof high === "string" || high < low) {
      throw new GoSyntaxError("a class range is reversed or ends in a class");
    }
    return [`${literal(low)}-${literal(high)}`, afterHigh];
  }
  return [literal(low), afterLow];
}

/** A class character (its code point) or a Perl/Unicode class (members), and what follows. */
function classChar(chars: readonly string[], at: number): [number | string, number] {
  if (at >= chars.length) throw new GoSyntaxError("a [ class is not closed");
  if (chars[at] === "\\") return classEscape(chars, at);
  return [chars[at].codePointAt(0)!, at + 1];
}

/**
 * The escape at `at` (a backslash) as Go reads it: a Perl or Unicode class (as class
 * members), or one character (its code point).
 */
function classEscape(chars: readonly string[], at: number): [number | string, number] {
  const escape = chars[at + 1];
  if (escape === undefined) throw new GoSyntaxError("a trailing \\ escapes nothing");
  const perl = perlClasses().get(escape);
  if (perl !== undefined) return [perl, at + 2];
  if (escape === "p" || escape === "P") {
    // Only one-letter categories can get here: patternmatcher escapes `{`.
    const name = chars[at + 2];
    if (name === undefined || !"LMNPSZ".includes(name)) {
      throw new GoSyntaxError(`\\${escape} needs a one-letter category here: L, M, N, P, S or Z`);
    }
    return [`\\${escape}{${name}}`, at + 3];
  }
  const code = escape.codePointAt(0)!;
  if (code < 0x80 && !/[0-9A-Za-z]/.test(escape)) return [code, at + 2];
  const octal = /^[0-7]{1,3}/.exec(chars.slice(at + 1, at + 4).join(""))?.[0];
  if (octal !== undefined && (escape === "0" || octal.length > 1)) {
    return [parseInt(octal, 8), at + 1 + octal.length];
  }
  if (escape === "x") {
    const hex = chars.slice(at + 2, at + 4).join("");
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new GoSyntaxError("\\x needs two hex digits");
    return [parseInt(hex, 16), at + 4];
  }
  const control = CONTROL_ESCAPES.get(escape);
  if (control !== undefined) return [control, at + 2];
  throw new GoSyntaxError(`\\${escape} is not an escape Go's regexp knows`);
}

/** A character as a JavaScript `u` regexp literal, the same inside a class and out. */
function literal(code: number): string {
  const char = String.fromCodePoint(code);
  return /^[0-9A-Za-z_]$/.test(char) ? char : `\\u{${code.toString(16)}}`;
}

type Ranges = readonly (readonly [number, number])[];

/** Class members (inside `[...]`) for ranges of code points. */
function members(ranges: Ranges): string {
  return ranges.map(([low, high]) =>
    low === high ? literal(low) : `${literal(low)}-${literal(high)}`
  ).join("");
}

/** The code points not in `ranges` (sorted, disjoint). */
function complement(ranges: Ranges): Ranges {
  const out: [number, number][] = [];
  let next = 0;
  for (const [low, high] of ranges) {
    if (low > next) out.push([next, low - 1]);
    next = high + 1;
  }
  if (next <= 0x10ffff) out.push([next, 0x10ffff]);
  return out;
}

const code = (char: string) => char.codePointAt(0)!;
const DIGIT: Ranges = [[code("0"), code("9")]];
const SPACE: Ranges = [[9, 10], [12, 13], [32, 32]];
const WORD: Ranges = [[code("0"), code("9")], [code("A"), code("Z")], [code("_"), code("_")], [
  code("a"),
  code("z"),
]];

// The class tables are made on first use: few patterns have classes, and every run of imgtool
// loads this module.
let perlTable: Map<string, string> | undefined;
let posixTable: Map<string, string> | undefined;

/** Go's Perl classes are ASCII-only (JavaScript's `\s` is not). */
function perlClasses(): Map<string, string> {
  return perlTable ??= new Map<string, string>([
    ["d", members(DIGIT)],
    ["D", members(complement(DIGIT))],
    ["s", members(SPACE)],
    ["S", members(complement(SPACE))],
    ["w", members(WORD)],
    ["W", members(complement(WORD))],
  ]);
}

const POSIX_RANGES: [string, Ranges][] = [
  ["alnum", [[code("0"), code("9")], [code("A"), code("Z")], [code("a"), code("z")]]],
  ["alpha", [[code("A"), code("Z")], [code("a"), code("z")]]],
  ["ascii", [[0, 0x7f]]],
  ["blank", [[9, 9], [32, 32]]],
  ["cntrl", [[0, 0x1f], [0x7f, 0x7f]]],
  ["digit", DIGIT],
  ["graph", [[code("!"), code("~")]]],
  ["lower", [[code("a"), code("z")]]],
  ["print", [[code(" "), code("~")]]],
  ["punct", [[code("!"), code("/")], [code(":"), code("@")], [code("["), code("`")], [
    code("{"),
    code("~"),
  ]]],
  ["space", [[9, 13], [32, 32]]],
  ["upper", [[code("A"), code("Z")]]],
  ["word", WORD],
  ["xdigit", [[code("0"), code("9")], [code("A"), code("F")], [code("a"), code("f")]]],
];

/** Go's POSIX classes (`[:alpha:]`, `[:^alpha:]`) as class members. */
function posixClasses(): Map<string, string> {
  return posixTable ??= new Map<string, string>(
    POSIX_RANGES.flatMap(([name, ranges]) => [
      [`[:${name}:]`, members(ranges)],
      [`[:^${name}:]`, members(complement(ranges))],
    ]),
  );
}

const CONTROL_ESCAPES = new Map<string, number>([
  ["a", 7],
  ["f", 12],
  ["n", 10],
  ["r", 13],
  ["t", 9],
  ["v", 11],
]);

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
