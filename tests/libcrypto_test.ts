// libcrypto's SHA-256 through Deno.dlopen (src/libcrypto.ts), the hasher of large trees and of
// appended layers: the same digests as node:crypto for inputs split into updates anywhere,
// strings as UTF-8, hashers in use at once and copies keeping their own state.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fc from "fast-check";
import { nativeSha256 } from "../src/libcrypto.ts";

const newHasher = nativeSha256();
// Where no libcrypto is installed, imgtool hashes with node:crypto and these have nothing to test.
const ignore = newHasher === undefined;

Deno.test({
  name: "libcrypto's SHA-256 equals node:crypto's, however the input is split into updates",
  ignore,
  fn: () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 70_000 }),
        fc.array(fc.nat({ max: 70_000 }), { maxLength: 6 }),
        (data, cuts) => {
          const hasher = newHasher!();
          let from = 0;
          for (const cut of [...cuts].sort((a, b) => a - b)) {
            hasher.update(data.subarray(from, Math.max(from, Math.min(cut, data.length))));
            from = Math.max(from, Math.min(cut, data.length));
          }
          hasher.update(data.subarray(from));
          assert.equal(hasher.digest("hex"), createHash("sha256").update(data).digest("hex"));
        },
      ),
      { numRuns: 200 },
    );
  },
});

Deno.test({
  name: "libcrypto's SHA-256: strings as UTF-8, the empty input, and two hashers at once",
  ignore,
  fn: () => {
    const node = (data: string) => createHash("sha256").update(data, "utf8").digest("hex");
    assert.equal(newHasher!().digest("hex"), node(""));
    assert.equal(newHasher!().update("ünïcödé 🎉").digest("hex"), node("ünïcödé 🎉"));
    const a = newHasher!(), b = newHasher!();
    a.update("first half, ");
    b.update("another ");
    a.update("second half");
    b.update("text");
    assert.equal(a.digest("hex"), node("first half, second half"));
    assert.equal(b.digest("hex"), node("another text"));
  },
});

Deno.test({
  name: "libcrypto's SHA-256: a copy goes on apart from its original; digest() gives the bytes",
  ignore,
  fn: () => {
    const bytes = (text: string) => new TextEncoder().encode(text);
    const node = (text: string) => new Uint8Array(createHash("sha256").update(text).digest());
    const original = newHasher!().update(bytes("shared start, "));
    const copy = original.copy();
    original.update(bytes("then the original"));
    copy.update(bytes("then the copy"));
    assert.deepEqual(copy.digest(), node("shared start, then the copy"));
    assert.deepEqual(original.digest(), node("shared start, then the original"));
  },
});
