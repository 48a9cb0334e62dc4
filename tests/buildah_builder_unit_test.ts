// The command lines the buildah builder runs (plugins/buildah.ts), through the real build
// stage (src/build.ts) with only `buildah` replaced by a recording stand-in: secrets as files,
// platforms and manifest lists, cleanup of failed steps and old lists, pushing, TLS.

import assert from "node:assert/strict";
import buildah from "../plugins/buildah.ts";
import {
  type BuilderContext,
  BuildError,
  defaultConfig,
  identify,
  Image,
  planImage,
  type Platform,
} from "../mod.ts";
import { buildImage } from "../src/build.ts";
import {
  flagValues,
  optionFields,
  recordingExec,
  type ToolAnswer,
  type ToolCall,
} from "./recording_exec.ts";

/** Run the build stage with the buildah builder; `buildah` is a recording stand-in. */
async function buildWithBuildah(
  image: Image,
  options: {
    platforms?: Platform[];
    push?: boolean;
    insecureRegistry?: boolean;
    onCommand?: (call: ToolCall) => ToolAnswer | void;
  } = {},
) {
  const config = defaultConfig();
  const plan = planImage(image, "app", config, { platforms: options.platforms });
  const identity = await identify(plan);
  const runner = recordingExec((call) => options.onCommand?.(call));
  const context: BuilderContext = {
    config,
    registry: { putIndex: () => Promise.reject(new Error("buildah pushes its own lists")) },
    exec: runner.exec,
  };
  const error = await buildImage(plan, identity, buildah, context, {
    push: options.push ?? false,
    insecureRegistry: options.insecureRegistry ?? false,
    signal: new AbortController().signal,
    output: () => {},
  }).then(() => undefined, (error: unknown) => error);
  for (const call of runner.calls) assert.equal(call.command, "buildah");
  // Before rendering, the base image's config is read from buildah's store (which user it
  // runs as: tests/base_config_test.ts); the calls below are the build's own.
  const [inspect, ...calls] = runner.calls;
  assert.deepEqual(inspect.args, [
    "inspect",
    "--type",
    "image",
    "--format",
    "{{json .OCIv1.Config}}",
    plan.baseReference,
  ]);
  return { uri: identity.uri, calls, error };
}

const plainImage = () =>
  Image.fromBase("debian:bookworm").clone({ name: "app", registry: "registry.example/team" })
    .withEnvVars({ A: "1" });

Deno.test("each secret reaches buildah as --secret id=ID,src=FILE,type=file holding its value, never as a value", async () => {
  const value = `buildah-${crypto.randomUUID()}`;
  Deno.env.set("UNIT_BUILDAH_TOKEN", value);
  try {
    const image = plainImage().withCommands("true", { secretMounts: "UNIT_BUILDAH_TOKEN" });
    const handed: Record<string, string>[] = [];
    let contents: string[] = [];
    let mounted: string[] = [];
    const { calls, error } = await buildWithBuildah(image, {
      onCommand(call) {
        if (call.args[0] !== "bud") return;
        const dockerfile = Deno.readTextFileSync(flagValues(call.args, "--file")[0]);
        mounted = [...dockerfile.matchAll(/--mount=type=secret,id=([A-Za-z0-9_]+)/g)].map((m) =>
          m[1]
        );
        handed.push(...flagValues(call.args, "--secret").map(optionFields));
        contents = handed.map((fields) => Deno.readTextFileSync(fields.src));
      },
    });
    assert.equal(error, undefined);
    assert.deepEqual(handed.map((fields) => fields.id), mounted);
    // Without type=file, buildah reads an environment variable named like the id instead.
    assert.deepEqual(handed.map((fields) => fields.type), ["file"]);
    assert.deepEqual(contents, [value]);
    for (const call of calls) {
      assert.ok(!JSON.stringify([call.args, call.env]).includes(value), call.args.join(" "));
    }
  } finally {
    Deno.env.delete("UNIT_BUILDAH_TOKEN");
  }
});

Deno.test("one platform: bud removes failed steps' containers (--force-rm), tags the image, and push sends it to the registry", async () => {
  const { uri, calls, error } = await buildWithBuildah(plainImage(), {
    platforms: ["linux/arm64"],
    push: true,
  });
  assert.equal(error, undefined);
  const [bud, push, ...rest] = calls;
  assert.deepEqual(rest, []);
  assert.equal(bud.args[0], "bud");
  assert.ok(bud.args.includes("--force-rm"), "a failing step leaves no container behind");
  // buildah's layer cache ignores changed bind-mounted files: a stale step would be reused.
  assert.ok(!bud.args.includes("--layers"), "no --layers");
  assert.ok(bud.args.includes("--no-cache"), "every step runs");
  assert.deepEqual(flagValues(bud.args, "--platform"), ["linux/arm64"]);
  assert.deepEqual(flagValues(bud.args, "--tag"), [uri]);
  assert.deepEqual(flagValues(bud.args, "--manifest"), []);
  assert.deepEqual(flagValues(bud.args, "--tls-verify"), ["true"]);
  const contextDir = bud.args.at(-1)!;
  assert.deepEqual(flagValues(bud.args, "--file"), [`${contextDir}/Dockerfile`]);
  assert.deepEqual(push.args, ["push", "--tls-verify=true", uri, `docker://${uri}`]);
});

Deno.test("several platforms: an old manifest list is removed first, all build into one list, pushed whole", async () => {
  const { uri, calls, error } = await buildWithBuildah(plainImage(), {
    platforms: ["linux/arm64", "linux/amd64"],
    push: true,
  });
  assert.equal(error, undefined);
  const [remove, bud, push, ...rest] = calls;
  assert.deepEqual(rest, []);
  assert.deepEqual(remove.args, ["manifest", "rm", uri]);
  assert.deepEqual(flagValues(bud.args, "--platform"), ["linux/amd64,linux/arm64"]);
  assert.deepEqual(flagValues(bud.args, "--manifest"), [uri]);
  assert.deepEqual(flagValues(bud.args, "--tag"), []);
  assert.deepEqual(push.args, [
    "manifest",
    "push",
    "--all",
    "--tls-verify=true",
    uri,
    `docker://${uri}`,
  ]);
});

Deno.test("a registry over plain HTTP is reached with --tls-verify=false, by the build and the push", async () => {
  const { calls, error } = await buildWithBuildah(plainImage(), {
    push: true,
    insecureRegistry: true,
  });
  assert.equal(error, undefined);
  assert.equal(calls.length, 2);
  for (const call of calls) assert.deepEqual(flagValues(call.args, "--tls-verify"), ["false"]);
});

Deno.test("without --push nothing is pushed", async () => {
  const { calls, error } = await buildWithBuildah(plainImage(), {
    platforms: ["linux/amd64", "linux/arm64"],
  });
  assert.equal(error, undefined);
  assert.deepEqual(calls.map((call) => call.args.slice(0, 2).join(" ")), [
    "manifest rm",
    "bud --no-cache",
  ]);
});

Deno.test("build steps use the configured network", async () => {
  const { calls } = await buildWithBuildah(plainImage());
  assert.deepEqual(flagValues(calls[0].args, "--network"), [defaultConfig().network]);
});

Deno.test("a failed build stops before pushing and names the failing step", async () => {
  const { calls, error } = await buildWithBuildah(plainImage().withCommands("exit 3"), {
    push: true,
    onCommand: (call) =>
      call.args[0] === "bud"
        ? { code: 1, lines: ["STEP 3/3: RUN exit 3", 'error building at STEP "RUN exit 3"'] }
        : undefined,
  });
  assert.ok(error instanceof BuildError, String(error));
  assert.match(error.message, /step failed: RUN exit 3/);
  assert.deepEqual(calls.map((call) => call.args[0]), ["bud"]);
});

Deno.test("the local image check says exists only for an image of the one requested platform", async () => {
  const ask = async (answer: ToolAnswer, platforms: Platform[]) => {
    const runner = recordingExec((call) => call.args[0] === "inspect" ? answer : undefined);
    const context: BuilderContext = {
      config: defaultConfig(),
      registry: { putIndex: () => Promise.reject(new Error("not used")) },
      exec: runner.exec,
    };
    return await buildah.exists!("registry.example/app:1", platforms, context);
  };
  assert.equal(await ask({ code: 125, lines: ["image not known"] }, ["linux/amd64"]), false);
  assert.equal(await ask({ stdout: "linux/arm64\n" }, ["linux/amd64"]), false);
  assert.equal(await ask({ stdout: "linux/amd64\n" }, ["linux/amd64"]), true);
  assert.equal(await ask({ stdout: "linux/amd64\n" }, ["linux/amd64", "linux/arm64"]), false);
});
