/**
 * End-to-end check of the provenance record and `imgtool explain` (issue 12, items 3 and 4)
 * on the real engine and registry (Distribution 2.8, which has no referrers API):
 *
 * - `build --push` of a small spec pushes the image and, beside it, its record: an OCI
 *   artifact whose subject is the image, listed in the index under the referrers tag
 *   schema's tag (`sha256-<hex>`); read over plain HTTP, the record names the image and its
 *   tag, and holds no path of this machine;
 * - after editing a file, adding one and changing a pip option, `explain --against URI` from
 *   a fresh cache folder (nothing of the build's machine state) names each change with its
 *   layer, method and spec line, and so does `explain` with the build's cache (the URI the
 *   build remembered);
 * - `explain --against` an image without a record exits 1 and says so.
 *
 * Every imgtool run is bounded in time; what the test pushed is deleted from the registry
 * (by digest: the image, its record and the referrers index), the image removed from the
 * engine. The registry namespace is this run's own.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  assertExit,
  boundedImgtool,
  copyImage,
  e2eTest,
  type Facts,
  makeProject,
  projectConfig,
  type Ran,
  removeImages,
  RUN_ID,
  timing,
} from "./harness.ts";
import { assertNoAbsolutePaths, lineOf } from "../helpers.ts";

/** The longest one imgtool run here may take. */
const RUN_SECONDS = 600;

const ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

/** Run imgtool in `cwd` with the cache folder `cache`, ended after a bound. */
function imgtoolWithCache(cwd: string, cache: string, args: readonly string[]): Promise<Ran> {
  return boundedImgtool(cwd, args, RUN_SECONDS, { XDG_CACHE_HOME: cache });
}

/** `registry/repository:tag` split into its parts. */
function parts(reference: string): { registry: string; repository: string; tag: string } {
  const match = /^([^/]+)\/(.+):([^:/]+)$/.exec(reference);
  assert.ok(match, `not a registry/repository:tag reference: ${reference}`);
  return { registry: match[1], repository: match[2], tag: match[3] };
}

/** GET a registry path over plain HTTP: its status, headers and body. */
async function get(registry: string, path: string) {
  const response = await fetch(`http://${registry}/v2/${path}`, {
    headers: { accept: ACCEPT },
    signal: AbortSignal.timeout(10_000),
  });
  const body = new Uint8Array(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, body };
}

const json = (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes));

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Delete a manifest (or index) by digest; what the registry no longer has is fine. */
async function deleteManifest(registry: string, repository: string, digest: string) {
  const response = await fetch(`http://${registry}/v2/${repository}/manifests/${digest}`, {
    method: "DELETE",
    signal: AbortSignal.timeout(10_000),
  });
  await response.body?.cancel();
}

/**
 * Delete what the test pushed for `uri`: the referrers listed under the image's
 * `sha256-<hex>` tag and that index, then the image (an index's members first).
 */
async function deletePushed(uri: string): Promise<void> {
  const { registry, repository, tag } = parts(uri);
  const image = await get(registry, `${repository}/manifests/${tag}`);
  if (image.status !== 200) return;
  const digest = `sha256:${await sha256(image.body)}`;
  const referrers = await get(registry, `${repository}/manifests/sha256-${digest.slice(7)}`);
  if (referrers.status === 200) {
    for (const entry of json(referrers.body).manifests ?? []) {
      await deleteManifest(registry, repository, entry.digest);
    }
    await deleteManifest(registry, repository, `sha256:${await sha256(referrers.body)}`);
  }
  for (const member of json(image.body).manifests ?? []) {
    await deleteManifest(registry, repository, member.digest);
  }
  await deleteManifest(registry, repository, digest);
}

function spec(facts: Facts, base: string): string {
  const q = JSON.stringify;
  return `import { Image } from "imgtool";

export default Image.fromBase(${q(base)})
  .clone({ name: "provenance" })
  // Unique per run: every later layer is built for real.
  .withEnvVars({ E2E_RUN: ${q(RUN_ID)} })
  .withPipPackages(["imgtool-demo-a==1.0.0"], { indexUrl: ${
    q(facts.PACKAGE_INDEX)
  }, extraArgs: "--no-deps" })
  .withSourceFolder("./src", "/app/src")
  .withCommands("python3 /app/src/app.py > /app/said.txt");
`;
}

e2eTest(
  "build --push pushes a provenance record found through the sha256-<hex> tag from a fresh cache; explain names an edited file, an added file, a changed pip option and a moved base",
  async (t, facts) => {
    const registry = `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-provenance`;
    // A base of this run's own, so that the test can move its tag.
    const base = `${registry}/base:python`;
    await copyImage(facts.PYTHON_BASE, base);
    const dir = await makeProject({
      "imgtool.toml": projectConfig(facts, registry),
      "spec.ts": spec(facts, base),
      "src/app.py": "print('hello')\n",
      "src/util.py": "VALUE = 1\n",
    });
    const buildCache = join(dir, ".cache-build");
    const fresh = () => Deno.makeTempDir({ dir, prefix: "cache-" });
    let uri = "";
    try {
      await t.step("build --push pushes the image and its record", async () => {
        const started = performance.now();
        const built = await imgtoolWithCache(dir, buildCache, [
          "build",
          "spec.ts",
          "--push",
          "--builder",
          "docker",
        ]);
        timing("provenance: build --push", started);
        assertExit(built, 0, "build --push");
        uri = built.stdout.trim().split("\n").pop() ?? "";
        assert.match(uri, new RegExp(`^${registry}/provenance:[0-9a-f]{32}$`));
        assert.match(
          built.stderr,
          /provenance record sha256:\w+ pushed \(found through the tag sha256-/,
        );
      });

      await t.step(
        "the record is listed under the sha256-<hex> tag, refers to the image, and holds no machine path",
        async () => {
          const { registry: host, repository, tag } = parts(uri);
          const image = await get(host, `${repository}/manifests/${tag}`);
          assert.equal(image.status, 200);
          const digest = `sha256:${await sha256(image.body)}`;
          // Distribution 2.8 has no referrers API: the tag schema is how it is found.
          assert.equal((await get(host, `${repository}/referrers/${digest}`)).status, 404);
          const index = await get(host, `${repository}/manifests/sha256-${digest.slice(7)}`);
          assert.equal(index.status, 200, "the referrers tag exists");
          const listed = json(index.body).manifests as { digest: string; artifactType?: string }[];
          const entry = listed.find((e) => e.artifactType === "application/vnd.in-toto+json");
          assert.ok(entry, `an in-toto artifact is listed: ${JSON.stringify(listed)}`);
          const artifact = await get(host, `${repository}/manifests/${entry.digest}`);
          assert.equal(artifact.status, 200);
          const manifest = json(artifact.body);
          assert.equal(manifest.subject.digest, digest);
          assert.equal(manifest.config.mediaType, "application/vnd.oci.empty.v1+json");
          const blob = await get(host, `${repository}/blobs/${manifest.layers[0].digest}`);
          assert.equal(blob.status, 200);
          const text = new TextDecoder().decode(blob.body);
          const statement = JSON.parse(text);
          assert.equal(statement._type, "https://in-toto.io/Statement/v1");
          assert.equal(statement.predicateType, "https://slsa.dev/provenance/v1");
          assert.deepEqual(statement.subject, [
            { name: `${host}/${repository}`, digest: { sha256: digest.slice(7) } },
          ]);
          const { externalParameters, resolvedDependencies } = statement.predicate.buildDefinition;
          assert.equal(externalParameters.tag, tag);
          assert.ok(
            resolvedDependencies.some((d: { name: string; digest?: unknown }) =>
              d.name === base && d.digest
            ),
            "the base, by digest",
          );
          assertNoAbsolutePaths(text, [dir]);
        },
      );

      await t.step(
        "after edits, explain from a fresh cache names each change with its layer, method and line",
        async () => {
          await Deno.writeTextFile(join(dir, "src", "app.py"), "print('changed')\n");
          await Deno.writeTextFile(join(dir, "src", "extra.py"), "EXTRA = True\n");
          const specFile = join(dir, "spec.ts");
          await Deno.writeTextFile(
            specFile,
            (await Deno.readTextFile(specFile)).replace(`"--no-deps"`, `"--no-compile"`),
          );
          // The base's tag moves too: another image is pushed under it.
          await copyImage(facts.DEBIAN_BASE, base);
          const pip = `layer 2 withPipPackages (spec.ts:${lineOf(specFile, "withPipPackages")})`;
          const src = `layer 3 withSourceFolder (spec.ts:${lineOf(specFile, "withSourceFolder")})`;
          const expected = [
            `${pip}: option extraArgs: "--no-deps" → "--no-compile"`,
            `${src}: file changed: src/app.py`,
            `${src}: file added: src/extra.py`,
          ];
          const started = performance.now();
          const explained = await imgtoolWithCache(dir, await fresh(), [
            "explain",
            "spec.ts",
            "--against",
            uri,
          ]);
          timing("provenance: explain --against", started);
          assertExit(explained, 0, "explain --against");
          const moved = new RegExp(
            `^layer 0 Image\\.fromBase \\(spec\\.ts:\\d+\\): base ${
              base.replace(/[.]/g, "\\.")
            } moved: sha256:[0-9a-f]+ → sha256:[0-9a-f]+$`,
          );
          const said = (stdout: string) => {
            const lines = stdout.trimEnd().split("\n");
            assert.deepEqual(lines.filter((line) => !moved.test(line)), expected);
            assert.equal(lines.filter((line) => moved.test(line)).length, 1, stdout);
          };
          said(explained.stdout);
          // With the build's cache, the URI it remembered is the default REF.
          const remembered = await imgtoolWithCache(dir, buildCache, ["explain", "spec.ts"]);
          assertExit(remembered, 0, "explain (the remembered URI)");
          said(remembered.stdout);
          assert.ok(remembered.stderr.includes(`against ${uri}`), remembered.stderr);
        },
      );

      await t.step("explain --against an image without a record exits 1 and says so", async () => {
        const bare = await imgtoolWithCache(dir, await fresh(), [
          "explain",
          "spec.ts",
          "--against",
          facts.PYTHON_BASE,
        ]);
        assertExit(bare, 1, "explain --against the base");
        assert.match(
          bare.stderr,
          new RegExp(`error: ${facts.PYTHON_BASE} has no provenance record`),
        );
      });
    } finally {
      if (uri) {
        await deletePushed(uri);
        await removeImages(facts, [uri]);
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
);
