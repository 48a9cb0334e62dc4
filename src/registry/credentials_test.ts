import assert from "node:assert/strict";
import { join } from "node:path";
import {
  credentialFromAuthEntry,
  dockerConfigDir,
  lookupCredential,
  parseDockerConfig,
  readDockerConfig,
  registryFromConfigKey,
  runCredentialHelper,
} from "./credentials.ts";
import { CredentialsError } from "./errors.ts";

/** Run `fn` with environment variables set, restoring them afterwards. */
async function withEnv(vars: Record<string, string>, fn: () => Promise<void>): Promise<void> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  for (const [k, v] of Object.entries(vars)) Deno.env.set(k, v);
  try {
    await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) Deno.env.delete(k);
      else Deno.env.set(k, v);
    }
  }
}

/** A temp dir holding `docker-credential-test`, a helper that answers per server URL. */
async function makeHelperDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "imgtool-helper-" });
  const script = `#!/bin/sh
read -r server
echo "$server" >> "$(dirname "$0")/asked.log"
case "$server" in
  127.0.0.1:5000) echo '{"ServerURL":"127.0.0.1:5000","Username":"helper-user","Secret":"helper-secret-1"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"https://index.docker.io/v1/","Username":"<token>","Secret":"refresh-abc-123"}' ;;
  garbled.example) echo 'Username=helper-user Secret=helper-secret-2' ;;
  failing.example) echo "keychain is locked" >&2; exit 3 ;;
  leaky.example) echo '{"Username":"ci","Secret":"ghp_leakedOnStdout71"}'; echo "auth failed for ci:pw-leakedOnStderr42" >&2; exit 1 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`;
  const path = join(dir, "docker-credential-test");
  await Deno.writeTextFile(path, script);
  await Deno.chmod(path, 0o755);
  return dir;
}

async function withHelper(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await makeHelperDir();
  try {
    await withEnv({ PATH: `${dir}:${Deno.env.get("PATH") ?? ""}` }, () => fn(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("dockerConfigDir() prefers the override, then $DOCKER_CONFIG, then ~/.docker", async () => {
  await withEnv({ DOCKER_CONFIG: "/from/env", HOME: "/home/someone" }, async () => {
    assert.equal(dockerConfigDir("/explicit"), "/explicit");
    assert.equal(dockerConfigDir(), "/from/env");
    Deno.env.delete("DOCKER_CONFIG");
    assert.equal(dockerConfigDir(), "/home/someone/.docker");
    await Promise.resolve();
  });
});

Deno.test("readDockerConfig() reads $DOCKER_CONFIG/config.json, and undefined when absent", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await withEnv({ DOCKER_CONFIG: dir }, async () => {
      assert.equal(await readDockerConfig(), undefined);
      await Deno.writeTextFile(
        join(dir, "config.json"),
        JSON.stringify({
          auths: {
            "ghcr.io": { auth: btoa("octo:ghp_secret") },
            "https://index.docker.io/v1/": {},
          },
          credHelpers: { "gcr.io": "gcloud" },
          credsStore: "desktop",
          currentContext: "default",
        }),
      );
      const config = await readDockerConfig();
      assert.ok(config);
      assert.equal(config.path, join(dir, "config.json"));
      assert.deepEqual(config.credHelpers, { "gcr.io": "gcloud" });
      assert.equal(config.credsStore, "desktop");
      assert.deepEqual(Object.keys(config.auths), ["ghcr.io", "https://index.docker.io/v1/"]);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an auths entry gives credentials from auth, username/password or identitytoken", () => {
  assert.deepEqual(credentialFromAuthEntry({ auth: btoa("u:p:with:colons") }, "r", "c.json"), {
    username: "u",
    password: "p:with:colons",
    source: 'auths["r"] in c.json',
  });
  assert.deepEqual(credentialFromAuthEntry({ username: "u", password: "p" }, "r", "c.json"), {
    username: "u",
    password: "p",
    source: 'auths["r"] in c.json',
  });
  assert.deepEqual(credentialFromAuthEntry({ identitytoken: "tok" }, "r", "c.json"), {
    username: "",
    identityToken: "tok",
    source: 'auths["r"] in c.json',
  });
  assert.equal(credentialFromAuthEntry({}, "r", "c.json"), undefined);
});

Deno.test("a malformed auth value is an error naming the entry but not the value", () => {
  for (const auth of ["%%%not-base64%%%", btoa("no-colon-here")]) {
    assert.throws(
      () => credentialFromAuthEntry({ auth }, "ghcr.io", "/c/config.json"),
      (error: unknown) => {
        assert.ok(error instanceof CredentialsError);
        assert.match(error.message, /auths\["ghcr\.io"\] in \/c\/config\.json/);
        assert.ok(!error.message.includes(auth));
        assert.ok(!error.message.includes("no-colon-here"));
        return true;
      },
    );
  }
});

Deno.test("a config.json that is not JSON is an error naming the file, quoting none of it", () => {
  assert.throws(
    () => parseDockerConfig('{"auths": {"x": {"auth": "c2VjcmV0OnM="}', "/c/config.json"),
    (error: unknown) => {
      assert.ok(error instanceof CredentialsError);
      assert.match(error.message, /Docker config \/c\/config\.json is not valid: it is not JSON/);
      assert.ok(!error.message.includes("c2VjcmV0OnM="));
      return true;
    },
  );
  assert.throws(() => parseDockerConfig('{"credHelpers": {"a": 1}}', "c.json"), /not a string/);
});

Deno.test("config.json keys match registries with scheme, path and Docker Hub aliases ignored", async () => {
  assert.equal(registryFromConfigKey("https://index.docker.io/v1/"), "docker.io");
  assert.equal(registryFromConfigKey("registry-1.docker.io"), "docker.io");
  assert.equal(registryFromConfigKey("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
  const config = parseDockerConfig(
    JSON.stringify({
      auths: {
        "https://index.docker.io/v1/": { auth: btoa("hubuser:hubpass") },
        "http://127.0.0.1:5000/v2/": { username: "local", password: "pw" },
      },
    }),
    "c.json",
  );
  assert.equal((await lookupCredential(config, "docker.io"))?.username, "hubuser");
  assert.equal((await lookupCredential(config, "127.0.0.1:5000"))?.username, "local");
  assert.equal(await lookupCredential(config, "ghcr.io"), undefined);
});

Deno.test("credHelpers run docker-credential-<name> get with the server on stdin", async () => {
  await withHelper(async (dir) => {
    const config = parseDockerConfig(
      JSON.stringify({
        auths: { "127.0.0.1:5000": { auth: btoa("inline:ignored") } },
        credHelpers: { "127.0.0.1:5000": "test" },
      }),
      "/c/config.json",
    );
    const credential = await lookupCredential(config, "127.0.0.1:5000");
    assert.deepEqual(credential, {
      username: "helper-user",
      password: "helper-secret-1",
      source: "credential helper docker-credential-test",
    });
    assert.equal(await Deno.readTextFile(join(dir, "asked.log")), "127.0.0.1:5000\n");
  });
});

Deno.test("credsStore is the default helper, asked about Docker Hub by its index URL", async () => {
  await withHelper(async (dir) => {
    const config = parseDockerConfig(
      JSON.stringify({ auths: { "https://index.docker.io/v1/": {} }, credsStore: "test" }),
      "c.json",
    );
    const hub = await lookupCredential(config, "docker.io");
    assert.deepEqual(hub, {
      username: "",
      identityToken: "refresh-abc-123",
      source: "credential helper docker-credential-test",
    });
    assert.equal(await lookupCredential(config, "other.example"), undefined, "not found = none");
    assert.equal(
      await Deno.readTextFile(join(dir, "asked.log")),
      "https://index.docker.io/v1/\nother.example\n",
    );
  });
});

Deno.test("a credential helper that is not installed is a clear error naming the setting", async () => {
  const config = parseDockerConfig(
    JSON.stringify({ credHelpers: { "ghcr.io": "surely-missing-helper" } }),
    "/c/config.json",
  );
  await assert.rejects(lookupCredential(config, "ghcr.io"), (error: unknown) => {
    assert.ok(error instanceof CredentialsError);
    assert.equal(
      error.message,
      "credential helper docker-credential-surely-missing-helper (credHelpers in /c/config.json) " +
        "is not installed",
    );
    assert.match(error.hint ?? "", /put it on PATH, or remove it from credHelpers/);
    return true;
  });
});

Deno.test("a failing credential helper is an error with its exit status, not its output", async () => {
  await withHelper(async () => {
    await assert.rejects(runCredentialHelper("test", "failing.example"), (error: unknown) => {
      assert.ok(error instanceof CredentialsError);
      assert.match(
        error.message,
        /docker-credential-test failed for failing\.example \(exit status 3\)/,
      );
      assert.ok(!error.message.includes("keychain is locked"), error.message);
      assert.match(error.hint ?? "", /echo failing\.example \| docker-credential-test get/);
      return true;
    });
  });
});

Deno.test("a failing credential helper's secret-looking output reaches no message", async () => {
  await withHelper(async () => {
    const config = parseDockerConfig(
      JSON.stringify({ credHelpers: { "leaky.example": "test" } }),
      "/c/config.json",
    );
    const error = await lookupCredential(config, "leaky.example")
      .then(() => assert.fail("expected an error"), (e: unknown) => e);
    assert.ok(error instanceof CredentialsError);
    assert.equal(error.exitCode, 1);
    assert.match(error.message, /failed for leaky\.example \(exit status 1\)/);
    assert.match(error.message, /credHelpers in \/c\/config\.json/);
    assert.match(error.hint ?? "", /remove it from credHelpers in \/c\/config\.json/);
    const everything = [
      error.message,
      error.hint,
      String(error),
      Deno.inspect(error, { depth: 10 }),
    ]
      .join("\n");
    for (const leak of ["ghp_leakedOnStdout71", "pw-leakedOnStderr42", "auth failed for"]) {
      assert.ok(!everything.includes(leak), `${leak} leaked into: ${everything}`);
    }
  });
});

Deno.test("a credential helper answering non-JSON is an error that does not quote the answer", async () => {
  await withHelper(async () => {
    await assert.rejects(runCredentialHelper("test", "garbled.example"), (error: unknown) => {
      assert.ok(error instanceof CredentialsError);
      assert.match(error.message, /not its JSON/);
      assert.ok(!error.message.includes("helper-secret-2"));
      return true;
    });
  });
});

Deno.test("a credential helper name with a path in it is refused", async () => {
  await assert.rejects(runCredentialHelper("../evil", "x"), /is not valid/);
});
