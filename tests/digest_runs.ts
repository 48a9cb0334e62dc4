// Digests taken in fresh `deno` processes, as builds take them, each with its own cache folder
// (never the machine's ~/.cache): what a child read and listed, and what the cache stored.
// Shared by tests/digest_cache_test.ts and tests/tree_changes_test.ts.
//
// Files cannot be made older than their change time, which is "now" when a test writes them,
// so the runs that should remember them are given a clock ten seconds ahead (`useDigestCache`
// takes one); the runs that read the cache use the real clock and the default folder rule.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { digestIndexFile } from "../src/digest_cache.ts";
import { decodeTreeIndex, FILE, type TreeIndex } from "../src/tree_index.ts";
import { withTempDir, writeTree } from "./helpers.ts";

const SRC = fileURLToPath(new URL("../src/", import.meta.url));
/** How far ahead the clock of a run that should remember runs. */
export const AHEAD_MS = 10_000;
// Deno's own cache would follow XDG_CACHE_HOME too: the children keep using this one.
const DENO_DIR = Deno.env.get("DENO_DIR") ?? JSON.parse(
  new TextDecoder().decode(
    (await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output()).stdout,
  ),
).denoDir;

/**
 * The child: digests `target` (`tree`, `tree-sync`, `tree-workers` or `file`), recording
 * every file under `target` that it opens or reads, and every folder it lists (in its main
 * thread). With a clock offset, it uses the default cache folder with its clock moved on by
 * that much; with ignore patterns (JSON), the tree is walked with those rules.
 */
const CHILD = `
import { fileDigest, treeDigest, treeDigestSync, useDigestCache } from "${SRC}digest.ts";
import { useNativeStat } from "${SRC}file_stat.ts";
import { imgtoolCacheDir } from "${SRC}cache_dir.ts";
import { IgnoreRules } from "${SRC}ignore.ts";
const [mode, target, offset, patterns] = Deno.args;
// statx(2) called directly from the first stat, as for a big tree, however small this one is
// (asked only where the environment may be read: some runs are given fewer permissions).
const statx = { name: "env", variable: "DIGEST_RUNS_STATX" };
if (Deno.permissions.querySync(statx).state === "granted" && Deno.env.get(statx.variable) === "1") {
  useNativeStat(0);
}
if (offset) {
  useDigestCache({ dir: imgtoolCacheDir("digests"), now: () => Date.now() + Number(offset) });
}
const ignore = patterns
  ? new IgnoreRules([{ root: target, patterns: JSON.parse(patterns) }])
  : undefined;
const reads = [];
const listed = [];
for (const name of ["open", "openSync", "readFile", "readFileSync", "readDirSync"]) {
  const original = Deno[name];
  Deno[name] = (path, ...rest) => {
    if (String(path).startsWith(target)) {
      (name === "readDirSync" ? listed : reads).push(String(path).slice(target.length));
    }
    return original(path, ...rest);
  };
}
const digest = mode === "tree"
  ? await treeDigest(target, ignore)
  : mode === "tree-workers"
  ? await treeDigest(target, ignore, 8, 0)
  : mode === "tree-sync"
  ? treeDigestSync(target, ignore)
  : (await fileDigest(target))?.sha256;
console.log(JSON.stringify({ digest, reads: reads.sort(), listed: listed.sort() }));
`;

/** What a child printed. */
export interface ChildRun {
  readonly digest: string | null;
  readonly reads: string[];
  /** The folders listed (`""`: the root). */
  readonly listed: string[];
}

/** Where a test keeps its tree, its caches and the child script. */
export interface Setup {
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
    options?: {
      ahead?: boolean;
      cacheHome?: string | null;
      permissions?: string[];
      ignore?: string[];
    },
  ) => Promise<ChildRun>;
}

/** The tree each test starts from. */
export const TREE: Record<string, string> = {
  "app/main.py": "print('hello')\n",
  "app/util.py": "def f():\n    return 1\n",
  "app/data/table.csv": "a,b\n1,2\n",
  "README.md": "# demo\n",
  "pyproject.toml": "[project]\nname = 'demo'\n",
};

/**
 * Run `fn` with a fresh tree, cache home and child script, removed after. With `statx`, the
 * children take every stat through statx(2) directly (`useNativeStat(0)`), the way of trees of
 * thousands of files, where small ones take Deno's.
 */
export function withSetup(
  fn: (setup: Setup) => Promise<void>,
  way: { readonly statx?: boolean } = {},
): Promise<void> {
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
      if (way.statx) env.DIGEST_RUNS_STATX = "1";
      const permissions = options.permissions ?? ["--allow-all"];
      const args = ["run", ...permissions, "--no-config", script, mode, target];
      args.push(options.ahead ? String(AHEAD_MS) : "");
      if (options.ignore) args.push(JSON.stringify(options.ignore));
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

/** Every file of {@link TREE}, as the child reports reads. */
export const ALL_FILES: string[] = Object.keys(TREE).map((path) => `/${path}`).sort();

/** The stored index of `root` in the cache folder `digests` (it must be there). */
export function storedIndex(digests: string, root: string): TreeIndex {
  const index = decodeTreeIndex(Deno.readFileSync(digestIndexFile(digests, root)), root);
  assert.ok(index, "a whole index");
  return index;
}

/** The paths of the files whose digests the index of `root` believes. */
export function storedFiles(digests: string, root: string): string[] {
  const index = storedIndex(digests, root);
  return index.paths.filter((_, at) => index.kinds[at] === FILE && index.believed[at] === 1)
    .sort();
}
