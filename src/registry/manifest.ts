/**
 * Manifest media types and the few facts the client reads from manifests: whether one is an
 * index, which platforms an index lists, which config blob a manifest points at.
 *
 * @module
 */

import type { PlatformObject } from "./platform.ts";

/** An OCI image manifest. */
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** An OCI image index. */
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
/** A Docker image manifest, schema 2. */
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
/** A Docker manifest list (schema 2's multi-platform index). */
export const DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
/**
 * The empty JSON blob's media type (`{}`): the config of an artifact that needs none.
 *
 * @example
 * ```ts
 * import { OCI_EMPTY, OCI_EMPTY_DIGEST } from "./manifest.ts";
 * console.log(OCI_EMPTY, OCI_EMPTY_DIGEST.slice(0, 15)); // application/vnd.oci.empty.v1+json sha256:44136fa3
 * ```
 */
export const OCI_EMPTY = "application/vnd.oci.empty.v1+json";
/** The digest of the empty JSON blob, the two bytes `{}`. */
export const OCI_EMPTY_DIGEST =
  "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
/** An in-toto statement (a provenance record): a layer's media type and an artifact's type. */
export const IN_TOTO = "application/vnd.in-toto+json";
/** The `Accept` header for manifest requests: all four types this client understands. */
export const MANIFEST_ACCEPT: string = [
  OCI_INDEX,
  DOCKER_MANIFEST_LIST,
  OCI_MANIFEST,
  DOCKER_MANIFEST,
]
  .join(", ");

/** A content descriptor: what a manifest says about a blob or another manifest. */
export interface Descriptor {
  /** The media type of the content. */
  mediaType: string;
  /** Its digest, `sha256:...`. */
  digest: string;
  /** Its size in bytes. */
  size: number;
  /** For index entries: the platform the manifest is for. */
  platform?: PlatformObject;
  /** Free-form annotations. */
  annotations?: Record<string, string>;
  /** For a referrer (an artifact that refers to another manifest): its artifact type. */
  artifactType?: string;
}

/**
 * Whether a media type is an index (`index`), a single image manifest (`manifest`), or
 * something this client does not read (`other`).
 *
 * @example
 * ```ts
 * import { DOCKER_MANIFEST_LIST, manifestKind } from "./manifest.ts";
 * console.log(manifestKind(DOCKER_MANIFEST_LIST)); // index
 * ```
 */
export function manifestKind(mediaType: string): "index" | "manifest" | "other" {
  if (mediaType === OCI_INDEX || mediaType === DOCKER_MANIFEST_LIST) return "index";
  if (mediaType === OCI_MANIFEST || mediaType === DOCKER_MANIFEST) return "manifest";
  return "other";
}

/**
 * A manifest's media type: the `Content-Type` the registry sent, else the document's own
 * `mediaType`, else guessed from its shape (OCI allows leaving it out).
 *
 * @example
 * ```ts
 * import { detectMediaType } from "./manifest.ts";
 * console.log(detectMediaType(null, { schemaVersion: 2, manifests: [] }));
 * // application/vnd.oci.image.index.v1+json
 * ```
 */
export function detectMediaType(contentType: string | null, json: unknown): string {
  const header = contentType?.split(";")[0].trim().toLowerCase();
  const record = isRecord(json) ? json : {};
  const own = typeof record.mediaType === "string" ? record.mediaType : undefined;
  // A generic header (some servers say application/json) tells less than the document.
  if (header && header !== "application/json" && header !== "application/octet-stream") {
    return header;
  }
  if (own) return own;
  if (Array.isArray(record.manifests)) return OCI_INDEX;
  if (isRecord(record.config) && Array.isArray(record.layers)) return OCI_MANIFEST;
  return header ?? "application/octet-stream";
}

/**
 * The entries of an index (OCI index or Docker manifest list), validated enough to use.
 * Returns an error message instead when the document is not shaped like an index.
 *
 * @example
 * ```ts
 * import { indexEntries } from "./manifest.ts";
 * const entries = indexEntries({ manifests: [] });
 * console.log(Array.isArray(entries)); // true
 * ```
 */
export function indexEntries(json: unknown): Descriptor[] | string {
  if (!isRecord(json) || !Array.isArray(json.manifests)) return `it has no "manifests" list`;
  const entries: Descriptor[] = [];
  for (const [i, item] of json.manifests.entries()) {
    const descriptor = toDescriptor(item);
    if (typeof descriptor === "string") return `manifests[${i}]: ${descriptor}`;
    entries.push(descriptor);
  }
  return entries;
}

/**
 * The tag that holds the referrers of `digest` where a registry has no referrers API: the
 * OCI distribution spec's "referrers tag schema", the algorithm (at most 32 characters), `-`,
 * and the encoded part (at most 64), every character a tag cannot hold replaced by `-`.
 *
 * @example
 * ```ts
 * import { referrersTag } from "./manifest.ts";
 * console.log(referrersTag(`sha256:${"ab".repeat(32)}`)); // sha256-abababababababababababababababababababababababababababababababab
 * ```
 */
export function referrersTag(digest: string): string {
  const colon = digest.indexOf(":");
  const algorithm = digest.slice(0, colon).slice(0, 32);
  const encoded = digest.slice(colon + 1).slice(0, 64);
  return `${algorithm}-${encoded}`.replace(/[^a-zA-Z0-9_.-]/g, "-");
}

/**
 * The platforms an index's entries are for, skipping entries without one and attestation
 * manifests (`unknown/unknown`), without duplicates.
 *
 * @example
 * ```ts
 * import { indexPlatforms } from "./manifest.ts";
 * const platforms = indexPlatforms([
 *   { mediaType: "m", digest: "sha256:1", size: 1, platform: { os: "linux", architecture: "amd64" } },
 *   { mediaType: "m", digest: "sha256:2", size: 1, platform: { os: "unknown", architecture: "unknown" } },
 * ]);
 * console.log(platforms); // [ { os: "linux", architecture: "amd64" } ]
 * ```
 */
export function indexPlatforms(entries: Descriptor[]): PlatformObject[] {
  const seen = new Set<string>();
  const platforms: PlatformObject[] = [];
  for (const entry of entries) {
    if (!isPlatformImage(entry)) continue;
    const p = entry.platform!;
    const key = `${p.os}/${p.architecture}/${p.variant ?? ""}`;
    if (seen.has(key)) continue;
    seen.add(key);
    platforms.push(p);
  }
  return platforms;
}

/**
 * Is this index entry an image for a platform: it names one, and it is no attestation
 * manifest (`unknown/unknown`, or BuildKit's `attestation-manifest` reference type)?
 *
 * @example
 * ```ts
 * import { isPlatformImage } from "./manifest.ts";
 * const entry = { mediaType: "m", digest: "sha256:1", size: 1 };
 * console.log(isPlatformImage({ ...entry, platform: { os: "linux", architecture: "arm64" } })); // true
 * console.log(isPlatformImage({ ...entry, platform: { os: "unknown", architecture: "unknown" } })); // false
 * ```
 */
export function isPlatformImage(entry: Descriptor): boolean {
  const p = entry.platform;
  if (!p || (p.os === "unknown" && p.architecture === "unknown")) return false;
  return entry.annotations?.["vnd.docker.reference.type"] !== "attestation-manifest";
}

/**
 * The config descriptor of an image manifest, or an error message when there is none.
 *
 * @example
 * ```ts
 * import { manifestConfig } from "./manifest.ts";
 * const config = manifestConfig({
 *   config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: "sha256:ab", size: 2 },
 *   layers: [],
 * });
 * console.log(typeof config === "string" ? config : config.digest); // sha256:ab
 * ```
 */
export function manifestConfig(json: unknown): Descriptor | string {
  if (!isRecord(json)) return "it is not a JSON object";
  const config = toDescriptor(json.config);
  return typeof config === "string" ? `its "config": ${config}` : config;
}

/**
 * The platform an image config (the JSON blob a manifest's `config` points at) declares;
 * `undefined` when it names no os and architecture (an artifact, not an image).
 *
 * @example
 * ```ts
 * import { configPlatform } from "./manifest.ts";
 * console.log(configPlatform({ os: "linux", architecture: "arm", variant: "v7" }));
 * // { os: "linux", architecture: "arm", variant: "v7" }
 * ```
 */
export function configPlatform(json: unknown): PlatformObject | undefined {
  if (!isRecord(json)) return undefined;
  const { os, architecture, variant } = json;
  if (typeof os !== "string" || typeof architecture !== "string" || !os || !architecture) {
    return undefined;
  }
  return typeof variant === "string" && variant
    ? { os, architecture, variant }
    : { os, architecture };
}

function toDescriptor(value: unknown): Descriptor | string {
  if (!isRecord(value)) return "not an object";
  const { mediaType, digest, size, platform, annotations, artifactType } = value;
  if (typeof digest !== "string" || !/^[a-z0-9+._-]+:[a-zA-Z0-9=_-]+$/.test(digest)) {
    return `"digest" is missing or malformed`;
  }
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    return `"size" is missing or not a byte count`;
  }
  const descriptor: Descriptor = {
    mediaType: typeof mediaType === "string" ? mediaType : "",
    digest,
    size,
  };
  if (
    isRecord(platform) && typeof platform.os === "string" &&
    typeof platform.architecture === "string"
  ) {
    descriptor.platform = configPlatform(platform);
  }
  if (typeof artifactType === "string" && artifactType) descriptor.artifactType = artifactType;
  if (isRecord(annotations)) {
    descriptor.annotations = Object.fromEntries(
      Object.entries(annotations).filter((entry): entry is [string, string] =>
        typeof entry[1] === "string"
      ),
    );
  }
  return descriptor;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * What an image config says about how the image runs: its user, working directory and
 * environment (the `config` object of the JSON blob a manifest's `config` points at). Fields
 * that are absent, empty or of another type read as absent; nothing here is checked beyond
 * its type, so callers check the values before they write them anywhere.
 *
 * @example
 * ```ts
 * import type { ImageRunConfig } from "./manifest.ts";
 * const config: ImageRunConfig = { user: "app", workdir: "/home/app", env: ["PATH=/usr/bin"] };
 * console.log(config.user); // app
 * ```
 */
export interface ImageRunConfig {
  /** `User`: a name or id, optionally `:group`; absent when empty (root). */
  readonly user?: string;
  /** `WorkingDir`, when set. */
  readonly workdir?: string;
  /** `Env`, as `NAME=value` strings. */
  readonly env: readonly string[];
}

/**
 * Read the runtime part of an image config blob.
 *
 * @example
 * ```ts
 * import { runtimeConfig } from "./manifest.ts";
 * const blob = { os: "linux", architecture: "amd64", config: { User: "app", Env: ["A=1", 2] } };
 * console.log(runtimeConfig(blob)); // { user: "app", workdir: undefined, env: [ "A=1" ] }
 * ```
 */
export function runtimeConfig(json: unknown): ImageRunConfig {
  const config = isRecord(json) && isRecord(json.config) ? json.config : {};
  const text = (value: unknown) => typeof value === "string" && value !== "" ? value : undefined;
  const env = Array.isArray(config.Env)
    ? config.Env.filter((entry): entry is string => typeof entry === "string")
    : [];
  return { user: text(config.User), workdir: text(config.WorkingDir), env };
}
