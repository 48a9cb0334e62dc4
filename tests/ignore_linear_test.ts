/**
 * `.dockerignore` matching takes time linear in the path, whatever the pattern (Go's regexp
 * engine, which Docker uses, never backtracks), and means what Docker's rules say: random
 * patterns and paths are checked against a plain backtracking matcher written from those
 * rules, and the regexp engine against JavaScript's own on regexps both read alike.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { compileGoRegexp } from "../src/go_regexp.ts";
import { IgnoreRules } from "../src/ignore.ts";

const ROOT = "/ctx";
const ignores = (patterns: string[], path: string) =>
  new IgnoreRules([{ root: ROOT, patterns }]).ignores(`${ROOT}/${path}`);

/** Milliseconds `body` takes. */
function timed(body: () => void): number {
  const start = performance.now();
  body();
  return performance.now() - start;
}

Deno.test("a pattern with many stars decides a long name in well under a second", () => {
  const pattern = "*a*a*a*a*a*a*a*a*a*a*a*a*b";
  // A backtracking matcher tries every way to share the a's among the stars: for 38 a's,
  // 38 choose 12 (about 2.7e9) ways, which took half a minute.
  const ms = timed(() => {
    assert.equal(ignores([pattern], "a".repeat(38)), false);
    assert.equal(ignores([pattern], `${"a".repeat(37)}b`), true);
    assert.equal(ignores([pattern], `${"a".repeat(11)}b`), false, "twelve a's are needed");
  });
  assert.ok(ms < 500, `took ${ms.toFixed(0)} ms`);
});

Deno.test("nested and repeated ** stay fast on deep paths that almost match", () => {
  const deep = `${"a/".repeat(60)}y`;
  const cases: [string, string, boolean][] = [
    ["**/**/**/**/**/**/**/x", deep, false],
    ["**/**/**/**/**/**/**/y", deep, true],
    ["a**a**a**a**a**a**a**b", "a".repeat(2000), false],
    ["**/*a*a*a*a*a*a*a*a*b", `${"x/".repeat(20)}${"a".repeat(200)}`, false],
    ["[^x]*[^x]*[^x]*[^x]*[^x]*[^x]*b", "a/".repeat(500), false],
  ];
  for (const [pattern, path, expected] of cases) {
    const ms = timed(() => assert.equal(ignores([pattern], path), expected, pattern));
    assert.ok(ms < 500, `${pattern} took ${ms.toFixed(0)} ms`);
  }
});

// ---------------------------------------------------------------------------------------
// The reference: Docker's rules, matched by plain backtracking over the pattern's pieces.

type Piece =
  | { kind: "char"; test: (char: string) => boolean }
  | { kind: "star" } // `*`: any run of characters without `/`
  | { kind: "folders" } // `**` before more: nothing, or anything that ends in `/`
  | { kind: "rest" }; // `**` at the end: anything

/**
 * The pieces of a glob made of `a b . /`, `*`, `**`, `?`, `[ab]`, `[^a]` and `\*`. As in
 * moby's patternmatcher: `?` is any character but `/`; a class is a Go regexp class (so
 * `[^a]` also matches `/`); `**` (with the `/` after it) is any folders, or anything at the
 * end; a leading `**` followed only by plain characters is a plain suffix test.
 */
function pieces(glob: string): Piece[] | { suffix: string } {
  const out: Piece[] = [];
  let wild = false;
  for (let at = 0; at < glob.length;) {
    if (glob.startsWith("**", at)) {
      at += glob[at + 2] === "/" ? 3 : 2;
      out.push({ kind: at < glob.length ? "folders" : "rest" });
    } else if (glob[at] === "*" || glob[at] === "?" || glob[at] === "[" || glob[at] === "\\") {
      wild = true;
      if (glob[at] === "*") out.push({ kind: "star" });
      if (glob[at] === "?") out.push({ kind: "char", test: (char) => char !== "/" });
      if (glob[at] === "\\") out.push({ kind: "char", test: (char) => char === "*" });
      if (glob.startsWith("[ab]", at)) {
        out.push({
          kind: "char",
          test: (char) => "ab".includes(char),
        });
      }
      if (glob.startsWith("[^a]", at)) out.push({ kind: "char", test: (char) => char !== "a" });
      at += glob[at] === "[" ? 4 : glob[at] === "\\" ? 2 : 1;
    } else {
      const char = glob[at++];
      out.push({ kind: "char", test: (other) => other === char });
    }
  }
  if (glob.startsWith("**") && !wild && out.slice(1).every((piece) => piece.kind === "char")) {
    return { suffix: glob.slice(2) };
  }
  return out;
}

function globMatches(glob: string, path: string): boolean {
  const compiled = pieces(glob);
  if (!Array.isArray(compiled)) {
    const { suffix } = compiled;
    return path.endsWith(suffix) || (suffix.startsWith("/") && path === suffix.slice(1));
  }
  const from = (piece: number, at: number): boolean => {
    if (piece === compiled.length) return at === path.length;
    const current = compiled[piece];
    switch (current.kind) {
      case "char":
        return at < path.length && current.test(path[at]) && from(piece + 1, at + 1);
      case "star":
        for (let end = at;; end++) {
          if (from(piece + 1, end)) return true;
          if (end === path.length || path[end] === "/") return false;
        }
      case "folders":
        if (from(piece + 1, at)) return true;
        for (
          let slash = path.indexOf("/", at);
          slash !== -1;
          slash = path.indexOf("/", slash + 1)
        ) {
          if (from(piece + 1, slash + 1)) return true;
        }
        return false;
      case "rest":
        return true;
    }
  };
  return from(0, 0);
}

/** Docker's walk: a path is ignored when a pattern matches it or any folder above it. */
function referenceIgnores(patterns: readonly string[], path: string): boolean {
  const names = path.split("/");
  return names.some((_, index) => {
    const prefix = names.slice(0, index + 1).join("/");
    return patterns.some((pattern) => globMatches(pattern, prefix));
  });
}

const globPiece = fc.constantFrom("a", "b", ".", "/", "*", "**", "**/", "?", "[ab]", "[^a]", "\\*");
const glob = fc.array(globPiece, { minLength: 1, maxLength: 8 }).map((parts) => parts.join(""))
  // Only patterns that are already clean, as .dockerignore lines become before matching.
  .filter((pattern) =>
    !/^\/|\/$|\/\/|(^|\/)\.\.?(\/|$)/.test(pattern) && pattern !== "." && !pattern.endsWith("\\")
  );
const name = fc.array(fc.constantFrom("a", "b", "*", "."), { minLength: 1, maxLength: 4 })
  .map((chars) => chars.join(""))
  .filter((part) => part !== "." && part !== "..");
const path = fc.array(name, { minLength: 1, maxLength: 4 }).map((names) => names.join("/"));

Deno.test("random patterns ignore exactly what Docker's rules say", () => {
  fc.assert(
    fc.property(fc.array(glob, { minLength: 1, maxLength: 2 }), path, (patterns, path) => {
      assert.equal(ignores(patterns, path), referenceIgnores(patterns, path));
    }),
    { numRuns: 3000 },
  );
});

// Regexps whose syntax Go and JavaScript read alike (with `.` spelled `[^\n]`, as in Go).
const regexpPiece = fc.constantFrom("a", "b", "/", "\n", ".", "[^/]", "[ab]", "[^a]");
const regexpAtom = fc.tuple(regexpPiece, fc.constantFrom("", "", "*", "+", "?"))
  .map(([atom, repeat]) => atom + repeat);
const regexp = fc.tuple(
  fc.array(fc.oneof(regexpAtom, fc.constant("(.*/)?")), { maxLength: 7 }),
  fc.boolean(),
).map(([atoms, end]) => `^${atoms.join("")}${end ? "$" : ""}`);
const text = fc.array(fc.constantFrom("a", "b", "/", "\n"), { maxLength: 10 })
  .map((chars) => chars.join(""));

Deno.test("both ways of matching a Go regexp agree with JavaScript's on shared syntax", () => {
  fc.assert(
    fc.property(regexp, text, (source, text) => {
      const expected = new RegExp(source.replaceAll(".", "[^\\n]"), "u").test(text);
      assert.equal(compileGoRegexp(source)(text), expected, "auto");
      assert.equal(compileGoRegexp(source, "automaton")(text), expected, "automaton");
    }),
    { numRuns: 3000 },
  );
});
