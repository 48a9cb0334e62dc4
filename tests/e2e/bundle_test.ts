/**
 * The bundle the binaries embed (`deno task bundle`) builds real images: a build with a
 * source folder, env vars and a pip package from the local index is pushed, pulled back and
 * looked into; a second build is skipped, confirmed by one direct `HEAD`; the sources agree
 * on the image's URI.
 *
 * @module
 */

import assert from "node:assert/strict";
import { bundleInto } from "../../scripts/bundle.ts";
import { bundledImgtool } from "../helpers.ts";
import {
  assertExit,
  e2eTest,
  imgtool,
  inImage,
  makeProject,
  projectConfig,
  removeImages,
  RUN_ID,
} from "./harness.ts";

e2eTest("the bundle builds and pushes a real image, then skips it", async (_t, facts) => {
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

    const inside = await inImage(facts, uri, [
      "sh",
      "-c",
      'echo "$MODE"; pwd; python3 src/main.py; python3 -c "import imgtool_demo_b; print(imgtool_demo_b.describe())"',
    ]);
    assert.equal(
      inside,
      "bundled\n/app\nhello from the bundle\nimgtool-demo-b 2.0.0 using imgtool-demo-a 1.1.0\n",
    );

    const second = await bundled(["build", "--push", "spec.ts"]);
    assertExit(second, 0, "the bundle's second build");
    assert.match(second.stderr, /exists \(registry\), skipped/);
    assert.equal(second.stdout.trim().split("\n").at(-1), uri);

    const fromSources = await imgtool(dir, ["uri", "spec.ts"]);
    assertExit(fromSources, 0, "uri from the sources");
    assert.equal(fromSources.stdout.trim(), uri);
  } finally {
    if (uri) await removeImages(facts, [uri]);
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(bundle, { recursive: true });
  }
});
