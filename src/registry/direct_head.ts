/**
 * One `HEAD` over a connection of its own, for the one request a no-op build makes: is a
 * remembered tag still at the digest it had?
 *
 * Deno's `fetch` loads its own scripts (`Headers`, `Request`, `Response`) and builds its HTTP
 * client on first use: about 9 ms, most of what a no-op build spends on the network. This
 * opens one connection (TLS unless the caller allows plain HTTP), sends one `HEAD` with
 * `Connection: close`, reads the status line and the headers, and closes.
 *
 * It never decides anything alone. It sends no credentials, follows no redirects and does
 * not retry; it answers only what came back, and any failure (refused, reset, timeout, TLS,
 * malformed answer, a proxy in the environment) is `undefined`. The caller trusts nothing
 * but a `200` naming the digest it already knows, and takes the full path through `fetch`
 * (with its retries, redirects, authentication and error messages) for everything else.
 *
 * @module
 */

/** What came back: the status and the headers (names in lower case). */
export interface DirectHeadAnswer {
  /** The HTTP status. */
  readonly status: number;
  /** The headers, names in lower case; repeated ones joined with `, `. */
  readonly headers: ReadonlyMap<string, string>;
}

/** How a direct `HEAD` is sent. */
export interface DirectHeadOptions {
  /** Request headers (no `Host` or `Connection`: those are set here). */
  readonly headers?: Readonly<Record<string, string>>;
  /** The time the whole exchange may take. */
  readonly timeoutMs: number;
  /**
   * A connection to the URL's origin opened earlier ({@link openConnection}), to send on
   * instead of opening one: its handshakes then overlap whatever came before. It is closed
   * after, used or not.
   */
  readonly connection?: Promise<Deno.Conn>;
  /** Stops the exchange early (as no answer), e.g. when nobody waits for it any more. */
  readonly signal?: AbortSignal;
}

// A registry's answer to HEAD is a status line and a dozen headers: far below this.
const MAX_HEAD_BYTES = 64 * 1024;
const PROXY_VARIABLES = [
  "HTTPS_PROXY",
  "https_proxy",
  "HTTP_PROXY",
  "http_proxy",
  "ALL_PROXY",
  "all_proxy",
];

/**
 * Whether the environment names an HTTP proxy. `fetch` honours these variables; a direct
 * connection would go around the proxy, so none is made when one is set.
 *
 * @example
 * ```ts
 * import { proxyConfigured } from "./direct_head.ts";
 * console.log(proxyConfigured({ HTTPS_PROXY: "http://proxy.internal:3128" })); // true
 * console.log(proxyConfigured({})); // false
 * ```
 */
export function proxyConfigured(
  env: Readonly<Record<string, string | undefined>> = environment(),
): boolean {
  return PROXY_VARIABLES.some((name) => (env[name] ?? "") !== "");
}

function environment(): Record<string, string | undefined> {
  try {
    return Object.fromEntries(PROXY_VARIABLES.map((name) => [name, Deno.env.get(name)]));
  } catch {
    // Without permission to read the environment, assume a proxy: fetch will know better.
    return { HTTPS_PROXY: "unknown" };
  }
}

/**
 * Send `HEAD url` over a connection of its own (`https:` over TLS, `http:` plain) and read
 * the answer's status and headers; `undefined` on any failure.
 *
 * @example
 * ```ts
 * import { directHead } from "./direct_head.ts";
 * const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () =>
 *   new Response(null, { headers: { "docker-content-digest": "sha256:abc" } }));
 * const url = new URL(`http://127.0.0.1:${server.addr.port}/v2/app/manifests/1.0`);
 * const answer = await directHead(url, { timeoutMs: 5000 });
 * console.log(answer?.status, answer?.headers.get("docker-content-digest")); // 200 sha256:abc
 * await server.shutdown();
 * ```
 */
export async function directHead(
  url: URL,
  options: DirectHeadOptions,
): Promise<DirectHeadAnswer | undefined> {
  const request = requestHead(url, options.headers ?? {});
  if (request === undefined) {
    options.connection?.then((unused) => unused.close(), () => {});
    return undefined;
  }

  let connection: Deno.Conn | undefined;
  // AbortSignal.timeout, not setTimeout: the first setTimeout loads Deno's Node-compatible
  // timers, which costs more than this whole exchange. Its timer keeps the process alive
  // only while the signal has a listener, so the listener goes when the exchange is done.
  // (Not AbortSignal.any: the listener it puts on the timeout would outlive the exchange.)
  const signals = [AbortSignal.timeout(options.timeoutMs), options.signal].filter((s) => !!s);
  const stopped = () => signals.some((s) => s.aborted);
  let onAbort = () => {};
  const deadline = new Promise<undefined>((resolve) => {
    onAbort = () => resolve(undefined);
    for (const s of signals) s.addEventListener("abort", onAbort, { once: true });
    if (stopped()) resolve(undefined);
  });
  const exchange = async () => {
    const opened = await (options.connection ?? openConnection(url));
    if (stopped()) {
      opened.close();
      return undefined;
    }
    connection = opened;
    for (let written = 0; written < request.length;) {
      written += await opened.write(request.subarray(written));
    }
    return parseHead(await readHead(opened));
  };
  try {
    return await Promise.race([exchange(), deadline]);
  } catch {
    return undefined;
  } finally {
    for (const s of signals) s.removeEventListener("abort", onAbort);
    try {
      connection?.close();
    } catch {
      // Already closed by the peer or by a failed read.
    }
  }
}

/** The bytes of `HEAD url`, or `undefined` for a URL or headers that cannot be sent. */
function requestHead(url: URL, headers: Readonly<Record<string, string>>) {
  if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
  const lines = [`HEAD ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
  for (const [name, value] of Object.entries(headers)) {
    // Header injection is impossible by construction: no line breaks, no override of ours.
    if (/[\r\n]/.test(name + value) || /^(host|connection)$/i.test(name)) return undefined;
    lines.push(`${name}: ${value}`);
  }
  lines.push("Connection: close", "", "");
  return new TextEncoder().encode(lines.join("\r\n"));
}

/**
 * Open a connection to `url`'s origin: TLS for `https:`, plain TCP for `http:`.
 *
 * @example
 * ```ts
 * import { directHead, openConnection } from "./direct_head.ts";
 * const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () =>
 *   new Response(null, { status: 404 }));
 * const url = new URL(`http://127.0.0.1:${server.addr.port}/v2/app/manifests/1.0`);
 * // Opened early, used later: the handshake overlaps the work in between.
 * const connection = openConnection(url);
 * console.log((await directHead(url, { timeoutMs: 5000, connection }))?.status); // 404
 * await server.shutdown();
 * ```
 */
export function openConnection(url: URL): Promise<Deno.Conn> {
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const secure = url.protocol === "https:";
  const port = Number(url.port) || (secure ? 443 : 80);
  return secure ? Deno.connectTls({ hostname, port }) : Deno.connect({ hostname, port });
}

/** Read up to the blank line that ends the headers; `undefined` if it never comes. */
async function readHead(connection: Deno.Conn): Promise<string | undefined> {
  const buffer = new Uint8Array(MAX_HEAD_BYTES);
  let filled = 0;
  while (filled < buffer.length) {
    const read = await connection.read(buffer.subarray(filled));
    if (read === null) return undefined;
    const from = Math.max(0, filled - 3);
    filled += read;
    for (let i = from; i + 3 < filled; i++) {
      if (
        buffer[i] === 13 && buffer[i + 1] === 10 && buffer[i + 2] === 13 && buffer[i + 3] === 10
      ) {
        // Status line and headers are ASCII (RFC 9110 5.5): one char per byte.
        let text = "";
        for (let j = 0; j < i; j++) text += String.fromCharCode(buffer[j]);
        return text;
      }
    }
  }
  return undefined;
}

/**
 * The status and headers of an HTTP/1.x answer's head (without its final blank line);
 * `undefined` when malformed.
 *
 * @example
 * ```ts
 * import { parseHead } from "./direct_head.ts";
 * const answer = parseHead("HTTP/1.1 404 Not Found\r\nContent-Length: 0");
 * console.log(answer?.status, answer?.headers.get("content-length")); // 404 0
 * console.log(parseHead("garbage")); // undefined
 * ```
 */
export function parseHead(head: string | undefined): DirectHeadAnswer | undefined {
  if (head === undefined) return undefined;
  const [statusLine, ...fields] = head.split("\r\n");
  const status = /^HTTP\/1\.[01] ([1-5]\d\d)(?: [^\r\n]*)?$/.exec(statusLine);
  if (!status) return undefined;
  const headers = new Map<string, string>();
  for (const field of fields) {
    const colon = field.indexOf(":");
    // Obsolete line folding and nameless fields are refused, as RFC 9112 5.2 allows.
    if (colon <= 0 || /^[ \t]/.test(field)) return undefined;
    const name = field.slice(0, colon).trim().toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) return undefined;
    const value = field.slice(colon + 1).trim();
    const before = headers.get(name);
    headers.set(name, before === undefined ? value : `${before}, ${value}`);
  }
  return { status: Number(status[1]), headers };
}
