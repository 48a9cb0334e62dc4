/**
 * Garbage collection between the stages of a build of a large tree. Walking, listing and
 * writing 50,000 files leave tens of megabytes of objects behind that nothing holds any more;
 * V8 collects its old generation only once the heap has grown well past what is alive, and
 * keeps the pages it freed. So the peak memory of a build grew with the number of files far
 * more than what it holds at any one time. A full collection where a stage ends, once that
 * much has been done, keeps the peak near what is alive (`bench/README.md`, "append").
 *
 * A stage says how many items (entries walked, written or listed) it went through
 * ({@link madeGarbage}); {@link collectGarbage} at a stage's end collects once that count
 * reaches {@link LARGE_WORK} since the last collection. Below that, a collection (some 10 ms)
 * would cost more time than the memory it gives back is worth.
 *
 * It needs V8's `gc` function, which `--v8-flags=--expose-gc` puts on `globalThis` (imgtool's
 * runtime flags have it: `scripts/runtime_flags.ts`). Without it, nothing is collected early.
 *
 * @module
 */

/** Items done since the last collection from which a collection is worth its time. */
export const LARGE_WORK = 10_000;

let done = 0;

/**
 * Count `items` things a stage went through, each of which left garbage behind.
 *
 * @example
 * ```ts
 * import { madeGarbage } from "./garbage.ts";
 * madeGarbage(20_000); // a walk of 20,000 entries
 * ```
 */
export function madeGarbage(items: number): void {
  done += items;
}

/**
 * At the end of a stage: a full garbage collection, if stages have gone through
 * {@link LARGE_WORK} items or more since the last one and V8's `gc` is there. Returns whether
 * it collected.
 *
 * @example
 * ```ts
 * import { collectGarbage, LARGE_WORK, madeGarbage } from "./garbage.ts";
 * madeGarbage(LARGE_WORK);
 * const exposed = typeof (globalThis as { gc?: unknown }).gc === "function";
 * console.log(collectGarbage() === exposed, collectGarbage()); // true false
 * ```
 */
export function collectGarbage(): boolean {
  if (done < LARGE_WORK) return false;
  done = 0;
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== "function") return false;
  gc();
  return true;
}
