/**
 * End-to-end pushes to the registry that requires a login (htpasswd on 127.0.0.1:5001):
 * credentials from a Docker config.json (`DOCKER_CONFIG`), and from the image's
 * `registrySecret`. The base image comes from that registry too, so the build pulls with the
 * same credentials: the registry's access log shows the engine reading the base with them,
 * where an anonymous read is refused.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  assertExit,
  e2eTest,
  type Facts,
  imgtool,
  jsonImages,
  makeProject,
  manifestStatus,
  projectConfig,
  removeImages,
  RUN_ID,
} from "./harness.ts";
import { type LoggedRequest, RegistryLog } from "./registry_log.ts";

const SECRET_VAR = "IMGTOOL_E2E_REGISTRY_CREDENTIALS";

function authSpec(facts: Facts, name: string, registrySecret?: string): string {
  return `import { Image } from "imgtool";

export default Image.fromBase(${JSON.stringify(facts.AUTH_PYTHON_BASE)})
  .clone({ name: ${JSON.stringify(name)}${
    registrySecret ? `, registrySecret: ${JSON.stringify(registrySecret)}` : ""
  } })
  .withCommands("echo pushed-with-credentials > /auth")
  .withEnvVars({ E2E_RUN: ${JSON.stringify(RUN_ID)} });
`;
}

/** Docker config folders: `docker-config` logs in to the auth registry; `docker-config-empty`
 * does not. */
function dockerConfigs(facts: Facts): Record<string, string> {
  const auth = btoa(`${facts.AUTH_USER}:${facts.AUTH_PASSWORD}`);
  return {
    "docker-config/config.json": JSON.stringify({ auths: { [facts.AUTH_REGISTRY]: { auth } } }),
    "docker-config-empty/config.json": JSON.stringify({ auths: {} }),
  };
}

/**
 * Assert that the builder read the base image from the auth registry with credentials: the
 * registry answered its manifest requests (`requests`, logged during the build) with 200,
 * which it gives only to a login, and refuses the same manifest to an anonymous client.
 */
async function assertBasePulledWithCredentials(facts: Facts, requests: LoggedRequest[]) {
  const [, repository, tag] = /^[^/]+\/(.+):([^:/]+)$/.exec(facts.AUTH_PYTHON_BASE) ?? [];
  assert.ok(tag, `not a repository:tag reference: ${facts.AUTH_PYTHON_BASE}`);
  assert.equal(await manifestStatus(facts.AUTH_PYTHON_BASE), 401, "anonymous read of the base");
  const byBuilder = requests.filter((request) =>
    request.path.startsWith(`/v2/${repository}/manifests/`) && request.userAgent !== "imgtool"
  );
  assert.ok(
    byBuilder.some((request) => request.status === 200),
    `no credentialed read of ${facts.AUTH_PYTHON_BASE} during the build: ${
      JSON.stringify(byBuilder)
    }`,
  );
}

function assertNoPassword(facts: Facts, output: string): void {
  const basic = btoa(`${facts.AUTH_USER}:${facts.AUTH_PASSWORD}`);
  assert.ok(!output.includes(facts.AUTH_PASSWORD), "the password is in imgtool's output");
  assert.ok(!output.includes(basic), "the encoded credentials are in imgtool's output");
}

e2eTest(
  "auth registry: credentials from DOCKER_CONFIG serve the check, the pull and the push",
  async (t, facts) => {
    const registry = `${facts.AUTH_REGISTRY}/imgtool-e2e-${RUN_ID}`;
    const dir = await makeProject({
      "imgtool.toml": projectConfig(facts, registry),
      "spec.ts": authSpec(facts, "auth-docker-config"),
      ...dockerConfigs(facts),
    });
    const login = { DOCKER_CONFIG: join(dir, "docker-config") };
    const anonymous = { DOCKER_CONFIG: join(dir, "docker-config-empty") };
    const flags = ["--push", "--builder", "docker", "--json"];
    let uri = "";
    try {
      await t.step("without credentials the check fails with exit 1 and says so", async () => {
        const refused = await imgtool(dir, ["build", "spec.ts", ...flags], anonymous);
        assertExit(refused, 1, "build --push without credentials");
        const [image] = jsonImages(refused);
        assert.equal(image.status, "failed");
        assert.match(image.reason ?? "", /401|unauthori[sz]ed|credentials|denied/i);
        assert.match(image.reason ?? "", new RegExp(facts.AUTH_REGISTRY.replaceAll(".", "\\.")));
      });

      const authLog = await RegistryLog.from(facts, "auth-registry");
      const built = await imgtool(dir, ["build", "spec.ts", ...flags], login);
      const duringBuild = await authLog.since();
      assertExit(built, 0, "build --push with DOCKER_CONFIG credentials");
      const [image] = jsonImages(built);
      assert.equal(image.status, "built", JSON.stringify(image));
      uri = image.uri;

      await t.step("the engine pulled the base image with the credentials", async () => {
        await assertBasePulledWithCredentials(facts, duringBuild);
      });

      await t.step("the image is in the auth registry (and not readable anonymously)", async () => {
        assert.equal(await manifestStatus(uri, `${facts.AUTH_USER}:${facts.AUTH_PASSWORD}`), 200);
        assert.equal(await manifestStatus(uri), 401);
      });

      await t.step(
        "the existence check uses the credentials: a second build is skipped",
        async () => {
          const again = await imgtool(dir, ["build", "spec.ts", ...flags], login);
          assertExit(again, 0, "second build --push");
          const [second] = jsonImages(again);
          assert.equal(second.status, "skipped", JSON.stringify(second));
          assertNoPassword(facts, again.stdout + again.stderr + built.stdout + built.stderr);
        },
      );
    } finally {
      if (uri) await removeImages(facts, [uri]);
      await Deno.remove(dir, { recursive: true });
    }
  },
);

e2eTest(
  "auth registry: an image's registrySecret serves the check, the pull and the push",
  async (t, facts) => {
    const registry = `${facts.AUTH_REGISTRY}/imgtool-e2e-${RUN_ID}`;
    const dir = await makeProject({
      "imgtool.toml": projectConfig(facts, registry),
      "spec.ts": authSpec(facts, "auth-registry-secret", SECRET_VAR),
      ...dockerConfigs(facts),
    });
    // No credentials in Docker's config: only the secret can open the registry.
    const env = {
      DOCKER_CONFIG: join(dir, "docker-config-empty"),
      [SECRET_VAR]: `${facts.AUTH_USER}:${facts.AUTH_PASSWORD}`,
    };
    const flags = ["--push", "--builder", "docker"];
    let uri = "";
    try {
      const authLog = await RegistryLog.from(facts, "auth-registry");
      const built = await imgtool(dir, ["build", "spec.ts", ...flags], env);
      const duringBuild = await authLog.since();
      assertExit(built, 0, "build --push with a registry secret");
      uri = built.stdout.trim().split("\n").pop() ?? "";
      assert.match(uri, /\/auth-registry-secret:[0-9a-f]{32}$/);

      await t.step("the engine pulled the base image with the secret's credentials", async () => {
        await assertBasePulledWithCredentials(facts, duringBuild);
      });

      await t.step("the image is in the auth registry", async () => {
        assert.equal(await manifestStatus(uri, `${facts.AUTH_USER}:${facts.AUTH_PASSWORD}`), 200);
      });

      await t.step("imgtool's output (the whole build log) holds no credentials", () => {
        assertNoPassword(facts, built.stdout + built.stderr);
      });

      await t.step("a second build is skipped: the check used the secret", async () => {
        const again = await imgtool(dir, ["build", "spec.ts", ...flags, "--json"], env);
        assertExit(again, 0, "second build --push");
        const [second] = jsonImages(again);
        assert.equal(second.status, "skipped", JSON.stringify(second));
      });
    } finally {
      if (uri) await removeImages(facts, [uri]);
      await Deno.remove(dir, { recursive: true });
    }
  },
);
