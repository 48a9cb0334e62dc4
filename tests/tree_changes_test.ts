// Correct under change, as git's racy-index tests are: with every digest of a tree remembered,
// each way a file or folder can change without an obvious trace is still seen, in a fresh
// process, as the next build would see it. Every case checks the digest against one taken
// with no cache at all, and says which files had to be read again (tests/digest_runs.ts).
//
// What catches what: a file's stat key is its size, modification time (ms), change time (whole
// seconds in Deno), inode, device and mode; a folder's unchanged stat key stands for its names
// (adding, removing or renaming an entry moves its times); and a digest taken while its file's
// times were less than two seconds old ("racily clean") is never believed later.
import assert from "node:assert/strict";
import { join } from "node:path";
import { sha256Hex } from "../src/sha256.ts";
import { ALL_FILES, type ChildRun, type Setup, withSetup } from "./digest_runs.ts";

/** The digest with no cache at all: what every run must agree with. */
async function fresh(child: Setup["child"], root: string): Promise<string | null> {
  return (await child("tree", root, { cacheHome: null })).digest;
}

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

/** Rewrite `path` with `text` (the same size), then put its modification time back. */
function rewriteKeepingTimes(path: string, text: string): void {
  const before = Deno.statSync(path);
  Deno.writeTextFileSync(path, text);
  Deno.utimeSync(path, before.atime!, before.mtime!);
  const after = Deno.statSync(path);
  assert.equal(after.size, before.size);
  assert.equal(after.mtime?.getTime(), before.mtime?.getTime());
  assert.equal(after.ino, before.ino);
}

/** What `stat` says of `path` that a digest cache could key on. */
function statKey(path: string): string {
  const info = Deno.statSync(path);
  return JSON.stringify([info.size, info.mtime?.getTime(), info.ctime?.getTime(), info.ino]);
}

/**
 * Run `steps` from the start of a second, again until they say (true) that what had to fall
 * within one second did; at most eight times.
 */
async function inOneSecond(steps: (attempt: number) => Promise<boolean>): Promise<void> {
  for (let attempt = 1; attempt <= 8; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));
    if (await steps(attempt)) return;
  }
  assert.fail("the steps never fit within one second");
}

/** How the children take their stats: Deno's `lstat`, or statx(2) directly. */
type Way = { readonly statx?: boolean };

/**
 * Each case twice: the children taking their stats through Deno (a small tree's way) and
 * through statx(2) directly (a big tree's, from its first stat).
 */
function bothWays(name: string, test: (way: Way) => Promise<void>): void {
  Deno.test(name, () => test({}));
  Deno.test(`${name} [statx(2) directly]`, () => test({ statx: true }));
}

/** {@link withSetup}, its children taking their stats the `way` given. */
function inWay(way: Way, fn: (setup: Setup) => Promise<void>): Promise<void> {
  return withSetup(fn, way);
}

/** Remember the whole tree (a clock ahead: every file settled); the run must read it all. */
async function rememberAll(child: Setup["child"], root: string): Promise<ChildRun> {
  const first = await child("tree", root, { ahead: true });
  assert.deepEqual(first.reads, ALL_FILES);
  const warm = await child("tree", root);
  assert.deepEqual([warm.reads, warm.listed], [[], []], "warm: nothing read or listed");
  assert.equal(warm.digest, first.digest);
  return first;
}

bothWays(
  "a warm run of an unchanged tree reads no file and lists no folder",
  (way) =>
    inWay(way, async ({ root, child }) => {
      const first = await rememberAll(child, root);
      for (const mode of ["tree", "tree-sync"] as const) {
        const again = await child(mode, root);
        assert.deepEqual([again.reads, again.listed], [[], []], mode);
        assert.equal(again.digest, first.digest, mode);
      }
      assert.equal(first.digest, await fresh(child, root));
    }),
);

bothWays(
  "a file rewritten within the second its digest was taken, same size and times, is hashed again (racily clean: never believed)",
  (way) =>
    inWay(way, async ({ root, child }) => {
      await rememberAll(child, root);
      const path = join(root, "app", "main.py");
      // The rewrite must leave the stat key exactly as the run saw it, change time included
      // (whole seconds): so the run and the rewrite must fall within one second.
      await inOneSecond(async (attempt) => {
        Deno.writeTextFileSync(path, `print('v${attempt}')\n`.padEnd(15, "#"));
        const seen = statKey(path);
        const racy = await child("tree", root);
        assert.ok(racy.reads.includes("/app/main.py"), "just written: read");
        rewriteKeepingTimes(path, `print('w${attempt}')\n`.padEnd(15, "#"));
        if (statKey(path) !== seen) return false;
        // Nothing in the stat key tells the two contents apart: only the rule that a digest
        // taken while its file was that new is not believed.
        const after = await child("tree", root);
        assert.deepEqual(after.reads, ["/app/main.py"]);
        assert.notEqual(after.digest, racy.digest);
        assert.equal(after.digest, await fresh(child, root));
        return true;
      });
    }),
);

bothWays(
  "a same-size edit with the old modification time restored is seen: the change time moved",
  (way) =>
    inWay(way, async ({ root, child }) => {
      const path = join(root, "app", "main.py");
      const single = join(root, "README.md");
      const first = await rememberAll(child, root);
      const firstSingle = await child("file", single, { ahead: true });
      assert.deepEqual((await child("file", single)).reads, []);
      await untilChangeTimeMoves(path);
      await untilChangeTimeMoves(single);
      rewriteKeepingTimes(path, "print('HELLO')\n");
      rewriteKeepingTimes(single, "# DEMO\n");
      const again = await child("tree", root);
      assert.deepEqual(again.reads, ["/README.md", "/app/main.py"], "only the rewritten files");
      assert.notEqual(again.digest, first.digest);
      assert.equal(again.digest, await fresh(child, root));
      // The single-file cache too.
      const singleAgain = await child("file", single);
      assert.deepEqual(singleAgain.reads, [""]);
      assert.equal(singleAgain.digest, sha256Hex("# DEMO\n"));
      assert.notEqual(singleAgain.digest, firstSingle.digest);
    }),
);

bothWays(
  "a file replaced by a rename, same size and times, is seen: another inode",
  (way) =>
    inWay(way, async ({ dir, root, child }) => {
      const path = join(root, "app", "util.py");
      // Within one second, so that the change time cannot tell: only the inode can.
      await inOneSecond(async (attempt) => {
        Deno.writeTextFileSync(path, `v = ${attempt}\n`);
        const first = await child("tree", root, { ahead: true });
        const before = Deno.statSync(path);
        const replacement = join(dir, "util.py.new");
        Deno.writeTextFileSync(replacement, `w = ${attempt}\n`);
        Deno.utimeSync(replacement, before.atime!, before.mtime!);
        Deno.renameSync(replacement, path);
        const after = Deno.statSync(path);
        if (after.ctime?.getTime() !== before.ctime?.getTime()) return false;
        assert.deepEqual([after.size, after.mtime?.getTime()], [
          before.size,
          before.mtime?.getTime(),
        ]);
        assert.notEqual(after.ino, before.ino);
        const again = await child("tree", root);
        assert.deepEqual(again.reads, ["/app/util.py"]);
        assert.notEqual(again.digest, first.digest);
        assert.equal(again.digest, await fresh(child, root));
        return true;
      });
    }),
);

bothWays(
  "a folder renamed is seen: its files under their new paths, the old ones gone",
  (way) =>
    inWay(way, async ({ root, child }) => {
      const first = await rememberAll(child, root);
      Deno.renameSync(join(root, "app", "data"), join(root, "app", "tables"));
      const again = await child("tree", root);
      assert.notEqual(again.digest, first.digest);
      assert.equal(again.digest, await fresh(child, root));
      assert.ok(again.listed.includes("/app"), "the folder that changed is listed again");
      // And back: the first digest again.
      Deno.renameSync(join(root, "app", "tables"), join(root, "app", "data"));
      assert.equal((await child("tree", root)).digest, first.digest);
    }),
);

bothWays(
  "a permission change (the executable bit) is seen, even within the second",
  (way) =>
    inWay(way, async ({ root, child }) => {
      const path = join(root, "app", "main.py");
      // Within one second, so that the change time cannot tell: only the mode can.
      await inOneSecond(async (attempt) => {
        Deno.chmodSync(path, 0o644);
        Deno.writeTextFileSync(path, `print(${attempt})\n`);
        const first = await child("tree", root, { ahead: true });
        const before = Deno.statSync(path);
        Deno.chmodSync(path, 0o755);
        if (Deno.statSync(path).ctime?.getTime() !== before.ctime?.getTime()) return false;
        const executable = await child("tree", root);
        assert.notEqual(executable.digest, first.digest);
        assert.equal(executable.digest, await fresh(child, root));
        Deno.chmodSync(path, 0o644);
        assert.equal((await child("tree", root)).digest, first.digest);
        return true;
      });
    }),
);

bothWays(
  "a file added to a folder is seen, even with the folder's times put back: its change time moved",
  (way) =>
    inWay(way, async ({ root, child }) => {
      const first = await rememberAll(child, root);
      const folder = join(root, "app");
      await untilChangeTimeMoves(folder);
      const before = Deno.statSync(folder);
      Deno.writeTextFileSync(join(folder, "new.py"), "x = 1\n");
      Deno.utimeSync(folder, before.atime!, before.mtime!);
      assert.equal(Deno.statSync(folder).mtime?.getTime(), before.mtime?.getTime());
      const again = await child("tree", root);
      assert.deepEqual(again.listed, ["/app"], "only that folder is listed again");
      assert.deepEqual(again.reads, ["/app/new.py"]);
      assert.notEqual(again.digest, first.digest);
      assert.equal(again.digest, await fresh(child, root));
    }),
);

bothWays(
  "names the ignore rules left out count again once the rules change",
  (way) =>
    inWay(way, async ({ root, child }) => {
      const withRules = await child("tree", root, { ahead: true, ignore: ["*.md", "app/data"] });
      assert.ok(!withRules.reads.includes("/README.md"));
      const warm = await child("tree", root, { ignore: ["*.md", "app/data"] });
      assert.deepEqual([warm.reads, warm.listed], [[], []]);
      assert.equal(warm.digest, withRules.digest);
      // No rules now: the ignored file and folder are part of the tree.
      const without = await child("tree", root);
      assert.notEqual(without.digest, withRules.digest);
      assert.equal(without.digest, await fresh(child, root));
      assert.deepEqual(without.reads, ["/README.md", "/app/data/table.csv"]);
      // And other rules: another tree again, the one those rules give without any cache.
      const other = await child("tree", root, { ignore: ["app"] });
      const otherFresh = await child("tree", root, { ignore: ["app"], cacheHome: null });
      assert.equal(other.digest, otherFresh.digest);
      assert.notEqual(other.digest, without.digest);
    }),
);

bothWays(
  "with rules that bring files back (!), a file added inside an ignored folder is seen",
  (way) =>
    inWay(way, async ({ root, child }) => {
      const rules = ["app", "!app/new.py"];
      const first = await child("tree", root, { ahead: true, ignore: rules });
      assert.deepEqual(first.reads, ["/README.md", "/pyproject.toml"]);
      assert.equal((await child("tree", root, { ignore: rules })).digest, first.digest);
      Deno.writeTextFileSync(join(root, "app", "new.py"), "x = 1\n");
      const again = await child("tree", root, { ignore: rules });
      assert.deepEqual(again.reads, ["/app/new.py"]);
      assert.notEqual(again.digest, first.digest);
      assert.equal(
        again.digest,
        (await child("tree", root, { ignore: rules, cacheHome: null })).digest,
      );
    }),
);
