/**
 * The text a folder tree's digest is the SHA-256 of (`./digest.ts`): a line per entry of one
 * walk, written straight into bytes.
 *
 * @module
 */

import { stagedMode } from "./staged_mode.ts";
import { DIR, FILE, IGNORED, type TreeIndex } from "./tree_index.ts";

/**
 * The encoding of a walked tree, a line per entry: the JSON of `["f", path, mode, size,
 * digest]` (`null` for a file that could not be read), `["d", path, mode]` or `["l", path,
 * target]`, as UTF-8; its SHA-256 is the tree's digest. Written as `JSON.stringify` writes
 * those arrays (`tests/tree_text_test.ts` holds them to it), straight into bytes: a name of
 * printable ASCII without a quote or a backslash as it is, any other through
 * `JSON.stringify`; digests from their bytes. Built as a string, the text took 55-65 ms of a
 * cold identity of 20,000 files, all of it after the hashing, and encoding it 10 more.
 *
 * @example
 * ```ts
 * import { treeText } from "./tree_text.ts";
 * import { FILE, TreeIndex } from "./tree_index.ts";
 * const index = new TreeIndex();
 * index.add("a.txt", FILE, { size: 3, mtime: 0, ctime: 0, ino: 1, dev: 1, mode: 0o100644 });
 * index.setDigest(0, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
 * console.log(new TextDecoder().decode(treeText(index, new Set())));
 * // imgtool-tree/1
 * // ["f","a.txt",420,3,"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"]
 * ```
 */
export function treeText(
  index: TreeIndex,
  unreadable: ReadonlySet<number>,
): Uint8Array<ArrayBuffer> {
  const text = new ByteWriter(64 + index.length * 128);
  text.ascii("imgtool-tree/1\n");
  for (let at = 0; at < index.length; at++) {
    const kind = index.kinds[at];
    if (kind === IGNORED) continue;
    if (kind === FILE) {
      text.ascii('["f",');
      text.json(index.paths[at]);
      text.byte(COMMA);
      text.number(stagedMode(index.mode(at)));
      text.byte(COMMA);
      text.number(index.size(at));
      if (!unreadable.has(at)) {
        text.ascii(',"');
        text.hex(index.digests, at * 32, 32);
        text.ascii('"]\n');
      } else {
        text.ascii(",null]\n");
      }
    } else if (kind === DIR) {
      text.ascii('["d",');
      text.json(index.paths[at]);
      text.byte(COMMA);
      text.number(stagedMode(index.mode(at), "dir"));
      text.ascii("]\n");
    } else {
      text.ascii('["l",');
      text.json(index.paths[at]);
      text.byte(COMMA);
      text.json(index.targets.get(at) ?? "");
      text.ascii("]\n");
    }
  }
  return text.bytes();
}

const COMMA = 0x2c;
const QUOTE = 0x22;
const HEX_DIGITS = new TextEncoder().encode("0123456789abcdef");
const textEncoder = new TextEncoder();

/** Bytes written one after another into a buffer that grows as needed. */
class ByteWriter {
  #buffer: Uint8Array<ArrayBuffer>;
  #length = 0;

  constructor(capacity: number) {
    this.#buffer = new Uint8Array(capacity);
  }

  /** Room for `more` bytes. */
  #room(more: number): void {
    if (this.#length + more <= this.#buffer.length) return;
    const grown = new Uint8Array(Math.max(this.#buffer.length * 2, this.#length + more));
    grown.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = grown;
  }

  byte(value: number): void {
    this.#room(1);
    this.#buffer[this.#length++] = value;
  }

  /** A string of ASCII characters, as they are. */
  ascii(text: string): void {
    this.#room(text.length);
    const buffer = this.#buffer;
    let length = this.#length;
    for (let i = 0; i < text.length; i++) buffer[length++] = text.charCodeAt(i);
    this.#length = length;
  }

  /** `JSON.stringify(text)`, as UTF-8. */
  json(text: string): void {
    this.#room(text.length + 2);
    const start = this.#length;
    const buffer = this.#buffer;
    let length = start;
    buffer[length++] = QUOTE;
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      // Anything JSON escapes, or that takes more than a byte: the whole string the long way.
      if (code < 0x20 || code > 0x7e || code === QUOTE || code === 0x5c) {
        const quoted = JSON.stringify(text);
        this.#room(quoted.length * 3);
        this.#length = start + textEncoder.encodeInto(quoted, this.#buffer.subarray(start)).written;
        return;
      }
      buffer[length++] = code;
    }
    buffer[length++] = QUOTE;
    this.#length = length;
  }

  /** A whole number as `JSON.stringify` writes it. */
  number(value: number): void {
    this.ascii(String(value));
  }

  /** `count` bytes of `from` at `offset`, as lowercase hex. */
  hex(from: Uint8Array, offset: number, count: number): void {
    this.#room(count * 2);
    const buffer = this.#buffer;
    let length = this.#length;
    for (let i = offset; i < offset + count; i++) {
      buffer[length++] = HEX_DIGITS[from[i] >> 4];
      buffer[length++] = HEX_DIGITS[from[i] & 15];
    }
    this.#length = length;
  }

  /** What was written. */
  bytes(): Uint8Array<ArrayBuffer> {
    return this.#buffer.subarray(0, this.#length);
  }
}
