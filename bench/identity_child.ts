/**
 * One tree digest call, in a fresh process, for `deno task bench identity --explore`:
 * `deno run -A bench/identity_child.ts MODE ROOT [DIGEST_CACHE_DIR]`. It is cold when the
 * digest cache folder of src/digest.ts is empty: bench/identity.ts gives every run a fresh
 * one (without it, the child uses the default one, under `~/.cache`). Prints one JSON line:
 * the digest, the milliseconds spent in the digest call, and the process's peak resident
 * memory (VmHWM) read at the end. (The benchmark's own figures run `imgtool uri` as users do;
 * this times the call alone, without the CLI around it.)
 *
 * MODE is `async` (imgtool's `treeDigest`), `sync` (`treeDigestSync`) or an experimental
 * variant from `digest_variants.ts`.
 *
 * @module
 */

import { treeDigest, treeDigestSync, useDigestCache } from "../src/digest.ts";
import { VARIANTS } from "./digest_variants.ts";

/** What the child prints. */
export interface ChildReport {
  readonly mode: string;
  readonly digest: string | null;
  readonly ms: number;
  readonly peakRssKiB: number;
}

function peakRssKiB(): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  return Number(status.match(/^VmHWM:\s+(\d+)\s+kB/m)?.[1] ?? NaN);
}

async function main(mode: string, root: string, cacheDir?: string): Promise<void> {
  if (cacheDir !== undefined) useDigestCache({ dir: cacheDir });
  const variant = VARIANTS[mode];
  if (mode !== "async" && mode !== "sync" && !variant) {
    throw new Error(`unknown mode ${mode}; use async, sync, ${Object.keys(VARIANTS).join(", ")}`);
  }
  const started = performance.now();
  const digest = mode === "async"
    ? await treeDigest(root)
    : mode === "sync"
    ? treeDigestSync(root)
    : await variant.digest(root);
  const elapsed = performance.now() - started;
  const report: ChildReport = { mode, digest, ms: elapsed, peakRssKiB: peakRssKiB() };
  console.log(JSON.stringify(report));
}

if (import.meta.main) {
  const [mode, root, cacheDir] = Deno.args;
  await main(mode, root, cacheDir);
  // Workers of some variants would keep the process alive.
  Deno.exit(0);
}
