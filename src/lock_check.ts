/**
 * Which images a spec must have in its folder's `imgtool.lock`, and the check of
 * `build --locked` (and `uri --locked`, `dockerfile --locked`): as `cargo --locked` fails
 * when the lock file would change, it fails (exit status 2) before anything is done when
 * `imgtool lock` would change the file: an image the spec uses by tag has no entry, the
 * spec's record in the file is not what the spec uses now, or the file holds entries or
 * records that no spec uses any more.
 *
 * An image a spec must lock is one its layers pin (`context.pinned`): by tag (or by name
 * alone), not pinned by digest in the spec already, and not an image of the spec itself
 * (`Image.fromBase(other.uri)`, whose content tag names its content already).
 *
 * @module
 */

import { activeConfig } from "./config.ts";
import { UsageError } from "./errors.ts";
import { isFile } from "./fs.ts";
import { imagesUsed } from "./identify.ts";
import type { LoadedSpec } from "./load.ts";
import {
  EMPTY_LOCK,
  formatLock,
  LOCK_FILE_NAME,
  lockFileFor,
  mergeLock,
  readLockSync,
  specKey,
} from "./lock.ts";
import { dirname, join, relative } from "./path.ts";
import { isPinnedByDigest } from "./pinning.ts";
import { type ImagePlan, planImage } from "./plan.ts";

/** The length of the content tags imgtool computes (see `./identify.ts`). */
const CONTENT_TAG = /^[0-9a-f]{32}$/;

/**
 * The images `plans` use that a lock must pin: every reference their layers pin that is
 * neither pinned by digest nor an image of these plans (a repository of theirs with a
 * content tag), sorted and without repeats.
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage } from "imgtool";
 * import { lockableImages } from "./lock_check.ts";
 * const base = Image.fromDebianBase({ name: "base", registry: "127.0.0.1:5000" });
 * // Another image of the spec, and an image pinned by digest: neither needs an entry.
 * const app = Image.fromBase(`127.0.0.1:5000/base:${"0".repeat(32)}`).withWorkdir("/app");
 * const tool = Image.fromBase(`debian@sha256:${"1".repeat(64)}`).withWorkdir("/tool");
 * const plans = [base, app, tool].map((image, index) => planImage(image, `i${index}`, defaultConfig()));
 * console.log(lockableImages(plans)); // [ "ghcr.io/astral-sh/uv:0.8.13", "python:3.12-slim-bookworm" ]
 * ```
 */
export function lockableImages(plans: readonly ImagePlan[]): string[] {
  const own = new Set(plans.map(repositoryOf));
  const images = new Set(plans.flatMap(imagesUsed));
  return [...images]
    .filter((reference) => !isPinnedByDigest(reference) && !isOwnImage(reference, own))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Fail with a {@link UsageError} (exit status 2) unless the lock file beside `spec` is what
 * `imgtool lock` would leave it as: every image the spec's images use by tag has an entry,
 * the spec's record lists exactly those, and no entry or record is left that no spec in the
 * folder uses. `plans` are the selected images, planned; the spec's other images are
 * planned here with the same configuration, since the file covers all of them. A spec that
 * uses no image by tag needs no lock file.
 *
 * @example
 * ```ts
 * import { Image } from "imgtool";
 * import { ensureLocked } from "./lock_check.ts";
 * const dir = Deno.makeTempDirSync();
 * const spec = { file: `${dir}/spec.ts`, images: [] };
 * ensureLocked(spec, []); // nothing to lock: no error
 * const image = Image.fromBase("debian:bookworm").withWorkdir("/app");
 * try {
 *   ensureLocked({ ...spec, images: [{ exportName: "default", exportKey: "default", image }] }, []);
 * } catch (error) {
 *   console.log((error as Error).message.endsWith("debian:bookworm has no entry")); // true
 * }
 * ```
 */
export function ensureLocked(spec: LoadedSpec, plans: readonly ImagePlan[]): void {
  const config = plans[0]?.config ?? activeConfig();
  const all = spec.images.map((exported) =>
    plans.find((plan) => plan.exportName === exported.exportName) ??
      planImage(exported.image, exported.exportName, config)
  );
  const uses = lockableImages(all);
  const file = lockFileFor(spec.file);
  const found = readLockSync(file);
  const lock = found ?? EMPTY_LOCK;
  const key = specKey(spec.file);
  const merged = mergeLock(lock, {
    spec: key,
    uses,
    resolved: {},
    specExists: (name) => isFile(join(dirname(file), name)),
  });
  const reasons: string[] = [];
  const missing = uses.filter((reference) => !Object.hasOwn(lock.images, reference));
  reasons.push(...missing.map((reference) => `${reference} has no entry`));
  const recorded = new Set(Object.hasOwn(lock.specs, key) ? lock.specs[key] : []);
  for (const reference of uses) {
    if (!recorded.has(reference) && !missing.includes(reference)) {
      reasons.push(`it does not record that ${key} uses ${reference}`);
    }
  }
  for (const reference of recorded) {
    if (!uses.includes(reference)) reasons.push(`${key} no longer uses ${reference}`);
  }
  for (const name of merged.forgotten) {
    reasons.push(`it records the spec ${name}, which is gone`);
  }
  for (const { reference } of merged.removed) {
    reasons.push(`no spec uses its entry ${reference} any more`);
  }
  if (reasons.length === 0 && formatLock(merged.lock) !== formatLock(lock)) {
    reasons.push("imgtool lock would write it differently");
  }
  if (reasons.length === 0) return;
  const at = relative(safeCwd(), spec.file);
  const specArgument = at.startsWith("..") ? spec.file : at;
  throw new UsageError(
    `--locked: ${found ? `${file} is out of date` : `there is no ${file}`}: ${reasons.join("; ")}`,
    {
      hint: `run imgtool lock ${specArgument} and commit ${LOCK_FILE_NAME} (without --locked, ` +
        "images with no entry are used by tag)",
    },
  );
}

/** The repository an image's content tags live in. */
function repositoryOf(plan: ImagePlan): string {
  return plan.info.registry ? `${plan.info.registry}/${plan.info.name}` : plan.info.name ?? "";
}

/** Is `reference` a content tag of one of the repositories `own`? */
function isOwnImage(reference: string, own: ReadonlySet<string>): boolean {
  const colon = reference.lastIndexOf(":");
  if (colon <= reference.lastIndexOf("/")) return false;
  return own.has(reference.slice(0, colon)) && CONTENT_TAG.test(reference.slice(colon + 1));
}

function safeCwd(): string {
  try {
    return Deno.cwd();
  } catch {
    return "/";
  }
}
