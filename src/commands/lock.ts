/**
 * `imgtool lock [SPEC] [--update] [--image NAME] [--json]`: write the spec's folder's
 * `imgtool.lock`. Plans every image of the spec, collects the images their layers start from
 * or copy from by tag (`../lock_check.ts`), asks the registry for the digest of each that has
 * no entry (of every one of them with `--update`: every entry moves to today's digest), and
 * writes the file: entries other specs use are kept, the spec's record is brought up to date,
 * and what no spec uses any more is removed. Prints what was added, moved and removed.
 * `--image` limits which images' entries are added or moved; the spec's record always
 * covers all of its images. A registry that cannot be asked fails the command (exit status
 * 1), naming the reference, and the file is left as it was.
 *
 * @module
 */

import type { Flags } from "../cli/args.ts";
import { out, outJson } from "../cli/output.ts";
import { ImgtoolError } from "../errors.ts";
import { isFile } from "../fs.ts";
import { imagesUsed } from "../identify.ts";
import { selectImages } from "../load.ts";
import {
  EMPTY_LOCK,
  formatLock,
  lockFileFor,
  type MergedLock,
  mergeLock,
  readLockSync,
  setActiveLock,
  specKey,
  writeLock,
} from "../lock.ts";
import { lockableImages } from "../lock_check.ts";
import { dirname, join } from "../path.ts";
import type { ImagePlan } from "../plan.ts";
import { commandRegistryClient } from "./registry_client.ts";
import { ensureValid, loadSpecConfig, prepare } from "./prepare.ts";

/**
 * Resolves an image reference to the digest its registry serves for it: what
 * {@link RegistryClient.getManifest} gives (the index digest for a multi-platform image).
 */
export interface DigestSource {
  /** The manifest or index `reference` names, or `undefined` when the registry has none. */
  getManifest(reference: string): Promise<{ readonly digest: string } | undefined>;
}

/** Run `imgtool lock`. */
export async function lockCommand(
  specPath: string,
  flags: Flags & { readonly update: boolean },
  signal: AbortSignal,
): Promise<number> {
  const config = loadSpecConfig(specPath, flags);
  const file = lockFileFor(specPath);
  // The spec is planned with the entries the file has now, as every command plans it.
  setActiveLock(file);
  const before = readLockSync(file);
  let plans: readonly ImagePlan[] = [];
  const registry = commandRegistryClient(config, flags, () => plans);
  try {
    // Every image: the file records what the whole spec uses, whatever --image picks.
    const prepared = await prepare(specPath, { ...flags, image: [] }, config);
    plans = prepared.plans;
    await ensureValid(plans, { secretValues: false, warnings: false });
    const picked = new Set(selectImages(prepared.spec, flags.image).map((e) => e.exportName));
    const uses = lockableImages(plans);
    const wanted = new Set(
      plans.filter((plan) => picked.has(plan.exportName)).flatMap(imagesUsed),
    );
    const lock = before ?? EMPTY_LOCK;
    const toResolve = uses.filter((reference) =>
      wanted.has(reference) && (flags.update || !Object.hasOwn(lock.images, reference))
    );
    const resolved = await resolveDigests(toResolve, registry);
    const merged = mergeLock(lock, {
      spec: specKey(prepared.spec.file),
      uses,
      resolved,
      specExists: (name) => isFile(join(dirname(file), name)),
    });
    const text = formatLock(merged.lock);
    const empty = Object.keys(merged.lock.images).length === 0 &&
      Object.keys(merged.lock.specs).length === 0;
    // A folder whose specs use no image by tag needs no lock file: none is made for it.
    const write = before === undefined ? !empty : text !== formatLock(before);
    signal.throwIfAborted();
    if (write) await writeLock(file, merged.lock);
    report(file, merged, { written: write, made: before === undefined, flags });
    return 0;
  } finally {
    await registry.close();
  }
}

/**
 * The digest the registry serves for each of `references` (asked all at once). Throws an
 * {@link ImgtoolError} naming the first reference, in order, that could not be resolved:
 * exit status 1 when the registry could not be asked or has no such image, 2 for a reference
 * that is not one.
 *
 * @example
 * ```ts
 * import { resolveDigests } from "./lock.ts";
 * const digest = `sha256:${"f".repeat(64)}`;
 * const registry = { getManifest: (reference: string) => Promise.resolve(reference === "debian:bookworm" ? { digest } : undefined) };
 * console.log((await resolveDigests(["debian:bookworm"], registry))["debian:bookworm"] === digest); // true
 * try {
 *   await resolveDigests(["debian:nonesuch"], registry);
 * } catch (error) {
 *   console.log((error as Error).message); // cannot lock debian:nonesuch: its registry has no such image
 * }
 * ```
 */
export async function resolveDigests(
  references: readonly string[],
  registry: DigestSource,
): Promise<Record<string, string>> {
  const settled = await Promise.allSettled(
    references.map((reference) => resolveDigest(reference, registry)),
  );
  const digests = new Map<string, string>();
  for (const [index, result] of settled.entries()) {
    if (result.status === "rejected") throw result.reason;
    digests.set(references[index], result.value);
  }
  return Object.fromEntries(digests);
}

async function resolveDigest(reference: string, registry: DigestSource): Promise<string> {
  let manifest: { readonly digest: string } | undefined;
  try {
    manifest = await registry.getManifest(reference);
  } catch (error) {
    // A reference that is not one is the spec's mistake, and says so itself.
    if (error instanceof ImgtoolError && error.exitCode === 2) throw error;
    const said = error instanceof ImgtoolError ? error : undefined;
    throw new ImgtoolError(`cannot lock ${reference}: ${(error as Error)?.message ?? error}`, {
      hint: said?.hint ?? "check that its registry is reachable, then run imgtool lock again",
      cause: error,
    });
  }
  if (manifest === undefined) {
    throw new ImgtoolError(`cannot lock ${reference}: its registry has no such image`, {
      hint: "check the name and tag (and the mirrors of [images] in imgtool.toml), " +
        "or push the image first",
    });
  }
  return manifest.digest;
}

function report(
  file: string,
  merged: MergedLock,
  how: { written: boolean; made: boolean; flags: Flags & { readonly update: boolean } },
): void {
  const { lock, added, moved, removed, forgotten } = merged;
  const count = Object.keys(lock.images).length;
  if (how.flags.json) {
    outJson({
      ok: true,
      file,
      written: how.written,
      images: lock.images,
      added,
      moved,
      removed,
      forgotten,
    });
    return;
  }
  for (const entry of added) out(`added ${entry.reference} ${short(entry.digest)}`);
  for (const entry of moved) {
    out(`moved ${entry.reference} ${short(entry.from)} → ${short(entry.to)}`);
  }
  for (const entry of removed) {
    out(`removed ${entry.reference} ${short(entry.digest)} (no spec in the folder uses it)`);
  }
  for (const spec of forgotten) out(`forgot the spec ${spec} (its file is gone)`);
  const images = `${count} image${count === 1 ? "" : "s"}`;
  if (how.written) out(`${how.made ? "wrote" : "updated"} ${file} (${images})`);
  else if (how.made) out("nothing to lock: the spec uses no image by tag");
  else out(`${file} is up to date (${images})`);
}

/** A digest as people read it: the algorithm and 12 hex digits. */
function short(digest: string): string {
  const colon = digest.indexOf(":");
  return `${digest.slice(0, colon + 13)}…`;
}
