// `imgtool status`, the deploy gate, run as users run it against a stand-in registry on
// 127.0.0.1 (tests/fake_registry.ts): exists and missing per image and platform from the
// registry's answer, unknown (never exists) when the registry cannot be asked, and the exit
// status a CI job gates on.
import assert from "node:assert/strict";
import { join } from "node:path";
import { RegistryClient } from "../src/registry/client.ts";
import { defaultTagCacheDir, FileTagCache } from "../src/registry/tag_cache.ts";
import { type FakeRegistry, startFakeRegistry } from "./fake_registry.ts";
import { type CliResult, imgtool, withTempDir, writeTree } from "./helpers.ts";

const BOTH = ["linux/amd64", "linux/arm64"];

/** A project whose images live in `registry`: `app` is built, `base` is a base used as is. */
function projectFiles(registry: string, extra: Record<string, string> = {}) {
  return {
    "spec.ts": `import { Image } from "imgtool";
export default Image.fromBase("${registry}/team/base:1").clone({ name: "app" })
  .withEnvVars({ A: "1" });
export const base = Image.fromBase("${registry}/team/base:1");
`,
    "imgtool.toml": `registry = "${registry}/team"\nplatforms = ${JSON.stringify(BOTH)}\n` +
      `registry-timeout = 2\n`,
    ...extra,
  };
}

/** Run imgtool in `dir` with a cache folder of its own. */
function run(dir: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return imgtool(args, { cwd: dir, env: { XDG_CACHE_HOME: join(dir, ".cache"), ...env } });
}

/** The URI `imgtool uri` gives the default export, split into repository and tag. */
async function appUri(dir: string, registry: FakeRegistry) {
  const result = await run(dir, ["uri", "spec.ts", "--image", "default"]);
  assert.equal(result.code, 0, result.stderr);
  const uri = result.stdout.trim();
  const [repository, tag] = uri.slice(registry.host.length + 1).split(":");
  return { uri, repository, tag };
}

/** The `--json` output of a status run. */
interface StatusJson {
  ok: boolean;
  images: {
    image: string;
    uri: string;
    platforms: { platform: string; status: string; reason?: string; hint?: string }[];
  }[];
}

function parse(result: CliResult): StatusJson {
  try {
    return JSON.parse(result.stdout);
  } catch {
    throw new Error(`no JSON on stdout:\n${result.stdout}\n${result.stderr}`);
  }
}

/** The status of each `image platform` pair of a JSON run. */
function states(json: StatusJson): Record<string, string> {
  return Object.fromEntries(
    json.images.flatMap((image) =>
      image.platforms.map((p) => [`${image.image} ${p.platform}`, p.status])
    ),
  );
}

async function withProject(
  body: (dir: string, registry: FakeRegistry) => Promise<void>,
  extra: (host: string) => Record<string, string> = () => ({}),
) {
  const registry = await startFakeRegistry();
  try {
    await withTempDir(async (dir) => {
      await writeTree(dir, projectFiles(registry.host, extra(registry.host)));
      await body(dir, registry);
    });
  } finally {
    await registry.close();
  }
}

Deno.test("status says missing for every platform the registry lacks and exits 1; once pushed, exists and exits 0", () =>
  withProject(async (dir, registry) => {
    const { uri, repository, tag } = await appUri(dir, registry);
    const before = await run(dir, ["status", "spec.ts", "--image", "default"]);
    assert.equal(before.code, 1, before.stderr);
    assert.deepEqual(before.stdout.trim().split("\n").slice(0, 2), [
      `missing  linux/amd64  ${uri}`,
      `missing  linux/arm64  ${uri}`,
    ]);
    assert.match(before.stdout, /^not ready: 2 missing, 0 unknown, 0 exist$/m);
    // The registry was asked for exactly the tag uri computes.
    assert.ok(registry.requests.includes(`GET /v2/${repository}/manifests/${tag} -> 404`));

    // One platform pushed: that one exists, the other is still missing.
    await registry.addIndex(repository, tag, ["linux/amd64"]);
    const half = parse(await run(dir, ["status", "spec.ts", "--image", "default", "--json"]));
    assert.deepEqual(states(half), {
      "default linux/amd64": "exists",
      "default linux/arm64": "missing",
    });
    assert.equal(half.ok, false);

    await registry.addIndex(repository, tag, BOTH);
    const after = await run(dir, ["status", "spec.ts", "--image", "default"]);
    assert.equal(after.code, 0, after.stderr);
    assert.match(after.stdout, new RegExp(`^exists   linux/amd64  ${uri}$`, "m"));
    assert.match(after.stdout, new RegExp(`^exists   linux/arm64  ${uri}$`, "m"));
    assert.match(after.stdout, /^ready: every image exists, for every platform$/m);
    // Never the local engine: no docker client is needed (it does not exist here).
    assert.doesNotMatch(after.stderr, /docker/);
  }));

Deno.test("status --json gives { ok, images: [{ image, uri, platforms: [{ platform, status }] }] } in spec order", () =>
  withProject(async (dir, registry) => {
    const { uri, repository, tag } = await appUri(dir, registry);
    await registry.addIndex(repository, tag, BOTH);
    await registry.addIndex("team/base", "1", BOTH);
    const result = await run(dir, ["status", "spec.ts", "--json"]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(parse(result), {
      ok: true,
      images: [
        {
          image: "default",
          uri,
          platforms: BOTH.map((platform) => ({ platform, status: "exists" })),
        },
        {
          image: "base",
          uri: `${registry.host}/team/base:1`,
          platforms: BOTH.map((platform) => ({ platform, status: "exists" })),
        },
      ],
    });
    assert.equal(result.stderr, "", "--json prints no progress");
  }));

Deno.test("an existing base used as is is looked up by its own reference", () =>
  withProject(async (dir, registry) => {
    const missing = parse(await run(dir, ["status", "spec.ts", "--image", "base", "--json"]));
    assert.equal(missing.images[0].uri, `${registry.host}/team/base:1`);
    assert.deepEqual(states(missing), {
      "base linux/amd64": "missing",
      "base linux/arm64": "missing",
    });
    assert.ok(registry.requests.includes("GET /v2/team/base/manifests/1 -> 404"));
    await registry.addImage("team/base", "1", "linux/arm64");
    const arm = parse(await run(dir, ["status", "spec.ts", "--image", "base", "--json"]));
    assert.deepEqual(states(arm), { "base linux/amd64": "missing", "base linux/arm64": "exists" });
  }));

Deno.test("--platform and --image narrow what status asks about; --registry names the registry", () =>
  withProject(async (dir, registry) => {
    const { repository, tag } = await appUri(dir, registry);
    // The tag differs per platform set: ask uri for the one-platform image's tag.
    const arm = await run(dir, [
      "uri",
      "spec.ts",
      "--image",
      "default",
      "--platform",
      "linux/arm64",
    ]);
    const armTag = arm.stdout.trim().split(":").pop()!;
    assert.notEqual(armTag, tag);
    await registry.addImage(repository, armTag, "linux/arm64");
    const result = await run(dir, [
      "status",
      "spec.ts",
      "--image",
      "default",
      "--platform",
      "linux/arm64",
    ]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.equal(result.stdout.split("\n")[0], `exists   linux/arm64  ${arm.stdout.trim()}`);
    // --registry wins over imgtool.toml: the image is looked for in the other registry.
    const other = await startFakeRegistry();
    try {
      const elsewhere = parse(
        await run(dir, [
          "status",
          "spec.ts",
          "--image",
          "default",
          "--registry",
          other.host,
          "--json",
        ]),
      );
      assert.ok(elsewhere.images[0].uri.startsWith(`${other.host}/app:`));
      assert.ok(other.requests.some((line) => line.startsWith("GET /v2/app/manifests/")));
    } finally {
      await other.close();
    }
  }));

Deno.test("a registry that cannot be asked makes the image unknown with the reason, never exists: a closed port", () =>
  withProject(async (dir) => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const closed = `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
    listener.close();
    const result = await run(dir, ["status", "spec.ts", "--json", "--registry", closed]);
    assert.equal(result.code, 1, result.stderr);
    const json = parse(result);
    assert.equal(json.ok, false);
    const app = json.images.find((image) => image.image === "default")!;
    for (const platform of app.platforms) {
      assert.equal(platform.status, "unknown");
      assert.match(platform.reason!, new RegExp(closed.replaceAll(".", "\\.")));
      assert.ok(platform.hint, "a hint says what to check");
    }
    // The human output names the reason under the image.
    const human = await run(dir, ["status", "spec.ts", "--image", "default", "--registry", closed]);
    assert.equal(human.code, 1);
    assert.match(human.stdout, /^unknown {2}linux\/amd64 {2}/m);
    assert.match(human.stdout, new RegExp(`^  default: .*${closed.replaceAll(".", "\\.")}`, "m"));
    assert.match(human.stdout, /^not ready: 0 missing, 2 unknown, 0 exist$/m);
  }));

for (const [status, said] of [[500, /500/], [401, /401|refused|unauthori[sz]ed/i]] as const) {
  Deno.test(`a registry that answers ${status} makes an image it has unknown, never exists`, () =>
    withProject(async (dir, registry) => {
      const { repository, tag } = await appUri(dir, registry);
      await registry.addIndex(repository, tag, BOTH);
      registry.failWith(status);
      const result = await run(dir, ["status", "spec.ts", "--image", "default", "--json"]);
      assert.equal(result.code, 1, result.stderr);
      const [image] = parse(result).images;
      for (const platform of image.platforms) {
        assert.equal(platform.status, "unknown");
        assert.match(platform.reason!, said);
        assert.match(platform.reason!, new RegExp(registry.host.replaceAll(".", "\\.")));
      }
      // The same registry answering again: the image exists.
      registry.failWith(undefined);
      assert.equal((await run(dir, ["status", "spec.ts", "--image", "default"])).code, 0);
    }));
}

Deno.test("a registry that never answers is said to be retried, and ends unknown in bounded time", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) held.push(conn);
    } catch {
      // closed
    }
  })();
  const silent = `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
  try {
    await withTempDir(async (dir) => {
      await writeTree(dir, projectFiles(silent));
      const started = Date.now();
      const result = await run(dir, ["status", "spec.ts", "--image", "default"], {
        IMGTOOL_REGISTRY_TIMEOUT: "0.3",
      });
      const seconds = (Date.now() - started) / 1000;
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /attempt 2 of 4 in/, "progress as build gives it");
      assert.match(result.stdout, /^unknown {2}linux\/amd64 {2}/m);
      assert.ok(seconds < 20, `took ${seconds} s`);
    });
  } finally {
    listener.close();
    for (const conn of held) conn.close();
    await accepting;
  }
});

Deno.test("an image with no registry is unknown: nowhere to look, with how to set one", () =>
  withProject(async (dir) => {
    await Deno.writeTextFile(join(dir, "imgtool.toml"), `platforms = ["linux/amd64"]\n`);
    const result = await run(dir, ["status", "spec.ts", "--image", "default", "--json"]);
    assert.equal(result.code, 1, result.stderr);
    const [image] = parse(result).images;
    assert.match(image.uri, /^app:[0-9a-f]{32}$/);
    assert.deepEqual(image.platforms, [{
      platform: "linux/amd64",
      status: "unknown",
      reason: 'image "default" has no registry to look in',
      hint: "set registry in the image (registry: ...), in imgtool.toml, IMGTOOL_REGISTRY or " +
        "--registry",
    }]);
  }));

Deno.test("status asks the registry, not the tag cache build keeps: a remembered platform the image lacks is missing", () =>
  withProject(async (dir, registry) => {
    const { uri, repository, tag } = await appUri(dir, registry);
    const digest = await registry.addImage(repository, tag, "linux/amd64");
    // A cache entry that claims the same digest has both platforms: a client that trusts
    // the cache (one HEAD confirms the digest) takes it as existing.
    const cache = new FileTagCache(defaultTagCacheDir({ XDG_CACHE_HOME: join(dir, ".cache") })!);
    cache.set(uri, {
      digest,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      platforms: BOTH,
    });
    const trusting = await new RegistryClient({ tagCache: cache, retries: 0 }).check(uri, [
      "linux/arm64",
    ]);
    assert.equal(trusting.exists, true, "the cache entry is one a cached check believes");
    const result = await run(dir, ["status", "spec.ts", "--image", "default", "--json"]);
    assert.deepEqual(states(parse(result)), {
      "default linux/amd64": "exists",
      "default linux/arm64": "missing",
    });
    assert.equal(result.code, 1);
  }));

Deno.test("status exits 2 for a mistake in the command line or the spec", () =>
  withProject(async (dir) => {
    const [image, flag, platform] = await Promise.all([
      run(dir, ["status", "spec.ts", "--image", "nope"]),
      run(dir, ["status", "spec.ts", "--push"]),
      run(dir, ["status", "spec.ts", "--platform", "linux/s390x"]),
    ]);
    assert.equal(image.code, 2, image.stderr);
    assert.match(image.stderr, /nope/);
    assert.equal(flag.code, 2, flag.stderr);
    assert.match(flag.stderr, /status: unknown flag --push/);
    assert.equal(platform.code, 2, platform.stderr);
    assert.match(platform.stderr, /linux\/s390x/);
    const json = await run(dir, ["status", "spec.ts", "--image", "nope", "--json"]);
    assert.equal(json.code, 2);
    assert.equal(JSON.parse(json.stdout).ok, false);
  }));
