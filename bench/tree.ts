/**
 * A deterministic test tree for the identity benchmark: many small files, some medium
 * ones and a few large ones (up to tens of MB), in nested folders. Contents are slices of
 * one pool of pseudo-random bytes (xorshift128, fixed seed), so the same tree, with the
 * same digest, comes out on every run and every machine.
 *
 * @module
 */

import { join } from "node:path";

/** The shape of the tree. */
export interface TreeShape {
  /** Small files: 64 B to 16 KiB. */
  readonly small: number;
  /** Medium files: 16 KiB to 512 KiB. */
  readonly medium: number;
  /** Large files: 4 MiB to 48 MiB. */
  readonly large: number;
  /** Top up with one more large file until the total is at least this many bytes. */
  readonly minBytes: number;
}

/** The full benchmark tree: 20,024 files, about 1.3 GB. */
export const FULL: TreeShape = { small: 18_000, medium: 2_000, large: 24, minBytes: 2 ** 30 };

/** A small tree for trying the harness (`--small`): not the goal's tree. */
export const SMALL: TreeShape = { small: 1_800, medium: 200, large: 3, minBytes: 64 << 20 };

/** What was written. */
export interface TreeStats {
  readonly files: number;
  readonly dirs: number;
  readonly bytes: number;
  readonly largest: number;
}

/**
 * xorshift128: fast, deterministic, good enough for test data.
 *
 * @example
 * ```ts
 * import { rng } from "./tree.ts";
 * const next = rng(7);
 * console.log(next() === rng(7)()); // true
 * ```
 */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1, y = 362436069, z = 521288629, w = 88675123;
  return () => {
    const t = x ^ (x << 11);
    x = y;
    y = z;
    z = w;
    w = (w ^ (w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    return w;
  };
}

const POOL_BYTES = 64 << 20;

function randomPool(next: () => number): Uint8Array {
  const words = new Uint32Array(POOL_BYTES / 4);
  for (let i = 0; i < words.length; i++) words[i] = next();
  return new Uint8Array(words.buffer);
}

/** Write the tree under `root` (which must exist and be empty). */
export async function writeTree(root: string, shape: TreeShape): Promise<TreeStats> {
  const next = rng(0x1d3a7001);
  const pool = randomPool(next);
  const between = (lo: number, hi: number) => lo + (next() % (hi - lo + 1));
  const made = new Set<string>();
  let files = 0, bytes = 0, largest = 0;

  const write = async (dir: string, name: string, size: number) => {
    const folder = join(root, dir);
    if (!made.has(folder)) {
      await Deno.mkdir(folder, { recursive: true });
      made.add(folder);
    }
    const offset = next() % (POOL_BYTES - size + 1);
    await Deno.writeFile(join(folder, name), pool.subarray(offset, offset + size));
    files++;
    bytes += size;
    largest = Math.max(largest, size);
  };

  // Small and medium files spread over 20 × 10 folders at depth 2, like a source tree.
  const place = (i: number) => `pkg${String(i % 20).padStart(2, "0")}/mod${(i >> 5) % 10}`;
  const extensions = [".py", ".ts", ".json", ".txt", ".bin"];
  for (let i = 0; i < shape.small; i++) {
    await write(place(i), `file${i}${extensions[i % extensions.length]}`, between(64, 16 << 10));
  }
  for (let i = 0; i < shape.medium; i++) {
    await write(place(i * 7 + 3), `data${i}.bin`, between(16 << 10, 512 << 10));
  }
  let large = 0;
  for (; large < shape.large; large++) {
    await write("assets/large", `blob${large}.bin`, between(4 << 20, 48 << 20));
  }
  while (bytes < shape.minBytes) {
    await write("assets/large", `blob${large++}.bin`, between(4 << 20, 48 << 20));
  }
  return { files, dirs: made.size, bytes, largest };
}
