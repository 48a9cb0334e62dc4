/**
 * Small byte helpers: bounded stream reads and sha256 digests.
 *
 * @module
 */

import { fastSha256 } from "../libcrypto.ts";
import { hexOf } from "../sha256.ts";

/**
 * Read a whole stream, but give up past `maxBytes`: calls `tooBig` (which must throw) as soon
 * as the stream exceeds the cap, after cancelling it, so a hostile or broken peer cannot make
 * us buffer without bound.
 *
 * @example
 * ```ts
 * import { readCapped } from "./bytes.ts";
 * const bytes = await readCapped(new Response("hello").body, 1024, () => {
 *   throw new Error("too big");
 * });
 * console.log(bytes.length); // 5
 * ```
 */
export async function readCapped(
  stream: ReadableStream<Uint8Array> | null,
  maxBytes: number,
  tooBig: () => never,
): Promise<Uint8Array> {
  if (stream === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > maxBytes) {
        await reader.cancel().catch(function ignoreCancelError() {});
        tooBig();
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return concatBytes(chunks);
}

/**
 * `parts` one after another, in one new array.
 *
 * @example
 * ```ts
 * import { concatBytes } from "./bytes.ts";
 * console.log(concatBytes([new Uint8Array([1]), new Uint8Array([2, 3])])); // Uint8Array(3) [ 1, 2, 3 ]
 * ```
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}

/**
 * The `sha256:<hex>` digest of some bytes, as registries name content.
 *
 * @example
 * ```ts
 * import { sha256Digest } from "./bytes.ts";
 * console.log(await sha256Digest(new Uint8Array(0)));
 * // sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
 * ```
 */
export async function sha256Digest(bytes: Uint8Array): Promise<string> {
  if (bytes.length >= IN_PLACE_BYTES) {
    // Web Crypto copies what it hashes: a large blob (a provenance statement of a large tree)
    // would be in memory twice. libcrypto (or node:crypto) hashes it where it is.
    return `sha256:${(await fastSha256())().update(bytes).digest("hex")}`;
  }
  const hash = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return `sha256:${hexOf(new Uint8Array(hash))}`;
}

/** From this size on, {@link sha256Digest} hashes in place (`fastSha256`, loaded then). */
const IN_PLACE_BYTES = 1 << 20;
/**
 * Check that `bytes` have the given digest (sha256 or sha512).
 *
 * @example
 * ```ts
 * import { digestMatches } from "./bytes.ts";
 * const empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
 * console.log(await digestMatches(new Uint8Array(0), empty)); // true
 * ```
 */
export async function digestMatches(bytes: Uint8Array, digest: string): Promise<boolean> {
  const [algorithm, hex] = digest.split(":");
  const names: Record<string, string> = { sha256: "SHA-256", sha512: "SHA-512" };
  const name = names[algorithm];
  if (name === undefined || hex === undefined) return false;
  const hash = await crypto.subtle.digest(name, bytes as Uint8Array<ArrayBuffer>);
  return hexOf(new Uint8Array(hash)) === hex;
}
