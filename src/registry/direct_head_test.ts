// The direct HEAD: what it sends, what it reads back, and that every failure is "no answer"
// (real servers on 127.0.0.1: Deno.serve, and raw TCP listeners that misbehave).

import assert from "node:assert/strict";
import { RegistryClient } from "./client.ts";
import { directHead, parseHead, proxyConfigured } from "./direct_head.ts";
import { OCI_MANIFEST } from "./manifest.ts";
import type { SeenTag, TagCache } from "./tag_cache.ts";
import { serveLocal } from "./testing.ts";

const DIGEST = `sha256:${"a".repeat(64)}`;
const OTHER = `sha256:${"b".repeat(64)}`;

/** A raw TCP listener on 127.0.0.1 that answers each connection with `answer` (or never). */
function rawServer(answer: string | undefined) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open: Deno.Conn[] = [];
  const serving = (async () => {
    for await (const connection of listener) {
      open.push(connection);
      if (answer === undefined) continue;
      await connection.read(new Uint8Array(4096));
      await connection.write(new TextEncoder().encode(answer));
      connection.close();
    }
  })().catch(() => {});
  return {
    url: new URL(`http://127.0.0.1:${listener.addr.port}/v2/app/manifests/1.0`),
    async close() {
      listener.close();
      for (const connection of open) {
        try {
          connection.close();
        } catch {
          // Closed already.
        }
      }
      await serving;
    },
  };
}

/** Run `body` against a {@link rawServer} answering `answer`, closing it whatever happens. */
async function withRawServer(
  answer: string | undefined,
  body: (url: URL) => Promise<void>,
): Promise<void> {
  const server = rawServer(answer);
  try {
    await body(server.url);
  } finally {
    await server.close();
  }
}

Deno.test("a direct HEAD sends HEAD with Host and the given headers, and reads the answer", async () => {
  let seen: { method: string; path: string; host: string; accept: string } | undefined;
  const server = serveLocal((request) => {
    const url = new URL(request.url);
    seen = {
      method: request.method,
      path: url.pathname + url.search,
      host: request.headers.get("host") ?? "",
      accept: request.headers.get("accept") ?? "",
    };
    return new Response(null, {
      headers: { "docker-content-digest": DIGEST, "content-type": OCI_MANIFEST },
    });
  });
  try {
    const answer = await directHead(new URL(`${server.origin}/v2/team/app/manifests/1.0?x=1`), {
      headers: { accept: OCI_MANIFEST },
      timeoutMs: 5000,
    });
    assert.deepEqual(seen, {
      method: "HEAD",
      path: "/v2/team/app/manifests/1.0?x=1",
      host: server.host,
      accept: OCI_MANIFEST,
    });
    assert.equal(answer?.status, 200);
    assert.equal(answer?.headers.get("docker-content-digest"), DIGEST);
    assert.equal(answer?.headers.get("content-type"), OCI_MANIFEST);
  } finally {
    await server.close();
  }
});

Deno.test("a direct HEAD reports other statuses as they are", async () => {
  const server = serveLocal(() => new Response(null, { status: 404 }));
  try {
    const answer = await directHead(new URL(`${server.origin}/v2/a/manifests/1`), {
      timeoutMs: 5000,
    });
    assert.equal(answer?.status, 404);
  } finally {
    await server.close();
  }
});

Deno.test("every failure of a direct HEAD is no answer", async (t) => {
  await t.step("a refused connection", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    listener.close();
    const url = new URL(`http://127.0.0.1:${port}/v2/a/manifests/1`);
    assert.equal(await directHead(url, { timeoutMs: 5000 }), undefined);
  });
  await t.step("a server that never answers, within the timeout", async () => {
    await withRawServer(undefined, async (url) => {
      const started = performance.now();
      assert.equal(await directHead(url, { timeoutMs: 200 }), undefined);
      assert.ok(performance.now() - started < 5000, "the timeout ended the wait");
    });
  });
  await t.step("a malformed status line", async () => {
    await withRawServer("SPDY/3 200 OK\r\n\r\n", async (url) => {
      assert.equal(await directHead(url, { timeoutMs: 5000 }), undefined);
    });
  });
  await t.step("a connection closed before the headers end", async () => {
    await withRawServer("HTTP/1.1 200 OK\r\nDocker-Content-Digest: sha256:", async (url) => {
      assert.equal(await directHead(url, { timeoutMs: 5000 }), undefined);
    });
  });
  await t.step("a header that would inject a line, refused before connecting", async () => {
    await withRawServer("HTTP/1.1 200 OK\r\n\r\n", async (url) => {
      assert.equal(
        await directHead(url, { headers: { accept: "a\r\nX-Evil: 1" }, timeoutMs: 5000 }),
        undefined,
      );
      assert.equal(
        await directHead(url, { headers: { Host: "elsewhere" }, timeoutMs: 5000 }),
        undefined,
      );
    });
  });
  await t.step("a scheme other than http and https", async () => {
    assert.equal(await directHead(new URL("ftp://127.0.0.1/x"), { timeoutMs: 5000 }), undefined);
  });
});

Deno.test("an answer's head is parsed strictly", () => {
  const parsed = parseHead(
    "HTTP/1.1 200 OK\r\nDocker-Content-Digest: " + DIGEST + "\r\nVary: a\r\nvary: b",
  );
  assert.equal(parsed?.status, 200);
  assert.equal(parsed?.headers.get("docker-content-digest"), DIGEST);
  assert.equal(parsed?.headers.get("vary"), "a, b");
  assert.equal(parseHead("HTTP/1.0 404 Not Found")?.status, 404);
  assert.equal(parseHead("HTTP/1.1 200")?.status, 200);
  for (
    const bad of [
      undefined,
      "",
      "HTTP/2 200 OK",
      "HTTP/1.1 20 OK",
      "HTTP/1.1 200 OK\r\n folded: value",
      "HTTP/1.1 200 OK\r\n: nameless",
      "HTTP/1.1 200 OK\r\nbad name: x",
    ]
  ) {
    assert.equal(parseHead(bad), undefined, JSON.stringify(bad));
  }
});

Deno.test("a proxy in the environment turns direct connections off", () => {
  for (const name of ["HTTPS_PROXY", "http_proxy", "ALL_PROXY"]) {
    assert.equal(proxyConfigured({ [name]: "http://proxy:3128" }), true, name);
  }
  assert.equal(proxyConfigured({ HTTPS_PROXY: "" }), false);
  assert.equal(proxyConfigured({ NO_PROXY: "*" }), false);
});

Deno.test("a direct HEAD stopped by its signal is no answer, at once", () =>
  withRawServer(undefined, async (url) => {
    const stop = new AbortController();
    const started = performance.now();
    const answer = directHead(url, { timeoutMs: 60_000, signal: stop.signal });
    await new Promise((resolve) => setTimeout(resolve, 50));
    stop.abort();
    assert.equal(await answer, undefined);
    const stopped = AbortSignal.abort();
    assert.equal(await directHead(url, { timeoutMs: 60_000, signal: stopped }), undefined);
    assert.ok(performance.now() - started < 10_000, "neither waited for the timeout");
  }));

/** A tag cache in memory that remembers one tag. */
function rememberedAs(reference: string, digest: string): TagCache {
  const seen = new Map<string, SeenTag>([[reference, {
    digest,
    mediaType: OCI_MANIFEST,
    platforms: ["linux/amd64"],
  }]]);
  return { get: (ref) => seen.get(ref), set: (ref, value) => seen.set(ref, value) };
}

/** A registry stand-in that names `DIGEST` in every answer and records each request's method. */
function digestServer() {
  const requests: string[] = [];
  const server = serveLocal((request) => {
    requests.push(request.method);
    return new Response(null, { headers: { "docker-content-digest": DIGEST } });
  });
  return { server, requests };
}

/** What one connection to a {@link headServer} carried. */
interface SeenConnection {
  /** The request's head (request line and headers), as sent. */
  head: string;
  /** Whether the client ended the connection after the answer (else it kept it open). */
  closedByClient: boolean;
}

/**
 * A raw TCP listener on 127.0.0.1 that answers one request per connection with a 200 naming
 * `DIGEST`, then waits up to `waitMs` for the client to end the connection. A connection kept
 * for reuse (as `fetch` keeps its connections) is not ended by the client.
 */
function headServer(waitMs = 2000) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const seen: SeenConnection[] = [];
  const handled: Promise<void>[] = [];
  let closed = false;
  const handle = async (connection: Deno.Conn, record: SeenConnection) => {
    const buffer = new Uint8Array(4096);
    const decoder = new TextDecoder();
    while (!record.head.includes("\r\n\r\n")) {
      const read = await connection.read(buffer).catch(() => null);
      if (read === null) return;
      record.head += decoder.decode(buffer.subarray(0, read));
    }
    await connection.write(new TextEncoder().encode(
      `HTTP/1.1 200 OK\r\nDocker-Content-Digest: ${DIGEST}\r\nContent-Length: 0\r\n\r\n`,
    ));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waited = new Promise<"waited">((resolve) =>
      timer = setTimeout(resolve, waitMs, "waited")
    );
    const next = await Promise.race([connection.read(buffer).catch(() => null), waited]);
    clearTimeout(timer);
    record.closedByClient = next === null;
  };
  const serving = (async () => {
    for await (const connection of listener) {
      const record = { head: "", closedByClient: false };
      seen.push(record);
      handled.push(handle(connection, record).finally(() => connection.close()));
    }
  })().catch(() => {});
  return {
    host: `127.0.0.1:${listener.addr.port}`,
    seen,
    /** Wait for every connection to be handled, then stop listening (once). */
    async close() {
      await Promise.all(handled);
      if (closed) return;
      closed = true;
      listener.close();
      await serving;
    },
  };
}

Deno.test("a remembered tag is confirmed by one HEAD, on a connection of its own that it closes", async () => {
  const server = headServer();
  try {
    const reference = `${server.host}/team/app:1.0`;
    const status = await new RegistryClient({ tagCache: rememberedAs(reference, DIGEST) })
      .check(reference, ["linux/amd64"]);
    assert.equal(status.exists, true);
    assert.deepEqual(status.platforms, ["linux/amd64"]);
    await server.close();
    // One connection carried one request, and the client, not the server, ended it: no
    // connection pool (fetch's) kept it for another request.
    assert.equal(server.seen.length, 1, "connections opened");
    const [{ head, closedByClient }] = server.seen;
    const [requestLine, ...headers] = head.trimEnd().split("\r\n");
    assert.equal(requestLine, "HEAD /v2/team/app/manifests/1.0 HTTP/1.1");
    assert.ok(headers.some((line) => /^connection: *close$/i.test(line)), head);
    assert.equal(closedByClient, true, "the connection was kept open after the answer");
  } finally {
    await server.close();
  }
});

Deno.test("a direct HEAD that is not a 200 is asked again through the full path", async () => {
  const requests: string[] = [];
  const server = serveLocal((request) => {
    requests.push(request.method);
    // The first answer fails; the full path's retry gets the real one.
    if (requests.length === 1) return new Response(null, { status: 503 });
    return new Response(null, { headers: { "docker-content-digest": DIGEST } });
  });
  try {
    const reference = `${server.host}/team/app:1.0`;
    const client = new RegistryClient({ tagCache: rememberedAs(reference, DIGEST) });
    assert.equal((await client.check(reference, ["linux/amd64"])).exists, true);
    assert.deepEqual(requests, ["HEAD", "HEAD"]);
  } finally {
    await server.close();
  }
});

Deno.test("a direct HEAD naming another digest means the tag moved: it is read again", async () => {
  const requests: string[] = [];
  const server = serveLocal((request) => {
    requests.push(request.method);
    // Moved, then gone: the GET that reads it again finds nothing.
    if (request.method === "HEAD") {
      return new Response(null, { headers: { "docker-content-digest": OTHER } });
    }
    return new Response(null, { status: 404 });
  });
  try {
    const reference = `${server.host}/team/app:1.0`;
    const client = new RegistryClient({ tagCache: rememberedAs(reference, DIGEST) });
    assert.equal((await client.check(reference, ["linux/amd64"])).exists, false);
    assert.deepEqual(requests, ["HEAD", "GET"]);
  } finally {
    await server.close();
  }
});

Deno.test("a preconnected connection carries the direct HEAD; unused ones are closed", async () => {
  // A raw listener: it counts connections, and answers the HEAD on whichever carries one.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const host = `127.0.0.1:${listener.addr.port}`;
  let connections = 0;
  const closed: Promise<void>[] = [];
  const serving = (async () => {
    for await (const connection of listener) {
      connections++;
      closed.push((async () => {
        const buffer = new Uint8Array(4096);
        const read = await connection.read(buffer).catch(() => null);
        if (read !== null) {
          await connection.write(new TextEncoder().encode(
            `HTTP/1.1 200 OK\r\nDocker-Content-Digest: ${DIGEST}\r\nContent-Length: 0\r\n\r\n`,
          ));
        }
        // A connection nobody uses ends when the client closes it: read sees the end.
        await connection.read(buffer).catch(() => null);
        connection.close();
      })());
    }
  })().catch(() => {});
  try {
    const reference = `${host}/team/app:1.0`;
    const logs: string[] = [];
    const client = new RegistryClient({
      tagCache: rememberedAs(reference, DIGEST),
      log: (line) => logs.push(line),
    });
    client.preconnect(`${host}/team/app`);
    client.preconnect(`${host}/team/other`); // the same origin: one connection
    const status = await client.check(reference, ["linux/amd64"]);
    assert.equal(status.exists, true, logs.join("\n"));
    assert.equal(connections, 1, "the check used the connection opened before it");

    const idle = new RegistryClient({ tagCache: rememberedAs(reference, DIGEST) });
    idle.preconnect(`${host}/team/app`);
    idle.preconnect("not a reference!");
    await idle.close();
    // The server accepts the second connection in its own time.
    for (let waited = 0; connections < 2 && waited < 5000; waited += 10) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(connections, 2, "the idle client connected once");
    // Every connection the server saw has ended: none was left open.
    await Promise.all(closed);
  } finally {
    listener.close();
    await serving;
  }
});

Deno.test("a process that sent a direct HEAD ends when its work does, not at the timeout", async () => {
  const server = serveLocal(() =>
    new Response(null, { headers: { "docker-content-digest": DIGEST } })
  );
  const module = new URL("./direct_head.ts", import.meta.url).href;
  const client = new URL("./client.ts", import.meta.url).href;
  // A minute of timeout each: the child must not wait for either.
  const script = `
    import { directHead } from "${module}";
    import { RegistryClient } from "${client}";
    const url = new URL("${server.origin}/v2/team/app/manifests/1.0");
    console.log((await directHead(url, { timeoutMs: 60_000 }))?.status);
    const reference = "${server.host}/team/app:1.0";
    const seen = { digest: "${DIGEST}", mediaType: "${OCI_MANIFEST}", platforms: ["linux/amd64"] };
    const registry = new RegistryClient({
      timeoutMs: 60_000,
      tagCache: { get: () => seen, set: () => {} },
    });
    registry.preconnect(reference);
    registry.prefetch("${server.host}/team/guessed:1.0"); // asked for by no check
    console.log((await registry.check(reference, ["linux/amd64"])).exists);
    await registry.close();
  `;
  try {
    const started = performance.now();
    const child = await new Deno.Command(Deno.execPath(), {
      args: ["eval", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const seconds = (performance.now() - started) / 1000;
    const output = new TextDecoder().decode(child.stdout);
    assert.equal(child.code, 0, new TextDecoder().decode(child.stderr));
    assert.equal(output, "200\ntrue\n");
    assert.ok(seconds < 20, `the child took ${seconds.toFixed(1)} s`);
  } finally {
    await server.close();
  }
});

Deno.test("a prefetched HEAD goes out at once and answers the check that asks for it", async () => {
  const { server, requests } = digestServer();
  try {
    const reference = `${server.host}/team/app:1.0`;
    const client = new RegistryClient({ tagCache: rememberedAs(reference, DIGEST) });
    client.prefetch(reference);
    client.prefetch(reference); // once is enough
    for (let waited = 0; requests.length === 0 && waited < 5000; waited += 10) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.deepEqual(requests, ["HEAD"], "sent before any check");
    const status = await client.check(reference, ["linux/amd64"]);
    assert.equal(status.exists, true);
    assert.deepEqual(status.platforms, ["linux/amd64"]);
    assert.equal(requests.length, 1, "the check took the prefetched answer");
    // A second check asks again: an answer serves one check.
    assert.equal((await client.check(reference, ["linux/amd64"])).exists, true);
    assert.equal(requests.length, 2);
    await client.close();
  } finally {
    await server.close();
  }
});

Deno.test("prefetch sends nothing for a tag not remembered, a bad reference, or with a fetch given", async () => {
  const { server, requests } = digestServer();
  try {
    const reference = `${server.host}/team/app:1.0`;
    const client = new RegistryClient({ tagCache: rememberedAs(reference, DIGEST) });
    client.prefetch(`${server.host}/team/other:1.0`);
    client.prefetch("not a reference!");
    const withFetch = new RegistryClient({ tagCache: rememberedAs(reference, DIGEST), fetch });
    withFetch.prefetch(reference);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await client.close();
    await withFetch.close();
    assert.deepEqual(requests, []);
  } finally {
    await server.close();
  }
});

Deno.test("a prefetch no check asks for is stopped by close, not waited for", () =>
  withRawServer(undefined, async (url) => {
    const reference = `${url.host}/team/app:1.0`;
    const logs: string[] = [];
    const client = new RegistryClient({
      timeoutMs: 60_000,
      tagCache: rememberedAs(reference, DIGEST),
      log: (line) => logs.push(line),
    });
    client.prefetch(reference);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = performance.now();
    await client.close();
    assert.ok(performance.now() - started < 10_000, "close did not wait for the timeout");
    assert.ok(logs.some((line) => line.endsWith("stopped (direct connection)")), logs.join("\n"));
  }));
