// What a pushed build remembers of the tags it checked (src/last_checked.ts), and how the
// next build uses it: it asks for them at once (RegistryClient.prefetch), yet checks exactly
// the tags it computes. The CLI runs against a stand-in registry on 127.0.0.1 that records
// every request.

import assert from "node:assert/strict";
import { join } from "node:path";
import { type CheckedSelection, LastChecked } from "../src/last_checked.ts";
import { sha256Digest } from "../src/registry/bytes.ts";
import { OCI_MANIFEST } from "../src/registry/manifest.ts";
import { serveLocal } from "../src/registry/testing.ts";
import { imgtool, withTempDir, writeTree } from "./helpers.ts";

// Deno's own cache would follow XDG_CACHE_HOME too: the CLI keeps using this one.
const DENO_DIR = Deno.env.get("DENO_DIR") ?? JSON.parse(
  new TextDecoder().decode(
    (await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output()).stdout,
  ),
).denoDir;

const SELECTION: CheckedSelection = { spec: "/work/app/spec.ts", images: [], platforms: [] };

Deno.test("remembered URIs come back for the same selection only", () =>
  withTempDir((dir) => {
    const memory = new LastChecked(dir);
    assert.deepEqual(memory.recall(SELECTION), []);
    memory.remember(SELECTION, ["127.0.0.1:5000/app:1", "127.0.0.1:5000/worker:2"]);
    // A fresh instance, as the next build is a fresh process.
    const next = new LastChecked(dir);
    assert.deepEqual(next.recall(SELECTION), ["127.0.0.1:5000/app:1", "127.0.0.1:5000/worker:2"]);
    for (
      const other of [
        { ...SELECTION, spec: "/work/other/spec.ts" },
        { ...SELECTION, images: ["app"] },
        { ...SELECTION, platforms: ["linux/arm64"] },
        { ...SELECTION, registry: "127.0.0.1:5001" },
      ]
    ) {
      assert.deepEqual(next.recall(other), [], JSON.stringify(other));
    }
  }));

Deno.test("remembering the same URIs again writes nothing", () =>
  withTempDir((dir) => {
    const memory = new LastChecked(dir);
    memory.remember(SELECTION, ["127.0.0.1:5000/app:1"]);
    const [file] = [...Deno.readDirSync(dir)].map((entry) => join(dir, entry.name));
    const before = Deno.statSync(file);
    const next = new LastChecked(dir);
    next.recall(SELECTION);
    next.remember(SELECTION, ["127.0.0.1:5000/app:1"]);
    assert.equal(Deno.statSync(file).ino, before.ino, "the file was not replaced");
    next.remember(SELECTION, ["127.0.0.1:5000/app:2"]);
    assert.notEqual(Deno.statSync(file).ino, before.ino);
    assert.deepEqual(new LastChecked(dir).recall(SELECTION), ["127.0.0.1:5000/app:2"]);
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((entry) => entry.name).filter((n) => n.endsWith(".tmp")),
      [],
    );
  }));

Deno.test("an unreadable, foreign or unwritable memory is no guess and no error", () =>
  withTempDir((dir) => {
    const memory = new LastChecked(dir);
    memory.remember(SELECTION, ["127.0.0.1:5000/app:1"]);
    const [file] = [...Deno.readDirSync(dir)].map((entry) => join(dir, entry.name));
    for (const text of ["not json", "null", '{"key":"[]","uris":["x"]}', '{"uris":"x"}']) {
      Deno.writeTextFileSync(file, text);
      assert.deepEqual(new LastChecked(dir).recall(SELECTION), [], text);
    }
    // Its folder is a file: nothing can be written there, and nothing throws.
    const blocked = new LastChecked(join(file, "below"));
    blocked.remember(SELECTION, ["127.0.0.1:5000/app:1"]);
    assert.deepEqual(blocked.recall(SELECTION), []);
  }));

/**
 * A registry on 127.0.0.1 serving one single-platform image under the tags in `tags`; a
 * HEAD also touches the file `headSeen` names, when set.
 */
async function standInRegistry(headSeen: { file?: string } = {}) {
  const config = new TextEncoder().encode(JSON.stringify({ architecture: "amd64", os: "linux" }));
  const configDigest = await sha256Digest(config);
  const manifest = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: configDigest,
      size: config.length,
    },
    layers: [],
  }));
  const manifestDigest = await sha256Digest(manifest);
  const tags = new Set<string>();
  const requests: string[] = [];
  const server = serveLocal((request) => {
    const { pathname } = new URL(request.url);
    requests.push(`${request.method} ${pathname}`);
    if (request.method === "HEAD" && headSeen.file) Deno.writeTextFileSync(headSeen.file, "");
    const tag = pathname.match(/^\/v2\/team\/app\/manifests\/([^/]+)$/)?.[1];
    if (pathname === "/v2/") return new Response("{}");
    if (tag !== undefined && tags.has(tag)) {
      return new Response(request.method === "HEAD" ? null : manifest, {
        headers: {
          "content-type": OCI_MANIFEST,
          "docker-content-digest": manifestDigest,
          "content-length": String(manifest.length),
        },
      });
    }
    if (pathname === `/v2/team/app/blobs/${configDigest}`) return new Response(config);
    return new Response(null, { status: 404 });
  });
  return { server, tags, requests };
}

Deno.test("a pushed no-op build asks for its remembered tag, and still checks the one it computes", async () => {
  const headSeen: { file?: string } = {};
  const { server, tags, requests } = await standInRegistry(headSeen);
  try {
    await withTempDir(async (dir) => {
      const cache = join(dir, "cache");
      const env = { XDG_CACHE_HOME: cache, DENO_DIR };
      // With WAIT_FOR_HEAD set, the spec loads only once the registry has seen a HEAD.
      const writeSpec = (greeting: string) =>
        writeTree(dir, {
          "spec.ts": [
            `import { Image } from "imgtool";`,
            `const marker = Deno.env.get("WAIT_FOR_HEAD");`,
            `for (let waited = 0; marker; waited += 20) {`,
            `  try { Deno.statSync(marker); break; } catch { /* not yet */ }`,
            `  if (waited > 10_000) throw new Error("no HEAD reached the registry first");`,
            `  await new Promise((resolve) => setTimeout(resolve, 20));`,
            `}`,
            `export default Image.fromDebianBase({ name: "app", registry: "${server.host}/team" })`,
            `  .withEnvVars({ GREETING: "${greeting}" });`,
            "",
          ].join("\n"),
        });
      const uriOf = async () => {
        const result = await imgtool(["uri", "spec.ts"], { cwd: dir, env });
        assert.equal(result.code, 0, result.stderr);
        return result.stdout.trim();
      };
      const build = async (extra: Record<string, string> = {}) => {
        requests.length = 0;
        const result = await imgtool(["build", "--push", "spec.ts"], {
          cwd: dir,
          env: { ...env, ...extra },
        });
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stderr, /exists \(registry\), skipped/);
        return { uri: result.stdout.trim(), requests: [...requests] };
      };
      const manifestOf = (uri: string) => `/v2/team/app/manifests/${uri.split(":").at(-1)}`;

      await writeSpec("one");
      const first = await uriOf();
      tags.add(first.split(":").at(-1)!);
      // Nothing remembered: the manifest and its config are read.
      const cold = await build();
      assert.equal(cold.uri, first);
      assert.deepEqual(cold.requests.filter((r) => !r.startsWith("GET /v2/ ")).slice(0, 1), [
        `GET ${manifestOf(first)}`,
      ]);
      assert.ok(Deno.readDirSync(join(cache, "imgtool", "checked")).next().value);

      // Remembered: one HEAD, sent before the spec has loaded.
      headSeen.file = join(dir, "head-seen");
      const warm = await build({ WAIT_FOR_HEAD: headSeen.file });
      assert.deepEqual(warm.requests, [`HEAD ${manifestOf(first)}`]);

      // The spec changed, so did its tag: the guess is no answer, the new tag is checked.
      await writeSpec("two");
      const second = await uriOf();
      assert.notEqual(second, first);
      tags.add(second.split(":").at(-1)!);
      const changed = await build();
      assert.equal(changed.uri, second);
      assert.ok(changed.requests.includes(`GET ${manifestOf(second)}`), changed.requests.join());
      assert.ok(
        changed.requests.every((r) => r.endsWith(manifestOf(first)) ? r.startsWith("HEAD") : true),
        "the old tag was only guessed",
      );
      // And the new tag is the one remembered now.
      assert.deepEqual((await build()).requests, [`HEAD ${manifestOf(second)}`]);

      // A build whose tag is missing is not skipped because an old tag exists.
      await writeSpec("three");
      const missing = await imgtool(["build", "--push", "spec.ts"], {
        cwd: dir,
        env: { ...env, IMGTOOL_BUILDER: "none-such" },
      });
      assert.doesNotMatch(missing.stderr, /skipped/);
    });
  } finally {
    await server.close();
  }
});
