/**
 * SHA-256 from the system's OpenSSL (`libcrypto`), called through `Deno.dlopen`: the hasher
 * for large trees, in the walking thread and in the hashing Workers alike, and for the layers
 * imgtool writes and uploads itself ({@link fastSha256}).
 *
 * Why not `node:crypto`, which hashes as fast: loading it starts Deno's Node compatibility
 * layer, 40-50 ms of a thread before the first byte is hashed (once in the walking thread,
 * once in each Worker), and each of its hashers costs some 3 µs to make and finish, where a
 * small file's hashing takes 8. Loading libcrypto takes 3-4 ms, and a hasher here is a
 * 128-byte buffer and three calls. A cold identity of 20,000 files (1.3 GB) on two cores went
 * from 1.14 s to 1.05 s in interleaved runs, its processor time from 2.19 s to 2.01 s
 * (`bench/README.md`, identity).
 *
 * Loaded at most once per thread, and only when asked; never without the `ffi` permission,
 * off Linux, or where no libcrypto 3 or 1.1 is installed (a slim container): callers then
 * take `node:crypto`, which gives the same digests. The library must also give the right
 * digest of a known text when loaded, or it is not used.
 *
 * @module
 */

import { openSystemLibrary } from "./libc.ts";
import { hexOf } from "./sha256.ts";

/** OpenSSL's low-level SHA-256 functions: the same in libcrypto 1.1 and 3. */
const SYMBOLS = {
  SHA256_Init: { parameters: ["buffer"], result: "i32" },
  SHA256_Update: { parameters: ["buffer", "buffer", "usize"], result: "i32" },
  SHA256_Final: { parameters: ["buffer", "buffer"], result: "i32" },
} as const;

/** The libraries tried, in order: OpenSSL 3, then 1.1. */
const LIBRARIES = ["libcrypto.so.3", "libcrypto.so.1.1"];

/** `SHA256_CTX` takes 112 bytes in OpenSSL 1.1 and 3; room for more. */
const CONTEXT_BYTES = 128;

/**
 * An incremental SHA-256: `update` as often as needed, then `digest` once. libcrypto's here;
 * `node:crypto`'s `Hash` has the same calls, so either can serve ({@link fastSha256}).
 */
export interface IncrementalSha256 {
  /** Hash more data (a string as UTF-8). */
  update(data: string | Uint8Array): IncrementalSha256;
  /** Finish: the digest's 32 bytes. */
  digest(): Uint8Array;
  /** Finish, as lowercase hex. */
  digest(encoding: "hex"): string;
  /** A hasher that goes on from where this one is, apart from it. */
  copy(): IncrementalSha256;
}

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

// undefined: not tried yet in this thread; null: not available.
let loaded: (() => IncrementalSha256) | null | undefined;

/**
 * A maker of libcrypto's SHA-256 hashers, loaded now if it was not; `undefined` where it
 * cannot be (see the module's documentation).
 *
 * @example
 * ```ts
 * import { nativeSha256 } from "./libcrypto.ts";
 * const newHasher = nativeSha256();
 * if (newHasher) console.log(newHasher().update("abc").digest("hex").slice(0, 8)); // ba7816bf
 * ```
 */
export function nativeSha256(): (() => IncrementalSha256) | undefined {
  if (loaded === undefined) loaded = load();
  return loaded ?? undefined;
}

/**
 * SHA-256 hashers for code that hashes megabytes (layers written or uploaded, large trees):
 * libcrypto's, else `node:crypto`'s, which starts Deno's Node layer (imported only then).
 *
 * @example
 * ```ts
 * import { fastSha256 } from "./libcrypto.ts";
 * const newHasher = await fastSha256();
 * console.log(newHasher().update("abc").digest("hex").slice(0, 8)); // ba7816bf
 * ```
 */
export async function fastSha256(): Promise<() => IncrementalSha256> {
  const native = nativeSha256();
  if (native) return native;
  nodeCrypto ??= import("node:crypto");
  const { createHash } = await nodeCrypto;
  // Its `Hash` has the same calls (a `Buffer` is a `Uint8Array`).
  return () => createHash("sha256") as unknown as IncrementalSha256;
}

let nodeCrypto: Promise<typeof import("node:crypto")> | undefined;

function load(): (() => IncrementalSha256) | null {
  for (const name of LIBRARIES) {
    const symbols = openSystemLibrary(name, SYMBOLS)?.symbols;
    if (symbols === undefined) continue;
    const make = () => new Sha256Context(symbols);
    // A library that does not give SHA-256's known answer is not used.
    if (make().update("abc").digest("hex") === ABC_SHA256) return make;
  }
  return null;
}

const ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const encoder = new TextEncoder();
/** Where each thread's digests are written before they are read as hex. */
const out = new Uint8Array(32);

/** One hasher: its own context, so that hashers in use at once never share one. */
class Sha256Context implements IncrementalSha256 {
  readonly #symbols: Symbols;
  readonly #context = new Uint8Array(CONTEXT_BYTES);

  /** A new hasher, or (`from`) a copy of another's state: a plain struct, copied whole. */
  constructor(symbols: Symbols, from?: Uint8Array) {
    this.#symbols = symbols;
    if (from) this.#context.set(from);
    else symbols.SHA256_Init(this.#context);
  }

  update(data: string | Uint8Array): IncrementalSha256 {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    if (bytes.length > 0) this.#symbols.SHA256_Update(this.#context, bytes, BigInt(bytes.length));
    return this;
  }

  digest(): Uint8Array;
  digest(encoding: "hex"): string;
  digest(encoding?: "hex"): string | Uint8Array {
    this.#symbols.SHA256_Final(out, this.#context);
    return encoding === undefined ? out.slice() : hexOf(out);
  }

  copy(): IncrementalSha256 {
    return new Sha256Context(this.#symbols, this.#context);
  }
}
