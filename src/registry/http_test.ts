import assert from "node:assert/strict";
import { UsageError } from "../errors.ts";
import { RegistryError } from "./errors.ts";
import {
  DEFAULT_TIMEOUT_MS,
  describeNetworkError,
  displayUrl,
  isLoopback,
  Transport,
} from "./http.ts";
import { freePort, serveLocal } from "./testing.ts";

Deno.test("Transport retries 503 twice and then gets the answer", async () => {
  let calls = 0;
  const server = serveLocal(() => {
    calls++;
    return calls <= 2 ? new Response("busy", { status: 503 }) : new Response("ok", { status: 200 });
  });
  try {
    const lines: string[] = [];
    const transport = new Transport({ log: (l) => lines.push(l) });
    const { response, attempts } = await transport.send(
      new URL(`${server.origin}/v2/`),
      { method: "GET" },
      { registry: server.host },
    );
    assert.equal(await response.text(), "ok");
    assert.equal(attempts, 3);
    assert.equal(calls, 3);
    assert.equal(lines.filter((l) => /answered 503.*; retrying in \d+ ms$/.test(l)).length, 2);
  } finally {
    await server.close();
  }
});

Deno.test("Transport stops after the configured retries and returns the last 5xx", async () => {
  let calls = 0;
  const server = serveLocal(() => {
    calls++;
    return new Response("down", { status: 502 });
  });
  try {
    const transport = new Transport({ retries: 2 });
    const { response, attempts } = await transport.send(
      new URL(`${server.origin}/v2/`),
      { method: "GET" },
      { registry: server.host },
    );
    await response.body?.cancel();
    assert.equal(response.status, 502);
    assert.equal(attempts, 3);
    assert.equal(calls, 3);
  } finally {
    await server.close();
  }
});

Deno.test("Transport retries 429 and does not retry a 4xx answer", async () => {
  const seen: string[] = [];
  const server = serveLocal((request) => {
    const path = new URL(request.url).pathname;
    seen.push(path);
    if (path === "/limited" && seen.filter((p) => p === path).length === 1) {
      return new Response("slow down", { status: 429, headers: { "retry-after": "0" } });
    }
    return new Response(path === "/missing" ? "no" : "ok", {
      status: path === "/missing" ? 404 : 200,
    });
  });
  try {
    const transport = new Transport();
    const limited = await transport.send(new URL(`${server.origin}/limited`), { method: "GET" }, {
      registry: server.host,
    });
    assert.equal(await limited.response.text(), "ok");
    const missing = await transport.send(new URL(`${server.origin}/missing`), { method: "GET" }, {
      registry: server.host,
    });
    await missing.response.body?.cancel();
    assert.equal(missing.attempts, 1);
    assert.deepEqual(seen, ["/limited", "/limited", "/missing"]);
  } finally {
    await server.close();
  }
});

Deno.test("a refused connection is an unreachable error naming the registry and what was tried", async () => {
  const port = await freePort(); // nothing listens there now
  const transport = new Transport({ retries: 1 });
  const error = await transport.send(
    new URL(`http://127.0.0.1:${port}/v2/a/manifests/t?x=1`),
    { method: "GET" },
    { registry: `127.0.0.1:${port}` },
  ).then(() => assert.fail("expected an error"), (e: unknown) => e);
  assert.ok(error instanceof RegistryError);
  assert.equal(error.kind, "unreachable");
  assert.equal(error.exitCode, 1);
  assert.equal(
    error.message,
    `registry 127.0.0.1:${port} is unreachable: GET http://127.0.0.1:${port}/v2/a/manifests/t ` +
      `failed after 2 attempts (connection refused)`,
  );
  assert.match(error.hint ?? "", /check that the registry is running and reachable/);
});

Deno.test("a registry that does not answer in time is unreachable after the timeout", async () => {
  let release = () => {};
  const hanging = new Promise<void>((resolve) => release = resolve);
  const server = serveLocal(async () => {
    await hanging;
    return new Response("late");
  });
  try {
    const transport = new Transport({ retries: 0, timeoutMs: 200 });
    const started = Date.now();
    await assert.rejects(
      transport.send(new URL(`${server.origin}/v2/`), { method: "GET" }, { registry: server.host }),
      (error: unknown) =>
        error instanceof RegistryError && error.kind === "unreachable" &&
        /no answer within the timeout/.test(error.message),
    );
    assert.ok(Date.now() - started < 5000);
  } finally {
    release();
    await server.close();
  }
});

Deno.test("a TLS failure is unreachable, with a hint about certificates and insecureRegistries", async () => {
  const server = serveLocal(() => new Response("plain"));
  try {
    const transport = new Transport({ retries: 0 });
    const error = await transport.send(
      new URL(`https://${server.host}/v2/`),
      { method: "GET" },
      { registry: "registry.example" },
    ).then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.ok(error instanceof RegistryError);
    assert.equal(error.kind, "unreachable");
    assert.match(error.message, /TLS handshake failed/);
    assert.match(error.hint ?? "", /DENO_CERT/);
    assert.match(error.hint ?? "", /insecureRegistries/);
  } finally {
    await server.close();
  }
});

Deno.test("redirects keep Authorization on the same origin and drop it on another", async () => {
  const seen: { where: string; authorization: string | null }[] = [];
  const storage = serveLocal((request) => {
    seen.push({ where: "storage", authorization: request.headers.get("authorization") });
    return new Response("blob");
  });
  const registry = serveLocal((request) => {
    const path = new URL(request.url).pathname;
    seen.push({ where: path, authorization: request.headers.get("authorization") });
    if (path === "/first") return Response.redirect(`${new URL(request.url).origin}/second`, 307);
    if (path === "/second") return Response.redirect(`${storage.origin}/blob`, 302);
    return new Response("?", { status: 500 });
  });
  try {
    const transport = new Transport();
    const { response, url } = await transport.send(
      new URL(`${registry.origin}/first`),
      { method: "GET", headers: new Headers({ authorization: "Bearer abc" }) },
      { registry: registry.host },
    );
    assert.equal(await response.text(), "blob");
    assert.equal(url.href, `${storage.origin}/blob`, "the answer is known to come from storage");
    assert.deepEqual(seen, [
      { where: "/first", authorization: "Bearer abc" },
      { where: "/second", authorization: "Bearer abc" },
      { where: "storage", authorization: null },
    ]);
  } finally {
    await storage.close();
    await registry.close();
  }
});

Deno.test("Authorization does not come back when a redirect returns to the registry", async () => {
  const seen: (string | null)[] = [];
  const elsewhere = serveLocal((request) => {
    seen.push(request.headers.get("authorization"));
    return Response.redirect(`${registry.origin}/back`, 302);
  });
  const registry = serveLocal((request) => {
    seen.push(request.headers.get("authorization"));
    return new URL(request.url).pathname === "/back"
      ? new Response("ok")
      : Response.redirect(`${elsewhere.origin}/bounce`, 302);
  });
  try {
    const { response } = await new Transport().send(
      new URL(`${registry.origin}/start`),
      { method: "GET", headers: new Headers({ authorization: "Bearer abc" }) },
      { registry: registry.host },
    );
    assert.equal(await response.text(), "ok");
    assert.deepEqual(seen, ["Bearer abc", null, null]);
  } finally {
    await elsewhere.close();
    await registry.close();
  }
});

Deno.test("a redirect to a URL with a user name or password in it is refused", async () => {
  let reached = 0;
  const storage = serveLocal(() => {
    reached++;
    return new Response("blob");
  });
  const server = serveLocal(() =>
    Response.redirect(`http://planted:pw-9@${storage.host}/blob?sig=1`, 302)
  );
  try {
    const error = await new Transport().send(new URL(`${server.origin}/x`), { method: "GET" }, {
      registry: server.host,
    }).then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.ok(error instanceof RegistryError);
    assert.equal(error.kind, "protocol");
    assert.match(error.message, /with a user name or password in the URL/);
    assert.ok(!error.message.includes("pw-9"));
    assert.equal(reached, 0);
  } finally {
    await server.close();
    await storage.close();
  }
});

Deno.test("a request carrying credentials in its body is not redirected to another origin", async () => {
  const bodies: string[] = [];
  const other = serveLocal(async (request) => {
    bodies.push(await request.text());
    return new Response("took it");
  });
  const server = serveLocal((request) => {
    const path = new URL(request.url).pathname;
    if (path === "/same") return Response.redirect(`${server.origin}/final`, 307);
    if (path === "/final") return new Response("ok");
    return Response.redirect(`${other.origin}/token`, 307);
  });
  try {
    const transport = new Transport({ retries: 0 });
    const body = new TextEncoder().encode("refresh_token=rt-5150");
    const send = (path: string) =>
      transport.send(new URL(`${server.origin}${path}`), { method: "POST", body }, {
        registry: server.host,
        credentialsInBody: true,
      });
    const same = await send("/same");
    assert.equal(await same.response.text(), "ok", "the same origin may redirect");
    await assert.rejects(
      send("/away"),
      (error: unknown) =>
        error instanceof RegistryError && error.kind === "protocol" &&
        error.message.includes(`redirected to ${other.host}, which would receive the credentials`),
    );
    assert.deepEqual(bodies, []);
  } finally {
    await server.close();
    await other.close();
  }
});

Deno.test("timeoutMs and slowRequestMs must be positive and finite", () => {
  for (const bad of [0, -1, Infinity, NaN, 1e12]) {
    assert.throws(
      () => new Transport({ timeoutMs: bad }),
      (error: unknown) => error instanceof UsageError && /timeoutMs is/.test(error.message),
    );
    assert.throws(() => new Transport({ slowRequestMs: bad }), UsageError);
  }
  assert.equal(new Transport({ timeoutMs: 1500 }).timeoutMs, 1500);
  assert.equal(new Transport().timeoutMs, DEFAULT_TIMEOUT_MS);
});

Deno.test("a redirect to plain HTTP on a non-loopback host is refused", async () => {
  const server = serveLocal(() => Response.redirect("http://storage.example/blob", 302));
  try {
    await assert.rejects(
      new Transport().send(new URL(`${server.origin}/x`), { method: "GET" }, {
        registry: server.host,
      }),
      (error: unknown) =>
        error instanceof RegistryError && error.kind === "protocol" &&
        /which is not HTTPS/.test(error.message),
    );
  } finally {
    await server.close();
  }
});

Deno.test("backoff grows, has jitter, and stays bounded even with a long Retry-After", () => {
  const transport = new Transport();
  for (let attempt = 0; attempt < 30; attempt++) {
    const delay = transport.backoffMs(attempt);
    const step = Math.min(8000, 250 * 2 ** attempt);
    assert.ok(delay >= step / 2 && delay <= step, `${attempt}: ${delay}`);
  }
  assert.ok(transport.backoffMs(0, "3600") <= 30_000);
  assert.ok(transport.backoffMs(0, "2") >= 2000);
  assert.equal(new Transport({ retries: 1000 }).retries, 10);
  assert.equal(new Transport({ retries: -1 }).retries, 0);
});

Deno.test("plain HTTP is allowed for loopback and insecureRegistries only", () => {
  const transport = new Transport({ insecureRegistries: ["10.0.0.5:5000", "lab.internal"] });
  assert.equal(transport.baseUrl("127.0.0.1:5000"), "http://127.0.0.1:5000");
  assert.equal(transport.baseUrl("127.8.9.10"), "http://127.8.9.10");
  assert.equal(transport.baseUrl("localhost:5000"), "http://localhost:5000");
  assert.equal(transport.baseUrl("[::1]:5000"), "http://[::1]:5000");
  assert.equal(transport.baseUrl("10.0.0.5:5000"), "http://10.0.0.5:5000");
  assert.equal(transport.baseUrl("10.0.0.5:6000"), "https://10.0.0.5:6000");
  assert.equal(transport.baseUrl("lab.internal:443"), "http://lab.internal:443");
  assert.equal(transport.baseUrl("ghcr.io"), "https://ghcr.io");
  assert.equal(transport.baseUrl("128.0.0.1"), "https://128.0.0.1");
  assert.equal(isLoopback("localhost.example.com"), false);
});

Deno.test("log lines and messages show URLs without their query strings", () => {
  assert.equal(
    displayUrl(new URL("https://r.example/v2/u/1?_state=s3cr3t&digest=x")),
    "https://r.example/v2/u/1",
  );
});

Deno.test("describeNetworkError() names common failures briefly", () => {
  assert.equal(
    describeNetworkError(
      new TypeError("error sending request", {
        cause: new Error("dns error: failed to lookup address information"),
      }),
    ),
    "DNS lookup failed",
  );
  assert.equal(
    describeNetworkError(new TypeError("invalid peer certificate: UnknownIssuer")),
    "TLS handshake failed (invalid peer certificate: UnknownIssuer)",
  );
  assert.equal(
    describeNetworkError(new DOMException("t", "TimeoutError")),
    "no answer within the timeout",
  );
});
