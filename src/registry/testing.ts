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
