/**
 * Writing an instruction for a Dockerfile whose escape character is a backtick.
 *
 * Plugins (and the helpers in `dockerfile.ts`) write instructions for Docker's default escape
 * character, `\`. A Dockerfile that starts with `# escape=\`` gives the backtick that role for the
 * whole file, so the instructions imgtool adds after the user's own must be written for it.
 * {@link rewriteForEscape} does that, following BuildKit's parser (`frontend/dockerfile/parser`
 * and `shell/lex.go`) step by step:
 *
 * - line continuations: the `\` that ends a continued line becomes a backtick;
 * - arguments BuildKit reads as shell words (`ENV`, `LABEL`, `ARG`, `WORKDIR`, `USER`, `COPY`,
 *   `ADD`, `VOLUME`, `EXPOSE`, `STOPSIGNAL`, `FROM`, also each element of `COPY`/`ADD`/`VOLUME`
 *   in JSON form) and flags (`--chown=...`): what an escape stands for, and a literal
 *   backtick, are written in single quotes instead, which mean the same whatever the escape
 *   character (to buildah too, whose word reader always escapes with `\`);
 * - `RUN`, `CMD`, `ENTRYPOINT`, `SHELL`, `HEALTHCHECK` and `MAINTAINER` arguments are passed on
 *   as they are by both escape characters, so only their continuations change.
 *
 * Where it cannot show that the rewritten text means exactly what the original meant (an escape
 * character inside `${...}` or in a variable name, a backtick at the very end of the
 * instruction, which would continue it, an instruction it does not know), it says why instead
 * of guessing.
 *
 * @module
 */

/** Why an instruction cannot be rewritten, and how to fix it. */
export interface EscapeRewriteProblem {
  /** What stands in the way, in one sentence. */
  readonly problem: string;
  /** How to fix it. */
  readonly hint: string;
}

/**
 * The instruction (written for the default escape character `\`) rewritten for `escape`, or
 * why it cannot be. For `\` the instruction is returned as it is.
 *
 * @example
 * ```ts
 * import { env, run } from "imgtool";
 * import { rewriteForEscape } from "./dockerfile_escape.ts";
 * console.log(rewriteForEscape(env({ DIR: 'C:\\data "x"' }), "`"));
 * // { text: `ENV DIR='C:\\data "x"'` }
 * console.log(rewriteForEscape(run(["make", "make install"]), "`"));
 * // { text: "RUN make `\n    && make install" }
 * console.log(rewriteForEscape("RUN echo `date`", "`"));
 * // { problem: "its last line ends in `, which the escape character ` reads as a line continuation", hint: ... }
 * ```
 */
export function rewriteForEscape(
  instruction: string,
  escape: "\\" | "`",
): { readonly text: string } | EscapeRewriteProblem {
  if (escape === "\\") return { text: instruction };
  try {
    return { text: rewrite(instruction) };
  } catch (error) {
    if (error instanceof Refusal) return { problem: error.message, hint: error.hint };
    throw error;
  }
}

const BACKTICK = "`";
const VALUE_HINT =
  "write the value without \\ or ` there, or remove the escape directive from the Dockerfile";

class Refusal extends Error {
  constructor(message: string, readonly hint: string = VALUE_HINT) {
    super(message);
  }
}

// Go's unicode.IsSpace, which BuildKit uses to trim lines and find comments.
const GO_SPACE = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f" +
  "\\u205f\\u3000";
const COMMENT_LINE = new RegExp(`^[${GO_SPACE}]*#`);
const EMPTY_LINE = new RegExp(`^[${GO_SPACE}]*$`);
// BuildKit's continuation: the escape character, not itself escaped, then blanks at the end.
const CONTINUED_BACKSLASH = /([^\\])\\[ \t]*$|^\\[ \t]*$/;
const ENDS_IN_BACKTICK = /`[ \t]*$/;

type Line =
  | { readonly kind: "content"; readonly start: number; readonly end: number }
  | { readonly kind: "skipped"; readonly text: string };

function rewrite(instruction: string): string {
  const physical = instruction.split("\n");
  // A comment of one line is no instruction: it ends at its line whatever it ends with.
  if (physical.length === 1 && COMMENT_LINE.test(physical[0])) return instruction;
  // The logical line, as the parser joins it, and where each physical line's part lies in it.
  const lines: Line[] = [];
  let logical = "";
  for (const [index, text] of physical.entries()) {
    const last = index === physical.length - 1;
    // Inside a continuation the parser skips comment lines and empty lines.
    if (index > 0 && (COMMENT_LINE.test(text) || EMPTY_LINE.test(text))) {
      if (last) throw new Refusal("its last line continues the instruction into the next one");
      lines.push({ kind: "skipped", text });
      continue;
    }
    const continued = CONTINUED_BACKSLASH.test(text);
    if (continued === last) {
      throw new Refusal(
        last
          ? "its last line continues the instruction into the next one"
          : `its line ${index + 1} ends without a line continuation`,
      );
    }
    const content = continued ? text.replace(CONTINUED_BACKSLASH, "$1") : text;
    lines.push({ kind: "content", start: logical.length, end: logical.length + content.length });
    logical += content;
  }
  // Each character of the logical line and what it becomes; an escape sequence or a JSON
  // array becomes text at its first character and nothing at the others.
  const out = /[\\`]/.test(logical) ? rewriteLogical(logical) : logical.split("");
  const contents = lines.filter((line) => line.kind === "content");
  return lines.map((line) => {
    // Skipped whatever it ends with; its continuation changes only to read like the others.
    if (line.kind === "skipped") return line.text.replace(CONTINUED_BACKSLASH, `$1${BACKTICK}`);
    const text = out.slice(line.start, line.end).join("");
    if (line !== contents.at(-1)) {
      // "``" at the end of a line is an escaped backtick, not a continuation.
      if (text.endsWith(BACKTICK)) {
        throw new Refusal("a line of it would end in an escaped `, which does not continue it");
      }
      return `${text}${BACKTICK}`;
    }
    if (ENDS_IN_BACKTICK.test(text)) {
      throw new Refusal(
        "its last line ends in `, which the escape character ` reads as a line continuation " +
          "(it would join the next instruction to it)",
        "end it with another character (a shell command can end in ;), or remove the escape " +
          "directive from the Dockerfile",
      );
    }
    return text;
  }).join("\n");
}

// How BuildKit reads the arguments of each instruction after its flags.
const AS_IS = new Set(["RUN", "CMD", "ENTRYPOINT", "SHELL", "HEALTHCHECK", "MAINTAINER"]);
const NAME_VALUE = new Set(["ENV", "LABEL", "ARG"]);
const ONE_STRING = new Set(["WORKDIR", "USER", "STOPSIGNAL"]);
const SPLIT = new Set(["EXPOSE", "FROM", "COPY", "ADD", "VOLUME"]);
const MAYBE_JSON = new Set(["COPY", "ADD", "VOLUME"]);

function rewriteLogical(logical: string): string[] {
  const out = Array.from({ length: logical.length }, (_, index) => logical[index]);
  // splitCommand: the keyword, then blanks. BuildKit trims Unicode space first; only the
  // ASCII blanks that can start a line here are accepted.
  const head = /^[ \t]*([A-Za-z]+)(?:[ \t]+|$)/.exec(logical);
  if (!head) throw new Refusal("it does not start with an instruction keyword");
  const keyword = head[1].toUpperCase();
  const argsStart = rewriteFlags(logical, head[0].length, out);
  const args = logical.slice(argsStart);
  if (!/[\\`]/.test(args) || AS_IS.has(keyword)) return out;
  if (MAYBE_JSON.has(keyword)) {
    const json = jsonArray(args);
    if (json) {
      const offset = argsStart + (args.length - args.trimStart().length);
      out.fill("", offset, logical.length);
      const elements = json.map((element) => rewriteWords(element, "string").join(""));
      out[offset] = jsonArrayText(elements);
      return out;
    }
  }
  const mode = NAME_VALUE.has(keyword)
    ? "name-value"
    : ONE_STRING.has(keyword)
    ? "string"
    : SPLIT.has(keyword)
    ? "split"
    : undefined;
  if (mode === undefined) {
    throw new Refusal(
      `imgtool cannot rewrite the arguments of ${keyword} for the escape character`,
    );
  }
  rewriteWords(args, mode).forEach((text, index) => out[argsStart + index] = text);
  return out;
}

/**
 * BuildKit's `extractBuilderFlags`: the words starting with `--` after the keyword. Writes in
 * `out` each flag that holds an escape without one, and returns where the arguments start.
 */
function rewriteFlags(logical: string, start: number, out: string[]): number {
  let at = start;
  for (;;) {
    while (logical[at] === " " || logical[at] === "\t") at++;
    if (!logical.startsWith("--", at)) return at;
    // The word: up to a blank outside quotes (extractBuilderFlags's own quoting and escapes).
    let end = at;
    let quote = "";
    for (; end < logical.length; end++) {
      const char = logical[end];
      if (quote === "" && (char === " " || char === "\t")) break;
      if (char === "\\") end++;
      else if (quote === "" && (char === "'" || char === '"')) quote = char;
      else if (char === quote) quote = "";
    }
    const word = logical.slice(at, end);
    if (word === "--") return end;
    // extractBuilderFlags reads bytes, not characters: it could split a non-ASCII one.
    if (/[^ -~]/.test(word)) throw new Refusal("a flag of it holds a non-ASCII character");
    if (/[\\`]/.test(word)) {
      // The flag's value is read again as a shell word, where \ and ` differ: none may be in
      // it. Quotes and escapes give way to single quotes, which mean the same to both.
      const value = word.slice(2).replace(/\\(.?)/g, "$1");
      if (/[\\`'"]/.test(value) || /\\[\\`]/.test(word)) {
        throw new Refusal(
          "a flag of it holds \\, ` or a quote, whose meaning the escape character changes",
        );
      }
      out.fill("", at, end);
      out[at] = `--'${value}'`;
    }
    at = end;
  }
}

/**
 * A JSON array of strings as Dockerfile instructions are written: `["a", "b"]`, a blank after
 * each separating comma. Each element is encoded on its own, so no element's text is ever taken
 * for a separator (an element ending in `",` once had a blank put inside it).
 *
 * @example
 * ```ts
 * import { jsonArrayText } from "./dockerfile_escape.ts";
 * console.log(jsonArrayText(["src", '",'])); // ["src", "\","]
 * ```
 */
export function jsonArrayText(elements: readonly string[]): string {
  return `[${elements.map((element) => JSON.stringify(element)).join(", ")}]`;
}

/** `COPY`/`ADD`/`VOLUME` arguments in JSON form: the strings, or undefined if not that form. */
function jsonArray(args: string): string[] | undefined {
  const text = args.trim();
  if (!text.startsWith("[")) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined; // BuildKit, too, then reads the arguments as words
  }
  if (!Array.isArray(parsed)) return undefined;
  if (!parsed.every((element) => typeof element === "string")) {
    throw new Refusal("its JSON array holds something other than strings");
  }
  return parsed;
}

/**
 * Rewrite text that BuildKit's shell-word lexer reads (`shell/lex.go`, after `parseWords` for
 * name=value instructions) so that it holds no escape character at all: each character an
 * escape stood for, and each backtick, is written in single quotes (`'` itself in double
 * quotes), which every reader takes literally whatever the escape character. (buildah's lexer
 * always escapes with `\`, even under `# escape=\``: this text means the same to it.) One
 * entry per character of `text`; `mode` says how BuildKit reads it:
 *
 * - `name-value`: `ENV`, `LABEL`, `ARG`; the name before `=` is not lexed, so no escape or
 *   quote may be in it;
 * - `string`: the whole text is one word (`WORKDIR`, `USER`, a JSON element);
 * - `split`: the text is cut at blanks first, then each piece lexed, so no quote or `${...}`
 *   may span a blank, and an escaped blank still cuts.
 */
function rewriteWords(text: string, mode: "name-value" | "string" | "split"): string[] {
  const out = Array.from({ length: text.length }, (_, index) => text[index]);
  const split = mode === "split";
  let inName = mode === "name-value";
  // Literal characters not yet written, and where their quoted text goes.
  let literal = "";
  let literalAt = -1;
  const addLiteral = (from: number, to: number, chars: string) => {
    if (literalAt === -1) literalAt = from;
    literal += chars;
    out.fill("", from, to);
  };
  const flush = () => {
    if (literalAt !== -1) out[literalAt] = quoteLiterally(literal);
    literal = "";
    literalAt = -1;
  };
  for (let at = 0; at < text.length;) {
    const char = text[at];
    if (inName) {
      if (char === "=") inName = false;
      else if (/[\\`'"]/.test(char)) {
        throw new Refusal("a variable name in it holds \\, ` or a quote");
      }
    }
    if (char === "'") {
      // Inside single quotes nothing is an escape, for either escape character.
      const end = text.indexOf("'", at + 1);
      if (end === -1) throw new Refusal("a quoted part of it is not closed");
      if (split && /\s/.test(text.slice(at, end))) throw new Refusal(SPLIT_QUOTE);
      flush();
      at = end + 1;
    } else if (char === '"') {
      const end = closingDoubleQuote(text, at);
      if (split && /\s/.test(text.slice(at, end))) throw new Refusal(SPLIT_QUOTE);
      if (/[\\`]/.test(text.slice(at, end))) {
        out[at] = out[end] = "";
        literalsOfDoubleQuoted(at + 1, end);
      } else {
        flush();
      }
      at = end + 1;
    } else if (char === "\\") {
      const next = codePointAt(text, at + 1);
      if (next === "" || (split && /\s/.test(next))) {
        // Dropped at the end of a word, which a blank ends here.
        out[at] = "";
        at++;
      } else {
        // Outside quotes an escape stands for the next character, whichever it is.
        addLiteral(at, at + 1 + next.length, next);
        at += 1 + next.length;
      }
    } else if (char === BACKTICK) {
      addLiteral(at, at + 1, BACKTICK);
      at++;
    } else if (char === "$") {
      flush();
      at = expansionEnd(text, at, split);
    } else {
      flush();
      if (mode === "name-value" && /\s/.test(char)) inName = true;
      at++;
    }
  }
  flush();
  return out;

  // What stands between the quotes at `from - 1` and `end`: literals, except expansions,
  // which stay in double quotes.
  function literalsOfDoubleQuoted(from: number, end: number): void {
    for (let at = from; at < end;) {
      const char = text[at];
      if (char === "\\" && /["$\\]/.test(text[at + 1])) {
        // \", \$ and \\ stand for the character; before any other, \ stands for itself.
        addLiteral(at, at + 2, text[at + 1]);
        at += 2;
      } else if (char === "$") {
        flush();
        const end = expansionEnd(text, at, split);
        out[at] = `"${text.slice(at, end)}"`;
        out.fill("", at + 1, end);
        at = end;
      } else {
        addLiteral(at, at + 1, char);
        at++;
      }
    }
    flush();
  }
}

const SPLIT_QUOTE = "a quoted part of its arguments holds a blank, which splits it";

/** Characters in single quotes; `'` itself in double quotes. Literal to every reader. */
function quoteLiterally(chars: string): string {
  return chars.split("'").map((run) => run === "" ? "" : `'${run}'`).join(`"'"`);
}

/** The closing `"` of the double-quoted part opening at `start` (`\` escapes inside). */
function closingDoubleQuote(text: string, start: number): number {
  for (let at = start + 1; at < text.length; at++) {
    if (text[at] === "\\") at++;
    else if (text[at] === '"') return at;
  }
  throw new Refusal("a double-quoted part of it is not closed");
}

/** The character (a whole code point) at `index`, or "" past the end. */
function codePointAt(text: string, index: number): string {
  const code = text.codePointAt(index);
  return code === undefined ? "" : String.fromCodePoint(code);
}

/**
 * Where the expansion starting with the `$` at `start` ends: `${...}`, when nothing in it
 * depends on the escape character; `$` and a name (every letter, digit and `_` after it, the
 * most any reader takes) or one special parameter; or the `$` alone.
 */
function expansionEnd(text: string, start: number, split: boolean): number {
  if (text[start + 1] === "{") {
    const end = text.indexOf("}", start + 2);
    const inner = end === -1 ? "" : text.slice(start + 2, end);
    if (end === -1 || /[\\`"'{$]/.test(inner) || (split && /\s/.test(inner))) {
      throw new Refusal(
        "a ${...} expansion in it holds \\, `, a quote or another expansion, which the escape " +
          "character can change",
      );
    }
    return end + 1;
  }
  const name = /^[\p{L}\p{N}_]+|^[@*#?\-$!]/u.exec(text.slice(start + 1));
  return start + 1 + (name?.[0].length ?? 0);
}
