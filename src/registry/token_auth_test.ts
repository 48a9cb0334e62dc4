// The Bearer token flow against a real Distribution registry configured with `auth: token:`.
// The test runs its own token server (Deno.serve on 127.0.0.1) that signs JWTs with WebCrypto
// using an RSA key and self-signed certificate made by openssl; the registry trusts that
// certificate through `rootcertbundle`.

import assert from "node:assert/strict";
import { join } from "node:path";
import { RegistryClient } from "./client.ts";
import { RegistryError } from "./errors.ts";
import { DOCKER_REGISTRY_BIN, hasExecutable, pushTestImage, startRegistry } from "./testing.ts";

const OPENSSL = "/usr/bin/openssl";
const SERVICE = "imgtool-test-registry";
const ISSUER = "imgtool-test-issuer";
const USER = "bob";
const PASSWORD = "builder-pass-9f3";
const REFRESH_TOKEN = "refresh-token-5be1c0";

function base64url(bytes: Uint8Array | string): string {
  const raw = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  let binary = "";
  for (const b of raw) binary += String.fromCharCode(b);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function pemBody(pem: string): string {
  return pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
}

interface TokenServer {
  realm: string;
  /** Every token request: method, the scopes asked, whether it carried credentials. */
  requests: { method: string; service: string | null; scopes: string[]; who: string }[];
  /** Every token issued, to check none leaks. */
  issued: string[];
  close(): Promise<void>;
}

/** A token server in the style of Docker's: Basic for users, OAuth2 POST for refresh tokens. */
async function startTokenServer(dir: string): Promise<TokenServer> {
  const keyPem = await Deno.readTextFile(join(dir, "key.pem"));
  const certPem = await Deno.readTextFile(join(dir, "cert.pem"));
  const key = await crypto.subtle.importKey(
    "pkcs8",
    Uint8Array.from(atob(pemBody(keyPem)), (c) => c.charCodeAt(0)),
    { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const requests: TokenServer["requests"] = [];
  const issued: string[] = [];

  async function sign(subject: string, access: { name: string; actions: string[] }[]) {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: "JWT", alg: "RS256", x5c: [pemBody(certPem)] };
    const claims = {
      iss: ISSUER,
      sub: subject,
      aud: SERVICE,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: crypto.randomUUID(),
      access: access.map((a) => ({ type: "repository", ...a })),
    };
    const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = await crypto.subtle.sign(
      "RSASSA-PKCS1-v1_5",
      key,
      new TextEncoder().encode(input),
    );
    return `${input}.${base64url(new Uint8Array(signature))}`;
  }

  /** Users get what they ask for; anonymous callers get pull on public/* only. */
  function grant(who: string, scopes: string[]) {
    const access: { name: string; actions: string[] }[] = [];
    for (const scope of scopes) {
      const [type, name, actions] = scope.split(":");
      if (type !== "repository") continue;
      const asked = actions.split(",");
      const allowed = who === "anonymous"
        ? (name.startsWith("public/") ? asked.filter((a) => a === "pull") : [])
        : asked;
      if (allowed.length) access.push({ name, actions: allowed });
    }
    return access;
  }

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async function token(request) {
      const url = new URL(request.url);
      if (url.pathname !== "/token") return new Response("no", { status: 404 });
      let who = "anonymous";
      let scopes = url.searchParams.getAll("scope");
      let service = url.searchParams.get("service");
      if (request.method === "POST") {
        const form = new URLSearchParams(await request.text());
        if (
          form.get("grant_type") !== "refresh_token" || form.get("refresh_token") !== REFRESH_TOKEN
        ) {
          return Response.json({ error: "invalid_grant" }, { status: 401 });
        }
        who = USER;
        scopes = (form.get("scope") ?? "").split(" ").filter(Boolean);
        service = form.get("service");
      } else {
        const authorization = request.headers.get("authorization");
        if (authorization) {
          if (authorization !== `Basic ${btoa(`${USER}:${PASSWORD}`)}`) {
            // Echo what was sent, as a careless server might: the client must not repeat it.
            return Response.json({ details: `bad credentials: ${authorization}` }, { status: 401 });
          }
          who = USER;
        }
      }
      requests.push({ method: request.method, service, scopes, who });
      const jwt = await sign(who, grant(who, scopes));
      issued.push(jwt);
      const body = request.method === "POST"
        ? { access_token: jwt, expires_in: 300 }
        : { token: jwt, expires_in: 300, issued_at: new Date().toISOString() };
      return Response.json(body);
    },
  );
  return {
    realm: `http://127.0.0.1:${server.addr.port}/token`,
    requests,
    issued,
    close: () => server.shutdown(),
  };
}

const missing = !hasExecutable(DOCKER_REGISTRY_BIN)
  ? `${DOCKER_REGISTRY_BIN} is not installed`
  : !hasExecutable(OPENSSL)
  ? `${OPENSSL} is not installed`
  : undefined;
if (missing) console.warn(`skipping the token-auth registry test: ${missing}`);

Deno.test({
  name: "RegistryClient follows the Bearer token flow of a real token-auth registry",
  ignore: missing !== undefined,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "imgtool-token-" });
    const made = await new Deno.Command(OPENSSL, {
      args: [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
        "-days",
        "1",
        "-subj",
        "/CN=imgtool test token signer",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(made.code, 0, new TextDecoder().decode(made.stderr));
    const tokens = await startTokenServer(dir);
    const registry = await startRegistry({
      authYaml: () =>
        [
          "  token:",
          `    realm: ${tokens.realm}`,
          `    service: ${SERVICE}`,
          `    issuer: ${ISSUER}`,
          `    rootcertbundle: ${JSON.stringify(join(dir, "cert.pem"))}`,
        ].join("\n"),
    });
    const configDir = await Deno.makeTempDir({ prefix: "imgtool-docker-config-" });
    const logs: string[] = [];
    try {
      await Deno.writeTextFile(
        join(configDir, "config.json"),
        JSON.stringify({ auths: { [registry.host]: { auth: btoa(`${USER}:${PASSWORD}`) } } }),
      );
      // The token realm is plain HTTP on loopback: allowed, as for the registry itself.
      const client = new RegistryClient({ dockerConfigDir: configDir, log: (l) => logs.push(l) });
      const repo = `${registry.host}/private/app`;

      await t.step(
        "with credentials, pushing, indexing and checking work through tokens",
        async () => {
          await pushTestImage(client, `${repo}:amd64`, "linux/amd64");
          await pushTestImage(client, `${repo}:arm64`, "linux/arm64");
          await client.putIndex(`${repo}:1.0`, [
            { reference: ":amd64", platform: "linux/amd64" },
            { reference: ":arm64", platform: "linux/arm64" },
          ]);
          const status = await client.check(`${repo}:1.0`, ["linux/amd64", "linux/arm64"]);
          assert.equal(status.exists, true);
          assert.deepEqual(status.platforms, ["linux/amd64", "linux/arm64"]);
        },
      );

      await t.step(
        "the token server was asked with the service, the scope and Basic credentials",
        () => {
          assert.ok(tokens.requests.length > 0);
          for (const request of tokens.requests) {
            assert.equal(request.service, SERVICE);
            assert.equal(request.who, USER);
          }
          assert.ok(
            tokens.requests.some((r) => r.scopes.includes("repository:private/app:pull,push")),
            JSON.stringify(tokens.requests),
          );
        },
      );

      await t.step("tokens are cached per scope: one for push, then none for pulls", () => {
        assert.deepEqual(
          tokens.requests.map((r) => r.scopes[0]),
          ["repository:private/app:pull,push"],
        );
        assert.equal(logs.filter((l) => l.endsWith("-> 401")).length, 1);
      });

      await t.step("a missing tag is exists: false behind token auth too", async () => {
        assert.equal((await client.check(`${repo}:nope`, [])).exists, false);
      });

      await t.step(
        "anonymous pull of a public repository works; anonymous push is unauthorized",
        async () => {
          await pushTestImage(client, `${registry.host}/public/base:1`, "linux/amd64");
          const emptyDir = await Deno.makeTempDir();
          try {
            const anonymous = new RegistryClient({ dockerConfigDir: emptyDir });
            const status = await anonymous.check(`${registry.host}/public/base:1`, ["linux/amd64"]);
            assert.equal(status.exists, true);
            const error = await anonymous
              .pushBlob(`${registry.host}/public/base`, new TextEncoder().encode("x"))
              .then(() => assert.fail("expected an error"), (e: unknown) => e);
            assert.ok(error instanceof RegistryError);
            assert.equal(error.kind, "unauthorized");
            assert.match(error.hint ?? "", /docker login 127\.0\.0\.1:\d+/);
          } finally {
            await Deno.remove(emptyDir, { recursive: true });
          }
        },
      );

      await t.step("an identity token from config.json is exchanged by OAuth2 POST", async () => {
        const refreshDir = await Deno.makeTempDir();
        try {
          await Deno.writeTextFile(
            join(refreshDir, "config.json"),
            JSON.stringify({ auths: { [registry.host]: { identitytoken: REFRESH_TOKEN } } }),
          );
          const before = tokens.requests.length;
          const viaRefresh = new RegistryClient({ dockerConfigDir: refreshDir });
          await pushTestImage(viaRefresh, `${repo}:refreshed`, "linux/arm64");
          const posts = tokens.requests.slice(before).filter((r) => r.method === "POST");
          assert.ok(posts.length >= 1);
          assert.equal(posts[0].service, SERVICE);
        } finally {
          await Deno.remove(refreshDir, { recursive: true });
        }
      });

      await t.step(
        "rejected credentials are unauthorized and no secret or token leaks",
        async () => {
          const lines: string[] = [];
          const wrong = new RegistryClient({
            credentials: { username: USER, password: "wrong-password-0xdead" },
            log: (l) => lines.push(l),
          });
          const error = await wrong.check(`${repo}:1.0`, []).then(
            () => assert.fail("expected an error"),
            (e: unknown) => e,
          );
          assert.ok(error instanceof RegistryError);
          assert.equal(error.kind, "unauthorized");
          assert.match(error.message, /token server .* rejected the credentials/);
          const everything = [
            error.message,
            error.hint ?? "",
            String(error),
            Deno.inspect(error, { depth: 10 }),
            ...lines,
            ...logs,
          ].join("\n");
          const secrets = [
            "wrong-password-0xdead",
            btoa(`${USER}:wrong-password-0xdead`),
            PASSWORD,
            btoa(`${USER}:${PASSWORD}`),
            REFRESH_TOKEN,
            ...tokens.issued,
          ];
          for (const secret of secrets) {
            assert.ok(!everything.includes(secret), `a secret leaked into: ${everything}`);
          }
        },
      );
    } catch (error) {
      console.error(registry.output());
      throw error;
    } finally {
      await registry.stop();
      await tokens.close();
      await Deno.remove(configDir, { recursive: true });
      await Deno.remove(dir, { recursive: true });
    }
  },
});
