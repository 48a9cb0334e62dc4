// The command lines the Docker builder runs (plugins/docker.ts), through the real build stage
// (src/build.ts) with only the docker client replaced by a recording stand-in, and the
// registry a real HTTP server on 127.0.0.1: secrets, platforms, the buildx and built-in
// BuildKit paths, pushing, the multi-platform index, a remote engine, the local image check.

import assert from "node:assert/strict";
import docker from "../plugins/docker.ts";
import {
  type BuilderContext,
  BuildError,
  type Config,
  defaultConfig,
  type EngineTarget,
  identify,
  Image,
  planImage,
  type Platform,
  Secret,
} from "../mod.ts";
import { buildImage } from "../src/build.ts";
import { RegistryClient } from "../src/registry/client.ts";
import { type FakeRegistry, OCI_INDEX, startFakeRegistry } from "./fake_registry.ts";
import {
  flagValues,
  optionFields,
  recordingExec,
  type ToolAnswer,
  type ToolCall,
} from "./recording_exec.ts";

/** How the stand-in docker client behaves. */
interface Client {
  /** Whether `docker buildx version` works. */
  readonly buildx: boolean;
  /** `docker version`'s client version (23 and later build only through buildx). */
  readonly version?: string;
  /** Answers a build or push (after the recording); exit 0 when it returns nothing. */
  readonly onCommand?: (call: ToolCall) => ToolAnswer | void | Promise<ToolAnswer | void>;
}

/** A stand-in docker client: answers detection, records everything. */
function dockerClient(client: Client) {
  return recordingExec((call) => {
    const [first, second] = call.args;
    if (first === "version") {
      const version = client.version ?? "20.10.24";
      return { stdout: `${version} ${version}\n` };
    }
    if (first === "buildx" && second === "version") return { code: client.buildx ? 0 : 1 };
    return client.onCommand?.(call);
  });
}

/** The build and push commands of a run (detection left out). */
function work(calls: readonly ToolCall[]): ToolCall[] {
  // Also without the read of the base image's config (which user it runs as), which comes
  // before rendering: tests/base_config_test.ts.
  return calls.filter((call) =>
    call.args[0] !== "version" && call.args[1] !== "version" &&
    !(call.args[0] === "image" && call.args[1] === "inspect")
  );
}

/** Run the build stage with the docker builder for `image`; the client is a stand-in. */
async function buildWithDocker(
  image: Image,
  options: {
    client: Client;
    platforms?: Platform[];
    push?: boolean;
    config?: Partial<Config>;
    registry?: FakeRegistry;
    /** The engine of a pool to build on (`BuilderContext.engine`). */
    engine?: EngineTarget;
  },
) {
  // A client name of its own: the builder detects each client once per process.
  const config: Config = {
    ...defaultConfig(),
    dockerClient: `/opt/fake/docker-${crypto.randomUUID()}`,
    ...options.config,
  };
  const plan = planImage(image, "app", config, { platforms: options.platforms });
  const identity = await identify(plan);
  const runner = dockerClient(options.client);
  const registry = new RegistryClient({ retries: 0 });
  const context: BuilderContext = {
    config,
    registry,
    exec: runner.exec,
    ...(options.engine ? { engine: options.engine } : {}),
  };
  const output: string[] = [];
  const error = await buildImage(plan, identity, docker, context, {
    push: options.push ?? false,
    insecureRegistry: true,
    signal: new AbortController().signal,
    output: (line) => output.push(line),
  }).then(() => undefined, (error: unknown) => error);
  await registry.close();
  return { uri: identity.uri, calls: runner.calls, config, output, error };
}

const SECRET_MOUNT = /--mount=type=secret,id=([A-Za-z0-9_]+)/g;

/** An image with two secrets (a name and a grouped `Secret`), their values in the environment. */
async function withTwoSecrets(
  body: (image: Image, values: Record<string, string>) => Promise<void>,
): Promise<void> {
  const values = {
    UNIT_DOCKER_TOKEN: `token-${crypto.randomUUID()}`,
    UNITGROUP_PAT: `pat-${crypto.randomUUID()}`,
  };
  for (const [name, value] of Object.entries(values)) Deno.env.set(name, value);
  try {
    const image = Image.fromBase("debian:bookworm").clone({ name: "app" }).withCommands(
      "true",
      {
        secretMounts: ["UNIT_DOCKER_TOKEN", new Secret({ key: "pat", group: "unitgroup" })],
      },
    );
    await body(image, values);
  } finally {
    for (const name of Object.keys(values)) Deno.env.delete(name);
  }
}

for (const buildx of [true, false]) {
  const path = buildx ? "buildx" : "built-in BuildKit";
  Deno.test(`${path}: every secret the Dockerfile mounts reaches the build as --secret id=ID,src=FILE holding its value`, () =>
    withTwoSecrets(async (image, values) => {
      let mounted: string[] = [];
      const handed = new Map<string, string>();
      const { calls, error } = await buildWithDocker(image, {
        client: {
          buildx,
          onCommand(call) {
            if (!call.args.includes("build")) return;
            // The context and secret files exist only while the build runs: read them now.
            const dockerfile = Deno.readTextFileSync(flagValues(call.args, "--file")[0]);
            mounted = [...dockerfile.matchAll(SECRET_MOUNT)].map((match) => match[1]);
            for (const secret of flagValues(call.args, "--secret")) {
              const fields = optionFields(secret);
              handed.set(fields.id, Deno.readTextFileSync(fields.src));
            }
          },
        },
      });
      assert.equal(error, undefined);
      assert.equal(mounted.length, 2, "the Dockerfile mounts both secrets");
      assert.deepEqual([...handed.keys()].sort(), [...new Set(mounted)].sort());
      assert.deepEqual([...handed.values()].sort(), Object.values(values).sort());
      for (const call of calls) {
        const said = JSON.stringify([call.args, call.env]);
        for (const value of Object.values(values)) {
          assert.ok(!said.includes(value), `a secret value is in ${said}`);
        }
      }
    }));
}

Deno.test("buildx builds all platforms in one command and pushes with --push, no separate docker push", async () => {
  const image = Image.fromBase("debian:bookworm").clone({ name: "app" }).withEnvVars({ A: "1" });
  const { uri, calls, error } = await buildWithDocker(image, {
    client: { buildx: true },
    platforms: ["linux/arm64", "linux/amd64"],
    push: true,
  });
  assert.equal(error, undefined);
  const [build, ...rest] = work(calls);
  assert.deepEqual(rest, [], "one command does it all");
  assert.deepEqual(build.args.slice(0, 2), ["buildx", "build"]);
  assert.deepEqual(flagValues(build.args, "--platform"), ["linux/amd64,linux/arm64"]);
  assert.deepEqual(flagValues(build.args, "--tag"), [uri]);
  assert.ok(build.args.includes("--push") && !build.args.includes("--load"));
  const contextDir = build.args.at(-1)!;
  assert.deepEqual(flagValues(build.args, "--file"), [`${contextDir}/Dockerfile`]);
});

Deno.test("buildx without --push loads the image into the engine", async () => {
  const image = Image.fromBase("debian:bookworm").clone({ name: "app" }).withEnvVars({ A: "1" });
  const { uri, calls, error } = await buildWithDocker(image, { client: { buildx: true } });
  assert.equal(error, undefined);
  const [build, ...rest] = work(calls);
  assert.deepEqual(rest, []);
  assert.ok(build.args.includes("--load") && !build.args.includes("--push"));
  assert.deepEqual(flagValues(build.args, "--platform"), ["linux/amd64"]);
  assert.deepEqual(flagValues(build.args, "--tag"), [uri]);
});

Deno.test("built-in BuildKit builds one platform with DOCKER_BUILDKIT=1, then docker push pushes it", async () => {
  const image = Image.fromBase("debian:bookworm").clone({ name: "app" }).withEnvVars({ A: "1" });
  const { uri, calls, error } = await buildWithDocker(image, {
    client: { buildx: false },
    platforms: ["linux/arm64"],
    push: true,
  });
  assert.equal(error, undefined);
  const [build, push, ...rest] = work(calls);
  assert.deepEqual(rest, []);
  assert.equal(build.args[0], "build");
  assert.equal(build.env.DOCKER_BUILDKIT, "1");
  assert.deepEqual(flagValues(build.args, "--platform"), ["linux/arm64"]);
  assert.deepEqual(flagValues(build.args, "--tag"), [uri]);
  assert.ok(!build.args.includes("--push") && !build.args.includes("--load"));
  assert.deepEqual(push.args, ["push", uri]);
});

Deno.test("built-in BuildKit without --push builds and pushes nothing more", async () => {
  const image = Image.fromBase("debian:bookworm").clone({ name: "app" }).withEnvVars({ A: "1" });
  const { calls, error } = await buildWithDocker(image, { client: { buildx: false } });
  assert.equal(error, undefined);
  assert.deepEqual(work(calls).map((call) => call.args[0]), ["build"]);
});

Deno.test("built-in BuildKit builds each platform under its own tag, pushes it, and joins them in one OCI index", async () => {
  const registry = await startFakeRegistry();
  try {
    const platformOfTag = new Map<string, string>();
    const pushed = new Map<string, string>(); // platform -> manifest digest
    const image = Image.fromBase("debian:bookworm").clone({ name: "app", registry: registry.host })
      .withEnvVars({ A: "1" });
    const { uri, calls, error } = await buildWithDocker(image, {
      client: {
        buildx: false,
        async onCommand(call) {
          if (call.args[0] === "build") {
            platformOfTag.set(
              flagValues(call.args, "--tag")[0],
              flagValues(call.args, "--platform")[0],
            );
          }
          if (call.args[0] === "push") {
            // What `docker push` does: the registry now has that tag.
            const reference = call.args[1];
            const platform = platformOfTag.get(reference);
            if (!platform) {
              return { code: 1, lines: [`An image does not exist locally: ${reference}`] };
            }
            const [repository, tag] = reference.slice(registry.host.length + 1).split(":");
            pushed.set(platform, await registry.addImage(repository, tag, platform));
          }
        },
      },
      platforms: ["linux/amd64", "linux/arm64"],
      push: true,
    });
    assert.equal(error, undefined);
    const steps = work(calls).map((call) => call.args[0]);
    assert.deepEqual(steps, ["build", "push", "build", "push"]);
    const tags = [...platformOfTag.keys()];
    assert.equal(new Set(tags).size, 2, "each platform has a tag of its own");
    assert.ok(tags.every((tag) => tag !== uri && tag.startsWith(uri)), tags.join(" "));
    const [repository, tag] = uri.slice(registry.host.length + 1).split(":");
    const index = registry.manifest(repository, tag);
    assert.equal(index?.mediaType, OCI_INDEX);
    const listed = (index!.json.manifests as { digest: string; platform: Record<string, string> }[])
      .map((entry) => [`${entry.platform.os}/${entry.platform.architecture}`, entry.digest]);
    assert.deepEqual(Object.fromEntries(listed), Object.fromEntries(pushed));
    assert.deepEqual([...pushed.keys()].sort(), ["linux/amd64", "linux/arm64"]);
  } finally {
    await registry.close();
  }
});

Deno.test("built-in BuildKit refuses several platforms without --push, before building anything", async () => {
  const image = Image.fromBase("debian:bookworm").clone({ name: "app" }).withEnvVars({ A: "1" });
  const { calls, error } = await buildWithDocker(image, {
    client: { buildx: false },
    platforms: ["linux/amd64", "linux/arm64"],
  });
  assert.ok(error instanceof BuildError, String(error));
  assert.match(error.hint ?? "", /--push/);
  assert.deepEqual(work(calls), []);
});

Deno.test("a client from 23.0 on without buildx is refused with what to install, and nothing runs", async () => {
  const image = Image.fromBase("debian:bookworm").clone({ name: "app" }).withEnvVars({ A: "1" });
  const { calls, error } = await buildWithDocker(image, {
    client: { buildx: false, version: "24.0.7" },
  });
  assert.ok(error instanceof BuildError, String(error));
  assert.match(error.message, /24\.0\.7.*no buildx/);
  assert.match(error.hint ?? "", /buildx/);
  assert.deepEqual(work(calls), []);
});

for (const buildx of [true, false]) {
  Deno.test(`${buildx ? "buildx" : "built-in BuildKit"}: with [docker] host every docker command goes to that engine (DOCKER_HOST); without, none is pointed anywhere`, async () => {
    const image = Image.fromBase("debian:bookworm").clone({ name: "app" }).withEnvVars({ A: "1" });
    const host = `ssh://ci@builder-${crypto.randomUUID().slice(0, 8)}.example`;
    const remote = await buildWithDocker(image, {
      client: { buildx },
      push: true,
      config: { dockerHost: host },
    });
    assert.equal(remote.error, undefined);
    assert.ok(work(remote.calls).length > 0);
    for (const call of remote.calls) assert.equal(call.env.DOCKER_HOST, host, call.args.join(" "));
    const local = await buildWithDocker(image, { client: { buildx }, push: true });
    assert.equal(local.error, undefined);
    for (const call of local.calls) assert.equal(call.env.DOCKER_HOST, undefined);
  });
}

for (const buildx of [true, false]) {
  Deno.test(`${buildx ? "buildx" : "built-in BuildKit"}: on a pool's engine every docker command goes to it with its TLS files, over [docker] host`, async () => {
    const image = Image.fromBase("debian:bookworm").clone({ name: "app" }).withEnvVars({ A: "1" });
    const secured = await buildWithDocker(image, {
      client: { buildx },
      push: true,
      platforms: ["linux/amd64", "linux/arm64"].slice(0, buildx ? 2 : 1) as Platform[],
      config: { dockerHost: "ssh://not-this-one.example" },
      engine: {
        name: "arm-box",
        host: "tcp://10.0.0.7:2376",
        certPath: "/etc/imgtool/arm-box",
        tlsVerify: true,
      },
    });
    assert.equal(secured.error, undefined);
    assert.ok(work(secured.calls).length > 0);
    for (const call of secured.calls) {
      assert.deepEqual(
        [call.env.DOCKER_HOST, call.env.DOCKER_CERT_PATH, call.env.DOCKER_TLS_VERIFY],
        ["tcp://10.0.0.7:2376", "/etc/imgtool/arm-box", "1"],
        call.args.join(" "),
      );
    }
    // Without TLS, the variables are set empty: the user's own cannot reach this engine.
    const plain = await buildWithDocker(image, {
      client: { buildx },
      engine: { name: "b", host: "tcp://127.0.0.1:2386" },
    });
    assert.equal(plain.error, undefined);
    for (const call of plain.calls) {
      assert.deepEqual(
        [call.env.DOCKER_HOST, call.env.DOCKER_CERT_PATH, call.env.DOCKER_TLS_VERIFY],
        ["tcp://127.0.0.1:2386", "", ""],
      );
    }
  });
}

Deno.test("cert_path with tls_verify = false: TLS with the client files, the engine's certificate unchecked (DOCKER_TLS)", async () => {
  const image = Image.fromBase("debian:bookworm").clone({ name: "app" }).withEnvVars({ A: "1" });
  const { calls, error } = await buildWithDocker(image, {
    client: { buildx: true },
    engine: { name: "a", host: "tcp://h:2376", certPath: "/certs", tlsVerify: false },
  });
  assert.equal(error, undefined);
  for (const call of calls) {
    assert.deepEqual(
      [call.env.DOCKER_CERT_PATH, call.env.DOCKER_TLS_VERIFY, call.env.DOCKER_TLS],
      ["/certs", "", "1"],
    );
  }
});

Deno.test("the probe of a pool's engine asks the engine each time; without an engine, once per process", async () => {
  const runner = dockerClient({ buildx: true });
  const config: Config = {
    ...defaultConfig(),
    dockerClient: `/opt/fake/docker-${crypto.randomUUID()}`,
  };
  const registry = new RegistryClient({ retries: 0 });
  try {
    const base: BuilderContext = { config, registry, exec: runner.exec };
    const versions = () => runner.calls.filter((call) => call.args[0] === "version").length;
    for (let i = 0; i < 3; i++) assert.equal((await docker.probe(base)).ok, true);
    assert.equal(versions(), 1, "detected once");
    const engine = { ...base, engine: { name: "a", host: "tcp://127.0.0.1:2385" } };
    for (let i = 0; i < 3; i++) assert.equal((await docker.probe(engine)).ok, true);
    assert.equal(versions(), 4, "asked three times more");
    assert.deepEqual(docker.engineSchemes, ["unix", "tcp", "ssh"]);
  } finally {
    await registry.close();
  }
});

Deno.test("a pool's engine that does not answer: the probe says so, naming its address", async () => {
  const runner = recordingExec((call) =>
    call.args[0] === "version"
      ? {
        code: 1,
        lines: [
          "20.10.24 ",
          "Cannot connect to the Docker daemon at tcp://127.0.0.1:9. Is the docker daemon running?",
        ],
      }
      : undefined
  );
  const config: Config = {
    ...defaultConfig(),
    dockerClient: `/opt/fake/docker-${crypto.randomUUID()}`,
  };
  const registry = new RegistryClient({ retries: 0 });
  try {
    const probe = await docker.probe({
      config,
      registry,
      exec: runner.exec,
      engine: { name: "gone", host: "tcp://127.0.0.1:9" },
    });
    assert.equal(probe.ok, false);
    assert.match(
      probe.ok ? "" : probe.reason,
      /engine at tcp:\/\/127\.0\.0\.1:9 does not answer.*Cannot connect/,
    );
  } finally {
    await registry.close();
  }
});

Deno.test("build steps use the configured network; `default` adds no --network flag", async () => {
  const image = Image.fromBase("debian:bookworm").clone({ name: "app" }).withEnvVars({ A: "1" });
  for (const network of ["host", "none", "default"]) {
    const { calls } = await buildWithDocker(image, {
      client: { buildx: true },
      config: { network },
    });
    const [build] = work(calls);
    assert.deepEqual(
      build.args.filter((arg) => arg.startsWith("--network")),
      network === "default" ? [] : [`--network=${network}`],
    );
  }
});

Deno.test("a failing build is a BuildError naming the layer of the failing step, and its output is passed on", async () => {
  const image = Image.fromBase("debian:bookworm").clone({ name: "app" }).withAptPackages("nope");
  const { error, output } = await buildWithDocker(image, {
    client: {
      buildx: true,
      onCommand(call) {
        // BuildKit names a step by its instruction, continuation lines joined.
        const dockerfile = Deno.readTextFileSync(flagValues(call.args, "--file")[0]);
        const run = dockerfile.replace(/\\\n/g, " ").split("\n").find((line) =>
          line.startsWith("RUN")
        );
        return {
          code: 1,
          lines: [
            `#5 [2/2] ${run}`,
            "#5 0.9 E: Unable to locate package nope",
            "#5 ERROR: process did not complete successfully: exit code: 100",
          ],
        };
      },
    },
  });
  assert.ok(error instanceof BuildError, String(error));
  assert.match(error.message, /withAptPackages, plugin apt.*step failed: RUN /);
  assert.match(error.output ?? "", /Unable to locate package nope/);
  assert.ok(output.some((line) => line.includes("Unable to locate package nope")));
});

Deno.test("the local image check says exists only for an image of the one requested platform", async () => {
  const answers: Record<string, ToolAnswer> = {
    missing: { code: 1, lines: ["Error: No such image"] },
    arm64: { stdout: "linux/arm64\n" },
    amd64: { stdout: "linux/amd64\n" },
  };
  const ask = async (answer: ToolAnswer, platforms: Platform[]) => {
    const runner = recordingExec((call) => call.args[0] === "image" ? answer : undefined);
    const context: BuilderContext = {
      config: { ...defaultConfig(), dockerClient: "/opt/fake/docker" },
      registry: { putIndex: () => Promise.reject(new Error("not used")) },
      exec: runner.exec,
    };
    const exists = await docker.exists!("127.0.0.1:5000/app:1", platforms, context);
    return { exists, calls: runner.calls };
  };
  assert.equal((await ask(answers.missing, ["linux/amd64"])).exists, false);
  assert.equal((await ask(answers.arm64, ["linux/amd64"])).exists, false);
  const found = await ask(answers.amd64, ["linux/amd64"]);
  assert.equal(found.exists, true);
  assert.equal(found.calls[0].args.at(-1), "127.0.0.1:5000/app:1");
  // An engine holds one platform per tag: several are never "there".
  const several = await ask(answers.amd64, ["linux/amd64", "linux/arm64"]);
  assert.equal(several.exists, false);
});
