/**
 * Reading a file into a hash, synchronously, through one reused buffer: the inner loop of
 * every file digest, in this thread and in the hashing Workers alike.
 *
 * Why 256 KiB reads: the bytes are copied from the page cache into the buffer and then read
 * again by the hasher, and a buffer that fits in the core's own cache is read back from there.
 * Reading 1.3 GB of files in 1 MiB reads cost twice the kernel time of 64-256 KiB reads on
 * the 2-core build machine (0.8 s against 0.4), for the same hashing time.
 *
 * Where glibc's functions are loaded in this thread (`./libc.ts`: the hashing Workers load
 * them, whose trees are large), a file is opened, read and closed by direct calls: some 8 µs
 * for a small file against Deno's 12, on trees of 20,000 files a tenth of the hashing
 * Workers' time. It is opened non-blocking: a fifo put in a file's place since the walk then
 * reads as empty at once, where a blocking open would wait for a writer forever. Deno's open
 * takes no such flag, so where the files go through Deno (small trees, no glibc) that race
 * still blocks.
 *
 * @module
 */

import { EINTR, libcIfLoaded } from "./libc.ts";

/** The size of the read buffer {@link hashFileInto} wants. */
export const READ_CHUNK = 256 << 10;

/** What {@link hashFileInto} feeds: an incremental hash. */
export interface HashInput {
  /** Hash more bytes. */
  update(data: Uint8Array): unknown;
}

/**
 * Read the regular file at `path`, `size` bytes long by its `stat`, into `hash`, through
 * `buffer`. Returns false when it cannot be read (then `hash` holds part of it at most).
 *
 * @example
 * ```ts
 * import { hashFileInto, READ_CHUNK } from "./file_hash.ts";
 * import { Sha256 } from "./sha256.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "abc");
 * const hash = new Sha256();
 * console.log(hashFileInto(hash, path, 3, new Uint8Array(READ_CHUNK))); // true
 * console.log(hash.digest("hex").slice(0, 8)); // ba7816bf
 * ```
 */
export function hashFileInto(
  hash: HashInput,
  path: string,
  size: number,
  buffer: Uint8Array,
): boolean {
  const libc = libcIfLoaded();
  if (libc !== undefined) {
    const fd = libc.open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd !== undefined && fd >= 0) {
      try {
        return readInto(hash, size, buffer, (into) => libc.read(fd, into), libc.errno);
      } finally {
        libc.close(fd);
      }
    }
    // Not opened: Deno's open, below, tells whether it can be at all.
  }
  try {
    using file = Deno.openSync(path);
    return readInto(hash, size, buffer, (into) => file.readSync(into) ?? 0);
  } catch {
    return false;
  }
}

// open(2) flags, the same on every Linux architecture Deno runs on.
const O_RDONLY = 0, O_NOCTTY = 0o400, O_NONBLOCK = 0o4000, O_CLOEXEC = 0o2000000;

/**
 * Read a file through `read` (bytes read, 0 at its end, -1 on failure with `errno()` saying
 * why) into `hash`, until its end, or until its `stat` size is in and a short read says no
 * more is there (the read that would only say "end of file" is skipped).
 */
function readInto(
  hash: HashInput,
  size: number,
  buffer: Uint8Array,
  read: (into: Uint8Array) => number,
  errno?: () => number,
): boolean {
  let total = 0;
  for (;;) {
    const n = read(buffer);
    if (n < 0) {
      if (errno?.() === EINTR) continue;
      return false;
    }
    if (n === 0) return true;
    hash.update(n === buffer.length ? buffer : buffer.subarray(0, n));
    total += n;
    if (total === size && n < buffer.length) return true;
  }
}
