/**
 * End-to-end failures: a failing build step and an unreachable registry each end with exit
 * status 1 and say what went wrong and where.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  assertExit,
  closedPort,
  docker,
  e2eTest,
  imgtool,
  makeProject,
  manifestStatus,
  must,
  projectConfig,
  removeImages,
  run,
  RUN_ID,
} from "./harness.ts";

const MISSING_PACKAGE = "imgtool-e2e-no-such-package";

/** buildah working containers made from an image whose env holds `marker`. */
async function buildahContainers(marker: string): Promise<string[]> {
  const ids = await must("buildah", ["containers", "--all", "--quiet", "--notruncate"]);
  const found: string[] = [];
  for (const id of ids.split("\n").filter(Boolean)) {
    const env = await run("buildah", [
      "inspect",
      "--type",
      "container",
      "--format",
      "{{.OCIv1.Config.Env}}",
      id,
    ]);
    if (env.stdout.includes(marker)) found.push(id);
  }
  return found;
}

for (const builder of ["docker", "buildah"] as const) {
  e2eTest(
    `${builder}: a failing step exits 1 naming the image, layer and method, with its output`,
    async (t, facts) => {
      const registry = `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-failures`;
      const marker = `E2E_RUN=${RUN_ID}-${builder}-failure`;
      const spec = `import { Image } from "imgtool";

export const broken = Image.fromBase(${JSON.stringify(facts.PYTHON_BASE)})
  .clone({ name: "broken" })
  .withEnvVars({ E2E_RUN: ${JSON.stringify(marker.slice("E2E_RUN=".length))} })
  .withAptPackages(${JSON.stringify(MISSING_PACKAGE)});
`;
      const dir = await makeProject({
        "imgtool.toml": projectConfig(facts, registry),
        "spec.ts": spec,
      });
      let uri = "";
      try {
        const uris = await imgtool(dir, ["uri", "spec.ts"]);
        assertExit(uris, 0, "uri");
        uri = uris.stdout.trim();
        // -q: no progress, so the step's output can only come from the error report.
        const failed = await imgtool(dir, [
          "build",
          "spec.ts",
          "--push",
          "--builder",
          builder,
          "-q",
        ]);
        assertExit(failed, 1, "build of an image with a failing step");

        await t.step("the error names the image, the layer, the method and the spec line", () => {
          const error = failed.stderr.split("\n").find((line) => line.startsWith("error: ")) ??
            "";
          assert.match(error, /image "broken"/, failed.stderr);
          assert.match(error, /layer 2 \(withAptPackages, plugin apt\)/, failed.stderr);
          assert.match(error, /spec\.ts:6\b/, failed.stderr);
        });

        await t.step("the output of the failing step is shown", () => {
          const start = failed.stderr.indexOf("--- output of the failing step ---");
          assert.ok(start >= 0, failed.stderr);
          const output = failed.stderr.slice(start, failed.stderr.indexOf("\n---\n", start));
          assert.match(output, new RegExp(`Unable to locate package ${MISSING_PACKAGE}`));
        });

        await t.step("nothing was pushed", async () => {
          assert.equal(await manifestStatus(uri), 404);
        });

        if (builder === "buildah") {
          await t.step("the failed step's working container was removed", async () => {
            assert.deepEqual(await buildahContainers(marker), []);
          });
        }
      } finally {
        if (uri) await removeImages(facts, [uri]);
        if (builder === "buildah") {
          for (const id of await buildahContainers(marker)) await run("buildah", ["rm", id]);
        }
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}

e2eTest(
  "an unreachable registry with --push exits 1 with a clear message and builds nothing",
  async (t, facts) => {
    const port = closedPort();
    const registry = `127.0.0.1:${port}/imgtool-e2e-${RUN_ID}`;
    const spec = `import { Image } from "imgtool";

export default Image.fromBase(${JSON.stringify(facts.PYTHON_BASE)})
  .clone({ name: "unreachable" })
  .withCommands("echo never-built > /never")
  .withEnvVars({ E2E_RUN: ${JSON.stringify(RUN_ID)} });
`;
    const dir = await makeProject({
      "imgtool.toml": projectConfig(facts, `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-unused`),
      "spec.ts": spec,
    });
    try {
      const uris = await imgtool(dir, ["uri", "spec.ts", "--registry", registry]);
      assertExit(uris, 0, "uri");
      const uri = uris.stdout.trim();
      assert.ok(uri.startsWith(`${registry}/unreachable:`), uri);
      const started = performance.now();
      const result = await imgtool(dir, [
        "build",
        "spec.ts",
        "--push",
        "--builder",
        "docker",
        "--registry",
        registry,
      ]);
      const seconds = (performance.now() - started) / 1000;
      assertExit(result, 1, "build --push to an unreachable registry");

      await t.step("the message names the registry and says it is unreachable", () => {
        const error = result.stderr.split("\n").find((line) => line.startsWith("error: ")) ?? "";
        assert.match(error, new RegExp(`registry 127\\.0\\.0\\.1:${port} is unreachable`));
        assert.match(result.stderr, /^hint: /m);
        assert.ok(seconds < 60, `it took ${seconds}s to give up`);
      });

      await t.step("nothing was built", async () => {
        assert.doesNotMatch(result.stderr, /building for/);
        assert.notEqual((await docker(facts, ["image", "inspect", uri])).code, 0);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
