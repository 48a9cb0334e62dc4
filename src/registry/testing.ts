/**
 * Test support for the registry client: start a real Distribution registry
 * (`docker-registry`) on 127.0.0.1 with a free port and temporary storage, and push tiny
 * single-platform images into it. Used by this folder's tests; not part of the client.
 *
 * @module
 */

import { isFile } from "../fs.ts";
import { join } from "../path.ts";
import { sha256Digest } from "./bytes.ts";
import type { RegistryClient } from "./client.ts";
import { DOCKER_MANIFEST, OCI_MANIFEST } from "./manifest.ts";
import { parsePlatform, type Platform } from "./platform.ts";

/** Where Debian's `docker-registry` package puts the Distribution registry. */
export const DOCKER_REGISTRY_BIN = "/usr/bin/docker-registry";

/**
 * Whether an executable exists at `path` (for `ignore:` on tests that need it).
 *
 * @example
 * ```ts
 * import { hasExecutable } from "./testing.ts";
 * console.log(hasExecutable("/surely/not/here")); // false
 * ```
 */
export function hasExecutable(path: string): boolean {
  return isFile(path);
}

/**
 * A free TCP port on 127.0.0.1 (bound and released; the small race is fine for tests).
 *
 * @example
 * ```ts
 * import { freePort } from "./testing.ts";
 * console.log((await freePort()) > 0); // true
 * ```
 */
export function freePort(): Promise<number> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return Promise.resolve(port);
}

/** A registry process started by {@link startRegistry}. */
export interface RunningRegistry {
  /** `127.0.0.1:PORT`, usable as the registry part of references. */
  host: string;
  /** The process id (to stop it by, and only it). */
  pid: number;
  /** Its temporary directory (config, storage, whatever the caller put there). */
  dir: string;
  /** What the registry printed so far (the last 64 KiB), for failing tests. */
  output(): string;
  /** Stop the process (SIGTERM to its pid, then wait) and remove the directory. */
  stop(): Promise<void>;
}

/**
 * Start `docker-registry serve` on 127.0.0.1 with a free port and storage in a new temporary
 * directory. `prepare` may write files into that directory first (htpasswd, certs), and
 * `authYaml` makes the `auth:` section's body from it (indented two spaces).
 * Resolves once `/v2/` answers.
 *
 * @example
 * ```ts
 * import { DOCKER_REGISTRY_BIN, hasExecutable, startRegistry } from "./testing.ts";
 * if (hasExecutable(DOCKER_REGISTRY_BIN)) {
 *   const registry = await startRegistry();
 *   try {
 *     console.log((await fetch(`http://${registry.host}/v2/`).then((r) => r.text())).length >= 0);
 *   } finally {
 *     await registry.stop();
 *   }
 * }
 * ```
 */
export async function startRegistry(
  options: {
    authYaml?: (dir: string) => string;
    prepare?: (dir: string) => Promise<void>;
  } = {},
): Promise<RunningRegistry> {
  const dir = await Deno.makeTempDir({ prefix: "imgtool-registry-" });
  await options.prepare?.(dir);
  const authYaml = options.authYaml?.(dir);
  for (let tries = 0;; tries++) {
    const port = await freePort();
    try {
      return await launch(dir, port, authYaml);
    } catch (error) {
      // Another process may have taken the port between our probe and the registry's bind.
      if (tries >= 2) {
        await Deno.remove(dir, { recursive: true }).catch(function ignore() {});
        throw error;
      }
    }
  }
}

async function launch(dir: string, port: number, authYaml?: string): Promise<RunningRegistry> {
  const host = `127.0.0.1:${port}`;
  const config = [
    "version: 0.1",
    "log:",
    "  level: warn",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${JSON.stringify(join(dir, "storage"))}`,
    "  delete:",
    "    enabled: true",
    "http:",
    `  addr: ${host}`,
    ...(authYaml ? ["auth:", authYaml] : []),
    "",
  ].join("\n");
  const configPath = join(dir, "config.yml");
  await Deno.writeTextFile(configPath, config);
  const child = new Deno.Command(DOCKER_REGISTRY_BIN, {
    args: ["serve", configPath],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  function keep(stream: ReadableStream<Uint8Array>): Promise<void> {
    return stream.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({
        write(chunk) {
          output = (output + chunk).slice(-64 * 1024);
        },
      }),
    ).catch(function ignore() {});
  }
  const drained = Promise.all([keep(child.stdout), keep(child.stderr)]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  let stopped = false;
  async function stop(): Promise<void> {
    if (stopped) return;
    stopped = true;
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch { /* it already exited */ }
    }
    await status;
    await drained;
    await Deno.remove(dir, { recursive: true }).catch(function ignore() {});
  }

  const deadline = Date.now() + 15_000;
  while (true) {
    if (exited) {
      await drained;
      stopped = true;
      throw new Error(`docker-registry exited before serving on ${host}:\n${output}`);
    }
    try {
      const response = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(1000) });
      await response.body?.cancel();
      break;
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`docker-registry did not serve on ${host} within 15 s:\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return { host, pid: child.pid, dir, output: () => output, stop };
}

/**
 * A one-file, uncompressed tar archive (ustar), enough to be a layer.
 *
 * @example
 * ```ts
 * import { tarOneFile } from "./testing.ts";
 * console.log(tarOneFile("hello.txt", "hi\n").length); // 2048
 * ```
 */
export function tarOneFile(name: string, content: string): Uint8Array {
  const data = new TextEncoder().encode(content);
  const header = new Uint8Array(512);
  const encoder = new TextEncoder();
  function put(offset: number, text: string) {
    header.set(encoder.encode(text), offset);
  }
  function octal(value: number, width: number) {
    return value.toString(8).padStart(width - 1, "0") + "\0";
  }
  put(0, name);
  put(100, octal(0o644, 8));
  put(108, octal(0, 8));
  put(116, octal(0, 8));
  put(124, octal(data.length, 12));
  put(136, octal(0, 12));
  put(148, "        "); // checksum is computed with its own field as spaces
  put(156, "0");
  put(257, "ustar\0");
  put(263, "00");
  const sum = header.reduce((a, b) => a + b, 0);
  put(148, sum.toString(8).padStart(6, "0") + "\0 ");
  const padded = Math.ceil(data.length / 512) * 512;
  const out = new Uint8Array(512 + padded + 1024);
  out.set(header, 0);
  out.set(data, 512);
  return out;
}

/**
 * Gzip some bytes.
 *
 * @example
 * ```ts
 * import { gzip } from "./testing.ts";
 * const packed = await gzip(new Uint8Array(1000));
 * console.log(packed[0], packed[1]); // 31 139
 * ```
 */
export async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** What {@link pushTestImage} pushed. */
export interface PushedImage {
  /** The manifest digest. */
  digest: string;
  /** The manifest's media type. */
  mediaType: string;
  /** The config blob's digest. */
  configDigest: string;
}

/**
 * Push a tiny single-platform image (a gzip layer with one file, a config naming the
 * platform, a manifest) to `reference` with `client`. `format` picks OCI or Docker schema 2
 * media types.
 *
 * @example
 * ```ts
 * import { RegistryClient } from "./client.ts";
 * import { pushTestImage } from "./testing.ts";
 * async function seed(client: RegistryClient) {
 *   return await pushTestImage(client, "127.0.0.1:5000/test/app:amd64", "linux/amd64");
 * }
 * console.log(typeof seed); // function
 * ```
 */
export async function pushTestImage(
  client: RegistryClient,
  reference: string,
  platform: Platform,
  format: "oci" | "docker" = "oci",
): Promise<PushedImage> {
  const { os, architecture, variant } = parsePlatform(platform);
  const tar = tarOneFile("platform.txt", `${platform}\n`);
  const layer = await gzip(tar);
  const tarDigest = await sha256Digest(tar);
  const config = {
    architecture,
    os,
    ...(variant ? { variant } : {}),
    config: { Labels: { "test.platform": platform } },
    rootfs: { type: "layers", diff_ids: [tarDigest] },
  };
  const configBytes = new TextEncoder().encode(JSON.stringify(config));
  const pushedConfig = await client.pushBlob(reference, configBytes);
  const pushedLayer = await client.pushBlob(reference, layer);
  const oci = format === "oci";
  const mediaType = oci ? OCI_MANIFEST : DOCKER_MANIFEST;
  const manifest = {
    schemaVersion: 2,
    mediaType,
    config: {
      mediaType: oci
        ? "application/vnd.oci.image.config.v1+json"
        : "application/vnd.docker.container.image.v1+json",
      digest: pushedConfig.digest,
      size: pushedConfig.size,
    },
    layers: [{
      mediaType: oci
        ? "application/vnd.oci.image.layer.v1.tar+gzip"
        : "application/vnd.docker.image.rootfs.diff.tar.gzip",
      digest: pushedLayer.digest,
      size: pushedLayer.size,
    }],
  };
  const body = new TextEncoder().encode(JSON.stringify(manifest));
  const digest = await client.putManifest(reference, body, mediaType);
  return { digest, mediaType, configDigest: pushedConfig.digest };
}

/** A local HTTP server started by {@link serveLocal}. */
export interface LocalServer {
  /** `127.0.0.1:PORT`. */
  host: string;
  /** `http://127.0.0.1:PORT`. */
  origin: string;
  /** Stop it and wait until it has. */
  close(): Promise<void>;
}

/**
 * Serve `handler` on 127.0.0.1 with a free port (a stand-in registry or token server).
 *
 * @example
 * ```ts
 * import { serveLocal } from "./testing.ts";
 * const server = serveLocal(() => new Response("hi"));
 * try {
 *   console.log(await fetch(server.origin).then((r) => r.text())); // hi
 * } finally {
 *   await server.close();
 * }
 * ```
 */
export function serveLocal(handler: Deno.ServeHandler<Deno.NetAddr>): LocalServer {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  const host = `127.0.0.1:${server.addr.port}`;
  return { host, origin: `http://${host}`, close: () => server.shutdown() };
}

/** A request a {@link BlobRegistry} answered, as it saw it. */
export interface BlobRequest {
  /** The method. */
  method: string;
  /** The path, without the query. */
  path: string;
  /** The query parameters. */
  query: Record<string, string>;
  /** The request's `Content-Length`, when it had one. */
  contentLength: string | null;
  /** The request's `Transfer-Encoding`, when it had one. */
  transferEncoding: string | null;
  /** The request's `Authorization`, when it had one. */
  authorization: string | null;
  /** The request's `Connection`, when it had one (`close`: a connection of the client's own). */
  connection: string | null;
  /** The status it was answered with. */
  status: number;
  /** For a `PUT`: how many bytes of the body arrived. */
  received?: number;
}

/** How a {@link BlobRegistry} misbehaves; it behaves by default. */
export interface BlobRegistryOptions {
  /** Answer a mount request with 202 and a plain upload session, as for an unknown source. */
  refuseMounts?: boolean;
  /** Answer the first `n` blob `PUT`s with 503 (after reading their bodies). */
  failPuts?: number;
  /** Name this digest in `Docker-Content-Digest` when a `PUT` or mount succeeds. */
  claimDigest?: string;
  /** Answer every `PUT` with this status at once, without reading its body. */
  refusePutsWith?: number;
  /** Never answer a `PUT` (read its body, then hang until closed). */
  hangPuts?: boolean;
  /** Require this `Authorization` value; answer 401 with a Basic challenge without it. */
  authorization?: string;
  /** Answer the first `n` blob `PUT`s with 401 and a Basic challenge (an expired token). */
  expirePuts?: number;
  /** Redirect each blob `PUT` once (307) to the same URL with `&moved=1`. */
  redirectPuts?: boolean;
}

/** A stand-in registry for blob uploads (see {@link startBlobRegistry}). */
export interface BlobRegistry extends LocalServer {
  /** Every request answered, in order. */
  readonly requests: BlobRequest[];
  /** The blobs of `repository`: digest to size. */
  blobs(repository: string): Map<string, number>;
  /** Pretend `repository` has the blob `digest` of `size` bytes. */
  seed(repository: string, digest: string, size: number): void;
}

/**
 * Serve a stand-in registry on 127.0.0.1 for blob uploads: `HEAD` and `GET` of blobs,
 * cross-repository mounts (`POST .../uploads/?mount=&from=`, 201 when `from` has the blob),
 * and monolithic uploads (`POST`, then `PUT ?digest=`), whose bodies are hashed as they
 * arrive and not kept (a 200 MB upload costs it no memory), with the misbehaviours of
 * `options`. Since it keeps no bytes, a `GET` of a blob it has answers 200 without a body.
 *
 * @example
 * ```ts
 * import { startBlobRegistry } from "./testing.ts";
 * const registry = startBlobRegistry();
 * try {
 *   registry.seed("team/app", `sha256:${"a".repeat(64)}`, 3);
 *   const answer = await fetch(`${registry.origin}/v2/team/app/blobs/sha256:${"a".repeat(64)}`, {
 *     method: "HEAD",
 *   });
 *   console.log(answer.status); // 200
 * } finally {
 *   await registry.close();
 * }
 * ```
 */
export function startBlobRegistry(options: BlobRegistryOptions = {}): BlobRegistry {
  const repositories = new Map<string, Map<string, number>>();
  const sessions = new Set<string>();
  const requests: BlobRequest[] = [];
  let puts = 0;
  let expired = 0;
  const blobsOf = (repository: string) => {
    let blobs = repositories.get(repository);
    if (!blobs) repositories.set(repository, blobs = new Map());
    return blobs;
  };
  const hangs: (() => void)[] = [];
  const server = serveLocal(async (request) => {
    const url = new URL(request.url);
    const seen: BlobRequest = {
      method: request.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      contentLength: request.headers.get("content-length"),
      transferEncoding: request.headers.get("transfer-encoding"),
      authorization: request.headers.get("authorization"),
      connection: request.headers.get("connection"),
      status: 0,
    };
    requests.push(seen);
    const answer = (status: number, headers: Record<string, string> = {}, body?: string) => {
      seen.status = status;
      return new Response(body ?? null, { status, headers });
    };
    const challenge = { "www-authenticate": 'Basic realm="blob-registry"' };
    if (options.authorization !== undefined && seen.authorization !== options.authorization) {
      await request.body?.cancel();
      return answer(401, challenge);
    }
    const blob = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/.exec(url.pathname);
    if (blob) {
      const size = blobsOf(blob[1]).get(blob[2]);
      if (size === undefined) return answer(404, {}, '{"errors":[{"code":"BLOB_UNKNOWN"}]}');
      const headers: Record<string, string> = { "docker-content-digest": blob[2] };
      if (request.method === "HEAD") headers["content-length"] = String(size);
      return answer(200, headers);
    }
    const upload = /^\/v2\/(.+)\/blobs\/uploads\/([^/]*)$/.exec(url.pathname);
    if (!upload) return answer(404);
    const [, repository, id] = upload;
    if (request.method === "POST" && id === "") {
      const mount = url.searchParams.get("mount");
      const from = url.searchParams.get("from");
      if (mount && from && !options.refuseMounts) {
        const size = blobsOf(from).get(mount);
        if (size !== undefined) {
          blobsOf(repository).set(mount, size);
          return answer(201, {
            "docker-content-digest": options.claimDigest ?? mount,
            location: `/v2/${repository}/blobs/${mount}`,
          });
        }
      }
      const session = crypto.randomUUID();
      sessions.add(session);
      return answer(202, { location: `/v2/${repository}/blobs/uploads/${session}?_state=s` });
    }
    if (request.method !== "PUT" || !sessions.has(id)) {
      await request.body?.cancel();
      return answer(404, {}, '{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN"}]}');
    }
    if (options.refusePutsWith !== undefined) {
      return answer(options.refusePutsWith, {}, '{"errors":[{"code":"SIZE_INVALID"}]}');
    }
    if (options.redirectPuts && !url.searchParams.has("moved")) {
      await request.body?.cancel();
      url.searchParams.set("moved", "1");
      return answer(307, { location: `${url.pathname}${url.search}` });
    }
    if (expired < (options.expirePuts ?? 0)) {
      expired++;
      await request.body?.cancel();
      return answer(401, challenge);
    }
    const { createHash } = await import("node:crypto");
    const hash = createHash("sha256");
    let received = 0;
    try {
      for await (const chunk of request.body ?? []) {
        hash.update(chunk);
        received += chunk.length;
        seen.received = received;
      }
    } catch {
      // The client broke off the body: no blob.
      seen.received = received;
      return answer(400, {}, '{"errors":[{"code":"BLOB_UPLOAD_INVALID"}]}');
    }
    if (options.hangPuts) {
      await new Promise<void>((resolve) => hangs.push(resolve));
      return answer(500);
    }
    puts++;
    if (puts <= (options.failPuts ?? 0)) return answer(503, {}, "busy");
    sessions.delete(id);
    const digest = `sha256:${hash.digest("hex")}`;
    if (digest !== url.searchParams.get("digest")) {
      return answer(400, {}, '{"errors":[{"code":"DIGEST_INVALID"}]}');
    }
    blobsOf(repository).set(digest, received);
    return answer(201, {
      "docker-content-digest": options.claimDigest ?? digest,
      location: `/v2/${repository}/blobs/${digest}`,
    });
  });
  return {
    ...server,
    requests,
    blobs: blobsOf,
    seed: (repository, digest, size) => void blobsOf(repository).set(digest, size),
    close: async () => {
      for (const release of hangs) release();
      await server.close();
    },
  };
}
