// What README.md promises about imgtool itself, each held against a run or the code, with the
// numbers read from the README's own text so that the two cannot drift apart:
//
// - no `node:` module and no CommonJS package loads while a build reads its spec and confirms
//   its remembered tag in the registry, and that one `HEAD` goes without Deno's `fetch`;
// - a native SHA-256 (libcrypto, else `node:crypto`) loads only when there are 4 MiB or more
//   to hash, and with libcrypto the Node layer does not start at all;
// - the cache folders' limits (entries, bytes, three quarters), the once-a-day touch, the hour
//   after which unfinished writes go, and the two seconds a file must be unchanged.
//
// What a run loads is read from V8's own log (./script_log.ts), not from imgtool's account of
// itself.

import assert from "node:assert/strict";
import { join } from "node:path";
import { type CacheLimits, noteCacheUse, pruneCacheDir } from "../src/cache_dir.ts";
import { DIGEST_CACHE_LIMITS, isSettled } from "../src/digest_cache.ts";
import { statFile } from "../src/file_stat.ts";
import { LAST_CHECKED_LIMITS } from "../src/last_checked.ts";
import { TAG_CACHE_LIMITS } from "../src/registry/tag_cache.ts";
import { startFakeRegistry } from "./fake_registry.ts";
import {
  beyondDenoStart,
  FETCH_SCRIPT,
  isNodeLayer,
  runLogged,
  systemHasLibcrypto,
} from "./script_log.ts";
import { imgtool, REPO_ROOT, withTempDir } from "./helpers.ts";

/** The README and the page it sends readers to for the inside, as one line: sentences wrap. */
const README = ["README.md", "docs/how-it-works.md"]
  .map((file) => Deno.readTextFileSync(join(REPO_ROOT, file)))
  .join(" ").replace(/\s+/g, " ");

/** The groups of the first match of `pattern` in the README; fails naming the pattern. */
function readmeSays(pattern: RegExp): string[] {
  const match = pattern.exec(README);
  assert.ok(match, `README.md no longer says ${pattern}: update this test with the README`);
  return match.slice(1);
}

/** "5,000" as 5000. */
const count = (text: string) => Number(text.replaceAll(",", ""));

const MIB = 1024 * 1024;
const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

// --- what a run loads ----------------------------------------------------------------------

Deno.test("the script log sees a node: import, and Deno's fetch on its first use", () =>
  withTempDir(async (dir) => {
    // The control for the tests below: an absence there means nothing if this cannot see one.
    const module = join(dir, "uses_node_and_fetch.ts");
    await Deno.writeTextFile(
      module,
      'import { join } from "node:path";\n' +
        'await fetch("http://127.0.0.1:1/").catch(() => {});\nconsole.log(join("a", "b"));\n',
    );
    const { ran, scripts } = await runLogged([module], { cwd: dir });
    assert.equal(ran.code, 0, ran.stderr);
    const extra = await beyondDenoStart(scripts, dir);
    assert.ok(extra.includes("node:path"), extra.join("\n"));
    assert.ok(extra.includes(FETCH_SCRIPT), extra.join("\n"));
  }));

// Only the build of a remembered tag: the first check of a tag reads its manifest through the
// full path, whose timers (the progress interval, the retry pause) load node:timers today.
Deno.test("a no-op build --push of a remembered tag loads no node: module and no CommonJS package, and sends its HEAD without fetch", async () => {
  readmeSays(/No `node:` module and no CommonJS package loads while imgtool reads a spec/);
  readmeSays(/later checks of that tag cost one `HEAD`/);
  readmeSays(/without Deno's `fetch`/);
  const registry = await startFakeRegistry();
  try {
    await withTempDir(async (dir) => {
      await Deno.writeTextFile(
        join(dir, "imgtool.toml"),
        `registry = "${registry.host}/team"\nplatforms = ["linux/amd64"]\n`,
      );
      await Deno.writeTextFile(join(dir, "hello.txt"), "hello\n");
      await Deno.writeTextFile(
        join(dir, "spec.ts"),
        'import { Image } from "imgtool";\n\n' +
          'export default Image.fromBase("debian:bookworm").clone({ name: "noop" })\n' +
          '  .withSourceFile("./hello.txt", "/app/hello.txt")\n' +
          '  .withEnvVars({ MODE: "noop" })\n  .withWorkdir("/app");\n',
      );
      const uri = await imgtool(["uri", "spec.ts"], { cwd: dir });
      assert.equal(uri.code, 0, uri.stderr);
      const [, repository, tag] = /^[^/]+\/(.+):([0-9a-f]{32})$/.exec(uri.stdout.trim()) ?? [];
      assert.ok(tag, uri.stdout);
      await registry.addImage(repository, tag, "linux/amd64");

      const env = { XDG_CACHE_HOME: join(dir, "cache") };
      const build = ["--config", join(REPO_ROOT, "deno.json"), join(REPO_ROOT, "cli.ts")];
      const noOp = async () => {
        const before = registry.requests.length;
        const run = await runLogged([...build, "build", "--push", "spec.ts"], { cwd: dir, env });
        assert.equal(run.ran.code, 0, run.ran.stderr);
        assert.match(run.ran.stderr, /exists \(registry\), skipped/);
        return { ...run, requests: registry.requests.slice(before) };
      };

      // The first build reads the manifest and its config; the second remembers the tag.
      const first = await noOp();
      const manifest = `/v2/${repository}/manifests/${tag}`;
      assert.ok(first.requests.includes(`GET ${manifest} -> 200`), first.requests.join("\n"));
      const second = await noOp();
      assert.deepEqual(second.requests, [`HEAD ${manifest} -> 200`]);

      // The remembered tag's build: the spec read, validated and hashed, one HEAD sent.
      const extra = await beyondDenoStart(second.scripts, dir);
      assert.ok(extra.some((script) => script.endsWith("/cli.ts")), "the log saw imgtool");
      assert.ok(extra.some((script) => script.endsWith("/spec.ts")), "the log saw the spec");
      assert.deepEqual(extra.filter(isNodeLayer), [], "Node's layer loaded");
      // Reading the manifest goes through fetch (the log can tell); the one HEAD does not.
      assert.ok(first.scripts.has(FETCH_SCRIPT), "the first build's GETs used fetch");
      assert.ok(!second.scripts.has(FETCH_SCRIPT), "the remembered tag's HEAD used fetch");
    });
  } finally {
    await registry.close();
  }
});

/** Whether `/proc/self/maps` of the child names libcrypto (the line its script prints). */
const LIBCRYPTO_LINE = "libcrypto mapped";

/**
 * A script that prints the tree digest of its argument, then `LIBCRYPTO_LINE` if the process
 * has libcrypto mapped by then.
 */
async function hashTreeScript(dir: string): Promise<string> {
  const script = join(dir, "hash_tree.ts");
  await Deno.writeTextFile(
    script,
    `import { treeDigest, useDigestCache } from ${
      JSON.stringify(new URL("../src/digest.ts", import.meta.url).href)
    };\n` +
      "useDigestCache({ dir: undefined });\nconsole.log(await treeDigest(Deno.args[0]));\n" +
      // Reading the maps takes --allow-all: a run without it cannot have loaded libcrypto.
      'const maps = (() => { try { return Deno.readTextFileSync("/proc/self/maps"); } ' +
      'catch { return ""; } })();\n' +
      `if (/libcrypto/.test(maps)) console.log(${JSON.stringify(LIBCRYPTO_LINE)});\n`,
  );
  return script;
}

/** A tree of `bytes` bytes: a small file, and the rest as one sparse file (nearly free on disk). */
async function sparseTree(dir: string, bytes: number): Promise<string> {
  const root = join(dir, `tree-${bytes}`);
  await Deno.mkdir(join(root, "src"), { recursive: true });
  await Deno.writeTextFile(join(root, "src", "small.txt"), "x".repeat(1000));
  await Deno.writeFile(join(root, "big.bin"), new Uint8Array(0));
  await Deno.truncate(join(root, "big.bin"), bytes - 1000);
  return root;
}

Deno.test("a native SHA-256 loads for a tree with the README's 4 MiB to hash, and not for one byte less", () =>
  withTempDir(async (dir) => {
    const [mib] = readmeSays(
      /libcrypto[^|]*\| fast SHA-256, loaded when there are (\d+) MiB or more of a tree to hash/,
    );
    const threshold = Number(mib) * MIB;
    const script = await hashTreeScript(dir);
    const hashed = async (bytes: number) => {
      const { ran, scripts } = await runLogged([script, await sparseTree(dir, bytes)], {
        cwd: dir,
      });
      assert.equal(ran.code, 0, ran.stderr);
      assert.match(ran.stdout, /^[0-9a-f]{64}\n/);
      return {
        libcrypto: ran.stdout.includes(LIBCRYPTO_LINE),
        node: (await beyondDenoStart(scripts, dir)).filter(isNodeLayer),
      };
    };
    const below = await hashed(threshold - 1);
    assert.deepEqual(below, { libcrypto: false, node: [] }, "one byte under the threshold");
    const at = await hashed(threshold);
    // libcrypto where the system has it, and then no Node layer at all; else node:crypto.
    assert.equal(at.libcrypto, systemHasLibcrypto(), "libcrypto used where it is installed");
    if (at.libcrypto) assert.deepEqual(at.node, [], "the Node layer started beside libcrypto");
    else assert.ok(at.node.some((script) => /crypto/.test(script)), at.node.join("\n"));
  }));

Deno.test("without libcrypto (no ffi permission), a tree hashed in Workers has the same digest, by node:crypto", () =>
  withTempDir(async (dir) => {
    const script = await hashTreeScript(dir);
    // 64 MiB: hashed in Workers and in the walking thread (src/digest.ts, WORKER_THRESHOLD_BYTES).
    const root = await sparseTree(dir, 64 * MIB);
    const withFfi = await runLogged([script, root], { cwd: dir });
    assert.equal(withFfi.ran.code, 0, withFfi.ran.stderr);
    const noFfi = ["--allow-read", "--allow-write", "--allow-env", "--allow-run", "--allow-sys"];
    const without = await runLogged([script, root], { cwd: dir, permissions: noFfi });
    assert.equal(without.ran.code, 0, without.ran.stderr);
    assert.ok(!without.ran.stdout.includes(LIBCRYPTO_LINE), "libcrypto loaded without ffi");
    const node = (await beyondDenoStart(without.scripts, dir)).filter(isNodeLayer);
    assert.ok(node.some((script) => /crypto/.test(script)), node.join("\n"));
    assert.equal(without.ran.stdout.split("\n")[0], withFfi.ran.stdout.split("\n")[0]);
  }));

// --- the cache folders ---------------------------------------------------------------------

Deno.test("the cache limits the README states are the ones the caches prune to", () => {
  const [tags, tagMb, specs, specMb, trees, treeMb] = readmeSays(
    /more than ([\d,]+) tags \((\d+) MB\), ([\d,]+) specs' tag lists \((\d+) MB\) or ([\d,]+) trees' digests \((\d+) MB\)/,
  );
  const [minutes] = readmeSays(/It lists such a folder at most once\s+every (\d+) minutes/);
  const stated = (entries: string, mb: string): CacheLimits => ({
    maxEntries: count(entries),
    maxBytes: Number(mb) * MIB,
    listEveryMs: Number(minutes) * MINUTE_MS,
  });
  assert.deepEqual(TAG_CACHE_LIMITS, stated(tags, tagMb), "the registry tag cache");
  assert.deepEqual(LAST_CHECKED_LIMITS, stated(specs, specMb), "the checked tags of each spec");
  assert.deepEqual(DIGEST_CACHE_LIMITS, stated(trees, treeMb), "the digest cache");
});

Deno.test("a folder over its limits is pruned down to three quarters of them, as the README says", () =>
  withTempDir((dir) => {
    readmeSays(/down to three quarters of that/);
    const limits = { maxEntries: 20, maxBytes: 1000 };
    const now = Date.now();
    const write = (folder: string, entries: number, size: number) => {
      Deno.mkdirSync(folder, { mode: 0o700 });
      for (let i = 0; i < entries; i++) {
        const file = join(folder, `entry-${i}.json`);
        Deno.writeTextFileSync(file, "x".repeat(size));
        const used = new Date(now - (i + 1) * MINUTE_MS);
        Deno.utimeSync(file, used, used);
      }
      return folder;
    };
    const left = (folder: string) => [...Deno.readDirSync(folder)].map((entry) => entry.name);
    // Too many entries: 21 of at most 20 leave 15, the most recently used.
    const many = write(join(dir, "many"), limits.maxEntries + 1, 1);
    pruneCacheDir(many, limits, now);
    const kept = left(many).sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
    assert.deepEqual(kept, Array.from({ length: 15 }, (_, i) => `entry-${i}.json`));
    // Too many bytes: 11 entries of 100 bytes, of at most 1000 bytes, leave 7 (700 bytes).
    const large = write(join(dir, "large"), 11, 100);
    pruneCacheDir(large, limits, now);
    assert.equal(left(large).length, 7);
  }));

Deno.test("a used entry is touched at most once a day, and unfinished writes go after an hour", () =>
  withTempDir((dir) => {
    readmeSays(/its modification time is moved to now, at most once a day/);
    readmeSays(/Temporary files of writes that never finished go after an hour/);
    const now = Date.now();
    const aged = (name: string, ageMs: number) => {
      const file = join(dir, name);
      Deno.writeTextFileSync(file, "{}");
      Deno.utimeSync(file, new Date(now - ageMs), new Date(now - ageMs));
      return file;
    };
    const modified = (file: string) => Deno.statSync(file).mtime!.getTime();
    const recent = aged("recent.json", DAY_MS - MINUTE_MS);
    const old = aged("old.json", DAY_MS + MINUTE_MS);
    noteCacheUse(recent, now);
    noteCacheUse(old, now);
    assert.equal(modified(recent), now - DAY_MS + MINUTE_MS, "less than a day old: left alone");
    assert.ok(Math.abs(modified(old) - now) < 1000, "more than a day old: moved to now");

    const folder = join(dir, "cache");
    Deno.mkdirSync(folder, { mode: 0o700 });
    Deno.renameSync(recent, join(folder, "recent.json"));
    const fresh = join(folder, "fresh.tmp");
    const stale = join(folder, "stale.tmp");
    for (const [file, ageMs] of [[fresh, HOUR_MS - MINUTE_MS], [stale, HOUR_MS + MINUTE_MS]]) {
      Deno.writeTextFileSync(file as string, "partial");
      const when = new Date(now - (ageMs as number));
      Deno.utimeSync(file as string, when, when);
    }
    pruneCacheDir(folder, { maxEntries: 100, maxBytes: MIB }, now);
    assert.deepEqual(
      [...Deno.readDirSync(folder)].map((entry) => entry.name).sort(),
      ["fresh.tmp", "recent.json"],
    );
  }));

Deno.test("a file's digest is remembered only once it has been unchanged for two seconds", () =>
  withTempDir((dir) => {
    readmeSays(/Only files unchanged for two seconds before they were looked at are remembered/);
    const file = join(dir, "file.txt");
    Deno.writeTextFileSync(file, "content");
    const info = statFile(file);
    const changed = Math.max(info.mtime, info.ctime);
    assert.equal(isSettled(info, changed + 1990), false, "just under two seconds");
    assert.equal(isSettled(info, changed + 2010), true, "just over two seconds");
  }));
