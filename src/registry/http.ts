/**
 * The HTTP layer under the registry client: per-request timeouts, bounded retries with
 * jittered exponential backoff for network errors, 5xx and 429, careful redirects (no
 * Authorization to another origin, no silent downgrade to plain HTTP), and the choice of
 * TLS or plain HTTP per registry host.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import { Redactor, RegistryError } from "./errors.ts";
import {
  DEFAULT_SLOW_REQUEST_MS,
  type ProgressListener,
  type RequestProgress,
} from "./progress.ts";
import { retryDelayMs } from "./retry.ts";
import { after, every } from "../timers.ts";

/** How the transport behaves; every field has a default. */
export interface TransportOptions {
  /** The fetch to use (tests only). */
  fetch?: typeof fetch;
  /** Extra attempts after the first, for network errors, 5xx and 429. Default 3. */
  retries?: number;
  /**
   * The time one attempt may take, from sending to the end of the body, in milliseconds.
   * Default 30 s; a positive, finite number.
   */
  timeoutMs?: number;
  /** Receives a report while a request waits long or is retried (see {@link RequestProgress}). */
  onProgress?: ProgressListener;
  /** How long an attempt waits before `onProgress` hears of it, and how often after. Default 5 s. */
  slowRequestMs?: number;
  /** The random source of the retry jitter, numbers in [0, 1); default `Math.random`. */
  random?: () => number;
  /** The User-Agent header. */
  userAgent?: string;
  /** Receives one line per request and per retry (no secrets: they are redacted). */
  log?: (line: string) => void;
  /** Blanks secrets out of log lines and messages. */
  redactor?: Redactor;
  /** Hosts (`host` or `host:port`) besides loopback that may be reached over plain HTTP. */
  insecureRegistries?: string[];
}

/** What one request is, for messages and retry decisions. */
export interface SendOptions {
  /** The registry the request is for (`docker.io`, `127.0.0.1:5000`), named in errors. */
  registry: string;
  /** Whether to retry it; default true. Off for requests that must not be repeated alone. */
  retry?: boolean;
  /**
   * The body carries a credential (an OAuth2 refresh token): a redirect that would take the
   * body to another origin is refused instead of followed.
   */
  credentialsInBody?: boolean;
}

/** The answer to a request, how many attempts it took, and where it came from. */
export interface Sent {
  /** The final response (after redirects); its body is unread. */
  response: Response;
  /** How many attempts were made. */
  attempts: number;
  /**
   * The URL that gave the final response: the request's own, or where redirects led. Who
   * answered decides whether a challenge in the answer counts.
   */
  url: URL;
}

/** The number of retries when none is configured. */
export const DEFAULT_RETRIES = 3;
/** The per-request timeout when none is configured, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** The longest per-request timeout accepted, in milliseconds (one day). */
export const MAX_TIMEOUT_MS = 24 * 60 * 60 * 1000;
const MAX_RETRIES = 10;
const MAX_REDIRECTS = 10;

/**
 * Whether `host` (`host[:port]`, IPv6 in brackets) is this machine: `localhost`,
 * `127.0.0.0/8` or `::1`.
 *
 * @example
 * ```ts
 * import { isLoopback } from "./http.ts";
 * console.log(isLoopback("127.0.0.1:5000"), isLoopback("[::1]:5000"), isLoopback("ghcr.io"));
 * // true true false
 * ```
 */
export function isLoopback(host: string): boolean {
  const name = hostName(host);
  return name === "localhost" || name === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

function hostName(host: string): string {
  const lower = host.toLowerCase();
  if (lower.startsWith("[")) return lower.slice(1, lower.indexOf("]"));
  const colon = lower.lastIndexOf(":");
  return colon === -1 ? lower : lower.slice(0, colon);
}

/**
 * A URL as it may appear in messages and logs: without its query string, which can carry
 * upload state or tokens.
 *
 * @example
 * ```ts
 * import { displayUrl } from "./http.ts";
 * console.log(displayUrl(new URL("http://127.0.0.1:5000/v2/a/blobs/uploads/1?_state=abc")));
 * // http://127.0.0.1:5000/v2/a/blobs/uploads/1
 * ```
 */
export function displayUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/**
 * Sends requests with timeouts, bounded retries and safe redirects. Network failures that
 * outlast the retries become a {@link RegistryError} of kind `unreachable`; HTTP answers,
 * good or bad, are returned for the caller to judge.
 *
 * @example
 * ```ts
 * import { Transport } from "./http.ts";
 * const transport = new Transport({
 *   fetch: () => Promise.resolve(new Response("{}", { status: 200 })),
 * });
 * const { response, attempts } = await transport.send(
 *   new URL("http://127.0.0.1:5000/v2/"),
 *   { method: "GET" },
 *   { registry: "127.0.0.1:5000" },
 * );
 * await response.body?.cancel();
 * console.log(response.status, attempts); // 200 1
 * ```
 */
export class Transport {
  /** Extra attempts after the first. */
  readonly retries: number;
  /** The time one attempt may take, in milliseconds. */
  readonly timeoutMs: number;
  /** How long an attempt waits before it is reported as slow, in milliseconds. */
  readonly slowRequestMs: number;
  /** The User-Agent header. */
  readonly userAgent: string;
  #fetch: typeof fetch;
  #log?: (line: string) => void;
  #onProgress?: ProgressListener;
  #random: () => number;
  #redactor: Redactor;
  #insecure: Set<string>;

  /** Make a transport. */
  constructor(options: TransportOptions = {}) {
    const retries = options.retries ?? DEFAULT_RETRIES;
    // Bounded whatever the caller asks: a registry that keeps failing must end in an error.
    this.retries = Math.max(0, Math.min(MAX_RETRIES, Math.floor(retries)));
    this.timeoutMs = durationOption("timeoutMs", options.timeoutMs, DEFAULT_TIMEOUT_MS);
    this.slowRequestMs = durationOption(
      "slowRequestMs",
      options.slowRequestMs,
      DEFAULT_SLOW_REQUEST_MS,
    );
    this.#fetch = options.fetch ?? fetch;
    this.userAgent = options.userAgent ?? "imgtool";
    this.#log = options.log;
    this.#onProgress = options.onProgress;
    this.#random = options.random ?? Math.random;
    this.#redactor = options.redactor ?? new Redactor();
    this.#insecure = new Set((options.insecureRegistries ?? []).map((h) => h.toLowerCase()));
  }

  /** Whether `host` (`host[:port]`) may be spoken to over plain HTTP. */
  plainHttpAllowed(host: string): boolean {
    const lower = host.toLowerCase();
    return isLoopback(lower) || this.#insecure.has(lower) || this.#insecure.has(hostName(lower));
  }

  /** `https://host` or, for loopback and insecure registries, `http://host`. */
  baseUrl(host: string): string {
    return `${this.plainHttpAllowed(host) ? "http" : "https"}://${host}`;
  }

  /** Write a log line, secrets redacted. */
  log(line: string): void {
    this.#log?.(this.#redactor.redact(line));
  }

  /**
   * The wait before retry number `attempt` (0-based), honouring a bounded `Retry-After`:
   * {@link retryDelayMs} with this transport's random source.
   */
  backoffMs(attempt: number, retryAfter?: string | null): number {
    return retryDelayMs(attempt, { retryAfter, random: this.#random });
  }

  /**
   * Wait before retrying a request whose attempt number `attempt` (0-based) failed for
   * `reason`: log it, tell `onProgress`, sleep the {@link Transport.backoffMs} delay.
   * For callers with retry loops of their own (an upload restarted from scratch).
   */
  async pauseBeforeRetry(request: {
    method: string;
    url: URL;
    attempt: number;
    attempts: number;
    startedAt: number;
    reason: string;
    retryAfter?: string | null;
  }): Promise<void> {
    const delay = this.backoffMs(request.attempt, request.retryAfter);
    const { method, url } = request;
    this.log(`${method} ${displayUrl(url)} ${request.reason}; retrying in ${delay} ms`);
    this.#report({
      kind: "retrying",
      method,
      host: url.host,
      path: url.pathname,
      attempt: request.attempt + 1,
      attempts: request.attempts,
      elapsedMs: Date.now() - request.startedAt,
      retryInMs: delay,
      reason: request.reason,
    });
    await sleep(delay);
  }

  /** Send a request, retrying as configured; see the class doc. */
  async send(
    url: URL,
    init: { method: string; headers?: Headers; body?: Uint8Array },
    options: SendOptions,
  ): Promise<Sent> {
    const attempts = options.retry === false ? 1 : this.retries + 1;
    const headers = new Headers(init.headers);
    if (!headers.has("user-agent")) headers.set("user-agent", this.userAgent);
    const startedAt = Date.now();
    let lastError: unknown;
    for (let attempt = 0; attempt < attempts; attempt++) {
      const signal = AbortSignal.timeout(this.timeoutMs);
      let response: Response | undefined;
      let answeredBy = url;
      // While no answer comes, say so every slowRequestMs, naming the host waited on.
      const stopWaiting = this.#onProgress
        ? every(this.slowRequestMs, () => {
          this.#report({
            kind: "waiting",
            method: init.method,
            host: answeredBy.host,
            path: answeredBy.pathname,
            attempt: attempt + 1,
            attempts,
            elapsedMs: Date.now() - startedAt,
          });
        })
        : undefined;
      let failure: unknown;
      try {
        response = await this.#followRedirects(url, init.method, headers, init.body, signal, {
          credentialsInBody: options.credentialsInBody === true,
          hop: (next) => answeredBy = next,
        });
      } catch (error) {
        failure = error;
      } finally {
        stopWaiting?.();
      }
      if (response === undefined) {
        if (failure instanceof RegistryError) throw failure;
        lastError = signal.aborted ? signal.reason : failure;
        const reason = `failed: ${describeNetworkError(lastError)}`;
        if (attempt + 1 < attempts) {
          await this.pauseBeforeRetry({
            method: init.method,
            url,
            attempt,
            attempts,
            startedAt,
            reason,
          });
        } else {
          this.log(`${init.method} ${displayUrl(url)} ${reason}`);
        }
        continue;
      }
      this.log(`${init.method} ${displayUrl(url)} -> ${response.status}`);
      const retryable = response.status >= 500 || response.status === 429;
      if (retryable && attempt + 1 < attempts) {
        await response.body?.cancel();
        await this.pauseBeforeRetry({
          method: init.method,
          url,
          attempt,
          attempts,
          startedAt,
          reason: `answered ${response.status}${
            response.statusText ? ` ${response.statusText}` : ""
          }`,
          retryAfter: response.headers.get("retry-after"),
        });
        continue;
      }
      return { response, attempts: attempt + 1, url: answeredBy };
    }
    throw this.unreachable(options.registry, init.method, url, attempts, lastError);
  }

  /** The error for a registry that gave no usable answer. */
  unreachable(
    registry: string,
    method: string,
    url: URL,
    attempts: number,
    cause: unknown,
  ): RegistryError {
    const reason = describeNetworkError(cause);
    const tried = `${method} ${displayUrl(url)} failed after ${attempts} attempt` +
      `${attempts === 1 ? "" : "s"}`;
    const tls = /TLS|certificate/i.test(reason);
    const plainHint = url.protocol === "https:"
      ? `; if it serves plain HTTP, list ${registry} in insecureRegistries`
      : "";
    const hint = tls
      ? `the registry's TLS certificate is not trusted or it does not speak TLS: give Deno its ` +
        `CA certificate (DENO_CERT=/path/ca.pem)${plainHint}`
      : `check that the registry is running and reachable at ${url.host} (host name, port, ` +
        `proxy, firewall)${plainHint}`;
    return new RegistryError(
      "unreachable",
      this.#redactor.redact(`registry ${registry} is unreachable: ${tried} (${reason})`),
      { registry, hint: this.#redactor.redact(hint), cause: scrubCause(cause, this.#redactor) },
    );
  }

  #report(event: RequestProgress): void {
    try {
      this.#onProgress?.(event);
    } catch {
      // A listener's failure must not fail the request it reports on.
    }
  }

  async #followRedirects(
    url: URL,
    method: string,
    headers: Headers,
    body: Uint8Array | undefined,
    signal: AbortSignal,
    options: { credentialsInBody: boolean; hop: (next: URL) => void },
  ): Promise<Response> {
    let current = url;
    let currentMethod = method;
    let currentBody = body;
    const currentHeaders = new Headers(headers);
    for (let hop = 0;; hop++) {
      const response = await this.#fetch(current, {
        method: currentMethod,
        headers: currentHeaders,
        body: currentBody as Uint8Array<ArrayBuffer> | undefined,
        redirect: "manual",
        signal,
      });
      if (![301, 302, 303, 307, 308].includes(response.status)) return response;
      const location = response.headers.get("location");
      await response.body?.cancel();
      if (!location || hop >= MAX_REDIRECTS) {
        throw new RegistryError(
          "protocol",
          `${method} ${displayUrl(url)} was redirected ${
            location ? `more than ${MAX_REDIRECTS} times` : "without a Location"
          }`,
          { hint: "check the registry's configuration (or the proxy in front of it)" },
        );
      }
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        throw new RegistryError(
          "protocol",
          `${method} ${displayUrl(url)} was redirected to something that is not a URL`,
          { hint: "check the registry's configuration (or the proxy in front of it)" },
        );
      }
      if (next.username !== "" || next.password !== "") {
        // fetch would turn them into an Authorization header for the redirect target.
        throw new RegistryError(
          "protocol",
          `${method} ${displayUrl(url)} was redirected to ${displayUrl(next)} with a user name ` +
            `or password in the URL; imgtool does not follow that`,
          { hint: "check the registry's storage configuration (or the proxy in front of it)" },
        );
      }
      if (
        next.protocol !== "https:" &&
        !(next.protocol === "http:" && this.plainHttpAllowed(next.host))
      ) {
        throw new RegistryError(
          "protocol",
          `${method} ${displayUrl(url)} was redirected to ${displayUrl(next)}, which is not HTTPS`,
          { hint: `list ${next.host} in insecureRegistries if plain HTTP is really meant` },
        );
      }
      const keepsBody = !(
        response.status === 303 ||
        ((response.status === 301 || response.status === 302) && currentMethod === "POST")
      );
      if (next.origin !== url.origin) {
        // Credentials are for the origin asked; storage backends get presigned URLs.
        currentHeaders.delete("authorization");
        if (options.credentialsInBody && keepsBody && currentBody !== undefined) {
          throw new RegistryError(
            "protocol",
            `${method} ${displayUrl(url)} was redirected to ${next.host}, which would receive ` +
              `the credentials in the request; imgtool does not follow that`,
            { hint: "check the token server's configuration (or the proxy in front of it)" },
          );
        }
      }
      if (!keepsBody) {
        currentMethod = "GET";
        currentBody = undefined;
        currentHeaders.delete("content-type");
      }
      current = next;
      options.hop(next);
    }
  }
}

/** A duration option in milliseconds: positive and finite, at most a day. */
function durationOption(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0 || value > MAX_TIMEOUT_MS) {
    throw new UsageError(
      `the registry client's ${name} is ${value}; it must be a number of milliseconds ` +
        `above 0 and at most ${MAX_TIMEOUT_MS}`,
      { hint: `give ${name} a value such as ${fallback}` },
    );
  }
  return value;
}

/**
 * A short, secret-free reason for a network failure: "connection refused", "DNS lookup
 * failed", "TLS handshake failed (...)", "no answer within the timeout".
 *
 * @example
 * ```ts
 * import { describeNetworkError } from "./http.ts";
 * console.log(describeNetworkError(new TypeError("tcp connect error: Connection refused (os error 111)")));
 * // connection refused
 * ```
 */
export function describeNetworkError(error: unknown): string {
  const text = collectMessages(error);
  if (error instanceof DOMException && error.name === "TimeoutError") {
    return "no answer within the timeout";
  }
  if (/TimeoutError|timed out/i.test(text)) return "no answer within the timeout";
  if (/connection refused/i.test(text)) return "connection refused";
  if (/dns error|failed to lookup|name or service not known|no address associated/i.test(text)) {
    return "DNS lookup failed";
  }
  if (/certificate|tls|ssl|handshake|InvalidContentType|CorruptMessage/i.test(text)) {
    const detail = /(invalid peer certificate[^\n)]*|UnknownIssuer|NotValidForName|Expired)/i
      .exec(text)?.[1];
    return `TLS handshake failed${detail ? ` (${detail})` : ""}`;
  }
  if (/connection reset/i.test(text)) return "connection reset by peer";
  if (/connection closed|unexpected eof|incomplete message/i.test(text)) {
    return "the connection closed before the answer was complete";
  }
  const first = text.split("\n")[0].trim();
  return first.length > 200 ? `${first.slice(0, 200)}...` : first || "unknown network error";
}

function collectMessages(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    if (current instanceof Error) {
      parts.push(`${current.name}: ${current.message}`);
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join(" | ");
}

/** A copy of a cause that is safe to attach: its messages redacted, no request objects. */
function scrubCause(cause: unknown, redactor: Redactor): Error | undefined {
  if (cause === undefined) return undefined;
  // URLs lose their query strings, which can carry upload state or signatures.
  const text = collectMessages(cause).replace(/(https?:\/\/[^\s?)]+)\?[^\s)]*/g, "$1");
  const error = new Error(redactor.redact(text));
  error.name = cause instanceof Error ? cause.name : "Error";
  return error;
}

/**
 * Wait `ms` milliseconds.
 *
 * @example
 * ```ts
 * import { sleep } from "./http.ts";
 * await sleep(1);
 * ```
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => after(ms, resolve));
}
