/**
 * End-to-end checks of engine-free layers (issue 13): an image whose chain ends in a source
 * folder, a source file, environment variables and a working directory is pushed with the
 * prefix built by the Docker engine and the rest appended through the registry. Then:
 * - one file is edited and the build runs again with no engine to reach (the docker client
 *   and its host pointed nowhere, no buildah on PATH): it works, and the pulled image has
 *   the new file; where libcrypto is installed, such a round starts no Node layer (V8's
 *   script log);
 * - the same prefix in another repository, the files touched and their modes changed as
 *   another umask makes them: the appended image has the same digest;
 * - the same spec built whole by the engine (`--no-append`) holds the same files, with the
 *   same contents, modes and owners, and the same env, working directory and user;
 * - a two-platform image is appended on both platforms.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  assertExit,
  boundedImgtool,
  copyImage,
  e2eTest,
  type Facts,
  jsonImages,
  makeProject,
  mustDocker,
  projectConfig,
  rawManifest,
  removeImages,
  run,
  RUN_ID,
} from "./harness.ts";
import { REPO_ROOT } from "../helpers.ts";
import { beyondDenoStart, isNodeLayer, runLogged, systemHasLibcrypto } from "../script_log.ts";

function appendSpec(facts: Facts, platforms = ""): string {
  const q = JSON.stringify;
  return `import { Image } from "imgtool";

export default Image.fromBase(${q(facts.PYTHON_BASE)})
  .clone({ name: "append"${platforms} })
  // Unique per run: the prefix is built for real, not found from an earlier run.
  .withEnvVars({ E2E_RUN: ${q(RUN_ID)} })
  .withCommands("mkdir -p /opt/tool && echo tool > /opt/tool/version")
  .withSourceFolder("./src", "/app/src")
  .withSourceFile("./conf/app.toml", "/etc/app/")
  .withEnvVars({ MODE: "prod", GREETING: "a b\\tc" })
  .withWorkdir("/app");
`;
}

const PROJECT = {
  "src/main.py": "print('v1')\n",
  "src/run.sh": "#!/bin/sh\necho run\n",
  "src/pkg/__init__.py": "",
  "src/pkg/a b [1].txt": "odd name\n",
  "conf/app.toml": "[app]\nname = 'demo'\n",
};

async function writeAppendProject(facts: Facts, registry: string, platforms = "") {
  const dir = await makeProject({
    "imgtool.toml": projectConfig(facts, registry),
    "spec.ts": appendSpec(facts, platforms),
    ...PROJECT,
  });
  await Deno.chmod(`${dir}/src/run.sh`, 0o755);
  return dir;
}

/** Every file of an image: path, type, mode, owner and content digest (times left out). */
async function filesOf(facts: Facts, image: string): Promise<Map<string, string>> {
  const created = (await mustDocker(facts, ["create", "--network=host", image, "true"])).trim();
  try {
    const exported = await run("sh", [
      "-c",
      `${facts.DOCKER} export ${created} | tar -tv --numeric-owner -f - | ` +
      `awk '{ $4 = ""; $5 = ""; print }'`,
    ]);
    assert.equal(exported.code, 0, exported.stderr);
    const files = new Map<string, string>();
    for (const line of exported.stdout.trim().split("\n")) {
      const fields = line.split(/\s+/);
      // mode owner size (date time removed) name...
      files.set(fields.slice(3).join(" "), `${fields[0]} ${fields[1]} ${fields[2]}`);
    }
    return files;
  } finally {
    await mustDocker(facts, ["rm", created]);
  }
}

async function contentOf(facts: Facts, image: string, path: string): Promise<string> {
  return await mustDocker(facts, ["run", "--rm", "--network=host", image, "cat", path]);
}

async function runConfig(facts: Facts, image: string): Promise<string> {
  return (await mustDocker(facts, [
    "image",
    "inspect",
    "-f",
    "{{json .Config.Env}} {{.Config.WorkingDir}} {{.Config.User}}",
    image,
  ])).trim();
}

e2eTest(
  "append: the layers after the engine's are appended through the registry, and later builds need no engine",
  async (t, facts) => {
    const registry = `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-append`;
    const dir = await writeAppendProject(facts, registry);
    const pulled = new Set<string>();
    try {
      // Without --json: the progress lines say what went where.
      const first = await boundedImgtool(dir, ["build", "spec.ts", "--push"]);
      assertExit(first, 0, "first build --push");
      const image = { uri: first.stdout.trim() };
      assert.match(image.uri, /:[0-9a-f]{32}$/);
      assert.match(first.stderr, /building layers 0-2 with the engine/);
      assert.match(first.stderr, /appended 4 layer\(s\) through the registry/);
      assert.match(first.stderr, /1 built, 0 skipped, 0 failed/);

      await t.step("the image has the files and settings", async () => {
        await removeImages(facts, [image.uri]);
        await mustDocker(facts, ["pull", "-q", image.uri]);
        pulled.add(image.uri);
        assert.equal(await contentOf(facts, image.uri, "/app/src/main.py"), "print('v1')\n");
        assert.equal(
          await contentOf(facts, image.uri, "/etc/app/app.toml"),
          PROJECT["conf/app.toml"],
        );
        assert.equal(await contentOf(facts, image.uri, "/opt/tool/version"), "tool\n");
        const config = await runConfig(facts, image.uri);
        assert.match(config, /"MODE=prod"/);
        assert.match(config, /"GREETING=a b\\tc"/);
        assert.match(config, / \/app\s*$/);
      });

      let second = "";
      await t.step("an edited file is appended with no engine and no buildah", async () => {
        await Deno.writeTextFile(`${dir}/src/main.py`, "print('v2')\n");
        const nowhere = await Deno.makeTempDir();
        try {
          const rebuilt = await boundedImgtool(dir, ["build", "spec.ts", "--push", "--json"], 120, {
            IMGTOOL_DOCKER_HOST: `unix://${nowhere}/no-engine.sock`,
            IMGTOOL_DOCKER_CLIENT: `${nowhere}/no-docker`,
            DOCKER_HOST: `unix://${nowhere}/no-engine.sock`,
            // No buildah, no docker: only what a shell needs.
            PATH: `${nowhere}:/bin`,
          });
          assertExit(rebuilt, 0, "build --push with no engine");
          const [again] = jsonImages(rebuilt);
          assert.equal(again.status, "built", JSON.stringify(again));
          assert.notEqual(again.uri, image.uri);
          // No builder took part: the prefix was found, the rest appended.
          assert.equal(again.builder, "registry", JSON.stringify(again));
          assert.equal(again.appended, 4, JSON.stringify(again));
          second = again.uri;
        } finally {
          await Deno.remove(nowhere, { recursive: true });
        }
        await mustDocker(facts, ["pull", "-q", second]);
        pulled.add(second);
        assert.equal(await contentOf(facts, second, "/app/src/main.py"), "print('v2')\n");
      });

      await t.step({
        name: "an append round starts no Node layer where libcrypto is installed",
        ignore: !systemHasLibcrypto(),
        fn: async () => {
          // The layer is written, hashed and uploaded by libcrypto's SHA-256 and the registry
          // client's own timers: nothing of imgtool's needs Deno's Node layer (40-50 ms).
          await Deno.writeTextFile(`${dir}/src/main.py`, "print('v3')\n");
          const cli = ["--config", `${REPO_ROOT}/deno.json`, `${REPO_ROOT}/cli.ts`];
          const round = await runLogged([...cli, "build", "spec.ts", "--push", "--json"], {
            cwd: dir,
          }).finally(() => Deno.writeTextFile(`${dir}/src/main.py`, "print('v2')\n"));
          assertExit(round.ran, 0, "an append round, logged");
          const [image] = jsonImages(round.ran);
          assert.equal(image.builder, "registry", JSON.stringify(image));
          const node = (await beyondDenoStart(round.scripts, dir)).filter(isNodeLayer);
          assert.deepEqual(node, [], "the round started Deno's Node layer");
        },
      });

      await t.step(
        "the same prefix elsewhere, after touch and another umask: same digest",
        async () => {
          const prefix = /\(([^)\s]+:[0-9a-f]{32})\)/.exec(first.stderr)?.[1];
          assert.ok(prefix, `no prefix reference in:\n${first.stderr}`);
          const otherRegistry = `${registry}-copy`;
          await copyImage(prefix, `${otherRegistry}/append:${prefix.split(":").at(-1)}`);
          const copy = await writeAppendProject(facts, otherRegistry);
          try {
            await Deno.writeTextFile(`${copy}/src/main.py`, "print('v2')\n");
            for (const path of ["src/main.py", "src/pkg/__init__.py", "conf/app.toml"]) {
              await Deno.chmod(`${copy}/${path}`, 0o600);
              const later = new Date(Date.now() + 7_200_000);
              await Deno.utime(`${copy}/${path}`, later, later);
            }
            await Deno.chmod(`${copy}/src/run.sh`, 0o700);
            await Deno.chmod(`${copy}/src/pkg`, 0o700);
            const rebuilt = await boundedImgtool(copy, ["build", "spec.ts", "--push", "--json"]);
            assertExit(rebuilt, 0, "build --push of the copy");
            const [other] = jsonImages(rebuilt);
            assert.equal(other.builder, "registry", JSON.stringify(other));
            const ours = await rawManifestDigest(second);
            const theirs = await rawManifestDigest(other.uri);
            assert.equal(theirs, ours);
          } finally {
            await Deno.remove(copy, { recursive: true });
          }
        },
      );

      await t.step(
        "built whole by the engine, the image holds the same files and settings",
        async () => {
          const engineRegistry = `${registry}-engine`;
          await Deno.writeTextFile(`${dir}/imgtool.toml`, projectConfig(facts, engineRegistry));
          const whole = await boundedImgtool(dir, [
            "build",
            "spec.ts",
            "--push",
            "--no-append",
            "--json",
          ]);
          assertExit(whole, 0, "build --push --no-append");
          const [engine] = jsonImages(whole);
          assert.equal(engine.appended, undefined, JSON.stringify(engine));
          assert.equal(engine.builder, "docker", JSON.stringify(engine));
          await mustDocker(facts, ["pull", "-q", engine.uri]);
          pulled.add(engine.uri);
          const appended = await filesOf(facts, second);
          const built = await filesOf(facts, engine.uri);
          const differences: string[] = [];
          for (const [path, facts] of built) {
            if (appended.get(path) !== facts) {
              differences.push(`${path}: engine ${facts}, appended ${appended.get(path)}`);
            }
          }
          for (const path of appended.keys()) {
            if (!built.has(path)) differences.push(`${path}: only in the appended image`);
          }
          assert.deepEqual(differences, []);
          for (
            const path of ["/app/src/main.py", "/app/src/pkg/a b [1].txt", "/etc/app/app.toml"]
          ) {
            assert.equal(
              await contentOf(facts, second, path),
              await contentOf(facts, engine.uri, path),
            );
          }
          assert.equal(await runConfig(facts, second), await runConfig(facts, engine.uri));
        },
      );
    } finally {
      await removeImages(facts, pulled);
      await Deno.remove(dir, { recursive: true });
    }
  },
);

async function rawManifestDigest(uri: string): Promise<string> {
  const [repository, tag] = [
    uri.slice(0, uri.lastIndexOf(":")),
    uri.slice(uri.lastIndexOf(":") + 1),
  ];
  const slash = repository.indexOf("/");
  const response = await fetch(
    `http://${repository.slice(0, slash)}/v2/${repository.slice(slash + 1)}/manifests/${tag}`,
    {
      method: "HEAD",
      headers: {
        accept: [
          "application/vnd.oci.image.index.v1+json",
          "application/vnd.oci.image.manifest.v1+json",
          "application/vnd.docker.distribution.manifest.v2+json",
          "application/vnd.docker.distribution.manifest.list.v2+json",
        ].join(", "),
      },
    },
  );
  assert.equal(response.status, 200, uri);
  return response.headers.get("docker-content-digest") ?? "";
}

e2eTest("append: a two-platform image is appended on both platforms", async (_t, facts) => {
  const registry = `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-append2`;
  const dir = await writeAppendProject(facts, registry);
  const pulled = new Set<string>();
  try {
    const built = await boundedImgtool(dir, [
      "build",
      "spec.ts",
      "--push",
      "--platform",
      "linux/amd64,linux/arm64",
      "--json",
    ]);
    assertExit(built, 0, "two-platform build --push");
    const [image] = jsonImages(built);
    assert.equal(image.appended, 4, JSON.stringify(image));
    const index = await rawManifest(image.uri);
    const manifests = index.manifests as { digest: string; platform: { architecture: string } }[];
    assert.deepEqual(manifests.map((m) => m.platform.architecture).sort(), ["amd64", "arm64"]);
    const repository = image.uri.slice(0, image.uri.lastIndexOf(":"));
    const expected: Record<string, string> = { amd64: "x86_64", arm64: "aarch64" };
    for (const manifest of manifests) {
      const reference = `${repository}@${manifest.digest}`;
      const platform = `linux/${manifest.platform.architecture}`;
      await mustDocker(facts, ["pull", "-q", "--platform", platform, reference]);
      pulled.add(reference);
      const out = await mustDocker(facts, [
        "run",
        "--rm",
        "--network=host",
        "--platform",
        platform,
        reference,
        "sh",
        "-c",
        "uname -m; cat /app/src/main.py; pwd",
      ]);
      assert.equal(out, `${expected[manifest.platform.architecture]}\nprint('v1')\n/app\n`);
    }
  } finally {
    await removeImages(facts, pulled);
    await Deno.remove(dir, { recursive: true });
  }
});

e2eTest(
  "append on a pool: the pool builds the prefix per platform, the rest is appended; then no engine",
  async (_t, facts) => {
    const engines = facts as unknown as Record<string, string | undefined>;
    const [a, b] = [engines.POOL_ENGINE_A, engines.POOL_ENGINE_B];
    assert.ok(a && b, "POOL_ENGINE_A/B are not in the facts: run tests/e2e/env.sh up");
    const registry = `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-append-pool`;
    const dir = await writeAppendProject(facts, registry);
    const pool = [["amd", a, "linux/amd64"], ["arm", b, "linux/arm64"]]
      .map(([name, host, platform]) =>
        `[[builders]]\nname = "${name}"\nhost = "${host}"\nplatforms = ["${platform}"]\n`
      ).join("\n");
    await Deno.writeTextFile(`${dir}/imgtool.toml`, projectConfig(facts, registry, pool));
    const flags = ["build", "spec.ts", "--push", "--platform", "linux/amd64,linux/arm64", "--json"];
    try {
      const built = await boundedImgtool(dir, flags);
      assertExit(built, 0, "pooled two-platform build --push");
      const [image] = jsonImages(built);
      assert.equal(image.status, "built", JSON.stringify(image));
      assert.equal(image.appended, 4, JSON.stringify(image));
      assert.deepEqual(
        (image.engines ?? []).map((e) => `${e.platform} ${e.engine}`).sort(),
        ["linux/amd64 amd", "linux/arm64 arm"],
      );
      const index = await rawManifest(image.uri);
      const manifests = index.manifests as { platform: { architecture: string } }[];
      assert.deepEqual(manifests.map((m) => m.platform.architecture).sort(), ["amd64", "arm64"]);

      // An edit: the prefix is in the registry, no engine of the pool is asked.
      await Deno.writeTextFile(`${dir}/src/main.py`, "print('pooled v2')\n");
      const nowhere = "tcp://127.0.0.1:9";
      await Deno.writeTextFile(
        `${dir}/imgtool.toml`,
        projectConfig(
          facts,
          registry,
          pool.replace(a, nowhere).replace(b, nowhere),
        ),
      );
      const again = await boundedImgtool(dir, flags, 120);
      assertExit(again, 0, "pooled rebuild with the engines pointed nowhere");
      const [second] = jsonImages(again);
      assert.equal(second.builder, "registry", JSON.stringify(second));
      assert.notEqual(second.uri, image.uri);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
