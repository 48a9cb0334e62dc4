// The digest cache across runs (src/digest_cache.ts): a file whose stat key is unchanged since
// an earlier run is not read again, and no digest ever depends on the cache. Each run that
// matters happens in a fresh `deno` process, as a build would, with its own cache folder
// (never the machine's ~/.cache).
//
// Files cannot be made older than their change time, which is "now" when a test writes them,
// so the runs that should remember them are given a clock ten seconds ahead (`useDigestCache`
// takes one); the runs that read the cache use the real clock and the default folder rule.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { imgtoolCacheDir } from "../src/cache_dir.ts";
import { treeDigestSync, useDigestCache } from "../src/digest.ts";
import { DigestCache } from "../src/digest_cache.ts";
import { sha256Hex } from "../src/sha256.ts";
import { withTempDir, writeTree } from "./helpers.ts";

// This module's own in-process digests go to no cache folder unless a test says otherwise.
useDigestCache({ dir: undefined });

const SRC = fileURLToPath(new URL("../src/", import.meta.url));
const AHEAD_MS = 10_000;
// Deno's own cache would follow XDG_CACHE_HOME too: the children keep using this one.
const DENO_DIR = Deno.env.get("DENO_DIR") ?? JSON.parse(
  new TextDecoder().decode(
    (await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output()).stdout,
  ),
).denoDir;

/**
 * The child: digests `target` (`tree`, `tree-sync`, `tree-workers` or `file`), recording
 * every file under `target` that it opens or reads (in its main thread). With a clock offset,
 * it uses the default cache folder with its clock moved on by that much.
 */
const CHILD = `
import { fileDigest, treeDigest, treeDigestSync, useDigestCache } from "${SRC}digest.ts";
import { imgtoolCacheDir } from "${SRC}cache_dir.ts";
const [mode, target, offset] = Deno.args;
if (offset) {
  useDigestCache({ dir: imgtoolCacheDir("digests"), now: () => Date.now() + Number(offset) });
}
const reads = [];
for (const name of ["open", "openSync", "readFile", "readFileSync"]) {
  const original = Deno[name];
  Deno[name] = (path, ...rest) => {
    if (String(path).startsWith(target)) reads.push(String(path).slice(target.length));
    return original(path, ...rest);
  };
}
const digest = mode === "tree"
  ? await treeDigest(target)
  : mode === "tree-workers"
  ? await treeDigest(target, undefined, 8, 0)
  : mode === "tree-sync"
  ? treeDigestSync(target)
  : (await fileDigest(target))?.sha256;
console.log(JSON.stringify({ digest, reads: reads.sort() }));
`;

interface ChildRun {
  readonly digest: string | null;
  readonly reads: string[];
}

/** Where a test keeps its tree, its caches and the child script. */
interface Setup {
  readonly dir: string;
  /** The tree's root. */
  readonly root: string;
  /** `XDG_CACHE_HOME` for the children. */
  readonly cacheHome: string;
  /** The folder of the digest cache files under `cacheHome`. */
  readonly digests: string;
  /** Run the child in a fresh process. */
  readonly child: (
    mode: "tree" | "tree-sync" | "tree-workers" | "file",
    target: string,
    options?: { ahead?: boolean; cacheHome?: string | null; permissions?: string[] },
  ) => Promise<ChildRun>;
}

const TREE = {
  "app/main.py": "print('hello')\n",
  "app/util.py": "def f():\n    return 1\n",
  "app/data/table.csv": "a,b\n1,2\n",
  "README.md": "# demo\n",
  "pyproject.toml": "[project]\nname = 'demo'\n",
};

function withSetup(fn: (setup: Setup) => Promise<void>): Promise<void> {
  return withTempDir(async (dir) => {
    const root = join(dir, "tree");
    await writeTree(root, TREE);
    const cacheHome = join(dir, "cache");
    const script = join(dir, "child.js");
    await Deno.writeTextFile(script, CHILD);
    const child: Setup["child"] = async (mode, target, options = {}) => {
      const home = options.cacheHome === undefined ? cacheHome : options.cacheHome;
      const env: Record<string, string> = { PATH: Deno.env.get("PATH") ?? "", DENO_DIR };
      if (home !== null) env.XDG_CACHE_HOME = home;
      const permissions = options.permissions ?? ["--allow-all"];
      const args = ["run", ...permissions, "--no-config", script, mode, target];
      if (options.ahead) args.push(String(AHEAD_MS));
      const output = await new Deno.Command(Deno.execPath(), { args, env, clearEnv: true })
        .output();
      const stderr = new TextDecoder().decode(output.stderr);
      assert.equal(output.code, 0, stderr);
      assert.equal(stderr, "", "the cache never prints");
      return JSON.parse(new TextDecoder().decode(output.stdout));
    };
    await fn({ dir, root, cacheHome, digests: join(cacheHome, "imgtool", "digests"), child });
  });
}

const ALL_FILES = Object.keys(TREE).map((path) => `/${path}`).sort();

/** The stored entries of `root` (`[path, size, mtime, ctime, ino, dev, sha256]`), by path. */
function storedFiles(digests: string, root: string): Record<string, unknown[]> {
  const file = join(digests, `${sha256Hex(root)}.json`);
  const rows: unknown[][] = JSON.parse(Deno.readTextFileSync(file)).files;
  return Object.fromEntries(rows.map((row) => [row[0], row]));
}

Deno.test("a fresh process reads no file whose stat key is unchanged since an earlier run", () =>
  withSetup(async ({ root, child }) => {
    const first = await child("tree", root, { ahead: true });
    assert.deepEqual(first.reads, ALL_FILES, "the first run reads every file");
    for (const mode of ["tree", "tree-sync"] as const) {
      const again = await child(mode, root);
      assert.deepEqual(again.reads, [], `${mode}: nothing read again`);
      assert.equal(again.digest, first.digest, mode);
    }
    // A single file is its own root.
    const file = join(root, "app", "main.py");
    const single = await child("file", file, { ahead: true });
    assert.deepEqual(single.reads, [""]);
    const singleAgain = await child("file", file);
    assert.deepEqual(singleAgain.reads, []);
    assert.equal(singleAgain.digest, single.digest);
    assert.equal(single.digest, sha256Hex("print('hello')\n"));
  }));

Deno.test("a digest is the same with a warm cache, a fresh empty one and none", () =>
  withSetup(async ({ dir, root, child }) => {
    const none = await child("tree", root, { cacheHome: null });
    const empty = await child("tree", root, { ahead: true });
    const warm = await child("tree", root);
    const warmSync = await child("tree-sync", root);
    assert.deepEqual(warm.reads, [], "the cache was used");
    assert.equal(empty.digest, none.digest);
    assert.equal(warm.digest, none.digest);
    assert.equal(warmSync.digest, none.digest);
    const other = await child("tree", root, { cacheHome: join(dir, "other-cache"), ahead: true });
    assert.equal(other.digest, none.digest);
    assert.equal(treeDigestSync(root), none.digest, "and in this process, with no cache");
  }));

/**
 * Wait until a change to `path` would get another change time than it has. Deno gives change
 * times in whole seconds; real files are only remembered when settled (both times more than
 * two seconds old), so a later change always moves it. Files made "settled" by a clock moved
 * on must wait for the next second to be in the same position.
 */
async function untilChangeTimeMoves(path: string): Promise<void> {
  const ctime = Deno.statSync(path).ctime!.getTime();
  const wait = Math.floor(ctime / 1000) * 1000 + 1000 + 50 - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}

/** Rewrite `path` with `text` (the same size), then put its times back. */
function rewriteKeepingTimes(path: string, text: string): void {
  const before = Deno.statSync(path);
  Deno.writeTextFileSync(path, text);
  Deno.utimeSync(path, before.atime!, before.mtime!);
  const after = Deno.statSync(path);
  assert.equal(after.size, before.size);
  assert.equal(after.mtime?.getTime(), before.mtime?.getTime());
  assert.equal(after.ino, before.ino);
}

Deno.test("a file rewritten at the same size with its times restored is hashed again", () =>
  withSetup(async ({ root, child }) => {
    const path = join(root, "app", "main.py");
    const single = join(root, "README.md");
    const first = await child("tree", root, { ahead: true });
    const firstSingle = await child("file", single, { ahead: true });
    assert.deepEqual((await child("tree", root)).reads, []);
    assert.deepEqual((await child("file", single)).reads, []);
    await untilChangeTimeMoves(path);
    await untilChangeTimeMoves(single);
    rewriteKeepingTimes(path, "print('HELLO')\n");
    rewriteKeepingTimes(single, "# DEMO\n");
    const again = await child("tree", root);
    assert.deepEqual(again.reads, ["/README.md", "/app/main.py"], "only the rewritten files");
    assert.notEqual(again.digest, first.digest);
    assert.equal(again.digest, (await child("tree", root, { cacheHome: null })).digest);
    // The single-file cache too.
    const singleAgain = await child("file", single);
    assert.deepEqual(singleAgain.reads, [""]);
    assert.equal(singleAgain.digest, sha256Hex("# DEMO\n"));
    assert.notEqual(singleAgain.digest, firstSingle.digest);
  }));

Deno.test("a file changed in the last two seconds is not remembered", () =>
  withSetup(async ({ root, digests, child }) => {
    // With the real clock every file was just written: nothing is worth a cache file.
    const first = await child("tree", root);
    assert.deepEqual(first.reads, ALL_FILES);
    assert.throws(() => Deno.statSync(digests), Deno.errors.NotFound);
    // With the clock ten seconds on, only a file changed "later" (in the future) is left out.
    const future = new Date(Date.now() + 60_000);
    Deno.utimeSync(join(root, "README.md"), future, future);
    await child("tree", root, { ahead: true });
    assert.deepEqual(
      Object.keys(storedFiles(digests, root)).sort(),
      ["app/data/table.csv", "app/main.py", "app/util.py", "pyproject.toml"],
    );
    const again = await child("tree", root);
    assert.deepEqual(again.reads, ["/README.md"]);
    assert.equal(again.digest, first.digest, "times are not part of the digest");
  }));

Deno.test("a damaged or foreign cache file is no cache, and the digest is still right", () =>
  withSetup(async ({ root, digests, child }) => {
    const right = (await child("tree", root, { ahead: true })).digest;
    const file = join(digests, `${sha256Hex(root)}.json`);
    const stored = JSON.parse(Deno.readTextFileSync(file));
    const lie = "0".repeat(64);
    const poisoned = (stored.files as unknown[][]).map((row) => [...row.slice(0, 6), lie]);
    const [row] = poisoned;
    // The cache is believed when its keys match: so a planted entry about this root would
    // change the digest (this is what the cases below are checked against).
    Deno.writeTextFileSync(file, JSON.stringify({ ...stored, files: poisoned }));
    const planted = await child("tree", root);
    assert.deepEqual(planted.reads, []);
    assert.notEqual(planted.digest, right);
    const damaged = [
      "{ not json",
      "",
      "null",
      "[]",
      JSON.stringify({ ...stored, root: "/elsewhere", files: poisoned }),
      JSON.stringify({ ...stored, format: "imgtool-digests/0", files: poisoned }),
      // One bad row spoils the file: the good ones (here, lies) are not believed either.
      JSON.stringify({ ...stored, files: [...poisoned, [1, 2, 3]] }),
      JSON.stringify({ ...stored, files: [...poisoned, "x"] }),
      JSON.stringify({ ...stored, files: [...poisoned, [...row.slice(0, 6), "short"]] }),
      JSON.stringify({
        ...stored,
        files: [...poisoned, [row[0], String(row[1]), ...row.slice(2)]],
      }),
      JSON.stringify({ ...stored, files: Object.fromEntries(poisoned.map((r) => [r[0], r])) }),
      JSON.stringify({ ...stored, files: [] }),
      JSON.stringify(stored).slice(0, 80),
    ];
    for (const text of damaged) {
      Deno.writeTextFileSync(file, text);
      const run = await child("tree", root);
      assert.equal(run.digest, right, text);
      assert.deepEqual(run.reads, ALL_FILES, text);
    }
  }));

Deno.test("a cache folder that is missing or cannot be written changes nothing but speed", () =>
  withSetup(async ({ dir, root, child }) => {
    const right = (await child("tree", root, { cacheHome: null })).digest;
    // Missing: made when first written.
    const missing = join(dir, "not", "yet");
    const folder = join(missing, "imgtool", "digests");
    assert.equal((await child("tree", root, { cacheHome: missing, ahead: true })).digest, right);
    const names = () => [...Deno.readDirSync(folder)].map((entry) => entry.name);
    const [name] = names();
    assert.deepEqual(names(), [name]);
    // Cannot be made (under a regular file): hashed every time, without a word.
    const blocker = join(dir, "blocker");
    Deno.writeTextFileSync(blocker, "");
    for (let round = 0; round < 2; round++) {
      const run = await child("tree", root, { cacheHome: blocker, ahead: true });
      assert.equal(run.digest, right);
      assert.deepEqual(run.reads, ALL_FILES);
    }
    // No permission to write (a spec run by hand with --allow-read): read, not written, and
    // never a prompt or an error.
    Deno.writeTextFileSync(join(root, "new.txt"), "new\n");
    const before = Deno.readTextFileSync(join(folder, name));
    const readOnly = await child("tree", root, {
      cacheHome: missing,
      ahead: true,
      permissions: ["--allow-read", "--allow-env", "--allow-sys=uid"],
    });
    assert.deepEqual(readOnly.reads, ["/new.txt"], "the cache was read");
    assert.notEqual(readOnly.digest, right);
    assert.deepEqual(names(), [name]);
    assert.equal(Deno.readTextFileSync(join(folder, name)), before, "and not written");
    // No permission to learn the user's id: no entry can be shown to be the user's own, so
    // none is believed; still no prompt or error.
    const noUid = await child("tree", root, {
      cacheHome: missing,
      permissions: ["--allow-read", "--allow-env"],
    });
    assert.equal(noUid.digest, readOnly.digest);
    assert.equal(noUid.reads.length, ALL_FILES.length + 1);
    // No permission to read the environment: no cache at all, and no prompt or error.
    const noEnv = await child("tree", root, {
      cacheHome: missing,
      permissions: ["--allow-read", "--allow-write"],
    });
    assert.equal(noEnv.digest, readOnly.digest);
    assert.equal(noEnv.reads.length, ALL_FILES.length + 1);
  }));

Deno.test("entries of files gone from the tree are dropped", () =>
  withSetup(async ({ root, digests, child }) => {
    await child("tree", root, { ahead: true });
    assert.equal(Object.keys(storedFiles(digests, root)).length, 5);
    Deno.removeSync(join(root, "app", "util.py"));
    Deno.removeSync(join(root, "app", "data"), { recursive: true });
    const run = await child("tree", root);
    assert.deepEqual(run.reads, []);
    assert.deepEqual(
      Object.keys(storedFiles(digests, root)).sort(),
      ["README.md", "app/main.py", "pyproject.toml"],
    );
  }));

Deno.test("with the real clock, files two seconds old are remembered, by the main thread only", () =>
  withSetup(async ({ root, digests, child }) => {
    await new Promise((resolve) => setTimeout(resolve, 2100));
    // Hashed in Workers (which keep no cache of their own: one file per root, not per file).
    const first = await child("tree-workers", root);
    assert.deepEqual(Object.keys(storedFiles(digests, root)).sort(), Object.keys(TREE).sort());
    assert.equal([...Deno.readDirSync(digests)].length, 1);
    const again = await child("tree", root);
    assert.deepEqual(again.reads, []);
    assert.equal(again.digest, first.digest);
  }));

Deno.test("a DigestCache writes only when something changed, whole, and by full key", () =>
  withTempDir(async (dir) => {
    const root = join(dir, "tree");
    await writeTree(root, { "a.txt": "a", "b.txt": "b" });
    const cacheDir = join(dir, "cache");
    const ahead = Date.now() + AHEAD_MS;
    const info = (name: string) => Deno.lstatSync(join(root, name));
    const first = new DigestCache(root, { dir: cacheDir, since: ahead });
    first.set("a.txt", info("a.txt"), sha256Hex("a"));
    first.set("b.txt", info("b.txt"), sha256Hex("b"));
    first.save();
    const file = join(cacheDir, `${sha256Hex(root)}.json`);
    const written = Deno.statSync(file);
    assert.deepEqual([...Deno.readDirSync(cacheDir)].map((entry) => entry.name), [
      `${sha256Hex(root)}.json`,
    ], "one file per root, no temporary file left");
    // All found or the same, nothing new: not written again (no new file renamed in place).
    const second = new DigestCache(root, { dir: cacheDir, since: ahead });
    assert.equal(second.get("a.txt", info("a.txt")), sha256Hex("a"));
    second.set("b.txt", info("b.txt"), sha256Hex("b")); // the same again
    second.save();
    assert.equal(Deno.statSync(file).ino, written.ino);
    // Any part of the key that differs is a miss.
    const a = info("a.txt");
    const third = new DigestCache(root, { dir: cacheDir });
    for (
      const other of [
        { ...a, size: a.size + 1 },
        { ...a, mtime: new Date(a.mtime!.getTime() + 1) },
        { ...a, ctime: new Date(a.ctime!.getTime() + 1) },
        { ...a, ino: (a.ino ?? 0) + 1 },
        { ...a, dev: a.dev + 1 },
      ]
    ) {
      assert.equal(third.get("a.txt", other), undefined);
    }
    assert.equal(third.get("c.txt", a), undefined, "nor is another path");
    // The same root through another spelling is the same cache; another root is not.
    assert.equal(new DigestCache(`${root}/./`, { dir: cacheDir }).get("a.txt", a), sha256Hex("a"));
    assert.equal(new DigestCache(dir, { dir: cacheDir }).get("a.txt", a), undefined);
    // No folder: nothing read, nothing written.
    const none = new DigestCache(root, { dir: undefined, since: ahead });
    none.set("a.txt", a, sha256Hex("a"));
    none.save();
    assert.equal(none.get("a.txt", a), undefined);
  }));

Deno.test("the digest cache folder follows XDG_CACHE_HOME, then HOME", () => {
  assert.equal(
    imgtoolCacheDir("digests", { XDG_CACHE_HOME: "/x", HOME: "/h" }),
    "/x/imgtool/digests",
  );
  assert.equal(imgtoolCacheDir("digests", { HOME: "/h" }), "/h/.cache/imgtool/digests");
  assert.equal(imgtoolCacheDir("digests", {}), undefined);
});
