// The build stage with a recording builder: context and secrets handed over as files,
// values masked in output, failures traced to the layer, temporary files always removed.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import {
  type BuilderContext,
  BuildError,
  type BuildRequest,
  defaultConfig,
  exec,
  Image,
  planImage,
} from "../mod.ts";
import { buildImage } from "../src/build.ts";
import { identify } from "../src/identify.ts";

const context: BuilderContext = {
  config: defaultConfig(),
  registry: { putIndex: () => Promise.reject(new Error("not used")) },
  exec,
};

function options(output: string[] = []) {
  return {
    push: false,
    insecureRegistry: false,
    signal: new AbortController().signal,
    output: (line: string) => output.push(line),
  };
}

Deno.test("buildImage hands the builder a context with the Dockerfile and secrets as files, then removes both", async () => {
  const value = `s3cr3t-${crypto.randomUUID()}`;
  Deno.env.set("IMGTOOL_TEST_TOKEN", value);
  try {
    const image = Image.fromBase("debian:bookworm")
      .withCommands("echo $IMGTOOL_TEST_TOKEN", { secretMounts: "IMGTOOL_TEST_TOKEN" })
      .withEnvVars({ MODE: "test" });
    const plan = planImage(image, "default", defaultConfig());
    let seen: BuildRequest | undefined;
    let secretText = "";
    let secretMode = 0;
    let dockerfile = "";
    const output: string[] = [];
    await buildImage(
      plan,
      await identify(plan),
      {
        name: "recording",
        description: "records the request",
        local: true,
        probe: () => Promise.resolve({ ok: true, detail: "" }),
        build(request) {
          seen = request;
          dockerfile = Deno.readTextFileSync(`${request.contextDir}/Dockerfile`);
          secretText = Deno.readTextFileSync(request.secrets[0].file);
          secretMode = (Deno.statSync(request.secrets[0].file).mode ?? 0) & 0o777;
          request.output(`the step printed ${value}`);
          return Promise.resolve();
        },
      },
      context,
      options(output),
    );
    assert.ok(seen);
    assert.equal(secretText, value);
    assert.equal(secretMode, 0o600);
    assert.match(dockerfile, /--mount=type=secret,id=IMGTOOL_TEST_TOKEN/);
    assert.ok(!dockerfile.includes(value), "the Dockerfile holds no secret value");
    assert.deepEqual(output, ["the step printed ***"]);
    assert.ok(!existsSync(seen.contextDir), "the context folder is removed");
    assert.ok(!existsSync(seen.secrets[0].file), "the secret file is removed");
  } finally {
    Deno.env.delete("IMGTOOL_TEST_TOKEN");
  }
});

Deno.test("buildImage names the layer, method and spec line of a failing step, and cleans up", async () => {
  const image = Image.fromBase("debian:bookworm").withAptPackages(["nope"]);
  const plan = planImage(image, "default", defaultConfig());
  let contextDir = "";
  const error = await buildImage(
    plan,
    await identify(plan),
    {
      name: "failing",
      description: "fails the apt step",
      local: true,
      probe: () => Promise.resolve({ ok: true, detail: "" }),
      build(request) {
        contextDir = request.contextDir;
        const step = Deno.readTextFileSync(`${request.contextDir}/Dockerfile`).split("\n")
          .find((line) => line.startsWith("RUN")) ?? "";
        return Promise.reject(
          new BuildError("step failed", { step, output: "E: Unable to locate package nope" }),
        );
      },
    },
    context,
    options(),
  ).catch((e) => e);
  assert.ok(error instanceof BuildError);
  assert.match(
    error.message,
    /image "default", layer 1 \(withAptPackages, plugin apt\) at .*build_stage_test\.ts:\d+/,
  );
  assert.equal(error.output, "E: Unable to locate package nope");
  assert.ok(contextDir !== "" && !existsSync(contextDir));
});
