/**
 * How long to wait before retrying a registry request: exponential backoff with "equal
 * jitter" (at least half of each step, the rest random), so that many clients retrying one
 * failing registry spread out instead of arriving together, and a bounded `Retry-After`.
 *
 * @module
 */

/** The first backoff step, in milliseconds. */
export const BASE_RETRY_DELAY_MS = 250;
/** The largest backoff step, in milliseconds, however many attempts came before. */
export const MAX_RETRY_DELAY_MS = 8_000;
/** The longest `Retry-After` honoured, in milliseconds: a registry cannot park us longer. */
export const MAX_RETRY_AFTER_MS = 30_000;

/** What {@link retryDelayMs} may take into account besides the attempt number. */
export interface RetryDelayOptions {
  /** The registry's `Retry-After` header (seconds, or an HTTP date), if it sent one. */
  retryAfter?: string | null;
  /** A random number in [0, 1); default `Math.random`. Tests pass their own. */
  random?: () => number;
  /** The time now, in milliseconds since the epoch (for a `Retry-After` date). */
  now?: number;
}

/**
 * The step of backoff for retry number `attempt` (0-based): `250 ms * 2^attempt`, at most
 * 8 s. The delay lies between half of it and all of it.
 *
 * @example
 * ```ts
 * import { backoffStepMs } from "./retry.ts";
 * console.log(backoffStepMs(0), backoffStepMs(2), backoffStepMs(20)); // 250 1000 8000
 * ```
 */
export function backoffStepMs(attempt: number): number {
  const step = BASE_RETRY_DELAY_MS * 2 ** Math.max(0, Math.floor(attempt));
  return Math.min(MAX_RETRY_DELAY_MS, step);
}

/**
 * The wait before retry number `attempt` (0-based), in whole milliseconds: equal jitter over
 * {@link backoffStepMs} (`step / 2 + random * step / 2`), or the registry's `Retry-After`
 * when that is longer, capped at {@link MAX_RETRY_AFTER_MS}.
 *
 * @example
 * ```ts
 * import { retryDelayMs } from "./retry.ts";
 * console.log(retryDelayMs(1, { random: () => 0 })); // 250
 * console.log(retryDelayMs(1, { random: () => 0.5 })); // 375
 * console.log(retryDelayMs(0, { random: () => 0, retryAfter: "2" })); // 2000
 * console.log(retryDelayMs(0, { random: () => 0, retryAfter: "3600" })); // 30000
 * ```
 */
export function retryDelayMs(attempt: number, options: RetryDelayOptions = {}): number {
  const step = backoffStepMs(attempt);
  // A random source outside [0, 1) must not push the delay out of its bounds.
  const random = Math.min(1, Math.max(0, (options.random ?? Math.random)() || 0));
  let delay = step / 2 + random * (step / 2);
  const asked = retryAfterMs(options.retryAfter, options.now ?? Date.now());
  if (asked !== undefined && asked > delay) delay = Math.min(asked, MAX_RETRY_AFTER_MS);
  return Math.round(delay);
}

/** A `Retry-After` value in milliseconds from `now`; `undefined` when absent or unreadable. */
function retryAfterMs(header: string | null | undefined, now: number): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  const asked = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - now;
  return Number.isFinite(asked) ? asked : undefined;
}
