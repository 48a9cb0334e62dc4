/**
 * `imgtool.lock`: the base images of the specs in a folder, by digest. One file per folder,
 * beside the specs, shared by them; written by `imgtool lock`, read by every command that
 * plans a spec (so that `uri` stays synchronous and offline), and committed with the specs.
 *
 * The file is TOML, written in one stable order so that a change is a small diff:
 *
 * ```toml
 * # imgtool.lock: the base images of the specs in this folder, by digest.
 * # Written by `imgtool lock`; commit it. `imgtool lock --update` moves every entry.
 * version = 1
 *
 * [images]
 * "python:3.12-slim-bookworm" = "sha256:…"
 *
 * # The images each spec uses: `imgtool build --locked` compares them with the spec.
 * [specs]
 * "spec.ts" = [
 *   "python:3.12-slim-bookworm",
 * ]
 * ```
 *
 * `[images]` maps each reference, exactly as a spec or the configuration writes it, to the
 * digest its registry served for it (the index digest for a multi-platform image).
 * `[specs]` records which of them each spec of the folder uses: it is how `imgtool lock`
 * knows, without loading the folder's other specs, that an entry is used by no spec any
 * more, and how `build --locked` knows the file is out of date.
 *
 * This module owns the format (reading, writing, merging) and the lock that planning uses
 * ({@link activeLock}).
 *
 * @module
 */

import { parse as parseToml } from "smol-toml";
import { ImgtoolError, systemError, UsageError } from "./errors.ts";
import { FileReadError, readWholeTextSync } from "./fs.ts";
import { basename, dirname, join, resolve } from "./path.ts";
import { isPinnedByDigest } from "./pinning.ts";

/**
 * The lock file's name.
 *
 * @example
 * ```ts
 * import { LOCK_FILE_NAME } from "./lock.ts";
 * console.log(LOCK_FILE_NAME); // imgtool.lock
 * ```
 */
export const LOCK_FILE_NAME = "imgtool.lock";

/** The one format version this imgtool reads and writes. */
const FORMAT_VERSION = 1;

/** A digest as registries serve them. */
const DIGEST = /^sha256:[a-f0-9]{64}$/;

/** The largest lock file read: one holds a few lines per base image. */
const LOCK_FILE_LIMIT = 1024 * 1024;

const HEADER = [
  "# imgtool.lock: the base images of the specs in this folder, by digest.",
  "# Written by `imgtool lock`; commit it. `imgtool lock --update` moves every entry.",
];
const SPECS_COMMENT =
  "# The images each spec uses: `imgtool build --locked` compares them with the spec.";

/**
 * The content of a lock file.
 *
 * @example
 * ```ts
 * import { formatLock, type LockFile } from "./lock.ts";
 * const lock: LockFile = {
 *   images: { "debian:bookworm": `sha256:${"c".repeat(64)}` },
 *   specs: { "spec.ts": ["debian:bookworm"] },
 * };
 * console.log(formatLock(lock).includes('"spec.ts" = [')); // true
 * ```
 */
export interface LockFile {
  /** The digest of each reference. */
  readonly images: Readonly<Record<string, string>>;
  /** The references each spec of the folder uses, by the spec file's name. */
  readonly specs: Readonly<Record<string, readonly string[]>>;
}

/**
 * A lock file with nothing in it: what a folder without one has.
 *
 * @example
 * ```ts
 * import { EMPTY_LOCK } from "./lock.ts";
 * console.log(Object.keys(EMPTY_LOCK.images).length); // 0
 * ```
 */
export const EMPTY_LOCK: LockFile = Object.freeze({
  images: Object.freeze({}),
  specs: Object.freeze({}),
});

/**
 * The lock file of the spec at `specPath`: `imgtool.lock` in the spec's folder.
 *
 * @example
 * ```ts
 * import { lockFileFor } from "./lock.ts";
 * console.log(lockFileFor("/work/app/spec.ts")); // /work/app/imgtool.lock
 * ```
 */
export function lockFileFor(specPath: string): string {
  return join(dirname(resolve(cwd(), specPath)), LOCK_FILE_NAME);
}

/**
 * The name a lock file records a spec under: its file name (the lock is beside it).
 *
 * @example
 * ```ts
 * import { specKey } from "./lock.ts";
 * console.log(specKey("/work/app/spec.ts")); // spec.ts
 * ```
 */
export function specKey(specPath: string): string {
  return basename(resolve(cwd(), specPath));
}

/**
 * The lock file as text: a fixed header, then the entries and the spec records in sorted
 * order, one entry a line, so that equal locks are equal bytes and a change is a small diff.
 *
 * @example
 * ```ts
 * import { formatLock } from "./lock.ts";
 * const text = formatLock({ images: { "b:1": `sha256:${"1".repeat(64)}`, "a:1": `sha256:${"2".repeat(64)}` }, specs: {} });
 * console.log(text.indexOf('"a:1"') < text.indexOf('"b:1"')); // true
 * ```
 */
export function formatLock(lock: LockFile): string {
  const lines = [...HEADER, `version = ${FORMAT_VERSION}`, "", "[images]"];
  for (const [reference, digest] of sortedEntries(lock.images)) {
    lines.push(`${tomlString(reference)} = ${tomlString(digest)}`);
  }
  lines.push("", SPECS_COMMENT, "[specs]");
  for (const [spec, used] of sortedEntries(lock.specs)) {
    const references = sorted([...new Set(used)]);
    lines.push(`${tomlString(spec)} = [`, ...references.map((r) => `  ${tomlString(r)},`), "]");
  }
  return `${lines.join("\n")}\n`;
}

/**
 * Read a lock file's text. Throws a {@link UsageError} (exit status 2) that names the file
 * and the line for text that is not TOML or not a lock file of this version.
 *
 * @example
 * ```ts
 * import { formatLock, parseLock } from "./lock.ts";
 * const lock = { images: { "debian:bookworm": `sha256:${"d".repeat(64)}` }, specs: { "spec.ts": ["debian:bookworm"] } };
 * console.log(JSON.stringify(parseLock(formatLock(lock), "imgtool.lock")) === JSON.stringify(lock)); // true
 * try {
 *   parseLock('version = 1\n[images]\n"debian:bookworm" = "latest"\n', "/work/app/imgtool.lock");
 * } catch (error) {
 *   console.log((error as Error).message); // /work/app/imgtool.lock:3: the entry "debian:bookworm" is "latest", not a digest (sha256: and 64 hex digits)
 * }
 * ```
 */
export function parseLock(text: string, file: string): LockFile {
  let table: Record<string, unknown>;
  try {
    table = parseToml(text) as Record<string, unknown>;
  } catch (error) {
    const { line, message } = error as { line?: number; message?: string };
    const reason = String(message ?? error).replace(/^Invalid TOML document: /, "").split("\n")[0];
    throw malformed(file, line, `it is not valid TOML: ${reason}`);
  }
  const lineOf = (key: string, inTable?: string) => keyLine(text, key, inTable);
  for (const key of Object.keys(table)) {
    if (!["version", "images", "specs"].includes(key)) {
      throw malformed(file, lineOf(key), `unknown key ${JSON.stringify(key)}`);
    }
  }
  if (table.version !== FORMAT_VERSION) {
    const newer = typeof table.version === "number" && table.version > FORMAT_VERSION;
    throw new UsageError(
      `${where(file, lineOf("version"))}: ${
        table.version === undefined
          ? "it has no version"
          : `version ${JSON.stringify(table.version)} is not ${FORMAT_VERSION}`
      }, so it is not a lock file this imgtool can read`,
      {
        hint: newer
          ? "a newer imgtool wrote it: use that version, or run imgtool lock --update with this one"
          : `delete it and run imgtool lock to write it again`,
      },
    );
  }
  const images = new Map<string, string>();
  for (const [reference, digest] of Object.entries(tableAt(table, "images", file, lineOf))) {
    const at = lineOf(reference, "images");
    if (!isLockableName(reference)) {
      throw malformed(file, at, `${JSON.stringify(reference)} is not an image reference by tag`);
    }
    if (typeof digest !== "string" || !DIGEST.test(digest)) {
      throw malformed(
        file,
        at,
        `the entry ${JSON.stringify(reference)} is ${
          JSON.stringify(digest)
        }, not a digest (sha256: and 64 hex digits)`,
      );
    }
    images.set(reference, digest);
  }
  const specs = new Map<string, string[]>();
  for (const [spec, references] of Object.entries(tableAt(table, "specs", file, lineOf))) {
    if (
      !Array.isArray(references) ||
      !references.every((reference) => typeof reference === "string")
    ) {
      throw malformed(
        file,
        lineOf(spec, "specs"),
        `the spec record ${JSON.stringify(spec)} is not a list of image references`,
      );
    }
    specs.set(spec, references);
  }
  // Built from entries, never by assignment: a key such as "__proto__" stays a key.
  return { images: Object.fromEntries(images), specs: Object.fromEntries(specs) };
}

/**
 * Read the lock file `file`, or `undefined` when there is none. Throws a
 * {@link UsageError} for a file that is malformed ({@link parseLock}) or cannot be read.
 *
 * @example
 * ```ts
 * import { readLockSync } from "./lock.ts";
 * const dir = Deno.makeTempDirSync();
 * console.log(readLockSync(`${dir}/imgtool.lock`)); // undefined
 * ```
 */
export function readLockSync(file: string): LockFile | undefined {
  let text: string;
  try {
    text = readWholeTextSync(file, { what: "lock file", limit: LOCK_FILE_LIMIT });
  } catch (error) {
    if (error instanceof FileReadError && error.reason === "missing") return undefined;
    throw error;
  }
  return parseLock(text, file);
}

/**
 * Write `lock` to `file` whole: into a temporary file beside it, then renamed into place,
 * so that a reader (another command, a build) sees the old file or the new one, never part
 * of one. Throws an {@link ImgtoolError} that says what, where and how to fix it when the
 * file cannot be written (exit status 1 for the machine's failures, such as a full disk; 2
 * for a path that cannot be written, such as a folder in its place), and leaves no
 * temporary file behind.
 *
 * @example
 * ```ts
 * import { readLockSync, writeLock } from "./lock.ts";
 * const dir = Deno.makeTempDirSync();
 * await writeLock(`${dir}/imgtool.lock`, { images: {}, specs: {} });
 * console.log(readLockSync(`${dir}/imgtool.lock`)); // { images: {}, specs: {} }
 * ```
 */
export async function writeLock(file: string, lock: LockFile): Promise<void> {
  const temporary = join(dirname(file), `.${basename(file)}.${Deno.pid}.${crypto.randomUUID()}`);
  try {
    await Deno.writeTextFile(temporary, formatLock(lock), { createNew: true });
    await Deno.rename(temporary, file);
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw systemError(error, { doing: `writing ${file}` }) ??
      new ImgtoolError(`cannot write ${file}: ${(error as Error)?.message ?? error}`, {
        hint: `let the user running imgtool write to ${dirname(file)}`,
        cause: error,
      });
  }
}

/** An entry `imgtool lock` added. */
export interface LockAdded {
  /** The reference. */
  readonly reference: string;
  /** Its digest. */
  readonly digest: string;
}

/** An entry whose digest moved. */
export interface LockMoved {
  /** The reference. */
  readonly reference: string;
  /** The digest it had. */
  readonly from: string;
  /** The digest it has now. */
  readonly to: string;
}

/**
 * What one spec brings to its folder's lock file ({@link mergeLock}).
 *
 * @example
 * ```ts
 * import type { LockMerge } from "./lock.ts";
 * const merge: LockMerge = { spec: "spec.ts", uses: ["debian:bookworm"], resolved: {}, specExists: () => true };
 * console.log(merge.uses); // [ "debian:bookworm" ]
 * ```
 */
export interface LockMerge {
  /** The spec, by its name in the lock ({@link specKey}). */
  readonly spec: string;
  /** Every reference by tag the spec uses now. */
  readonly uses: readonly string[];
  /** Digests resolved now, by reference: new entries, or entries to move. */
  readonly resolved: Readonly<Record<string, string>>;
  /** Does the spec file of that name still exist beside the lock? */
  specExists(spec: string): boolean;
}

/**
 * The lock after one spec was locked, and what changed in it.
 *
 * @example
 * ```ts
 * import { EMPTY_LOCK, mergeLock, type MergedLock } from "./lock.ts";
 * const merged: MergedLock = mergeLock(EMPTY_LOCK, { spec: "spec.ts", uses: [], resolved: {}, specExists: () => true });
 * console.log(merged.added.length, merged.moved.length, merged.removed.length); // 0 0 0
 * ```
 */
export interface MergedLock {
  /** The new lock. */
  readonly lock: LockFile;
  /** Entries added. */
  readonly added: readonly LockAdded[];
  /** Entries whose digest moved. */
  readonly moved: readonly LockMoved[];
  /** Entries removed because no spec uses them any more. */
  readonly removed: readonly LockAdded[];
  /** Specs whose records were removed because their files are gone. */
  readonly forgotten: readonly string[];
}

/**
 * Merge what one spec uses into its folder's lock: the spec's record becomes `uses` (a spec
 * that uses nothing by tag has none), records of specs whose files are gone are dropped,
 * `resolved` digests are added or moved, other entries are kept, and an entry that no
 * recorded spec uses any more is removed. The lists come out sorted.
 *
 * @example
 * ```ts
 * import { mergeLock } from "./lock.ts";
 * const [old, now] = [`sha256:${"1".repeat(64)}`, `sha256:${"2".repeat(64)}`];
 * const lock = { images: { "python:3.11": old, "python:3.12": old }, specs: { "spec.ts": ["python:3.11", "python:3.12"] } };
 * const merged = mergeLock(lock, {
 *   spec: "spec.ts",
 *   uses: ["python:3.12"],
 *   resolved: { "python:3.12": now },
 *   specExists: () => true,
 * });
 * console.log(merged.moved.map((m) => m.reference), merged.removed.map((r) => r.reference)); // [ "python:3.12" ] [ "python:3.11" ]
 * ```
 */
export function mergeLock(lock: LockFile, merge: LockMerge): MergedLock {
  const specs = new Map<string, string[]>();
  const forgotten: string[] = [];
  for (const [spec, references] of Object.entries(lock.specs)) {
    if (spec === merge.spec) continue;
    if (merge.specExists(spec)) specs.set(spec, sorted([...new Set(references)]));
    else forgotten.push(spec);
  }
  const uses = sorted([...new Set(merge.uses)]);
  if (uses.length > 0) specs.set(merge.spec, uses);
  const images = new Map(Object.entries(lock.images));
  const added: LockAdded[] = [];
  const moved: LockMoved[] = [];
  for (const [reference, digest] of sortedEntries(merge.resolved)) {
    const before = images.get(reference);
    if (before === undefined) added.push({ reference, digest });
    else if (before !== digest) moved.push({ reference, from: before, to: digest });
    images.set(reference, digest);
  }
  const used = new Set([...specs.values()].flat());
  const removed: LockAdded[] = [];
  for (const [reference, digest] of sortedEntries(Object.fromEntries(images))) {
    if (used.has(reference)) continue;
    removed.push({ reference, digest });
    images.delete(reference);
  }
  return {
    lock: {
      images: Object.fromEntries(sortedEntries(Object.fromEntries(images))),
      specs: Object.fromEntries(sortedEntries(Object.fromEntries(specs))),
    },
    added,
    moved,
    removed,
    forgotten: sorted(forgotten),
  };
}

/**
 * The lock that planning pins references with: the file it was read from, and its entries.
 *
 * @example
 * ```ts
 * import { activeLock, type ActiveLock } from "imgtool";
 * const lock: ActiveLock = activeLock();
 * console.log(typeof lock.images); // object
 * ```
 */
export interface ActiveLock {
  /** The lock file, when one was read. */
  readonly file?: string;
  /** Its entries: the digest of each reference. */
  readonly images: Readonly<Record<string, string>>;
}

// The lock `Image.uri` and planning read. The CLI sets it (the spec's folder's file) before
// it imports a spec; a program that imports imgtool directly gets the file in its working
// directory, as it gets the configuration found from there.
let active: ActiveLock | undefined;

/**
 * The lock in effect for planning (`uri`, `identifier`, every command): the one
 * {@link setActiveLock} read, else `imgtool.lock` in the working directory, if there is one.
 *
 * @example
 * ```ts
 * import { activeLock } from "imgtool";
 * console.log(activeLock().file === undefined || activeLock().file?.endsWith("imgtool.lock")); // true
 * ```
 */
export function activeLock(): ActiveLock {
  active ??= loadActive(join(cwd(), LOCK_FILE_NAME));
  return active;
}

/**
 * Read the lock file `file` (none: `undefined`, or a file that does not exist) and put it in
 * effect for planning; returns it. Throws a {@link UsageError} for a malformed file. The CLI
 * does this with the spec's folder's file before it imports the spec.
 *
 * @example
 * ```ts
 * import { setActiveLock } from "imgtool";
 * const dir = Deno.makeTempDirSync();
 * console.log(setActiveLock(`${dir}/imgtool.lock`)); // { file: undefined, images: {} }
 * ```
 */
export function setActiveLock(file: string | undefined): ActiveLock {
  active = file === undefined ? { file: undefined, images: {} } : loadActive(file);
  return active;
}

function loadActive(file: string): ActiveLock {
  const lock = readLockSync(file);
  return lock === undefined
    ? { file: undefined, images: {} }
    : { file, images: Object.freeze({ ...lock.images }) };
}

/**
 * Can `reference` have an entry: a reference by tag (or by name alone), not pinned by digest,
 * and without blanks, quotes or control characters?
 */
function isLockableName(reference: string): boolean {
  // deno-lint-ignore no-control-regex
  return /^[A-Za-z0-9]/.test(reference) && !/[\s"'\x00-\x1f\x7f]/.test(reference) &&
    !isPinnedByDigest(reference);
}

function tableAt(
  table: Record<string, unknown>,
  key: string,
  file: string,
  lineOf: (key: string) => number | undefined,
): Record<string, unknown> {
  const value = table[key] ?? {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw malformed(file, lineOf(key), `${key} is not a table`);
  }
  return value as Record<string, unknown>;
}

function malformed(file: string, line: number | undefined, problem: string): UsageError {
  return new UsageError(`${where(file, line)}: ${problem}`, {
    hint: `fix that line, or delete ${LOCK_FILE_NAME} and run imgtool lock to write it again`,
  });
}

function where(file: string, line: number | undefined): string {
  return line === undefined ? file : `${file}:${line}`;
}

/**
 * The line (from 1) where `key` is set, in the table `inTable` when given: the first line
 * that starts with the key, bare or quoted, and `=`; or the table header itself.
 */
function keyLine(text: string, key: string, inTable?: string): number | undefined {
  const lines = text.split(/\r?\n/);
  const spellings = [JSON.stringify(key), `'${key}'`, key];
  let table = "";
  for (const [index, line] of lines.entries()) {
    const header = /^\s*\[\s*([^\]]*?)\s*\]/.exec(line);
    if (header) {
      table = header[1].replace(/^"(.*)"$/, "$1");
      if (inTable === undefined && table === key) return index + 1;
      continue;
    }
    if ((inTable ?? "") !== table) continue;
    const trimmed = line.trimStart();
    if (spellings.some((s) => trimmed.startsWith(s) && /^\s*=/.test(trimmed.slice(s.length)))) {
      return index + 1;
    }
  }
  return undefined;
}

/** A TOML basic string: JSON's escapes are TOML's, except that DEL must be escaped too. */
function tomlString(value: string): string {
  return JSON.stringify(value).replaceAll("\x7f", "\\u007F");
}

/** Sorted by code unit, whatever the locale. */
function sorted(values: readonly string[]): string[] {
  return [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function sortedEntries<T>(record: Readonly<Record<string, T>>): [string, T][] {
  return Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function cwd(): string {
  try {
    return Deno.cwd();
  } catch {
    return "/";
  }
}
