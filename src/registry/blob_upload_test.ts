// RegistryClient.hasBlob and pushBlobFile against a stand-in registry (a real HTTP server on
// 127.0.0.1 that hashes upload bodies as they arrive), and against a real Distribution
// registry (Debian's docker-registry) started for the test.

import assert from "node:assert/strict";
import { join } from "node:path";
import { BuildError } from "../errors.ts";
import { RegistryClient } from "./client.ts";
import { RegistryError } from "./errors.ts";
import { sha256Digest } from "./bytes.ts";
import {
  DOCKER_REGISTRY_BIN,
  hasExecutable,
  serveLocal,
  startBlobRegistry,
  startRegistry,
} from "./testing.ts";

const encoder = new TextEncoder();

/** The sha256 of a file as `sha256sum` computes it: a reader independent of the client. */
async function sha256sum(path: string): Promise<string> {
  const { code, stdout } = await new Deno.Command("sha256sum", { args: [path], stdout: "piped" })
    .output();
  assert.equal(code, 0);
  return `sha256:${new TextDecoder().decode(stdout).split(" ")[0]}`;
}

/** A file of `content` (or `size` zero bytes, sparse) in a new temporary folder. */
async function blobFile(content: Uint8Array | number) {
  const dir = await Deno.makeTempDir({ prefix: "imgtool-blob-" });
  const path = join(dir, "layer.tar.gz");
  if (typeof content === "number") {
    using file = await Deno.open(path, { write: true, create: true });
    await file.truncate(content);
  } else {
    await Deno.writeFile(path, content);
  }
  const size = (await Deno.stat(path)).size;
  return {
    blob: { path, size, digest: await sha256sum(path) },
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/** Random bytes, any length. */
function randomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let at = 0; at < length; at += 65536) {
    crypto.getRandomValues(bytes.subarray(at, Math.min(length, at + 65536)));
  }
  return bytes;
}

const requestLines = (registry: ReturnType<typeof startBlobRegistry>) =>
  registry.requests.map((r) => `${r.method} ${r.path.replace(/uploads\/[^/]+$/, "uploads/ID")}`);

Deno.test("pushBlobFile() skips a blob the registry has: one HEAD, nothing sent", async () => {
  await using file = await blobFile(encoder.encode("layer bytes"));
  const registry = startBlobRegistry();
  try {
    registry.seed("team/app", file.blob.digest, file.blob.size);
    const sent: number[] = [];
    const pushed = await new RegistryClient().pushBlobFile(`${registry.host}/team/app`, file.blob, {
      onBytesSent: (n) => sent.push(n),
    });
    assert.deepEqual(pushed, { ...pick(file.blob), outcome: "present" });
    assert.deepEqual(requestLines(registry), [`HEAD /v2/team/app/blobs/${file.blob.digest}`]);
    assert.deepEqual(sent, []);
  } finally {
    await registry.close();
  }
});

function pick(blob: { digest: string; size: number }) {
  return { digest: blob.digest, size: blob.size };
}

Deno.test("pushBlobFile() mounts from the base's repository when the registry links it (201)", async () => {
  await using file = await blobFile(encoder.encode("base layer"));
  const registry = startBlobRegistry();
  try {
    registry.seed("library/python", file.blob.digest, file.blob.size);
    const client = new RegistryClient();
    const pushed = await client.pushBlobFile(`${registry.host}/team/app:1.0`, file.blob, {
      from: `${registry.host}/library/python:3.12`,
    });
    assert.equal(pushed.outcome, "mounted");
    assert.deepEqual(requestLines(registry), [
      `HEAD /v2/team/app/blobs/${file.blob.digest}`,
      "POST /v2/team/app/blobs/uploads/",
    ]);
    assert.deepEqual(registry.requests[1].query, {
      mount: file.blob.digest,
      from: "library/python",
    });
    assert.equal(await client.hasBlob(`${registry.host}/team/app`, file.blob.digest), true);
  } finally {
    await registry.close();
  }
});

Deno.test("pushBlobFile() uploads in the session a refused mount opened (202), with a Content-Length", async () => {
  const bytes = randomBytes(1_000_000);
  await using file = await blobFile(bytes);
  const registry = startBlobRegistry({ refuseMounts: true });
  try {
    const sent: [number, number][] = [];
    const pushed = await new RegistryClient().pushBlobFile(
      `${registry.host}/team/app`,
      file.blob,
      { from: `${registry.host}/library/python:3.12`, onBytesSent: (n, of) => sent.push([n, of]) },
    );
    assert.equal(pushed.outcome, "uploaded");
    assert.deepEqual(requestLines(registry), [
      `HEAD /v2/team/app/blobs/${file.blob.digest}`,
      "POST /v2/team/app/blobs/uploads/",
      "PUT /v2/team/app/blobs/uploads/ID",
    ]);
    assert.equal(registry.requests[1].query.mount, file.blob.digest);
    const put = registry.requests[2];
    assert.deepEqual(put.query, { _state: "s", digest: file.blob.digest });
    assert.equal(put.contentLength, String(bytes.length));
    assert.equal(put.transferEncoding, null);
    assert.equal(put.received, bytes.length);
    assert.equal(registry.blobs("team/app").get(file.blob.digest), bytes.length);
    // Progress in 256 KiB pieces up to the whole file.
    assert.deepEqual(sent.at(-1), [bytes.length, bytes.length]);
    assert.ok(sent.length >= 4, `${sent.length} reports`);
    assert.ok(sent.every(([n], i) => i === 0 || n > sent[i - 1][0]));
  } finally {
    await registry.close();
  }
});

Deno.test("pushBlobFile() asks no mount from another registry or from the same repository", async () => {
  await using file = await blobFile(encoder.encode("x"));
  const registry = startBlobRegistry();
  try {
    const client = new RegistryClient();
    await client.pushBlobFile(`${registry.host}/team/a`, file.blob, {
      from: "ghcr.io/library/python:3.12",
    });
    await client.pushBlobFile(`${registry.host}/team/b`, file.blob, {
      from: `${registry.host}/team/b:old`,
    });
    const posts = registry.requests.filter((r) => r.method === "POST");
    assert.deepEqual(posts.map((r) => r.query), [{}, {}]);
  } finally {
    await registry.close();
  }
});

Deno.test("pushBlobFile() refuses a registry that names another digest for what it stored", async () => {
  await using file = await blobFile(encoder.encode("layer"));
  const other = `sha256:${"e".repeat(64)}`;
  const registry = startBlobRegistry({ claimDigest: other });
  try {
    const client = new RegistryClient();
    const error = await client.pushBlobFile(`${registry.host}/team/app`, file.blob)
      .then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.ok(error instanceof RegistryError);
    assert.equal(error.kind, "protocol");
    assert.match(error.message, new RegExp(`upload of blob ${file.blob.digest} .* ${other}`));
    // A mount answered with another digest is refused the same way.
    registry.seed("library/base", file.blob.digest, file.blob.size);
    await assert.rejects(
      client.pushBlobFile(`${registry.host}/team/other`, file.blob, {
        from: `${registry.host}/library/base`,
      }),
      (e: unknown) => e instanceof RegistryError && /mount from library\/base/.test(e.message),
    );
  } finally {
    await registry.close();
  }
});

Deno.test("pushBlobFile() breaks off a file that is not the announced blob; the registry stores nothing", async () => {
  await using file = await blobFile(randomBytes(600_000));
  const registry = startBlobRegistry();
  try {
    const client = new RegistryClient();
    // The same size, other bytes: found while sending, before the last piece goes out.
    const wrong = { ...file.blob, digest: `sha256:${"0".repeat(64)}` };
    const error = await client.pushBlobFile(`${registry.host}/team/app`, wrong)
      .then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.ok(error instanceof BuildError, String(error));
    assert.match(error.message, new RegExp(`^${file.blob.path} is not the blob it was announced`));
    assert.match(error.message, new RegExp(`hash to ${file.blob.digest}, not to sha256:0{64}`));
    await waitFor(() => registry.requests.some((r) => r.method === "PUT" && r.status !== 0));
    const put = registry.requests.find((r) => r.method === "PUT")!;
    assert.ok(put.received! < file.blob.size, `${put.received} of ${file.blob.size} arrived`);
    assert.equal(registry.blobs("team/app").size, 0);
    // Another size than the file's: refused before any request.
    const before = registry.requests.length;
    await assert.rejects(
      client.pushBlobFile(`${registry.host}/team/app`, { ...file.blob, size: 5 }),
      (e: unknown) =>
        e instanceof BuildError && e.message.includes(`it has ${file.blob.size} bytes, not the 5`),
    );
    assert.equal(registry.requests.length, before);
  } finally {
    await registry.close();
  }
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(condition(), "the condition never held");
}

Deno.test("pushBlobFile() retries a 503 PUT with a new session and the file sent again", async () => {
  await using file = await blobFile(randomBytes(300_000));
  const registry = startBlobRegistry({ failPuts: 1 });
  try {
    const sent: number[] = [];
    const retried: string[] = [];
    const client = new RegistryClient({
      random: () => 0,
      onProgress: (event) => retried.push(`${event.kind} ${event.reason}`),
    });
    const pushed = await client.pushBlobFile(`${registry.host}/team/app`, file.blob, {
      onBytesSent: (n) => sent.push(n),
    });
    assert.equal(pushed.outcome, "uploaded");
    assert.deepEqual(registry.requests.map((r) => `${r.method} ${r.status}`), [
      "HEAD 404",
      "POST 202",
      "PUT 503",
      "POST 202",
      "PUT 201",
    ]);
    const puts = registry.requests.filter((r) => r.method === "PUT");
    assert.notEqual(puts[0].path, puts[1].path, "a new session");
    assert.deepEqual(puts.map((r) => r.received), [file.blob.size, file.blob.size]);
    assert.equal(sent.filter((n) => n === file.blob.size).length, 2, "progress restarts");
    assert.deepEqual(retried, ["retrying answered 503; starting a new upload"]);
  } finally {
    await registry.close();
  }
});

Deno.test("pushBlobFile() gives up after the retries, as unreachable, naming the 503", async () => {
  await using file = await blobFile(encoder.encode("x"));
  const registry = startBlobRegistry({ failPuts: 10 });
  try {
    const error = await new RegistryClient({ retries: 1, random: () => 0 })
      .pushBlobFile(`${registry.host}/team/app`, file.blob)
      .then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.ok(error instanceof RegistryError);
    assert.equal(error.kind, "unreachable");
    assert.match(error.message, /upload blob .* answered 503/);
    assert.equal(registry.requests.filter((r) => r.method === "PUT").length, 2);
  } finally {
    await registry.close();
  }
});

Deno.test("a refusal before the body is sent ends the upload without sending the rest", async () => {
  await using file = await blobFile(64 << 20);
  const registry = startBlobRegistry({ refusePutsWith: 413 });
  try {
    let sent = 0;
    const error = await new RegistryClient().pushBlobFile(`${registry.host}/team/app`, file.blob, {
      onBytesSent: (n) => sent = n,
    }).then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.ok(error instanceof RegistryError);
    assert.match(error.message, /upload blob .* 413 .*SIZE_INVALID/);
    assert.ok(sent < file.blob.size, `${sent} of ${file.blob.size} bytes were sent`);
  } finally {
    await registry.close();
  }
});

Deno.test("an upload whose token expired gets a new one and starts over", async () => {
  await using file = await blobFile(encoder.encode("layer"));
  const basic = `Basic ${btoa("me:pw")}`;
  const registry = startBlobRegistry({ authorization: basic, expirePuts: 1 });
  try {
    const client = new RegistryClient({ credentials: { username: "me", password: "pw" } });
    const pushed = await client.pushBlobFile(`${registry.host}/team/app`, file.blob);
    assert.equal(pushed.outcome, "uploaded");
    const puts = registry.requests.filter((r) => r.method === "PUT");
    assert.deepEqual(puts.map((r) => [r.status, r.authorization]), [[401, basic], [201, basic]]);
  } finally {
    await registry.close();
  }
});

Deno.test("a PUT redirected with 307 is sent again to the new URL", async () => {
  await using file = await blobFile(encoder.encode("layer"));
  const registry = startBlobRegistry({ redirectPuts: true });
  try {
    const pushed = await new RegistryClient().pushBlobFile(`${registry.host}/team/app`, file.blob);
    assert.equal(pushed.outcome, "uploaded");
    const puts = registry.requests.filter((r) => r.method === "PUT");
    assert.deepEqual(puts.map((r) => [r.status, r.query.moved]), [[307, undefined], [201, "1"]]);
  } finally {
    await registry.close();
  }
});

Deno.test("an upload URL on another host gets no credentials", async () => {
  await using file = await blobFile(encoder.encode("layer"));
  const storageSaw: (string | null)[] = [];
  const storage = serveLocal(async (request) => {
    storageSaw.push(request.headers.get("authorization"));
    await request.body?.cancel();
    return new Response(null, { status: 201 });
  });
  const basic = `Basic ${btoa("me:pw")}`;
  const registry = serveLocal((request) => {
    if (request.headers.get("authorization") !== basic) {
      return new Response(null, { status: 401, headers: { "www-authenticate": "Basic" } });
    }
    if (request.method === "HEAD") return new Response(null, { status: 404 });
    return new Response(null, {
      status: 202,
      headers: { location: `${storage.origin}/upload/1?_state=opaque` },
    });
  });
  try {
    const client = new RegistryClient({ credentials: { username: "me", password: "pw" } });
    assert.equal((await client.pushBlobFile(`${registry.host}/a`, file.blob)).outcome, "uploaded");
    assert.deepEqual(storageSaw, [null]);
  } finally {
    await registry.close();
    await storage.close();
  }
});

Deno.test("a registry silent after the body is unreachable after the retries, in bounded time", async () => {
  await using file = await blobFile(encoder.encode("layer"));
  const registry = startBlobRegistry({ hangPuts: true });
  try {
    const started = Date.now();
    const error = await new RegistryClient({ retries: 1, timeoutMs: 300, random: () => 0 })
      .pushBlobFile(`${registry.host}/team/app`, file.blob)
      .then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.ok(error instanceof RegistryError);
    assert.equal(error.kind, "unreachable");
    assert.match(error.message, /PUT .* no answer within the timeout/);
    assert.equal(registry.requests.filter((r) => r.method === "PUT").length, 2);
    assert.ok(Date.now() - started < 5000);
  } finally {
    await registry.close();
  }
});

Deno.test("with a fetch given (as behind a proxy), the file goes through it, chunked", async () => {
  await using file = await blobFile(randomBytes(700_000));
  const registry = startBlobRegistry();
  try {
    const through: string[] = [];
    const client = new RegistryClient({
      fetch: (input, init) => {
        through.push(`${init?.method ?? "GET"} ${new URL(String(input)).pathname}`);
        return fetch(input, init);
      },
    });
    const pushed = await client.pushBlobFile(`${registry.host}/team/app`, file.blob);
    assert.equal(pushed.outcome, "uploaded");
    assert.equal(through.filter((line) => line.startsWith("PUT ")).length, 1);
    const put = registry.requests.find((r) => r.method === "PUT")!;
    assert.equal(put.transferEncoding, "chunked");
    assert.equal(put.received, file.blob.size);
    // A wrong digest is caught on this path too.
    const error = await client.pushBlobFile(`${registry.host}/team/other`, {
      ...file.blob,
      digest: `sha256:${"1".repeat(64)}`,
    }).then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.ok(error instanceof BuildError, String(error));
  } finally {
    await registry.close();
  }
});

Deno.test({
  // The registry runs in a process of its own: this process's memory is the client's alone.
  name: "a 200 MB blob is streamed from disk to a real registry: memory stays flat",
  ignore: !hasExecutable(DOCKER_REGISTRY_BIN),
  async fn() {
    await using file = await blobFile(200 << 20);
    const registry = await startRegistry();
    try {
      const client = new RegistryClient({ timeoutMs: 60_000 });
      const baseline = Deno.memoryUsage().rss;
      let peak = baseline;
      let reports = 0;
      const pushed = await client.pushBlobFile(`${registry.host}/team/big`, file.blob, {
        onBytesSent: () => {
          reports++;
          peak = Math.max(peak, Deno.memoryUsage().rss);
        },
      });
      assert.equal(pushed.outcome, "uploaded");
      assert.equal(reports, 800, "one report per 256 KiB piece");
      assert.equal(await client.hasBlob(`${registry.host}/team/big`, file.blob.digest), true);
      const grew = (peak - baseline) / (1 << 20);
      assert.ok(grew < 32, `memory grew by ${grew.toFixed(0)} MiB for a 200 MiB upload`);
    } finally {
      await registry.stop();
    }
  },
});

Deno.test("hasBlob() is true on 200, false on 404, an error otherwise", async () => {
  const registry = startBlobRegistry();
  const failing = serveLocal(() => new Response("no", { status: 403 }));
  try {
    const digest = `sha256:${"a".repeat(64)}`;
    registry.seed("team/app", digest, 3);
    const client = new RegistryClient();
    assert.equal(await client.hasBlob(`${registry.host}/team/app:1`, digest), true);
    assert.equal(await client.hasBlob(`${registry.host}/team/other`, digest), false);
    await assert.rejects(
      client.hasBlob(`${failing.host}/team/app`, digest),
      (e: unknown) => e instanceof RegistryError && e.kind === "denied",
    );
    await assert.rejects(client.hasBlob(`${registry.host}/team/app`, "sha256:nope"), /not a blob/);
  } finally {
    await registry.close();
    await failing.close();
  }
});

Deno.test({
  name: "pushBlobFile() against a real registry: upload, HEAD, mount into another repository",
  ignore: !hasExecutable(DOCKER_REGISTRY_BIN),
  async fn() {
    const registry = await startRegistry();
    const bytes = randomBytes(3_000_000);
    await using file = await blobFile(bytes);
    try {
      const client = new RegistryClient();
      const base = `${registry.host}/library/base`;
      assert.equal(await client.hasBlob(base, file.blob.digest), false);
      assert.equal((await client.pushBlobFile(base, file.blob)).outcome, "uploaded");
      assert.equal(await client.hasBlob(base, file.blob.digest), true);
      assert.equal((await client.pushBlobFile(base, file.blob)).outcome, "present");
      const app = `${registry.host}/team/app`;
      const mounted = await client.pushBlobFile(app, file.blob, { from: `${base}:1` });
      assert.equal(mounted.outcome, "mounted");
      const back = await client.getBlob(app, file.blob.digest, { maxBytes: 8 << 20 });
      assert.equal(back.length, bytes.length);
      assert.ok(back.every((byte, i) => byte === bytes[i]), "the blob reads back as sent");
      // A mount from a repository without the blob: the registry opens an upload instead.
      const other = await blobFile(encoder.encode("only here"));
      try {
        const pushed = await client.pushBlobFile(app, other.blob, { from: base });
        assert.equal(pushed.outcome, "uploaded");
      } finally {
        await other[Symbol.asyncDispose]();
      }
    } finally {
      await registry.stop();
    }
  },
});

Deno.test("pushBlob() streams bytes of 1 MiB or more as a file is streamed; smaller ones go through fetch", async () => {
  const registry = startBlobRegistry();
  try {
    const client = new RegistryClient();
    const large = randomBytes((1 << 20) + 3);
    const small = randomBytes(1000);
    const pushed = await client.pushBlob(`${registry.host}/team/app`, large);
    await client.pushBlob(`${registry.host}/team/app`, small);
    assert.equal(pushed.size, large.length);
    assert.equal(registry.blobs("team/app").get(pushed.digest), large.length);
    const puts = registry.requests.filter((r) => r.method === "PUT");
    assert.equal(puts.length, 2);
    // Both with a Content-Length and whole; only the streamed one over a connection of its own.
    assert.deepEqual(puts.map((put) => [put.contentLength, put.received]), [
      [String(large.length), large.length],
      [String(small.length), small.length],
    ]);
    assert.deepEqual(puts.map((put) => put.connection), ["close", null]);
  } finally {
    await registry.close();
  }
});

Deno.test("sha256Digest names large bytes (hashed in place) as it names small ones (Web Crypto)", async () => {
  for (const length of [0, 1000, (1 << 20) - 1, 1 << 20, (3 << 20) + 7]) {
    const bytes = randomBytes(length);
    const expected = new Uint8Array(
      await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>),
    );
    assert.equal(await sha256Digest(bytes), `sha256:${expected.toHex()}`, `${length} bytes`);
  }
});
