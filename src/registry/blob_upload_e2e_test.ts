// RegistryClient.pushBlobFile against the registry of the end-to-end environment
// (`tests/e2e/env.sh up`, 127.0.0.1:5000), the one imgtool's own pushes go to in the e2e
// tests: upload, HEAD, mount into another repository, read back. Ignored when the
// environment is not up (failing instead with IMGTOOL_E2E=require), as the e2e tests are.

import assert from "node:assert/strict";
import { join } from "node:path";
import { readFacts } from "../../tests/e2e/facts.ts";
import { RegistryClient } from "./client.ts";

const NAME = "pushBlobFile() against the e2e registry: upload, HEAD, mount, read back";

/** The registry's host, or why it cannot be used. */
async function e2eRegistry(): Promise<{ host: string } | { missing: string }> {
  const facts = await readFacts();
  if (typeof facts === "string") return { missing: facts };
  try {
    const response = await fetch(`http://${facts.REGISTRY}/v2/`, {
      signal: AbortSignal.timeout(5000),
    });
    await response.body?.cancel();
    if (response.status === 200) return { host: facts.REGISTRY };
    return { missing: `the registry on ${facts.REGISTRY} answers ${response.status}` };
  } catch {
    return { missing: `the registry on ${facts.REGISTRY} does not answer` };
  }
}

const registry = await e2eRegistry();

if ("host" in registry) {
  Deno.test(NAME, async () => {
    const run = `${Date.now().toString(36)}${crypto.randomUUID().slice(0, 8)}`;
    const dir = await Deno.makeTempDir({ prefix: "imgtool-blob-e2e-" });
    try {
      const bytes = new Uint8Array(5_000_000);
      for (let at = 0; at < bytes.length; at += 65536) {
        crypto.getRandomValues(bytes.subarray(at, Math.min(bytes.length, at + 65536)));
      }
      const path = join(dir, "layer.tar.gz");
      await Deno.writeFile(path, bytes);
      const hash = await crypto.subtle.digest("SHA-256", bytes);
      const digest = `sha256:${
        Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("")
      }`;
      const blob = { path, digest, size: bytes.length };
      const client = new RegistryClient();
      const base = `${registry.host}/imgtool-test/blob-${run}/base`;
      const app = `${registry.host}/imgtool-test/blob-${run}/app`;

      assert.equal(await client.hasBlob(base, digest), false);
      assert.equal((await client.pushBlobFile(base, blob)).outcome, "uploaded");
      assert.equal(await client.hasBlob(base, digest), true);
      assert.equal((await client.pushBlobFile(base, blob)).outcome, "present");
      assert.equal(await client.hasBlob(app, digest), false);
      assert.equal((await client.pushBlobFile(app, blob, { from: base })).outcome, "mounted");
      assert.equal(await client.hasBlob(app, digest), true);
      const back = await client.getBlob(app, digest, { maxBytes: 8 << 20 });
      assert.equal(back.length, bytes.length);
      assert.ok(back.every((byte, i) => byte === bytes[i]), "the blob reads back as sent");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
} else if (Deno.env.get("IMGTOOL_E2E") === "require") {
  Deno.test(NAME, () => {
    throw new Error(
      `the end-to-end environment is not up (${registry.missing}): run tests/e2e/env.sh up`,
    );
  });
} else {
  Deno.test({
    name: `${NAME} (environment not up: ${registry.missing}; run tests/e2e/env.sh up)`,
    ignore: true,
    fn: () => {},
  });
}
