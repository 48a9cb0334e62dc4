/**
 * The few glibc functions imgtool calls directly, through `Deno.dlopen`, where a Deno op
 * costs several times the system call: `statx` for the walks (`./file_stat.ts`) and `open`,
 * `read` and `close` for hashing files (`./file_hash.ts`). On this machine a system call
 * takes 1.5-3 µs, and Deno's `lstatSync` about 6 µs, its open, read and close of a small
 * file about 12 µs where the direct calls take 8.
 *
 * Loaded at most once per thread, and only when asked: the first `Deno.dlopen` of a process
 * costs 3-4 ms, more than small trees would save. Never loaded without the `ffi` permission
 * (a program of the user's that imports imgtool with fewer permissions is not prompted), off
 * Linux, or without glibc: then callers use Deno's ops, which give the same answers.
 *
 * Every call here takes a path as a NUL-terminated copy in a buffer of this module's: a path
 * holding a NUL, or longer than `PATH_MAX`, is never passed (the callers then ask Deno, which
 * says why it is wrong).
 *
 * @module
 */

const SYMBOLS = {
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

/** The longest path, its NUL included, that glibc's functions are given. */
export const PATH_MAX = 4096;
/** `errno` of an interrupted call, to be made again. */
export const EINTR = 4;
/** `errno` of a call refused as not permitted (a seccomp filter's usual answer). */
export const EPERM = 1;
/** `errno` of a system call the kernel (or a filter) says does not exist. */
export const ENOSYS = 38;

/** The glibc functions, on paths given as strings. */
export interface Libc {
  /**
   * `statx(AT_FDCWD, path, flags, mask, out)`: 0, or -1 with `errno` set; `undefined` for a
   * path that is never passed.
   */
  statx(path: string, flags: number, mask: number, out: Uint8Array): number | undefined;
  /**
   * `statx(dirfd, path, flags, mask, out)` with the path already a C string: relative to the
   * folder `dirfd` (see {@link Libc.openFolder}), from `cPath`'s first byte to a NUL inside it
   * (the caller's promise: the bytes are passed as they are).
   */
  statxAt(dirfd: number, cPath: Uint8Array, flags: number, mask: number, out: Uint8Array): number;
  /**
   * `open(path, O_PATH | O_CLOEXEC)`: a folder's descriptor for
   * {@link Libc.statxAt}, or -1 with `errno` set; `undefined` for a path never passed.
   */
  openFolder(path: string): number | undefined;
  /**
   * `open(path, flags)`: a file descriptor, or -1 with `errno` set; `undefined` for a path
   * that is never passed.
   */
  open(path: string, flags: number): number | undefined;
  /** `read(fd, buffer, buffer.length)`: bytes read, 0 at the end, -1 on failure. */
  read(fd: number, buffer: Uint8Array): number;
  /** `close(fd)`. */
  close(fd: number): void;
  /** This thread's `errno`, right after a call that failed. */
  errno(): number;
}

// undefined: not tried yet in this thread; null: not available.
let loaded: Libc | null | undefined;

/**
 * glibc's functions, loaded now if they were not; `undefined` where they cannot be (see the
 * module's documentation).
 *
 * @example
 * ```ts
 * import { libc } from "./libc.ts";
 * const fd = libc()?.open("/dev/null", 0) ?? -1;
 * if (fd >= 0) libc()!.close(fd);
 * console.log(typeof fd); // number
 * ```
 */
export function libc(): Libc | undefined {
  if (loaded === undefined) loaded = load();
  return loaded ?? undefined;
}

/**
 * glibc's functions if this thread has loaded them already, without loading them.
 *
 * @example
 * ```ts
 * import { libc, libcIfLoaded } from "./libc.ts";
 * libc(); // loads them, where they can be
 * console.log(typeof libcIfLoaded()?.read); // function
 * ```
 */
export function libcIfLoaded(): Libc | undefined {
  return loaded ?? undefined;
}

/**
 * The system library `name` (a soname such as `libc.so.6`) with `symbols`, through
 * `Deno.dlopen`; `undefined` off Linux, without the `ffi` permission (never prompted for), or
 * where the library or one of its symbols is missing. Never closed: each is loaded once per
 * thread and serves the thread's life.
 *
 * @example
 * ```ts
 * import { openSystemLibrary } from "./libc.ts";
 * const lib = openSystemLibrary("libc.so.6", { getpid: { parameters: [], result: "i32" } });
 * console.log(lib === undefined || lib.symbols.getpid() === Deno.pid); // true
 * ```
 */
export function openSystemLibrary<const S extends Deno.ForeignLibraryInterface>(
  name: string,
  symbols: S,
): Deno.DynamicLibrary<S> | undefined {
  if (Deno.build.os !== "linux") return undefined;
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return undefined;
    return Deno.dlopen(name, symbols);
  } catch {
    return undefined;
  }
}

function load(): Libc | null {
  const symbols = openSystemLibrary("libc.so.6", SYMBOLS)?.symbols;
  if (symbols === undefined) return null;
  const encoder = new TextEncoder();
  const pathBytes = new Uint8Array(PATH_MAX);
  const AT_FDCWD = -100;
  // open(2)'s flags, the same on x86-64 and arm64 (O_DIRECTORY is not: a descriptor of
  // something else than a folder makes every call relative to it fail, with ENOTDIR).
  const O_PATH = 0o10000000, O_CLOEXEC = 0o2000000;
  // The count of the last buffer read into, as the bigint a `size_t` is passed as.
  let lastLength = 0, lastCount = 0n;
  /** `path` as a C string in `pathBytes`; false when it cannot be one. */
  const cString = (path: string): boolean => {
    const { read, written } = encoder.encodeInto(path, pathBytes);
    if (read !== path.length || written >= PATH_MAX || path.includes("\0")) return false;
    pathBytes[written] = 0;
    return true;
  };
  return {
    statx: (path, flags, mask, out) =>
      cString(path) ? symbols.statx(AT_FDCWD, pathBytes, flags, mask, out) : undefined,
    statxAt: (dirfd, cPath, flags, mask, out) => symbols.statx(dirfd, cPath, flags, mask, out),
    openFolder: (path) => cString(path) ? symbols.open(pathBytes, O_PATH | O_CLOEXEC) : undefined,
    open: (path, flags) => cString(path) ? symbols.open(pathBytes, flags) : undefined,
    read: (fd, buffer) => {
      if (buffer.length !== lastLength) {
        [lastLength, lastCount] = [buffer.length, BigInt(buffer.length)];
      }
      return Number(symbols.read(fd, buffer, lastCount));
    },
    close: (fd) => void symbols.close(fd),
    errno: () => {
      const at = symbols.__errno_location();
      return at === null ? 0 : new Deno.UnsafePointerView(at).getInt32();
    },
  };
}
