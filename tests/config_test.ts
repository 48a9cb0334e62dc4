import assert from "node:assert/strict";
import { join } from "node:path";
import { defaultConfig, loadConfig, UsageError } from "../mod.ts";
import { envName, findConfigFile, SETTINGS } from "../src/config.ts";
import { withTempDir, writeTree } from "./helpers.ts";

/** Load the configuration of a folder holding `toml` as its imgtool.toml. */
async function withToml<T>(
  toml: string,
  body: (dir: string, file: string) => T | Promise<T>,
): Promise<T> {
  return await withTempDir(async (dir) => {
    await writeTree(dir, { "imgtool.toml": toml });
    return await body(dir, join(dir, "imgtool.toml"));
  });
}

function usageError(pattern: RegExp, hint?: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof UsageError, `a UsageError, got ${error}`);
    assert.equal(error.exitCode, 2);
    assert.match(error.message, pattern);
    if (hint) assert.match(error.hint ?? "", hint);
    return true;
  };
}

Deno.test("loadConfig() reads every setting of imgtool.toml", async () => {
  const toml = `
registry = "ghcr.io/acme"
builder = "docker"
platforms = ["linux/arm64", "linux/amd64"]
python-version = "3.11"
network = "none"
insecure-registries = ["registry.internal:5000"]

[images]
python = "mirror.example/python:{major}.{minor}"
uv = "mirror.example/uv:1"

[python]
installer = "pip"

[debian]
packages = ["ca-certificates"]

[refs]
base = "ghcr.io/acme/base:1"

[docker]
client = "podman"

[secrets]
dir = "secrets"
files = { TOKEN = "tokens/token.txt" }

[dockerfile]
syntax = "docker/dockerfile:1.7"

[cache]
mounts = false

[plugins.poetry_project]
version = "2.0.0"
`;
  await withToml(toml, (dir, file) => {
    const config = loadConfig({ startDir: dir, env: {} });
    // (TOML tables come as objects without a prototype; compare them as data.)
    assert.deepEqual({ ...config, plugins: JSON.parse(JSON.stringify(config.plugins)) }, {
      ...defaultConfig(),
      file,
      registry: "ghcr.io/acme",
      builder: "docker",
      platforms: ["linux/arm64", "linux/amd64"],
      pythonVersion: [3, 11],
      network: "none",
      insecureRegistries: ["registry.internal:5000"],
      images: { python: "mirror.example/python:{major}.{minor}", uv: "mirror.example/uv:1" },
      installer: "pip",
      debianPackages: ["ca-certificates"],
      refs: { base: "ghcr.io/acme/base:1" },
      dockerClient: "podman",
      secretsDir: join(dir, "secrets"),
      secretFiles: { TOKEN: join(dir, "tokens/token.txt") },
      dockerfileSyntax: "docker/dockerfile:1.7",
      cacheMounts: false,
      plugins: { poetry_project: { version: "2.0.0" } },
    });
    assert.ok(Object.isFrozen(config));
  });
});

Deno.test("loadConfig() names unknown settings and lists the known ones", async () => {
  await withToml(
    'registry = "r"\nregistery = "typo"\n[images]\npython = "p"\nruby = "r"\n',
    (dir, file) => {
      assert.throws(
        () => loadConfig({ startDir: dir, env: {} }),
        usageError(
          new RegExp(`^${file}: unknown settings registery, images\\.ruby$`),
          /^known settings: registry, builder, .*, plugins\.<name>$/,
        ),
      );
    },
  );
  await withToml("colour = 1\n", (dir, file) => {
    assert.throws(
      () => loadConfig({ startDir: dir, env: {} }),
      usageError(new RegExp(`^${file}: unknown setting colour$`)),
    );
  });
});

Deno.test("loadConfig() says which setting has the wrong type, and what it expected", async () => {
  const cases: [string, RegExp][] = [
    ["registry = 5", /: registry: expected a string, got 5$/],
    ['[cache]\nmounts = "yes"', /: cache\.mounts: expected true or false, got "yes"$/],
    [
      'insecure-registries = "one"',
      /: insecure-registries: expected a list of strings, got "one"$/,
    ],
    ["[refs]\nbase = 1", /: refs: expected a table of strings, got \{"base":1\}$/],
    ['platforms = ["linux/s390x"]', /: platforms: unknown platform "linux\/s390x"$/],
    ['python-version = "3"', /: python-version: expected a Python version like 3\.12, got "3"$/],
    ['[python]\ninstaller = "conda"', /: python\.installer: expected "uv" or "pip", got "conda"$/],
  ];
  for (const [toml, pattern] of cases) {
    await withToml(`${toml}\n`, (dir) => {
      assert.throws(() => loadConfig({ startDir: dir, env: {} }), usageError(pattern), toml);
    });
  }
});

Deno.test("loadConfig() reports a TOML syntax error with the file", async () => {
  await withToml("registry = \n", (dir, file) => {
    assert.throws(
      () => loadConfig({ startDir: dir, env: {} }),
      usageError(new RegExp(`^cannot read ${file}: `), /fix the TOML syntax/),
    );
  });
});

Deno.test("loadConfig() takes a platform, a Python version as a string or a pair", async () => {
  await withToml('platforms = "linux/arm64"\npython-version = [3, 13]\n', (dir) => {
    const config = loadConfig({ startDir: dir, env: {} });
    assert.deepEqual(config.platforms, ["linux/arm64"]);
    assert.deepEqual(config.pythonVersion, [3, 13]);
  });
});

Deno.test("loadConfig() parses IMGTOOL_* variables by the setting's type", () => {
  const config = loadConfig({
    startDir: "/nonexistent/imgtool-test",
    env: {
      IMGTOOL_REGISTRY: "127.0.0.1:5000",
      IMGTOOL_PLATFORMS: "linux/amd64, linux/arm64,linux/amd64",
      IMGTOOL_PYTHON_VERSION: "3.10",
      IMGTOOL_INSECURE_REGISTRIES: "a:5000, b:5000,",
      IMGTOOL_IMAGES_PYTHON: "mirror/python:{major}.{minor}",
      IMGTOOL_PYTHON_INSTALLER: "pip",
      IMGTOOL_DEBIAN_PACKAGES: "curl",
      IMGTOOL_REFS: "base=ghcr.io/acme/base:1, gpu = nvcr.io/cuda:12",
      IMGTOOL_CACHE_MOUNTS: "0",
      IMGTOOL_SECRETS_FILES: "TOKEN=/run/token",
      IMGTOOL_BUILDER: "",
    },
  });
  assert.equal(config.registry, "127.0.0.1:5000");
  assert.deepEqual(config.platforms, ["linux/amd64", "linux/arm64"]);
  assert.deepEqual(config.pythonVersion, [3, 10]);
  assert.deepEqual(config.insecureRegistries, ["a:5000", "b:5000"]);
  assert.equal(config.images.python, "mirror/python:{major}.{minor}");
  assert.equal(config.images.uv, defaultConfig().images.uv);
  assert.equal(config.installer, "pip");
  assert.deepEqual(config.debianPackages, ["curl"]);
  assert.deepEqual(config.refs, { base: "ghcr.io/acme/base:1", gpu: "nvcr.io/cuda:12" });
  assert.equal(config.cacheMounts, false);
  assert.deepEqual(config.secretFiles, { TOKEN: "/run/token" });
  assert.equal(config.builder, "auto", "an empty variable is not set");
  for (const [value, expected] of [["true", true], ["1", true], ["false", false]] as const) {
    assert.equal(
      loadConfig({ startDir: "/nonexistent", env: { IMGTOOL_CACHE_MOUNTS: value } }).cacheMounts,
      expected,
    );
  }
});

Deno.test("loadConfig() names the variable whose value is wrong", () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ IMGTOOL_CACHE_MOUNTS: "yes" }, /^IMGTOOL_CACHE_MOUNTS: expected true or false, got "yes"$/],
    [{ IMGTOOL_PYTHON_VERSION: "3" }, /^IMGTOOL_PYTHON_VERSION: expected a Python version/],
    [
      { IMGTOOL_PLATFORMS: "windows/amd64" },
      /^IMGTOOL_PLATFORMS: unknown platform "windows\/amd64"$/,
    ],
    [{ IMGTOOL_REFS: "base" }, /^IMGTOOL_REFS: expected name=value pairs, got "base"$/],
    [{ IMGTOOL_PYTHON_INSTALLER: "conda" }, /^IMGTOOL_PYTHON_INSTALLER: expected "uv" or "pip"/],
  ];
  for (const [env, pattern] of cases) {
    assert.throws(() => loadConfig({ startDir: "/nonexistent", env }), usageError(pattern));
  }
  assert.throws(
    () =>
      loadConfig({
        startDir: "/nonexistent",
        env: {},
        overrides: { registry: undefined, platforms: "x" },
      }),
    usageError(/^--platforms: unknown platform "x"$/),
  );
});

Deno.test("settings come from imgtool.toml, then IMGTOOL_* variables, then flags", async () => {
  await withToml('registry = "from-file.example"\nbuilder = "buildah"\n', (dir) => {
    const load = (env: Record<string, string>, overrides = {}) =>
      loadConfig({ startDir: dir, env, overrides });
    assert.equal(load({}).registry, "from-file.example");
    assert.equal(load({ IMGTOOL_REGISTRY: "from-env.example" }).registry, "from-env.example");
    const all = load({ IMGTOOL_REGISTRY: "from-env.example" }, { registry: "from-flag.example" });
    assert.equal(all.registry, "from-flag.example");
    assert.equal(all.builder, "buildah", "settings no layer overrides keep the file's value");
    assert.equal(load({}, { registry: undefined }).registry, "from-file.example");
  });
});

Deno.test("imgtool.toml is found in the spec's folder or above; IMGTOOL_CONFIG names another", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "imgtool.toml": 'registry = "outer.example"\n',
      "project/deep/spec.ts": "",
      "other.toml": 'registry = "other.example"\n',
    });
    assert.equal(findConfigFile(join(dir, "project", "deep")), join(dir, "imgtool.toml"));
    assert.equal(
      loadConfig({ startDir: join(dir, "project", "deep"), env: {} }).registry,
      "outer.example",
    );
    const named = loadConfig({
      startDir: join(dir, "project"),
      env: { IMGTOOL_CONFIG: join(dir, "other.toml") },
    });
    assert.equal(named.registry, "other.example");
    assert.equal(named.file, join(dir, "other.toml"));
  });
});

Deno.test("secrets.dir and secrets.files are relative to the imgtool.toml that names them", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "conf/imgtool.toml": '[secrets]\ndir = "../vault"\nfiles = { A = "a.txt" }\n',
    });
    const config = loadConfig({ startDir: join(dir, "conf", "sub"), env: {} });
    assert.equal(config.secretsDir, join(dir, "vault"));
    assert.deepEqual(config.secretFiles, { A: join(dir, "conf", "a.txt") });
  });
});

Deno.test("every setting has an IMGTOOL_ variable named after its key", () => {
  assert.equal(envName("python-version"), "IMGTOOL_PYTHON_VERSION");
  assert.equal(envName("images.python"), "IMGTOOL_IMAGES_PYTHON");
  assert.equal(envName("cache.mounts"), "IMGTOOL_CACHE_MOUNTS");
  const names = SETTINGS.map((setting) => envName(setting.key));
  assert.equal(new Set(names).size, names.length);
});
