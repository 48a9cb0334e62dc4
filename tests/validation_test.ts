// Every problem validation can report: each test makes one happen (the images are in
// fixtures/validation/specs.ts, one call per `// @marker` line) and checks what the
// diagnostic says: the message, the layer and method blamed, the spec line, and the fix.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type Config,
  defaultConfig,
  type Diagnostic,
  Image,
  loadConfig,
  planImage,
  setActiveConfig,
  validateImages,
  ValidationError,
} from "../mod.ts";
import * as specs from "./fixtures/validation/specs.ts";
import {
  assertDiagnostic,
  type ExpectedDiagnostic,
  FIXTURES,
  lineOf,
  withTempDir,
  writeTree,
} from "./helpers.ts";

const DIR = join(FIXTURES, "validation");
const SPECS = join(DIR, "specs.ts");
const config = loadConfig({ startDir: DIR, env: {} });
setActiveConfig(config); // for Image.validate(), which reads the configuration in effect

const CHECK_PATH = "check the path; relative paths are relative to the spec file's folder";
const PLUGIN_BUG =
  "this is a bug in the plugin, or options it cannot handle; check the options you gave";

function problems(
  image: Image,
  options: { config?: Config; secretValues?: boolean } = {},
): Promise<Diagnostic[]> {
  return validateImages([planImage(image, "default", options.config ?? config)], {
    secretValues: options.secretValues,
  });
}

/** Where the layer made on the `// @marker` line was made. */
function at(marker: string): string {
  return `${SPECS}:${lineOf(SPECS, `// @${marker}`)}`;
}

/** Expect exactly these diagnostics (in any order), each checked in full. */
function expectExactly(diagnostics: readonly Diagnostic[], expected: ExpectedDiagnostic[]): void {
  assert.equal(
    diagnostics.length,
    expected.length,
    `expected ${expected.length} problems, got:\n${JSON.stringify(diagnostics, null, 2)}`,
  );
  for (const one of expected) assertDiagnostic(diagnostics, { image: "default", ...one });
}

const path = (relative: string) => join(DIR, relative);

Deno.test("apt: no packages is a problem", async () => {
  expectExactly(await problems(specs.aptNone), [{
    message: "no packages given",
    hint: "name at least one package",
    plugin: "apt",
    method: "withAptPackages",
    index: 1,
    callSite: at("apt-none"),
  }]);
});

Deno.test("apt: every invalid package name is reported, the valid ones are not", async () => {
  const hint = "use lowercase letters, digits and + - . (optionally name=version or name/release)";
  const layer = { plugin: "apt", method: "withAptPackages", index: 1, callSite: at("apt-invalid") };
  expectExactly(await problems(specs.aptInvalid), [
    { message: '"Git" is not a valid Debian package name', hint, ...layer },
    { message: '"-y" is not a valid Debian package name', hint, ...layer },
    { message: '"a b" is not a valid Debian package name', hint, ...layer },
    { message: '"x" is not a valid Debian package name', hint, ...layer },
  ]);
});

Deno.test("pip: no packages is a problem", async () => {
  expectExactly(await problems(specs.pipNone), [{
    message: "no packages given",
    hint: "name at least one package",
    plugin: "pip",
    method: "withPipPackages",
    index: 1,
    callSite: at("pip-none"),
  }]);
});

Deno.test("pip: option-looking, invalid and multi-line packages are reported", async () => {
  const layer = { plugin: "pip", method: "withPipPackages", index: 1, callSite: at("pip-invalid") };
  expectExactly(await problems(specs.pipInvalid), [
    {
      message: 'package "--index-url=https://evil.example" looks like an option',
      hint: "pass installer options in extraArgs, not as packages",
      ...layer,
    },
    {
      message: 'package "_private" is not a valid requirement',
      hint: 'use pip\'s syntax: "name", "name==1.2", "name[extra]>=1", or a URL',
      ...layer,
    },
    {
      message:
        "option packages[3] holds a line break (U+000A) at character 2, which Dockerfile text cannot carry",
      hint: "remove it; if the value comes from a file or variable, check how it was read",
      ...layer,
    },
  ]);
});

Deno.test("pip: index URLs that are not http(s) or file URLs are reported", async () => {
  const layer = { plugin: "pip", method: "withPipPackages", index: 1, callSite: at("pip-index") };
  expectExactly(await problems(specs.pipIndex), [
    {
      message: 'index URL "ftp://files.example/simple" is not an http(s) or file URL',
      hint: null,
      ...layer,
    },
    { message: 'index URL "not a url" is not an http(s) or file URL', hint: null, ...layer },
  ]);
});

Deno.test("requirements: a missing file is reported with its path", async () => {
  const file = path("reqs/nope.txt");
  expectExactly(await problems(specs.requirementsMissing), [{
    message: `requirements file not found: ${file}`,
    hint: CHECK_PATH,
    file,
    plugin: "requirements",
    method: "withRequirements",
    index: 1,
    callSite: at("req-missing"),
  }]);
});

Deno.test("requirements: a missing -r include is reported, naming the line that includes it", async () => {
  const file = path("reqs/missing-include.txt");
  expectExactly(await problems(specs.requirementsInclude), [{
    message: `requirements file not found: ${file}`,
    hint: `${
      path("reqs/requirements.txt")
    } line 2 includes it; includes are relative to the including file's folder`,
    file,
    plugin: "requirements",
    callSite: at("req-include"),
  }]);
});

Deno.test("requirements: an include from outside the project is reported, naming file, line and path", async () => {
  // Inside the project an include may come from any folder; outside it, only where allowed.
  const dir = await Deno.makeTempDir({ prefix: "imgtool-test-" });
  try {
    await Deno.mkdir(`${dir}/app`);
    await Deno.writeTextFile(`${dir}/app/requirements.txt`, "numpy\n-r ../shared.txt\n");
    await Deno.writeTextFile(`${dir}/shared.txt`, "pandas\n");
    const image = Image.fromDebianBase().withRequirements(`${dir}/app/requirements.txt`);
    const found = await validateImages([planImage(image, "default", defaultConfig())]);
    const outside = found.filter((problem) => /outside the project/.test(problem.message));
    assert.equal(outside.length, 1, JSON.stringify(found, null, 2));
    assert.match(outside[0].message, new RegExp(`requirements\\.txt line 2`));
    assert.ok(outside[0].message.includes(`${dir}/shared.txt`), outside[0].message);
    assert.match(outside[0].hint ?? "", /allowed-paths/);
    assert.equal(outside[0].layer?.plugin, "requirements");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("uv_project: a missing pyproject and a missing uv.lock are reported", async () => {
  const layer = {
    plugin: "uv_project",
    method: "withUvProject",
    index: 1,
    callSite: at("uv-missing"),
  };
  expectExactly(await problems(specs.uvProjectMissing), [
    {
      message: `pyproject file not found: ${path("nowhere/pyproject.toml")}`,
      hint: CHECK_PATH,
      file: path("nowhere/pyproject.toml"),
      ...layer,
    },
    {
      message: `uv.lock not found: ${path("nowhere/uv.lock")}`,
      file: path("nowhere/uv.lock"),
      ...layer,
    },
  ]);
});

Deno.test("uv_project: an unknown install mode and a bad index URL are reported", async () => {
  const layer = { plugin: "uv_project", method: "withUvProject", callSite: at("uv-mode") };
  expectExactly(await problems(specs.uvProjectMode), [
    {
      message: 'unknown projectInstallMode "everything"',
      hint: 'use "dependencies_only" or "install_project"',
      ...layer,
    },
    { message: 'index URL "mailto:someone@example.com" is not an http(s) or file URL', ...layer },
  ]);
});

Deno.test("poetry_project: a missing pyproject and its missing poetry.lock are reported", async () => {
  const layer = {
    plugin: "poetry_project",
    method: "withPoetryProject",
    index: 1,
    callSite: at("poetry-missing"),
  };
  expectExactly(await problems(specs.poetryMissing), [
    {
      message: `pyproject file not found: ${path("nowhere/pyproject.toml")}`,
      hint: CHECK_PATH,
      ...layer,
    },
    {
      message: `poetry.lock not found: ${path("nowhere/poetry.lock")}`,
      hint: "run `poetry lock` in the project, or pass poetryLock",
      file: path("nowhere/poetry.lock"),
      ...layer,
    },
  ]);
});

Deno.test("poetry_project: a missing lock beside an existing pyproject and a bad mode are reported", async () => {
  const layer = { plugin: "poetry_project", callSite: at("poetry-nolock") };
  expectExactly(await problems(specs.poetryNoLock), [
    { message: `poetry.lock not found: ${path("poetry_nolock/poetry.lock")}`, ...layer },
    {
      message: 'unknown projectInstallMode "all"',
      hint: 'use "dependencies_only" or "install_project"',
      ...layer,
    },
  ]);
});

Deno.test("poetry_project: bad [plugins.poetry_project] settings are reported", async () => {
  const image = specs.poetryMissing;
  const settings = (values: Record<string, unknown>) => ({
    config: { ...config, plugins: { poetry_project: values } },
  });
  const versioned = await problems(image, settings({ version: "latest please" }));
  assertDiagnostic(versioned, {
    message: '[plugins.poetry_project] version "latest please" is not a version',
    plugin: "poetry_project",
    callSite: at("poetry-missing"),
  });
  const command = await problems(image, settings({ command: ["poetry"] }));
  assertDiagnostic(command, {
    message: "[plugins.poetry_project] command must be a string",
    plugin: "poetry_project",
  });
  assert.equal(
    (await problems(image, settings({ version: "2.1.3", command: "poetry" }))).length,
    2,
    "good settings add no problem to the two missing files",
  );
});

Deno.test("uv_script: a missing script is reported", async () => {
  const file = path("scripts/nope.py");
  expectExactly(await problems(specs.scriptMissing), [{
    message: `script not found: ${file}`,
    hint: CHECK_PATH,
    file,
    plugin: "uv_script",
    method: "Image.fromUvScript",
    index: 1,
    callSite: at("script-missing"),
  }]);
});

Deno.test("uv_script: each kind of bad header says what is wrong", async () => {
  const hint = "start the script with a PEP 723 block: # /// script, # dependencies = [...], # ///";
  const cases: [Image, string, string, RegExp][] = [
    [
      specs.scriptNoHeader,
      "script-no-header",
      "no_header.py",
      /: no `# \/\/\/ script` header block$/,
    ],
    [specs.scriptBadToml, "script-bad-toml", "bad_toml.py", /: the header is not valid TOML: /],
    [
      specs.scriptBadLine,
      "script-bad-line",
      "bad_line.py",
      /: header line "#dependencies = \[\]" does not start with "# "$/,
    ],
    [
      specs.scriptDepsNotList,
      "script-deps",
      "deps_not_list.py",
      /: `dependencies` must be a list of strings$/,
    ],
    [
      specs.scriptRequiresNotString,
      "script-requires",
      "requires_not_string.py",
      /: `requires-python` must be a string$/,
    ],
  ];
  for (const [image, marker, name, message] of cases) {
    const file = path(`scripts/${name}`);
    const found = await problems(image);
    assert.equal(found.length, 1, name);
    const diagnostic = assertDiagnostic(found, {
      message,
      hint,
      file,
      plugin: "uv_script",
      method: "Image.fromUvScript",
      callSite: at(marker),
    });
    assert.ok(diagnostic.message.startsWith(`${file}: `), "the message names the script");
  }
});

Deno.test("uv_script: bad dependencies, a missing local dependency, an impossible Python and a bad index", async () => {
  const layer = { plugin: "uv_script", callSite: at("script-bad-deps") };
  expectExactly(await problems(specs.scriptBadDeps), [
    { message: 'package "--pre" looks like an option', ...layer },
    { message: 'package "_bad" is not a valid requirement', ...layer },
    {
      message: "local dependency not found: /nonexistent/imgtool-test/localpkg",
      file: "/nonexistent/imgtool-test/localpkg",
      ...layer,
    },
    { message: 'no Python 3.8-3.14 satisfies requires-python ">=3.15"', ...layer },
    { message: 'index URL "gopher://old.example" is not an http(s) or file URL', ...layer },
  ]);
});

Deno.test("source_file: a missing file, a folder, and an unsafe destination are reported", async () => {
  expectExactly(await problems(specs.fileMissing), [{
    message: `file not found: ${path("nope.txt")}`,
    hint: CHECK_PATH,
    file: path("nope.txt"),
    plugin: "source_file",
    method: "withSourceFile",
    index: 1,
    callSite: at("file-missing"),
  }]);
  expectExactly(await problems(specs.fileIsFolder), [{
    message: `${path("a_folder")} is a folder, not a file`,
    hint: "use withSourceFolder for folders",
    file: path("a_folder"),
    callSite: at("file-folder"),
  }]);
  expectExactly(await problems(specs.fileUnsafeDst), [{
    message:
      'the destination "/app/$HOME" is empty or has $, \\ or a control character, which a Dockerfile cannot copy to safely',
    hint: "pick another destination",
    plugin: "source_file",
    callSite: at("file-unsafe"),
  }]);
});

Deno.test("source_file: any file name is copied; only a line break in the path is refused (by the core)", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, { "cost$5.txt": "x", "[id].txt": "y", "new\nline.txt": "z" });
    for (const name of ["cost$5.txt", "[id].txt"]) {
      const found = await problems(Image.fromBase("debian").withSourceFile(join(dir, name)));
      assert.deepEqual(found, [], `${name}: ${JSON.stringify(found)}`);
    }
    assertDiagnostic(
      await problems(Image.fromBase("debian").withSourceFile(join(dir, "new\nline.txt"))),
      {
        message: `option src holds a line break (U+000A) at character ${
          join(dir, "new").length + 1
        }, which Dockerfile text cannot carry`,
        hint: "remove it; if the value comes from a file or variable, check how it was read",
      },
    );
  });
});

Deno.test("source_folder: a missing folder, a file, and an unsafe destination are reported", async () => {
  expectExactly(await problems(specs.folderMissing), [{
    message: `folder not found: ${path("nope")}`,
    hint: CHECK_PATH,
    file: path("nope"),
    plugin: "source_folder",
    method: "withSourceFolder",
    index: 1,
    callSite: at("folder-missing"),
  }]);
  expectExactly(await problems(specs.folderIsFile), [{
    message: `${path("a_file.txt")} is a file, not a folder`,
    hint: "use withSourceFile for single files",
    callSite: at("folder-file"),
  }]);
  expectExactly(await problems(specs.folderUnsafeDst), [{
    message:
      'the destination "C:\\\\app" is empty or has $, \\ or a control character, which a Dockerfile cannot copy to safely',
    hint: "pick another destination",
    callSite: at("folder-unsafe"),
  }]);
});

Deno.test("env_vars: no variables, bad names and non-string values are reported", async () => {
  expectExactly(await problems(specs.envNone), [{
    message: "no variables given",
    plugin: "env_vars",
    method: "withEnvVars",
    callSite: at("env-none"),
  }]);
  const hint = "use letters, digits and _, not starting with a digit";
  const layer = { plugin: "env_vars", method: "withEnvVars", index: 1, callSite: at("env-bad") };
  expectExactly(await problems(specs.envBad), [
    { message: '"1BAD" is not a valid environment variable name', hint, ...layer },
    { message: '"WITH-DASH" is not a valid environment variable name', hint, ...layer },
    {
      message: "the value of PORT is a number, not a string",
      hint: 'write it as a string: PORT: "8080"',
      ...layer,
    },
  ]);
});

Deno.test("commands: no commands, RUN, empty and multi-line commands are reported", async () => {
  expectExactly(await problems(specs.commandsNone), [{
    message: "no commands given",
    plugin: "commands",
    method: "withCommands",
    callSite: at("commands-none"),
  }]);
  const layer = {
    plugin: "commands",
    method: "withCommands",
    index: 1,
    callSite: at("commands-bad"),
  };
  expectExactly(await problems(specs.commandsBad), [
    {
      message: "command 1 starts with RUN",
      hint: "give the shell command alone; imgtool writes the RUN",
      ...layer,
    },
    { message: "command 2 is empty", hint: null, ...layer },
    {
      message:
        "option commands[2] holds a line break (U+000A) at character 7, which Dockerfile text cannot carry",
      hint: "remove it; if the value comes from a file or variable, check how it was read",
      ...layer,
    },
  ]);
});

Deno.test("workdir: an empty directory or one with $ is reported", async () => {
  const hint = "give a plain path such as /app";
  expectExactly(await problems(specs.workdirEmpty), [{
    message: 'working directory "" is empty or has $, \\ or a control character',
    hint,
    plugin: "workdir",
    method: "withWorkdir",
    callSite: at("workdir-empty"),
  }]);
  expectExactly(await problems(specs.workdirDollar), [{
    message: 'working directory "/home/$USER" is empty or has $, \\ or a control character',
    hint,
    callSite: at("workdir-dollar"),
  }]);
});

Deno.test("dockerignore: a missing rules file is reported", async () => {
  const file = path("nope/.dockerignore");
  expectExactly(await problems(specs.ignoreMissing), [{
    message: `ignore file not found: ${file}`,
    hint: CHECK_PATH,
    file,
    plugin: "dockerignore",
    method: "withDockerignore",
    index: 1,
    callSite: at("ignore-missing"),
  }]);
});

Deno.test("a file a layer takes that the image's .dockerignore excludes is reported", async () => {
  const file = path("ignored/src/secret.env");
  expectExactly(await problems(specs.ignoredFile), [{
    message: `${file} is excluded by the image's .dockerignore rules`,
    hint: "remove the pattern that matches it, or add a ! exception for it",
    file,
    plugin: "source_file",
    method: "withSourceFile",
    index: 1,
    callSite: at("ignored-file"),
  }]);
});

Deno.test("a secret without a value is reported by name", async () => {
  assert.equal(Deno.env.get("IMGTOOL_TEST_ABSENT_SECRET"), undefined);
  expectExactly(await problems(specs.secretMissing), [{
    message: "secret IMGTOOL_TEST_ABSENT_SECRET has no value",
    hint: "set the environment variable IMGTOOL_TEST_ABSENT_SECRET, or name a file for it in " +
      'imgtool.toml ([secrets] dir, or [secrets.files] IMGTOOL_TEST_ABSENT_SECRET = "path")',
    plugin: "commands",
    method: "withCommands",
    index: 1,
    callSite: at("secret-missing"),
  }]);
  // Commands that only render (imgtool dockerfile) need no values.
  assert.deepEqual(await problems(specs.secretMissing, { secretValues: false }), []);
});

Deno.test("a secret has a value from its variable, a secrets folder or a named file", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, { "IMGTOOL_TEST_ABSENT_SECRET": "from the folder", "token.txt": "file" });
    const fromDir = loadConfig({ startDir: DIR, env: { IMGTOOL_SECRETS_DIR: dir } });
    assert.deepEqual(await problems(specs.secretMissing, { config: fromDir }), []);
    const fromFile = loadConfig({
      startDir: DIR,
      env: { IMGTOOL_SECRETS_FILES: `IMGTOOL_TEST_ABSENT_SECRET=${join(dir, "token.txt")}` },
    });
    assert.deepEqual(await problems(specs.secretMissing, { config: fromFile }), []);
    const toMissingFile = loadConfig({
      startDir: DIR,
      env: { IMGTOOL_SECRETS_FILES: `IMGTOOL_TEST_ABSENT_SECRET=${join(dir, "nope.txt")}` },
    });
    assert.equal((await problems(specs.secretMissing, { config: toMissingFile })).length, 1);
  });
  Deno.env.set("IMGTOOL_TEST_ABSENT_SECRET", "from the environment");
  try {
    assert.deepEqual(await problems(specs.secretMissing), []);
  } finally {
    Deno.env.delete("IMGTOOL_TEST_ABSENT_SECRET");
  }
});

Deno.test("a secret with an invalid id or a relative mount is reported", async () => {
  const layer = { plugin: "apt", method: "withAptPackages", callSite: at("secret-bad") };
  const found = await problems(specs.secretBadDescription, { secretValues: false });
  expectExactly(found, [
    {
      message:
        'secret key "bad id" gives the id "BAD ID", which is not a valid environment variable name (letters, digits, _ and -; not starting with a digit)',
      ...layer,
    },
    { message: 'secret RELATIVE: mount "etc/token" must be an absolute path', ...layer },
  ]);
});

// The image takes its default name from the reference, but a name the user never gave is
// never reported: only the reference is.
Deno.test("fromBase: an invalid image reference is reported", async () => {
  const found = await problems(specs.baseInvalid);
  assert.equal(found.length, 1, JSON.stringify(found));
  assertDiagnostic(found, {
    message: '"Not A Ref!" is not a valid image reference',
    hint: "use [registry/]name[:tag][@sha256:digest], e.g. debian:bookworm-slim",
    plugin: "base_image",
    method: "Image.fromBase",
    index: 0,
    callSite: at("base-invalid"),
  });
});

Deno.test("fromRefName: an unknown name is reported with the known names", async () => {
  expectExactly(await problems(specs.refUnknown), [{
    message: 'unknown reference name "nope"',
    hint:
      'add it under [refs] in imgtool.toml (nope = "registry/image:tag"); known names: base, broken',
    plugin: "ref_name",
    method: "Image.fromRefName",
    index: 0,
    callSite: at("ref-unknown"),
  }]);
  const noRefs = await problems(specs.refUnknown, { config: { ...config, refs: {} } });
  assertDiagnostic(noRefs, {
    message: 'unknown reference name "nope"',
    hint: 'add it under [refs] in imgtool.toml (nope = "registry/image:tag")',
  });
});

Deno.test("fromRefName: a name that maps to an invalid reference is reported", async () => {
  const found = await problems(specs.refBroken);
  assert.ok(found.length <= 2, JSON.stringify(found));
  assertDiagnostic(found, {
    message: '[refs] broken = "Not A Valid Ref" is not a valid image reference',
    plugin: "ref_name",
    callSite: at("ref-broken"),
  });
});

Deno.test("fromDockerfile: a missing Dockerfile and one without FROM are reported", async () => {
  expectExactly(await problems(specs.dockerfileMissing), [{
    message: `Dockerfile not found: ${path("nope/Dockerfile")}`,
    hint: CHECK_PATH,
    file: path("nope/Dockerfile"),
    plugin: "dockerfile",
    method: "Image.fromDockerfile",
    index: 0,
    callSite: at("dockerfile-missing"),
  }]);
  expectExactly(await problems(specs.dockerfileNoFrom), [{
    message: `${path("nofrom/Dockerfile")} has no FROM instruction`,
    file: path("nofrom/Dockerfile"),
    plugin: "dockerfile",
    callSite: at("dockerfile-nofrom"),
  }]);
});

Deno.test("fromDebianBase: a bad flyte version is reported; a bad Python base image is refused with the configuration", async () => {
  expectExactly(await problems(specs.flyteVersion), [{
    message: 'flyte version "2.0; rm -rf /" is not a version',
    plugin: "debian_base",
    method: "Image.fromDebianBase",
    index: 0,
    callSite: at("flyte-version"),
  }]);
  // The configuration says which setting is wrong before any image is planned.
  assert.throws(
    () => loadConfig({ startDir: DIR, env: { IMGTOOL_IMAGES_PYTHON: "bad image!" } }),
    (error: Error) =>
      error.message === 'IMGTOOL_IMAGES_PYTHON: "bad image!" is not an image reference',
  );
});

Deno.test("image settings: bad name, registry, Python version, platform and registry secret", async () => {
  const image = (message: string | RegExp, hint: string): ExpectedDiagnostic => ({ message, hint });
  const found = await problems(specs.imageSettings);
  expectExactly(found, [
    image(
      'image name "Bad Name" is not a valid repository name',
      "use lowercase letters, digits, and . _ - / between them",
    ),
    image(
      'registry "https://ghcr.io/acme" is not a valid registry',
      "use host[:port][/namespace], e.g. ghcr.io/acme or 127.0.0.1:5000",
    ),
    image("Python version 2.7 is not valid", "give [major, minor], e.g. [3, 12]"),
    image('unknown platform "linux/s390x"', 'use "linux/amd64" or "linux/arm64"'),
    image(
      /^secret key "not an env name" gives the id "NOT AN ENV NAME", which is not a valid environment variable name/,
      "fix the registrySecret",
    ),
  ]);
  for (const diagnostic of found) {
    assert.equal(diagnostic.layer, undefined, "image-level problems name no layer");
  }
});

Deno.test("a base layer added with withLayer is reported", async () => {
  expectExactly(await problems(specs.baseAsLayer), [{
    message: "a base layer (Image.fromBase) can only start an image",
    hint: "start a new image with it instead of adding it with withLayer",
    plugin: "base_image",
    method: "Image.fromBase",
    index: 1,
    callSite: at("base-as-layer"),
  }]);
});

Deno.test("an image without a base layer is reported", async () => {
  // Not possible through the API; a spec made by a foreign copy of imgtool could do it.
  const Bare = Image as unknown as new (spec: object) => Image;
  const image = new Bare({ layers: [], localBuilder: false });
  expectExactly(await problems(image), [{
    message: "the image has no base layer",
    hint:
      "start the image with Image.fromBase, fromDebianBase, fromDockerfile, fromRefName or fromUvScript",
  }]);
});

Deno.test("a plugin hook that throws is reported as that plugin's problem", async () => {
  const hooks = ["validate", "secrets", "nextState", "ignoreRules", "identify"];
  for (const [index, hook] of hooks.entries()) {
    const found = await problems(specs.failingHooks[index]);
    expectExactly(found, [{
      // (The identify hook's failure is at present wrapped twice; the test accepts both.)
      message: new RegExp(
        `^plugin "failing" failed in ${hook}: ${hook} exploded$`,
      ),
      hint: PLUGIN_BUG,
      plugin: "failing",
      method: "withLayer(failing)",
      index: 1,
      callSite: at("failing"),
    }]);
  }
});

Deno.test("a contribution the identity cannot encode is reported", async () => {
  expectExactly(await problems(specs.failingHooks[5]), [{
    message: 'plugin "failing" failed in identify: $.value: NaN has no canonical encoding',
    hint: PLUGIN_BUG,
    plugin: "failing",
  }]);
});

Deno.test("every problem is reported at once, in chain order, for every image", async () => {
  const found = await problems(specs.manyProblems);
  assert.deepEqual(found.map((d) => [d.layer?.index ?? null, d.message]), [
    [null, 'image name "Many" is not a valid repository name'],
    [1, '"OK" is not a valid Debian package name'],
    [2, 'package "--upgrade" looks like an option'],
    [3, `file not found: ${path("missing.py")}`],
    [4, '"bad name" is not a valid environment variable name'],
    [5, "command 1 starts with RUN"],
  ]);
  assert.deepEqual(found.map((d) => d.callSite ?? null), [
    at("many-base"),
    at("many-apt"),
    at("many-pip"),
    at("many-file"),
    at("many-env"),
    at("many-commands"),
  ]);
  // Several images: each problem names its image.
  const both = await validateImages([
    planImage(specs.aptNone, "first", config),
    planImage(specs.envNone, "second", config),
  ]);
  assert.deepEqual(both.map((d) => [d.image, d.message]), [
    ["first", "no packages given"],
    ["second", "no variables given"],
  ]);
});

Deno.test("Image.validate() throws one ValidationError listing every problem", async () => {
  await assert.rejects(specs.manyProblems.validate(), (error: unknown) => {
    assert.ok(error instanceof ValidationError);
    assert.equal(error.exitCode, 2);
    assert.equal(error.diagnostics.length, 6);
    assert.match(error.message, /^6 problems found:\n/);
    assert.match(
      error.message,
      / {2}- image "image", layer 2 \(withPipPackages, plugin pip\): package "--upgrade" looks like an option\n {4}at .*specs\.ts:\d+\n {4}fix: pass installer options in extraArgs, not as packages/,
    );
    return true;
  });
  await Image.fromBase("debian:bookworm").withEnvVars({ OK: "yes" }).validate();
});

Deno.test("the fixture images without problems validate clean", async () => {
  // Guards the tests above: their problems come from what they change, not from the fixture.
  const clean = Image.fromDebianBase({ name: "checked" })
    .withAptPackages(["git", "libpq-dev", "python3=3.11.2-1", "curl/bookworm-backports"])
    .withPipPackages(["numpy==2.1.0", "pkg[extra]>=1; python_version>'3.8'", "git+https://x/y.git"])
    .withRequirements(path("reqs/base.txt"))
    .withUvProject(path("uvproj/pyproject.toml"))
    .withSourceFile(path("a_file.txt"))
    .withSourceFolder(path("a_folder"), "/app")
    .withEnvVars({ _UNDER: "x", Mixed9: "" })
    .withCommands("echo ok")
    .withWorkdir("relative/dir");
  assert.deepEqual(await problems(clean), []);
});

Deno.test("a registry secret without a value is reported, and not once its value is set", async () => {
  const image = Image.fromDebianBase({
    name: "app",
    registrySecret: "IMGTOOL_TEST_REGISTRY_SECRET",
  });
  const found = await problems(image);
  assert.deepEqual(found.map((d) => d.message), [
    "registry secret IMGTOOL_TEST_REGISTRY_SECRET has no value",
  ]);
  Deno.env.set("IMGTOOL_TEST_REGISTRY_SECRET", "user:password");
  try {
    assert.deepEqual(await problems(image), []);
  } finally {
    Deno.env.delete("IMGTOOL_TEST_REGISTRY_SECRET");
  }
});
