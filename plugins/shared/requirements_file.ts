/**
 * The syntax of pip's requirements files, as far as imgtool needs it: logical lines (pip's
 * rules for `\` continuations and `#` comments) and the places where a line names a file,
 * a folder or a URL (`-r`/`-c` includes, `-e` and plain local projects, archives, `file:`
 * URLs, `--find-links`, `file:` indexes), with the span of text that names it, so that the
 * line can be rewritten to point somewhere else. uv reads the same format. Nothing here
 * touches the disk.
 *
 * @module
 */

/** A logical line: physical lines joined by trailing backslashes, its comment removed. */
export interface LogicalLine {
  /** The 1-based number of its first physical line (what pip reports). */
  readonly number: number;
  /** How many physical lines it spans. */
  readonly count: number;
  /** The text pip parses: continuations joined, the comment removed, trimmed; may be empty. */
  readonly text: string;
}

// pip's COMMENT_RE: a `#` at the start or after whitespace starts a comment.
const COMMENT = /(^|\s+)#.*$/;

/**
 * Split a requirements file into logical lines, as pip does (`req_file.py`: `join_lines`,
 * `ignore_comments`). Every physical line belongs to exactly one logical line, in order.
 * Environment variables (`${NAME}`) are left as they are: they are expanded in the build.
 *
 * @example
 * ```ts
 * import { logicalLines } from "./requirements_file.ts";
 * const lines = logicalLines("numpy==2.1.0 \\\n  --hash=sha256:ab  # pinned\n-e ./lib\n");
 * console.log(lines.map((line) => [line.number, line.text]));
 * // [ [ 1, "numpy==2.1.0   --hash=sha256:ab" ], [ 3, "-e ./lib" ] ]
 * ```
 */
export function logicalLines(content: string): LogicalLine[] {
  const physical = physicalLines(content);
  if (physical.length > 0 && physical[physical.length - 1] === "") physical.pop();
  const lines: LogicalLine[] = [];
  const emit = (number: number, count: number, raw: string) =>
    lines.push({ number, count, text: raw.replace(COMMENT, "").trim() });
  let pending: string[] = [];
  let first = 0;
  physical.forEach((line, index) => {
    const isComment = /^\s*#/.test(line);
    if (!line.endsWith("\\") || isComment) {
      if (pending.length > 0) {
        // A comment line ends a continuation (and is kept a comment by the space).
        pending.push(isComment ? ` ${line}` : line);
        emit(first + 1, index - first + 1, pending.join(""));
        pending = [];
      } else {
        emit(index + 1, 1, line);
      }
    } else {
      if (pending.length === 0) first = index;
      pending.push(line.replace(/^\\+|\\+$/g, ""));
    }
  });
  if (pending.length > 0) emit(first + 1, physical.length - first, pending.join(""));
  return lines;
}

/**
 * The physical lines of a text, split where Python's `str.splitlines()` (which pip uses)
 * splits; a text that ends in a line break ends in an empty string.
 *
 * @example
 * ```ts
 * import { physicalLines } from "./requirements_file.ts";
 * console.log(physicalLines("a\r\nb\rc\n")); // [ "a", "b", "c", "" ]
 * ```
 */
export function physicalLines(text: string): string[] {
  // deno-lint-ignore no-control-regex
  return text.split(/\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/);
}

/** A word of an option line, as Python's `shlex.split` (which pip uses) reads it. */
export interface Word {
  /** The word after quotes and escapes are taken away. */
  readonly value: string;
  /** Where it starts in the line (its first character, a quote included). */
  readonly start: number;
  /** Where it ends in the line (exclusive). */
  readonly end: number;
}

/**
 * Split text into shell words (POSIX `shlex` rules: quotes, backslash escapes), with where
 * each word stands in the text.
 *
 * @example
 * ```ts
 * import { shellWords } from "./requirements_file.ts";
 * console.log(shellWords(`-e "./my pkg"`).map((word) => word.value)); // [ "-e", "./my pkg" ]
 * ```
 */
export function shellWords(text: string): Word[] {
  const words: Word[] = [];
  let index = 0;
  while (index < text.length) {
    while (index < text.length && /\s/.test(text[index])) index++;
    if (index >= text.length) break;
    const start = index;
    let value = "";
    while (index < text.length && !/\s/.test(text[index])) {
      const char = text[index];
      if (char === "'") {
        const close = text.indexOf("'", index + 1);
        const end = close < 0 ? text.length : close;
        value += text.slice(index + 1, end);
        index = end + 1;
      } else if (char === '"') {
        index++;
        while (index < text.length && text[index] !== '"') {
          if (text[index] === "\\" && /["\\$`]/.test(text[index + 1] ?? "")) index++;
          value += text[index++];
        }
        index++;
      } else if (char === "\\" && index + 1 < text.length) {
        value += text[index + 1];
        index += 2;
      } else {
        value += char;
        index++;
      }
    }
    words.push({ value, start, end: Math.min(index, text.length) });
  }
  return words;
}

/**
 * What a reference is, by the option (or the absence of one) that makes it:
 * - `requirements` and `constraints`: `-r`/`-c` includes;
 * - `requirement`: a plain requirement line that names a local project, archive or `file:` URL;
 * - `editable`: an `-e`/`--editable` value;
 * - `find-links`: `-f`/`--find-links`;
 * - `index-url`: a `file:` URL given to `-i`/`--index-url`/`--extra-index-url`.
 *
 * @example
 * ```ts
 * import type { ReferenceRole } from "./requirements_file.ts";
 * const roles: ReferenceRole[] = ["requirements", "editable"];
 * console.log(roles.length); // 2
 * ```
 */
export type ReferenceRole =
  | "requirements"
  | "constraints"
  | "requirement"
  | "editable"
  | "find-links"
  | "index-url";

/** A place where a line names a local file or folder. */
export interface Reference {
  /** Which option names it. */
  readonly role: ReferenceRole;
  /** The value as written (a path, a `file:` URL, ...). */
  readonly given: string;
  /** The path it names, decoded from a `file:` URL; relative paths stay relative. */
  readonly path: string;
  /** Written as a `file:` URL (rewrite it as one) rather than as a path. */
  readonly url: boolean;
  /** The `subdirectory=` of a `file:` URL's fragment, if any. */
  readonly subdirectory?: string;
  /** The span of the logical line's text that a rewrite replaces. */
  readonly start: number;
  /** The end of that span (exclusive). */
  readonly end: number;
  /** Text that comes before the new location in the replacement (`-r `, `name @ `). */
  readonly prefix: string;
  /** Text that comes after the new location in the replacement (extras, a fragment). */
  readonly suffix: string;
  /** Why imgtool cannot bring this reference into the build, if it cannot. */
  readonly problem?: string;
}

/** What one logical line says that matters to imgtool. */
export interface ScannedLine extends LogicalLine {
  /** The local files and folders the line names. */
  readonly references: readonly Reference[];
  /** The line has a `--hash` (so pip and uv check hashes of every requirement). */
  readonly hashes: boolean;
  /** The line is `--require-hashes`. */
  readonly requireHashes: boolean;
}

const OPTION_ROLES: Readonly<Record<string, ReferenceRole>> = {
  "-r": "requirements",
  "--requirement": "requirements",
  "-c": "constraints",
  "--constraint": "constraints",
  "-e": "editable",
  "--editable": "editable",
  "-f": "find-links",
  "--find-links": "find-links",
  "-i": "index-url",
  "--index-url": "index-url",
  "--extra-index-url": "index-url",
};

// Options that take a value, whose value is never a local path imgtool brings along.
const VALUE_OPTIONS = new Set([
  "--no-binary",
  "--only-binary",
  "--trusted-host",
  "--use-feature",
  "--global-option",
  "--config-settings",
  "--hash",
]);

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;
const VCS_FILE = /^(git|hg|svn|bzr)\+file:/i;
const ARCHIVE = /\.(whl|zip|tar|tgz|tbz|txz|tlz|tar\.gz|tar\.bz2|tar\.xz|tar\.lz|tar\.lzma)$/i;
const NAMED_URL = /^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?\s*(?:\[[^\]]*\])?)\s*@\s*/;
const ENV_VARIABLE = /\$\{[A-Z0-9_]+\}/;

/**
 * Read one logical line: the local files and folders it names, and whether it turns on
 * hash checking.
 *
 * @example
 * ```ts
 * import { logicalLines, scanLine } from "./requirements_file.ts";
 * const [line] = logicalLines("-e ../lib[dev]\n");
 * const [reference] = scanLine(line).references;
 * console.log(reference.role, reference.path, reference.suffix); // editable ../lib [dev]
 * ```
 */
export function scanLine(line: LogicalLine): ScannedLine {
  const text = line.text;
  if (text === "") return { ...line, references: [], hashes: false, requireHashes: false };
  if (text.startsWith("-")) return { ...line, ...scanOptions(text) };
  // pip: the requirement runs up to the first space-separated word that starts with `-`.
  const optionsAt = text.search(/ -/);
  const requirement = optionsAt < 0 ? text : text.slice(0, optionsAt).trimEnd();
  const options = optionsAt < 0 ? "" : text.slice(optionsAt);
  const hashes = shellWords(options).some((word) => /^--hash(=|$)/.test(word.value));
  const reference = requirementReference(requirement, 0, "requirement", false);
  return { ...line, references: reference ? [reference] : [], hashes, requireHashes: false };
}

function scanOptions(text: string): Omit<ScannedLine, keyof LogicalLine> {
  const words = shellWords(text);
  const references: Reference[] = [];
  let requireHashes = false;
  let hashes = false;
  for (let index = 0; index < words.length; index++) {
    const word = words[index];
    if (word.value === "--require-hashes") requireHashes = true;
    const option = optionOf(word.value);
    if (option === undefined) {
      if (/^--hash(=|$)/.test(word.value)) hashes = true;
      if (VALUE_OPTIONS.has(word.value)) index++;
      continue;
    }
    let value: string;
    let end: number;
    if (option.value !== undefined) {
      value = option.value;
      end = word.end;
    } else {
      const next = words[index + 1];
      if (next === undefined) break;
      value = next.value;
      end = next.end;
      index++;
    }
    const found = optionReference(option.role, option.name, value, word.start, end);
    if (found) references.push(found);
  }
  return { references, hashes, requireHashes };
}

// An option word: its role and the value attached to it (`--editable=.`, `-e.`), if any.
function optionOf(
  word: string,
): { role: ReferenceRole; name: string; value?: string } | undefined {
  const equals = word.indexOf("=");
  if (word.startsWith("--")) {
    const name = equals < 0 ? word : word.slice(0, equals);
    const role = OPTION_ROLES[name];
    if (role === undefined) return undefined;
    return { role, name, value: equals < 0 ? undefined : word.slice(equals + 1) };
  }
  const name = word.slice(0, 2);
  const role = OPTION_ROLES[name];
  if (role === undefined) return undefined;
  return { role, name, value: word.length > 2 ? word.slice(2) : undefined };
}

function optionReference(
  role: ReferenceRole,
  name: string,
  value: string,
  start: number,
  end: number,
): Reference | undefined {
  if (role === "editable") {
    const found = requirementReference(value, 0, "editable", true);
    if (found === undefined) return undefined;
    // The whole option is replaced: the project is installed as an ordinary package.
    return {
      ...found,
      start,
      end,
      suffix: value.slice(found.end) + found.suffix,
    };
  }
  const scheme = SCHEME.exec(value)?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== "file") return undefined;
  if (role === "index-url" && scheme !== "file") return undefined;
  const base = { role, given: value, start, end, prefix: `${name} ` };
  if (scheme === "file") {
    const url = fileUrl(value);
    return { ...base, path: url.path, url: true, suffix: url.fragment, problem: url.problem };
  }
  return { ...base, path: value, url: false, suffix: "", problem: variableProblem(value) };
}

/**
 * The local reference in a requirement (a plain line, or an `-e` value), if it names one;
 * `start` and `end` cover only the path or URL itself.
 */
function requirementReference(
  requirement: string,
  offset: number,
  role: "requirement" | "editable",
  editable: boolean,
): Reference | undefined {
  const named = NAMED_URL.exec(requirement);
  if (named) {
    // `name @ URL` (and uv's `name @ ./path`): the URL runs to the next whitespace.
    const at = named[0].length;
    const target = /^\S+/.exec(requirement.slice(at))?.[0] ?? "";
    const base = {
      role,
      given: target,
      start: offset + at,
      end: offset + at + target.length,
      suffix: "",
    };
    const prefix = editable ? named[0] : "";
    if (VCS_FILE.test(target)) return { ...base, ...vcsProblem(target), prefix };
    const scheme = SCHEME.exec(target)?.[1]?.toLowerCase();
    if (scheme === "file") {
      const url = fileUrl(target);
      const hash = target.indexOf("#");
      return {
        ...base,
        end: hash < 0 ? base.end : base.start + hash,
        path: url.path,
        url: true,
        subdirectory: url.subdirectory,
        prefix,
        problem: url.problem,
      };
    }
    if (scheme !== undefined || !/^[./~]/.test(target)) return undefined;
    // A path after `@` is uv's syntax; pip needs a URL, which works for both.
    return { ...base, path: target, url: true, prefix, problem: variableProblem(target) };
  }
  // An editable is one shell word, spaces and all; a requirement line's URL ends at a space.
  const word = editable ? requirement : /^\S+/.exec(requirement)?.[0] ?? "";
  if (VCS_FILE.test(word)) {
    return {
      role,
      given: word,
      start: offset,
      end: offset + word.length,
      prefix: "",
      suffix: "",
      ...vcsProblem(word),
    };
  }
  const scheme = SCHEME.exec(word)?.[1]?.toLowerCase();
  if (scheme === "file") {
    const hash = word.indexOf("#");
    const url = fileUrl(word);
    return {
      role,
      given: word,
      path: url.path,
      url: true,
      subdirectory: url.subdirectory,
      start: offset,
      end: offset + (hash < 0 ? word.length : hash),
      prefix: "",
      suffix: "",
      problem: url.problem,
    };
  }
  if (scheme !== undefined) return undefined;
  // pip: markers follow `;` (for paths); extras are a trailing `[...]`. An editable value is a
  // path whatever it looks like.
  const beforeMarker = editable ? requirement : requirement.split(";", 1)[0].trim();
  const path = beforeMarker.replace(/\[[^\]]*\]$/, "");
  if (path === "") return undefined;
  if (!editable) {
    const looksLikePath = path.includes("/") || path.startsWith(".");
    const isArchive = ARCHIVE.test(path) && !/[=<>!~@]/.test(path);
    if ((!looksLikePath && !isArchive) || /\s/.test(path)) return undefined;
  }
  return {
    role,
    given: path,
    path,
    url: false,
    start: offset,
    end: offset + path.length,
    prefix: "",
    suffix: "",
    problem: variableProblem(path),
  };
}

function vcsProblem(given: string): { path: string; url: true; problem: string } {
  return {
    path: given,
    url: true,
    problem: `${given} is a local ${
      given.split("+")[0]
    } repository, which a build step cannot reach`,
  };
}

function variableProblem(path: string): string | undefined {
  const variable = ENV_VARIABLE.exec(path)?.[0];
  return variable === undefined
    ? undefined
    : `the local path ${path} uses ${variable}, which imgtool cannot resolve before the build`;
}

/** The path, fragment and subdirectory of a `file:` URL, as pip reads it (relative allowed). */
function fileUrl(
  url: string,
): { path: string; fragment: string; subdirectory?: string; problem?: string } {
  const hash = url.indexOf("#");
  const fragment = hash < 0 ? "" : url.slice(hash);
  let rest = (hash < 0 ? url : url.slice(0, hash)).slice("file:".length);
  const subdirectory = /[#&]subdirectory=([^&]*)/.exec(fragment)?.[1];
  let problem = variableProblem(rest);
  if (rest.startsWith("//")) {
    const slash = rest.indexOf("/", 2);
    const host = rest.slice(2, slash < 0 ? rest.length : slash);
    if (host !== "" && host.toLowerCase() !== "localhost") {
      problem = `${url} names a file on the host ${host}, which a build step cannot reach`;
    }
    rest = slash < 0 ? "/" : rest.slice(slash);
  }
  let path = rest;
  try {
    path = decodeURIComponent(rest);
  } catch {
    // A stray `%` is taken literally, as pip's url2pathname does.
  }
  return {
    path,
    fragment,
    subdirectory: subdirectory === undefined ? undefined : safeDecode(subdirectory),
    problem,
  };
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * Whether a path names an archive pip installs from a file (a wheel or an sdist).
 *
 * @example
 * ```ts
 * import { isArchiveName } from "./requirements_file.ts";
 * console.log(isArchiveName("wheels/app-1.0-py3-none-any.whl"), isArchiveName("./lib")); // true false
 * ```
 */
export function isArchiveName(path: string): boolean {
  return ARCHIVE.test(path);
}
