import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Image } from "imgtool";
import * as images from "./fixtures/project/images.ts";
import { asText, fixtureConfig, renderGolden, withTempDir, writeTree } from "./helpers.ts";
import { parseScriptHeader, pythonVersionFor } from "../plugins/uv_script.ts";
import { activeConfig, type Config, identify, planImage, validateImages } from "../mod.ts";

const uv = fixtureConfig();
const pip = fixtureConfig({}, { "python.installer": "pip" });

Deno.test("uv_script plugin installs the dependencies of the script's PEP 723 header", async (t) => {
  const golden = await renderGolden(images.uvScript, uv);
  assert.match(
    golden,
    /^FROM python:3\.12-slim-bookworm$/m,
    "requires-python >=3.11 allows the configured 3.12",
  );
  assert.match(golden, / --index-url https:\/\/pypi.example\/simple 'httpx>=0\.27' rich\n/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("uv_script plugin installs with pip when the installer is pip", async (t) => {
  const golden = await renderGolden(images.uvScript, pip);
  assert.match(
    golden,
    /-m pip install --disable-pip-version-check --index-url https:\/\/pypi.example\/simple 'httpx>=0\.27' rich\n/,
  );
  await t.assertSnapshot(golden, asText);
});

Deno.test("uv_script plugin renders no install step for a script without dependencies", async (t) => {
  const golden = await renderGolden(images.uvScriptNoDependencies, uv);
  assert.match(golden, /# \(the script declares no dependencies\)/);
  assert.match(golden, /^FROM python:3\.12-slim-bookworm$/m);
  await t.assertSnapshot(golden, asText);
});

/** A spec, a script with local `file://` dependencies, and the things they point at. */
async function localDependencyProject(dir: string): Promise<void> {
  await writeTree(dir, {
    "spec.ts": 'import { Image } from "imgtool";\n' +
      'export default Image.fromUvScript("./job.py", { name: "local-job" });\n',
    "job.py": [
      "# /// script",
      '# requires-python = ">=3.12,<3.14"',
      "# dependencies = [",
      '#   "requests==2.32.3",',
      `#   "localpkg @ ${pathToFileURL(join(dir, "localpkg")).href}",`,
      `#   "${pathToFileURL(join(dir, "wheels", "tool-1.0-py3-none-any.whl")).href}",`,
      "# ]",
      "# ///",
      'print("job")',
      "",
    ].join("\n"),
    "localpkg/pyproject.toml": '[project]\nname = "localpkg"\nversion = "1.0"\n',
    "localpkg/localpkg/__init__.py": "",
    "wheels/tool-1.0-py3-none-any.whl": "not really a wheel",
  });
}

Deno.test("uv_script plugin mounts local file:// dependencies and installs them from the mount", async (t) => {
  await withTempDir(async (dir) => {
    await localDependencyProject(dir);
    const spec = await import(pathToFileURL(join(dir, "spec.ts")).href);
    const golden = await renderGolden(spec.default, uv, { root: dir });
    assert.match(
      golden,
      /--mount=type=bind,source=.imgtool\/01-uv_script\/1\/localpkg,target=\/tmp\/imgtool-local\/1\/localpkg,rw/,
    );
    assert.match(
      golden,
      / requests==2\.32\.3 \/tmp\/imgtool-local\/1\/localpkg \/tmp\/imgtool-local\/2\/tool-1\.0-py3-none-any\.whl\n/,
    );
    assert.match(golden, /\.imgtool\/01-uv_script\/1\/localpkg <- tree localpkg/);
    assert.match(
      golden,
      /\.imgtool\/01-uv_script\/2\/tool-1\.0-py3-none-any\.whl <- file wheels\/tool-1\.0-py3-none-any\.whl/,
    );
    await t.assertSnapshot(golden, asText);
  });
});

Deno.test("uv_script plugin identity covers the contents of local dependencies, not their paths", async () => {
  await withTempDir(async (first) => {
    await withTempDir(async (second) => {
      await localDependencyProject(first);
      await localDependencyProject(second);
      const tag = async (dir: string) =>
        (await identify(
          planImage(Image.fromUvScript(join(dir, "job.py"), { name: "job" }), "default", uv),
        )).tag;
      assert.equal(await tag(first), await tag(second));
      await Deno.writeTextFile(join(second, "localpkg/localpkg/__init__.py"), "X = 1\n");
      assert.notEqual(await tag(first), await tag(second));
    });
  });
});

Deno.test("parseScriptHeader() reads requires-python and dependencies", () => {
  assert.deepEqual(
    parseScriptHeader(
      '#!/usr/bin/env -S uv run --script\n# /// script\n# requires-python = ">=3.12"\n' +
        '# dependencies = [\n#   "httpx",\n#\n#   "rich>=13",\n# ]\n# ///\nimport httpx\n',
    ),
    { requiresPython: ">=3.12", dependencies: ["httpx", "rich>=13"] },
  );
  assert.deepEqual(parseScriptHeader("# /// script\n# ///\n"), {
    requiresPython: undefined,
    dependencies: [],
  });
  assert.deepEqual(
    parseScriptHeader('# /// script\r\n# dependencies = ["a"]\r\n# ///\r\n'),
    { requiresPython: undefined, dependencies: ["a"] },
  );
});

Deno.test("parseScriptHeader() says what is wrong with a bad header", () => {
  assert.throws(() => parseScriptHeader("print(1)\n"), /no `# \/\/\/ script` header block/);
  assert.throws(
    () => parseScriptHeader("# /// script\n#dependencies = []\n# ///\n"),
    /header line "#dependencies = \[\]" does not start with "# "/,
  );
  assert.throws(
    () => parseScriptHeader("# /// script\n# dependencies = [\n# ///\n"),
    /the header is not valid TOML/,
  );
  assert.throws(
    () => parseScriptHeader('# /// script\n# dependencies = "httpx"\n# ///\n'),
    /`dependencies` must be a list of strings/,
  );
  assert.throws(
    () => parseScriptHeader("# /// script\n# requires-python = 3.12\n# ///\n"),
    /`requires-python` must be a string/,
  );
});

Deno.test("pythonVersionFor() picks the lowest Python 3 that requires-python allows", () => {
  const cases: [string, [number, number] | undefined][] = [
    [">=3.12", [3, 12]],
    [">= 3.10", [3, 10]],
    // 3.11.1 > 3.11 (PEP 440; Python's packaging agrees), so an image's 3.11 qualifies.
    [">3.11", [3, 11]],
    [">3.11.2", [3, 11]],
    ["~=3.11", [3, 11]],
    ["==3.13.*", [3, 13]],
    ["==3.12", [3, 12]],
    ["==3.*", [3, 8]],
    ["<3.12", [3, 8]],
    ["<=3.9", [3, 8]],
    [">=3.10,<3.11", [3, 10]],
    // `!=3.9` excludes 3.9.0 only (PEP 440; packaging agrees): later 3.9 releases qualify.
    [">=3.9, !=3.9", [3, 9]],
    [">=3.8,!=3.8.*,!=3.9.*", [3, 10]],
    ["!=3.8.1", [3, 8]],
    [">=3", [3, 8]],
    [">=3.15", undefined],
    ["<3.8", undefined],
    ["<3", undefined],
    [">=3.12,<3.12", undefined],
    // A patch part narrows ~= to one minor, and lets < admit the minor's earlier releases.
    ["~=3.11.2", [3, 11]],
    ["~=3.11.2,>=3.12", undefined],
    ["<3.12.1,>=3.12", [3, 12]],
    ["<3.12.0,>=3.12", undefined],
    // Other major versions compare with every 3.x alike.
    [">=4", undefined],
    ["<4,>=3.10", [3, 10]],
    [">=2.7", [3, 8]],
    ["==2.7", undefined],
  ];
  for (const [specifier, expected] of cases) {
    assert.deepEqual(pythonVersionFor(specifier), expected, specifier);
  }
});

Deno.test("fromUvScript uses the configured Python version when requires-python allows it, else the lowest it allows", async () => {
  await withTempDir((dir) => {
    const configured = activeConfig().pythonVersion;
    const script = (name: string, requires: string) => {
      Deno.writeTextFileSync(
        join(dir, name),
        `# /// script\n# requires-python = "${requires}"\n# dependencies = []\n# ///\n`,
      );
      return join(dir, name);
    };
    const allowing = Image.fromUvScript(script("a.py", `>=3.8,<=${configured.join(".")}`), {
      name: "job",
    });
    assert.equal(allowing.spec.pythonVersion, undefined, "left to configuration");
    assert.deepEqual(
      planImage(allowing, "default", uv).info.pythonVersion,
      uv.pythonVersion,
      "so the build uses the configured version",
    );
    const newer = `>=${configured[0]}.${configured[1] + 1}`;
    assert.deepEqual(
      Image.fromUvScript(script("b.py", newer), { name: "job" }).spec.pythonVersion,
      [configured[0], configured[1] + 1],
      "the lowest version the script allows",
    );
    assert.deepEqual(
      Image.fromUvScript(script("c.py", newer), { name: "job", pythonVersion: [3, 14] }).spec
        .pythonVersion,
      [3, 14],
      "a version the spec gives wins",
    );
    const missing = Image.fromUvScript("./no/such/script.py", { name: "job" });
    assert.equal(
      missing.spec.pythonVersion,
      undefined,
      "a missing script leaves it to configuration",
    );
  });
});

Deno.test("pythonVersionFor() prefers the given version when the specifier allows it", () => {
  assert.deepEqual(pythonVersionFor(">=3.10", [3, 12]), [3, 12]);
  assert.deepEqual(pythonVersionFor(">=3.13", [3, 12]), [3, 13]);
  assert.deepEqual(pythonVersionFor("<3.12", [3, 12]), [3, 8]);
  assert.equal(pythonVersionFor(">=3.99", [3, 12]), undefined);
});

/** A spec in `dir` exporting `Image.fromUvScript("./job.py", ...)`, and the script's header. */
let specs = 0;
async function scriptImage(dir: string, header: string[], options = "{}"): Promise<Image> {
  await Deno.writeTextFile(
    join(dir, "job.py"),
    ["# /// script", ...header.map((line) => `# ${line}`.trimEnd()), "# ///", 'print("job")', ""]
      .join("\n"),
  );
  const spec = join(dir, `spec${++specs}.ts`);
  await Deno.writeTextFile(
    spec,
    'import { Image } from "imgtool";\n' +
      `export default Image.fromUvScript("./job.py", { name: "job", ...${options} });\n`,
  );
  return (await import(pathToFileURL(spec).href)).default;
}

async function problemsOf(image: Image, config: Config = uv) {
  return await validateImages([planImage(image, "default", config)], { secretValues: false });
}

async function installStep(image: Image, dir: string, config: Config = uv): Promise<string> {
  const golden = await renderGolden(image, config, { root: dir });
  return golden.slice(golden.lastIndexOf("\nRUN ") + 1, golden.indexOf("\n--- build context"));
}

Deno.test("a uv script's own [tool.uv] settings are honoured as uv run honours them (uv docs: exclude-newer, index and build settings in a script's [tool.uv] apply when uv runs it)", async () => {
  await withTempDir(async (dir) => {
    const image = await scriptImage(dir, [
      'dependencies = ["requests"]',
      "[tool.uv]",
      'exclude-newer = "2023-10-16T00:00:00Z"',
      "no-build = true",
      'extra-index-url = ["https://extra.example/simple"]',
      'find-links = ["https://wheels.example/links/"]',
      'prerelease = "allow"',
      "[[tool.uv.index]]",
      'url = "https://internal.example/simple"',
      "default = true",
    ]);
    const step = await installStep(image, dir);
    assert.match(
      step,
      / uv pip install --python \/opt\/venv\/bin\/python --index-url https:\/\/internal\.example\/simple --extra-index-url https:\/\/extra\.example\/simple --prerelease=allow --exclude-newer 2023-10-16T00:00:00Z --no-build --find-links https:\/\/wheels\.example\/links\/ requests\n/,
    );
    // The spec's own options come first, as uv's command line wins over its settings.
    const given = await scriptImage(
      dir,
      [
        'dependencies = ["requests"]',
        "[tool.uv]",
        'index-url = "https://script.example/simple"',
        'extra-index-url = ["https://script-extra.example/simple"]',
      ],
      '{ indexUrl: "https://spec.example/simple", extraIndexUrls: "https://spec-extra.example/simple" }',
    );
    assert.match(
      await installStep(given, dir),
      / --index-url https:\/\/spec\.example\/simple --extra-index-url https:\/\/spec-extra\.example\/simple --extra-index-url https:\/\/script-extra\.example\/simple requests\n/,
    );
  });
});

Deno.test("with pip, a script's settings become pip's options, and those pip lacks are named", async () => {
  await withTempDir(async (dir) => {
    const buildless = await scriptImage(dir, [
      'dependencies = ["requests"]',
      "[tool.uv]",
      "no-build = true",
      'prerelease = "allow"',
    ]);
    assert.match(
      await installStep(buildless, dir, pip),
      /-m pip install --disable-pip-version-check --pre --only-binary :all: requests\n/,
    );
    const dated = await scriptImage(dir, [
      'dependencies = ["requests"]',
      "[tool.uv]",
      'exclude-newer = "2023-10-16T00:00:00Z"',
    ]);
    const [problem, ...others] = await problemsOf(dated, pip);
    assert.equal(others.length, 0);
    assert.equal(
      problem.message,
      `[tool.uv] exclude-newer in the script header of ${join(dir, "job.py")} needs the uv ` +
        "installer; pip has no such option",
    );
    assert.deepEqual(await problemsOf(dated, uv), [], "uv has it");
  });
});

Deno.test("a [tool.uv] setting imgtool cannot honour is a validation error that names it", async () => {
  await withTempDir(async (dir) => {
    const image = await scriptImage(dir, [
      'dependencies = ["requests"]',
      "[tool.uv]",
      'constraint-dependencies = ["urllib3<2"]',
      "[tool.uv.sources]",
      'requests = { git = "https://github.com/psf/requests" }',
    ]);
    const messages = (await problemsOf(image)).map((problem) => problem.message);
    const script = join(dir, "job.py");
    assert.deepEqual(messages, [
      `[tool.uv] constraint-dependencies in the script header of ${script} is not supported by imgtool`,
      `[tool.uv] sources in the script header of ${script} is not supported by imgtool`,
    ]);
  });
});

Deno.test("a script's required-version is checked against the configured uv image", async () => {
  await withTempDir(async (dir) => {
    const image = await scriptImage(dir, [
      'dependencies = ["requests"]',
      "[tool.uv]",
      'required-version = ">=99"',
    ]);
    const [problem] = await problemsOf(image);
    assert.match(
      problem.message,
      /job\.py demands uv >=99 \(required-version\), but the configured uv image/,
    );
    assert.deepEqual(await problemsOf(image, pip), [], "pip installs: uv does not run");
  });
});

Deno.test("a Python version the spec gives that requires-python excludes is a validation error", async () => {
  await withTempDir(async (dir) => {
    const image = await scriptImage(
      dir,
      ['requires-python = ">=3.12"', 'dependencies = ["requests"]'],
      "{ pythonVersion: [3, 11] }",
    );
    const [problem, ...others] = await problemsOf(image);
    assert.equal(others.length, 0);
    assert.equal(
      problem.message,
      `${
        join(dir, "job.py")
      } requires Python >=3.12 (requires-python), but the image has Python 3.11`,
    );
    assert.match(problem.hint!, /pythonVersion: \[3, 12\]/);
  });
});

Deno.test("a local dependency outside the project is a validation error naming the script and the path", async () => {
  await withTempDir(async (outside) => {
    await withTempDir(async (dir) => {
      await writeTree(outside, { "secret/pyproject.toml": '[project]\nname = "secret"\n' });
      const url = pathToFileURL(join(outside, "secret")).href;
      const image = await scriptImage(dir, [`dependencies = ["secret @ ${url}"]`]);
      const problems = await problemsOf(image);
      assert.deepEqual(problems.map((problem) => problem.message), [
        `${join(dir, "job.py")} (its script header, dependency 1) names ${
          join(outside, "secret")
        }, ` +
        `which is outside the project ${dir}`,
      ]);
      const allowed = fixtureConfig({ IMGTOOL_ALLOWED_PATHS: outside });
      assert.deepEqual(await problemsOf(image, allowed), []);
    });
  });
});
