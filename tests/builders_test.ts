// Builder selection, builder output parsing, failing-step tracing, and running tools.
import assert from "node:assert/strict";
import { BuildahSteps } from "../plugins/buildah.ts";
import { platformTag, StepTracker } from "../plugins/docker.ts";
import { findSection } from "../src/build.ts";
import {
  type BuilderContext,
  type BuilderPlugin,
  defaultConfig,
  exec,
  identifySync,
  Image,
  planImage,
} from "../mod.ts";
import { buildOrder } from "../src/commands/build.ts";
import { selectBuilder } from "../src/select_builder.ts";
import { ImgtoolError, UsageError } from "../src/errors.ts";

const BUILDKIT_FAILURE = `#4 [stage-0 1/3] FROM 127.0.0.1:5000/python:3.11
#4 DONE 0.0s

#5 [stage-0 2/3] RUN --mount=type=cache,target=/var/cache/apt,id=imgtool-apt-cache,sharing=locked     apt-get update     && apt-get install -y nope
#5 0.512 Reading package lists...
#5 0.901 E: Unable to locate package nope
#5 ERROR: executor failed running [/bin/sh -c apt-get update && apt-get install -y nope]: exit code: 100
------
 > [stage-0 2/3] RUN ...:
------`;

Deno.test("StepTracker names the failing BuildKit step and keeps its output", () => {
  const tracker = new StepTracker();
  for (const line of BUILDKIT_FAILURE.split("\n")) tracker.take(line);
  assert.match(tracker.failedStep ?? "", /^RUN --mount=type=cache.*apt-get install -y nope$/);
  assert.match(tracker.failedOutput ?? "", /E: Unable to locate package nope/);
  assert.doesNotMatch(tracker.failedOutput ?? "", /FROM 127/);
});

Deno.test("StepTracker reports no failed step for a build that worked", () => {
  const tracker = new StepTracker();
  for (const line of ["#1 [1/2] FROM x", "#1 DONE 0.1s", "#2 [2/2] RUN true", "#2 DONE 0.2s"]) {
    tracker.take(line);
  }
  assert.equal(tracker.failedStep, undefined);
});

Deno.test("BuildahSteps keeps the last step and its output", () => {
  const steps = new BuildahSteps();
  for (
    const line of [
      "STEP 1/3: FROM base",
      "STEP 2/3: RUN apt-get install -y nope",
      "E: Unable to locate package nope",
      'error building at STEP "RUN apt-get install -y nope": exit status 100',
    ]
  ) steps.take(line);
  assert.equal(steps.step, "RUN apt-get install -y nope");
  assert.match(steps.output, /Unable to locate package nope/);
});

Deno.test("findSection traces a builder's step name back to the layer that rendered it", () => {
  const sections = [
    { index: 0, plugin: "base_image", method: "Image.fromBase", instructions: ["FROM debian"] },
    {
      index: 1,
      plugin: "apt",
      method: "withAptPackages",
      instructions: [
        "RUN --mount=type=cache,target=/var/cache/apt \\\n    apt-get update \\\n    && apt-get install -y nope",
      ],
    },
  ];
  const step =
    "RUN --mount=type=cache,target=/var/cache/apt     apt-get update     && apt-get install -y nope";
  assert.equal(findSection(step, sections)?.method, "withAptPackages");
  assert.equal(findSection("RUN something else entirely", sections), undefined);
});

Deno.test("platformTag gives each platform its own tag beside the image's", () => {
  assert.equal(
    platformTag("127.0.0.1:5000/a/b:0123", "linux/arm64"),
    "127.0.0.1:5000/a/b:0123-linux-arm64",
  );
});

function fakeBuilder(name: string, ok: boolean, local = true): BuilderPlugin {
  return {
    name,
    description: name,
    local,
    probe: () =>
      Promise.resolve(
        ok
          ? { ok: true, detail: "ready" }
          : { ok: false, reason: `${name} is missing`, hint: `install ${name}` },
      ),
    build: () => Promise.resolve(),
  };
}

const context: BuilderContext = {
  config: defaultConfig(),
  registry: { putIndex: () => Promise.reject(new Error("not used")) },
  exec,
};

Deno.test("selectBuilder with auto takes the first builder that can run", async () => {
  const chosen = await selectBuilder(
    [fakeBuilder("a", false), fakeBuilder("b", true)],
    "auto",
    context,
    {
      local: false,
    },
  );
  assert.equal(chosen.name, "b");
});

Deno.test("selectBuilder says what to install when no builder can run", async () => {
  const error = await selectBuilder(
    [fakeBuilder("a", false), fakeBuilder("b", false)],
    "auto",
    context,
    {
      local: false,
    },
  ).catch((e) => e);
  assert.ok(error instanceof ImgtoolError);
  assert.equal(error.exitCode, 1);
  assert.match(error.message, /a is missing[\s\S]*install a[\s\S]*b is missing[\s\S]*install b/);
});

Deno.test("selectBuilder rejects an unknown builder name as a usage error", async () => {
  const error = await selectBuilder([fakeBuilder("a", true)], "podman", context, { local: false })
    .catch((e) => e);
  assert.ok(error instanceof UsageError);
  assert.match(error.hint ?? "", /builders: a, auto/);
});

Deno.test("selectBuilder gives withLocalV2 images a local builder over a configured remote one", async () => {
  const builders = [fakeBuilder("remote", true, false), fakeBuilder("local", true, true)];
  assert.equal((await selectBuilder(builders, "remote", context, { local: true })).name, "local");
  assert.equal((await selectBuilder(builders, "remote", context, { local: false })).name, "remote");
});

Deno.test("exec streams each output line and keeps the tail", async () => {
  const lines: string[] = [];
  const result = await exec("sh", {
    args: ["-c", "echo one; echo two >&2; printf 'three'; exit 3"],
    onLine: (line) => lines.push(line),
  });
  assert.equal(result.code, 3);
  assert.deepEqual([...lines].sort(), ["one", "three", "two"]);
  assert.match(result.tail, /three/);
});

Deno.test("exec keeps lines whole across chunks, for LF, CRLF and CR, and a 16 MB line in one piece", async () => {
  // Written in small pieces with pauses, so that line breaks and a CRLF's halves fall in
  // different chunks of the pipe.
  const script = [
    "printf 'a'; sleep 0.05; printf 'b\\r'; sleep 0.05; printf '\\nc\\r'; sleep 0.05",
    "printf 'd\\n\\r\\n'; sleep 0.05; printf 'e'",
    // 16 MiB without a line break, then one.
    "head -c 16777216 /dev/zero | tr '\\0' x; printf '\\nend\\n'",
  ].join("; ");
  const lines: string[] = [];
  const result = await exec("sh", { args: ["-c", script], onLine: (line) => lines.push(line) });
  assert.equal(result.code, 0);
  assert.deepEqual(lines.slice(0, 4), ["ab", "c", "d", ""]);
  assert.equal(lines[4], `e${"x".repeat(16 * 1024 * 1024)}`);
  assert.equal(lines[5], "end");
  assert.equal(lines.length, 6);
});

Deno.test("exec stops the process when the signal aborts", async () => {
  const controller = new AbortController();
  const started = performance.now();
  const running = exec("sleep", { args: ["30"], signal: controller.signal });
  setTimeout(() => controller.abort(), 100);
  const result = await running;
  assert.equal(result.code, -1);
  assert.ok(performance.now() - started < 10_000);
});

Deno.test("exec throws NotFound for a missing program", async () => {
  await assert.rejects(() => exec("imgtool-no-such-program", { args: [] }), Deno.errors.NotFound);
});

Deno.test("buildOrder builds an image after the image of the spec it starts from", () => {
  const config = defaultConfig();
  const base = Image.fromBase("debian:bookworm").clone({ name: "base", registry: "r.example" })
    .withEnvVars({ A: "1" });
  const app = Image.fromBase(base.uri).clone({ name: "app" }).withEnvVars({ B: "2" });
  const other = Image.fromBase("debian:bookworm").clone({ name: "other" }).withEnvVars({ C: "3" });
  const plans = [app, other, base].map((image, i) => planImage(image, `i${i}`, config));
  const order = buildOrder(plans, (plan) => identifySync(plan).uri);
  assert.deepEqual(order.map((plan) => plan.info.name), ["base", "app", "other"]);
});
