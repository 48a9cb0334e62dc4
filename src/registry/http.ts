/**
 * The HTTP layer under the registry client: per-request timeouts, bounded retries with
 * jittered exponential backoff for network errors, 5xx and 429, careful redirects (no
 * Authorization to another origin, no silent downgrade to plain HTTP), and the choice of
 * TLS or plain HTTP per registry host.
 *
 * @module
 */

import { Redactor, RegistryError } from "./errors.ts";

/** How the transport behaves; every field has a default. */
export interface TransportOptions {
  /** The fetch to use (tests only). */
  fetch?: typeof fetch;
  /** Extra attempts after the first, for network errors, 5xx and 429. Default 3. */
  retries?: number;
  /** The time one attempt may take, from sending to the end of the body. Default 30 s. */
  timeoutMs?: number;
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
}

/** The answer to a request, and how many attempts it took. */
export interface Sent {
  /** The final response (after redirects); its body is unread. */
  response: Response;
  /** How many attempts were made. */
  attempts: number;
}

/** The number of retries when none is configured. */
export const DEFAULT_RETRIES = 3;
/** The per-request timeout when none is configured, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_RETRIES = 10;
const BASE_DELAY_MS = 250;
const MAX_DELAY_MS = 8_000;
const MAX_RETRY_AFTER_MS = 30_000;
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
  /** The User-Agent header. */
  readonly userAgent: string;
  #fetch: typeof fetch;
  #log?: (line: string) => void;
  #redactor: Redactor;
  #insecure: Set<string>;

  /** Make a transport. */
  constructor(options: TransportOptions = {}) {
    const retries = options.retries ?? DEFAULT_RETRIES;
    // Bounded whatever the caller asks: a registry that keeps failing must end in an error.
    this.retries = Math.max(0, Math.min(MAX_RETRIES, Math.floor(retries)));
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#fetch = options.fetch ?? fetch;
    this.userAgent = options.userAgent ?? "imgtool";
    this.#log = options.log;
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

  /** The wait before retry number `attempt` (0-based), honouring a bounded `Retry-After`. */
  backoffMs(attempt: number, retryAfter?: string | null): number {
    const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt);
    // "Equal jitter": at least half the step, so retries spread out but still back off.
    let delay = ceiling / 2 + Math.random() * (ceiling / 2);
    if (retryAfter) {
      const seconds = Number(retryAfter);
      const asked = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(retryAfter) - Date.now();
      if (Number.isFinite(asked) && asked > delay) delay = Math.min(asked, MAX_RETRY_AFTER_MS);
    }
    return Math.round(delay);
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
    let lastError: unknown;
    let delay = 0;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await sleep(delay);
      const signal = AbortSignal.timeout(this.timeoutMs);
      let response: Response;
      try {
        response = await this.#followRedirects(url, init.method, headers, init.body, signal);
      } catch (error) {
        if (error instanceof RegistryError) throw error;
        lastError = signal.aborted ? signal.reason : error;
        delay = this.backoffMs(attempt);
        const more = attempt + 1 < attempts ? `; retrying in ${delay} ms` : "";
        this.log(
          `${init.method} ${displayUrl(url)} failed: ${describeNetworkError(lastError)}${more}`,
        );
        continue;
      }
      this.log(`${init.method} ${displayUrl(url)} -> ${response.status}`);
      const retryable = response.status >= 500 || response.status === 429;
      if (retryable && attempt + 1 < attempts) {
        delay = this.backoffMs(attempt, response.headers.get("retry-after"));
        await response.body?.cancel();
        this.log(`retrying in ${delay} ms`);
        continue;
      }
      return { response, attempts: attempt + 1 };
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

  async #followRedirects(
    url: URL,
    method: string,
    headers: Headers,
    body: Uint8Array | undefined,
    signal: AbortSignal,
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
      const next = new URL(location, current);
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
      // Credentials are for the registry's own origin; storage backends get presigned URLs.
      if (next.origin !== current.origin) currentHeaders.delete("authorization");
      if (
        response.status === 303 ||
        ((response.status === 301 || response.status === 302) && currentMethod === "POST")
      ) {
        currentMethod = "GET";
        currentBody = undefined;
        currentHeaders.delete("content-type");
      }
      current = next;
    }
  }
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
  return new Promise(function wake(resolve) {
    setTimeout(resolve, ms);
  });
}
