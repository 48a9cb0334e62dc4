// The pure TypeScript SHA-256 of src/sha256.ts: the NIST vectors, updates split anywhere,
// and random inputs against node:crypto (which the tests may load; imgtool itself avoids it).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Sha256, sha256Hex } from "../src/sha256.ts";

function nodeHex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

// A deterministic byte pattern, so that a failure can be replayed.
function bytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x;
  }
  return out;
}

Deno.test("sha256Hex() gives the NIST example digests (FIPS 180-4 / SHAVS)", () => {
  const vectors: [string, string][] = [
    ["", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
    ["abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"],
    [
      "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ],
    [
      "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq" +
      "klmnopqrlmnopqrsmnopqrstnopqrstu",
      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
    ],
  ];
  for (const [message, digest] of vectors) {
    assert.equal(sha256Hex(message), digest, JSON.stringify(message));
    assert.equal(sha256Hex(new TextEncoder().encode(message)), digest, `${message} as bytes`);
  }
});

Deno.test("Sha256 gives the NIST digest of one million 'a's, whole and in pieces", () => {
  const expected = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
  assert.equal(sha256Hex("a".repeat(1_000_000)), expected);
  assert.equal(sha256Hex(new Uint8Array(1_000_000).fill(0x61)), expected);
  const hasher = new Sha256();
  const piece = new Uint8Array(1000).fill(0x61);
  for (let i = 0; i < 1000; i++) hasher.update(piece);
  assert.equal(hasher.digest("hex"), expected);
});

Deno.test("updates split at any offset around block boundaries give the one-shot digest", () => {
  // Lengths where the padding needs one block or two, and whole blocks.
  for (const length of [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 191, 192, 193]) {
    const data = bytes(length, length + 1);
    const whole = sha256Hex(data);
    assert.equal(whole, nodeHex(data), `length ${length}`);
    for (let first = 0; first <= length; first++) {
      const two = new Sha256().update(data.subarray(0, first)).update(data.subarray(first));
      assert.equal(two.digest("hex"), whole, `length ${length} split at ${first}`);
      // And in three, the middle piece short enough to stay inside a pending block.
      for (const middle of [1, 7, 63, 64, 65]) {
        const second = Math.min(length, first + middle);
        const three = new Sha256()
          .update(data.subarray(0, first))
          .update(data.subarray(first, second))
          .update(data.subarray(second));
        assert.equal(three.digest("hex"), whole, `length ${length} split at ${first}, ${second}`);
      }
    }
  }
});

Deno.test("byte by byte, and views into a larger buffer, give the one-shot digest", () => {
  const data = bytes(300, 7);
  const hasher = new Sha256();
  for (let i = 0; i < data.length; i++) hasher.update(data.subarray(i, i + 1));
  assert.equal(hasher.digest("hex"), nodeHex(data));
  // A view that does not start at its buffer's first byte, nor at an aligned offset.
  const backing = bytes(1000, 9);
  const view = backing.subarray(13, 13 + 777);
  assert.equal(sha256Hex(view), nodeHex(view));
});

Deno.test("random inputs, cut into random pieces, digest as node:crypto does", () => {
  const random = bytes(1 << 20, 42);
  let cursor = 0;
  const next = (bound: number) => {
    cursor = (cursor + 3) % (random.length - 4);
    return (random[cursor] | (random[cursor + 1] << 8) | (random[cursor + 2] << 16)) % bound;
  };
  for (let round = 0; round < 300; round++) {
    const length = round < 200 ? next(600) : next(200_000);
    const data = bytes(length, round + 100);
    const hasher = new Sha256();
    for (let at = 0; at < length;) {
      const piece = Math.min(length - at, 1 + next(round % 2 === 0 ? 100 : 70_000));
      hasher.update(data.subarray(at, at + piece));
      at += piece;
    }
    assert.equal(hasher.digest("hex"), nodeHex(data), `round ${round}, length ${length}`);
  }
});

Deno.test("strings are hashed as UTF-8, short and long, as node:crypto does", () => {
  const samples = [
    "é",
    "naïve café ☕",
    "emoji 🐳 and CJK 漢字",
    // Longer than the scratch buffer used for short strings.
    "ünïcödé 🐍 ".repeat(1000),
    // A lone surrogate: both encode it as U+FFFD.
    "broken \ud800 pair",
  ];
  for (const sample of samples) {
    assert.equal(sha256Hex(sample), nodeHex(sample), JSON.stringify(sample.slice(0, 20)));
    const hasher = new Sha256();
    for (const char of sample) hasher.update(char);
    assert.equal(hasher.digest("hex"), nodeHex(sample), "one character at a time");
  }
  // Strings and bytes mixed in one digest.
  const mixed = new Sha256().update("imgtool-tree/1\n").update(bytes(100)).update("ß\n");
  const expected = createHash("sha256").update("imgtool-tree/1\n").update(bytes(100))
    .update("ß\n").digest("hex");
  assert.equal(mixed.digest("hex"), expected);
});

Deno.test("Sha256.digest() gives bytes, and a spent hasher refuses more", () => {
  const hasher = new Sha256().update("abc");
  const digest = hasher.digest();
  assert.ok(digest instanceof Uint8Array);
  assert.equal(digest.length, 32);
  assert.equal(
    Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join(""),
    sha256Hex("abc"),
  );
  assert.throws(() => hasher.update("more"), /after digest/);
  assert.throws(() => hasher.digest("hex"), /twice/);
});
