import assert from "node:assert/strict";
import { join } from "node:path";
import { imgtool, withTempDir } from "./helpers.ts";

// A registry that accepts connections and never answers: the worst kind, since nothing fails.
function silentServer(): { port: number; close: () => void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  (async () => {
    try {
      for await (const conn of listener) held.push(conn);
    } catch {
      // closed
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close: () => {
      listener.close();
      for (const conn of held) {
        try {
          conn.close();
        } catch {
          // already closed
        }
      }
    },
  };
}

Deno.test("build --push against a registry that never answers says it is retrying, and ends in bounded time (registry-timeout)", async () => {
  const server = silentServer();
  try {
    await withTempDir(async (dir) => {
      await Deno.writeTextFile(
        join(dir, "spec.ts"),
        `import { Image } from "imgtool";\n` +
          `export default Image.fromBase("debian:bookworm").withEnvVars({ A: "1" });\n`,
      );
      await Deno.writeTextFile(
        join(dir, "imgtool.toml"),
        `registry = "127.0.0.1:${server.port}/team"\nregistry-timeout = 0.3\n`,
        { mode: 0o644 },
      );
      const started = Date.now();
      const result = await imgtool(["build", "spec.ts", "--push"], {
        cwd: dir,
        env: { IMGTOOL_DOCKER_CLIENT: "/nonexistent" },
      });
      const seconds = (Date.now() - started) / 1000;
      assert.equal(result.code, 1, result.stderr);
      // Every attempt timed out, and each retry was announced with the attempt and the wait.
      assert.match(
        result.stderr,
        /GET 127\.0\.0\.1:\d+\/v2\/team\/debian\/manifests\/\w+: failed: .*; attempt 2 of 4 in \d/,
        result.stderr,
      );
      assert.match(result.stderr, /attempt 4 of 4 in/, result.stderr);
      assert.match(result.stderr, new RegExp(`127\\.0\\.0\\.1:${server.port}`), result.stderr);
      // Four attempts of 0.3 s and three jittered waits of at most a few seconds each.
      assert.ok(seconds < 20, `took ${seconds} s`);
    });
  } finally {
    server.close();
  }
});

Deno.test("registry-timeout must be a positive number of seconds", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "spec.ts"),
      `import { Image } from "imgtool";\nexport default Image.fromBase("debian:bookworm");\n`,
    );
    const result = await imgtool(["uri", "spec.ts"], {
      cwd: dir,
      env: { IMGTOOL_REGISTRY_TIMEOUT: "0" },
    });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /IMGTOOL_REGISTRY_TIMEOUT/);
    assert.match(result.stderr, /seconds above 0/);
  });
});
