// The registry client against hostile or broken servers on 127.0.0.1, started here: storage
// hosts that demand credentials of their own, token realms that downgrade to plain HTTP,
// credential helpers that print secrets, and registries that are slow or never answer.
// Every server answers a bounded number of requests, and every test ends by itself.

import assert from "node:assert/strict";
import { join } from "node:path";
import { RegistryClient } from "./client.ts";
import { CredentialsError, RegistryError } from "./errors.ts";
import { OCI_MANIFEST } from "./manifest.ts";
import type { RequestProgress } from "./progress.ts";
import { type LocalServer, serveLocal } from "./testing.ts";

const encoder = new TextEncoder();
const USER = "ci";
const PASSWORD = "pw-registry-only-3141";
const BASIC = `Basic ${btoa(`${USER}:${PASSWORD}`)}`;

async function digestOf(bytes: Uint8Array): Promise<string> {
  const hash = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return "sha256:" +
    Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A token server that records who asked it, and with which Authorization. */
function recordingTokenServer(token: string) {
  const requests: { authorization: string | null; url: string }[] = [];
  const server = serveLocal((request) => {
    requests.push({ authorization: request.headers.get("authorization"), url: request.url });
    return Response.json({ token, expires_in: 300 });
  });
  return { server, requests, realm: `${server.origin}/token` };
}

/** An image manifest and its config blob, as a registry would serve them. */
async function tinyImage() {
  const config = encoder.encode(JSON.stringify({ os: "linux", architecture: "amd64" }));
  const configDigest = await digestOf(config);
  const manifest = encoder.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: configDigest,
      size: config.length,
    },
    layers: [],
  }));
  return { config, configDigest, manifest };
}

async function closeAll(...servers: LocalServer[]): Promise<void> {
  await Promise.all(servers.map((s) => s.close()));
}

function everythingSaid(error: unknown, lines: string[]): string {
  const e = error as { message?: string; hint?: string };
  return [e.message, e.hint, String(error), Deno.inspect(error, { depth: 10 }), ...lines]
    .join("\n");
}

Deno.test("a storage host's own challenge gets no credentials: the error names that host", async () => {
  const image = await tinyImage();
  const evil = recordingTokenServer("evil-token");
  const storageSaw: (string | null)[] = [];
  const storage = serveLocal((request) => {
    storageSaw.push(request.headers.get("authorization"));
    return new Response(null, {
      status: 401,
      headers: { "www-authenticate": `Bearer realm="${evil.realm}",service="storage"` },
    });
  });
  const registry = serveLocal((request) => {
    const path = new URL(request.url).pathname;
    if (request.headers.get("authorization") !== BASIC) {
      return new Response(null, {
        status: 401,
        headers: { "www-authenticate": 'Basic realm="registry"' },
      });
    }
    if (path === "/v2/team/app/manifests/1") {
      return new Response(image.manifest, { headers: { "content-type": OCI_MANIFEST } });
    }
    if (path === `/v2/team/app/blobs/${image.configDigest}`) {
      return Response.redirect(`${storage.origin}/blobs/1?X-Signature=abc`, 307);
    }
    return new Response(null, { status: 404 });
  });
  const lines: string[] = [];
  try {
    const client = new RegistryClient({
      credentials: { username: USER, password: PASSWORD },
      log: (line) => lines.push(line),
    });
    const error = await client.check(`${registry.host}/team/app:1`, ["linux/amd64"])
      .then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.deepEqual(evil.requests, [], "the storage host's realm was never asked");
    assert.deepEqual(storageSaw, [null], "the storage host got no Authorization, once");
    assert.ok(error instanceof RegistryError);
    assert.equal(error.kind, "unauthorized");
    assert.equal(error.exitCode, 1);
    assert.match(error.message, new RegExp(`^${storage.host} refused GET `));
    assert.match(error.message, new RegExp(`registry ${registry.host} redirected`));
    const said = everythingSaid(error, lines);
    assert.ok(!said.includes(PASSWORD) && !said.includes(BASIC.slice(6)), said);
    assert.ok(!said.includes("X-Signature"), "the presigned query stays out of messages");
  } finally {
    await closeAll(registry, storage, evil.server);
  }
});

Deno.test("a challenge from a redirect target does not change how the registry is authenticated", async () => {
  const image = await tinyImage();
  const good = recordingTokenServer("registry-token-77");
  const evil = recordingTokenServer("evil-token");
  const storage = serveLocal(() =>
    new Response(null, {
      status: 401,
      headers: { "www-authenticate": `Basic realm="storage"` },
    })
  );
  const registrySaw: (string | null)[] = [];
  const registry = serveLocal((request) => {
    const path = new URL(request.url).pathname;
    registrySaw.push(request.headers.get("authorization"));
    if (request.headers.get("authorization") !== "Bearer registry-token-77") {
      return new Response(null, {
        status: 401,
        headers: { "www-authenticate": `Bearer realm="${good.realm}",service="registry"` },
      });
    }
    if (path.startsWith("/v2/team/app/manifests/")) {
      return new Response(image.manifest, { headers: { "content-type": OCI_MANIFEST } });
    }
    return Response.redirect(`${storage.origin}/blob?sig=1`, 302);
  });
  try {
    const client = new RegistryClient({ credentials: { username: USER, password: PASSWORD } });
    assert.ok(await client.getManifest(`${registry.host}/team/app:1`));
    assert.equal(good.requests.length, 1);
    const error = await client.getBlob(`${registry.host}/team/app`, image.configDigest)
      .then(() => assert.fail("expected an error"), (e: unknown) => e);
    // The storage host's Basic challenge did not make imgtool send Basic to the registry.
    assert.ok(!registrySaw.includes(BASIC), "the registry was sent Basic credentials");
    assert.ok(error instanceof RegistryError);
    assert.equal(error.kind, "unauthorized");
    assert.ok(error.message.startsWith(`${storage.host} refused`), error.message);
    // The registry is still spoken to with its own token, from its own realm, up front.
    const before = registrySaw.length;
    assert.ok(await client.getManifest(`${registry.host}/team/app:2`));
    assert.deepEqual(registrySaw.slice(before), ["Bearer registry-token-77"]);
    assert.equal(good.requests.length, 1, "the cached token still serves");
    assert.deepEqual(evil.requests, []);
  } finally {
    await closeAll(registry, storage, good.server, evil.server);
  }
});

Deno.test("an upload URL on another host gets no credentials, and its 401 names that host", async () => {
  const storageSaw: (string | null)[] = [];
  const storage = serveLocal((request) => {
    storageSaw.push(request.headers.get("authorization"));
    return new Response(null, { status: 401, headers: { "www-authenticate": 'Basic realm="s"' } });
  });
  const registry = serveLocal((request) => {
    if (request.headers.get("authorization") !== BASIC) {
      return new Response(null, {
        status: 401,
        headers: { "www-authenticate": 'Basic realm="r"' },
      });
    }
    if (request.method === "HEAD") return new Response(null, { status: 404 });
    if (request.method === "POST") {
      return new Response(null, {
        status: 202,
        headers: { location: `${storage.origin}/upload/1?_state=opaque` },
      });
    }
    return new Response(null, { status: 405 });
  });
  try {
    const client = new RegistryClient({ credentials: { username: USER, password: PASSWORD } });
    const error = await client.pushBlob(`${registry.host}/team/app`, encoder.encode("layer"))
      .then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.ok(error instanceof RegistryError);
    assert.equal(error.kind, "unauthorized");
    assert.match(error.message, new RegExp(`^${storage.host} refused PUT `));
    assert.deepEqual(storageSaw, [null]);
  } finally {
    await closeAll(registry, storage);
  }
});

Deno.test("an HTTPS registry's plain-HTTP token realm gets no credentials, nor any request", async () => {
  const tokens = recordingTokenServer("t");
  const registry = serveLocal(() =>
    new Response(null, {
      status: 401,
      headers: { "www-authenticate": `Bearer realm="${tokens.realm}",service="registry"` },
    })
  );
  // The client speaks HTTPS to registry.test; this fetch delivers it to the local server,
  // which has no certificate. The realm it names is plain HTTP on loopback.
  const viaLocal: typeof fetch = (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.host === "registry.test") {
      assert.equal(url.protocol, "https:");
      return fetch(`${registry.origin}${url.pathname}${url.search}`, init);
    }
    return fetch(url, init);
  };
  try {
    const client = new RegistryClient({
      credentials: { username: USER, password: PASSWORD },
      fetch: viaLocal,
    });
    const error = await client.getManifest("registry.test/team/app:1")
      .then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.deepEqual(tokens.requests, [], "the plain-HTTP realm was asked");
    assert.ok(error instanceof RegistryError);
    assert.equal(error.kind, "protocol");
    assert.match(error.message, /over plain HTTP, though the registry itself speaks HTTPS/);
    assert.match(error.hint ?? "", /serve the token server over HTTPS/);
  } finally {
    await closeAll(registry, tokens.server);
  }
});

Deno.test("a credential helper that prints a secret and fails is reported without its output", async () => {
  const dir = await Deno.makeTempDir({ prefix: "imgtool-hostile-helper-" });
  const leak = "ghp_" + crypto.randomUUID().replaceAll("-", "");
  await Deno.writeTextFile(
    join(dir, "docker-credential-leaky"),
    `#!/bin/sh\ncat >/dev/null\necho '{"Username":"ci","Secret":"${leak}"}'\n` +
      `echo "error: token ${leak} expired" >&2\nexit 4\n`,
  );
  await Deno.chmod(join(dir, "docker-credential-leaky"), 0o755);
  await Deno.writeTextFile(
    join(dir, "config.json"),
    JSON.stringify({ credHelpers: { "127.0.0.1:9": "leaky" } }),
  );
  const savedPath = Deno.env.get("PATH") ?? "";
  Deno.env.set("PATH", `${dir}:${savedPath}`);
  const registry = serveLocal(() =>
    new Response(null, { status: 401, headers: { "www-authenticate": 'Basic realm="r"' } })
  );
  const lines: string[] = [];
  try {
    // The helper is asked for 127.0.0.1:9; the request goes to the local server.
    const client = new RegistryClient({
      dockerConfigDir: dir,
      log: (line) => lines.push(line),
      fetch: (input, init) =>
        fetch(String(input).replace("http://127.0.0.1:9/", `${registry.origin}/`), init),
    });
    const error = await client.getManifest("127.0.0.1:9/team/app:1")
      .then(() => assert.fail("expected an error"), (e: unknown) => e);
    const said = everythingSaid(error, lines);
    assert.ok(!said.includes(leak), `the helper's output leaked into: ${said}`);
    assert.ok(!said.includes("expired"), said);
    assert.ok(error instanceof CredentialsError);
    assert.equal(error.exitCode, 1);
    assert.match(
      error.message,
      /docker-credential-leaky .* failed for 127\.0\.0\.1:9 \(exit status 4\)/,
    );
    assert.match(error.hint ?? "", /docker-credential-leaky get/);
  } finally {
    Deno.env.set("PATH", savedPath);
    await registry.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a slow registry is reported while it is waited on, with the path but not the query", async () => {
  const answerAfterMs = 450;
  const server = serveLocal(async (request) => {
    await new Promise((resolve) => setTimeout(resolve, answerAfterMs));
    if (request.method === "HEAD") return new Response(null, { status: 404 });
    if (request.method === "POST") {
      return new Response(null, {
        status: 202,
        headers: { location: "/v2/team/app/blobs/uploads/7?_state=secret-state" },
      });
    }
    await request.body?.cancel();
    return new Response(null, { status: 201 });
  });
  const events: RequestProgress[] = [];
  try {
    const client = new RegistryClient({
      slowRequestMs: 100,
      onProgress: (event) => events.push(event),
    });
    const started = performance.now();
    await client.pushBlob(`${server.host}/team/app`, encoder.encode("layer"));
    const took = performance.now() - started;
    assert.deepEqual(events.filter((e) => e.kind !== "waiting"), [], "nothing was retried");
    const byRequest = Map.groupBy(events, (e) => `${e.method} ${e.path}`);
    const digest = await digestOf(encoder.encode("layer"));
    assert.deepEqual([...byRequest.keys()], [
      `HEAD /v2/team/app/blobs/${digest}`,
      "POST /v2/team/app/blobs/uploads/",
      "PUT /v2/team/app/blobs/uploads/7",
    ]);
    for (const [request, seen] of byRequest) {
      // One report per 100 ms of a 450 ms wait (more if the machine is slow), in order.
      assert.ok(seen.length >= 2, `${request}: ${seen.length}`);
      for (const [i, event] of seen.entries()) {
        assert.equal(event.host, server.host);
        assert.equal(event.attempt, 1);
        assert.ok(event.elapsedMs >= 100 * (i + 1) - 5, `${request}: ${event.elapsedMs}`);
      }
    }
    assert.equal(byRequest.get("PUT /v2/team/app/blobs/uploads/7")![0].attempts, 1);
    assert.equal(byRequest.get("POST /v2/team/app/blobs/uploads/")![0].attempts, 4);
    assert.ok(!JSON.stringify(events).includes("secret-state"));
    // Nothing is reported after the answers came.
    const count = events.length;
    await new Promise((resolve) => setTimeout(resolve, 250));
    assert.equal(events.length, count);
    assert.ok(took >= 3 * answerAfterMs);
  } finally {
    await server.close();
  }
});

Deno.test("a registry that never answers times out on every attempt, reported, in bounded time", async () => {
  let release = () => {};
  const hanging = new Promise<void>((resolve) => release = resolve);
  let requests = 0;
  const server = serveLocal(async () => {
    requests++;
    await hanging;
    return new Response(null, { status: 404 });
  });
  const events: RequestProgress[] = [];
  try {
    const client = new RegistryClient({
      retries: 1,
      timeoutMs: 300,
      slowRequestMs: 120,
      random: () => 0,
      onProgress: (event) => events.push(event),
    });
    const started = performance.now();
    const error = await client.getManifest(`${server.host}/team/app:1`)
      .then(() => assert.fail("expected an error"), (e: unknown) => e);
    const took = performance.now() - started;
    assert.ok(error instanceof RegistryError);
    assert.equal(error.kind, "unreachable");
    assert.match(error.message, /failed after 2 attempts \(no answer within the timeout\)/);
    assert.equal(requests, 2);
    // Two attempts of 300 ms and a 125 ms pause (the random source gives the shortest).
    assert.ok(took >= 2 * 300 + 125 - 5 && took < 5000, `took ${took} ms`);
    const retrying = events.filter((e) => e.kind === "retrying");
    assert.equal(retrying.length, 1);
    assert.equal(retrying[0].attempt, 1);
    assert.equal(retrying[0].attempts, 2);
    assert.equal(retrying[0].retryInMs, 125);
    assert.match(retrying[0].reason ?? "", /no answer within the timeout/);
    assert.ok(retrying[0].elapsedMs >= 295);
    const waiting = events.filter((e) => e.kind === "waiting");
    assert.deepEqual([...new Set(waiting.map((e) => e.attempt))], [1, 2]);
    assert.ok(waiting.every((e) => e.path === "/v2/team/app/manifests/1"));
    const count = events.length;
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(events.length, count, "no report after the request ended");
  } finally {
    release();
    await server.close();
  }
});
