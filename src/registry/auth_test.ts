import assert from "node:assert/strict";
import { Authenticator, parseChallenges, repositoryScope } from "./auth.ts";
import type { Credential } from "./credentials.ts";
import { Redactor, RegistryError } from "./errors.ts";
import { Transport } from "./http.ts";
import { serveLocal } from "./testing.ts";

Deno.test("parseChallenges() reads a Bearer challenge with quoted parameters", () => {
  assert.deepEqual(
    parseChallenges(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",' +
        'scope="repository:library/ubuntu:pull,push",error="insufficient_scope"',
    ),
    [{
      scheme: "bearer",
      params: {
        realm: "https://auth.docker.io/token",
        service: "registry.docker.io",
        scope: "repository:library/ubuntu:pull,push",
        error: "insufficient_scope",
      },
    }],
  );
});

Deno.test("parseChallenges() reads several challenges, unquoted values and escapes", () => {
  assert.deepEqual(
    parseChallenges('Basic realm="a \\"quoted\\" realm", BEARER Realm=http://t/token , service=s'),
    [
      { scheme: "basic", params: { realm: 'a "quoted" realm' } },
      { scheme: "bearer", params: { realm: "http://t/token", service: "s" } },
    ],
  );
  assert.deepEqual(parseChallenges(""), []);
  assert.deepEqual(parseChallenges("Basic"), [{ scheme: "basic", params: {} }]);
});

Deno.test("repositoryScope() writes the distribution scope syntax", () => {
  assert.equal(repositoryScope("a/b", "pull,push"), "repository:a/b:pull,push");
});

interface FakeTokenServer {
  realm: string;
  calls: URL[];
  close(): Promise<void>;
}

function fakeTokenServer(body: (url: URL, n: number) => unknown, status = 200): FakeTokenServer {
  const calls: URL[] = [];
  const server = serveLocal((request) => {
    const url = new URL(request.url);
    calls.push(url);
    return Response.json(body(url, calls.length), { status });
  });
  return { realm: `${server.origin}/token`, calls, close: () => server.close() };
}

function authenticator(
  credential: Credential | undefined,
  now: () => number = Date.now,
  redactor = new Redactor(),
) {
  return new Authenticator({
    transport: new Transport({ retries: 0, redactor }),
    credential: () => Promise.resolve(credential),
    redactor,
    unauthorizedHint: (registry) => `run docker login ${registry}`,
    now,
  });
}

Deno.test("a Bearer challenge gets a token from the realm with service and scopes", async () => {
  const tokens = fakeTokenServer((_url, n) => ({ token: `token-${n}`, expires_in: 300 }));
  try {
    const auth = authenticator({ username: "u", password: "p", source: "test" });
    const scope = "repository:a:pull";
    // A registry spoken to over plain HTTP by choice, like its loopback token server.
    const value = await auth.answerChallenge(
      "reg.example",
      "http://reg.example",
      scope,
      `Bearer realm="${tokens.realm}",service="svc",scope="repository:a:pull repository:b:pull"`,
    );
    assert.equal(value, "Bearer token-1");
    const url = tokens.calls[0];
    assert.equal(url.searchParams.get("service"), "svc");
    assert.deepEqual(url.searchParams.getAll("scope"), ["repository:a:pull", "repository:b:pull"]);
  } finally {
    await tokens.close();
  }
});

Deno.test("tokens are cached per scope until they expire", async () => {
  const tokens = fakeTokenServer((_url, n) => ({ access_token: `token-${n}`, expires_in: 120 }));
  let now = 1_000_000;
  try {
    const auth = authenticator(undefined, () => now);
    const pull = "repository:a:pull";
    assert.equal(
      await auth.authorization("r", "https://r", pull),
      undefined,
      "nothing before a challenge",
    );
    await auth.answerChallenge(
      "r",
      "https://r",
      pull,
      `Bearer realm="${tokens.realm}",service="s"`,
    );
    assert.equal(await auth.authorization("r", "https://r", pull), "Bearer token-1");
    assert.equal(tokens.calls.length, 1);
    // Another scope needs its own token, fetched up front now that the realm is known.
    assert.equal(await auth.authorization("r", "https://r", "repository:b:pull"), "Bearer token-2");
    now += 109_000; // within 120 s minus the 10 s safety margin
    assert.equal(await auth.authorization("r", "https://r", pull), "Bearer token-1");
    now += 2_000;
    assert.equal(await auth.authorization("r", "https://r", pull), "Bearer token-3");
    assert.equal(tokens.calls.length, 3);
  } finally {
    await tokens.close();
  }
});

Deno.test("a token without expires_in (or a shorter one) lives 60 seconds", async () => {
  const tokens = fakeTokenServer((_url, n) => ({ token: `t${n}`, expires_in: 5 }));
  let now = 0;
  try {
    const auth = authenticator(undefined, () => now);
    await auth.answerChallenge(
      "r",
      "https://r",
      "repository:a:pull",
      `Bearer realm="${tokens.realm}"`,
    );
    now = 49_000;
    assert.equal(await auth.authorization("r", "https://r", "repository:a:pull"), "Bearer t1");
    now = 51_000;
    assert.equal(await auth.authorization("r", "https://r", "repository:a:pull"), "Bearer t2");
  } finally {
    await tokens.close();
  }
});

Deno.test("a push token also serves pulls of the same repository", async () => {
  const tokens = fakeTokenServer((_url, n) => ({ token: `t${n}` }));
  try {
    const auth = authenticator(undefined);
    await auth.answerChallenge(
      "r",
      "https://r",
      "repository:a:pull,push",
      `Bearer realm="${tokens.realm}"`,
    );
    assert.equal(await auth.authorization("r", "https://r", "repository:a:pull"), "Bearer t1");
    assert.equal(tokens.calls.length, 1);
  } finally {
    await tokens.close();
  }
});

Deno.test("concurrent requests for one scope share one token request", async () => {
  const tokens = fakeTokenServer((_url, n) => ({ token: `t${n}` }));
  try {
    const auth = authenticator(undefined);
    await auth.answerChallenge(
      "r",
      "https://r",
      "repository:x:pull",
      `Bearer realm="${tokens.realm}"`,
    );
    const values = await Promise.all(
      [1, 2, 3].map(() => auth.authorization("r", "https://r", "repository:y:pull")),
    );
    assert.deepEqual(values, ["Bearer t2", "Bearer t2", "Bearer t2"]);
    assert.equal(tokens.calls.length, 2);
  } finally {
    await tokens.close();
  }
});

Deno.test("a token server refusing the credentials is unauthorized, without the secret", async () => {
  const tokens = fakeTokenServer(() => ({ error: "bad" }), 401);
  try {
    const auth = authenticator({
      username: "u",
      password: "hunter2-secret",
      source: "config.json",
    });
    const error = await auth.answerChallenge(
      "r.example",
      "http://r.example",
      "repository:a:pull",
      `Bearer realm="${tokens.realm}"`,
    )
      .then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.ok(error instanceof RegistryError);
    assert.equal(error.kind, "unauthorized");
    assert.match(error.message, /rejected the credentials from config\.json/);
    assert.equal(error.hint, "run docker login r.example");
    assert.ok(!Deno.inspect(error).includes("hunter2-secret"));
    assert.ok(!Deno.inspect(error).includes(btoa("u:hunter2-secret")));
  } finally {
    await tokens.close();
  }
});

Deno.test("a token answer without token or access_token is a protocol error quoting nothing", async () => {
  const tokens = fakeTokenServer(() => ({ jwt: "unexpected-field-secret" }));
  try {
    const error = await authenticator(undefined)
      .answerChallenge("r", "https://r", "repository:a:pull", `Bearer realm="${tokens.realm}"`)
      .then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.ok(error instanceof RegistryError);
    assert.equal(error.kind, "protocol");
    assert.ok(!error.message.includes("unexpected-field-secret"));
  } finally {
    await tokens.close();
  }
});

Deno.test("credentials are not sent to a plain-HTTP token realm on a non-loopback host", async () => {
  const error = await authenticator({ username: "u", password: "p", source: "test" })
    .answerChallenge(
      "r",
      "http://r",
      "repository:a:pull",
      'Bearer realm="http://auth.example/token"',
    )
    .then(() => assert.fail("expected an error"), (e: unknown) => e);
  assert.ok(error instanceof RegistryError);
  assert.match(error.message, /over plain HTTP; credentials are not sent that way/);
});

Deno.test("an HTTPS registry's plain-HTTP realm gets no credentials, even on loopback", async () => {
  const tokens = fakeTokenServer((_url, n) => ({ token: `t${n}` }));
  try {
    const auth = authenticator({ username: "u", password: "p-778", source: "test" });
    const error = await auth
      .answerChallenge(
        "reg.example",
        "https://reg.example",
        "repository:a:pull",
        `Bearer realm="${tokens.realm}"`,
      )
      .then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.ok(error instanceof RegistryError);
    assert.equal(error.kind, "protocol");
    assert.match(error.message, /over plain HTTP, though the registry itself speaks HTTPS/);
    assert.equal(tokens.calls.length, 0, "nothing reached the token server");
    // The refused realm is not remembered as how the registry authenticates.
    assert.equal(
      await auth.authorization("reg.example", "https://reg.example", "repository:a:pull"),
      undefined,
    );
    assert.equal(tokens.calls.length, 0);
  } finally {
    await tokens.close();
  }
});

Deno.test("an HTTPS registry's plain-HTTP realm still serves anonymous tokens", async () => {
  const tokens = fakeTokenServer((_url, n) => ({ token: `t${n}` }));
  try {
    const value = await authenticator(undefined)
      .answerChallenge(
        "reg.example",
        "https://reg.example",
        "repository:a:pull",
        `Bearer realm="${tokens.realm}"`,
      );
    assert.equal(value, "Bearer t1");
  } finally {
    await tokens.close();
  }
});

Deno.test("a realm URL with a user name or password in it is refused before any request", async () => {
  const tokens = fakeTokenServer((_url, n) => ({ token: `t${n}` }));
  try {
    const realm = tokens.realm.replace("http://", "http://planted:pw-from-registry@");
    const error = await authenticator(undefined)
      .answerChallenge("r", "http://r", "repository:a:pull", `Bearer realm="${realm}"`)
      .then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.ok(error instanceof RegistryError);
    assert.equal(error.kind, "protocol");
    assert.match(error.message, /token realm with a user name or password in its URL/);
    assert.ok(!error.message.includes("pw-from-registry"));
    assert.equal(tokens.calls.length, 0);
  } finally {
    await tokens.close();
  }
});

Deno.test("an identity token is not carried by a redirect to another origin", async () => {
  const elsewhere: string[] = [];
  const thief = serveLocal(async (request) => {
    elsewhere.push(await request.text());
    return Response.json({ access_token: "stolen" });
  });
  const realm = serveLocal(() => Response.redirect(`${thief.origin}/token`, 307));
  try {
    const auth = authenticator({ username: "", identityToken: "refresh-9d1e", source: "test" });
    const error = await auth
      .answerChallenge("r", "http://r", "repository:a:pull", `Bearer realm="${realm.origin}/token"`)
      .then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.ok(error instanceof RegistryError);
    assert.match(
      error.message,
      new RegExp(`redirected to ${thief.host}, which would receive the credentials`),
    );
    assert.deepEqual(elsewhere, []);
  } finally {
    await realm.close();
    await thief.close();
  }
});

Deno.test("a Basic challenge is answered with the credentials, and then sent up front", async () => {
  const redactor = new Redactor();
  const auth = authenticator(
    { username: "u", password: "pw-1234", source: "test" },
    Date.now,
    redactor,
  );
  const value = await auth.answerChallenge(
    "r",
    "https://r",
    "repository:a:pull",
    'Basic realm="x"',
  );
  assert.equal(value, `Basic ${btoa("u:pw-1234")}`);
  assert.equal(await auth.authorization("r", "https://r", "repository:b:pull"), value);
  assert.equal(redactor.redact(`echo ${value} and pw-1234`), "echo Basic *** and ***");
});

Deno.test("a Basic challenge without credentials is unauthorized with the login hint", async () => {
  await assert.rejects(
    authenticator(undefined).answerChallenge(
      "r.example",
      "https://r.example",
      "s",
      'Basic realm="x"',
    ),
    (error: unknown) =>
      error instanceof RegistryError && error.kind === "unauthorized" &&
      /no credentials for it were found/.test(error.message) &&
      error.hint === "run docker login r.example",
  );
});

Deno.test("a 401 without a usable challenge is a protocol error", async () => {
  await assert.rejects(
    authenticator(undefined).answerChallenge("r", "https://r", "s", "Negotiate abc"),
    (error: unknown) =>
      error instanceof RegistryError && error.kind === "protocol" &&
      /negotiate/.test(error.message),
  );
  await assert.rejects(
    authenticator(undefined).answerChallenge("r", "https://r", "s", null),
    { kind: "protocol" },
  );
});
