/**
 * End-to-end checks of the deploy gate and extra tags (issue 12, items 5 and 6), on the real
 * engine and registry:
 *
 * - `status` of a spec before its image is built says `missing` and exits 1;
 * - `build --push --tag latest --tag e2e-<run>` builds and pushes it, and both tags resolve
 *   in the registry to the digest of the content tag;
 * - `status` after says `exists` and exits 0;
 * - `status` against a registry that is not there says `unknown` with the reason, exits 1.
 *
 * Every imgtool run is bounded in time; the manifests pushed are deleted from the registry
 * (by digest, which removes every tag on them) and the images removed from the engine.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  assertExit,
  boundedImgtool,
  closedPort,
  e2eTest,
  type Facts,
  makeProject,
  projectConfig,
  removeImages,
  RUN_ID,
  timing,
} from "./harness.ts";

const ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

/** `registry/repository:tag` split into its parts. */
function parts(reference: string): { registry: string; repository: string; tag: string } {
  const match = /^([^/]+)\/(.+):([^:/]+)$/.exec(reference);
  assert.ok(match, `not a registry/repository:tag reference: ${reference}`);
  return { registry: match[1], repository: match[2], tag: match[3] };
}

/** The digest the registry names for `reference` (`HEAD`), or undefined when it lacks it. */
async function digestOf(reference: string): Promise<string | undefined> {
  const { registry, repository, tag } = parts(reference);
  const response = await fetch(`http://${registry}/v2/${repository}/manifests/${tag}`, {
    method: "HEAD",
    headers: { accept: ACCEPT },
    signal: AbortSignal.timeout(10_000),
  });
  await response.body?.cancel();
  if (response.status === 404) return undefined;
  assert.equal(response.status, 200, `HEAD ${reference}`);
  return response.headers.get("docker-content-digest") ?? undefined;
}

/** The SHA-256 of the bytes the registry serves for `reference` (`GET`): the digest itself. */
async function servedDigest(reference: string): Promise<string> {
  const { registry, repository, tag } = parts(reference);
  const response = await fetch(`http://${registry}/v2/${repository}/manifests/${tag}`, {
    headers: { accept: ACCEPT },
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(response.status, 200, `GET ${reference}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `sha256:${Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * Delete what `reference` names from the registry: an index's members, then the manifest or
 * index itself, by digest (which removes every tag on it).
 */
async function deletePushed(reference: string): Promise<void> {
  const { registry, repository, tag } = parts(reference);
  const base = `http://${registry}/v2/${repository}/manifests`;
  const response = await fetch(`${base}/${tag}`, {
    headers: { accept: ACCEPT },
    signal: AbortSignal.timeout(10_000),
  });
  if (response.status !== 200) {
    await response.body?.cancel();
    return;
  }
  const digest = response.headers.get("docker-content-digest");
  const json = await response.json() as { manifests?: { digest: string }[] };
  const members = (json.manifests ?? []).map((member) => member.digest);
  for (const target of [digest, ...members]) {
    if (!target) continue;
    const deleted = await fetch(`${base}/${target}`, {
      method: "DELETE",
      signal: AbortSignal.timeout(10_000),
    });
    await deleted.body?.cancel();
  }
}

function spec(facts: Facts): string {
  const q = JSON.stringify;
  return `import { Image } from "imgtool";

export default Image.fromBase(${q(facts.PYTHON_BASE)})
  .clone({ name: "status-tags" })
  .withEnvVars({ E2E_RUN: ${q(RUN_ID)} })
  .withCommands("echo gate > /gate.txt");
`;
}

e2eTest(
  "status is missing before a build and exists after; --tag latest and another tag resolve to the content tag's digest; an unreachable registry is unknown",
  async (t, facts) => {
    const registry = `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-status`;
    const dir = await makeProject({
      "imgtool.toml": projectConfig(facts, registry),
      "spec.ts": spec(facts),
    });
    const runTag = `e2e-${RUN_ID}`;
    const uriRun = await boundedImgtool(dir, ["uri", "spec.ts"]);
    assertExit(uriRun, 0, "uri");
    const uri = uriRun.stdout.trim();
    const repository = uri.slice(0, uri.lastIndexOf(":"));
    const extra = [`${repository}:latest`, `${repository}:${runTag}`];
    try {
      await t.step("before the build: missing, exit 1", async () => {
        assert.equal(await digestOf(uri), undefined, "a fresh run's tag is not in the registry");
        const before = await boundedImgtool(dir, ["status", "spec.ts"]);
        assertExit(before, 1, "status before the build");
        assert.match(before.stdout, new RegExp(`^missing {2}linux/amd64 {2}${uri}$`, "m"));
        assert.match(before.stdout, /^not ready: 1 missing, 0 unknown, 0 exist$/m);
      });

      await t.step("build --push --tag: both tags name the content tag's digest", async () => {
        const started = performance.now();
        const built = await boundedImgtool(dir, [
          "build",
          "spec.ts",
          "--push",
          "--builder",
          "docker",
          "--tag",
          "latest",
          "--tag",
          runTag,
          "--json",
        ]);
        timing("status/tags: build --push --tag", started);
        assertExit(built, 0, "build --push --tag");
        const [image] = JSON.parse(built.stdout).images;
        assert.equal(image.status, "built");
        assert.deepEqual(image.tags, extra);
        const content = await digestOf(uri);
        assert.ok(content, "the content tag was pushed");
        // The registry's own digest agrees with the bytes it serves.
        assert.equal(await servedDigest(uri), content);
        for (const reference of extra) {
          assert.equal(await digestOf(reference), content, `${reference} (HEAD)`);
          assert.equal(await servedDigest(reference), content, `${reference} (GET)`);
        }
      });

      await t.step("after the build: exists, exit 0", async () => {
        const after = await boundedImgtool(dir, ["status", "spec.ts", "--json"]);
        assertExit(after, 0, "status after the build");
        assert.deepEqual(JSON.parse(after.stdout), {
          ok: true,
          images: [{
            image: "default",
            uri,
            platforms: [{ platform: "linux/amd64", status: "exists" }],
          }],
        });
      });

      await t.step("a build that finds the image moves the tags without building", async () => {
        const again = await boundedImgtool(dir, [
          "build",
          "spec.ts",
          "--push",
          "--tag",
          "latest",
          "--json",
        ]);
        assertExit(again, 0, "second build --push --tag");
        const [image] = JSON.parse(again.stdout).images;
        assert.equal(image.status, "skipped");
        assert.deepEqual(image.tags, [extra[0]]);
      });

      await t.step("a registry that is not there: unknown with the reason, exit 1", async () => {
        const closed = `127.0.0.1:${closedPort()}`;
        const started = performance.now();
        const gone = await boundedImgtool(dir, ["status", "spec.ts", "--registry", closed]);
        timing("status/tags: status against a closed port", started);
        assertExit(gone, 1, "status against a closed port");
        const escaped = closed.replaceAll(".", "\\.");
        assert.match(gone.stdout, new RegExp(`^unknown {2}linux/amd64 {2}${escaped}/`, "m"));
        assert.match(
          gone.stdout,
          new RegExp(`^ {2}default: registry ${escaped} is unreachable`, "m"),
        );
        assert.match(gone.stdout, /^ {2}hint: /m);
        assert.doesNotMatch(gone.stdout, /^exists/m, "never taken as existing");
      });
    } finally {
      await deletePushed(uri);
      for (const reference of extra) await deletePushed(reference);
      await removeImages(facts, [uri, ...extra]);
      await Deno.remove(dir, { recursive: true });
    }
  },
);
