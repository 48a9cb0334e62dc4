/**
 * What the registry client says while a request is slow or being retried, so that a command
 * line can show a progress line instead of seeming to hang.
 *
 * @module
 */

/** The time a request may wait for an answer before it is reported as slow, by default. */
export const DEFAULT_SLOW_REQUEST_MS = 5_000;

/**
 * One progress report about a registry request (a request to a token server counts too):
 * - `waiting`: no answer yet after `elapsedMs`; reported every `slowRequestMs` while so;
 * - `retrying`: the attempt failed (`reason`) and the next one starts in `retryInMs`.
 *
 * `host` and `path` name the request as it was sent (a redirect target once redirected);
 * the path never has its query, which can carry signatures or upload state.
 *
 * @example
 * ```ts
 * import type { RequestProgress } from "./progress.ts";
 * const event: RequestProgress = {
 *   kind: "retrying",
 *   method: "GET",
 *   host: "ghcr.io",
 *   path: "/v2/acme/app/manifests/1.0",
 *   attempt: 1,
 *   attempts: 4,
 *   elapsedMs: 30_000,
 *   retryInMs: 310,
 *   reason: "failed: no answer within the timeout",
 * };
 * console.log(event.retryInMs); // 310
 * ```
 */
export interface RequestProgress {
  /** `waiting` while an attempt has no answer yet; `retrying` between attempts. */
  kind: "waiting" | "retrying";
  /** The HTTP method. */
  method: string;
  /** The host (and port) the request went to. */
  host: string;
  /** The path, without the query string. */
  path: string;
  /** The attempt this is about, from 1: the one waiting, or the one that failed. */
  attempt: number;
  /** How many attempts may be made in all. */
  attempts: number;
  /** Milliseconds since the first attempt started. */
  elapsedMs: number;
  /** For `retrying`: milliseconds until the next attempt. */
  retryInMs?: number;
  /** For `retrying`: why the attempt failed (`answered 503 Service Unavailable`, `failed: connection refused`). */
  reason?: string;
}

/**
 * Receives {@link RequestProgress} reports. It is called synchronously, must return quickly,
 * and whatever it throws is ignored.
 *
 * @example
 * ```ts
 * import type { ProgressListener } from "./progress.ts";
 * const lines: string[] = [];
 * const onProgress: ProgressListener = (event) => lines.push(`${event.kind} ${event.host}`);
 * onProgress({ kind: "waiting", method: "GET", host: "ghcr.io", path: "/v2/", attempt: 1,
 *   attempts: 4, elapsedMs: 5000 });
 * console.log(lines); // [ "waiting ghcr.io" ]
 * ```
 */
export type ProgressListener = (event: RequestProgress) => void;

/**
 * A one-line description of a progress report, for a command line.
 *
 * @example
 * ```ts
 * import { describeProgress } from "./progress.ts";
 * console.log(describeProgress({
 *   kind: "waiting", method: "GET", host: "ghcr.io", path: "/v2/acme/app/manifests/1.0",
 *   attempt: 1, attempts: 4, elapsedMs: 6200,
 * }));
 * // GET ghcr.io/v2/acme/app/manifests/1.0: no answer yet after 6.2 s (attempt 1 of 4)
 * console.log(describeProgress({
 *   kind: "retrying", method: "HEAD", host: "127.0.0.1:5000", path: "/v2/a/blobs/sha256:ab",
 *   attempt: 2, attempts: 4, elapsedMs: 900, retryInMs: 750,
 *   reason: "answered 503 Service Unavailable",
 * }));
 * // HEAD 127.0.0.1:5000/v2/a/blobs/sha256:ab: answered 503 Service Unavailable; attempt 3 of 4 in 0.8 s
 * ```
 */
export function describeProgress(event: RequestProgress): string {
  const what = `${event.method} ${event.host}${event.path}`;
  if (event.kind === "waiting") {
    return `${what}: no answer yet after ${seconds(event.elapsedMs)} ` +
      `(attempt ${event.attempt} of ${event.attempts})`;
  }
  return `${what}: ${event.reason ?? "failed"}; attempt ${event.attempt + 1} of ` +
    `${event.attempts} in ${seconds(event.retryInMs ?? 0)}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
