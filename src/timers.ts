/**
 * Timers for the registry client, run on `AbortSignal.timeout`. In Deno 2.9 the first
 * `setTimeout` or `setInterval` of a process loads Deno's Node timers module, about 13 ms
 * here, while `AbortSignal.timeout` runs on the runtime's own timer. A build that only talks
 * to a registry (a no-op build, an append) then never loads it.
 *
 * A waiting timer keeps the process alive, as `setTimeout` does. Once it has fired or been
 * cancelled, it no longer does (Deno holds the process for a timeout signal only while it
 * has an `abort` listener).
 *
 * @module
 */

/** The longest wait `AbortSignal.timeout` takes: longer waits never end in practice. */
const LONGEST_MS = Number.MAX_SAFE_INTEGER;

/** `ms` as `AbortSignal.timeout` takes it: a whole number of milliseconds, 0 or more. */
function wait(ms: number): number {
  return Number.isNaN(ms) ? 0 : Math.min(Math.max(0, Math.floor(ms)), LONGEST_MS);
}

/**
 * Call `fn` once, `ms` milliseconds from now. Returns a function that cancels it.
 *
 * @example
 * ```ts
 * import { after } from "./timers.ts";
 * const cancel = after(10, () => console.log("never"));
 * cancel();
 * await new Promise<void>((resolve) => after(1, resolve));
 * console.log("waited"); // waited
 * ```
 */
export function after(ms: number, fn: () => void): () => void {
  const signal = AbortSignal.timeout(wait(ms));
  const fire = () => fn();
  signal.addEventListener("abort", fire, { once: true });
  return () => signal.removeEventListener("abort", fire);
}

/**
 * Call `fn` every `ms` milliseconds (the next wait starts when `fn` returns). Returns a
 * function that stops it.
 *
 * @example
 * ```ts
 * import { every } from "./timers.ts";
 * let ticks = 0;
 * await new Promise<void>((resolve) => {
 *   const stop = every(1, () => {
 *     if (++ticks === 3) {
 *       stop();
 *       resolve();
 *     }
 *   });
 * });
 * console.log(ticks); // 3
 * ```
 */
export function every(ms: number, fn: () => void): () => void {
  let stopped = false;
  let cancel = () => {};
  const tick = () => {
    fn();
    if (!stopped) cancel = after(ms, tick);
  };
  cancel = after(ms, tick);
  return () => {
    stopped = true;
    cancel();
  };
}
