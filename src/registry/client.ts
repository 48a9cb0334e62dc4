/**
 * A client for OCI distribution registries (Docker Hub, GHCR, Distribution, ...): does a tag
 * exist and for which platforms, read and write manifests, push blobs, and make a
 * multi-platform index from per-platform manifests.
 *
 * TLS is the default; plain HTTP is used only for loopback hosts and `insecureRegistries`.
 *
 * @module
 */

import { BuildError, systemError, UsageError } from "../errors.ts";
import { Authenticator, repositoryScope } from "./auth.ts";
import { digestMatches, readCapped, sha256Digest } from "./bytes.ts";
import {
  type Credential,
  dockerConfigDir,
  lookupCredential,
  readDockerConfig,
} from "./credentials.ts";
import { Redactor, RegistryError } from "./errors.ts";
import { directHead, openConnection, proxyConfigured } from "./direct_head.ts";
import { displayUrl, type Sent, Transport } from "./http.ts";
import { putFile, UploadConnectionError } from "./streamed_put.ts";
import {
  configPlatform,
  type Descriptor,
  detectMediaType,
  type ImageRunConfig,
  indexEntries,
  indexPlatforms,
  MANIFEST_ACCEPT,
  manifestConfig,
  manifestKind,
  OCI_INDEX,
  referrersTag,
  runtimeConfig,
} from "./manifest.ts";
import {
  formatPlatform,
  normalizePlatform,
  parsePlatform,
  type Platform,
  type PlatformObject,
} from "./platform.ts";
import {
  formatReference,
  isDigest,
  parseReference,
  type Reference,
  referenceTarget,
} from "./reference.ts";

import type { ProgressListener } from "./progress.ts";
import type { SeenTag, TagCache } from "./tag_cache.ts";

export type { Platform } from "./platform.ts";
export type { ProgressListener, RequestProgress } from "./progress.ts";

/** Explicit credentials: a user name and a password or access token. */
export interface BasicCredentials {
  /** The user name. */
  username: string;
  /** The password or access token. */
  password: string;
}

/** How a {@link RegistryClient} behaves; everything is optional. */
export interface RegistryClientOptions {
  /** Hosts (`host` or `host:port`) allowed over plain HTTP besides loopback. */
  insecureRegistries?: string[];
  /** The directory of Docker's config.json; overrides `$DOCKER_CONFIG` and `~/.docker`. */
  dockerConfigDir?: string;
  /**
   * Explicit credentials; they win over config.json. An object is used for every registry
   * this client talks to; a function is asked per registry (`docker.io`, `127.0.0.1:5000`)
   * and may answer `undefined` to fall back to config.json.
   */
  credentials?:
    | BasicCredentials
    | ((registry: string) => Promise<BasicCredentials | undefined>);
  /** Retries for network errors, 5xx and 429 (exponential backoff with jitter). Default 3. */
  retries?: number;
  /** The fetch to use; for unit tests only. */
  fetch?: typeof fetch;
  /**
   * The time one attempt of a request may take, in milliseconds, body included; positive and
   * at most a day. Default 30 000. With `retries`, it bounds how long any request can last.
   */
  timeoutMs?: number;
  /**
   * Hears of requests that wait long or are retried, to show progress. Called with a
   * `waiting` report every `slowRequestMs` while an attempt has no answer, and a `retrying`
   * report before each retry (attempt, delay, reason).
   *
   * @example
   * ```ts
   * import { RegistryClient } from "./client.ts";
   * import { describeProgress } from "./progress.ts";
   * const client = new RegistryClient({
   *   onProgress: (event) => console.error(describeProgress(event)),
   *   slowRequestMs: 3000,
   * });
   * console.log(client instanceof RegistryClient); // true
   * ```
   */
  onProgress?: ProgressListener;
  /** How long an attempt waits before `onProgress` hears of it, and how often after. Default 5000. */
  slowRequestMs?: number;
  /** The random source of the retry jitter, numbers in [0, 1); for tests. Default `Math.random`. */
  random?: () => number;
  /** The User-Agent header. Default `imgtool`. */
  userAgent?: string;
  /** Receives a line per request and per retry; secrets are redacted from it. */
  log?: (line: string) => void;
  /**
   * Where {@link RegistryClient.check} remembers what tags were: a tag seen before costs one
   * `HEAD` while its digest stays the same. Default: none.
   */
  tagCache?: TagCache;
}

/** What {@link RegistryClient.check} found out about a reference. */
export interface TagStatus {
  /** True only if the tag exists and none of the requested platforms is missing. */
  exists: boolean;
  /** The digest of the manifest or index the reference names, when it exists. */
  digest?: string;
  /** Its media type, when it exists. */
  mediaType?: string;
  /** The platforms it has, as the registry spells them (`linux/arm64/v8`). */
  platforms: Platform[];
  /** The requested platforms it does not have (all of them when the tag does not exist). */
  missing: Platform[];
}

/** A manifest as fetched: its bytes, their digest, and the parsed JSON. */
export interface FetchedManifest {
  /** `sha256:` of the bytes (or the digest asked for, which they were checked against). */
  digest: string;
  /** The media type (from `Content-Type`, else from the document). */
  mediaType: string;
  /** The size in bytes. */
  size: number;
  /** The bytes, exactly as served (digests are over these). */
  body: Uint8Array;
  /** The parsed JSON. */
  json: unknown;
}

/**
 * The manifests that refer to another one (their `subject`), and which way the registry
 * told: its referrers API (`api`), or the index the referrers tag schema keeps (`tag`).
 */
export interface Referrers {
  /** `api`: the registry has the referrers API; `tag`: it has not, the tag schema answered. */
  via: "api" | "tag";
  /** Each referrer's descriptor, with its `artifactType` and annotations; oldest first. */
  manifests: Descriptor[];
}

/** How {@link RegistryClient.pushBlobFile} may get the blob there. */
export interface PushBlobFileOptions {
  /**
   * A reference to another repository of the same registry that has the blob (the base
   * image the layer came with): a cross-repository mount from it is asked for before
   * uploading. Ignored when it is on another registry or is the same repository.
   */
  from?: string;
  /**
   * Hears how many bytes of the file were sent, and of how many, as an upload goes (from 0
   * again when an attempt is retried). It must return quickly; what it throws is ignored.
   */
  onBytesSent?: (sent: number, size: number) => void;
}

/** What {@link RegistryClient.pushBlobFile} did. */
export interface PushedBlob {
  /** The blob's digest. */
  digest: string;
  /** Its size in bytes. */
  size: number;
  /**
   * `present`: the registry had it, nothing was sent; `mounted`: linked from the `from`
   * repository; `uploaded`: the file was sent.
   */
  outcome: "present" | "mounted" | "uploaded";
}

/** The body of an upload: bytes in memory, or a file streamed from disk. */
type UploadBody =
  | { bytes: Uint8Array }
  | {
    file: { path: string; onBytesSent?: (sent: number, size: number) => void };
    size: number;
  };

/**
 * Blobs in memory from this size on are streamed over a connection of their own, as files
 * are (`./streamed_put.ts`): `fetch` would copy the body whole, more than once (a 7 MB
 * provenance statement cost some 19 MB more at its peak). Smaller ones go through `fetch`,
 * whose connections are kept and reused.
 */
const STREAMED_BYTES = 1 << 20;

/** Manifests above this size are refused, as registries refuse them. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Image config blobs above this size are refused when read for their platform. */
export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;
/** The default cap of {@link RegistryClient.getBlob}. */
export const DEFAULT_MAX_BLOB_BYTES = 64 * 1024 * 1024;
const MAX_ERROR_BODY_BYTES = 64 * 1024;

type Actions = "pull" | "pull,push";

/**
 * The registry client. One instance keeps its tokens and credentials for its lifetime, so
 * reuse it across calls.
 *
 * @example
 * ```ts
 * import { RegistryClient } from "./client.ts";
 * // A stand-in registry that has nothing, to keep the example offline.
 * const client = new RegistryClient({
 *   fetch: () => Promise.resolve(new Response(null, { status: 404 })),
 * });
 * const status = await client.check("127.0.0.1:5000/team/app:1.0", ["linux/amd64"]);
 * console.log(status); // { exists: false, platforms: [], missing: [ "linux/amd64" ] }
 * ```
 */
export class RegistryClient {
  #options: RegistryClientOptions;
  #redactor = new Redactor();
  #transport: Transport;
  #auth: Authenticator;
  #credentials = new Map<string, Promise<Credential | undefined>>();
  // Connections opened by preconnect, by origin, for the direct HEAD of check().
  #preconnected = new Map<string, Promise<Deno.Conn>>();
  // Direct HEADs sent by prefetch, by reference, until check() takes their answer.
  #prefetched = new Map<
    string,
    { origin: string; answer: Promise<string | undefined>; stop: AbortController }
  >();

  /** Make a client. */
  constructor(options: RegistryClientOptions = {}) {
    this.#options = options;
    this.#transport = new Transport({
      fetch: options.fetch,
      retries: options.retries,
      timeoutMs: options.timeoutMs,
      onProgress: options.onProgress,
      slowRequestMs: options.slowRequestMs,
      random: options.random,
      userAgent: options.userAgent,
      log: options.log,
      redactor: this.#redactor,
      insecureRegistries: options.insecureRegistries,
    });
    this.#auth = new Authenticator({
      transport: this.#transport,
      credential: (registry) => this.#credential(registry),
      redactor: this.#redactor,
      unauthorizedHint: (registry, credential) => this.#unauthorizedHint(registry, credential),
    });
  }

  /**
   * Does `reference` exist, and for which platforms? An index lists its platforms; a single
   * manifest's platform comes from its config blob (os/architecture/variant). `missing` =
   * requested platforms not present (compared after normalization, so `linux/arm64` matches
   * `arm64` + `v8`). `exists` is true only if the tag exists AND no requested platform is
   * missing. A missing tag is not an error.
   *
   * @example
   * ```ts
   * import { RegistryClient } from "./client.ts";
   * async function isPublished(client: RegistryClient): Promise<boolean> {
   *   const status = await client.check("127.0.0.1:5000/app:1.0", ["linux/amd64", "linux/arm64"]);
   *   if (status.missing.length > 0) console.log("missing:", status.missing.join(", "));
   *   return status.exists;
   * }
   * console.log(typeof isPublished); // function
   * ```
   */
  async check(reference: string, platforms: Platform[]): Promise<TagStatus> {
    const ref = parseReference(reference);
    // Bad platforms are refused before any request.
    const wanted = platforms.map((p) => ({ platform: p, normal: normalizePlatform(p) }));
    const status = (seen: SeenTag): TagStatus => {
      const have = new Set(seen.platforms.map((p) => normalizePlatform(p)));
      const missing = wanted.filter((w) => !have.has(w.normal)).map((w) => w.platform);
      return {
        exists: missing.length === 0,
        digest: seen.digest,
        mediaType: seen.mediaType,
        platforms: [...seen.platforms],
        missing,
      };
    };
    const cache = this.#options.tagCache;
    const key = formatReference(ref);
    const remembered = cache?.get(key);
    const prefetched = this.#prefetched.get(key);
    this.#prefetched.delete(key);
    if (!remembered) prefetched?.stop.abort(); // Forgotten since: no answer is trusted.
    if (remembered) {
      // The same digest is the same content: its platforms are the ones seen before.
      const direct = await (prefetched?.answer ?? this.#directDigest(ref));
      if (direct === remembered.digest) return status(remembered);
      // No direct answer: ask through the full path (authentication, retries, redirects).
      // A direct answer with another digest means the tag moved: read it below.
      if (direct === undefined) {
        const head = await this.#headManifest(ref, "pull");
        if (head === null) return { exists: false, platforms: [], missing: [...platforms] };
        if (head.digest === remembered.digest) return status(remembered);
      }
    }
    const manifest = await this.#getManifest(ref, "pull");
    if (!manifest) return { exists: false, platforms: [], missing: [...platforms] };
    const found = await this.#platformsOf(ref, manifest);
    const seen = {
      digest: manifest.digest,
      mediaType: manifest.mediaType,
      platforms: found.map(formatPlatform),
    };
    cache?.set(key, seen);
    return status(seen);
  }

  /**
   * Open a connection to the registry of `reference` now, for the one `HEAD` a later
   * {@link RegistryClient.check} of a remembered tag sends: the TCP and TLS handshakes then
   * overlap the work in between (loading the spec, hashing its files). Does nothing where
   * check would not send it directly (a proxy is configured, or a fetch was given), and for
   * a reference that does not parse. Call {@link RegistryClient.close} when done.
   *
   * @example
   * ```ts
   * import { RegistryClient } from "./client.ts";
   * const client = new RegistryClient();
   * client.preconnect("127.0.0.1:9/team/app");
   * await client.close(); // nothing listens there: the failed connection is simply dropped
   * ```
   */
  preconnect(reference: string): void {
    if (this.#options.fetch || proxyConfigured()) return;
    let origin: string;
    try {
      origin = this.#baseUrl(parseReference(reference));
    } catch {
      return; // A bad reference is reported where it is used, not here.
    }
    if (this.#preconnected.has(origin)) return;
    // A prefetch has its own connection; when it guessed the tag right, none other is needed.
    for (const prefetch of this.#prefetched.values()) if (prefetch.origin === origin) return;
    const connecting = openConnection(new URL(origin));
    // A failure shows when the connection is used (as no direct answer), or never.
    connecting.catch(() => {});
    this.#preconnected.set(origin, connecting);
  }

  /**
   * Send now the one `HEAD` that a later {@link RegistryClient.check} of `reference` sends
   * when the tag cache remembers the tag, and keep its answer for that check: the
   * registry's answer then overlaps the work in between. For a reference guessed before it
   * is known (a build asks for the tags its spec had last time, before loading the spec):
   * a guess that no check asks for costs one request, stopped by {@link RegistryClient.close}.
   * Does nothing for a tag the cache does not remember, for a reference that does not
   * parse, and where check would not send it directly (a proxy, or a fetch was given).
   *
   * @example
   * ```ts
   * import { RegistryClient } from "./client.ts";
   * import { FileTagCache } from "./tag_cache.ts";
   * const client = new RegistryClient({ tagCache: new FileTagCache(await Deno.makeTempDir()) });
   * client.prefetch("127.0.0.1:9/team/app:1.0"); // not remembered: nothing is sent
   * await client.close();
   * ```
   */
  prefetch(reference: string): void {
    if (this.#options.fetch || proxyConfigured()) return;
    let ref: Reference;
    try {
      ref = parseReference(reference);
    } catch {
      return; // A bad reference is reported where it is used, not here.
    }
    const key = formatReference(ref);
    if (this.#prefetched.has(key) || !this.#options.tagCache?.get(key)) return;
    const stop = new AbortController();
    const answer = this.#directDigest(ref, stop.signal);
    this.#prefetched.set(key, { origin: this.#baseUrl(ref), answer, stop });
  }

  /**
   * Close the connections {@link RegistryClient.preconnect} opened and no check used, and
   * stop the requests {@link RegistryClient.prefetch} sent that no check asked for.
   *
   * @example
   * ```ts
   * import { RegistryClient } from "./client.ts";
   * await new RegistryClient().close();
   * ```
   */
  async close(): Promise<void> {
    const unasked = [...this.#prefetched.values()];
    this.#prefetched.clear();
    for (const { stop } of unasked) stop.abort();
    await Promise.all(unasked.map(({ answer }) => answer));
    const open = [...this.#preconnected.values()];
    this.#preconnected.clear();
    await Promise.all(open.map((connecting) =>
      connecting.then((connection) => {
        try {
          connection.close();
        } catch {
          // Closed already.
        }
      }, () => {})
    ));
  }

  /**
   * Fetch a manifest or index (any of the OCI and Docker schema 2 types); `undefined` when
   * the registry says 404. When `reference` has a digest, the bytes are checked against it.
   *
   * @example
   * ```ts
   * import { RegistryClient } from "./client.ts";
   * async function mediaTypeOf(client: RegistryClient, reference: string) {
   *   const manifest = await client.getManifest(reference);
   *   return manifest?.mediaType ?? "absent";
   * }
   * console.log(typeof mediaTypeOf); // function
   * ```
   */
  async getManifest(reference: string): Promise<FetchedManifest | undefined> {
    return await this.#getManifest(parseReference(reference), "pull");
  }

  /**
   * Upload a manifest (at the reference's tag, or its digest); returns its digest. When the
   * reference has a digest, the bytes must have it.
   *
   * @example
   * ```ts
   * import { RegistryClient } from "./client.ts";
   * import { OCI_MANIFEST } from "./manifest.ts";
   * async function tag(client: RegistryClient, manifest: Uint8Array): Promise<string> {
   *   return await client.putManifest("127.0.0.1:5000/app:1.0", manifest, OCI_MANIFEST);
   * }
   * console.log(typeof tag); // function
   * ```
   */
  async putManifest(reference: string, body: Uint8Array, mediaType: string): Promise<string> {
    return await this.#putManifest(parseReference(reference), body, mediaType);
  }

  /**
   * Point `tag` (in the repository of `reference`) at the manifest or index `reference`
   * names: its bytes are fetched and put back under `tag` unchanged, so the digest is the
   * same and no blob moves. Returns that digest. A `reference` the registry does not have is
   * a `not-found` error.
   *
   * @example
   * ```ts
   * import { RegistryClient } from "./client.ts";
   * async function release(client: RegistryClient, built: string): Promise<string> {
   *   return await client.tag(built, "latest"); // built is e.g. 127.0.0.1:5000/app:3f2a...
   * }
   * console.log(typeof release); // function
   * ```
   */
  async tag(reference: string, tag: string): Promise<string> {
    const ref = parseReference(reference);
    const target = parseReference(`${ref.registry}/${ref.repository}:${tag}`);
    // One scope for both requests: a token server then issues one token, not two.
    const manifest = await this.#getManifest(ref, "pull,push");
    if (!manifest) {
      throw new RegistryError(
        "not-found",
        `cannot tag ${formatReference(ref)} as ${tag}: the registry does not have it`,
        { registry: ref.registry, status: 404, hint: "push the image first (build --push)" },
      );
    }
    return await this.#putManifest(target, manifest.body, manifest.mediaType);
  }

  /**
   * The manifests in the repository of `reference` that refer to the manifest `digest`
   * (their `subject`): from the registry's referrers API (`GET /v2/<name>/referrers/<digest>`)
   * where it has one, else from the index under the referrers tag schema's tag
   * (`sha256-<hex>`), the fallback the OCI distribution spec gives clients. A registry
   * without the API answers it 404. None at all is an empty list; a tag that holds something
   * other than an index counts as none, as the spec says.
   *
   * @example
   * ```ts
   * import { RegistryClient } from "./client.ts";
   * async function attached(client: RegistryClient, image: string, digest: string) {
   *   const { via, manifests } = await client.referrers(image, digest);
   *   return `${manifests.length} artifact(s), found through the ${via}`;
   * }
   * console.log(typeof attached); // function
   * ```
   */
  async referrers(reference: string, digest: string): Promise<Referrers> {
    const ref = parseReference(reference);
    checkDigest(digest);
    const path = `/v2/${ref.repository}/referrers/${digest}`;
    const sent = await this.#request(ref, "pull", "GET", path, { headers: { accept: OCI_INDEX } });
    // 404 is what a registry without the API answers (405 from some that route it apart).
    if (sent.response.status !== 404 && sent.response.status !== 405) {
      if (!sent.response.ok) throw await this.#fail(ref, sent, `GET referrers of ${digest}`);
      const body = await this.#readBody(ref, sent, MAX_MANIFEST_BYTES, `referrers of ${digest}`);
      const entries = indexEntries(parseJson(body));
      if (typeof entries === "string") {
        throw this.#protocol(ref, `the referrers of ${digest} are malformed: ${entries}`);
      }
      return { via: "api", manifests: entries };
    }
    await sent.response.body?.cancel();
    const index = await this.#referrersIndex(ref, digest, "pull");
    return { via: "tag", manifests: index ? indexEntries(index.json) as Descriptor[] : [] };
  }

  /**
   * Add `descriptor` (an artifact whose `subject` is the manifest `subject`) to the index the
   * referrers tag schema keeps for `subject` in the repository of `reference`, for registries
   * without the referrers API: the index is read (or started, when the tag is missing), the
   * descriptor appended unless it is listed already (other entries kept as they are), and
   * put back. Other clients may write the same tag at once (the spec leaves that race to
   * clients): the tag is read again after writing, and the write repeated (three tries at
   * most) until it lists the descriptor. A tag holding something other than an index is an
   * error, and is left alone.
   *
   * @example
   * ```ts
   * import { RegistryClient } from "./client.ts";
   * import type { Descriptor } from "./manifest.ts";
   * async function attach(client: RegistryClient, image: string, subject: string, artifact: Descriptor) {
   *   await client.addReferrer(image, subject, artifact); // image: e.g. 127.0.0.1:5000/app
   * }
   * console.log(typeof attach); // function
   * ```
   */
  async addReferrer(reference: string, subject: string, descriptor: Descriptor): Promise<void> {
    const ref = parseReference(reference);
    checkDigest(subject);
    const target = { ...ref, tag: referrersTag(subject), digest: undefined };
    for (let attempt = 1;; attempt++) {
      const index = await this.#referrersIndex(ref, subject, "pull,push");
      const entries = index ? ((index.json as { manifests: unknown[] }).manifests) : [];
      const listed = entries.some((entry) =>
        (entry as { digest?: unknown })?.digest === descriptor.digest
      );
      if (listed) return;
      if (attempt > 3) {
        throw new RegistryError(
          "protocol",
          `the referrers of ${subject} in ${ref.registry}/${ref.repository} (tag ` +
            `${target.tag}) lost ${descriptor.digest} three times: another client keeps ` +
            "rewriting them",
          { registry: ref.registry, hint: "push again once the other client is done" },
        );
      }
      const updated = {
        ...(index?.json as Record<string, unknown> ?? { schemaVersion: 2 }),
        mediaType: OCI_INDEX,
        manifests: [...entries, descriptor],
      };
      const body = new TextEncoder().encode(JSON.stringify(updated));
      await this.#putManifest(target, body, OCI_INDEX);
    }
  }

  /**
   * Make `target` an OCI image index over the given per-platform manifests, which live in
   * the same repository: each `reference` is a full reference to that repository, or just
   * `:tag` or `@sha256:...`. Fetches each one's digest/size/mediaType, checks it is a
   * single-platform manifest whose config agrees with the platform given, writes an
   * `application/vnd.oci.image.index.v1+json` with platform objects, and returns the index
   * digest.
   *
   * @example
   * ```ts
   * import { RegistryClient } from "./client.ts";
   * async function publish(client: RegistryClient): Promise<string> {
   *   return await client.putIndex("127.0.0.1:5000/app:1.0", [
   *     { reference: ":1.0-amd64", platform: "linux/amd64" },
   *     { reference: "127.0.0.1:5000/app:1.0-arm64", platform: "linux/arm64" },
   *   ]);
   * }
   * console.log(typeof publish); // function
   * ```
   */
  async putIndex(
    target: string,
    manifests: { reference: string; platform: Platform }[],
  ): Promise<string> {
    const targetRef = parseReference(target);
    if (targetRef.digest !== undefined) {
      throw new UsageError(`cannot write an index at ${target}: it names a digest, not a tag`, {
        hint: "give the index a tag, e.g. registry/app:1.0",
      });
    }
    if (manifests.length === 0) {
      throw new UsageError(`cannot write an empty index at ${target}`, {
        hint: "list at least one per-platform manifest",
      });
    }
    const seen = new Map<string, string>();
    const planned = manifests.map(function plan(m) {
      const platform = parsePlatform(m.platform);
      const normal = normalizePlatform(platform);
      const earlier = seen.get(normal);
      if (earlier !== undefined) {
        throw new UsageError(
          `index ${target} lists platform ${m.platform} twice (${earlier} and ${m.reference})`,
          { hint: "give each platform one manifest" },
        );
      }
      seen.set(normal, m.reference);
      return { ...m, platformObject: platform, ref: childReference(targetRef, m.reference) };
    });
    const entries = await Promise.all(planned.map(async (m): Promise<Descriptor> => {
      const manifest = await this.#getManifest(m.ref, "pull,push");
      const where = `${m.reference} (for ${m.platform})`;
      if (!manifest) {
        throw new RegistryError(
          "not-found",
          `cannot write index ${target}: manifest ${where} is not in ${targetRef.registry}/` +
            `${targetRef.repository}`,
          {
            registry: targetRef.registry,
            status: 404,
            hint: "push the per-platform image first, with that tag or digest",
          },
        );
      }
      if (manifestKind(manifest.mediaType) !== "manifest") {
        throw new UsageError(
          `cannot write index ${target}: ${where} is a ${manifest.mediaType}, not a ` +
            `single-platform image manifest`,
          { hint: "list the per-platform manifests themselves, not an index" },
        );
      }
      const [actual] = await this.#platformsOf(m.ref, manifest);
      if (actual && normalizePlatform(actual) !== normalizePlatform(m.platformObject)) {
        throw new UsageError(
          `cannot write index ${target}: ${m.reference} is a ${formatPlatform(actual)} image, ` +
            `not ${m.platform}`,
          { hint: "pair each manifest with the platform its image config declares" },
        );
      }
      return {
        mediaType: manifest.mediaType,
        digest: manifest.digest,
        size: manifest.size,
        platform: m.platformObject,
      };
    }));
    const index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries };
    const body = new TextEncoder().encode(JSON.stringify(index, null, 2));
    return await this.#putManifest(targetRef, body, OCI_INDEX);
  }

  /**
   * Upload a blob to the repository of `reference` (its tag or digest is ignored) with the
   * standard monolithic upload (POST, then PUT with the digest). Skips the upload when the
   * registry already has it. Returns its digest and size.
   *
   * @example
   * ```ts
   * import { RegistryClient } from "./client.ts";
   * async function uploadConfig(client: RegistryClient, config: object) {
   *   const bytes = new TextEncoder().encode(JSON.stringify(config));
   *   return await client.pushBlob("127.0.0.1:5000/app", bytes); // { digest, size }
   * }
   * console.log(typeof uploadConfig); // function
   * ```
   */
  async pushBlob(reference: string, bytes: Uint8Array): Promise<{ digest: string; size: number }> {
    const ref = parseReference(reference);
    const digest = await sha256Digest(bytes);
    if (await this.#hasBlob(ref, digest, "pull,push")) return { digest, size: bytes.length };
    await this.#upload(ref, digest, { bytes });
    return { digest, size: bytes.length };
  }

  /**
   * Whether the repository of `reference` (its tag or digest is ignored) has the blob
   * `digest`: one `HEAD`. A registry that answers neither 200 nor 404 is an error.
   *
   * @example
   * ```ts
   * import { RegistryClient } from "./client.ts";
   * const client = new RegistryClient({
   *   fetch: () => Promise.resolve(new Response(null, { status: 404 })),
   * });
   * const digest = `sha256:${"0".repeat(64)}`;
   * console.log(await client.hasBlob("127.0.0.1:5000/team/app", digest)); // false
   * ```
   */
  async hasBlob(reference: string, digest: string): Promise<boolean> {
    const ref = parseReference(reference);
    checkBlobDigest(digest);
    return await this.#hasBlob(ref, digest, "pull");
  }

  /**
   * Upload the blob in the file `blob.path` (`blob.size` bytes, digest `blob.digest`) to the
   * repository of `reference`, streaming it from disk, never holding it in memory:
   * 1. `HEAD`: a blob the registry has is not sent again (`present`);
   * 2. with `options.from`, a reference to another repository of the same registry that
   *    has the blob (the base image), a cross-repository mount is asked for: 201 means the
   *    registry linked it (`mounted`); 202 means it would not (the source is unknown to it,
   *    or not readable with these credentials) and opened an upload instead, which is used;
   * 3. else a monolithic upload (`uploaded`): `POST`, then `PUT ?digest=` with the file as
   *    the body and its `Content-Length`.
   * A failed `PUT` is retried with a new session, the file opened again, within the
   * client's `retries`; `onBytesSent` hears the bytes sent of each attempt. The registry's
   * answer must be a success naming the same digest (`Docker-Content-Digest`), when it names
   * one. The file must keep its size and digest while it is sent: else the upload is broken
   * off before its last byte and the error names the file.
   *
   * @example
   * ```ts
   * import { RegistryClient } from "./client.ts";
   * import type { LayerBlob } from "../layer_blob.ts";
   * async function pushLayer(client: RegistryClient, layer: LayerBlob) {
   *   const pushed = await client.pushBlobFile("127.0.0.1:5000/team/app", layer, {
   *     from: "127.0.0.1:5000/library/python:3.12",
   *     onBytesSent: (sent, size) => console.error(`${sent} of ${size} bytes`),
   *   });
   *   return pushed.outcome; // "present", "mounted" or "uploaded"
   * }
   * console.log(typeof pushLayer); // function
   * ```
   */
  async pushBlobFile(
    reference: string,
    blob: { path: string; digest: string; size: number },
    options: PushBlobFileOptions = {},
  ): Promise<PushedBlob> {
    const ref = parseReference(reference);
    const { path, digest, size } = blob;
    checkBlobDigest(digest);
    if (!digest.startsWith("sha256:")) {
      throw new UsageError(`pushBlobFile(${path}) needs a sha256 digest, not ${digest}`, {
        hint: "name the blob by its sha256 digest",
      });
    }
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new UsageError(`pushBlobFile(${path}): the size ${size} is not a number of bytes`, {
        hint: "give the size of the file in bytes",
      });
    }
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(path);
    } catch (error) {
      throw systemError(error, { doing: `uploading ${path}` }) ?? error;
    }
    if (!info.isFile || info.size !== size) {
      throw new BuildError(
        `cannot upload ${path} as blob ${digest}: ` +
          (info.isFile
            ? `it has ${info.size} bytes, not the ${size} announced`
            : "it is not a file"),
        { hint: "the file changed after it was written: build again" },
      );
    }
    const result = (outcome: PushedBlob["outcome"]): PushedBlob => ({ digest, size, outcome });
    if (await this.#hasBlob(ref, digest, "pull,push")) return result("present");
    let mountFrom: string | undefined;
    if (options.from !== undefined) {
      const from = parseReference(options.from);
      if (from.registry === ref.registry && from.repository !== ref.repository) {
        mountFrom = from.repository;
      }
    }
    const file = { path, onBytesSent: options.onBytesSent };
    return result(await this.#upload(ref, digest, { file, size }, mountFrom));
  }

  /**
   * Download a blob from the repository of `reference`, checked against its digest and
   * capped at `maxBytes` (default 64 MiB).
   *
   * @example
   * ```ts
   * import { RegistryClient } from "./client.ts";
   * async function readConfig(client: RegistryClient, digest: string): Promise<unknown> {
   *   const bytes = await client.getBlob("127.0.0.1:5000/app", digest, { maxBytes: 1 << 20 });
   *   return JSON.parse(new TextDecoder().decode(bytes));
   * }
   * console.log(typeof readConfig); // function
   * ```
   */
  async getBlob(
    reference: string,
    digest: string,
    options: { maxBytes?: number } = {},
  ): Promise<Uint8Array> {
    const ref = parseReference(reference);
    if (!isDigest(digest)) {
      throw new UsageError(`${JSON.stringify(digest)} is not a blob digest`, {
        hint: "a digest is sha256: followed by 64 hex characters",
      });
    }
    return await this.#getBlob(ref, digest, options.maxBytes ?? DEFAULT_MAX_BLOB_BYTES, "pull");
  }

  /**
   * How the image `reference` runs on `platform`: the user, working directory and
   * environment of its config. For an index, the entry for the platform is read; a
   * single-platform image is read whatever its platform. `undefined` when the registry does
   * not have the image; an index without the platform is an error that names the ones it has.
   *
   * @example
   * ```ts
   * import { RegistryClient } from "./client.ts";
   * async function baseUser(client: RegistryClient, base: string) {
   *   return (await client.imageConfig(base, "linux/amd64"))?.user ?? "root";
   * }
   * console.log(typeof baseUser); // function
   * ```
   */
  async imageConfig(reference: string, platform: Platform): Promise<ImageRunConfig | undefined> {
    const ref = parseReference(reference);
    let manifest = await this.#getManifest(ref, "pull");
    if (!manifest) return undefined;
    if (manifestKind(manifest.mediaType) === "index") {
      const entries = indexEntries(manifest.json);
      if (typeof entries === "string") {
        throw this.#protocol(ref, `the index ${formatReference(ref)} is malformed: ${entries}`);
      }
      const wanted = normalizePlatform(platform);
      const entry = entries.find((e) => e.platform && normalizePlatform(e.platform) === wanted);
      if (!entry) {
        const have = indexPlatforms(entries).map(formatPlatform).join(", ") || "none";
        throw new RegistryError(
          "not-found",
          `${formatReference(ref)} has no image for ${platform} (it has: ${have})`,
          { registry: ref.registry, hint: "build for a platform the base image has" },
        );
      }
      const child = { ...ref, tag: undefined, digest: entry.digest };
      manifest = await this.#getManifest(child, "pull");
      if (!manifest) {
        throw this.#protocol(
          ref,
          `the index ${formatReference(ref)} names ${entry.digest}, ` +
            "which the registry does not have",
        );
      }
    }
    const config = manifestConfig(manifest.json);
    if (typeof config === "string") {
      throw this.#protocol(ref, `the manifest ${formatReference(ref)} is malformed: ${config}`);
    }
    const bytes = await this.#getBlob(ref, config.digest, MAX_CONFIG_BYTES, "pull");
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      throw this.#protocol(ref, `the config of ${formatReference(ref)} is not JSON`);
    }
    return runtimeConfig(json);
  }

  // ---- internals ----

  /** `HEAD` a blob: true on 200, false on 404, an error otherwise. */
  async #hasBlob(ref: Reference, digest: string, actions: Actions): Promise<boolean> {
    const head = await this.#request(ref, actions, "HEAD", `/v2/${ref.repository}/blobs/${digest}`);
    await head.response.body?.cancel();
    if (head.response.ok) return true;
    if (head.response.status === 404) return false;
    throw await this.#fail(ref, head, `HEAD blob ${digest}`);
  }

  /**
   * Upload a blob the registry lacks: a session (a mount from `mountFrom` first, when
   * given), then one `PUT` of the whole body. The `PUT` is not retried alone (an upload
   * session may not survive a failed `PUT`): on a failure worth retrying, start over with a
   * new session, within the same retry budget.
   */
  async #upload(
    ref: Reference,
    digest: string,
    body: UploadBody,
    mountFrom?: string,
  ): Promise<"mounted" | "uploaded"> {
    const attempts = this.#transport.retries + 1;
    const startedAt = Date.now();
    for (let attempt = 0;; attempt++) {
      const session = await this.#startUpload(ref, digest, attempt === 0 ? mountFrom : undefined);
      if (session === "mounted") return "mounted";
      const uploadUrl = new URL(session);
      uploadUrl.searchParams.set("digest", digest);
      const retry = async (reason: string, retryAfter?: string | null) => {
        await this.#transport.pauseBeforeRetry({
          method: "PUT",
          url: uploadUrl,
          attempt,
          attempts,
          startedAt,
          reason: `${reason}; starting a new upload`,
          retryAfter,
        });
      };
      this.#checkUploadUrl(ref, uploadUrl);
      let sent: Exchange | "renewed";
      try {
        sent = "bytes" in body && body.bytes.length < STREAMED_BYTES
          ? await this.#request(ref, "pull,push", "PUT", uploadUrl, {
            headers: { "content-type": "application/octet-stream" },
            body: body.bytes,
            retry: false,
          })
          : await this.#putFile(ref, uploadUrl, digest, body, attempt + 1 < attempts);
      } catch (error) {
        if (
          error instanceof RegistryError && error.kind === "unreachable" && attempt + 1 < attempts
        ) {
          await retry("failed: no usable answer");
          continue;
        }
        throw error;
      }
      if (sent === "renewed") {
        await retry("answered 401 (the token expired, a new one was got)");
        continue;
      }
      const status = sent.response.status;
      if (status === 201 || status === 204 || status === 200) {
        await sent.response.body?.cancel();
        this.#checkStoredDigest(ref, sent, digest, "upload");
        return "uploaded";
      }
      if ((status >= 500 || status === 429) && attempt + 1 < attempts) {
        await sent.response.body?.cancel();
        await retry(`answered ${status}`, sent.response.headers.get("retry-after"));
        continue;
      }
      throw await this.#fail(ref, sent, `upload blob ${digest}`);
    }
  }

  /**
   * Open an upload session (`POST .../blobs/uploads/`) and return its URL; with
   * `mountFrom`, ask to mount the blob from that repository instead: `mounted` when the
   * registry did (201). A registry that refuses the mount outright (some answer 401, 403 or
   * 404 when the source repository is not readable) gets a plain `POST` after it.
   */
  async #startUpload(
    ref: Reference,
    digest: string,
    mountFrom: string | undefined,
  ): Promise<string | "mounted"> {
    const uploads = `/v2/${ref.repository}/blobs/uploads/`;
    const path = mountFrom === undefined
      ? uploads
      : `${uploads}?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(mountFrom)}`;
    const started = await this.#request(ref, "pull,push", "POST", path);
    const status = started.response.status;
    if (mountFrom !== undefined && status === 201) {
      await started.response.body?.cancel();
      this.#checkStoredDigest(ref, started, digest, `mount from ${mountFrom}`);
      return "mounted";
    }
    if (mountFrom !== undefined && status !== 202 && status < 500 && status !== 429) {
      await started.response.body?.cancel();
      this.#transport.log(
        `registry ${ref.registry} answered the mount of ${digest} from ${mountFrom} with ` +
          `${status}; uploading it instead`,
      );
      return await this.#startUpload(ref, digest, undefined);
    }
    const location = started.response.headers.get("location");
    if (status !== 202 || !location) {
      if (status === 202) {
        await started.response.body?.cancel();
        throw new RegistryError(
          "protocol",
          `registry ${ref.registry} started an upload to ${ref.repository} without a Location`,
          { registry: ref.registry, hint: "check the registry (or the proxy in front of it)" },
        );
      }
      throw await this.#fail(ref, started, "start a blob upload");
    }
    await started.response.body?.cancel();
    return new URL(location, started.url).href;
  }

  /** A registry's `Docker-Content-Digest` for a blob it stored must be the blob's. */
  #checkStoredDigest(ref: Reference, sent: Exchange, digest: string, what: string): void {
    const stored = sent.response.headers.get("docker-content-digest");
    if (stored && stored !== digest) {
      throw this.#protocol(
        ref,
        `registry ${ref.registry} answered the ${what} of blob ${digest} to ${ref.repository} ` +
          `naming another digest, ${stored}`,
      );
    }
  }

  /**
   * `PUT` a file as the body of an upload (see {@link putFile}), with the credentials of the
   * registry when the URL is the registry's own, none elsewhere; a redirect (307, 308) is
   * followed with the file sent again, under the rules the transport applies to others.
   * `renewed` when the registry refused the token (it can expire during a long upload) and
   * `mayRenew` allowed getting a new one: the caller starts over with a new session.
   */
  async #putFile(
    ref: Reference,
    uploadUrl: URL,
    digest: string,
    body: UploadBody,
    mayRenew: boolean,
  ): Promise<Exchange | "renewed"> {
    const origin = this.#baseUrl(ref);
    const scope = repositoryScope(ref.repository, "pull,push");
    let url = uploadUrl;
    for (let hop = 0;; hop++) {
      this.#checkUploadUrl(ref, url);
      const toRegistry = url.origin === origin;
      const headers: Record<string, string> = {
        "content-type": "application/octet-stream",
        "user-agent": this.#transport.userAgent,
      };
      const authorization = toRegistry
        ? await this.#auth.authorization(ref.registry, origin, scope)
        : undefined;
      if (authorization) headers.authorization = authorization;
      let response: Response;
      try {
        response = await putFile({
          url,
          headers,
          ...("bytes" in body
            ? { path: `blob ${digest}`, bytes: body.bytes, size: body.bytes.length }
            : { path: body.file.path, size: body.size }),
          digest,
          timeoutMs: this.#transport.timeoutMs,
          onBytesSent: (sent) => {
            if ("bytes" in body) return;
            try {
              body.file.onBytesSent?.(sent, body.size);
            } catch {
              // A listener's failure must not fail the upload it reports on.
            }
          },
          fetch: this.#options.fetch ?? (proxyConfigured() ? fetch : undefined),
        });
      } catch (error) {
        if (!(error instanceof UploadConnectionError)) throw error;
        this.#transport.log(`PUT ${displayUrl(url)} failed: ${error.message}`);
        throw this.#transport.unreachable(ref.registry, "PUT", url, 1, error);
      }
      this.#transport.log(`PUT ${displayUrl(url)} -> ${response.status}`);
      const sent = { response, attempts: 1, url };
      if (response.status === 401) {
        if (!toRegistry) {
          await response.body?.cancel();
          throw this.#foreignRefusal(ref, "PUT", uploadUrl, url);
        }
        if (!mayRenew) return sent;
        const challenge = response.headers.get("www-authenticate");
        await response.body?.cancel();
        await this.#auth.answerChallenge(ref.registry, origin, scope, challenge);
        return "renewed";
      }
      if (response.status !== 307 && response.status !== 308) return sent;
      const location = response.headers.get("location");
      await response.body?.cancel();
      if (!location || hop >= 10) {
        throw this.#protocol(
          ref,
          `PUT ${displayUrl(uploadUrl)} was redirected ${
            location ? "more than 10 times" : "without a Location"
          }`,
        );
      }
      url = new URL(location, url);
    }
  }

  /** An upload URL the registry named: HTTPS, or plain HTTP where allowed; no user info. */
  #checkUploadUrl(ref: Reference, url: URL): void {
    const plain = url.protocol === "http:" && this.#transport.plainHttpAllowed(url.host);
    if ((url.protocol !== "https:" && !plain) || url.username !== "" || url.password !== "") {
      throw this.#protocol(
        ref,
        `registry ${ref.registry} named ${displayUrl(url)} to upload to, which is not HTTPS ` +
          `(or has a user name in it); imgtool does not send blobs there`,
      );
    }
  }

  /** Ask for the manifest `ref` names, accepting every type this client reads. */
  async #manifestRequest(ref: Reference, actions: Actions, method: "GET" | "HEAD") {
    const target = referenceTarget(ref);
    const path = `/v2/${ref.repository}/manifests/${target}`;
    const sent = await this.#request(ref, actions, method, path, {
      headers: { accept: MANIFEST_ACCEPT },
    });
    return { sent, target };
  }

  /**
   * `HEAD` a manifest: `null` when the registry says 404, else the digest it names in
   * `Docker-Content-Digest` (`undefined` when it names none).
   */
  async #headManifest(ref: Reference, actions: Actions): Promise<{ digest?: string } | null> {
    const { sent, target } = await this.#manifestRequest(ref, actions, "HEAD");
    await sent.response.body?.cancel();
    if (sent.response.status === 404) return null;
    if (!sent.response.ok) throw await this.#fail(ref, sent, `HEAD manifest ${target}`);
    const digest = sent.response.headers.get("docker-content-digest") ?? undefined;
    return { digest: digest && isDigest(digest) ? digest : undefined };
  }

  /**
   * The digest `ref` names, asked in one anonymous `HEAD` on a connection of its own;
   * `undefined` unless the registry answered 200 with one. Only such an answer counts:
   * anything else (401, 404, a redirect, an error) is no answer, and the caller asks again
   * through the full path. Skipped when a proxy is configured (fetch honours it, a direct
   * connection would not) and for a client given its own fetch.
   */
  async #directDigest(ref: Reference, signal?: AbortSignal): Promise<string | undefined> {
    if (this.#options.fetch || proxyConfigured()) return undefined;
    const origin = this.#baseUrl(ref);
    const url = new URL(`${origin}/v2/${ref.repository}/manifests/${referenceTarget(ref)}`);
    const connection = this.#preconnected.get(origin);
    this.#preconnected.delete(origin);
    const answer = await directHead(url, {
      headers: { accept: MANIFEST_ACCEPT, "user-agent": this.#transport.userAgent },
      timeoutMs: this.#transport.timeoutMs,
      connection,
      signal,
    });
    const outcome = answer ? `-> ${answer.status}` : signal?.aborted ? "stopped" : "failed";
    this.#transport.log(`HEAD ${displayUrl(url)} ${outcome} (direct connection)`);
    const digest = answer?.status === 200 ? answer.headers.get("docker-content-digest") : undefined;
    return digest && isDigest(digest) ? digest : undefined;
  }

  async #getManifest(ref: Reference, actions: Actions): Promise<FetchedManifest | undefined> {
    const { sent, target } = await this.#manifestRequest(ref, actions, "GET");
    if (sent.response.status === 404) {
      await sent.response.body?.cancel();
      return undefined;
    }
    if (!sent.response.ok) throw await this.#fail(ref, sent, `GET manifest ${target}`);
    const body = await this.#readBody(ref, sent, MAX_MANIFEST_BYTES, `manifest ${target}`);
    let digest = await sha256Digest(body);
    if (ref.digest !== undefined) {
      if (!(await digestMatches(body, ref.digest))) {
        throw this.#protocol(
          ref,
          `the manifest served for ${formatReference(ref)} does not match its digest`,
        );
      }
      digest = ref.digest;
    }
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder().decode(body));
    } catch {
      throw this.#protocol(ref, `the manifest of ${formatReference(ref)} is not JSON`);
    }
    const mediaType = detectMediaType(sent.response.headers.get("content-type"), json);
    return { digest, mediaType, size: body.length, body, json };
  }

  /**
   * The index under the referrers tag schema's tag of `subject`; `undefined` when the tag is
   * missing. Something else under the tag is a protocol error when writing, none when reading.
   */
  async #referrersIndex(
    ref: Reference,
    subject: string,
    actions: Actions,
  ): Promise<FetchedManifest | undefined> {
    const tagged = { ...ref, tag: referrersTag(subject), digest: undefined };
    const index = await this.#getManifest(tagged, actions);
    if (!index) return undefined;
    if (manifestKind(index.mediaType) === "index" && typeof indexEntries(index.json) !== "string") {
      return index;
    }
    if (actions === "pull") return undefined;
    throw this.#protocol(
      ref,
      `${formatReference(tagged)} should hold the referrers of ${subject} (an image index), ` +
        `but holds a ${index.mediaType}`,
    );
  }

  async #putManifest(ref: Reference, body: Uint8Array, mediaType: string): Promise<string> {
    if (body.length > MAX_MANIFEST_BYTES) {
      throw new UsageError(
        `the manifest for ${formatReference(ref)} is ${body.length} bytes; registries refuse ` +
          `manifests over 4 MiB`,
        { hint: "use fewer layers or annotations" },
      );
    }
    if (!mediaType) {
      throw new UsageError(`putManifest(${formatReference(ref)}) needs a media type`);
    }
    const digest = await sha256Digest(body);
    if (ref.digest !== undefined && !(await digestMatches(body, ref.digest))) {
      throw new UsageError(
        `the manifest does not have the digest in ${formatReference(ref)} (it is ${digest})`,
        { hint: "put it by tag, or by its own digest" },
      );
    }
    const target = referenceTarget(ref);
    const sent = await this.#request(
      ref,
      "pull,push",
      "PUT",
      `/v2/${ref.repository}/manifests/${target}`,
      {
        headers: { "content-type": mediaType },
        body,
      },
    );
    if (!sent.response.ok) throw await this.#fail(ref, sent, `PUT manifest ${target}`);
    await sent.response.body?.cancel();
    const stored = sent.response.headers.get("docker-content-digest");
    if (stored && stored !== digest && stored !== ref.digest) {
      this.#transport.log(
        `registry ${ref.registry} reports digest ${stored} for a manifest whose bytes are ${digest}`,
      );
    }
    return ref.digest ?? digest;
  }

  async #getBlob(
    ref: Reference,
    digest: string,
    maxBytes: number,
    actions: Actions,
  ): Promise<Uint8Array> {
    const sent = await this.#request(ref, actions, "GET", `/v2/${ref.repository}/blobs/${digest}`);
    if (!sent.response.ok) throw await this.#fail(ref, sent, `GET blob ${digest}`);
    const bytes = await this.#readBody(ref, sent, maxBytes, `blob ${digest}`);
    if (!(await digestMatches(bytes, digest))) {
      throw this.#protocol(
        ref,
        `blob ${digest} of ${ref.registry}/${ref.repository} does not match its digest`,
      );
    }
    return bytes;
  }

  /** The platforms of a fetched manifest: an index's entries, or an image's config. */
  async #platformsOf(ref: Reference, manifest: FetchedManifest): Promise<PlatformObject[]> {
    const kind = manifestKind(manifest.mediaType);
    if (kind === "index") {
      const entries = indexEntries(manifest.json);
      if (typeof entries === "string") {
        throw this.#protocol(ref, `the index ${formatReference(ref)} is malformed: ${entries}`);
      }
      return indexPlatforms(entries);
    }
    if (kind === "manifest") {
      const config = manifestConfig(manifest.json);
      if (typeof config === "string") {
        throw this.#protocol(ref, `the manifest ${formatReference(ref)} is malformed: ${config}`);
      }
      const bytes = await this.#getBlob(ref, config.digest, MAX_CONFIG_BYTES, "pull");
      let json: unknown;
      try {
        json = JSON.parse(new TextDecoder().decode(bytes));
      } catch {
        // Not an image config (an artifact's config can be anything): no platform.
        return [];
      }
      const platform = configPlatform(json);
      return platform ? [platform] : [];
    }
    throw this.#protocol(
      ref,
      `${formatReference(ref)} is a ${manifest.mediaType}, which this client does not read`,
    );
  }

  /**
   * Send a request to the registry of `ref`, answering one auth challenge if needed.
   * Credentials go only to the registry's own origin, and only a 401 that origin sent
   * itself (judged by the URL that answered, after redirects) is answered: a 401 from a
   * host the request was sent or redirected to is an error naming that host.
   */
  async #request(
    ref: Reference,
    actions: Actions,
    method: string,
    path: string | URL,
    init: { headers?: Record<string, string>; body?: Uint8Array; retry?: boolean } = {},
  ): Promise<Exchange> {
    const origin = this.#baseUrl(ref);
    const url = typeof path === "string" ? new URL(`${origin}${path}`) : path;
    const toRegistry = url.origin === origin;
    const scope = repositoryScope(ref.repository, actions);
    const headers = new Headers(init.headers);
    let authorization = toRegistry
      ? await this.#auth.authorization(ref.registry, origin, scope)
      : undefined;
    for (let round = 0;; round++) {
      if (authorization) headers.set("authorization", authorization);
      const sent = await this.#transport.send(url, { method, headers, body: init.body }, {
        registry: ref.registry,
        retry: init.retry,
      });
      if (sent.response.status !== 401) return sent;
      if (sent.url.origin !== origin) {
        await sent.response.body?.cancel();
        throw this.#foreignRefusal(ref, method, url, sent.url);
      }
      if (round > 0 || !toRegistry) return sent;
      const challenge = sent.response.headers.get("www-authenticate");
      await sent.response.body?.cancel();
      authorization = await this.#auth.answerChallenge(ref.registry, origin, scope, challenge);
    }
  }

  /** The error for a 401 from a host that is not the registry: no credentials go there. */
  #foreignRefusal(ref: Reference, method: string, asked: URL, answered: URL): RegistryError {
    const how = asked.origin === answered.origin
      ? `the registry sent imgtool there`
      : `registry ${ref.registry} redirected ${method} ${displayUrl(asked)} there`;
    return new RegistryError(
      "unauthorized",
      this.#redactor.redact(
        `${answered.host} refused ${method} ${displayUrl(answered)} (401 Unauthorized); ` +
          `${how}, and imgtool sends the credentials of ${ref.registry} to no other host`,
      ),
      {
        registry: ref.registry,
        status: 401,
        hint: `the registry should send its storage a URL that needs no credentials (a ` +
          `presigned URL): check the storage settings of ${ref.registry} (or the proxy in ` +
          `front of it)`,
      },
    );
  }

  #baseUrl(ref: Reference): string {
    const plain = this.#transport.plainHttpAllowed(ref.host) ||
      this.#transport.plainHttpAllowed(ref.registry);
    // As URL.origin spells it (host in lower case, no default port), so that it compares
    // equal to the origin of the URLs made from it.
    return new URL(`${plain ? "http" : "https"}://${ref.host}`).origin;
  }

  async #readBody(
    ref: Reference,
    sent: Exchange,
    maxBytes: number,
    what: string,
  ): Promise<Uint8Array> {
    const limit = maxBytes >= 1024 * 1024 ? `${maxBytes / (1024 * 1024)} MiB` : `${maxBytes} bytes`;
    const tooBig = (): never => {
      throw this.#protocol(
        ref,
        `${what} of ${ref.registry}/${ref.repository} is larger than ${limit}`,
      );
    };
    const declared = Number(sent.response.headers.get("content-length") ?? "NaN");
    if (Number.isFinite(declared) && declared > maxBytes) {
      await sent.response.body?.cancel();
      tooBig();
    }
    try {
      return await readCapped(sent.response.body, maxBytes, tooBig);
    } catch (error) {
      if (error instanceof RegistryError) throw error;
      throw this.#transport.unreachable(ref.registry, "GET", sent.url, sent.attempts, error);
    }
  }

  /** The error for an HTTP answer we cannot use, with the registry's own error codes. */
  async #fail(ref: Reference, sent: Exchange, what: string): Promise<RegistryError> {
    const { response, attempts } = sent;
    const status = response.status;
    let detail = "";
    try {
      const bytes = await readCapped(response.body, MAX_ERROR_BODY_BYTES, function tooBig(): never {
        throw new Error("error body too large");
      });
      detail = registryErrorDetail(new TextDecoder().decode(bytes));
    } catch {
      // An unreadable error body leaves the status to speak.
    }
    const name = `${ref.registry}/${ref.repository}`;
    // An answer from a host the registry redirected to says so: it is not the registry's own.
    const elsewhere = sent.url.origin === this.#baseUrl(ref) ? "" : ` from ${sent.url.host}`;
    const said = `${status}${response.statusText ? ` ${response.statusText}` : ""}${elsewhere}${
      detail ? `: ${detail}` : ""
    }`;
    const redact = (text: string) => this.#redactor.redact(text);
    const options = { registry: ref.registry, status };
    if (status === 401) {
      const credential = await this.#credential(ref.registry);
      return new RegistryError(
        "unauthorized",
        redact(`registry ${ref.registry} refused ${what} in ${ref.repository} (${said})`),
        { ...options, hint: redact(this.#unauthorizedHint(ref.registry, credential)) },
      );
    }
    if (status === 403) {
      const credential = await this.#credential(ref.registry);
      return new RegistryError(
        "denied",
        redact(`registry ${ref.registry} denied ${what} in ${ref.repository} (${said})`),
        {
          ...options,
          hint: credential
            ? `the account from ${credential.source} lacks permission on ${name}: ask for access`
            : `${name} needs an account with access: run \`docker login ${ref.registry}\``,
        },
      );
    }
    if (status === 404) {
      return new RegistryError("not-found", redact(`${what}: not found in ${name} (${said})`), {
        ...options,
        hint: `check the repository name and that the content was pushed to ${ref.registry}`,
      });
    }
    if (status >= 500 || status === 429) {
      return new RegistryError(
        "unreachable",
        redact(
          `registry ${ref.registry} failed to ${what} in ${ref.repository}: it answered ${said} ` +
            `after ${attempts} attempt${attempts === 1 ? "" : "s"}`,
        ),
        {
          ...options,
          hint: `the registry is failing or overloaded; check its status and try again`,
        },
      );
    }
    return new RegistryError(
      "protocol",
      redact(`registry ${ref.registry} answered ${what} in ${ref.repository} with ${said}`),
      { ...options, hint: "this may be a registry this client does not support; report it" },
    );
  }

  #protocol(ref: Reference, message: string): RegistryError {
    return new RegistryError("protocol", this.#redactor.redact(message), {
      registry: ref.registry,
      hint: "the registry served something unexpected; check it (or the proxy in front of it)",
    });
  }

  #unauthorizedHint(registry: string, credential: Credential | undefined): string {
    const config = `${dockerConfigDir(this.#options.dockerConfigDir)}/config.json`;
    if (credential) {
      return `the credentials from ${credential.source} were not accepted: check them, or run ` +
        `\`docker login ${registry}\` again`;
    }
    return `run \`docker login ${registry}\`, or add credentials for ${registry} to ${config} ` +
      `("auths"), or name a credential helper for it under "credHelpers"; if the repository ` +
      `does not exist, some registries also answer this way`;
  }

  /** The credentials for a registry: explicit ones first, then config.json. Asked once. */
  #credential(registry: string): Promise<Credential | undefined> {
    let pending = this.#credentials.get(registry);
    if (!pending) {
      pending = this.#resolveCredential(registry);
      this.#credentials.set(registry, pending);
    }
    return pending;
  }

  async #resolveCredential(registry: string): Promise<Credential | undefined> {
    const explicit = this.#options.credentials;
    let credential: Credential | undefined;
    if (typeof explicit === "function") {
      const given = await explicit(registry);
      if (given) credential = { ...given, source: "the credentials given to imgtool" };
    } else if (explicit) {
      credential = { ...explicit, source: "the credentials given to imgtool" };
    }
    if (!credential) {
      const config = await readDockerConfig(this.#options.dockerConfigDir);
      if (config) credential = await lookupCredential(config, registry);
    }
    if (credential) {
      this.#redactor.add(credential.password);
      this.#redactor.add(credential.identityToken);
      if (credential.password !== undefined) {
        this.#redactor.add(`${credential.username}:${credential.password}`);
      }
    }
    return credential;
  }
}

/** A request's answer, how many attempts it took, and the URL that answered. */
type Exchange = Sent;

/** Resolve an index member (`:tag`, `@digest`, or a full reference) against the target. */
function childReference(target: Reference, reference: string): Reference {
  const repository = `${target.registry}/${target.repository}`;
  if (reference.startsWith(":") || reference.startsWith("@")) {
    return parseReference(`${repository}${reference}`);
  }
  if (isDigest(reference)) return parseReference(`${repository}@${reference}`);
  const ref = parseReference(reference);
  if (ref.registry !== target.registry || ref.repository !== target.repository) {
    throw new UsageError(
      `index member ${reference} is not in ${repository}, where the index goes`,
      { hint: `push it to ${repository} first, or name it as :tag or @sha256:...` },
    );
  }
  return ref;
}

/** Refuse what is not a digest before it goes into a request's path. */
function checkDigest(digest: string): void {
  if (!isDigest(digest)) {
    throw new UsageError(`${JSON.stringify(digest)} is not a manifest digest`, {
      hint: "a digest is sha256: followed by 64 hex characters",
    });
  }
}

/** Refuse what is not a digest before it goes into a request's path. */
function checkBlobDigest(digest: string): void {
  if (!isDigest(digest)) {
    throw new UsageError(`${JSON.stringify(digest)} is not a blob digest`, {
      hint: "a digest is sha256: followed by 64 hex characters",
    });
  }
}

/** Bytes as JSON; `undefined` when they are not. */
function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return undefined;
  }
}

/** The registry's own error codes and messages (`MANIFEST_UNKNOWN: manifest unknown`). */
function registryErrorDetail(text: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    const line = text.trim().split("\n")[0] ?? "";
    return line.length > 200 ? `${line.slice(0, 200)}...` : line;
  }
  const errors = (parsed as { errors?: unknown })?.errors;
  if (!Array.isArray(errors)) return "";
  return errors.slice(0, 3).map(function describe(e: { code?: unknown; message?: unknown }) {
    const code = typeof e?.code === "string" ? e.code : "";
    const message = typeof e?.message === "string" ? e.message.slice(0, 200) : "";
    return [code, message].filter(Boolean).join(": ");
  }).filter(Boolean).join("; ");
}
