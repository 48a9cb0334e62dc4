// versionAllows and pythonVersionAllows (plugins/shared/python.ts) against independent facts:
// the tables of Poetry's documentation, and, where the machine has them, the reference
// implementations themselves (Python's `packaging` for PEP 440, Debian's poetry-core for
// Poetry's syntax) on thousands of generated cases.
import assert from "node:assert/strict";
import { pythonVersionAllows, versionAllows } from "../plugins/shared/python.ts";
import { runProcess } from "./helpers.ts";

// The tables of Poetry's docs/dependency-specification.md: requirement -> versions allowed.
const POETRY_DOC_TABLES: readonly [string, string, string][] = [
  ["^1.2.3", "1.2.3", "2.0.0"],
  ["^1.2", "1.2.0", "2.0.0"],
  ["^1", "1.0.0", "2.0.0"],
  ["^0.2.3", "0.2.3", "0.3.0"],
  ["^0.0.3", "0.0.3", "0.0.4"],
  ["^0.0", "0.0.0", "0.1.0"],
  ["^0", "0.0.0", "1.0.0"],
  ["~1.2.3", "1.2.3", "1.3.0"],
  ["~1.2", "1.2.0", "1.3.0"],
  ["~1", "1.0.0", "2.0.0"],
  ["~=1.2.3", "1.2.3", "1.3.0"],
  ["~=1.2", "1.2.0", "2.0.0"],
  ["1.*", "1.0.0", "2.0.0"],
  ["1.2.*", "1.2.0", "1.3.0"],
];

/** The version just below `version` in its last segment (`2.0.0` -> `1.9999.9999`-like). */
function below(version: string): string {
  const parts = version.split(".").map(Number);
  for (let i = parts.length - 1; i >= 0; i--) {
    if (parts[i] > 0) {
      parts[i] -= 1;
      for (let j = i + 1; j < parts.length; j++) parts[j] = 9999;
      return parts.join(".");
    }
  }
  throw new Error(`nothing is below ${version}`);
}

Deno.test("versionAllows follows the tables of Poetry's dependency specification", () => {
  for (const [requirement, lowest, limit] of POETRY_DOC_TABLES) {
    assert.equal(versionAllows(requirement, lowest), true, `${requirement} allows ${lowest}`);
    assert.equal(versionAllows(requirement, limit), false, `${requirement} stops at ${limit}`);
    assert.equal(versionAllows(requirement, below(limit)), true, `${requirement} < ${limit}`);
    if (lowest !== "0.0.0") {
      assert.equal(versionAllows(requirement, below(lowest)), false, `${requirement} >= ${lowest}`);
    }
  }
  assert.equal(versionAllows("*", "0.0.1"), true);
  assert.equal(versionAllows(">= 1.2, < 1.5", "1.4.9"), true, "spaces after operators");
  assert.equal(versionAllows(">=1.2 <1.5", "1.5"), false, "Poetry's space-separated clauses");
  assert.equal(versionAllows("^1.0 || ^3.0", "3.1"), true, "alternatives");
  assert.equal(versionAllows("^1.0 || ^3.0", "2.1"), false);
});

Deno.test("versionAllows says undefined, not false, for what it cannot read", () => {
  assert.equal(versionAllows("any recent one", "2.1.3"), undefined);
  assert.equal(versionAllows(">=2.0", "not-a-version"), undefined);
  assert.equal(versionAllows("~=2", "2.1"), undefined, "~= needs two release segments");
});

Deno.test("pythonVersionAllows asks whether some patch release of major.minor fits", () => {
  assert.equal(pythonVersionAllows("^3.11", [3, 12]), true);
  assert.equal(pythonVersionAllows("~3.11", [3, 12]), false);
  assert.equal(pythonVersionAllows(">=3.9,<3.12", [3, 12]), false);
  assert.equal(pythonVersionAllows(">=3.12.4", [3, 12]), true, "3.12.4 and later exist");
  assert.equal(pythonVersionAllows("3.8.6", [3, 8]), true, "an exact patch release");
  assert.equal(pythonVersionAllows("3.8.6", [3, 12]), false);
  assert.equal(pythonVersionAllows("<3.12", [3, 12]), false, "no 3.12 release is below 3.12");
  assert.equal(pythonVersionAllows("", [3, 12]), true, "no demand");
  assert.equal(pythonVersionAllows("whatever", [3, 12]), undefined);
});

/** A small seeded generator, so that a failing case can be run again. */
function random(seed: number): (n: number) => number {
  let state = seed >>> 0;
  return (n) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** Ask a Python oracle (a script reading `[constraint, version]` pairs as JSON) for answers. */
async function oracle(script: string, cases: [string, string][]): Promise<(boolean | null)[]> {
  const file = await Deno.makeTempFile({ prefix: "imgtool-test-", suffix: ".py" });
  try {
    await Deno.writeTextFile(file, script);
    const child = new Deno.Command("/usr/bin/python3", {
      args: [file],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(JSON.stringify(cases)));
    await writer.close();
    const output = await child.output();
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    return JSON.parse(new TextDecoder().decode(output.stdout));
  } finally {
    await Deno.remove(file);
  }
}

async function pythonHas(module: string): Promise<boolean> {
  try {
    return (await runProcess("/usr/bin/python3", ["-c", `import ${module}`])).code === 0;
  } catch {
    return false;
  }
}

const hasPackaging = await pythonHas("packaging.specifiers");
const hasPoetryCore = await pythonHas("poetry.core.constraints.version");

function compare(
  cases: readonly [string, string][],
  answers: readonly (boolean | null)[],
  seed: number,
) {
  let compared = 0;
  const wrong: string[] = [];
  cases.forEach(([constraint, version], index) => {
    const expected = answers[index];
    if (expected === null) return;
    compared++;
    const actual = versionAllows(constraint, version);
    if (actual !== expected) wrong.push(`${constraint} ${version}: ${actual}, not ${expected}`);
  });
  assert.ok(compared > cases.length / 2, `only ${compared} cases were comparable`);
  assert.deepEqual(wrong.slice(0, 10), [], `seed ${seed}: ${wrong.length} answers differ`);
}

Deno.test({
  name: "versionAllows agrees with Python's packaging on PEP 440 specifiers, pre-releases too",
  ignore: !hasPackaging,
  async fn() {
    const seed = Date.now() % 100_000;
    const next = random(seed);
    const version = () =>
      Array.from({ length: 1 + next(3) }, () => next(3)).join(".") +
      ["", "", "", "a1", "b2", "rc1", ".post1", ".dev0"][next(8)];
    const operators = ["==", "!=", ">=", "<=", ">", "<", "~="];
    const clause = () => {
      const operator = operators[next(operators.length)];
      const wildcard = (operator === "==" || operator === "!=") && next(4) === 0;
      return operator + (wildcard ? `${next(3)}.${next(3)}.*` : version());
    };
    const cases: [string, string][] = Array.from({ length: 2000 }, () => [
      Array.from({ length: 1 + next(2) }, clause).join(","),
      version(),
    ]);
    const answers = await oracle(
      "import json, sys\n" +
        "from packaging.specifiers import SpecifierSet\nfrom packaging.version import Version\n" +
        "def answer(c, v):\n" +
        "    try:\n        return SpecifierSet(c).contains(Version(v), prereleases=True)\n" +
        "    except Exception:\n        return None\n" +
        "print(json.dumps([answer(c, v) for c, v in json.load(sys.stdin)]))\n",
      cases,
    );
    compare(cases, answers, seed);
  },
});

Deno.test({
  name: "versionAllows agrees with poetry-core on Poetry's constraints (^, ~, ||) for releases",
  ignore: !hasPoetryCore,
  async fn() {
    const seed = Date.now() % 100_000;
    const next = random(seed);
    const version = () => Array.from({ length: 1 + next(3) }, () => next(3)).join(".");
    const operators = ["", "==", "!=", ">=", "<=", ">", "<", "^", "~", "~="];
    const clause = () => {
      const operator = operators[next(operators.length)];
      // poetry-core 1.4 reads `1.0.0.*` as a range up to 1.1; two-part prefixes it reads right.
      const wildcard = ["", "==", "!="].includes(operator) && next(4) === 0;
      if (wildcard) return `${operator}${next(3)}.${next(3)}.*`;
      // `~=` takes two or three segments here: poetry-core reads `~=2` and `~=1.0.0.2` its
      // own way, PEP 440 not at all or otherwise.
      const compatible = `${next(3)}.${next(3)}${next(2) ? `.${next(3)}` : ""}`;
      return operator + (operator === "~=" ? compatible : version());
    };
    const cases: [string, string][] = Array.from({ length: 2000 }, () => [
      Array.from(
        { length: 1 + next(2) },
        () => Array.from({ length: 1 + next(2) }, clause).join(","),
      ).join(" || "),
      version(),
    ]);
    const answers = await oracle(
      "import json, sys\n" +
        "from poetry.core.constraints.version import parse_constraint, Version\n" +
        "def answer(c, v):\n" +
        "    try:\n        return parse_constraint(c).allows(Version.parse(v))\n" +
        "    except Exception:\n        return None\n" +
        "print(json.dumps([answer(c, v) for c, v in json.load(sys.stdin)]))\n",
      cases,
    );
    compare(cases, answers, seed);
  },
});
