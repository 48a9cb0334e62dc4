/**
 * Go regular expressions (RE2 syntax, Perl flags) matched in linear time, for the patterns
 * a `.dockerignore` line compiles to (see `src/ignore.ts`).
 *
 * Docker compiles each ignore pattern to a Go regexp, and Go's engine never backtracks.
 * JavaScript's does: `*a*a*a*a*a*a*a*a*a*a*a*a*b` took half a minute on a 38-character name.
 * So the regexp is parsed here once, and matched either by a JavaScript `RegExp` (native and
 * fastest) when its shape keeps backtracking bounded (at most one repeat that can choose its
 * length, or `**` at the start plus one `*`: what almost every real pattern is), or else by
 * a Thompson automaton that walks the text once, keeping the set of states it can be in.
 *
 * Go's meaning is kept where JavaScript differs: `.` stops only at `\n`, `\s` `\d` `\w` and
 * `\b` are ASCII, `]` alone is a literal, `\Q...\E` quotes, `\A` and `\z` anchor.
 *
 * @module
 */

/**
 * A regexp Go would not compile (Docker then fails the build on the pattern).
 *
 * @example
 * ```ts
 * import { compileGoRegexp, GoSyntaxError } from "./go_regexp.ts";
 * try {
 *   compileGoRegexp("^a(b$");
 * } catch (error) {
 *   console.log(error instanceof GoSyntaxError, (error as Error).message); // true a ( is not closed
 * }
 * ```
 */
export class GoSyntaxError extends Error {}

/**
 * How {@link compileGoRegexp} matches: `auto` picks JavaScript's `RegExp` where backtracking
 * is bounded and the automaton elsewhere; `automaton` always walks the automaton (tests
 * compare the two).
 *
 * @example
 * ```ts
 * import { compileGoRegexp, type GoRegexpEngine } from "./go_regexp.ts";
 * const engine: GoRegexpEngine = "automaton";
 * console.log(compileGoRegexp("^[^/]*\\.log$", engine)("app.log")); // true
 * ```
 */
export type GoRegexpEngine = "auto" | "automaton";

/**
 * Compile a Go regexp to a test of whole strings (a search, as Go's `MatchString`: anchor it
 * with `^` and `$`). Throws a {@link GoSyntaxError} for what Go rejects.
 *
 * @example
 * ```ts
 * import { compileGoRegexp } from "./go_regexp.ts";
 * // The regexp of the glob `**\/*a*a*b`: any folders, then a name with two a's before a b.
 * const test = compileGoRegexp("^(.*\/)?[^/]*a[^/]*a[^/]*b$");
 * console.log(test("src/xaxab"), test("src/xab"), test("a/x/b")); // true false false
 * ```
 */
export function compileGoRegexp(
  source: string,
  engine: GoRegexpEngine = "auto",
): (text: string) => boolean {
  const tree = new Parser(source).parse();
  if (engine === "auto" && backtrackingIsBounded(tree)) {
    const regexp = new RegExp(toJs(tree), "u");
    return (text) => regexp.test(text);
  }
  const program = new Program(tree);
  return (text) => program.matches(text);
}

// ---------------------------------------------------------------------------------------
// The syntax tree.

/** A set of code points: ranges and Unicode categories (`\pL`), maybe complemented. */
interface CharSet {
  /** Sorted, disjoint, inclusive. */
  readonly ranges: Ranges;
  /** JavaScript `u` class members for Unicode categories: `\p{L}`, `\P{N}`. */
  readonly categories: readonly string[];
  readonly negated: boolean;
}

const BEGIN = 0, END = 1, WORD_BOUNDARY = 2, NOT_WORD_BOUNDARY = 3;
type Assertion = typeof BEGIN | typeof END | typeof WORD_BOUNDARY | typeof NOT_WORD_BOUNDARY;

type Node =
  | { readonly kind: "set"; readonly set: CharSet }
  | { readonly kind: "assert"; readonly assertion: Assertion }
  | { readonly kind: "concat"; readonly items: readonly Node[] }
  | { readonly kind: "alternate"; readonly items: readonly Node[] }
  | {
    readonly kind: "repeat";
    readonly item: Node;
    readonly min: 0 | 1;
    readonly unbounded: boolean;
    /** Non-greedy (`*?`): the same strings match; kept so a second `?` is an error. */
    lazy: boolean;
  };

const literalNode = (code: number): Node => ({
  kind: "set",
  set: { ranges: [[code, code]], categories: [], negated: false },
});

// ---------------------------------------------------------------------------------------
// The parser: Go's syntax, as far as a compiled glob can use it.

/** A class under construction: the union of its members. */
interface Members {
  ranges: (readonly [number, number])[];
  categories: string[];
}

class Parser {
  readonly #chars: readonly string[];
  #at = 0;

  constructor(source: string) {
    this.#chars = Array.from(source);
  }

  parse(): Node {
    const chars = this.#chars;
    // One frame per open group: the finished alternatives and the sequence being read.
    const frames: { alternatives: Node[]; sequence: Node[] }[] = [{
      alternatives: [],
      sequence: [],
    }];
    const frame = () => frames[frames.length - 1];
    while (this.#at < chars.length) {
      const char = chars[this.#at++];
      const sequence = frame().sequence;
      if (char === "\\") {
        this.#escape(sequence);
      } else if (char === "[") {
        sequence.push({ kind: "set", set: this.#class() });
      } else if (char === ".") {
        sequence.push({ kind: "set", set: { ranges: NEWLINE, categories: [], negated: true } });
      } else if (char === "(") {
        if (chars[this.#at] === "?") throw new GoSyntaxError("(? groups are not supported");
        frames.push({ alternatives: [], sequence: [] });
      } else if (char === ")") {
        if (frames.length === 1) throw new GoSyntaxError("a ) has no matching (");
        const group = frames.pop()!;
        frame().sequence.push(alternation([...group.alternatives, concat(group.sequence)]));
      } else if (char === "|") {
        frame().alternatives.push(concat(sequence));
        frame().sequence = [];
      } else if (char === "^" || char === "$") {
        sequence.push({ kind: "assert", assertion: char === "^" ? BEGIN : END });
      } else if (char === "*" || char === "+" || char === "?") {
        repeatLast(sequence, char);
      } else {
        // `]`, `{` and `}` alone are literals in Go (patternmatcher escapes braces anyway).
        sequence.push(literalNode(char.codePointAt(0)!));
      }
    }
    if (frames.length !== 1) throw new GoSyntaxError("a ( is not closed");
    return alternation([...frames[0].alternatives, concat(frames[0].sequence)]);
  }

  /** An escape outside a class, its backslash just read. */
  #escape(sequence: Node[]): void {
    const chars = this.#chars;
    const escape = chars[this.#at];
    if (escape === "A" || escape === "z") {
      sequence.push({ kind: "assert", assertion: escape === "A" ? BEGIN : END });
      this.#at++;
    } else if (escape === "b" || escape === "B") {
      sequence.push({
        kind: "assert",
        assertion: escape === "b" ? WORD_BOUNDARY : NOT_WORD_BOUNDARY,
      });
      this.#at++;
    } else if (escape === "Q") {
      // Literal text up to \E (or the end).
      let at = this.#at + 1;
      for (; at < chars.length && !(chars[at] === "\\" && chars[at + 1] === "E"); at++) {
        sequence.push(literalNode(chars[at].codePointAt(0)!));
      }
      this.#at = at + 2;
    } else {
      const [escaped, next] = escapeAt(chars, this.#at - 1);
      this.#at = next;
      sequence.push(
        typeof escaped === "number"
          ? literalNode(escaped)
          : { kind: "set", set: finish(escaped, false) },
      );
    }
  }

  /** A class, its `[` just read. */
  #class(): CharSet {
    const chars = this.#chars;
    let negated = false;
    if (chars[this.#at] === "^") {
      negated = true;
      this.#at++;
    }
    const members: Members = { ranges: [], categories: [] };
    for (let first = true; first || chars[this.#at] !== "]"; first = false) {
      if (this.#at >= chars.length) throw new GoSyntaxError("a [ class is not closed");
      this.#at = classMember(chars, this.#at, members);
    }
    this.#at++;
    return finish(members, negated);
  }
}

function concat(items: Node[]): Node {
  // `**/**/` is `**/`: two "any folders" groups in a row match what one does, and one keeps
  // the fast path open.
  const kept = items.filter((item, index) =>
    index === 0 || !isAnyFoldersGroup(item) || !isAnyFoldersGroup(items[index - 1])
  );
  return kept.length === 1 ? kept[0] : { kind: "concat", items: kept };
}

function alternation(items: Node[]): Node {
  return items.length === 1 ? items[0] : { kind: "alternate", items };
}

/** Apply `*`, `+` or `?` to the last item (a `?` after a repeat makes it non-greedy). */
function repeatLast(sequence: Node[], operator: string): void {
  const last = sequence.pop();
  if (last === undefined) {
    throw new GoSyntaxError(`missing argument to repetition operator ${operator}`);
  }
  if (last.kind === "repeat") {
    if (operator !== "?" || last.lazy) {
      throw new GoSyntaxError(`invalid nested repetition operator ${operator}`);
    }
    last.lazy = true;
    sequence.push(last);
    return;
  }
  sequence.push({
    kind: "repeat",
    item: last,
    min: operator === "+" ? 1 : 0,
    unbounded: operator !== "?",
    lazy: false,
  });
}

/** One member of a Go class at `at`: a POSIX or Perl class, a character, or a range. */
function classMember(chars: readonly string[], at: number, members: Members): number {
  if (chars[at] === "[" && chars[at + 1] === ":") {
    // Go takes everything up to the next ":]" as the class name, even past a "]".
    const rest = chars.slice(at).join("");
    const end = rest.indexOf(":]", 2);
    if (end !== -1) {
      const name = rest.slice(0, end + 2);
      const ranges = posixClass(name);
      if (ranges === undefined) throw new GoSyntaxError(`unknown class ${name}`);
      members.ranges.push(...ranges);
      return at + Array.from(name).length;
    }
  }
  const [low, afterLow] = classChar(chars, at);
  if (typeof low !== "number") {
    add(members, low);
    return afterLow;
  }
  if (chars[afterLow] === "-" && afterLow + 1 < chars.length && chars[afterLow + 1] !== "]") {
    const [high, afterHigh] = classChar(chars, afterLow + 1);
    if (typeof high !== "number" || high < low) {
      throw new GoSyntaxError("a class range is reversed or ends in a class");
    }
    members.ranges.push([low, high]);
    return afterHigh;
  }
  members.ranges.push([low, low]);
  return afterLow;
}

/** A class character at `at` (its code point) or a Perl/Unicode class, and what follows. */
function classChar(chars: readonly string[], at: number): [number | Members, number] {
  if (at >= chars.length) throw new GoSyntaxError("a [ class is not closed");
  if (chars[at] === "\\") return escapeAt(chars, at);
  return [chars[at].codePointAt(0)!, at + 1];
}

function add(members: Members, more: Members): void {
  members.ranges.push(...more.ranges);
  members.categories.push(...more.categories);
}

/**
 * The escape at `at` (a backslash) as Go reads it: a Perl or Unicode class, or one
 * character (its code point), and what follows.
 */
function escapeAt(chars: readonly string[], at: number): [number | Members, number] {
  const escape = chars[at + 1];
  if (escape === undefined) throw new GoSyntaxError("a trailing \\ escapes nothing");
  const perl = perlClass(escape);
  if (perl !== undefined) return [{ ranges: [...perl], categories: [] }, at + 2];
  if (escape === "p" || escape === "P") {
    // Only one-letter categories can get here: patternmatcher escapes `{`.
    const name = chars[at + 2];
    if (name === undefined || !"LMNPSZ".includes(name)) {
      throw new GoSyntaxError(`\\${escape} needs a one-letter category here: L, M, N, P, S or Z`);
    }
    return [{ ranges: [], categories: [`\\${escape}{${name}}`] }, at + 3];
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

/** A class from its members: ranges sorted and merged. */
function finish(members: Members, negated: boolean): CharSet {
  return { ranges: merge(members.ranges), categories: members.categories, negated };
}

// ---------------------------------------------------------------------------------------
// Character classes.

type Ranges = readonly (readonly [number, number])[];

function merge(ranges: readonly (readonly [number, number])[]): Ranges {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [low, high] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && low <= last[1] + 1) last[1] = Math.max(last[1], high);
    else out.push([low, high]);
  }
  return out;
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
const NEWLINE: Ranges = [[10, 10]];
const DIGIT: Ranges = [[code("0"), code("9")]];
const SPACE: Ranges = [[9, 10], [12, 13], [32, 32]];
const WORD: Ranges = [[code("0"), code("9")], [code("A"), code("Z")], [code("_"), code("_")], [
  code("a"),
  code("z"),
]];

/** Go's Perl classes, which are ASCII-only (JavaScript's `\s` is not). */
function perlClass(escape: string): Ranges | undefined {
  const ranges = escape === "d" || escape === "D"
    ? DIGIT
    : escape === "s" || escape === "S"
    ? SPACE
    : escape === "w" || escape === "W"
    ? WORD
    : undefined;
  if (ranges === undefined) return undefined;
  return escape === escape.toUpperCase() ? complement(ranges) : ranges;
}

const POSIX_RANGES = new Map<string, Ranges>([
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
]);

/** Go's POSIX classes (`[:alpha:]`, `[:^alpha:]`) by their full text. */
function posixClass(text: string): Ranges | undefined {
  const negated = text.startsWith("[:^");
  const ranges = POSIX_RANGES.get(text.slice(negated ? 3 : 2, -2));
  return ranges === undefined ? undefined : negated ? complement(ranges) : ranges;
}

const CONTROL_ESCAPES = new Map<string, number>([
  ["a", 7],
  ["f", 12],
  ["n", 10],
  ["r", 13],
  ["t", 9],
  ["v", 11],
]);

/** A test of one code point, with a table for ASCII (what paths are mostly made of). */
function setTest(set: CharSet): (code: number) => boolean {
  const { ranges, negated } = set;
  const categories = set.categories.map((category) => new RegExp(`[${category}]`, "u"));
  const slow = (code: number): boolean => {
    let low = 0, high = ranges.length - 1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      if (code < ranges[middle][0]) high = middle - 1;
      else if (code > ranges[middle][1]) low = middle + 1;
      else return !negated;
    }
    if (categories.some((category) => category.test(String.fromCodePoint(code)))) return !negated;
    return negated;
  };
  const ascii = new Uint8Array(128);
  for (let char = 0; char < 128; char++) ascii[char] = slow(char) ? 1 : 0;
  return (code) => code < 128 ? ascii[code] === 1 : slow(code);
}

/** The single code point a set stands for, or -1. */
function singleCode(set: CharSet): number {
  return !set.negated && set.categories.length === 0 && set.ranges.length === 1 &&
      set.ranges[0][0] === set.ranges[0][1]
    ? set.ranges[0][0]
    : -1;
}

// ---------------------------------------------------------------------------------------
// JavaScript's RegExp, where its backtracking stays bounded.

/**
 * Does JavaScript's backtracking stay linear in the text (times the pattern's length) for
 * this anchored regexp? It does with at most one repeat that can choose how much it takes.
 * It also does for the shapes globs take, read as stretches between literal `/`s:
 *
 * - a `[^/]*` (one per stretch, whose other items cannot match `/`) lies within one name,
 *   and only one of its lengths ends that name where the next `/` (or the end) must be;
 * - one "any folders" group (a `**` before more of the pattern), with no `[^/]*` before it,
 *   can only end at each `/` of the text, and from each the rest has one way to go;
 * - a `.*` (a `**` at the end) last, without a group, and alone in its stretch.
 */
function backtrackingIsBounded(tree: Node): boolean {
  const items = tree.kind === "concat" ? tree.items : [tree];
  // Unanchored, a JavaScript search would try every start.
  if (items[0]?.kind !== "assert" || items[0].assertion !== BEGIN) return false;
  if (hasAlternation(tree)) return false;
  if (choices(tree) <= 1) return true;
  const last = items.length - (isAssertion(items[items.length - 1], END) ? 1 : 0);
  let group = false, star = false, starInStretch = false, slashInStretch = false;
  for (let index = 1; index < last; index++) {
    const item = items[index];
    if (item.kind === "set") {
      if (singleCode(item.set) === SLASH) {
        starInStretch = slashInStretch = false;
      } else if (matchesSlash(item.set)) {
        if (starInStretch) return false;
        slashInStretch = true;
      }
    } else if (isAnyFoldersGroup(item)) {
      if (group || star) return false;
      group = true;
      starInStretch = slashInStretch = false;
    } else if (item.kind === "repeat" && item.unbounded && item.item.kind === "set") {
      if (matchesSlash(item.item.set)) {
        if (group || starInStretch || index !== last - 1) return false;
      } else {
        if (starInStretch || slashInStretch) return false;
        star = starInStretch = true;
      }
    } else {
      return false;
    }
  }
  return true;
}

const isAssertion = (node: Node | undefined, assertion: Assertion) =>
  node?.kind === "assert" && node.assertion === assertion;

const matchesSlash = (set: CharSet) => setTest(set)(SLASH);

const SLASH = 0x2f;

function hasAlternation(node: Node): boolean {
  switch (node.kind) {
    case "alternate":
      return true;
    case "concat":
      return node.items.some(hasAlternation);
    case "repeat":
      return hasAlternation(node.item);
    default:
      return false;
  }
}

/** How many repeats choose their length (an "any folders" group counts once). */
function choices(node: Node): number {
  switch (node.kind) {
    case "concat":
    case "alternate":
      return node.items.reduce((sum, item) => sum + choices(item), 0);
    case "repeat": {
      const inner = choices(node.item);
      return !node.unbounded && inner > 0 ? inner : inner + 1;
    }
    default:
      return 0;
  }
}

/** The "any folders" group, `(.*` `/)?`: a glob's `**` before more of the pattern. */
function isAnyFoldersGroup(node: Node): boolean {
  if (node.kind !== "repeat" || node.unbounded || node.min !== 0) return false;
  const inner = node.item;
  if (inner.kind !== "concat" || inner.items.length !== 2) return false;
  const [any, slash] = inner.items;
  return any.kind === "repeat" && any.unbounded && any.item.kind === "set" &&
    isAnyButNewline(any.item.set) && slash.kind === "set" && singleCode(slash.set) === SLASH;
}

/** `.`: every code point but `\n`. */
const isAnyButNewline = (set: CharSet) =>
  set.negated && set.categories.length === 0 && singleCode({ ...set, negated: false }) === 0x0a;

/** The JavaScript `u` source of a tree. */
function toJs(node: Node): string {
  switch (node.kind) {
    case "set": {
      const single = singleCode(node.set);
      if (single !== -1) return literal(single);
      const members = node.set.ranges.map(([low, high]) =>
        low === high ? literal(low) : `${literal(low)}-${literal(high)}`
      ).join("");
      return `[${node.set.negated ? "^" : ""}${members}${node.set.categories.join("")}]`;
    }
    case "assert":
      return ["^", "$", "\\b", "\\B"][node.assertion];
    case "concat":
      return node.items.map(toJs).join("");
    case "alternate":
      return `(?:${node.items.map(toJs).join("|")})`;
    case "repeat":
      return `(?:${toJs(node.item)})${node.unbounded ? (node.min === 0 ? "*" : "+") : "?"}`;
  }
}

/** A character as a JavaScript `u` regexp literal, the same inside a class and out. */
function literal(code: number): string {
  return (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) ||
      (code >= 0x61 && code <= 0x7a) || code === 0x5f
    ? String.fromCharCode(code)
    : `\\u{${code.toString(16)}}`;
}

// ---------------------------------------------------------------------------------------
// The automaton: Thompson's construction, walked as a set of states (no backtracking).

const CHAR = 0, SPLIT = 1, JUMP = 2, ASSERT = 3, MATCH = 4;

class Program {
  /** Per instruction: what it does and its operands. */
  readonly #op: number[] = [];
  /** CHAR: the code point (or -1: see `#tests`); SPLIT, JUMP: a target; ASSERT: which. */
  readonly #first: number[] = [];
  /** SPLIT: the second target. */
  readonly #second: number[] = [];
  readonly #tests: (((code: number) => boolean) | undefined)[] = [];
  /** Does every match start at the beginning (a leading `^`)? Then only one start. */
  readonly #anchored: boolean;
  // Work lists and marks, reused by every call (matching never re-enters).
  #current: Int32Array = new Int32Array(0);
  #next: Int32Array = new Int32Array(0);
  #marks: Uint32Array = new Uint32Array(0);
  #stack: Int32Array = new Int32Array(0);
  #stamp = 0;

  constructor(tree: Node) {
    this.#emit(tree);
    this.#push(MATCH, 0, 0, undefined);
    const first = tree.kind === "concat" ? tree.items[0] : tree;
    this.#anchored = first?.kind === "assert" && first.assertion === BEGIN;
    const size = this.#op.length;
    this.#current = new Int32Array(size);
    this.#next = new Int32Array(size);
    this.#marks = new Uint32Array(size);
    this.#stack = new Int32Array(size * 2 + 2);
  }

  #push(op: number, first: number, second: number, test: ((code: number) => boolean) | undefined) {
    this.#op.push(op);
    this.#first.push(first);
    this.#second.push(second);
    this.#tests.push(test);
    return this.#op.length - 1;
  }

  #emit(node: Node): void {
    switch (node.kind) {
      case "set": {
        const single = singleCode(node.set);
        this.#push(CHAR, single, 0, single === -1 ? setTest(node.set) : undefined);
        return;
      }
      case "assert":
        this.#push(ASSERT, node.assertion, 0, undefined);
        return;
      case "concat":
        for (const item of node.items) this.#emit(item);
        return;
      case "alternate": {
        const jumps: number[] = [];
        node.items.forEach((item, index) => {
          const last = index === node.items.length - 1;
          const split = last ? -1 : this.#push(SPLIT, 0, 0, undefined);
          if (split !== -1) this.#first[split] = split + 1;
          this.#emit(item);
          if (!last) {
            jumps.push(this.#push(JUMP, 0, 0, undefined));
            this.#second[split] = this.#op.length;
          }
        });
        for (const jump of jumps) this.#first[jump] = this.#op.length;
        return;
      }
      case "repeat": {
        if (node.min === 1) {
          // item, then back to it or on.
          const start = this.#op.length;
          this.#emit(node.item);
          const split = this.#push(SPLIT, start, 0, undefined);
          this.#second[split] = this.#op.length;
          return;
        }
        // Into the item or past it; an unbounded item loops back to the choice.
        const split = this.#push(SPLIT, 0, 0, undefined);
        this.#first[split] = split + 1;
        this.#emit(node.item);
        if (node.unbounded) this.#push(JUMP, split, 0, undefined);
        this.#second[split] = this.#op.length;
        return;
      }
    }
  }

  /** Does the regexp match somewhere in `text`? One pass, at most every state per character. */
  matches(text: string): boolean {
    const length = text.length, anchored = this.#anchored;
    let current = this.#current, next = this.#next;
    let position = 0;
    let here = length > 0 ? text.codePointAt(0)! : -1;
    this.#newStamp();
    let count = this.#add(current, 0, 0, -1, here, 0, length);
    while (count >= 0 && position < length) {
      if (count === 0 && anchored) return false;
      const before = here;
      position += before > 0xffff ? 2 : 1;
      here = position < length ? text.codePointAt(position)! : -1;
      this.#newStamp();
      let added = 0;
      for (let index = 0; index < count && added >= 0; index++) {
        const pc = current[index];
        const single = this.#first[pc];
        if (single === -1 ? this.#tests[pc]!(before) : single === before) {
          added = this.#add(next, added, pc + 1, before, here, position, length);
        }
      }
      if (!anchored && added >= 0) {
        added = this.#add(next, added, 0, before, here, position, length);
      }
      [current, next] = [next, current];
      count = added;
    }
    return count < 0;
  }

  #newStamp(): void {
    if (++this.#stamp === 0xffffffff) {
      this.#marks.fill(0);
      this.#stamp = 1;
    }
  }

  /**
   * Add `start` and every state reachable from it without reading (through choices, and
   * assertions that hold at `position`, between `before` and `here`) to `list`; returns the
   * new count, or -1 once the end is reachable: a match. Only reading states are listed.
   */
  #add(
    list: Int32Array,
    count: number,
    start: number,
    before: number,
    here: number,
    position: number,
    length: number,
  ): number {
    const marks = this.#marks, stack = this.#stack, stamp = this.#stamp;
    let top = 0;
    stack[top++] = start;
    while (top > 0) {
      const pc = stack[--top];
      if (marks[pc] === stamp) continue;
      marks[pc] = stamp;
      switch (this.#op[pc]) {
        case CHAR:
          list[count++] = pc;
          break;
        case MATCH:
          return -1;
        case JUMP:
          stack[top++] = this.#first[pc];
          break;
        case SPLIT:
          stack[top++] = this.#second[pc];
          stack[top++] = this.#first[pc];
          break;
        case ASSERT:
          if (holds(this.#first[pc], before, here, position, length)) stack[top++] = pc + 1;
          break;
      }
    }
    return count;
  }
}

/** Does an assertion hold at `position`, between the code points `before` and `here` (-1: none)? */
function holds(
  assertion: number,
  before: number,
  here: number,
  position: number,
  length: number,
): boolean {
  switch (assertion) {
    case BEGIN:
      return position === 0;
    case END:
      return position === length;
    case WORD_BOUNDARY:
      return isWord(before) !== isWord(here);
    default:
      return isWord(before) === isWord(here);
  }
}

function isWord(code: number): boolean {
  return (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x61 && code <= 0x7a) || code === 0x5f;
}
