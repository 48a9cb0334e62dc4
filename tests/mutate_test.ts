// scripts/mutate.ts and scripts/mutations.ts: the mutation list still fits the sources, and
// the runner tells caught from survived from broken, on a small project of its own.
import assert from "node:assert/strict";
import { join } from "node:path";
import { formatReport, parseFailures, runMutations } from "../scripts/mutate.ts";
import {
  applyMutation,
  type Mutation,
  MUTATIONS,
  StaleMutationError,
} from "../scripts/mutations.ts";
import { REPO_ROOT, runProcess, withTempDir, writeTree } from "./helpers.ts";

const sample: Mutation = {
  name: "sample",
  file: "a.ts",
  breaks: "a holds",
  find: "x + 1",
  replace: "x - 1",
};

Deno.test("a mutation replaces its text where it occurs once", () => {
  assert.equal(applyMutation("f = (x) => x + 1;\n", sample), "f = (x) => x - 1;\n");
});

Deno.test("a mutation whose text occurs no times or twice is stale, not applied", () => {
  for (const [text, count] of [["f = (x) => x;", 0], ["x + 1; x + 1;", 2]] as const) {
    assert.throws(
      () => applyMutation(text, sample),
      (error: unknown) =>
        error instanceof StaleMutationError && error.count === count &&
        /no longer applies/.test(error.message) && error.message.includes("a.ts"),
    );
  }
});

Deno.test("every mutation of scripts/mutations.ts applies exactly once to today's sources", async () => {
  const stale: string[] = [];
  for (const mutation of MUTATIONS) {
    const source = await Deno.readTextFile(join(REPO_ROOT, mutation.file));
    try {
      assert.notEqual(applyMutation(source, mutation), source, `${mutation.name} changes nothing`);
    } catch (error) {
      if (!(error instanceof StaleMutationError)) throw error;
      stale.push(error.message);
    }
  }
  assert.deepEqual(stale, [], "rewrite these mutations for the current sources");
});

Deno.test("mutation names are unique kebab-case words", () => {
  const names = MUTATIONS.map((m) => m.name);
  assert.equal(new Set(names).size, names.length);
  for (const name of names) assert.match(name, /^[a-z0-9]+(-[a-z0-9]+)*$/);
});

// A project of three tests: one holds `add`, one always fails (a test broken before any
// mutation catches nothing), one waits on `pause` (which a mutation makes hang).
const PROJECT = {
  "src/add.ts": "export const add = (a: number, b: number): number => a + b;\n" +
    "export const unused = (s: string): string => s.trim();\n" +
    "export const pause = (): Promise<void> => Promise.resolve();\n",
  "tests/add_test.ts": 'import { add, pause } from "../src/add.ts";\n' +
    'Deno.test("add adds", () => { if (add(2, 3) !== 5) throw new Error("not 5"); });\n' +
    'Deno.test("pause ends", async () => { await pause(); });\n',
  "tests/broken_test.ts": 'Deno.test("broken already", () => { throw new Error("broken"); });\n',
};

const caught: Mutation = {
  name: "subtract",
  file: "src/add.ts",
  breaks: "add adds",
  find: "a + b",
  replace: "a - b",
};
const survives: Mutation = {
  name: "no-trim",
  file: "src/add.ts",
  breaks: "unused trims",
  find: "s.trim()",
  replace: "s",
};
const stale: Mutation = { ...caught, name: "gone", find: "a * b" };
const typeError: Mutation = { ...caught, name: "ill-typed", replace: 'a + "b"' };

async function gitProject(dir: string): Promise<void> {
  await writeTree(dir, PROJECT);
  const init = await runProcess("git", ["init", "-q", dir]);
  assert.equal(init.code, 0, init.stderr);
}

Deno.test("the runner reports caught, survived and stale mutations, and leaves the sources alone", async () => {
  await withTempDir(async (dir) => {
    await gitProject(dir);
    const lines: string[] = [];
    const results = await runMutations({
      root: dir,
      mutations: [caught, survives, stale, typeError],
      testPaths: ["tests/"],
      timeoutMs: 300_000,
      progress: (line) => lines.push(line),
    });
    const outcome = (name: string) => results.find((r) => r.mutation.name === name)?.outcome;
    assert.deepEqual(outcome("subtract"), {
      kind: "caught",
      by: ["add adds => ./tests/add_test.ts"],
    });
    assert.deepEqual(outcome("no-trim"), { kind: "survived" });
    assert.equal(outcome("gone")?.kind, "error");
    assert.match(JSON.stringify(outcome("gone")), /no longer applies/);
    assert.equal(outcome("ill-typed")?.kind, "error");
    assert.match(JSON.stringify(outcome("ill-typed")), /does not type-check/);
    // The project itself is untouched: mutations happen in a copy.
    assert.equal(await Deno.readTextFile(join(dir, "src/add.ts")), PROJECT["src/add.ts"]);
    const report = formatReport(results);
    assert.match(report, /^subtract +src\/add\.ts +caught by add adds/m);
    assert.match(report, /^no-trim +src\/add\.ts +SURVIVED$/m);
    assert.match(report, /4 mutations: 1 caught, 1 survived, 2 errors/);
    assert.ok(lines.some((line) => line.includes("without any mutation")), lines.join("\n"));
  });
});

Deno.test("a test run past the time bound is stopped and reported as an error, not caught", async () => {
  await withTempDir(async (dir) => {
    await gitProject(dir);
    const hang: Mutation = {
      name: "hang",
      file: "src/add.ts",
      breaks: "pause ends",
      find: "Promise.resolve()",
      replace: "new Promise((resolve) => setTimeout(resolve, 600_000))",
    };
    const started = Date.now();
    const [result] = await runMutations({
      root: dir,
      mutations: [hang],
      testPaths: ["tests/"],
      timeoutMs: 5_000,
    });
    assert.equal(result.outcome.kind, "error");
    assert.match(JSON.stringify(result.outcome), /time bound/);
    assert.ok(Date.now() - started < 120_000, "the run was stopped, not waited for");
  });
});

Deno.test("the failures deno test lists are read without line numbers", async () => {
  // Real `deno test` output, not a made-up sample.
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "a_test.ts": 'Deno.test("passes", () => {});\n' +
        'Deno.test("fails => oddly named", () => { throw new Error("x"); });\n' +
        'Deno.test("steps", async (t) => { await t.step("inner", () => { throw new Error("y"); }); });\n',
      "b_test.ts": 'throw new Error("fails to load");\n',
    });
    const ran = await runProcess(
      Deno.execPath(),
      ["test", "--no-check", "a_test.ts", "b_test.ts"],
      {
        cwd: dir,
        env: { NO_COLOR: "1" },
      },
    );
    assert.notEqual(ran.code, 0);
    assert.deepEqual(parseFailures(`${ran.stdout}\n${ran.stderr}`).sort(), [
      "./b_test.ts (uncaught error)",
      "fails => oddly named => ./a_test.ts",
      "steps ... inner => ./a_test.ts",
    ]);
  });
});

Deno.test("mutate.ts --list names every mutation and --only refuses an unknown name", async () => {
  const script = join(REPO_ROOT, "scripts", "mutate.ts");
  const list = await runProcess(Deno.execPath(), ["run", "-A", script, "--list"]);
  assert.equal(list.code, 0, list.stderr);
  for (const mutation of MUTATIONS) {
    assert.match(list.stdout, new RegExp(`^${mutation.name} `, "m"));
  }
  const unknown = await runProcess(Deno.execPath(), ["run", "-A", script, "--only", "nope"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /no mutation named nope/);
});
