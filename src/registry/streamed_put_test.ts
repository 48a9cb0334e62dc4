// putFile, the file PUT over a connection of its own: the request as it goes out on the wire
// (read by a plain TCP server here), the answers it must read (interim 100, chunked bodies),
// TLS with a CA given through DENO_CERT (in a child process, which alone sees that
// variable), and the file checks.

import assert from "node:assert/strict";
import { join } from "node:path";
import { toFileUrl } from "../path.ts";
import { BuildError } from "../errors.ts";
import { putFile } from "./streamed_put.ts";

const encoder = new TextEncoder();
const OPENSSL = "/usr/bin/openssl";

async function sha256(bytes: Uint8Array): Promise<string> {
  const hash = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return `sha256:${
    Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("")
  }`;
}

/**
 * A TCP server on 127.0.0.1 for one connection: it reads the request head and a body of the
 * length the head announces, then writes `answer` and closes.
 */
function rawServer(answer: string) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const received = (async () => {
    const connection = await listener.accept();
    const bytes: number[] = [];
    const buffer = new Uint8Array(65536);
    let headEnd = -1;
    let length = 0;
    while (true) {
      const n = await connection.read(buffer);
      if (n === null) break;
      for (let i = 0; i < n; i++) bytes.push(buffer[i]);
      if (headEnd === -1) {
        const text = String.fromCharCode(...bytes.slice(0, Math.min(bytes.length, 4096)));
        const end = text.indexOf("\r\n\r\n");
        if (end !== -1) {
          headEnd = end + 4;
          length = Number(/content-length: (\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
        }
      }
      if (headEnd !== -1 && bytes.length >= headEnd + length) break;
    }
    await connection.write(encoder.encode(answer));
    connection.close();
    listener.close();
    const head = String.fromCharCode(...bytes.slice(0, headEnd));
    return { head, body: Uint8Array.from(bytes.slice(headEnd)) };
  })();
  return { port: (listener.addr as Deno.NetAddr).port, received };
}

Deno.test("putFile sends a Content-Length and the file, and reads an interim 100 and a chunked answer", async () => {
  const dir = await Deno.makeTempDir({ prefix: "imgtool-put-" });
  try {
    const content = Uint8Array.from({ length: 700_000 }, (_, i) => (i * 31) % 256);
    const path = join(dir, "blob");
    await Deno.writeFile(path, content);
    const server = rawServer(
      "HTTP/1.1 100 Continue\r\n\r\n" +
        "HTTP/1.1 400 Bad Thing\r\nContent-Type: application/json\r\n" +
        "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
    );
    const answer = await putFile({
      url: new URL(`http://127.0.0.1:${server.port}/v2/a/blobs/uploads/1?_state=x&digest=d`),
      headers: { "content-type": "application/octet-stream", authorization: "Basic abc" },
      path,
      size: content.length,
      digest: await sha256(content),
      timeoutMs: 5000,
    });
    assert.equal(answer.status, 400);
    assert.equal(answer.statusText, "Bad Thing");
    assert.equal(answer.headers.get("content-type"), "application/json");
    assert.equal(await answer.text(), "hello world");
    const { head, body } = await server.received;
    assert.equal(
      head,
      `PUT /v2/a/blobs/uploads/1?_state=x&digest=d HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n` +
        "content-type: application/octet-stream\r\nauthorization: Basic abc\r\n" +
        `Content-Length: ${content.length}\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(body.length, content.length);
    assert.ok(body.every((byte, i) => byte === content[i]), "the body is the file");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("putFile refuses headers that could smuggle a line, and files that are not as announced", async () => {
  const dir = await Deno.makeTempDir({ prefix: "imgtool-put-" });
  try {
    const path = join(dir, "blob");
    await Deno.writeTextFile(path, "abc");
    const base = {
      url: new URL("http://127.0.0.1:9/upload"),
      path,
      size: 3,
      digest: await sha256(encoder.encode("abc")),
      timeoutMs: 1000,
    };
    await assert.rejects(
      putFile({ ...base, headers: { "x-a": "1\r\nEvil: 2" } }),
      /cannot be sent/,
    );
    await assert.rejects(
      putFile({ ...base, headers: { "Content-Length": "9" } }),
      /cannot be sent/,
    );
    // Shorter than announced: found on reading, before any connection matters.
    const server = rawServer("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    const error = await putFile({
      ...base,
      url: new URL(`http://127.0.0.1:${server.port}/upload`),
      headers: {},
      size: 10,
    }).then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.ok(error instanceof BuildError);
    assert.match(error.message, /it ended after 3 of the 10 bytes announced/);
    // The server saw the head and a body cut short; its answer may find the line closed.
    const { head, body } = await server.received.catch(() => ({ head: "", body: undefined }));
    if (body) assert.ok(body.length < 10 && head.includes("Content-Length: 10"), head);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "putFile speaks TLS to a registry whose CA is given in DENO_CERT, as fetch trusts it",
  ignore: !(await Deno.stat(OPENSSL).then(() => true, () => false)),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "imgtool-put-tls-" });
    try {
      const openssl = async (...args: string[]) => {
        const { code, stderr } = await new Deno.Command(OPENSSL, {
          args,
          cwd: dir,
          stderr: "piped",
        })
          .output();
        assert.equal(code, 0, new TextDecoder().decode(stderr));
      };
      await openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=imgtool test CA",
      );
      await openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=127.0.0.1",
      );
      await Deno.writeTextFile(
        join(dir, "leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
      );
      await openssl(
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
      );
      await Deno.writeTextFile(join(dir, "blob"), "over tls");
      const script = join(dir, "put.ts");
      await Deno.writeTextFile(
        script,
        `import { putFile } from ${
          JSON.stringify(toFileUrl(join(import.meta.dirname!, "streamed_put.ts")).href)
        };
const server = Deno.serve({
  hostname: "127.0.0.1", port: 0, onListen() {},
  cert: Deno.readTextFileSync(${JSON.stringify(join(dir, "cert.pem"))}),
  key: Deno.readTextFileSync(${JSON.stringify(join(dir, "key.pem"))}),
}, async (request) => new Response(\`\${request.headers.get("content-length")}:\${await request.text()}\`, { status: 201 }));
try {
  const answer = await putFile({
    url: new URL(\`https://127.0.0.1:\${server.addr.port}/upload\`),
    headers: {}, path: ${JSON.stringify(join(dir, "blob"))}, size: 8,
    digest: "${await sha256(encoder.encode("over tls"))}", timeoutMs: 10000,
  });
  console.log(answer.status, await answer.text());
} catch (error) {
  console.log("failed:", String(error));
} finally {
  await server.shutdown();
}
`,
      );
      const run = async (env: Record<string, string>) => {
        const { stdout } = await new Deno.Command(Deno.execPath(), {
          args: ["run", "--allow-all", "--no-config", script],
          env,
          stdout: "piped",
          stderr: "null",
        }).output();
        return new TextDecoder().decode(stdout).trim();
      };
      assert.equal(await run({ DENO_CERT: join(dir, "ca.pem") }), "201 8:over tls");
      // Without the CA the certificate is not trusted: the connection fails.
      assert.match(await run({}), /^failed: UploadConnectionError: .*(certificate|UnknownIssuer)/i);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("putFile sends bytes in memory as it sends a file: a Content-Length, then the bytes in pieces", async () => {
  const content = Uint8Array.from({ length: 3 * (256 << 10) + 5 }, (_, i) => (i * 7) % 251);
  const server = rawServer("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
  const sent: number[] = [];
  const answer = await putFile({
    url: new URL(`http://127.0.0.1:${server.port}/v2/a/blobs/uploads/2?digest=d`),
    headers: {},
    path: "the statement",
    bytes: content,
    size: content.length,
    digest: await sha256(content),
    timeoutMs: 5000,
    onBytesSent: (bytes) => sent.push(bytes),
  });
  assert.equal(answer.status, 201);
  const { head, body } = await server.received;
  assert.match(head, new RegExp(`Content-Length: ${content.length}\r\n`));
  assert.equal(body.length, content.length);
  assert.ok(body.every((byte, i) => byte === content[i]), "the body is the bytes");
  assert.deepEqual(sent, [1, 2, 3].map((n) => n * (256 << 10)).concat(content.length));
  // Bytes of another length than announced are refused before anything is sent.
  const short = await putFile({
    url: new URL("http://127.0.0.1:9/upload"),
    headers: {},
    path: "the statement",
    bytes: content.subarray(1),
    size: content.length,
    digest: await sha256(content),
    timeoutMs: 5000,
  }).then(() => assert.fail("expected an error"), (e: unknown) => e);
  assert.ok(short instanceof BuildError, String(short));
  assert.match(short.message, /the statement has 786436 bytes, not the 786437 announced/);
});
