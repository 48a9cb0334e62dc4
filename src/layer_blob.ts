/**
 * One image layer as a blob on disk: the layer's tar ({@link layerTarBlocks}) goes in one
 * pass through a sha256 (the diff id, of the uncompressed tar) and the platform's
 * `CompressionStream("gzip")`, whose output goes through another sha256 (the blob digest)
 * into a temporary file. Memory stays flat in the size of the files: a few 1 MiB blocks are
 * in flight at a time, never a whole file or the whole archive.
 *
 * Why the gzip bytes are stable: Deno's gzip header has mtime 0, no file name and OS byte
 * 255 (unknown), whatever the machine; its deflate output does depend on how the input is
 * cut into chunks (each chunk ends in a flush), which is why the tar comes in blocks of a
 * fixed size. The compressor itself is Deno's (the flate2 crate): a Deno whose deflate
 * compresses differently would give other gzip bytes for the same tar (the diff id stays);
 * the tests pin the digest of a known layer, so that such a change shows.
 *
 * Hashing uses `node:crypto`, loaded when the first layer is written: it hashes at several
 * times the speed of the project's plain-TypeScript sha256, and a layer is tens of MB,
 * where a no-op build (which must not load the Node layer) writes none.
 *
 * @module
 */

import { systemError } from "./errors.ts";
import { type LayerEntry, layerTarBlocks } from "./layer_tar.ts";

/** The media type of a layer blob as {@link writeLayerBlob} writes it. */
export const OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";

/** A layer written to disk: what a manifest and an image config say of it, and where it is. */
export interface LayerBlob {
  /** `sha256:<hex>` of the gzip bytes: the blob's digest, as the manifest lists it. */
  readonly digest: string;
  /** `sha256:<hex>` of the uncompressed tar: the diff id, as the image config lists it. */
  readonly diffId: string;
  /** The size of the gzip bytes. */
  readonly size: number;
  /** The file that holds the gzip bytes (in the folder given); the caller removes it. */
  readonly path: string;
}

/** How {@link writeLayerBlob} writes the layer. */
export interface WriteLayerOptions {
  /** The modification time of every entry, in seconds (`SOURCE_DATE_EPOCH`, or a constant). */
  readonly mtime: number;
  /** The folder to write the blob into (as a new temporary file). */
  readonly dir: string;
}

type Hasher = { update(data: Uint8Array): unknown; digest(encoding: "hex"): string };
let nodeCrypto: Promise<{ createHash(algorithm: string): Hasher }> | undefined;

function sha256(): Promise<Hasher> {
  nodeCrypto ??= import("node:crypto");
  return nodeCrypto.then((crypto) => crypto.createHash("sha256"));
}

/**
 * Write the layer of `entries` as a gzip-compressed tar into a new file in `options.dir`,
 * and return its digest, diff id, size and path. The same entries (same paths, kinds, modes,
 * owners, contents and link targets) and the same mtime give the same bytes, wherever the
 * files are and whatever their times. On any failure (a file that cannot be read, or that
 * changes size while it is read) the file is removed and the error thrown.
 *
 * @example
 * ```ts
 * import { writeLayerBlob } from "./layer_blob.ts";
 * const dir = await Deno.makeTempDir();
 * const layer = await writeLayerBlob([
 *   { path: "/app", kind: "dir", mode: 0o755, uid: 0, gid: 0 },
 *   { path: "/app/hello.txt", kind: "file", mode: 0o644, uid: 0, gid: 0,
 *     source: new TextEncoder().encode("hello\n") },
 * ], { mtime: 1, dir });
 * const onDisk = await Deno.stat(layer.path);
 * console.log(layer.digest.startsWith("sha256:"), layer.size === onDisk.size); // true true
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeLayerBlob(
  entries: readonly LayerEntry[],
  options: WriteLayerOptions,
): Promise<LayerBlob> {
  // Entries are checked (by the generator's first step) before the file is made.
  // Each block is done with once the compressor has taken it (below): its memory is reused.
  const blocks = layerTarBlocks(entries, { mtime: options.mtime, recycle: true });
  const first = await blocks.next();
  const [tarHash, gzipHash] = await Promise.all([sha256(), sha256()]);
  let path: string;
  try {
    path = await Deno.makeTempFile({ dir: options.dir, prefix: "layer-", suffix: ".tar.gz" });
  } catch (error) {
    await blocks.return();
    throw systemError(error, { doing: "writing a layer" }) ?? error;
  }
  const gzip = new CompressionStream("gzip");
  const writer = gzip.writable.getWriter();
  let size = 0;
  const written = (async () => {
    using file = await Deno.open(path, { write: true, truncate: true });
    for await (const chunk of gzip.readable) {
      gzipHash.update(chunk);
      size += chunk.length;
      for (let at = 0; at < chunk.length;) at += await file.write(chunk.subarray(at));
    }
  })();
  try {
    for (let step = first; !step.done; step = await blocks.next()) {
      tarHash.update(step.value);
      // Settles once the compressor has taken the block (the reader above drains its output
      // meanwhile): only then may the block's memory be reused for the next one.
      await writer.write(step.value);
    }
    await writer.close();
    await written;
  } catch (error) {
    await writer.abort(error).catch(() => {});
    await written.catch(() => {});
    await blocks.return();
    await Deno.remove(path).catch(() => {});
    throw systemError(error, { doing: `writing a layer to ${path}` }) ?? error;
  }
  return {
    digest: `sha256:${gzipHash.digest("hex")}`,
    diffId: `sha256:${tarHash.digest("hex")}`,
    size,
    path,
  };
}
