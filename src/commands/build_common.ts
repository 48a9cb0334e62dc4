/**
 * What both ways of running `imgtool build` share (one builder at a time, `./build.ts`; a pool of
 * engines, `./build_pool.ts`): the report of each image, and what happens to an image once it
 * exists (extra tags pointed at it) or failed (said on standard error).
 *
 * @module
 */

import type { Flags } from "../cli/args.ts";
import { err } from "../cli/output.ts";
import { ImgtoolError } from "../errors.ts";
import type { ImagePlan } from "../plan.ts";
import type { ImageIdentity } from "../identify.ts";
import type { RegistryClient } from "../registry/client.ts";
import { isLoopback } from "../registry/http.ts";
import { parseReference } from "../registry/reference.ts";

/** How one image ended. */
export interface ImageReport {
  /** Its export name. */
  readonly image: string;
  /** Its URI. */
  readonly uri: string;
  /** Its platforms. */
  readonly platforms: readonly string[];
  /** What happened. */
  readonly status: "built" | "skipped" | "failed";
  /** Why (for skipped and failed). */
  readonly reason?: string;
  /** How to fix a failure. */
  readonly hint?: string;
  /** The tail of the failing step's output. */
  readonly output?: string;
  /** The builder that built it (`registry` when it was all appended to a prefix found there). */
  readonly builder?: string;
  /** How many layers were appended through the registry, when some were. */
  readonly appended?: number;
  /** The engine of the pool that built it, when one built every platform of it. */
  readonly engine?: string;
  /** With a pool of builders: the engine of each platform (several when the image was split). */
  readonly engines?: readonly PlatformEngine[];
  /** The extra tags pointed at it (`<registry>/<name>:NAME`), when extra tags were asked for. */
  readonly tags?: readonly string[];
  /** Seconds spent on it. */
  readonly seconds: number;
}

/** Which engine of a pool built one platform of an image. */
export interface PlatformEngine {
  /** The platform (or platforms, comma-separated, when one engine built them together). */
  readonly platform: string;
  /** The engine's name (`[[builders]] name`). */
  readonly engine: string;
  /** Whether the engine emulated the platform (no engine of the pool builds it natively). */
  readonly emulated: boolean;
}
/** Is the registry of `uri` reached over plain HTTP (loopback, or configured insecure)? */
export function isPlainHttp(uri: string, insecure: readonly string[]): boolean {
  const { registry } = parseReference(uri);
  return isLoopback(registry) || insecure.includes(registry);
}
/** The `tags` of a report for an image no extra tag was pointed at. */
export function noTags(tags: readonly string[]): { tags?: readonly string[] } {
  return tags.length > 0 ? { tags: [] } : {};
}

/**
 * Point each of `tags` at the manifest or index the content tag of `identity` names (its
 * bytes put under each tag: no rebuild, no blob upload); the `tags` of its report. A
 * registry that refuses is thrown, and is the image's failure.
 */
export async function pointTags(
  registry: RegistryClient,
  identity: ImageIdentity,
  tags: readonly string[],
  label: string,
  progress: (line: string) => void,
): Promise<{ tags?: readonly string[] }> {
  if (tags.length === 0) return {};
  const repository = identity.uri.slice(0, identity.uri.lastIndexOf(":"));
  const tagged: string[] = [];
  for (const tag of tags) {
    await registry.tag(identity.uri, tag);
    tagged.push(`${repository}:${tag}`);
    progress(`${label}: tagged ${repository}:${tag}`);
  }
  return { tags: tagged };
}

/** The report of an image that failed, said on standard error as the run without a pool does. */
export function failedReport(
  base: { image: string; uri: string; platforms: readonly string[] },
  error: ImgtoolError,
  seconds: number,
  label: string,
  flags: Flags,
): ImageReport {
  const output = (error as { output?: string }).output;
  if (!flags.json) {
    err(`${label}: failed`);
    if (output) err(`--- output of the failing step ---\n${output}\n---`);
    err(`error: ${error.message}`);
    if (error.hint) err(`hint: ${error.hint}`);
  }
  return { ...base, status: "failed", reason: error.message, hint: error.hint, output, seconds };
}

/** A pushed build of an image without a registry is a mistake in the spec or command line. */
export function ensurePushTarget(plan: ImagePlan, flags: Flags): void {
  if (flags.push && !plan.info.registry) {
    throw new ImgtoolError(`image "${plan.exportName}" has no registry to push to`, {
      hint:
        "set registry in the image (registry: ...), in imgtool.toml, IMGTOOL_REGISTRY or --registry",
      exitCode: 2,
    });
  }
}
