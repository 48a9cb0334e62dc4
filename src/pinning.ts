/**
 * Base images pinned by digest: what `imgtool.lock` does to an image reference, as plugins
 * see it. A reference the lock has an entry for becomes `name:tag@sha256:…`: the readable
 * name stays, and the digest wins (Docker, BuildKit and buildah pull by the digest and
 * ignore the tag). A reference pinned by digest already, or one the lock has no entry for,
 * stays as it is. Pure functions: reading the lock file is `./lock.ts`'s job.
 *
 * @module
 */

import type { PluginContext } from "./plugin.ts";

/** `@<algorithm>:<hex>` at the end of a reference: it names one image, whatever tag it has. */
const DIGEST_SUFFIX = /@[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$/;

/**
 * Is `reference` pinned by digest (`name@sha256:…`, `name:tag@sha256:…`)? Such a reference
 * names one image for good and needs no lock entry.
 *
 * @example
 * ```ts
 * import { isPinnedByDigest } from "imgtool";
 * console.log(isPinnedByDigest(`debian@sha256:${"0".repeat(64)}`)); // true
 * console.log(isPinnedByDigest("debian:bookworm-slim")); // false
 * ```
 */
export function isPinnedByDigest(reference: string): boolean {
  return DIGEST_SUFFIX.test(reference);
}

/**
 * `reference` pinned to the digest `images` holds for it (`name:tag@sha256:…`), or
 * `reference` itself when it is pinned by digest already or `images` has no entry for it.
 * Entries are keyed by the reference exactly as written.
 *
 * @example
 * ```ts
 * import { pinReference } from "./pinning.ts";
 * const images = { "python:3.12-slim": `sha256:${"a".repeat(64)}` };
 * console.log(pinReference("python:3.12-slim", images) === `python:3.12-slim@sha256:${"a".repeat(64)}`); // true
 * console.log(pinReference("debian:bookworm", images)); // debian:bookworm
 * ```
 */
export function pinReference(
  reference: string,
  images: Readonly<Record<string, string>>,
): string {
  if (isPinnedByDigest(reference) || !Object.hasOwn(images, reference)) return reference;
  return `${reference}@${images[reference]}`;
}

/**
 * The comment that keeps a pinned reference readable in a Dockerfile
 * (`# python:3.12-slim locked at sha256:…`), or `undefined` when `pinned` is `reference`
 * unchanged. A comment is a line of its own: put it right above the instruction.
 *
 * @example
 * ```ts
 * import { lockedComment } from "imgtool";
 * const digest = `sha256:${"b".repeat(64)}`;
 * console.log(lockedComment("debian:bookworm", `debian:bookworm@${digest}`) === `# debian:bookworm locked at ${digest}`); // true
 * console.log(lockedComment("debian:bookworm", "debian:bookworm")); // undefined
 * ```
 */
export function lockedComment(reference: string, pinned: string): string | undefined {
  if (pinned === reference || !pinned.startsWith(`${reference}@`)) return undefined;
  return `# ${reference} locked at ${pinned.slice(reference.length + 1)}`;
}

/**
 * The instructions that start an image from `reference` as the lock pins it: `FROM` the
 * pinned reference, with {@link lockedComment} above it when the lock moved it. What a base
 * plugin's `render` returns first.
 *
 * @example
 * ```ts
 * import { definePlugin, fromInstructions } from "imgtool";
 * export const alpineBase = definePlugin<{ readonly version: string }>({
 *   name: "alpine_base",
 *   kind: "base",
 *   render: (options, context) => ({
 *     instructions: [...fromInstructions(context, `alpine:${options.version}`), "RUN apk add git"],
 *   }),
 * });
 * ```
 */
export function fromInstructions(context: PluginContext, reference: string): string[] {
  const pinned = context.pinned(reference);
  const comment = lockedComment(reference, pinned);
  return comment === undefined ? [`FROM ${pinned}`] : [comment, `FROM ${pinned}`];
}
