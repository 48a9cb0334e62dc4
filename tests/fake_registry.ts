/**
 * A stand-in OCI distribution registry for unit tests: a real HTTP server on 127.0.0.1 that
 * keeps manifests and blobs in memory, so the registry client is exercised over HTTP (no
 * stub inside it) without the end-to-end environment. It serves what `RegistryClient`
 * asks of a registry (manifests by tag or digest, blobs by digest, manifest uploads, blob
 * uploads in one `POST` + `PUT`) and can be told to fail every request. Like Distribution
 * 2.8 it has no referrers API (`GET /v2/<name>/referrers/<digest>` is 404, and the tags of
 * the referrers tag schema, `sha256-<hex>`, are tags like any other), unless started with
 * `{ referrersApi: true }`: then it lists the manifests whose `subject` is the digest, and
 * answers a manifest upload with a subject with `OCI-Subject`, as the OCI distribution spec
 * has registries with the API do.
 *
 * @module
 */

import { type LocalServer, serveLocal } from "../src/registry/testing.ts";

/** OCI media types the stand-in stores. */
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** The OCI index media type. */
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";

interface Stored {
  readonly body: Uint8Array<ArrayBuffer>;
  readonly mediaType: string;
  readonly digest: string;
}

/** A request the stand-in answered: `METHOD /path -> status`. */
export type RequestLine = string;

/** A running stand-in registry (see {@link startFakeRegistry}). */
export interface FakeRegistry {
  /** `127.0.0.1:PORT`, the registry part of references. */
  readonly host: string;
  /** Every request answered, in order. */
  readonly requests: RequestLine[];
  /**
   * Store a single-platform image (config blob + manifest) at `repository:tag` (by digest
   * only without a tag); returns the manifest's digest.
   */
  addImage(
    repository: string,
    tag: string | undefined,
    platform: string,
    runConfig?: Record<string, unknown>,
  ): Promise<string>;
  /**
   * Store an index over new single-platform images, one per platform, at `repository:tag`;
   * `runConfig` is each image config's `config` object (`User`, `Env`, ...).
   */
  addIndex(
    repository: string,
    tag: string,
    platforms: readonly string[],
    runConfig?: Record<string, unknown>,
  ): Promise<string>;
  /** The manifest stored at `repository:tagOrDigest`, parsed, with its media type. */
  manifest(
    repository: string,
    reference: string,
  ): { mediaType: string; digest: string; json: Record<string, unknown> } | undefined;
  /** The blob stored under `digest` (pushed or added), if any. */
  blob(digest: string): Uint8Array | undefined;
  /** The tags of `repository`, sorted. */
  tags(repository: string): string[];
  /** Forget the tag (or digest) `reference` of `repository`, as a registry's delete does. */
  remove(repository: string, reference: string): void;
  /** From now on, answer every request with this status (`undefined`: serve normally). */
  failWith(status: number | undefined): void;
  /** Stop the server. */
  close(): Promise<void>;
}

async function digestOf(bytes: Uint8Array): Promise<string> {
  const hash = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return `sha256:${
    Array.from(new Uint8Array(hash), (byte) => byte.toString(16).padStart(2, "0")).join("")
  }`;
}

const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

/** The digest a manifest's `subject` names, if it has one. */
function subjectOf(body: Uint8Array): string | undefined {
  try {
    const digest = JSON.parse(new TextDecoder().decode(body))?.subject?.digest;
    return typeof digest === "string" ? digest : undefined;
  } catch {
    return undefined;
  }
}

function platformObject(platform: string): Record<string, string> {
  const [os, architecture, variant] = platform.split("/");
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** How a stand-in registry behaves. */
export interface FakeRegistryOptions {
  /** Serve the referrers API (default: no, as Distribution 2.8). */
  readonly referrersApi?: boolean;
}

/**
 * Start a stand-in registry on 127.0.0.1 with a free port.
 *
 * @example
 * ```ts
 * import { startFakeRegistry } from "./fake_registry.ts";
 * const registry = await startFakeRegistry();
 * try {
 *   await registry.addImage("team/app", "1.0", "linux/amd64");
 *   console.log(registry.manifest("team/app", "1.0")?.mediaType);
 *   // application/vnd.oci.image.manifest.v1+json
 * } finally {
 *   await registry.close();
 * }
 * ```
 */
export function startFakeRegistry(options: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const manifests = new Map<string, Stored>(); // by `repository@reference`
  const blobs = new Map<string, Uint8Array<ArrayBuffer>>();
  const uploads = new Set<string>();
  const requests: RequestLine[] = [];
  let failure: number | undefined;

  const store = async (
    repository: string,
    tag: string | undefined,
    stored: Omit<Stored, "digest">,
  ) => {
    const digest = await digestOf(stored.body);
    const entry = { ...stored, digest };
    manifests.set(`${repository}@${digest}`, entry);
    if (tag !== undefined) manifests.set(`${repository}@${tag}`, entry);
    return entry;
  };

  const answer = async (request: Request): Promise<Response> => {
    if (failure !== undefined) return new Response("stand-in failure", { status: failure });
    const url = new URL(request.url);
    if (url.pathname === "/v2/" || url.pathname === "/v2") return Response.json({});
    const upload = /^\/v2\/(.+)\/blobs\/uploads\/([^/]*)$/.exec(url.pathname);
    if (upload) return await receiveBlob(request, url, upload[1], upload[2]);
    const referrers = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(url.pathname);
    if (referrers && options.referrersApi) return listReferrers(referrers[1], referrers[2]);
    const match = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    if (!match) return new Response("not found", { status: 404 });
    const [, repository, kind, reference] = match;
    const head = request.method === "HEAD";
    if (kind === "blobs") {
      const blob = blobs.get(reference);
      if (!blob || (request.method !== "GET" && !head)) {
        return Response.json({ errors: [{ code: "BLOB_UNKNOWN" }] }, { status: 404 });
      }
      return new Response(head ? null : blob, {
        headers: { "content-length": String(blob.length), "docker-content-digest": reference },
      });
    }
    if (request.method === "PUT") {
      const body = new Uint8Array(await request.arrayBuffer());
      const mediaType = request.headers.get("content-type") ?? "";
      const tag = reference.startsWith("sha256:") ? undefined : reference;
      const stored = await store(repository, tag, { body, mediaType });
      const subject = subjectOf(body);
      return new Response(null, {
        status: 201,
        headers: {
          "docker-content-digest": stored.digest,
          location: `/v2/${repository}/manifests/${stored.digest}`,
          ...(subject && options.referrersApi ? { "oci-subject": subject } : {}),
        },
      });
    }
    const stored = manifests.get(`${repository}@${reference}`);
    if (!stored) return Response.json({ errors: [{ code: "MANIFEST_UNKNOWN" }] }, { status: 404 });
    return new Response(head ? null : stored.body, {
      headers: {
        "content-type": stored.mediaType,
        "content-length": String(stored.body.length),
        "docker-content-digest": stored.digest,
      },
    });
  };

  // A monolithic upload: `POST .../uploads/` opens a session, `PUT .../uploads/<id>?digest=`
  // sends the whole blob, checked against its digest.
  const receiveBlob = async (request: Request, url: URL, repository: string, id: string) => {
    if (request.method === "POST" && id === "") {
      const session = crypto.randomUUID();
      uploads.add(session);
      return new Response(null, {
        status: 202,
        headers: { location: `/v2/${repository}/blobs/uploads/${session}` },
      });
    }
    if (request.method !== "PUT" || !uploads.has(id)) {
      return Response.json({ errors: [{ code: "BLOB_UPLOAD_UNKNOWN" }] }, { status: 404 });
    }
    uploads.delete(id);
    const body = new Uint8Array(await request.arrayBuffer());
    const digest = url.searchParams.get("digest") ?? "";
    if (digest !== await digestOf(body)) {
      return Response.json({ errors: [{ code: "DIGEST_INVALID" }] }, { status: 400 });
    }
    blobs.set(digest, body);
    return new Response(null, {
      status: 201,
      headers: { "docker-content-digest": digest, location: `/v2/${repository}/blobs/${digest}` },
    });
  };

  // The referrers API: every manifest of the repository whose subject is `digest`.
  const listReferrers = (repository: string, digest: string) => {
    const seen = new Set<string>();
    const found = [];
    for (const [key, stored] of manifests) {
      if (!key.startsWith(`${repository}@`) || seen.has(stored.digest)) continue;
      seen.add(stored.digest);
      if (subjectOf(stored.body) !== digest) continue;
      const json = JSON.parse(new TextDecoder().decode(stored.body));
      found.push({
        mediaType: stored.mediaType,
        digest: stored.digest,
        size: stored.body.length,
        artifactType: json.artifactType ?? json.config?.mediaType,
        ...(json.annotations ? { annotations: json.annotations } : {}),
      });
    }
    return Response.json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: found }, {
      headers: { "content-type": OCI_INDEX },
    });
  };

  const server: LocalServer = serveLocal(async (request) => {
    const response = await answer(request);
    requests.push(`${request.method} ${new URL(request.url).pathname} -> ${response.status}`);
    return response;
  });

  const addImage = async (
    repository: string,
    tag: string | undefined,
    platform: string,
    runConfig: Record<string, unknown> = {},
  ) => {
    const config = encode({
      ...platformObject(platform),
      rootfs: { type: "layers", diff_ids: [] },
      config: runConfig,
    });
    const configDigest = await digestOf(config);
    blobs.set(configDigest, config);
    const manifest = encode({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: configDigest, size: config.length },
      layers: [],
    });
    return (await store(repository, tag, { body: manifest, mediaType: OCI_MANIFEST })).digest;
  };

  return Promise.resolve({
    host: server.host,
    requests,
    addImage,
    async addIndex(repository, tag, platforms, runConfig) {
      const entries = [];
      for (const platform of platforms) {
        const digest = await addImage(repository, undefined, platform, runConfig);
        const size = manifests.get(`${repository}@${digest}`)!.body.length;
        entries.push({ mediaType: OCI_MANIFEST, digest, size, platform: platformObject(platform) });
      }
      const index = encode({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries });
      return (await store(repository, tag, { body: index, mediaType: OCI_INDEX })).digest;
    },
    manifest(repository, reference) {
      const stored = manifests.get(`${repository}@${reference}`);
      if (!stored) return undefined;
      const json = JSON.parse(new TextDecoder().decode(stored.body));
      return { mediaType: stored.mediaType, digest: stored.digest, json };
    },
    blob: (digest) => blobs.get(digest),
    tags(repository) {
      return [...manifests.keys()]
        .filter((key) => key.startsWith(`${repository}@`) && !key.includes("@sha256:"))
        .map((key) => key.slice(repository.length + 1))
        .sort();
    },
    remove(repository, reference) {
      manifests.delete(`${repository}@${reference}`);
    },
    failWith(status) {
      failure = status;
    },
    close: () => server.close(),
  });
}
