/**
 * The bundle the binaries embed (`deno task bundle`) builds real images: a build with a
 * source folder, env vars and a pip package from the local index is pushed, removed from the
 * engine, pulled back and looked into; a second build is skipped after reading the tag's
 * manifest, and a third after one `HEAD` of the tag, the only request the registry's log shows
 * for it (that the `HEAD` goes on a connection of its own is `src/registry/direct_head_test.ts`'s
 * to show); the sources agree on the image's URI.
 *
 * @module
 */

import assert from "node:assert/strict";
import { bundleInto } from "../../scripts/bundle.ts";
import { bundledImgtool } from "../helpers.ts";
import {
  assertExit,
  docker,
  e2eTest,
  imgtool,
  inImage,
  makeProject,
  mustDocker,
  projectConfig,
  removeImages,
  RUN_ID,
} from "./harness.ts";
import { RegistryLog } from "./registry_log.ts";

e2eTest(
  "the bundle builds and pushes a real image, then skips it, later on one HEAD of the remembered tag",
  async (_t, facts) => {
    // Two levels below the repository, as dist/js is (scripts/bundle.ts says why).
    const bundle = await bundleInto(`dist/e2e-bundle-${Deno.pid}`);
    const registry = `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-bundle`;
    const dir = await makeProject({
      "imgtool.toml": projectConfig(facts, registry),
      "spec.ts": `import { Image } from "imgtool";
export default Image.fromDebianBase({ name: "bundled" })
  .withEnvVars({ E2E_RUN: ${JSON.stringify(RUN_ID)}, MODE: "bundled" })
  .withSourceFolder("./src", "/app/src")
  .withPipPackages(["imgtool-demo-b"], { indexUrl: ${JSON.stringify(facts.PACKAGE_INDEX)} })
  .withWorkdir("/app");
`,
      "src/main.py": 'print("hello from the bundle")\n',
    });
    const bundled = (args: string[]) =>
      bundledImgtool(bundle, args, { cwd: dir, env: { DOCKER_BUILDKIT: "1" } });
    let uri = "";
    try {
      const first = await bundled(["build", "--push", "spec.ts"]);
      assertExit(first, 0, "the bundle's first build");
      uri = first.stdout.trim().split("\n").at(-1) ?? "";
      assert.match(uri, /\/bundled:[0-9a-f]{32}$/);
      assert.match(first.stderr, /1 built, 0 skipped, 0 failed/);

      // Look inside what the registry serves, not what the build left in the engine.
      await removeImages(facts, [uri]);
      assert.notEqual((await docker(facts, ["image", "inspect", uri])).code, 0, "rmi failed");
      await mustDocker(facts, ["pull", "-q", uri]);
      const inside = await inImage(facts, uri, [
        "sh",
        "-c",
        'echo "$MODE"; pwd; python3 src/main.py; python3 -c "import imgtool_demo_b; print(imgtool_demo_b.describe())"',
      ]);
      assert.equal(
        inside,
        "bundled\n/app\nhello from the bundle\nimgtool-demo-b 2.0.0 using imgtool-demo-a 1.1.0\n",
      );

      // What the registry was asked about this run's own repository (no other client asks).
      const [, repository, tag] = /^[^/]+\/(.+):([0-9a-f]{32})$/.exec(uri) ?? [];
      const skippedBuild = async (what: string) => {
        const registryLog = await RegistryLog.from(facts, "registry");
        const again = await bundled(["build", "--push", "spec.ts"]);
        const asked = await registryLog.since();
        assertExit(again, 0, what);
        assert.match(again.stderr, /exists \(registry\), skipped/);
        assert.equal(again.stdout.trim().split("\n").at(-1), uri);
        return asked.filter((request) => request.path.startsWith(`/v2/${repository}/`))
          .map((request) => `${request.method} ${request.path} ${request.status}`);
      };
      // The first check of the tag reads its manifest (and config, for the platform) ...
      const second = await skippedBuild("the bundle's second build");
      assert.ok(second.includes(`GET /v2/${repository}/manifests/${tag} 200`), second.join("\n"));
      // ... and remembers it: the next check is one HEAD.
      assert.deepEqual(await skippedBuild("the bundle's third build"), [
        `HEAD /v2/${repository}/manifests/${tag} 200`,
      ]);

      const fromSources = await imgtool(dir, ["uri", "spec.ts"]);
      assertExit(fromSources, 0, "uri from the sources");
      assert.equal(fromSources.stdout.trim(), uri);
    } finally {
      if (uri) await removeImages(facts, [uri]);
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(bundle, { recursive: true });
    }
  },
);
