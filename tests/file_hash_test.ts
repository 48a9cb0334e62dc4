// A file read into a hash gives the same digest through glibc's calls (`src/libc.ts`) as
// through Deno's, for every size around the read buffer's; what cannot be read says so, and
// a fifo in a file's place never waits for a writer.

import assert from "node:assert/strict";
import { join } from "node:path";
import { hashFileInto, READ_CHUNK } from "../src/file_hash.ts";
import { libc, libcIfLoaded } from "../src/libc.ts";
import { Sha256, sha256Hex } from "../src/sha256.ts";
import { withTempDir } from "./helpers.ts";

/** The digest `hashFileInto` gives, or `null` when it says the file cannot be read. */
function hashed(path: string, size: number): string | null {
  const hash = new Sha256();
  return hashFileInto(hash, path, size, new Uint8Array(READ_CHUNK)) ? hash.digest("hex") : null;
}

Deno.test("files read through glibc's calls hash as they do through Deno's", () =>
  withTempDir((dir) => {
    assert.ok(libc(), "glibc's functions load here");
    assert.ok(libcIfLoaded());
    for (const size of [0, 1, 4095, READ_CHUNK - 1, READ_CHUNK, READ_CHUNK + 1, 3 * READ_CHUNK]) {
      const bytes = new Uint8Array(size).map((_, i) => (i * 31 + size) & 0xff);
      const path = join(dir, `file-${size} with spaces, and ünïcode`);
      Deno.writeFileSync(path, bytes);
      assert.equal(hashed(path, size), sha256Hex(bytes), `${size} bytes`);
      // A size that is not the file's (it changed since its stat): still read to its end.
      assert.equal(hashed(path, size + 1), sha256Hex(bytes), `${size} bytes, stat said more`);
    }
    assert.equal(hashed(join(dir, "missing"), 0), null);
    assert.equal(hashed(dir, 0), null, "a folder is no file");
    assert.equal(hashed(`${dir}/a\0b`, 0), null, "a path with a NUL names no file");
  }));

Deno.test("a fifo put in a file's place reads as empty at once, where Deno's open would wait", () =>
  withTempDir((dir) => {
    assert.ok(libc());
    const fifo = join(dir, "fifo");
    new Deno.Command("mkfifo", { args: [fifo] }).outputSync();
    assert.equal(hashed(fifo, 100), sha256Hex(""));
  }));
