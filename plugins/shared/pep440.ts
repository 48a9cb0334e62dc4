/**
 * PEP 440 version specifiers (`>=0.8,<0.9`, `==3.12.*`, `~=1.4.2`), as far as imgtool needs
 * them: does a tool version (uv's `required-version`) or a Python minor version (a
 * `requires-python`) satisfy what a project demands? Release segments only: pre-, post- and
 * dev-release parts of the version being checked are not modelled.
 *
 * @module
 */

/** One clause of a specifier: an operator and the version text after it. */
interface Clause {
  readonly op: string;
  readonly version: string;
  /** Whether the operator was written (a bare version reads as `==`). */
  readonly explicit: boolean;
}

const CLAUSE = /^(===|==|!=|~=|>=|<=|>|<)?\s*(\S+)$/;

function clauses(specifier: string): Clause[] | undefined {
  const parts = specifier.split(",").map((part) => part.trim()).filter(Boolean);
  const parsed: Clause[] = [];
  for (const part of parts) {
    const match = CLAUSE.exec(part);
    if (!match) return undefined;
    // A bare version (uv accepts `required-version = "0.8.13"`) means exactly that version.
    parsed.push({ op: match[1] ?? "==", version: match[2], explicit: match[1] !== undefined });
  }
  return parsed;
}

/** The release segments of a version (`1.2.3rc1` → [1, 2, 3]), or `undefined`. */
function release(text: string): number[] | undefined {
  const match = /^v?(\d+(?:\.\d+)*)/.exec(text);
  return match ? match[1].split(".").map(Number) : undefined;
}

function compare(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const difference = (a[i] ?? 0) - (b[i] ?? 0);
    if (difference !== 0) return Math.sign(difference);
  }
  return 0;
}

function startsWith(version: readonly number[], prefix: readonly number[]): boolean {
  return prefix.every((part, i) => (version[i] ?? 0) === part);
}

function clauseAllows(clause: Clause, version: readonly number[], text: string): boolean {
  if (clause.op === "===") return clause.version === text;
  const wildcard = clause.version.endsWith(".*");
  const wanted = release(wildcard ? clause.version.slice(0, -2) : clause.version);
  if (wanted === undefined) return true; // not a version we can read: the tool decides
  switch (clause.op) {
    case "==":
      return wildcard ? startsWith(version, wanted) : compare(version, wanted) === 0;
    case "!=":
      return wildcard ? !startsWith(version, wanted) : compare(version, wanted) !== 0;
    case ">=":
      return compare(version, wanted) >= 0;
    case "<=":
      return compare(version, wanted) <= 0;
    case ">":
      return compare(version, wanted) > 0;
    case "<":
      return compare(version, wanted) < 0;
    case "~=":
      // ~=1.4.2 is >=1.4.2 and ==1.4.*
      return compare(version, wanted) >= 0 && startsWith(version, wanted.slice(0, -1));
  }
  return true;
}

/**
 * Whether `version` (a release such as `0.8.13`) satisfies `specifier`; `undefined` when
 * either cannot be read (then the tool itself decides).
 *
 * @example
 * ```ts
 * import { versionAllows } from "./pep440.ts";
 * console.log(versionAllows(">=0.9.5", "0.8.13"), versionAllows("==0.8.*", "0.8.13")); // false true
 * ```
 */
export function versionAllows(specifier: string, version: string): boolean | undefined {
  const parsed = clauses(specifier);
  const segments = release(version);
  if (parsed === undefined || segments === undefined) return undefined;
  return parsed.every((clause) => clauseAllows(clause, segments, version));
}

/**
 * Whether some release of Python `major.minor` satisfies a `requires-python` specifier
 * (`>=3.12.4` admits 3.12: its later patch releases qualify).
 *
 * @example
 * ```ts
 * import { pythonAllows } from "./pep440.ts";
 * console.log(pythonAllows(">=3.11,<3.13", [3, 12]), pythonAllows(">=3.13", [3, 12])); // true false
 * ```
 */
export function pythonAllows(
  specifier: string,
  [major, minor]: readonly [number, number],
): boolean {
  const parsed = clauses(specifier);
  if (parsed === undefined) return true; // unreadable: leave it to the installer
  return parsed.every(({ op, version, explicit }) => {
    const match = /^(\d+)(?:\.(\d+|\*))?((?:\.[\d*]+)*)$/.exec(version);
    // Not a version comparison: leave it to the installer.
    if (!match || !explicit || op === "===") return true;
    const [, majorText, raw, rest] = match;
    const wantedMajor = Number(majorText);
    if (wantedMajor !== major) {
      // Every minor of one major version compares alike with another major version.
      if (op === "!=") return true;
      if (op === "==") return false;
      return op.startsWith(">") || op === "~=" ? major > wantedMajor : major < wantedMajor;
    }
    const wanted = raw === undefined || raw === "*" ? undefined : Number(raw);
    if (wanted === undefined) return op !== "!=" && op !== "<";
    // A patch part (3.11.2): some 3.11 releases are above it, and some below.
    const patch = /^\.\d+/.test(rest);
    switch (op) {
      case ">=":
        return minor >= wanted;
      case "~=":
        // ~=3.11 is >=3.11,==3.*; ~=3.11.2 is >=3.11.2,==3.11.*
        return patch ? minor === wanted : minor >= wanted;
      case ">":
        return minor > wanted || (minor === wanted && patch);
      case "<=":
        return minor <= wanted;
      case "<":
        return minor < wanted || (minor === wanted && patch && !/^(?:\.0)+$/.test(rest));
      case "==":
        return minor === wanted;
      case "!=":
        return !(minor === wanted && !patch);
    }
    return true;
  });
}
