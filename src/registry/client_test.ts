// RegistryClient behaviour that a well-behaved real registry never shows: stand-in servers
// (Deno.serve on 127.0.0.1) that fail, lie, echo secrets or send too much.

import assert from "node:assert/strict";
import { UsageError } from "../errors.ts";
import { RegistryClient } from "./client.ts";
import { RegistryError } from "./errors.ts";
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from "./manifest.ts";
import { freePort, type LocalServer, serveLocal } from "./testing.ts";

const encoder = new TextEncoder();

async function digestOf(bytes: Uint8Array): Promise<string> {
  const hash = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return "sha256:" +
    Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A client whose fetch must never be called (for checks that happen before any request). */
function offlineClient(): RegistryClient {
  return new RegistryClient({
    fetch: () => Promise.reject(new Error("no request was expected")),
  });
}

async function withServer(
  handler: Deno.ServeHandler<Deno.NetAddr>,
  fn: (server: LocalServer) => Promise<void>,
): Promise<void> {
  const server = serveLocal(handler);
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

Deno.test("the client asks for all four manifest media types", async () => {
  let accept = "";
  await withServer((request) => {
    accept = request.headers.get("accept") ?? "";
    return new Response(null, { status: 404 });
  }, async (server) => {
    await new RegistryClient().getManifest(`${server.host}/a:1`);
  });
  for (const type of [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST]) {
    assert.ok(accept.includes(type), `${type} in ${accept}`);
  }
});

Deno.test("the client speaks TLS to registries, plain HTTP to loopback and insecure ones", async () => {
  const urls: string[] = [];
  const client = new RegistryClient({
    insecureRegistries: ["lab.internal:5000"],
    fetch: (input) => {
      urls.push(String(input));
      return Promise.resolve(new Response(null, { status: 404 }));
    },
  });
  await client.getManifest("ghcr.io/o/app:1");
  await client.getManifest("ubuntu");
  await client.getManifest("127.0.0.1:5000/app:1");
  await client.getManifest("localhost:5000/app:1");
  await client.getManifest("lab.internal:5000/app:1");
  assert.deepEqual(urls, [
    "https://ghcr.io/v2/o/app/manifests/1",
    "https://registry-1.docker.io/v2/library/ubuntu/manifests/latest",
    "http://127.0.0.1:5000/v2/app/manifests/1",
    "http://localhost:5000/v2/app/manifests/1",
    "http://lab.internal:5000/v2/app/manifests/1",
  ]);
});

Deno.test("getManifest() gets through two 503 answers with the default retries", async () => {
  const manifest = encoder.encode(JSON.stringify({ schemaVersion: 2, manifests: [] }));
  let calls = 0;
  await withServer(() => {
    calls++;
    if (calls <= 2) return new Response("busy", { status: 503 });
    return new Response(manifest, { headers: { "content-type": OCI_INDEX } });
  }, async (server) => {
    const fetched = await new RegistryClient().getManifest(`${server.host}/a:1`);
    assert.equal(fetched?.mediaType, OCI_INDEX);
    assert.equal(fetched?.digest, await digestOf(manifest));
    assert.equal(calls, 3);
  });
});

Deno.test("a registry that keeps failing is unreachable after the bounded retries", async () => {
  let calls = 0;
  await withServer(() => {
    calls++;
    return Response.json({ errors: [{ code: "UNAVAILABLE", message: "maintenance" }] }, {
      status: 503,
    });
  }, async (server) => {
    const error = await new RegistryClient({ retries: 1 }).check(`${server.host}/a:1`, [])
      .then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.ok(error instanceof RegistryError);
    assert.equal(error.kind, "unreachable");
    assert.match(error.message, /answered 503 .*UNAVAILABLE: maintenance.* after 2 attempts/);
    assert.equal(calls, 2);
  });
});

Deno.test("check() of a registry nobody listens on is unreachable, naming what was tried", async () => {
  const port = await freePort();
  const error = await new RegistryClient({ retries: 0 }).check(`127.0.0.1:${port}/a/b:t`, [])
    .then(() => assert.fail("expected an error"), (e: unknown) => e);
  assert.ok(error instanceof RegistryError);
  assert.equal(error.kind, "unreachable");
  assert.equal(error.registry, `127.0.0.1:${port}`);
  assert.match(error.message, new RegExp(`GET http://127\\.0\\.0\\.1:${port}/v2/a/b/manifests/t`));
  assert.match(error.message, /connection refused/);
  assert.match(error.hint ?? "", /running and reachable/);
});

Deno.test("a manifest over 4 MiB is refused, with or without a Content-Length", async () => {
  const big = new Uint8Array(4 * 1024 * 1024 + 1).fill(32);
  await withServer((request) => {
    const chunked = new URL(request.url).pathname.includes("chunked");
    const body = chunked
      ? new ReadableStream({
        start(controller) {
          for (let i = 0; i < big.length; i += 65536) controller.enqueue(big.slice(i, i + 65536));
          controller.close();
        },
      })
      : big;
    return new Response(body, { headers: { "content-type": OCI_MANIFEST } });
  }, async (server) => {
    const client = new RegistryClient();
    for (const name of ["plain", "chunked"]) {
      await assert.rejects(
        client.getManifest(`${server.host}/${name}:1`),
        (error: unknown) =>
          error instanceof RegistryError && error.kind === "protocol" &&
          /larger than 4 MiB/.test(error.message),
      );
    }
  });
});

Deno.test("a manifest fetched by digest must have that digest", async () => {
  await withServer(
    () => new Response("{}", { headers: { "content-type": OCI_MANIFEST } }),
    async (server) => {
      await assert.rejects(
        new RegistryClient().getManifest(`${server.host}/a@sha256:${"0".repeat(64)}`),
        (error: unknown) =>
          error instanceof RegistryError && error.kind === "protocol" &&
          /does not match its digest/.test(error.message),
      );
    },
  );
});

Deno.test("403 is denied, 400 is a protocol error quoting the registry's error code", async () => {
  await withServer((request) => {
    const path = new URL(request.url).pathname;
    if (path.includes("forbidden")) {
      return Response.json({ errors: [{ code: "DENIED", message: "no access" }] }, { status: 403 });
    }
    return Response.json({ errors: [{ code: "NAME_INVALID", message: "bad name" }] }, {
      status: 400,
    });
  }, async (server) => {
    const client = new RegistryClient();
    await assert.rejects(
      client.getManifest(`${server.host}/forbidden:1`),
      (error: unknown) =>
        error instanceof RegistryError && error.kind === "denied" && error.status === 403 &&
        /DENIED: no access/.test(error.message),
    );
    await assert.rejects(
      client.getManifest(`${server.host}/other:1`),
      (error: unknown) =>
        error instanceof RegistryError && error.kind === "protocol" &&
        /NAME_INVALID: bad name/.test(error.message),
    );
  });
});

Deno.test("no token, password or Authorization value appears in errors or logs, even echoed", async () => {
  const token = "tok-" + crypto.randomUUID();
  const password = "pw-" + crypto.randomUUID();
  await withServer((request) => {
    const url = new URL(request.url);
    const authorization = request.headers.get("authorization");
    if (url.pathname === "/token") {
      return Response.json({ token });
    }
    if (authorization !== `Bearer ${token}`) {
      return new Response(null, {
        status: 401,
        headers: { "www-authenticate": `Bearer realm="${url.origin}/token",service="fake"` },
      });
    }
    // A careless registry that quotes the request back in its error.
    return Response.json({
      errors: [{ code: "UNSUPPORTED", message: `saw ${authorization} for ${password}` }],
    }, { status: 400 });
  }, async (server) => {
    const lines: string[] = [];
    const client = new RegistryClient({
      credentials: { username: "me", password },
      log: (line) => lines.push(line),
    });
    const error = await client.getManifest(`${server.host}/a:1`)
      .then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.ok(error instanceof RegistryError);
    assert.equal(error.kind, "protocol");
    assert.match(error.message, /saw Bearer \*\*\* for \*\*\*/);
    const everything = [error.message, error.hint, String(error), Deno.inspect(error), ...lines]
      .join("\n");
    for (const secret of [token, password, btoa(`me:${password}`)]) {
      assert.ok(!everything.includes(secret), `leaked into: ${everything}`);
    }
  });
});

Deno.test("check() reads platforms from an index, skipping attestation manifests", async () => {
  const index = encoder.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      {
        mediaType: OCI_MANIFEST,
        digest: `sha256:${"1".repeat(64)}`,
        size: 1,
        platform: { os: "linux", architecture: "amd64" },
      },
      {
        mediaType: OCI_MANIFEST,
        digest: `sha256:${"2".repeat(64)}`,
        size: 1,
        platform: { os: "unknown", architecture: "unknown" },
        annotations: { "vnd.docker.reference.type": "attestation-manifest" },
      },
      {
        mediaType: OCI_MANIFEST,
        digest: `sha256:${"3".repeat(64)}`,
        size: 1,
        platform: { os: "linux", architecture: "arm64", variant: "v8" },
      },
    ],
  }));
  await withServer(
    () => new Response(index, { headers: { "content-type": OCI_INDEX } }),
    async (server) => {
      const status = await new RegistryClient().check(`${server.host}/a:1`, [
        "linux/arm64",
        "linux/amd64",
      ]);
      assert.deepEqual(status, {
        exists: true,
        digest: await digestOf(index),
        mediaType: OCI_INDEX,
        platforms: ["linux/amd64", "linux/arm64/v8"],
        missing: [],
      });
    },
  );
});

Deno.test("check() refuses a manifest type it cannot read", async () => {
  const body = '{"schemaVersion": 1, "fsLayers": []}';
  await withServer(
    () =>
      new Response(body, {
        headers: { "content-type": "application/vnd.docker.distribution.manifest.v1+prettyjws" },
      }),
    async (server) => {
      await assert.rejects(
        new RegistryClient().check(`${server.host}/a:1`, []),
        (error: unknown) =>
          error instanceof RegistryError && error.kind === "protocol" &&
          /manifest\.v1\+prettyjws, which this client does not read/.test(error.message),
      );
    },
  );
});

Deno.test("pushBlob() starts a new upload when the PUT fails with 5xx", async () => {
  const seen: string[] = [];
  let puts = 0;
  let stored: Uint8Array | undefined;
  const states: (string | null)[] = [];
  await withServer(async (request) => {
    const url = new URL(request.url);
    seen.push(`${request.method} ${url.pathname}`);
    if (request.method === "HEAD") return new Response(null, { status: 404 });
    if (request.method === "POST") {
      return new Response(null, {
        status: 202,
        headers: { location: `/v2/a/blobs/uploads/${seen.length}?_state=opaque` },
      });
    }
    if (request.method === "PUT") {
      puts++;
      states.push(url.searchParams.get("_state"));
      if (puts === 1) return new Response("oops", { status: 500 });
      stored = new Uint8Array(await request.arrayBuffer());
      return new Response(null, { status: 201 });
    }
    return new Response(null, { status: 405 });
  }, async (server) => {
    const bytes = encoder.encode("layer bytes");
    const pushed = await new RegistryClient().pushBlob(`${server.host}/a`, bytes);
    assert.equal(pushed.digest, await digestOf(bytes));
    assert.deepEqual(stored, bytes);
    assert.deepEqual(seen.map((s) => s.split(" ")[0]), ["HEAD", "POST", "PUT", "POST", "PUT"]);
    assert.deepEqual(states, ["opaque", "opaque"], "the upload URL keeps its own query");
  });
});

Deno.test("putIndex() and check() refuse bad input before any request", async () => {
  const client = offlineClient();
  await assert.rejects(client.putIndex("127.0.0.1:5000/a:1", []), UsageError);
  await assert.rejects(
    client.putIndex(`127.0.0.1:5000/a@sha256:${"0".repeat(64)}`, [{
      reference: ":x",
      platform: "linux/amd64",
    }]),
    /names a digest, not a tag/,
  );
  await assert.rejects(
    client.putIndex("127.0.0.1:5000/a:1", [
      { reference: ":x", platform: "linux/arm64" },
      { reference: ":y", platform: "linux/arm64/v8" },
    ]),
    /lists platform linux\/arm64\/v8 twice/,
  );
  await assert.rejects(client.check("127.0.0.1:5000/a:1", ["amd64"]), /invalid platform "amd64"/);
  await assert.rejects(client.check("Not A Reference", []), /invalid image reference/);
  await assert.rejects(
    client.putManifest("127.0.0.1:5000/a:1", new Uint8Array(4 * 1024 * 1024 + 1), OCI_MANIFEST),
    /over 4 MiB/,
  );
});

Deno.test("a registry named with upper case or its default port still gets its credentials", async () => {
  for (const registry of ["Registry.Example", "registry.example:443"]) {
    const sent: (string | null)[] = [];
    const client = new RegistryClient({
      credentials: { username: "me", password: "secret-pass" },
      fetch: (_input, init) => {
        const authorization = new Headers(init?.headers).get("authorization");
        sent.push(authorization);
        return Promise.resolve(
          authorization
            ? new Response(null, { status: 404 })
            : new Response(null, { status: 401, headers: { "www-authenticate": "Basic" } }),
        );
      },
    });
    assert.equal(await client.getManifest(`${registry}/app:1`), undefined, registry);
    assert.deepEqual(sent, [null, `Basic ${btoa("me:secret-pass")}`], registry);
  }
});
