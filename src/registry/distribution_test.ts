// Against a real Distribution registry (Debian's docker-registry), started per test on
// 127.0.0.1 with temporary storage and stopped by pid at the end.

import assert from "node:assert/strict";
import { join } from "node:path";
import { RegistryClient } from "./client.ts";
import { RegistryError } from "./errors.ts";
import { FileTagCache } from "./tag_cache.ts";
import { DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from "./manifest.ts";
import { DOCKER_REGISTRY_BIN, hasExecutable, pushTestImage, startRegistry } from "./testing.ts";

const noRegistry = !hasExecutable(DOCKER_REGISTRY_BIN);
const SKOPEO = "/usr/bin/skopeo";

async function skopeo(...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(SKOPEO, {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(stderr);
  if (code !== 0) throw new Error(`skopeo ${args.join(" ")} failed: ${err}`);
  return new TextDecoder().decode(stdout);
}

Deno.test({
  name: "RegistryClient against a real registry: check, putIndex and platforms",
  ignore: noRegistry,
  async fn(t) {
    const registry = await startRegistry();
    const logs: string[] = [];
    const client = new RegistryClient({ log: (line) => logs.push(line) });
    const repo = `${registry.host}/team/app`;
    try {
      const amd64 = await pushTestImage(client, `${repo}:1.0-amd64`, "linux/amd64");
      const arm64 = await pushTestImage(client, `${repo}:1.0-arm64`, "linux/arm64");

      await t.step(
        "check() finds a single-platform tag and reads its platform from the config",
        async () => {
          const status = await client.check(`${repo}:1.0-amd64`, ["linux/amd64"]);
          assert.deepEqual(status, {
            exists: true,
            digest: amd64.digest,
            mediaType: OCI_MANIFEST,
            platforms: ["linux/amd64"],
            missing: [],
          });
        },
      );

      await t.step("check() of a missing tag says exists: false, without an error", async () => {
        const status = await client.check(`${repo}:nope`, ["linux/amd64"]);
        assert.deepEqual(status, { exists: false, platforms: [], missing: ["linux/amd64"] });
      });

      await t.step("check() of a repository that was never pushed says exists: false", async () => {
        const status = await client.check(`${registry.host}/never/pushed:1`, []);
        assert.equal(status.exists, false);
      });

      await t.step("check() reports a requested platform the image lacks as missing", async () => {
        const status = await client.check(`${repo}:1.0-amd64`, ["linux/amd64", "linux/arm64"]);
        assert.equal(status.exists, false);
        assert.deepEqual(status.platforms, ["linux/amd64"]);
        assert.deepEqual(status.missing, ["linux/arm64"]);
      });

      let indexDigest = "";
      await t.step(
        "putIndex() writes an OCI index whose check() lists both platforms",
        async () => {
          indexDigest = await client.putIndex(`${repo}:1.0`, [
            { reference: ":1.0-amd64", platform: "linux/amd64" },
            { reference: `${repo}:1.0-arm64`, platform: "linux/arm64" },
          ]);
          assert.match(indexDigest, /^sha256:[a-f0-9]{64}$/);
          const status = await client.check(`${repo}:1.0`, ["linux/amd64", "linux/arm64"]);
          assert.deepEqual(status, {
            exists: true,
            digest: indexDigest,
            mediaType: OCI_INDEX,
            platforms: ["linux/amd64", "linux/arm64"],
            missing: [],
          });
          const arm = await client.check(`${repo}:1.0`, ["linux/arm64/v8"]);
          assert.equal(arm.exists, true, "arm64/v8 normalizes to arm64");
        },
      );

      await t.step("the index lists each manifest's digest, size and media type", async () => {
        const fetched = await client.getManifest(`${repo}@${indexDigest}`);
        assert.ok(fetched);
        assert.equal(fetched.digest, indexDigest);
        const json = fetched.json as {
          mediaType: string;
          manifests: { digest: string; size: number; mediaType: string; platform: unknown }[];
        };
        assert.equal(json.mediaType, OCI_INDEX);
        assert.deepEqual(json.manifests.map((m) => [m.digest, m.mediaType, m.platform]), [
          [amd64.digest, OCI_MANIFEST, { os: "linux", architecture: "amd64" }],
          [arm64.digest, OCI_MANIFEST, { os: "linux", architecture: "arm64" }],
        ]);
        const amdManifest = await client.getManifest(`${repo}:1.0-amd64`);
        assert.equal(json.manifests[0].size, amdManifest?.size);
      });

      await t.step("check() of the index reports a platform it lacks as missing", async () => {
        const status = await client.check(`${repo}:1.0`, ["linux/amd64", "linux/arm/v7"]);
        assert.equal(status.exists, false);
        assert.deepEqual(status.missing, ["linux/arm/v7"]);
      });

      await t.step("putIndex() accepts members by digest", async () => {
        const digest = await client.putIndex(`${repo}:by-digest`, [
          { reference: `@${amd64.digest}`, platform: "linux/amd64" },
          { reference: arm64.digest, platform: "linux/arm64" },
        ]);
        assert.equal(digest, indexDigest, "same members, same bytes, same digest");
      });

      await t.step("putIndex() refuses a member whose config says another platform", async () => {
        await assert.rejects(
          client.putIndex(`${repo}:wrong`, [{ reference: ":1.0-amd64", platform: "linux/arm64" }]),
          /1\.0-amd64 is a linux\/amd64 image, not linux\/arm64/,
        );
      });

      await t.step("putIndex() names a member that does not exist (not-found)", async () => {
        await assert.rejects(
          client.putIndex(`${repo}:broken`, [{ reference: ":gone", platform: "linux/amd64" }]),
          (error: unknown) =>
            error instanceof RegistryError && error.kind === "not-found" &&
            error.message.includes(":gone"),
        );
      });

      await t.step("putIndex() refuses a member in another repository", async () => {
        await assert.rejects(
          client.putIndex(`${repo}:x`, [{
            reference: `${registry.host}/other:1`,
            platform: "linux/amd64",
          }]),
          /is not in 127\.0\.0\.1:\d+\/team\/app/,
        );
      });

      await t.step("Docker schema 2 manifests and manifest lists are read too", async () => {
        const dockerAmd = await pushTestImage(client, `${repo}:d-amd64`, "linux/amd64", "docker");
        const dockerArm = await pushTestImage(client, `${repo}:d-arm`, "linux/arm/v7", "docker");
        const list = {
          schemaVersion: 2,
          mediaType: DOCKER_MANIFEST_LIST,
          manifests: [
            {
              ...descriptor(dockerAmd, await sizeOf(client, `${repo}:d-amd64`)),
              platform: { os: "linux", architecture: "amd64" },
            },
            {
              ...descriptor(dockerArm, await sizeOf(client, `${repo}:d-arm`)),
              platform: { os: "linux", architecture: "arm", variant: "v7" },
            },
          ],
        };
        await client.putManifest(
          `${repo}:d-list`,
          new TextEncoder().encode(JSON.stringify(list)),
          DOCKER_MANIFEST_LIST,
        );
        const status = await client.check(`${repo}:d-list`, ["linux/amd64", "linux/arm"]);
        assert.deepEqual(status.platforms, ["linux/amd64", "linux/arm/v7"]);
        assert.equal(status.mediaType, DOCKER_MANIFEST_LIST);
        assert.equal(status.exists, true);
        const single = await client.check(`${repo}:d-arm`, ["linux/arm/v7"]);
        assert.deepEqual(single.platforms, ["linux/arm/v7"]);
        assert.equal(single.exists, true);
      });

      await t.step("pushBlob() skips a blob the registry already has", async () => {
        const bytes = new TextEncoder().encode("once");
        await client.pushBlob(repo, bytes);
        const before = logs.filter((l) => l.startsWith("POST ")).length;
        const again = await client.pushBlob(repo, bytes);
        assert.equal(logs.filter((l) => l.startsWith("POST ")).length, before);
        assert.equal(again.size, 4);
        assert.deepEqual(await client.getBlob(repo, again.digest), bytes);
      });

      await t.step({
        name: "skopeo reads the written index as a valid multi-platform image",
        ignore: !hasExecutable(SKOPEO),
        fn: async () => {
          const raw = JSON.parse(
            await skopeo(
              "inspect",
              "--raw",
              "--no-creds",
              "--tls-verify=false",
              `docker://${repo}:1.0`,
            ),
          );
          assert.equal(raw.mediaType, OCI_INDEX);
          assert.equal(raw.manifests.length, 2);
          const arm = JSON.parse(
            await skopeo(
              "--override-os",
              "linux",
              "--override-arch",
              "arm64",
              "inspect",
              "--tls-verify=false",
              `docker://${repo}:1.0`,
            ),
          );
          assert.equal(arm.Architecture, "arm64");
          assert.equal(arm.Digest, indexDigest, "skopeo reports the index it resolved through");
          assert.equal(arm.Labels["test.platform"], "linux/arm64", "and the arm64 image's config");
        },
      });
    } catch (error) {
      console.error(registry.output());
      throw error;
    } finally {
      await registry.stop();
    }
  },
});

function descriptor(image: { digest: string; mediaType: string }, size: number) {
  return { mediaType: image.mediaType, digest: image.digest, size };
}

async function sizeOf(client: RegistryClient, reference: string): Promise<number> {
  const manifest = await client.getManifest(reference);
  if (!manifest) throw new Error(`${reference} vanished`);
  return manifest.size;
}

Deno.test({
  name: "RegistryClient with htpasswd basic auth takes credentials from config.json",
  ignore: noRegistry || !hasExecutable("/usr/bin/htpasswd"),
  async fn(t) {
    const htpasswd = await new Deno.Command("/usr/bin/htpasswd", {
      args: ["-Bbn", "alice", "wonder-land-42"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(htpasswd.code, 0, "htpasswd -Bbn works");
    const real = await startRegistry({
      prepare: (dir) => Deno.writeFile(join(dir, "htpasswd"), htpasswd.stdout),
      authYaml: (dir) =>
        `  htpasswd:\n    realm: test\n    path: ${JSON.stringify(join(dir, "htpasswd"))}`,
    });
    const configDir = await Deno.makeTempDir({ prefix: "imgtool-docker-config-" });
    const repo = `${real.host}/private/app`;
    try {
      await Deno.writeTextFile(
        join(configDir, "config.json"),
        JSON.stringify({ auths: { [real.host]: { auth: btoa("alice:wonder-land-42") } } }),
      );
      const logs: string[] = [];
      const client = new RegistryClient({ dockerConfigDir: configDir, log: (l) => logs.push(l) });

      await t.step("with config.json credentials, pushing and checking works", async () => {
        await pushTestImage(client, `${repo}:amd64`, "linux/amd64");
        await pushTestImage(client, `${repo}:arm64`, "linux/arm64");
        await client.putIndex(`${repo}:multi`, [
          { reference: ":amd64", platform: "linux/amd64" },
          { reference: ":arm64", platform: "linux/arm64" },
        ]);
        const status = await client.check(`${repo}:multi`, ["linux/amd64", "linux/arm64"]);
        assert.equal(status.exists, true);
        assert.deepEqual(status.platforms, ["linux/amd64", "linux/arm64"]);
      });

      await t.step("after the first challenge, Basic auth is sent up front (one 401 only)", () => {
        assert.equal(logs.filter((l) => l.endsWith("-> 401")).length, 1);
      });

      await t.step(
        "without credentials the error is unauthorized and says docker login",
        async () => {
          const emptyDir = await Deno.makeTempDir();
          try {
            const anonymous = new RegistryClient({ dockerConfigDir: emptyDir });
            const error = await anonymous.check(`${repo}:multi`, []).then(
              () => assert.fail("expected an error"),
              (e: unknown) => e,
            );
            assert.ok(error instanceof RegistryError);
            assert.equal(error.kind, "unauthorized");
            assert.equal(error.exitCode, 1);
            assert.match(
              error.hint ?? "",
              new RegExp(`docker login ${real.host.replace(".", "\\.")}`),
            );
            assert.match(error.hint ?? "", /credHelpers/);
          } finally {
            await Deno.remove(emptyDir, { recursive: true });
          }
        },
      );

      await t.step(
        "a wrong password is unauthorized, and the password appears nowhere",
        async () => {
          const lines: string[] = [];
          const wrong = new RegistryClient({
            credentials: { username: "alice", password: "not-the-password-777" },
            log: (l) => lines.push(l),
          });
          const error = await wrong.check(`${repo}:multi`, []).then(
            () => assert.fail("expected an error"),
            (e: unknown) => e,
          );
          assert.ok(error instanceof RegistryError);
          assert.equal(error.kind, "unauthorized");
          assert.match(error.hint ?? "", /credentials given to imgtool were not accepted/);
          const everything = [
            error.message,
            error.hint ?? "",
            String(error),
            Deno.inspect(error, { depth: 10 }),
            ...lines,
          ].join("\n");
          for (const secret of ["not-the-password-777", btoa("alice:not-the-password-777")]) {
            assert.ok(!everything.includes(secret), `found a secret in: ${everything}`);
          }
        },
      );

      await t.step("explicit credentials win over config.json", async () => {
        const explicit = new RegistryClient({
          dockerConfigDir: configDir,
          credentials: () => Promise.resolve({ username: "alice", password: "wrong" }),
        });
        await assert.rejects(explicit.check(`${repo}:multi`, []), { kind: "unauthorized" });
        const fallBack = new RegistryClient({
          dockerConfigDir: configDir,
          credentials: () => Promise.resolve(undefined),
        });
        assert.equal((await fallBack.check(`${repo}:multi`, [])).exists, true);
      });
    } catch (error) {
      console.error(real.output());
      throw error;
    } finally {
      await real.stop();
      await Deno.remove(configDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a remembered tag costs one HEAD while its digest stays; a changed tag is read again",
  ignore: noRegistry,
  async fn() {
    const registry = await startRegistry();
    const cacheDir = await Deno.makeTempDir({ prefix: "imgtool-tag-cache-" });
    const repo = `${registry.host}/team/cached`;
    // A fresh client per check, as each build is a fresh process; only the folder is shared.
    const checkLogged = async (platform: string) => {
      const logs: string[] = [];
      const client = new RegistryClient({
        log: (line) => logs.push(line),
        tagCache: new FileTagCache(cacheDir),
      });
      const status = await client.check(`${repo}:1.0`, [platform]);
      // Each request as its method, marked when the client says it sent it on its direct
      // connection (direct_head_test.ts checks that connection from the server's side).
      const requests = logs.filter((line) => / -> \d+( \(direct connection\))?$/.test(line))
        .map((line) => `${line.split(" ")[0]}${line.endsWith("(direct connection)") ? "*" : ""}`);
      return { status, requests };
    };
    try {
      const pusher = new RegistryClient();
      const amd64 = await pushTestImage(pusher, `${repo}:1.0`, "linux/amd64");

      const first = await checkLogged("linux/amd64");
      assert.equal(first.status.exists, true);
      assert.deepEqual(first.requests, ["GET", "GET"]);

      const second = await checkLogged("linux/amd64");
      assert.deepEqual(second.status, first.status);
      // One HEAD, which the client sent on its direct connection.
      assert.deepEqual(second.requests, ["HEAD*"]);
      assert.equal(
        (await checkLogged("linux/arm64")).status.exists,
        false,
        "platforms still count",
      );

      // The tag now names another image: its digest differs, so the manifest is read again.
      const arm64 = await pushTestImage(pusher, `${repo}:1.0`, "linux/arm64");
      assert.notEqual(arm64.digest, amd64.digest);
      const moved = await checkLogged("linux/arm64");
      assert.deepEqual(moved.requests, ["HEAD*", "GET", "GET"]);
      assert.equal(moved.status.exists, true);
      assert.equal(moved.status.digest, arm64.digest);
      assert.deepEqual(moved.status.platforms, ["linux/arm64"]);
      assert.deepEqual((await checkLogged("linux/arm64")).requests.length, 1);

      // A remembered tag the registry no longer has is missing, not remembered.
      const gone = new FileTagCache(cacheDir);
      const elsewhere = `${registry.host}/team/never:1.0`;
      gone.set(elsewhere, {
        digest: arm64.digest,
        mediaType: OCI_MANIFEST,
        platforms: ["linux/arm64"],
      });
      const client = new RegistryClient({ tagCache: gone });
      assert.equal((await client.check(elsewhere, ["linux/arm64"])).exists, false);
    } finally {
      await registry.stop();
      await Deno.remove(cacheDir, { recursive: true });
    }
  },
});
