/**
 * Registry authentication, the standard challenge flow: a 401 carries
 * `WWW-Authenticate: Bearer realm=...,service=...,scope=...`; we ask the realm for a token
 * (with Basic credentials when we have them, anonymously otherwise; an identity token is
 * exchanged by OAuth2 POST), retry with `Authorization: Bearer`, and cache the token per
 * scope until it expires. `WWW-Authenticate: Basic` means Basic auth on every request.
 *
 * @module
 */

import { readCapped } from "./bytes.ts";
import type { Credential } from "./credentials.ts";
import { encodeBase64, type Redactor, RegistryError } from "./errors.ts";
import { displayUrl, type Transport } from "./http.ts";

/** One challenge of a `WWW-Authenticate` header. */
export interface Challenge {
  /** The scheme, lower case: `bearer`, `basic`. */
  scheme: string;
  /** Its parameters, names in lower case: `realm`, `service`, `scope`, `error`. */
  params: Record<string, string>;
}

/**
 * Parse a `WWW-Authenticate` header into its challenges (RFC 9110: several may share one
 * header, separated by commas, and parameter values may be quoted with escapes).
 *
 * @example
 * ```ts
 * import { parseChallenges } from "./auth.ts";
 * const [challenge] = parseChallenges(
 *   'Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull"',
 * );
 * console.log(challenge.scheme, challenge.params.service); // bearer registry
 * ```
 */
export function parseChallenges(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  let i = 0;
  const n = header.length;
  function skipSpace() {
    while (i < n && (header[i] === " " || header[i] === "\t")) i++;
  }
  function readToken(): string {
    const start = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z/]/.test(header[i])) i++;
    return header.slice(start, i);
  }
  function readQuoted(): string {
    let out = "";
    i++; // the opening quote
    while (i < n && header[i] !== '"') {
      if (header[i] === "\\" && i + 1 < n) i++;
      out += header[i++];
    }
    i++; // the closing quote
    return out;
  }
  let current: Challenge | undefined;
  while (i < n) {
    skipSpace();
    if (header[i] === ",") {
      i++;
      continue;
    }
    const token = readToken();
    if (token === "") {
      i++; // a stray character: skip it rather than loop forever
      continue;
    }
    skipSpace();
    if (header[i] === "=" && current) {
      // A parameter of the current challenge (`=` after a token). token68 values are rare in
      // registries and land here as a parameter with an empty name's worth of garbage: ignored.
      i++;
      skipSpace();
      const value = header[i] === '"' ? readQuoted() : readValue();
      current.params[token.toLowerCase()] = value;
    } else {
      current = { scheme: token.toLowerCase(), params: {} };
      challenges.push(current);
    }
  }
  return challenges;

  function readValue(): string {
    const start = i;
    while (i < n && header[i] !== "," && header[i] !== " " && header[i] !== "\t") i++;
    return header.slice(start, i);
  }
}

/**
 * The token scope for a repository: `repository:<name>:pull` or `...:pull,push`.
 *
 * @example
 * ```ts
 * import { repositoryScope } from "./auth.ts";
 * console.log(repositoryScope("library/ubuntu", "pull")); // repository:library/ubuntu:pull
 * ```
 */
export function repositoryScope(repository: string, actions: "pull" | "pull,push"): string {
  return `repository:${repository}:${actions}`;
}

/** What the authenticator needs from the client. */
export interface AuthenticatorOptions {
  /** Sends the token requests (with the client's retries and timeouts). */
  transport: Transport;
  /** The credentials for a registry, or `undefined` for anonymous. */
  credential: (registry: string) => Promise<Credential | undefined>;
  /** Where to register tokens so that no message or log line shows them. */
  redactor: Redactor;
  /** The hint for an `unauthorized` error: how to give us (better) credentials. */
  unauthorizedHint: (registry: string, credential: Credential | undefined) => string;
  /** The clock, in milliseconds (tests move it to expire tokens). */
  now?: () => number;
}

type HostScheme =
  | { scheme: "basic" }
  | { scheme: "bearer"; realm: string; service?: string };

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Per the distribution spec: a token without `expires_in` lasts 60 s, and never less. */
const MIN_TOKEN_LIFETIME_S = 60;
/** Renew a little early so a token does not expire between check and use. */
const EXPIRY_MARGIN_MS = 10_000;
const MAX_TOKEN_RESPONSE = 1024 * 1024;

/**
 * Answers registry challenges and remembers, per registry origin, how it authenticates and
 * which tokens are still valid. Only challenges the registry's own origin sent may be given
 * to it: the caller judges that by the URL that answered, after redirects.
 *
 * @example
 * ```ts
 * import { Authenticator } from "./auth.ts";
 * import { Redactor } from "./errors.ts";
 * import { Transport } from "./http.ts";
 * const auth = new Authenticator({
 *   transport: new Transport(),
 *   credential: () => Promise.resolve({ username: "me", password: "secret", source: "test" }),
 *   redactor: new Redactor(),
 *   unauthorizedHint: () => "log in",
 * });
 * const header = await auth.answerChallenge("127.0.0.1:5000", "http://127.0.0.1:5000",
 *   "repository:a:pull", 'Basic realm="test"');
 * console.log(header.startsWith("Basic ")); // true
 * ```
 */
export class Authenticator {
  #options: AuthenticatorOptions;
  #now: () => number;
  #schemes = new Map<string, HostScheme>();
  #tokens = new Map<string, CachedToken>();
  #pending = new Map<string, Promise<string>>();
  /** How many tokens were fetched (for tests and logs). */
  tokenRequests = 0;

  /** Make an authenticator. */
  constructor(options: AuthenticatorOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The `Authorization` value to send up front to the registry at `origin`
   * (`https://ghcr.io`) for `scope`, if an earlier challenge taught us how it authenticates;
   * `undefined` otherwise.
   */
  async authorization(
    registry: string,
    origin: string,
    scope: string,
  ): Promise<string | undefined> {
    const known = this.#schemes.get(origin);
    if (!known) return undefined;
    if (known.scheme === "basic") return await this.#basic(registry);
    const cached = this.#cachedToken(origin, scope);
    if (cached) return `Bearer ${cached}`;
    const token = await this.#token(registry, origin, known.realm, known.service, [scope]);
    return `Bearer ${token}`;
  }

  /**
   * The `Authorization` value to retry with after a 401 whose `WWW-Authenticate` header is
   * `header`. The caller vouches that the registry at `origin` sent that 401 itself (not a
   * host it redirected to): what it says decides how we authenticate there from now on.
   * Throws a {@link RegistryError} when the challenge cannot be answered, or would take
   * the credentials somewhere they must not go (a realm over plain HTTP for an HTTPS
   * registry, or with a user name or password in its URL).
   */
  async answerChallenge(
    registry: string,
    origin: string,
    scope: string,
    header: string | null,
  ): Promise<string> {
    const challenges = parseChallenges(header ?? "");
    const bearer = challenges.find((c) => c.scheme === "bearer");
    const basic = challenges.find((c) => c.scheme === "basic");
    if (bearer) {
      const realm = bearer.params.realm;
      if (!realm) {
        throw new RegistryError(
          "protocol",
          `registry ${registry} asked for a Bearer token but named no realm to get it from`,
          { registry, status: 401, hint: "check the registry's auth configuration" },
        );
      }
      // Checked before it is remembered: a realm we refuse must not be asked later either.
      await this.#checkRealm(registry, origin, realm);
      this.#schemes.set(origin, { scheme: "bearer", realm, service: bearer.params.service });
      // The token we sent (if any) was not good enough: forget it and ask again, for our
      // scope and whatever scope the registry says it needs.
      this.#forgetTokens(origin, scope);
      const scopes = [scope];
      for (const s of (bearer.params.scope ?? "").split(" ")) {
        if (s && !scopes.includes(s)) scopes.push(s);
      }
      const token = await this.#token(
        registry,
        origin,
        realm,
        bearer.params.service,
        scopes,
        scope,
      );
      return `Bearer ${token}`;
    }
    if (basic) {
      this.#schemes.set(origin, { scheme: "basic" });
      const value = await this.#basic(registry);
      if (value) return value;
      const credential = await this.#options.credential(registry);
      throw new RegistryError(
        "unauthorized",
        `registry ${registry} requires a user name and password (HTTP Basic auth), and ` +
          (credential
            ? `the credentials from ${credential.source} have none (only an identity token)`
            : "no credentials for it were found"),
        { registry, status: 401, hint: this.#options.unauthorizedHint(registry, credential) },
      );
    }
    throw new RegistryError(
      "protocol",
      `registry ${registry} answered 401 without a challenge this client can answer` +
        (challenges.length ? ` (schemes: ${challenges.map((c) => c.scheme).join(", ")})` : ""),
      { registry, status: 401, hint: "check the registry's auth configuration" },
    );
  }

  async #basic(registry: string): Promise<string | undefined> {
    const credential = await this.#options.credential(registry);
    if (!credential || credential.password === undefined) return undefined;
    const pair = `${credential.username}:${credential.password}`;
    this.#options.redactor.add(credential.password);
    this.#options.redactor.add(pair);
    return `Basic ${encodeBase64(pair)}`;
  }

  #cachedToken(origin: string, scope: string): string | undefined {
    // A pull,push token also serves pulls.
    const candidates = [scope];
    if (scope.endsWith(":pull")) candidates.push(`${scope},push`);
    for (const s of candidates) {
      const cached = this.#tokens.get(`${origin} ${s}`);
      if (cached && cached.expiresAt > this.#now()) return cached.token;
    }
    return undefined;
  }

  #forgetTokens(origin: string, scope: string): void {
    this.#tokens.delete(`${origin} ${scope}`);
    if (scope.endsWith(":pull")) this.#tokens.delete(`${origin} ${scope},push`);
  }

  /** Get (or share a pending request for) a token, and cache it under `cacheScope`. */
  #token(
    registry: string,
    origin: string,
    realm: string,
    service: string | undefined,
    scopes: string[],
    cacheScope = scopes[0],
  ): Promise<string> {
    const key = `${origin} ${scopes.join(" ")}`;
    const pending = this.#pending.get(key);
    if (pending) return pending;
    const request = this.#fetchToken(registry, realm, service, scopes).then(
      (result) => {
        this.#tokens.set(`${origin} ${cacheScope}`, result);
        return result.token;
      },
    ).finally(() => this.#pending.delete(key));
    this.#pending.set(key, request);
    return request;
  }

  /**
   * The realm as a URL, if credentials for `registry` (at `origin`) may go there: an HTTP(S)
   * URL without userinfo, over HTTPS unless both the registry and the realm are spoken to
   * over plain HTTP by choice (loopback, insecureRegistries). Anonymous token requests may
   * use plain HTTP: they carry nothing to steal.
   */
  async #checkRealm(registry: string, origin: string, realm: string): Promise<URL> {
    const { transport } = this.#options;
    const refuse = (what: string, hint = "check the registry's auth configuration"): never => {
      throw new RegistryError("protocol", `registry ${registry} ${what}`, {
        registry,
        status: 401,
        hint,
      });
    };
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      return refuse(
        `named a token realm that is not a URL: ${JSON.stringify(realm.slice(0, 200))}`,
      );
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      refuse(`named a token realm that is not HTTP(S): ${displayUrl(url)}`);
    }
    if (url.username !== "" || url.password !== "") {
      // fetch would send them as Basic credentials of the registry's choosing, beside ours.
      refuse(
        `named a token realm with a user name or password in its URL (${displayUrl(url)}); ` +
          `imgtool does not use it`,
      );
    }
    if (url.protocol === "http:") {
      const registryOverHttps = new URL(origin).protocol === "https:";
      const credential = await this.#options.credential(registry);
      if (credential && (registryOverHttps || !transport.plainHttpAllowed(url.host))) {
        refuse(
          `sends us to the token server ${displayUrl(url)} over plain HTTP` +
            (registryOverHttps ? `, though the registry itself speaks HTTPS` : "") +
            `; credentials are not sent that way, so nothing was sent`,
          registryOverHttps
            ? `serve the token server over HTTPS (the registry's realm setting)`
            : `serve the token server over HTTPS, or list ${url.host} in insecureRegistries ` +
              `if this is a test setup`,
        );
      }
    }
    return url;
  }

  async #fetchToken(
    registry: string,
    realm: string,
    service: string | undefined,
    scopes: string[],
  ): Promise<CachedToken> {
    const { transport, redactor } = this.#options;
    const url = new URL(realm);
    const credential = await this.#options.credential(registry);
    const headers = new Headers({ accept: "application/json" });
    let method = "GET";
    let body: Uint8Array | undefined;
    if (credential?.identityToken) {
      // An identity token is an OAuth2 refresh token: exchange it by POST.
      redactor.add(credential.identityToken);
      method = "POST";
      const form = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: credential.identityToken,
        client_id: "imgtool",
        scope: scopes.join(" "),
      });
      if (service) form.set("service", service);
      headers.set("content-type", "application/x-www-form-urlencoded");
      body = new TextEncoder().encode(form.toString());
    } else {
      if (service) url.searchParams.set("service", service);
      for (const scope of scopes) url.searchParams.append("scope", scope);
      if (credential?.password !== undefined) {
        const pair = `${credential.username}:${credential.password}`;
        redactor.add(credential.password);
        redactor.add(pair);
        headers.set("authorization", `Basic ${encodeBase64(pair)}`);
      }
    }
    this.tokenRequests++;
    const { response, attempts } = await transport.send(url, { method, headers, body }, {
      registry,
      credentialsInBody: body !== undefined,
    });
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      throw new RegistryError(
        "unauthorized",
        credential
          ? `the token server ${displayUrl(url)} for registry ${registry} rejected the ` +
            `credentials from ${credential.source} (HTTP ${response.status})`
          : `registry ${registry} requires authentication for ${scopes[0]}, and no credentials ` +
            `for it were found (the token server ${displayUrl(url)} answered ${response.status})`,
        {
          registry,
          status: response.status,
          hint: this.#options.unauthorizedHint(registry, credential),
        },
      );
    }
    if (response.status >= 500 || response.status === 429) {
      await response.body?.cancel();
      throw new RegistryError(
        "unreachable",
        `the token server ${displayUrl(url)} for registry ${registry} answered ` +
          `${response.status} after ${attempts} attempt${attempts === 1 ? "" : "s"}`,
        { registry, status: response.status, hint: "the token server is failing; try again later" },
      );
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new RegistryError(
        "protocol",
        `the token server ${displayUrl(url)} for registry ${registry} answered ${response.status}`,
        { registry, status: response.status, hint: "check the registry's auth configuration" },
      );
    }
    function tooBig(): never {
      throw new RegistryError(
        "protocol",
        `the token server ${displayUrl(url)} sent more than 1 MiB`,
        { registry, hint: "check the registry's auth configuration" },
      );
    }
    let parsed: unknown;
    try {
      const bytes = await readCapped(response.body, MAX_TOKEN_RESPONSE, tooBig);
      parsed = JSON.parse(new TextDecoder().decode(bytes));
    } catch (error) {
      if (error instanceof RegistryError) throw error;
      parsed = undefined;
    }
    const record = typeof parsed === "object" && parsed !== null
      ? parsed as Record<string, unknown>
      : {};
    const token = typeof record.token === "string" && record.token
      ? record.token
      : typeof record.access_token === "string" && record.access_token
      ? record.access_token
      : undefined;
    if (token === undefined) {
      // Never quote the answer: it may hold a token under a name we did not expect.
      throw new RegistryError(
        "protocol",
        `the token server ${displayUrl(url)} for registry ${registry} answered without a ` +
          `"token" or "access_token"`,
        { registry, hint: "check the registry's auth configuration" },
      );
    }
    redactor.add(token);
    if (typeof record.refresh_token === "string") redactor.add(record.refresh_token);
    const expiresIn = typeof record.expires_in === "number" ? record.expires_in : 0;
    const lifetimeMs = Math.max(expiresIn, MIN_TOKEN_LIFETIME_S) * 1000;
    const issuedAt = typeof record.issued_at === "string" ? Date.parse(record.issued_at) : NaN;
    // Trust the server's issue time only if our clocks roughly agree.
    const start = Number.isFinite(issuedAt) && Math.abs(issuedAt - this.#now()) < 60_000
      ? issuedAt
      : this.#now();
    return { token, expiresAt: start + lifetimeMs - EXPIRY_MARGIN_MS };
  }
}
