/**
 * End-to-end check of a base image that runs as a non-root user (issue 10 item 4): the
 * environment's `NONROOT_BASE` runs as `app` and has a venv of `app`'s on PATH. On it, an apt
 * layer and a pip layer (which need root) run as root, a command runs as `app` and reads a
 * secret, copied files belong to `app`, and the image runs as `app` again: all seen in the
 * image as the registry serves it.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  assertExit,
  e2eTest,
  type Facts,
  imgtool,
  inImage,
  jsonImages,
  makeProject,
  mustDocker,
  projectConfig,
  removeImages,
  RUN_ID,
  sha256,
} from "./harness.ts";

const TOKEN_VAR = "E2E_NONROOT_TOKEN";

function nonRootSpec(facts: Facts): string {
  const q = JSON.stringify;
  return `import { Image } from "imgtool";

export default Image.fromBase(${q(facts.NONROOT_BASE)})
  .clone({ name: "nonroot" })
  // Unique per run: every later layer is built for real, not taken from a builder's cache.
  .withEnvVars({ E2E_RUN: ${q(RUN_ID)} })
  .withAptPackages("hello")
  .withPipPackages("imgtool-demo-a==1.0.0", { indexUrl: ${q(facts.PACKAGE_INDEX)} })
  .withSourceFile("./note.txt", "/home/app/note.txt")
  .withSourceFolder("./data", "/home/app/data")
  // A second apt step: under buildah, a step's cache locks must not outlive it.
  .withAptPackages("tree")
  .withCommands([
    "id -un > /home/app/who",
    ${q(`sha256sum < /run/secrets/${TOKEN_VAR} | cut -d " " -f 1 > /home/app/token.sha256`)},
  ], { secretMounts: ${q(TOKEN_VAR)} });
`;
}

for (const builder of ["docker", "buildah"] as const) {
  e2eTest(
    `${builder}: on a base that runs as a non-root user, root steps run as root, commands and files belong to the user, and the image runs as it`,
    async (t, facts) => {
      const token = `nonroot-token-${RUN_ID}-${builder}`;
      const dir = await makeProject({
        "imgtool.toml": projectConfig(facts, `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-${builder}`),
        "spec.ts": nonRootSpec(facts),
        "note.txt": "a note\n",
        "data/x.txt": "x\n",
        "data/sub/y.txt": "y\n",
      });
      let uri = "";
      try {
        const built = await imgtool(
          dir,
          ["build", "spec.ts", "--push", "--builder", builder, "--json"],
          { [TOKEN_VAR]: token },
        );
        assertExit(built, 0, `${builder}: build --push on the non-root base`);
        const [image] = jsonImages(built);
        assert.equal(image.status, "built", JSON.stringify(image));
        uri = image.uri;
        await removeImages(facts, [uri]);
        await mustDocker(facts, ["pull", "-q", uri]);

        await t.step("the image runs as the base's user", async () => {
          const user = await mustDocker(facts, ["image", "inspect", "-f", "{{.Config.User}}", uri]);
          assert.equal(user.trim(), "app");
          assert.equal((await inImage(facts, uri, ["id", "-un"])).trim(), "app");
        });

        await t.step(
          "the apt and pip layers ran as root and their results work as app",
          async () => {
            assert.match(await inImage(facts, uri, ["hello"]), /Hello, world!/);
            assert.match(await inImage(facts, uri, ["tree", "--version"]), /tree v/);
            const python = await inImage(facts, uri, [
              "python3",
              "-c",
              "import sys, imgtool_demo_a; print(sys.prefix); print(imgtool_demo_a.__file__)",
            ]);
            const [prefix, module] = python.trim().split("\n");
            // The base's own environment, the one python3 on PATH is: not a second one.
            assert.equal(prefix, "/home/app/venv");
            assert.ok(module.startsWith("/home/app/venv/"), module);
          },
        );

        await t.step("a command ran as the base's user and read the secret", async () => {
          assert.equal((await inImage(facts, uri, ["cat", "/home/app/who"])).trim(), "app");
          const seen = (await inImage(facts, uri, ["cat", "/home/app/token.sha256"])).trim();
          assert.equal(seen, sha256(token));
          const config = await mustDocker(facts, ["image", "inspect", uri]);
          assert.ok(!config.includes(token), "the secret's value is in the image config");
        });

        await t.step("copied files and folders belong to the base's user", async () => {
          const owners = await inImage(facts, uri, [
            "stat",
            "-c",
            "%U %n",
            "/home/app/note.txt",
            "/home/app/data",
            "/home/app/data/x.txt",
            "/home/app/data/sub/y.txt",
          ]);
          for (const line of owners.trim().split("\n")) assert.match(line, /^app /, line);
        });
      } finally {
        if (uri) await removeImages(facts, [uri]);
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}
