import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Image } from "imgtool";
import * as images from "./fixtures/project/images.ts";
import { asText, fixtureConfig, renderGolden, withTempDir, writeTree } from "./helpers.ts";
import { parseScriptHeader, pythonVersionFor } from "../plugins/uv_script.ts";
import { identify, planImage } from "../mod.ts";

const uv = fixtureConfig();
const pip = fixtureConfig({}, { "python.installer": "pip" });

Deno.test("uv_script plugin installs the dependencies of the script's PEP 723 header", async (t) => {
  const golden = await renderGolden(images.uvScript, uv);
  assert.match(golden, /^FROM python:3\.11-slim-bookworm$/m, "requires-python >=3.11 picks 3.11");
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
    [">3.11", [3, 12]],
    [">3.11.2", [3, 11]],
    ["~=3.11", [3, 11]],
    ["==3.13.*", [3, 13]],
    ["==3.12", [3, 12]],
    ["==3.*", [3, 8]],
    ["<3.12", [3, 8]],
    ["<=3.9", [3, 8]],
    [">=3.10,<3.11", [3, 10]],
    [">=3.9, !=3.9", [3, 10]],
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

Deno.test("fromUvScript takes the Python version from requires-python unless one is given", () => {
  const script = join(import.meta.dirname!, "fixtures", "project", "scripts", "job.py");
  const fromHeader = Image.fromUvScript(script, { name: "job" });
  assert.deepEqual(fromHeader.spec.pythonVersion, [3, 11]);
  const given = Image.fromUvScript(script, { name: "job", pythonVersion: [3, 13] });
  assert.deepEqual(given.spec.pythonVersion, [3, 13]);
  const missing = Image.fromUvScript("./no/such/script.py", { name: "job" });
  assert.equal(
    missing.spec.pythonVersion,
    undefined,
    "a missing script leaves it to configuration",
  );
});
