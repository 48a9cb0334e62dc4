// `lstatFile` and `statFile` take statx(2) directly on Linux once a process has made enough
// calls, and Deno's stat otherwise: both must give the very numbers Deno gives, since the
// digest cache compares one run's stat keys with the next run's, whichever way each took them.

import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import {
  type FileStat,
  fileStatOf,
  lstatFile,
  LstatKeys,
  nativeStatInUse,
  statFile,
  useNativeStat,
} from "../src/file_stat.ts";
import type { TreeIndex } from "../src/tree_index.ts";
import { TreeRecall } from "../src/tree_recall.ts";
import { walkTree } from "../src/tree_walk.ts";
import { withTempDir } from "./helpers.ts";

const linux = Deno.build.os === "linux";

/** Every field of a stat, the type included, as one comparable value. */
const fields = (stat: FileStat) => ({
  ...stat,
  isFile: stat.isFile,
  isDirectory: stat.isDirectory,
  isSymlink: stat.isSymlink,
});

/** What both ways say of `path`: the value, or the error's class. */
function both(path: string, follow: boolean) {
  const deno = () => fileStatOf(follow ? Deno.statSync(path) : Deno.lstatSync(path));
  const ours = () => follow ? statFile(path) : lstatFile(path);
  const outcome = (take: () => FileStat) => {
    try {
      return fields(take());
    } catch (error) {
      return { error: (error as Error).constructor.name };
    }
  };
  return { deno: outcome(deno), ours: outcome(ours) };
}

function withNativeStat(fn: (dir: string) => void | Promise<void>) {
  return withTempDir(async (dir) => {
    useNativeStat(0);
    try {
      await fn(dir);
    } finally {
      useNativeStat();
    }
  });
}

Deno.test("statx(2) taken directly gives what Deno's stat gives, for every kind of entry", () =>
  withNativeStat((dir) => {
    const file = join(dir, "plain.txt");
    Deno.writeTextFileSync(file, "x".repeat(1234));
    const script = join(dir, "run me.sh");
    Deno.writeTextFileSync(script, "#!/bin/sh\n", { mode: 0o755 });
    Deno.chmodSync(script, 0o755);
    const odd = join(dir, "naïve\nname \u{1F600}.txt");
    Deno.writeTextFileSync(odd, "odd");
    // Times with nanoseconds, and one before 1970: the rounding must be Deno's.
    Deno.utimeSync(file, 1_767_261_600.123456, 1_767_261_600.987654);
    Deno.utimeSync(odd, -315_619_199.5, -315_619_199.5);
    Deno.mkdirSync(join(dir, "folder"));
    Deno.symlinkSync("plain.txt", join(dir, "link"));
    Deno.symlinkSync("nowhere", join(dir, "broken"));
    new Deno.Command("mkfifo", { args: [join(dir, "fifo")] }).outputSync();
    const paths = [
      dir,
      file,
      script,
      odd,
      join(dir, "folder"),
      join(dir, "link"),
      join(dir, "broken"),
      join(dir, "fifo"),
      join(dir, "missing"),
      join(file, "not-a-folder"),
      "/dev/null",
      "/",
      "relative/to/the/working/folder",
      `${dir}/a\0b`,
      `${dir}/${"x".repeat(5000)}`,
    ];
    for (const path of paths) {
      for (const follow of [false, true]) {
        const { deno, ours } = both(path, follow);
        assert.deepEqual(ours, deno, `${follow ? "stat" : "lstat"} ${JSON.stringify(path)}`);
      }
    }
    assert.deepEqual(both(join(dir, "missing"), false).ours, { error: "NotFound" });
    assert.equal(fields(lstatFile(join(dir, "fifo"))).isFile, false, "a fifo is no file");
    if (linux) assert.ok(nativeStatInUse(), "these went through statx(2)");
  }));

Deno.test("statx(2) taken directly agrees with Deno on random names and contents (fast-check)", () =>
  withNativeStat((dir) => {
    let n = 0;
    fc.assert(
      fc.property(
        fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 }),
        fc.nat(70_000),
        fc.boolean(),
        (name, size, executable) => {
          // A name as the walk gets it: no slash, no NUL; a number keeps each run's own.
          const path = join(dir, `${n++}-${name.replaceAll(/[/\0]/g, "_")}`);
          Deno.writeFileSync(path, new Uint8Array(size), { mode: executable ? 0o755 : 0o644 });
          const { deno, ours } = both(path, false);
          assert.deepEqual(ours, deno);
        },
      ),
      { numRuns: 200 },
    );
    if (linux) assert.ok(nativeStatInUse());
  }));

/** A stat key's numbers as LstatKeys gives them, for `path` under `top`; null: none taken. */
function keyOf(keys: LstatKeys, path: string, cPath?: Uint8Array): number[] | null {
  return (cPath ? keys.readAt(cPath, path) : keys.read(path)) ? [...keys.key] : null;
}

/** A stat key's numbers as lstatFile gives them; null where it throws. */
function lstatKey(absolute: string): number[] | null {
  try {
    const info = lstatFile(absolute);
    return [info.size, info.mtime, info.ctime, info.ino, info.dev, info.mode];
  } catch {
    return null;
  }
}

Deno.test("LstatKeys gives lstatFile's numbers for every kind of entry, by path or from a block of C strings, directly or through Deno", () =>
  withTempDir((dir) => {
    Deno.mkdirSync(join(dir, "sub"));
    Deno.writeTextFileSync(join(dir, "sub", "plain.txt"), "x".repeat(1234));
    Deno.writeTextFileSync(join(dir, "naïve\nname \u{1F600}.txt"), "odd");
    Deno.utimeSync(join(dir, "sub", "plain.txt"), 1_767_261_600.123456, 1_767_261_600.987654);
    Deno.symlinkSync("sub/plain.txt", join(dir, "link"));
    Deno.symlinkSync("nowhere", join(dir, "broken"));
    const paths = [
      "sub",
      "sub/plain.txt",
      "naïve\nname \u{1F600}.txt",
      "link",
      "broken",
      "missing",
      "sub/plain.txt/not-a-folder",
    ];
    // The paths as a tree index's file holds them: UTF-8, each ended by a NUL.
    const block = new TextEncoder().encode(paths.map((path) => `${path}\0`).join(""));
    for (const after of [0, false] as const) {
      useNativeStat(after);
      try {
        using keys = new LstatKeys(`${dir}/`, paths.length);
        assert.equal(keys.direct, linux && after === 0, "direct only when asked for, on Linux");
        let start = 0;
        for (const path of paths) {
          const end = block.indexOf(0, start);
          const cPath = block.subarray(start, end + 1);
          start = end + 1;
          const expected = lstatKey(join(dir, path));
          assert.deepEqual(keyOf(keys, path), expected, `read ${JSON.stringify(path)}`);
          assert.deepEqual(keyOf(keys, path, cPath), expected, `readAt ${JSON.stringify(path)}`);
        }
        assert.equal(keyOf(keys, "missing"), null);
      } finally {
        useNativeStat();
      }
    }
  }));

Deno.test('LstatKeys of the working folder (top "") and of a top that cannot be a C string', () =>
  withTempDir((dir) => {
    Deno.writeTextFileSync(join(dir, "a.txt"), "abc");
    const cwd = Deno.cwd();
    useNativeStat(0);
    try {
      Deno.chdir(dir);
      using here = new LstatKeys("", 1);
      assert.deepEqual(keyOf(here, "a.txt"), lstatKey(join(dir, "a.txt")));
      using odd = new LstatKeys(`${dir}/\0/`, 1);
      assert.equal(odd.direct, false, "a NUL in the folder's path: never passed to the system");
      assert.equal(keyOf(odd, "a.txt"), null);
    } finally {
      Deno.chdir(cwd);
      useNativeStat();
    }
  }));

Deno.test("statx(2) is loaded only after as many calls as were asked, and never when refused", () =>
  withTempDir((dir) => {
    try {
      useNativeStat(3);
      for (let i = 0; i < 3; i++) lstatFile(dir);
      assert.equal(nativeStatInUse(), false, "three calls through Deno first");
      lstatFile(dir);
      assert.equal(nativeStatInUse(), linux, "then directly");
      useNativeStat(false);
      for (let i = 0; i < 10; i++) lstatFile(dir);
      assert.equal(nativeStatInUse(), false, "never");
    } finally {
      useNativeStat();
    }
  }));

Deno.test("without the ffi permission, stats go through Deno and nothing is asked for", () =>
  withTempDir(async (dir) => {
    // A program of the user's that imports imgtool with fewer permissions: no prompt, no error.
    const script = join(dir, "user.ts");
    Deno.writeTextFileSync(
      script,
      [
        `import { lstatFile, nativeStatInUse, useNativeStat } from ${
          JSON.stringify(new URL("../src/file_stat.ts", import.meta.url).href)
        };`,
        "useNativeStat(0);",
        "const stat = lstatFile('.');",
        "console.log(stat.isDirectory, nativeStatInUse());",
      ].join("\n"),
    );
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", "--allow-read", script],
      cwd: dir,
      stdin: "null",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    assert.equal(new TextDecoder().decode(output.stdout).trim(), "true false");
    assert.equal(stderr, "");
  }));

Deno.test("a tree walked with Deno's stat is found unchanged by a walk through statx(2), and the other way", () =>
  withTempDir((root) => {
    // A small tree of every kind of entry; settled files (the clock a minute ahead).
    Deno.mkdirSync(join(root, "src/deep"), { recursive: true });
    for (let i = 0; i < 30; i++) Deno.writeTextFileSync(join(root, `src/f${i}.txt`), `${i}`);
    Deno.writeTextFileSync(join(root, "src/deep/run.sh"), "#!/bin/sh\n", { mode: 0o755 });
    Deno.symlinkSync("f1.txt", join(root, "src/link"));
    const since = Date.now() + 60_000;
    const digest = "ab".repeat(32);
    /** Walk `root` with the stat `after` says, against `known`. */
    const walk = (after: number | false, known?: TreeIndex) => {
      useNativeStat(after);
      try {
        const recall = new TreeRecall(known, since);
        assert.ok(walkTree(root, undefined, recall.visit, recall.walkOptions));
        if (linux && after === 0) assert.ok(nativeStatInUse(), "the walk went through statx(2)");
        return recall;
      } finally {
        useNativeStat();
      }
    };
    for (const [first, second] of [[false, 0], [0, false]] as const) {
      const cold = walk(first);
      assert.equal(cold.unhashed.length, 31, "every file to read the first time");
      cold.unhashed.forEach((_, n) => cold.hashed(n, digest));
      const { index } = cold.remember(digest);
      const again = walk(second, index);
      assert.deepEqual(again.unhashed, [], "no file to read again");
      assert.equal(again.unchanged(), digest, "the tree found unchanged, as remembered");
    }
  }));
