/**
 * Doc examples that state an output print it. An example line `console.log(x); // y` (and,
 * for output of several lines, as many `// ...` lines right after it) states what it prints;
 * this test runs each such example with `console.log` recorded and compares, so a stated
 * output cannot drift from what the code does. Examples that state nothing are only
 * type-checked (`deno task check` runs `deno check --doc`) and are not counted as tests.
 */

import assert from "node:assert/strict";
import { dirname, join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { REPO_ROOT } from "./helpers.ts";

const ROOTS = ["mod.ts", "src", "plugins", "examples/plugins", "scripts"];

interface Statement {
  /** The line of the `console.log` in the source file, from 1. */
  readonly line: number;
  /** What the comments say it prints, line by line. */
  readonly expected: readonly string[];
}

interface Example {
  readonly file: string;
  /** The first line of the example's code in the source file, from 1. */
  readonly line: number;
  readonly code: string;
  readonly statements: readonly Statement[];
}

function sourceFiles(): string[] {
  const files: string[] = [];
  const walk = (path: string) => {
    const info = Deno.statSync(path);
    if (info.isFile) {
      if (path.endsWith(".ts") && !path.endsWith("_test.ts")) files.push(path);
      return;
    }
    for (const entry of Deno.readDirSync(path)) walk(join(path, entry.name));
  };
  for (const root of ROOTS) walk(join(REPO_ROOT, root));
  return files.sort();
}

// The ```ts blocks of a file's JSDoc comments, with the console.log lines that state output.
function examplesOf(file: string): Example[] {
  const lines = Deno.readTextFileSync(file).split("\n");
  const examples: Example[] = [];
  for (let index = 0; index < lines.length; index++) {
    if (!/^\s*\* ```(ts|typescript)\s*$/.test(lines[index])) continue;
    const start = index + 1;
    let end = start;
    while (end < lines.length && !/^\s*\* ```\s*$/.test(lines[end])) end++;
    const body = lines.slice(start, end).map((line) => line.replace(/^\s*\* ?/, ""));
    const statements: Statement[] = [];
    body.forEach((line, at) => {
      const stated = /^(\s*)console\.log\(.*\);\s*\/\/ ?(.*)$/.exec(line);
      if (!stated) return;
      const expected = [stated[2]];
      // Output of several lines goes on in comment lines indented like the call.
      for (let next = at + 1; next < body.length; next++) {
        const more = new RegExp(`^${stated[1]}// ?(.*)$`).exec(body[next]);
        if (!more) break;
        expected.push(more[1]);
      }
      statements.push({ line: start + at + 1, expected });
    });
    if (statements.length > 0) {
      examples.push({ file, line: start + 1, code: body.join("\n"), statements });
    }
    index = end;
  }
  return examples;
}

// The example as a module whose console.log calls are recorded, one entry per call, and
// whose relative imports point at the example's own folder.
function instrumented(example: Example): string {
  const folder = dirname(example.file);
  const code = example.code.replace(
    /(from\s+|import\()(["'])(\.\.?\/[^"']+)\2/g,
    (_all, before, quote, path) =>
      `${before}${quote}${pathToFileURL(join(folder, path)).href}${quote}`,
  );
  let call = 0;
  const lines = code.split("\n").map((line) =>
    /^\s*console\.log\(.*\);\s*\/\//.test(line)
      ? line.replace("console.log(", `__record(${call++}, `)
      : line
  );
  return [
    "const __printed: string[][] = [];",
    "function __record(call: number, ...values: unknown[]): void {",
    "  const text = values.map((v) => typeof v === 'string' ? v : Deno.inspect(v, { colors: false, depth: 8 })).join(' ');",
    "  (__printed[call] ??= []).push(text);",
    "}",
    "export { __printed };",
    ...lines,
  ].join("\n");
}

// The stated output as a pattern: the text as it is, where `<...>` (`<32 hex digits>`,
// `<version>`) stands for any text that varies from run to run.
function stated(expected: readonly string[]): RegExp {
  const parts = expected.join("\n").split(/(<[^<>\s][^<>]*>)/);
  const pattern = parts.map((part, index) =>
    index % 2 === 1 ? "[^\\s]+?" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
  ).join("");
  return new RegExp(`^${pattern}$`);
}

const examples = sourceFiles().flatMap(examplesOf);

Deno.test("there are doc examples that state an output, and this test finds them", () => {
  assert.ok(examples.length > 50, `only ${examples.length} examples found`);
});

for (const file of [...new Set(examples.map((example) => example.file))]) {
  const name = relative(REPO_ROOT, file);
  Deno.test(`the outputs the doc examples of ${name} state are what they print`, async () => {
    const folder = await Deno.makeTempDir({ prefix: "imgtool-doc-" });
    const wrong: string[] = [];
    try {
      for (const example of examples.filter((e) => e.file === file)) {
        const module = join(folder, `example_${example.line}.ts`);
        await Deno.writeTextFile(module, instrumented(example));
        const { __printed } = await import(pathToFileURL(module).href) as { __printed: string[][] };
        example.statements.forEach((statement, call) => {
          // A file's text ends in a line break that console.log shows as an empty line.
          const printed = (__printed[call] ?? []).join("\n").replace(/\n+$/, "");
          // Comment lines after the call state the rest of an output of several lines; past
          // the lines printed, they are comments on the code that follows.
          const lines = printed.split("\n").length;
          if (!stated(statement.expected.slice(0, lines)).test(printed)) {
            wrong.push(
              `${name}:${statement.line}: the example says it prints ${
                JSON.stringify(statement.expected.slice(0, lines).join("\n"))
              }, but it prints ${JSON.stringify(printed)}`,
            );
          }
        });
      }
    } finally {
      await Deno.remove(folder, { recursive: true });
    }
    assert.deepEqual(wrong, [], wrong.join("\n"));
  });
}
