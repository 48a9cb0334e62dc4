/**
 * SHA-256 (FIPS 180-4) in plain TypeScript, incremental.
 *
 * It exists so that hashing needs no `node:crypto`: the first `node:` import starts Deno's
 * Node compatibility layer, which costs more than everything else a no-op build does, and
 * Web Crypto cannot hash a stream piece by piece. It is written for V8: 32-bit integer
 * arithmetic only, one preallocated message schedule, and 64-byte blocks read straight
 * from the caller's bytes (only a block split across two `update` calls is copied).
 *
 * @example
 * ```ts
 * import { Sha256, sha256Hex } from "./sha256.ts";
 * const hasher = new Sha256().update("ab").update(new Uint8Array([0x63]));
 * console.log(hasher.digest("hex") === sha256Hex("abc")); // true
 * ```
 *
 * @module
 */

// The functions of FIPS 180-4, section 4.1.2; V8 inlines them.
const bigSigma0 = (x: number) =>
  ((x >>> 2) | (x << 30)) ^ ((x >>> 13) | (x << 19)) ^ ((x >>> 22) | (x << 10));
const bigSigma1 = (x: number) =>
  ((x >>> 6) | (x << 26)) ^ ((x >>> 11) | (x << 21)) ^ ((x >>> 25) | (x << 7));
const smallSigma0 = (x: number) => ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
const smallSigma1 = (x: number) => ((x >>> 17) | (x << 15)) ^ ((x >>> 19) | (x << 13)) ^ (x >>> 10);
const ch = (x: number, y: number, z: number) => z ^ (x & (y ^ z));
const maj = (x: number, y: number, z: number) => (x & y) ^ (z & (x ^ y));

// The first 32 bits of the fractional parts of the cube roots of the first 64 primes.
// deno-fmt-ignore
const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

// The message schedule: one per thread serves every hasher, since compressing never yields.
const W = new Int32Array(64);

/**
 * Compress the 64-byte block at `view[offset]` into `state`.
 *
 * Every sum is cut to 32 bits (`| 0`) two terms at a time, which keeps V8 in int32
 * arithmetic. Tuned for a fresh process, where imgtool mostly hashes a few MB: one block
 * per call, because a loop over blocks in here was optimized in the middle of its first
 * call, before the state stores after it had run, and thrown away at the end of each
 * call; and the rounds stay loops, because written out (the schedule in locals) they ran
 * 40% faster once optimized but took V8 about 80 ms to optimize, interpreted meanwhile:
 * the first MiB took 4 times as long.
 */
function compress(state: Int32Array, view: DataView, offset: number): void {
  const w = W;
  for (let i = 0; i < 16; i++) w[i] = view.getInt32(offset + i * 4);
  for (let i = 16; i < 64; i++) {
    w[i] = (smallSigma1(w[i - 2]) + w[i - 7] | 0) + (smallSigma0(w[i - 15]) + w[i - 16] | 0) | 0;
  }
  let a = state[0], b = state[1], c = state[2], d = state[3];
  let e = state[4], f = state[5], g = state[6], h = state[7];
  for (let i = 0; i < 64; i++) {
    const t1 = (h + bigSigma1(e) | 0) + ((ch(e, f, g) + K[i] | 0) + w[i] | 0) | 0;
    const t2 = bigSigma0(a) + maj(a, b, c) | 0;
    h = g;
    g = f;
    f = e;
    e = d + t1 | 0;
    d = c;
    c = b;
    b = a;
    a = t1 + t2 | 0;
  }
  state[0] += a, state[1] += b, state[2] += c, state[3] += d;
  state[4] += e, state[5] += f, state[6] += g, state[7] += h;
}

// The first 32 bits of the fractional parts of the square roots of the first 8 primes.
// deno-fmt-ignore
const INITIAL = [
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

const encoder = new TextEncoder();
// Short strings are encoded here rather than into a new array each time (tree encodings
// are thousands of short lines); hashing never yields, so one buffer serves every hasher.
const scratch = new Uint8Array(4096);
const scratchView = new DataView(scratch.buffer);
// A block split across `update` calls, and the padded last block, are compressed from here
// (see `Sha256` for why not from the hasher's own arrays).
const block = new Uint8Array(64);
const blockView = new DataView(block.buffer);

/**
 * An incremental SHA-256: `update` with strings (UTF-8) or bytes any number of times, then
 * `digest` once. The calls are those of `node:crypto`'s `Hash`, so either can serve.
 *
 * @example
 * ```ts
 * import { Sha256 } from "./sha256.ts";
 * const hasher = new Sha256();
 * for (const line of ["imgtool-tree/1\n", '["d","src",493]\n']) hasher.update(line);
 * console.log(hasher.digest("hex").length); // 64
 * ```
 */
export class Sha256 {
  // Arrays this small live in V8's heap, where they cost little to make (a tree has a
  // hasher per file) as long as no DataView is made on them: that would move them out, and
  // made a tree of 20,000 files take 35 MB more memory.
  readonly #state = new Int32Array(INITIAL);
  // The start of a block split across `update` calls, and how much of it has come.
  readonly #pending = new Uint8Array(64);
  #pendingLength = 0;
  // Bytes hashed so far; a double counts exactly far past any file.
  #length = 0;
  #finished = false;

  /** Hash more data: bytes as they are, a string as its UTF-8 encoding. Returns `this`. */
  update(data: string | Uint8Array): this {
    if (this.#finished) throw new Error("Sha256: update() after digest()");
    if (typeof data !== "string") {
      this.#add(data, undefined, data.length);
    } else if (data.length * 3 <= scratch.length) {
      // UTF-8 takes at most 3 bytes per UTF-16 code unit.
      this.#add(scratch, scratchView, encoder.encodeInto(data, scratch).written);
    } else {
      const bytes = encoder.encode(data);
      this.#add(bytes, undefined, bytes.length);
    }
    return this;
  }

  #add(data: Uint8Array, view: DataView | undefined, length: number): void {
    this.#length += length;
    const pending = this.#pending;
    let offset = 0;
    if (this.#pendingLength > 0) {
      // Fewer than 64 bytes: a loop costs less than `set` with a `subarray`.
      let used = this.#pendingLength;
      while (used < 64 && offset < length) pending[used++] = data[offset++];
      this.#pendingLength = used;
      if (used < 64) return;
      block.set(pending);
      compress(this.#state, blockView, 0);
      this.#pendingLength = 0;
    }
    if (length - offset >= 64) {
      view ??= new DataView(data.buffer, data.byteOffset, data.byteLength);
      for (; length - offset >= 64; offset += 64) compress(this.#state, view, offset);
    }
    let used = 0;
    while (offset < length) pending[used++] = data[offset++];
    this.#pendingLength = used;
  }

  /** Finish: the 32-byte digest. The hasher is spent. */
  digest(): Uint8Array;
  /** Finish: the digest as lowercase hex. The hasher is spent. */
  digest(encoding: "hex"): string;
  digest(encoding?: "hex"): Uint8Array | string {
    if (this.#finished) throw new Error("Sha256: digest() called twice");
    this.#finished = true;
    // Padding: a 1 bit, zeros up to 8 bytes short of a block, then the length in bits as
    // 64 bits big-endian.
    const state = this.#state;
    let used = this.#pendingLength;
    block.set(this.#pending);
    block[used++] = 0x80;
    if (used > 56) {
      block.fill(0, used);
      compress(state, blockView, 0);
      used = 0;
    }
    block.fill(0, used, 56);
    blockView.setUint32(56, Math.floor(this.#length / 0x20000000));
    blockView.setUint32(60, (this.#length * 8) >>> 0);
    compress(state, blockView, 0);
    if (encoding === "hex") {
      let hex = "";
      for (const word of state) {
        hex += HEX[word >>> 24] + HEX[(word >>> 16) & 255] + HEX[(word >>> 8) & 255] +
          HEX[word & 255];
      }
      return hex;
    }
    const out = new Uint8Array(32);
    state.forEach((word, i) => {
      out[i * 4] = word >>> 24, out[i * 4 + 1] = word >>> 16;
      out[i * 4 + 2] = word >>> 8, out[i * 4 + 3] = word;
    });
    return out;
  }
}

/**
 * SHA-256 of a string (UTF-8) or bytes, as lowercase hex.
 *
 * @example
 * ```ts
 * import { sha256Hex } from "./sha256.ts";
 * console.log(sha256Hex("abc"));
 * // ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
 * ```
 */
export function sha256Hex(data: string | Uint8Array): string {
  return new Sha256().update(data).digest("hex");
}

/**
 * `bytes` as lowercase hex, two digits a byte (a digest from any hasher).
 *
 * @example
 * ```ts
 * import { hexOf } from "./sha256.ts";
 * console.log(hexOf(new Uint8Array([0, 15, 255]))); // 000fff
 * ```
 */
export function hexOf(bytes: Uint8Array): string {
  // One flat string: adding a byte's digits at a time made a string per byte on the way, a
  // kilobyte of garbage per digest (a 50,000-file layer asks for some 9,000).
  return bytes.toHex();
}
