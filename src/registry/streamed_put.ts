/**
 * A `PUT` whose body is a file, streamed from disk with a `Content-Length`: the upload of a
 * layer blob, which can be hundreds of MB and must not be read into memory.
 *
 * Deno's `fetch` sends a stream body chunked and drops a `Content-Length` given with it
 * (the OCI distribution spec names a `Content-Length` for the monolithic `PUT`, and some
 * registries and proxies refuse chunked uploads), and a `Blob` of a file is read whole
 * first. So the request goes over a connection of its own (TLS unless the caller allows
 * plain HTTP; `DENO_CERT` and the system's roots apply as for `fetch`): the head with the
 * length, then the file in 256 KiB pieces, while the answer is read as soon as it comes (a
 * registry may answer before the body ends, e.g. 401: the rest is not sent). Where a proxy
 * is configured, or a `fetch` is given (tests), the body goes through that `fetch` instead,
 * chunked, since a connection of its own would bypass the proxy.
 *
 * The file is checked as it goes: it must have exactly the size and the sha256 digest
 * announced, else the request is broken off before its last byte (the registry never gets
 * a blob that is not the one named) and the error names the file. The time limit is on
 * silence, not on the whole upload: no byte sent and no answer for `timeoutMs`.
 *
 * @module
 */

import { BuildError, systemError } from "../errors.ts";
import { fastSha256, type IncrementalSha256 } from "../libcrypto.ts";
import { openConnection, parseHead } from "./direct_head.ts";
import { after } from "../timers.ts";

/** One file upload (or of bytes in memory, streamed the same way). */
export interface FilePut {
  /** Where to `PUT` it (an upload session's URL, with its `?digest=`). */
  readonly url: URL;
  /** Request headers besides `Host`, `Content-Length` and `Connection`. */
  readonly headers: Readonly<Record<string, string>>;
  /** The file; with `bytes`, what the bytes are called in errors. */
  readonly path: string;
  /**
   * The bytes to send instead of the file's: a large blob already in memory (a provenance
   * statement) goes in pieces too, where `fetch` would copy it whole, and more than once.
   */
  readonly bytes?: Uint8Array;
  /** Its size in bytes: exactly this many are sent. */
  readonly size: number;
  /** Its `sha256:<hex>` digest, checked before the last byte goes out. */
  readonly digest: string;
  /** The longest silence allowed (nothing sent, no answer), in milliseconds. */
  readonly timeoutMs: number;
  /** Hears the number of bytes of the file sent so far, after each piece. */
  readonly onBytesSent?: (sent: number) => void;
  /** Send through this fetch (chunked) instead of a connection of its own. */
  readonly fetch?: typeof fetch;
}

/** The connection failed or went silent: worth a retry with a new upload session. */
export class UploadConnectionError extends Error {
  /** Make one; `cause` is the underlying failure. */
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "UploadConnectionError";
  }
}

/** The size of the pieces the file is read and sent in. */
export const UPLOAD_PIECE = 256 << 10;
// An answer's head and as much of its body as error messages use.
const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * `PUT` the file to `request.url` and return the answer (its body cut at 64 KiB). Throws an
 * {@link UploadConnectionError} when the connection fails or goes silent, and a
 * {@link BuildError} (or a system error) naming the file when it cannot be read or is not
 * the size and digest announced.
 *
 * @example
 * ```ts
 * import { putFile } from "./streamed_put.ts";
 * const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) =>
 *   new Response(`${request.headers.get("content-length")} ${(await request.arrayBuffer()).byteLength}`));
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "abc");
 * const answer = await putFile({
 *   url: new URL(`http://127.0.0.1:${server.addr.port}/upload`),
 *   headers: {},
 *   path,
 *   size: 3,
 *   digest: "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
 *   timeoutMs: 5000,
 * });
 * console.log(answer.status, await answer.text()); // 200 3 3
 * await server.shutdown();
 * ```
 */
export async function putFile(request: FilePut): Promise<Response> {
  for (const [name, value] of Object.entries(request.headers)) {
    // Header injection is impossible by construction: no line breaks, no override of ours.
    if (/[\r\n]/.test(name + value) || /^(host|connection|content-length)$/i.test(name)) {
      throw new Error(`putFile: the header ${JSON.stringify(name)} cannot be sent`);
    }
  }
  // Over a connection of its own, a piece is written before the next is read: one buffer
  // serves them all. Through fetch, pieces are queued: each needs its own.
  const { bytes } = request;
  if (bytes && bytes.length !== request.size) {
    throw new BuildError(
      `${request.path} has ${bytes.length} bytes, not the ${request.size} announced`,
    );
  }
  const pieces = bytes
    ? toAsync(bytePieces(bytes, request.size))
    : filePieces(request.path, request.size, request.digest, !request.fetch);
  try {
    return request.fetch
      ? await putThroughFetch(request, pieces, request.fetch)
      : await putOverConnection(request, pieces);
  } finally {
    await pieces.return();
  }
}

async function* toAsync<T>(items: Iterable<T>): AsyncGenerator<T, void, undefined> {
  yield* items;
}

/** Restarts a countdown on every sign of life; when it runs out, `onSilence` is called. */
class SilenceTimer {
  #ms: number;
  #onSilence: () => void;
  #cancel = () => {};
  /** Whether the countdown ran out. */
  expired = false;

  constructor(ms: number, onSilence: () => void) {
    this.#ms = ms;
    this.#onSilence = onSilence;
    this.alive();
  }

  /** Something happened: start the countdown again. */
  alive(): void {
    this.#cancel();
    this.#cancel = after(this.#ms, () => {
      this.expired = true;
      this.#onSilence();
    });
  }

  /** Stop counting. */
  stop(): void {
    this.#cancel();
  }
}

/**
 * The file in pieces of {@link UPLOAD_PIECE} bytes, checked as they come: exactly `size`
 * bytes, hashing to `digest`; the last piece is held back until both are known to hold.
 * With `reuse`, every piece is read into the same buffer (valid until the next is asked).
 */
async function* filePieces(
  path: string,
  size: number,
  digest: string,
  reuse: boolean,
): AsyncGenerator<Uint8Array<ArrayBuffer>, void, undefined> {
  // A native SHA-256, loaded on the first upload only (a no-op build must not start the Node
  // layer, which node:crypto would): several times faster than the plain-TypeScript sha256.
  const hash = (await fastSha256())();
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (error) {
    throw systemError(error, { doing: `uploading ${path}` }) ?? error;
  }
  try {
    let sent = 0;
    const buffer = reuse ? new Uint8Array(Math.min(UPLOAD_PIECE, size)) : undefined;
    while (sent < size) {
      const length = Math.min(UPLOAD_PIECE, size - sent);
      const piece = buffer ? buffer.subarray(0, length) : new Uint8Array(length);
      for (let filled = 0; filled < piece.length;) {
        let n: number | null;
        try {
          n = await file.read(piece.subarray(filled));
        } catch (error) {
          throw systemError(error, { doing: `uploading ${path}` }) ?? error;
        }
        if (n === null || n === 0) {
          throw changed(path, `it ended after ${sent + filled} of the ${size} bytes announced`);
        }
        filled += n;
      }
      hash.update(piece);
      sent += piece.length;
      if (sent === size) await checkEnd(file, path, size, digest, hash);
      yield piece;
    }
    if (size === 0) await checkEnd(file, path, size, digest, hash);
  } finally {
    file.close();
  }
}

/**
 * `bytes` in pieces of {@link UPLOAD_PIECE} bytes, views rather than copies. Their digest is
 * the caller's to have computed from them: bytes in memory do not change under it, as a file
 * may.
 */
function* bytePieces(
  bytes: Uint8Array,
  size: number,
): Generator<Uint8Array<ArrayBuffer>, void, undefined> {
  for (let at = 0; at < size; at += UPLOAD_PIECE) {
    yield bytes.subarray(at, Math.min(size, at + UPLOAD_PIECE)) as Uint8Array<ArrayBuffer>;
  }
}

/** At the announced end: the file must end there, and its bytes have the digest announced. */
async function checkEnd(
  file: Deno.FsFile,
  path: string,
  size: number,
  digest: string,
  hash: IncrementalSha256,
): Promise<void> {
  let extra: number | null;
  try {
    extra = await file.read(new Uint8Array(1));
  } catch (error) {
    throw systemError(error, { doing: `uploading ${path}` }) ?? error;
  }
  if (extra !== null && extra > 0) {
    throw changed(path, `it has more than the ${size} bytes announced`);
  }
  const actual = `sha256:${hash.digest("hex")}`;
  if (actual !== digest) {
    throw changed(path, `its bytes hash to ${actual}, not to ${digest} as announced`);
  }
}

function changed(path: string, what: string): BuildError {
  return new BuildError(
    `${path} is not the blob it was announced as: ${what}; it changed after it was written`,
    { hint: "something else writes to it: build again once it is done" },
  );
}

/** The request over a connection of its own, with a `Content-Length`. */
async function putOverConnection(
  request: FilePut,
  pieces: AsyncGenerator<Uint8Array<ArrayBuffer>, void, undefined>,
): Promise<Response> {
  const { url } = request;
  let connection: Deno.Conn | undefined;
  const close = () => {
    try {
      connection?.close();
    } catch {
      // Closed already.
    }
    connection = undefined;
  };
  let silenced: () => void = () => {};
  const silence = new Promise<never>((_, reject) => {
    silenced = () => reject(new UploadConnectionError("no answer within the timeout"));
  });
  silence.catch(() => {});
  const timer = new SilenceTimer(request.timeoutMs, () => {
    silenced();
    close();
  });
  try {
    const opening = openConnection(url);
    try {
      connection = await Promise.race([opening, silence]);
    } catch (error) {
      // Opened after all, too late: close it.
      opening.then((late) => late.close(), () => {});
      throw error instanceof UploadConnectionError
        ? error
        : new UploadConnectionError(networkReason(error), { cause: error });
    }
    timer.alive();
    const conn = connection;
    let answered = false;
    const answer = readAnswer(conn).then((response) => {
      answered = true;
      timer.alive();
      return response;
    });
    answer.catch(() => {});
    const head = [
      `PUT ${url.pathname}${url.search} HTTP/1.1`,
      `Host: ${url.host}`,
      ...Object.entries(request.headers).map(([name, value]) => `${name}: ${value}`),
      `Content-Length: ${request.size}`,
      "Connection: close",
      "",
      "",
    ].join("\r\n");
    // A failed write may mean the registry answered and closed while we wrote: its answer
    // counts. Errors of the file (pieces.next) are not the connection's and go up as they are.
    const send = async (bytes: Uint8Array): Promise<Response | undefined> => {
      try {
        await writeAll(conn, bytes);
        timer.alive();
        return undefined;
      } catch (error) {
        const early = await Promise.race([answer, silence]).catch(() => undefined);
        if (early) return early;
        throw timer.expired
          ? new UploadConnectionError("no answer within the timeout")
          : new UploadConnectionError(networkReason(error), { cause: error });
      }
    };
    const refused = await send(new TextEncoder().encode(head));
    if (refused) return refused;
    let sent = 0;
    // An answer before the body is done (a refusal) ends the sending.
    while (!answered) {
      const next = await pieces.next();
      if (next.done) break;
      const early = await send(next.value);
      if (early) return early;
      sent += next.value.length;
      request.onBytesSent?.(sent);
    }
    try {
      return await Promise.race([answer, silence]);
    } catch (error) {
      throw error instanceof UploadConnectionError
        ? error
        : new UploadConnectionError(networkReason(error), { cause: error });
    }
  } finally {
    timer.stop();
    close();
  }
}

async function writeAll(connection: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await connection.write(bytes.subarray(at));
}

/**
 * Read an HTTP/1.1 answer: skip `1xx` interim answers, parse the head, and read the body
 * (by `Content-Length`, chunked, or to the end), at most {@link MAX_ANSWER_BYTES} of it.
 */
async function readAnswer(connection: Deno.Conn): Promise<Response> {
  const buffer = new Uint8Array(MAX_ANSWER_BYTES);
  let filled = 0;
  const more = async () => {
    if (filled === buffer.length) throw new Error("the answer's head is larger than 64 KiB");
    const n = await connection.read(buffer.subarray(filled));
    if (n === null) throw new Error("the connection closed before the answer was complete");
    filled += n;
  };
  while (true) {
    let end = -1;
    while ((end = headEnd(buffer, filled)) === -1) await more();
    let text = "";
    for (let i = 0; i < end; i++) text += String.fromCharCode(buffer[i]);
    const parsed = parseHead(text);
    if (!parsed) throw new Error("the answer is not HTTP/1.1");
    buffer.copyWithin(0, end + 4, filled);
    filled -= end + 4;
    if (parsed.status < 200) continue; // 100 Continue and the like: the answer follows.
    const statusText = /^HTTP\/1\.[01] \d{3} ?(.*)$/.exec(text.split("\r\n")[0])?.[1] ?? "";
    const headers = new Headers([...parsed.headers]);
    const body = await readBody(connection, headers, buffer.subarray(0, filled));
    const noBody = [204, 205, 304].includes(parsed.status);
    return new Response(noBody ? null : body, { status: parsed.status, statusText, headers });
  }
}

function headEnd(buffer: Uint8Array, filled: number): number {
  for (let i = 0; i + 3 < filled; i++) {
    if (buffer[i] === 13 && buffer[i + 1] === 10 && buffer[i + 2] === 13 && buffer[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}

/** The body of an answer, from what was read already and the rest of the connection. */
async function readBody(
  connection: Deno.Conn,
  headers: Headers,
  start: Uint8Array,
): Promise<Uint8Array<ArrayBuffer>> {
  const raw: number[] = [...start];
  const chunked = /\bchunked\b/i.test(headers.get("transfer-encoding") ?? "");
  const length = Number(headers.get("content-length") ?? "NaN");
  const wanted = chunked ? MAX_ANSWER_BYTES : Number.isFinite(length) ? length : Infinity;
  const piece = new Uint8Array(16 * 1024);
  while (raw.length < Math.min(wanted, MAX_ANSWER_BYTES)) {
    if (chunked && chunkedDone(raw)) break;
    const n = await connection.read(piece).catch(() => null);
    if (n === null) break;
    for (let i = 0; i < n; i++) raw.push(piece[i]);
  }
  const bytes = Uint8Array.from(raw.slice(0, Math.min(raw.length, MAX_ANSWER_BYTES)));
  return chunked ? dechunk(bytes) : bytes;
}

/** Whether a chunked body (as far as read) has come to its last, empty chunk. */
function chunkedDone(raw: number[]): boolean {
  let at = 0;
  while (true) {
    const line = raw.indexOf(10, at);
    if (line === -1) return false;
    const size = parseInt(String.fromCharCode(...raw.slice(at, line)).split(";")[0], 16);
    if (!Number.isFinite(size)) return true; // Malformed: stop reading, keep what came.
    if (size === 0) return true;
    at = line + 1 + size + 2;
    if (at > raw.length) return false;
  }
}

/** The data of a chunked body (as much as is there). */
function dechunk(bytes: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const out: number[] = [];
  let at = 0;
  while (at < bytes.length) {
    const line = bytes.indexOf(10, at);
    if (line === -1) break;
    const size = parseInt(String.fromCharCode(...bytes.subarray(at, line)).split(";")[0], 16);
    if (!Number.isFinite(size) || size === 0) break;
    for (let i = line + 1; i < Math.min(bytes.length, line + 1 + size); i++) out.push(bytes[i]);
    at = line + 1 + size + 2;
  }
  return Uint8Array.from(out);
}

/** The request through `fetch`, its body a stream (sent chunked). */
async function putThroughFetch(
  request: FilePut,
  pieces: AsyncGenerator<Uint8Array<ArrayBuffer>, void, undefined>,
  send: typeof fetch,
): Promise<Response> {
  const stop = new AbortController();
  const timer = new SilenceTimer(request.timeoutMs, () => stop.abort());
  let fileError: unknown;
  let sent = 0;
  const body = new ReadableStream<Uint8Array<ArrayBuffer>>({
    async pull(controller) {
      try {
        const next = await pieces.next();
        if (next.done) {
          controller.close();
          return;
        }
        controller.enqueue(next.value);
        sent += next.value.length;
        timer.alive();
        request.onBytesSent?.(sent);
      } catch (error) {
        fileError = error;
        controller.error(error);
      }
    },
  }, { highWaterMark: 0 });
  try {
    let response: Response;
    try {
      response = await send(request.url, {
        method: "PUT",
        headers: request.headers,
        body,
        redirect: "manual",
        signal: stop.signal,
      });
    } catch (error) {
      if (fileError !== undefined) throw fileError;
      throw new UploadConnectionError(
        timer.expired ? "no answer within the timeout" : networkReason(error),
        { cause: error },
      );
    }
    timer.alive();
    let text: Uint8Array<ArrayBuffer>;
    try {
      text = await readCappedBody(response);
    } catch (error) {
      throw new UploadConnectionError(networkReason(error), { cause: error });
    }
    const noBody = [204, 205, 304].includes(response.status) || response.status < 200;
    return new Response(noBody ? null : text, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  } finally {
    timer.stop();
  }
}

async function readCappedBody(response: Response): Promise<Uint8Array<ArrayBuffer>> {
  if (!response.body) return new Uint8Array(0);
  const chunks: number[] = [];
  for await (const chunk of response.body) {
    for (let i = 0; i < chunk.length && chunks.length < MAX_ANSWER_BYTES; i++) {
      chunks.push(chunk[i]);
    }
    if (chunks.length >= MAX_ANSWER_BYTES) break;
  }
  return Uint8Array.from(chunks);
}

/** A short reason for a connection failure, for messages. */
function networkReason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
