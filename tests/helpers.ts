/**
 * What the tests share: where the fixtures are, the fixture configuration, rendering an image
 * through the public pipeline into a golden text, temporary folders, and checks on
 * diagnostics.
 *
 * @module
 */

import assert from "node:assert/strict";
import { homedir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { IMGTOOL_RUNTIME_FLAGS } from "../scripts/runtime_flags.ts";
import { setActiveConfig } from "../src/config.ts";
import { loadSpec } from "../src/load.ts";
import type { ImagePlan } from "../src/plan.ts";
import {
  type Config,
  type ConfigOverrides,
  type Diagnostic,
  type Image,
  loadConfig,
  planImage,
  renderImage,
  validateImages,
  VERSION,
} from "../mod.ts";

/** The repository's root folder, without a trailing slash. */
export const REPO_ROOT: string = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
/** The fixtures folder. */
export const FIXTURES: string = join(REPO_ROOT, "tests", "fixtures");
/** The fixture project the golden images come from (it has its own imgtool.toml). */
export const PROJECT: string = join(FIXTURES, "project");

/**
 * The configuration of the fixture project: its imgtool.toml, no `IMGTOOL_*` variables from
 * the machine, and the given variables and flag values on top.
 */
export function fixtureConfig(
  env: Record<string, string> = {},
  overrides: ConfigOverrides = {},
): Config {
  return loadConfig({ startDir: PROJECT, env, overrides });
}

/** The prefix of every temporary folder the tests make. */
export const TEMP_PREFIX = "imgtool-test-";

/**
 * Fail if `text` holds a path of this machine: the repository, a temporary folder of the
 * tests, the user's home (unless it is a path images have too, like `/root`), or `extra`.
 */
export function assertNoAbsolutePaths(text: string, extra: readonly string[] = []): void {
  const home = homedir();
  const roots = [REPO_ROOT, TEMP_PREFIX, ...extra];
  if (home.split("/").filter(Boolean).length > 1) roots.push(home);
  for (const root of roots) {
    if (root === "" || root === "/") continue;
    assert.ok(!text.includes(root), `the text holds the machine path ${root}:\n${text}`);
  }
}

/**
 * Render `image` through the public pipeline (plan, validate, render) and describe the
 * result as one machine-independent text: the Dockerfile (imgtool's version replaced by
 * `<version>`), then the build context (sources relative to `root`), build arguments and
 * secrets. Fails if the image is not valid or the text holds an absolute path.
 */
export async function renderGolden(
  image: Image,
  config: Config,
  options: { exportName?: string; root?: string } = {},
): Promise<string> {
  const root = options.root ?? PROJECT;
  const plan = planImage(image, options.exportName ?? "default", config);
  const problems = await validateImages([plan], { secretValues: false });
  assert.deepEqual(problems, [], "a golden image must be valid");
  const rendered = await renderImage(plan);
  const dockerfile = rendered.dockerfile.replace(`imgtool ${VERSION} `, "imgtool <version> ");
  assertNoAbsolutePaths(dockerfile, [root]);
  const lines = [dockerfile];
  if (rendered.context.length > 0) {
    lines.push("--- build context ---");
    for (const entry of rendered.context) {
      if (entry.kind === "text") {
        lines.push(`${entry.target} (generated, ${entry.content.length} bytes)`);
      } else {
        const source = relative(root, entry.source) || ".";
        assert.ok(!source.startsWith(".."), `${entry.source} is outside ${root}`);
        lines.push(`${entry.target} <- ${entry.kind} ${source}`);
      }
    }
  }
  const args = Object.entries(rendered.buildArgs);
  if (args.length > 0) {
    lines.push(
      "--- build args ---",
      ...args.map(([name, value]) => `${name}=${JSON.stringify(value)}`),
    );
  }
  if (rendered.secrets.length > 0) {
    lines.push("--- secrets ---", ...rendered.secrets.map((secret) => String(secret)));
  }
  return `${lines.join("\n")}\n`;
}

/** Just the Dockerfile of an image, rendered through the public pipeline. */
export async function dockerfileOf(image: Image, config: Config): Promise<string> {
  return (await renderImage(planImage(image, "default", config))).dockerfile;
}

/** Run `body` with a new temporary folder, removed afterwards whatever happens. */
export async function withTempDir<T>(body: (dir: string) => Promise<T> | T): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: TEMP_PREFIX });
  try {
    return await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Write files (path relative to `dir` → content) into `dir`, making folders as needed. */
export async function writeTree(dir: string, files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    const target = join(dir, path);
    await Deno.mkdir(join(target, ".."), { recursive: true });
    await Deno.writeTextFile(target, content);
  }
}

/** Copy a folder tree (files and folders, with their modes). */
export async function copyTree(source: string, target: string): Promise<void> {
  await Deno.mkdir(target, { recursive: true });
  for await (const entry of Deno.readDir(source)) {
    const from = join(source, entry.name);
    const to = join(target, entry.name);
    if (entry.isDirectory) await copyTree(from, to);
    else if (entry.isFile) await Deno.copyFile(from, to);
  }
}

/** The 1-based line of `file` that holds `marker` (exactly one line must). */
export function lineOf(file: string, marker: string): number {
  const lines = Deno.readTextFileSync(file).split("\n");
  const found = lines.flatMap((line, index) => line.includes(marker) ? [index + 1] : []);
  assert.equal(found.length, 1, `exactly one line of ${file} should hold ${marker}`);
  return found[0];
}

/** What a diagnostic is expected to say; `message` may be a pattern. */
export interface ExpectedDiagnostic {
  readonly message: string | RegExp;
  readonly hint?: string | RegExp | null;
  readonly plugin?: string;
  readonly method?: string;
  readonly index?: number;
  readonly callSite?: string;
  readonly image?: string;
  readonly file?: string;
}

function matches(actual: string | undefined, expected: string | RegExp): boolean {
  if (actual === undefined) return false;
  return typeof expected === "string" ? actual === expected : expected.test(actual);
}

/**
 * Find the one diagnostic whose message matches, and check the rest of what it says. A
 * `hint: null` expects no hint; an absent field is not checked.
 */
export function assertDiagnostic(
  diagnostics: readonly Diagnostic[],
  expected: ExpectedDiagnostic,
): Diagnostic {
  const found = diagnostics.filter((d) => matches(d.message, expected.message));
  assert.equal(
    found.length,
    1,
    `expected one diagnostic matching ${expected.message}, got:\n${
      JSON.stringify(diagnostics, null, 2)
    }`,
  );
  const [diagnostic] = found;
  if (expected.hint === null) assert.equal(diagnostic.hint, undefined, "expected no hint");
  else if (expected.hint !== undefined) {
    assert.ok(
      matches(diagnostic.hint, expected.hint),
      `hint ${JSON.stringify(diagnostic.hint)} should match ${expected.hint}`,
    );
  }
  if (expected.plugin !== undefined) assert.equal(diagnostic.layer?.plugin, expected.plugin);
  if (expected.method !== undefined) assert.equal(diagnostic.layer?.method, expected.method);
  if (expected.index !== undefined) assert.equal(diagnostic.layer?.index, expected.index);
  if (expected.callSite !== undefined) assert.equal(diagnostic.callSite, expected.callSite);
  if (expected.image !== undefined) assert.equal(diagnostic.image, expected.image);
  if (expected.file !== undefined) assert.equal(diagnostic.file, expected.file);
  return diagnostic;
}

/** Snapshot options that store a text as it is (only escaped for the template literal). */
export const asText: Deno.TestSnapshotOptions<string> = { serializer: (text: string) => text };

/**
 * A double-quoted Dockerfile word as Docker's parser reads it: `\` escapes `"`, `$` and `\`
 * and is kept before anything else; an unescaped `$` or `"` inside fails (it would expand
 * or end the word).
 */
export function dockerUnquote(word: string): string {
  assert.ok(word.length >= 2 && word.startsWith('"') && word.endsWith('"'), `${word} is quoted`);
  let out = "";
  for (let i = 1; i < word.length - 1; i++) {
    const char = word[i];
    if (char === "\\" && i + 1 < word.length - 1 && '"$\\'.includes(word[i + 1])) {
      out += word[++i];
    } else if (char === "$" || char === '"') {
      assert.fail(`unescaped ${char} in ${word}`);
    } else {
      out += char;
    }
  }
  return out;
}

/** What a run of the command line did. */
export type CliResult = Ran;

/** What a process printed and how it ended. */
export interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run a program to completion; never throws for a non-zero exit. */
export async function runProcess(
  program: string,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string>; clearEnv?: boolean } = {},
): Promise<Ran> {
  const output = await new Deno.Command(program, {
    args: [...args],
    cwd: options.cwd,
    env: options.env,
    clearEnv: options.clearEnv,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** This process's environment without `IMGTOOL_*` variables: a developer's settings stay out. */
export function environmentWithoutImgtool(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([name]) => !name.startsWith("IMGTOOL_")),
  );
}

/** The command that runs the CLI from this checkout, as `deno task imgtool` does. */
export const IMGTOOL_COMMAND: readonly string[] = [
  Deno.execPath(),
  "run",
  ...IMGTOOL_RUNTIME_FLAGS,
  "--config",
  join(REPO_ROOT, "deno.json"),
  join(REPO_ROOT, "cli.ts"),
];

/**
 * Run the CLI as users do from a checkout (`deno task imgtool`: `deno run` with its
 * permissions and `--config <repo>/deno.json`), in `cwd`, with the machine's environment
 * minus every `IMGTOOL_*` variable, plus `env`.
 */
export function imgtool(
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<CliResult> {
  return runCli(IMGTOOL_COMMAND, args, options);
}

/**
 * Run the bundled CLI in `bundle` (made by scripts/bundle.ts) as {@link imgtool} runs the
 * sources: the same permissions and environment, the bundle's own import map.
 */
export function bundledImgtool(
  bundle: string,
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<CliResult> {
  const command = [
    Deno.execPath(),
    "run",
    ...IMGTOOL_RUNTIME_FLAGS,
    "--config",
    join(bundle, "deno.json"),
    join(bundle, "cli.js"),
  ];
  return runCli(command, args, options);
}

function runCli(
  command: readonly string[],
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<CliResult> {
  const [program, ...prefix] = command;
  return runProcess(program, [...prefix, ...args], {
    cwd: options.cwd,
    env: { ...environmentWithoutImgtool(), NO_COLOR: "1", ...options.env },
    clearEnv: true,
  });
}

/** The plan of the first image of the spec in `dir` (`spec.ts`), as a command plans it. */
export async function planIn(dir: string): Promise<{ plan: ImagePlan; spec: string }> {
  const config = loadConfig({ startDir: dir });
  setActiveConfig(config);
  const loaded = await loadSpec(join(dir, "spec.ts"));
  return { plan: planImage(loaded.images[0].image, "default", config), spec: loaded.file };
}
