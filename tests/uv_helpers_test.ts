// The small parsers the uv layers rest on: PEP 440 specifiers, PEP 508 names, uv image tags,
// shell words, workspace globs, and which extras and groups `uv sync` would install.
import assert from "node:assert/strict";
import { pythonAllows, versionAllows } from "../plugins/shared/pep440.ts";
import {
  localRequirement,
  normalizeName,
  parseRequirement,
  requirementName,
} from "../plugins/shared/pep508.ts";
import { lockCheckFlag, requiresPythonProblem, uvImageVersion } from "../plugins/shared/uv.ts";
import {
  defaultGroups,
  groupRequirements,
  selectionFor,
  shellWords,
} from "../plugins/shared/uv_selection.ts";
import { globMatches } from "../plugins/shared/uv_workspace.ts";

Deno.test("versionAllows() reads PEP 440 specifiers as uv's required-version does", () => {
  const cases: [string, string, boolean | undefined][] = [
    [">=0.9.5", "0.8.13", false],
    [">=0.9.5", "0.9.5", true],
    [">=0.9.5", "0.10.0", true],
    ["==0.8.*", "0.8.13", true],
    ["==0.8.*", "0.9.0", false],
    ["!=0.8.*", "0.8.13", false],
    ["~=0.8.10", "0.8.13", true],
    ["~=0.8.10", "0.9.0", false],
    ["~=0.8", "0.9.1", true],
    [">0.8,<0.9", "0.8.13", true],
    [">0.8,<0.9", "0.9.0", false],
    ["<=0.8.13", "0.8.13", true],
    // A bare version is that exact version, as uv reads it.
    ["0.8.13", "0.8.13", true],
    ["0.8.13", "0.8.14", false],
    ["==0.8", "0.8.0", true],
    ["===0.8.13", "0.8.13", true],
    // Unreadable versions leave the decision to uv.
    [">=0.9", "latest", undefined],
    [">=x.y", "0.8.13", undefined],
  ];
  for (const [specifier, version, expected] of cases) {
    assert.equal(versionAllows(specifier, version), expected, `${specifier} vs ${version}`);
  }
});

Deno.test("pythonAllows() admits a minor version when some of its releases satisfy the specifier", () => {
  const cases: [string, [number, number], boolean][] = [
    [">=3.12.4", [3, 12], true],
    [">=3.13", [3, 12], false],
    ["<3.12", [3, 12], false],
    ["<3.12.1", [3, 12], true],
    ["~=3.11.2", [3, 12], false],
    ["==3.*", [3, 12], true],
    ["<4,>=3.10", [3, 14], true],
    [">=3.10, !=3.12.*", [3, 12], false],
    [">=3.10, !=3.12.1", [3, 12], true], // 3.12.0 and 3.12.2 are still allowed
    ["3.12", [3, 11], true], // not a comparison: left to the installer
  ];
  for (const [specifier, version, expected] of cases) {
    assert.equal(pythonAllows(specifier, version), expected, `${specifier} vs ${version}`);
  }
});

Deno.test("requiresPythonProblem() names the file, the demand and a version that satisfies it", () => {
  const problem = requiresPythonProblem("/repo/pyproject.toml", ">=3.13,<3.15", [3, 12]);
  assert.match(problem!.message, /^\/repo\/pyproject\.toml requires Python >=3\.13,<3\.15/);
  assert.match(problem!.message, /the image has Python 3\.12$/);
  assert.match(problem!.hint!, /pythonVersion: \[3, 13\]/);
  assert.equal(requiresPythonProblem("/repo/pyproject.toml", ">=3.11", [3, 12]), undefined);
  assert.match(requiresPythonProblem("/r/p", ">=3.99", [3, 12])!.hint!, /no Python 3\.8-3\.14/);
});

Deno.test("uvImageVersion() reads the uv version from the uv image's tag, and only from the tag", () => {
  assert.equal(uvImageVersion("ghcr.io/astral-sh/uv:0.8.13"), "0.8.13");
  assert.equal(uvImageVersion("registry.local:5000/mirror/uv:0.9.5"), "0.9.5");
  assert.equal(uvImageVersion("ghcr.io/astral-sh/uv:0.8.13-python3.12-bookworm"), "0.8.13");
  assert.equal(uvImageVersion("ghcr.io/astral-sh/uv:0.8.13@sha256:" + "a".repeat(64)), "0.8.13");
  assert.equal(uvImageVersion("ghcr.io/astral-sh/uv:latest"), undefined);
  assert.equal(uvImageVersion("ghcr.io/astral-sh/uv"), undefined);
  assert.equal(uvImageVersion("registry.local:5000/uv"), undefined, "a port is not a tag");
  assert.equal(uvImageVersion("ghcr.io/astral-sh/uv:python3.12-bookworm"), undefined);
});

Deno.test("lockCheckFlag() keeps --locked unless an index the lock was not made against is given", () => {
  const lock = (registry: string) => ({
    package: [{ name: "httpx", version: "0.28.1", source: { registry } }],
  });
  const plain = { extraIndexUrls: [], settings: [], dynamicWithoutSources: false };
  const pypi = lock("https://pypi.org/simple");
  assert.equal(lockCheckFlag({ ...plain, lock: pypi }), "--locked");
  assert.equal(
    lockCheckFlag({ ...plain, lock: pypi, indexUrl: "https://mirror.example/simple" }),
    "--frozen",
  );
  assert.equal(
    lockCheckFlag({ ...plain, lock: pypi, extraIndexUrls: ["https://extra.example/simple"] }),
    "--locked",
    "PyPI stays the default index beside extra ones",
  );
  const mirror = lock("https://mirror.example/simple");
  assert.equal(
    lockCheckFlag({ ...plain, lock: mirror, indexUrl: "https://user:pw@mirror.example/simple/" }),
    "--locked",
    "credentials and a trailing slash make no other index",
  );
  assert.equal(
    lockCheckFlag({
      ...plain,
      lock: mirror,
      indexUrl: "https://other.example/simple",
      settings: [{ tool: { uv: { index: [{ url: "https://mirror.example/simple" }] } } }],
    }),
    "--locked",
    "an index the pyproject configures counts",
  );
  assert.equal(lockCheckFlag({ ...plain, lock: pypi, dynamicWithoutSources: true }), "--frozen");
  assert.equal(lockCheckFlag({ ...plain, lock: pypi, extraArgs: "--frozen" }), undefined);
  assert.equal(
    lockCheckFlag({ ...plain, lock: pypi, indexUrl: "https://pypi.org/simple", extraArgs: "-i x" }),
    "--frozen",
    "an index option in extraArgs cannot be compared",
  );
});

Deno.test("PEP 508 helpers find the package a requirement names and point it at a folder", () => {
  assert.deepEqual(parseRequirement("Shared_Lib[io, s3] >=1 ; os_name == 'posix'"), {
    name: "Shared_Lib",
    extras: ["io", "s3"],
    constraint: ">=1",
    marker: "os_name == 'posix'",
  });
  assert.equal(normalizeName("Shared__Lib.Core"), "shared-lib-core");
  assert.equal(requirementName("mcp[cli]"), "mcp");
  assert.equal(requirementName("./wheels/x.whl"), undefined);
  assert.equal(requirementName("https://example.com/x.whl"), undefined);
  assert.equal(
    localRequirement(parseRequirement("lib[io]")!, "/tmp/p/a b"),
    "lib[io] @ file:///tmp/p/a%20b",
  );
});

Deno.test("shellWords() splits like a shell and never throws", () => {
  assert.deepEqual(shellWords(`--group "a b" 'c d' e\\ f`), ["--group", "a b", "c d", "e f"]);
  assert.deepEqual(shellWords(`'unclosed`), ["unclosed"]);
  assert.deepEqual(shellWords(`"a\\"b"`), ['a"b']);
  assert.deepEqual(shellWords("  "), []);
});

Deno.test("globMatches() reads workspace globs: * stays in one folder, ** crosses folders", () => {
  assert.ok(globMatches("packages/*", "packages/api"));
  assert.ok(!globMatches("packages/*", "packages/api/sub"));
  assert.ok(globMatches("libs/**", "libs/a/b"));
  assert.ok(globMatches("./apps/[ab]*", "apps/api"));
  assert.ok(!globMatches("apps/[!a]*", "apps/api"));
  assert.ok(globMatches("examples", "examples/"));
});

Deno.test("defaultGroups() follows uv: dev unless [tool.uv] default-groups says otherwise", () => {
  const groups = { "dependency-groups": { dev: ["pytest"], docs: ["mkdocs"], lint: ["ruff"] } };
  assert.deepEqual(defaultGroups(groups), ["dev"]);
  assert.deepEqual(
    defaultGroups({ ...groups, tool: { uv: { "default-groups": ["docs", "lint"] } } }),
    ["docs", "lint"],
  );
  assert.deepEqual(
    defaultGroups({ ...groups, tool: { uv: { "default-groups": "all" } } }),
    ["dev", "docs", "lint"],
  );
  assert.deepEqual(defaultGroups({ "dependency-groups": { docs: [] } }), [], "no dev group");
  assert.deepEqual(
    defaultGroups({ tool: { uv: { "dev-dependencies": ["pytest"] } } }),
    ["dev"],
    "legacy dev-dependencies are the dev group",
  );
});

Deno.test("selectionFor() applies uv sync's selection options; exclusions win", () => {
  const pyproject = {
    project: { "optional-dependencies": { io: ["fsspec"], s3: ["boto3"] } },
    "dependency-groups": { dev: ["pytest"], docs: ["mkdocs"], lint: ["ruff"] },
  };
  const pick = (args: string) => {
    const { project, extras, groups, rest, problems } = selectionFor(pyproject, args);
    return { project, extras, groups, rest, problems: problems.length };
  };
  assert.deepEqual(pick(""), { project: true, extras: [], groups: ["dev"], rest: [], problems: 0 });
  assert.deepEqual(pick("--no-dev").groups, []);
  assert.deepEqual(pick("--group docs --no-group docs").groups, ["dev"]);
  assert.deepEqual(pick("--no-default-groups --group=lint").groups, ["lint"]);
  assert.deepEqual(pick("--all-groups --no-group lint").groups, ["dev", "docs"]);
  assert.deepEqual(pick("--only-group docs"), {
    project: false,
    extras: [],
    groups: ["docs"],
    rest: [],
    problems: 0,
  });
  assert.deepEqual(pick("--extra io").extras, ["io"]);
  assert.deepEqual(pick("--all-extras --no-extra s3").extras, ["io"]);
  assert.deepEqual(pick("--no-build-isolation --no-editable --inexact").rest, [
    "--no-build-isolation",
  ]);
  assert.equal(pick("--group missing --extra nope").problems, 2, "unknown names are problems");
  const syncOnly = selectionFor(pyproject, "--frozen --package api --no-install-project");
  assert.deepEqual(
    syncOnly.problems.map((problem) => problem.message.split(",")[0]),
    [
      "extraArgs has --frozen",
      "extraArgs has --package",
      "extraArgs has --no-install-project",
    ],
  );
  assert.deepEqual(syncOnly.rest, [], "the value of --package is not passed on");
});

Deno.test("groupRequirements() follows include-group and counts legacy dev-dependencies as dev", () => {
  const pyproject = {
    "dependency-groups": {
      test: ["pytest", { "include-group": "lint" }],
      lint: ["ruff"],
      dev: [{ "include-group": "test" }, "ipython"],
    },
    tool: { uv: { "dev-dependencies": ["mypy"] } },
  };
  assert.deepEqual(groupRequirements(pyproject, ["dev"]), ["pytest", "ruff", "ipython", "mypy"]);
  assert.deepEqual(groupRequirements(pyproject, ["lint"]), ["ruff"]);
  const cyclic = {
    "dependency-groups": { a: [{ "include-group": "b" }], b: [{ "include-group": "a" }, "x"] },
  };
  assert.deepEqual(groupRequirements(cyclic, ["a"]), ["x"], "a cycle ends");
});
