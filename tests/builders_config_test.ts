// A pool of builders in imgtool.toml (`[[builders]]`): what is read, what is refused (each
// error naming the entry and the key), which entries a build uses (`--builder`), and the
// checks that need the builder plugins (a plugin that exists, reaches the address, finds its
// TLS files), made against the real built-in plugins.

import assert from "node:assert/strict";
import { join } from "node:path";
import { type BuilderContext, type Config, defaultConfig, loadConfig, UsageError } from "../mod.ts";
import { builtinBuilders } from "../plugins/mod.ts";
import { poolEntries, poolMembers } from "../src/commands/build_pool.ts";
import { exec } from "../src/exec.ts";
import { RegistryClient } from "../src/registry/client.ts";
import { withTempDir, writeTree } from "./helpers.ts";
import { identify, Image, planImage } from "../mod.ts";

/** The configuration of a folder whose imgtool.toml is `toml` (the file alone: no variables). */
function configOf(dir: string, toml: string, overrides: Record<string, string> = {}): Config {
  Deno.writeTextFileSync(join(dir, "imgtool.toml"), toml, { mode: 0o644 });
  Deno.chmodSync(join(dir, "imgtool.toml"), 0o644);
  return loadConfig({
    startDir: dir,
    env: { IMGTOOL_CONFIG: join(dir, "imgtool.toml") },
    overrides,
  });
}

function refused(pattern: RegExp, hint?: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof UsageError, `a UsageError, got ${error}`);
    assert.equal(error.exitCode, 2);
    assert.match(error.message, pattern);
    if (hint) assert.match(error.hint ?? "", hint);
    return true;
  };
}

const TWO_ENGINES = `
[[builders]]
name = "engine-a"
host = "tcp://127.0.0.1:2385"
platforms = ["linux/amd64"]

[[builders]]
name = "arm.box_1"
plugin = "docker"
host = "ssh://ci@arm-box.internal:2222"
platforms = ["linux/arm64", "linux/amd64"]
jobs = 3

[[builders]]
name = "here"
plugin = "buildah"
platforms = "linux/amd64"

[[builders]]
name = "tls"
host = "tcp://[fd00::5]:2376"
platforms = ["linux/amd64"]
cert_path = "certs/tls"
`;

Deno.test("[[builders]] entries are read in order, with their defaults (docker, one job)", async () => {
  await withTempDir((dir) => {
    const config = configOf(dir, TWO_ENGINES);
    assert.deepEqual(config.builders, [
      {
        name: "engine-a",
        plugin: "docker",
        host: "tcp://127.0.0.1:2385",
        platforms: ["linux/amd64"],
        jobs: 1,
      },
      {
        name: "arm.box_1",
        plugin: "docker",
        host: "ssh://ci@arm-box.internal:2222",
        platforms: ["linux/arm64", "linux/amd64"],
        jobs: 3,
      },
      { name: "here", plugin: "buildah", platforms: ["linux/amd64"], jobs: 1 },
      {
        name: "tls",
        plugin: "docker",
        host: "tcp://[fd00::5]:2376",
        platforms: ["linux/amd64"],
        jobs: 1,
        certPath: join(dir, "certs/tls"),
        tlsVerify: true,
      },
    ]);
  });
});

Deno.test("without [[builders]] there is no pool, and the configuration is as before", async () => {
  await withTempDir((dir) => {
    const config = configOf(dir, `registry = "r.example"\n`);
    assert.equal(config.builders, undefined);
    assert.equal("builders" in config, false);
    assert.equal("builders" in defaultConfig(), false);
  });
});

const BAD_ENTRIES: readonly [string, string, RegExp, RegExp?][] = [
  [
    "a table, not an array",
    `[builders]\nname = "a"\n`,
    /builders must be \[\[builders\]\] entries/,
  ],
  [
    "no name",
    `[[builders]]\nplatforms = ["linux/amd64"]\n`,
    /\[\[builders\]\] entry 1: has no name/,
    /name = /,
  ],
  [
    "a name with a space",
    `[[builders]]\nname = "a b"\nplatforms = ["linux/amd64"]\n`,
    /\[\[builders\]\] "a b": name "a b" is not a valid engine name/,
  ],
  [
    "two entries of one name",
    `[[builders]]\nname = "a"\nplatforms = ["linux/amd64"]\n[[builders]]\nname = "a"\nplatforms = ["linux/arm64"]\n`,
    /\[\[builders\]\] entries 1 and 2 are both named "a"/,
  ],
  [
    "an http address",
    `[[builders]]\nname = "a"\nhost = "http://10.0.0.1:2375"\nplatforms = ["linux/amd64"]\n`,
    /\[\[builders\]\] "a": host "http:\/\/10\.0\.0\.1:2375" is not an engine address/,
    /unix:\/\/\/.*tcp:\/\/.*ssh:\/\//,
  ],
  [
    "a tcp address with a path",
    `[[builders]]\nname = "a"\nhost = "tcp://h:2375/x"\nplatforms = ["linux/amd64"]\n`,
    /host "tcp:\/\/h:2375\/x" is not an engine address/,
  ],
  [
    "a unix socket without an absolute path",
    `[[builders]]\nname = "a"\nhost = "unix://docker.sock"\nplatforms = ["linux/amd64"]\n`,
    /host "unix:\/\/docker\.sock" is not an engine address/,
  ],
  [
    "no platforms",
    `[[builders]]\nname = "a"\n`,
    /\[\[builders\]\] "a": has no platforms/,
    /platforms = \["linux\/amd64"\]/,
  ],
  [
    "an unknown platform",
    `[[builders]]\nname = "a"\nplatforms = ["linux/s390x"]\n`,
    /\[\[builders\]\] "a": platforms: unknown platform "linux\/s390x"/,
  ],
  [
    "jobs zero",
    `[[builders]]\nname = "a"\nplatforms = ["linux/amd64"]\njobs = 0\n`,
    /"a": jobs must be a whole number from 1 to 256, got 0/,
  ],
  [
    "jobs a fraction",
    `[[builders]]\nname = "a"\nplatforms = ["linux/amd64"]\njobs = 1.5\n`,
    /"a": jobs must be a whole number/,
  ],
  [
    "jobs a string",
    `[[builders]]\nname = "a"\nplatforms = ["linux/amd64"]\njobs = "2"\n`,
    /"a": jobs must be a whole number from 1 to 256, got "2"/,
  ],
  [
    "an unknown key",
    `[[builders]]\nname = "a"\nplatforms = ["linux/amd64"]\nthreads = 2\n`,
    /"a": unknown key threads/,
    /name, plugin, host, platforms, jobs, cert_path, tls_verify/,
  ],
  [
    "cert_path for an ssh engine",
    `[[builders]]\nname = "a"\nhost = "ssh://h"\nplatforms = ["linux/amd64"]\ncert_path = "c"\n`,
    /"a": cert_path applies to tcp:\/\/ engines only/,
  ],
  [
    "tls_verify not a boolean",
    `[[builders]]\nname = "a"\nhost = "tcp://h:2376"\nplatforms = ["linux/amd64"]\ntls_verify = "yes"\n`,
    /"a": tls_verify must be true or false/,
  ],
  [
    "a plugin name that no plugin could have",
    `[[builders]]\nname = "a"\nplugin = "Docker Engine"\nplatforms = ["linux/amd64"]\n`,
    /"a": plugin "Docker Engine" is not a builder plugin name/,
  ],
  [
    "a control character in a value",
    `[[builders]]\nname = "a"\nhost = "tcp://h:2376\\n"\nplatforms = ["linux/amd64"]\n`,
    /\[builders\[0\]\] host holds a line break/,
  ],
];

for (const [what, toml, message, hint] of BAD_ENTRIES) {
  Deno.test(`[[builders]]: ${what} is refused, naming the entry and the key`, async () => {
    await withTempDir((dir) => {
      assert.throws(() => configOf(dir, toml), refused(message, hint));
    });
  });
}

Deno.test("a cert_path folder is checked only by a build: uri and status read the file as it is", async () => {
  await withTempDir((dir) => {
    const config = configOf(
      dir,
      `[[builders]]\nname = "a"\nhost = "tcp://h:2376"\nplatforms = ["linux/amd64"]\ncert_path = "missing"\n`,
    );
    assert.equal(config.builders?.[0].certPath, join(dir, "missing"));
  });
});

Deno.test("a build uses every entry; --builder ENTRY uses that one; --builder PLUGIN none", async () => {
  await withTempDir((dir) => {
    const names = (config: Config) => poolEntries(config)?.map((entry) => entry.name);
    assert.deepEqual(names(configOf(dir, TWO_ENGINES)), ["engine-a", "arm.box_1", "here", "tls"]);
    assert.deepEqual(names(configOf(dir, TWO_ENGINES, { builder: "arm.box_1" })), ["arm.box_1"]);
    assert.equal(names(configOf(dir, TWO_ENGINES, { builder: "docker" })), undefined);
    assert.equal(names(configOf(dir, "")), undefined);
  });
});

/** The pool members of `toml`, made with the real built-in builder plugins. */
async function membersOf(dir: string, toml: string) {
  const config = configOf(dir, toml);
  const registry = new RegistryClient({ retries: 0 });
  try {
    const context: BuilderContext = { config, registry, exec };
    return poolMembers(poolEntries(config) ?? [], builtinBuilders, config, context);
  } finally {
    await registry.close();
  }
}

Deno.test("each member of the pool gets its plugin and a context aimed at its engine", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "certs/tls/ca.pem": "",
      "certs/tls/cert.pem": "",
      "certs/tls/key.pem": "",
    });
    const members = await membersOf(dir, TWO_ENGINES);
    assert.deepEqual(
      members.map((member) => [member.engine.name, member.builder.name, member.engine.jobs]),
      [["engine-a", "docker", 1], ["arm.box_1", "docker", 3], ["here", "buildah", 1], [
        "tls",
        "docker",
        1,
      ]],
    );
    assert.deepEqual(members[0].context.engine, { name: "engine-a", host: "tcp://127.0.0.1:2385" });
    assert.deepEqual(members[2].context.engine, { name: "here" });
    assert.deepEqual(members[3].context.engine, {
      name: "tls",
      host: "tcp://[fd00::5]:2376",
      certPath: join(dir, "certs/tls"),
      tlsVerify: true,
    });
    assert.equal(members[2].engine.where, "the default engine of buildah");
  });
});

Deno.test("a build refuses an entry whose plugin does not exist, naming the plugins there are", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      membersOf(dir, `[[builders]]\nname = "k"\nplugin = "kaniko"\nplatforms = ["linux/amd64"]\n`),
      refused(
        /imgtool\.toml: \[\[builders\]\] "k": plugin "kaniko" is not a builder plugin/,
        /docker, buildah/,
      ),
    );
  });
});

Deno.test("a build refuses a remote address for a plugin that builds only here (buildah)", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      membersOf(
        dir,
        `[[builders]]\nname = "b"\nplugin = "buildah"\nhost = "ssh://h"\nplatforms = ["linux/amd64"]\n`,
      ),
      refused(
        /"b": plugin buildah cannot build on ssh:\/\/h: it builds only on this machine/,
        /remove host.*\(docker\)/,
      ),
    );
  });
});

Deno.test("a build refuses an entry named like a builder plugin: --builder would be ambiguous", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      membersOf(
        dir,
        `[[builders]]\nname = "docker"\nhost = "tcp://h:1"\nplatforms = ["linux/amd64"]\n`,
      ),
      refused(/"docker": the name is also a builder plugin's/),
    );
  });
});

Deno.test("a build refuses a cert_path folder without the TLS files, naming those missing", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, { "certs/ca.pem": "" });
    await assert.rejects(
      membersOf(
        dir,
        `[[builders]]\nname = "t"\nhost = "tcp://h:2376"\nplatforms = ["linux/amd64"]\ncert_path = "certs"\n`,
      ),
      refused(/"t": cert_path .*certs has no cert\.pem, key\.pem/, /DOCKER_CERT_PATH/),
    );
  });
});

// Where images are built is the machine's business: a pool must not change any tag, even of a
// layer whose hooks copy the whole configuration (uv_project does).
Deno.test({
  name: "a pool of builders changes no tag, even of a layer that copies the whole configuration",
  fn: async () => {
    const image = Image.fromBase("python:3.12-slim").withUvProject(
      "./fixtures/project/uvproj/pyproject.toml",
    );
    const tag = async (config: Config) => (await identify(planImage(image, "app", config))).tag;
    const pool: Config = {
      ...defaultConfig(),
      builders: [{ name: "a", plugin: "docker", platforms: ["linux/amd64"], jobs: 1 }],
    };
    assert.equal(await tag(pool), await tag(defaultConfig()));
  },
});
