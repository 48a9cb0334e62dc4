/**
 * `lstat` and `stat` as imgtool's walks need them: numbers only, no `Date`, no object with
 * twenty fields per entry.
 *
 * A warm identity of a big tree is one `lstat` per entry and little else (git's index does
 * the same), and `Deno.lstatSync` costs about 6 µs here where the system call itself takes
 * about 3: the rest is the op, and the `Deno.FileInfo` with its four `Date`s that each call
 * makes and the garbage collector then sweeps. So on Linux, once a process has made enough
 * calls to pay for loading it (`Deno.dlopen` takes 3-4 ms the first time), `statx(2)` is
 * called directly through glibc (`./libc.ts`), into one reused buffer: its layout is the same
 * on every architecture. Everywhere else, and whenever that is not possible (no glibc, no `ffi`
 * permission, a call refused), `Deno.lstatSync` and `Deno.statSync` serve.
 *
 * Both give the same numbers for the same file, as `Deno.FileInfo` gives them: modification
 * time in whole milliseconds, change time in whole seconds (Deno's precision), the device
 * number as `makedev` makes it. That matters: stat keys remembered by one run are compared
 * with the next run's, whichever way each took them (`tests/file_stat_test.ts`).
 *
 * @module
 */

import { ENOSYS, EPERM, type Libc, libc, PATH_MAX } from "./libc.ts";

/** What a tree index keeps of a `stat` to tell whether an entry changed. */
export interface StatKey {
  readonly size: number;
  /** Modification time, in milliseconds; -1 where there is none. */
  readonly mtime: number;
  /** Change time, in milliseconds (Deno gives whole seconds); -1 where there is none. */
  readonly ctime: number;
  /** The inode, or -1 where there is none. */
  readonly ino: number;
  readonly dev: number;
  /** Type and permission bits, or -1 where there are none. */
  readonly mode: number;
}

/**
 * What a `stat` said of a path: its stat key and its type.
 *
 * @example
 * ```ts
 * import { lstatFile, type FileStat } from "./file_stat.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "abc");
 * const stat: FileStat = lstatFile(path);
 * console.log(stat.isFile, stat.isDirectory, stat.size); // true false 3
 * ```
 */
export interface FileStat extends StatKey {
  readonly isFile: boolean;
  readonly isDirectory: boolean;
  readonly isSymlink: boolean;
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

/** A type that is none of the three (a socket, a fifo, a device). */
const OTHER = 0;

class Stat implements FileStat {
  constructor(
    readonly size: number,
    readonly mtime: number,
    readonly ctime: number,
    readonly ino: number,
    readonly dev: number,
    readonly mode: number,
    /** `S_IFREG`, `S_IFDIR`, `S_IFLNK` or `OTHER`. */
    readonly type: number,
  ) {}

  get isFile(): boolean {
    return this.type === S_IFREG;
  }

  get isDirectory(): boolean {
    return this.type === S_IFDIR;
  }

  get isSymlink(): boolean {
    return this.type === S_IFLNK;
  }
}

/**
 * A `Deno.FileInfo` as a {@link FileStat}.
 *
 * @example
 * ```ts
 * import { fileStatOf } from "./file_stat.ts";
 * const stat = fileStatOf(await Deno.stat(Deno.cwd()));
 * console.log(stat.isDirectory, stat.mtime > 0); // true true
 * ```
 */
export function fileStatOf(info: Deno.FileInfo): FileStat {
  const type = info.isFile
    ? S_IFREG
    : info.isDirectory
    ? S_IFDIR
    : info.isSymlink
    ? S_IFLNK
    : OTHER;
  return new Stat(
    info.size,
    info.mtime?.getTime() ?? -1,
    info.ctime?.getTime() ?? -1,
    info.ino ?? -1,
    info.dev,
    info.mode ?? -1,
    type,
  );
}

/**
 * `lstat` of `path`: a symbolic link is described, not followed. Throws what
 * `Deno.lstatSync` throws (`Deno.errors.NotFound`, ...).
 *
 * @example
 * ```ts
 * import { lstatFile } from "./file_stat.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.symlink("nowhere", `${dir}/link`);
 * console.log(lstatFile(`${dir}/link`).isSymlink); // true
 * ```
 */
export function lstatFile(path: string): FileStat {
  return native()?.stat(path, false) ?? fileStatOf(Deno.lstatSync(path));
}

/**
 * `stat` of `path`: a symbolic link is followed. Throws what `Deno.statSync` throws.
 *
 * @example
 * ```ts
 * import { statFile } from "./file_stat.ts";
 * console.log(statFile(Deno.cwd()).isDirectory); // true
 * ```
 */
export function statFile(path: string): FileStat {
  return native()?.stat(path, true) ?? fileStatOf(Deno.statSync(path));
}

/**
 * From how many calls on a process takes `statx(2)` directly: `Deno.dlopen` costs 3-4 ms the
 * first time, about what 2,500 calls through Deno cost more than direct ones. Small trees,
 * and so most builds, never load it.
 */
const NATIVE_AFTER = 4096;
/** Calls `statx(2)` refused as not permitted or not there, before it is given up. */
const REFUSALS_ALLOWED = 16;

let nativeAfter = NATIVE_AFTER;
let calls = 0;
let active = false;
// Loaded once a process: undefined, not tried yet; null, not available.
let loaded: NativeStat | null | undefined;

/**
 * Take `statx(2)` directly from the `after`th call on (0: from the next one), or never
 * (`false`); without an argument, back to the default. Internal: the tests hold both ways to
 * the same numbers.
 *
 * @example
 * ```ts
 * import { lstatFile, useNativeStat } from "./file_stat.ts";
 * useNativeStat(false); // Deno.lstatSync only
 * console.log(lstatFile(Deno.cwd()).isDirectory); // true
 * useNativeStat();
 * ```
 */
export function useNativeStat(after?: number | false): void {
  nativeAfter = after === undefined ? NATIVE_AFTER : after === false ? Infinity : after;
  calls = 0;
  active = false;
}

/**
 * Whether calls go to `statx(2)` directly now. Internal, for the tests.
 *
 * @example
 * ```ts
 * import { nativeStatInUse, useNativeStat } from "./file_stat.ts";
 * useNativeStat(false);
 * console.log(nativeStatInUse()); // false
 * useNativeStat();
 * ```
 */
export function nativeStatInUse(): boolean {
  return active && !!loaded && !loaded.refused;
}

/** `statx(2)` taken directly, if it is by now: `expected` more calls are counted first. */
function native(expected = 1): NativeStat | undefined {
  if (!active) {
    calls += expected;
    if (calls <= nativeAfter) return undefined;
    active = true;
    if (loaded === undefined) loaded = NativeStat.load();
  }
  return loaded && !loaded.refused ? loaded : undefined;
}

// statx(2): `AT_SYMLINK_NOFOLLOW` for an lstat.
const AT_SYMLINK_NOFOLLOW = 0x100;
// The fields asked for, and needed in the answer: type, mode, inode, size, mtime, ctime.
const STATX_TYPE = 0x1, STATX_MODE = 0x2, STATX_MTIME = 0x40, STATX_CTIME = 0x80;
const STATX_INO = 0x100, STATX_SIZE = 0x200;
const STATX_BASIC_STATS = 0x7ff;
const NEEDED = STATX_TYPE | STATX_MODE | STATX_MTIME | STATX_CTIME | STATX_INO | STATX_SIZE;
// `struct statx` (include/uapi/linux/stat.h), in 32-bit words: the same on every
// architecture. Little-endian, as every platform Deno runs on.
const STATX_BYTES = 256;
const W_MASK = 0, W_MODE = 7, W_INO = 8, W_SIZE = 10;
const W_CTIME = 24, W_MTIME = 28; // tv_sec (i64), then tv_nsec (u32)
const W_DEV_MAJOR = 34, W_DEV_MINOR = 35;
const TWO_32 = 2 ** 32;

// The numbers of a stat key, in StatKey's order (a tree index keeps them so).
const KEY_FIELDS = 6;
const K_SIZE = 0, K_MTIME = 1, K_CTIME = 2, K_INO = 3, K_DEV = 4, K_MODE = 5;
const encoder = new TextEncoder();

/** `statx(2)` through glibc, into one buffer reused by every call. */
class NativeStat {
  #libc: Libc;
  #out = new Uint8Array(STATX_BYTES);
  #words = new Uint32Array(this.#out.buffer);
  #words32 = new Int32Array(this.#out.buffer);
  #key = new Float64Array(KEY_FIELDS);
  #refusals = 0;

  private constructor(libc: Libc) {
    this.#libc = libc;
  }

  /** Load it, or `null`: glibc's functions cannot be called here (`./libc.ts`). */
  static load(): NativeStat | null {
    const functions = libc();
    return functions ? new NativeStat(functions) : null;
  }

  /** Whether `statx(2)` was refused too often (`EPERM`, `ENOSYS`: a seccomp filter). */
  get refused(): boolean {
    return this.#refusals >= REFUSALS_ALLOWED;
  }

  /**
   * The `stat` (`follow`) or `lstat` of `path`, or `undefined`: ask Deno, which says why it
   * failed (or works around what refused it).
   */
  stat(path: string, follow: boolean): FileStat | undefined {
    const flags = follow ? 0 : AT_SYMLINK_NOFOLLOW;
    const result = this.#libc.statx(path, flags, STATX_BASIC_STATS, this.#out);
    if (!this.#answered(result)) return undefined;
    const key = this.#key;
    const type = this.#decode(key);
    return new Stat(key[0], key[1], key[2], key[3], key[4], key[5], type);
  }

  /**
   * The `lstat` of the C string at the start of `cPath` (a NUL-ended path relative to the
   * folder `dirfd`) as a stat key's numbers, written into `key`; false when none was taken
   * (ask Deno, as for {@link NativeStat.stat}).
   */
  lstatKeyAt(dirfd: number, cPath: Uint8Array, key: Float64Array): boolean {
    const flags = AT_SYMLINK_NOFOLLOW;
    const result = this.#libc.statxAt(dirfd, cPath, flags, STATX_BASIC_STATS, this.#out);
    if (!this.#answered(result)) return false;
    this.#decode(key);
    return true;
  }

  /** A descriptor of the folder `path` for {@link NativeStat.lstatKeyAt}, or -1. */
  openFolder(path: string): number {
    return this.#libc.openFolder(path) ?? -1;
  }

  /** Close a descriptor {@link NativeStat.openFolder} gave. */
  close(fd: number): void {
    this.#libc.close(fd);
  }

  /** Whether a call's `result` is a whole answer; counts the refusals. */
  #answered(result: number | undefined): boolean {
    if (result !== 0) {
      // Not permitted, or no such call: a filter in the way, which Deno's stat works around.
      const errno = result === undefined ? 0 : this.#libc.errno();
      if (errno === EPERM || errno === ENOSYS) this.#refusals++;
      return false;
    }
    return (this.#words[W_MASK] & NEEDED) === NEEDED;
  }

  /** The answer's stat key, as Deno gives its numbers, into `key`; returns the type. */
  #decode(key: Float64Array): number {
    const w = this.#words;
    const mode = w[W_MODE] & 0xffff;
    const type = mode & S_IFMT;
    const major = w[W_DEV_MAJOR], minor = w[W_DEV_MINOR];
    key[K_SIZE] = w[W_SIZE] + w[W_SIZE + 1] * TWO_32;
    key[K_MTIME] = this.#millis(W_MTIME, false);
    key[K_CTIME] = this.#millis(W_CTIME, true);
    key[K_INO] = w[W_INO] + w[W_INO + 1] * TWO_32;
    // glibc's makedev: minor's low 8 bits, major's low 12, minor's next 24, major's next 20.
    key[K_DEV] = (minor & 0xff) + (major & 0xfff) * 2 ** 8 + (minor >>> 8) * 2 ** 20 +
      (major >>> 12) * 2 ** 44;
    key[K_MODE] = mode;
    return type === S_IFREG || type === S_IFDIR || type === S_IFLNK ? type : OTHER;
  }

  /** A time at word `at` as Deno gives it: in whole milliseconds (`seconds`: whole seconds). */
  #millis(at: number, seconds: boolean): number {
    const sec = this.#words[at] + this.#words32[at + 1] * TWO_32;
    return seconds ? sec * 1000 : sec * 1000 + Math.floor(this.#words[at + 2] / 1e6);
  }
}

/**
 * `lstat` of many entries under one folder, each told as its stat key's numbers
 * (six, in {@link StatKey}'s order: size, mtime, ctime, inode, device, mode) rather than as an object: the check of a remembered tree (`./tree_recall.ts`) takes
 * one per entry, 20,000 for a big tree, and does nothing else with them.
 *
 * On Linux, for thousands of entries, `statx(2)` is called directly from the first call,
 * relative to a descriptor of the folder (the kernel looks up only the entry's own path, not
 * the folder's again), and an entry's path can be given where it already is as UTF-8 (a tree
 * index's block of paths, read from its file): nothing is encoded per entry. Closed with
 * `using`, or {@link LstatKeys.close}.
 *
 * @example
 * ```ts
 * import { LstatKeys } from "./file_stat.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.txt`, "abc");
 * using keys = new LstatKeys(`${dir}/`, 2);
 * console.log(keys.read("a.txt"), keys.key[0], keys.read("missing")); // true 3 false
 * ```
 */
export class LstatKeys implements Disposable {
  /** The stat key of the entry read last. */
  readonly key: Float64Array = new Float64Array(KEY_FIELDS);
  readonly #top: string;
  #native: NativeStat | undefined;
  #dirfd = -1;
  // An entry's path given as a string, NUL-ended, for the direct call.
  #path = new Uint8Array(PATH_MAX);

  /**
   * For entries whose paths follow `top` (a folder's path and its `/`; `""` for the working
   * folder), about `expected` of them: they count as calls towards taking `statx(2)`
   * directly (see {@link lstatFile}).
   */
  constructor(top: string, expected: number) {
    this.#top = top;
    const direct = top.includes("\0") ? undefined : native(expected);
    const dirfd = direct?.openFolder(top === "" ? "." : top) ?? -1;
    if (direct !== undefined && dirfd >= 0) [this.#native, this.#dirfd] = [direct, dirfd];
  }

  /**
   * `lstat` of `top + path` into {@link LstatKeys.key}; false when none was taken (the entry
   * is gone or cannot be read: {@link lstatFile} says why).
   */
  read(path: string): boolean {
    if (this.#native !== undefined) {
      const { read, written } = encoder.encodeInto(path, this.#path);
      // A path that fits, without a NUL of its own (a walk's paths never hold one).
      if (read === path.length && written < PATH_MAX && !path.includes("\0")) {
        this.#path[written] = 0;
        if (this.#direct(this.#path)) return true;
      }
    }
    let info: FileStat;
    try {
      info = fileStatOf(Deno.lstatSync(this.#top + path));
    } catch {
      return false;
    }
    const key = this.key;
    key[K_SIZE] = info.size;
    key[K_MTIME] = info.mtime;
    key[K_CTIME] = info.ctime;
    key[K_INO] = info.ino;
    key[K_DEV] = info.dev;
    key[K_MODE] = info.mode;
    return true;
  }

  /**
   * {@link LstatKeys.read} of `path`, which is also the NUL-ended UTF-8 at the start of
   * `cPath` (the caller's promise: a NUL ends it inside `cPath`).
   */
  readAt(cPath: Uint8Array, path: string): boolean {
    return this.#direct(cPath) || this.read(path);
  }

  /** The direct call for the C string `cPath`; false: ask again the slower way. */
  #direct(cPath: Uint8Array): boolean {
    const native = this.#native;
    return native?.refused === false && native.lstatKeyAt(this.#dirfd, cPath, this.key);
  }

  /** Whether entries are read directly, so that {@link LstatKeys.readAt} is worth it. */
  get direct(): boolean {
    return this.#native?.refused === false;
  }

  /** Close the folder's descriptor. */
  close(): void {
    if (this.#dirfd >= 0) this.#native!.close(this.#dirfd);
    [this.#native, this.#dirfd] = [undefined, -1];
  }

  /** {@link LstatKeys.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * What `lstat` said of an entry, from its stat key's numbers ({@link StatKey}'s order) at
 * `base` of `key`: the type comes from the mode's type bits.
 *
 * @example
 * ```ts
 * import { fileStatFromKey } from "./file_stat.ts";
 * const stat = fileStatFromKey(new Float64Array([3, 1000, 1000, 7, 1, 0o100644]), 0);
 * console.log(stat.isFile, stat.size); // true 3
 * ```
 */
export function fileStatFromKey(key: Float64Array, base: number): FileStat {
  const mode = key[base + K_MODE];
  const type = mode < 0 ? OTHER : mode & S_IFMT;
  return new Stat(
    key[base + K_SIZE],
    key[base + K_MTIME],
    key[base + K_CTIME],
    key[base + K_INO],
    key[base + K_DEV],
    mode,
    type === S_IFREG || type === S_IFDIR || type === S_IFLNK ? type : OTHER,
  );
}
