// Extra tags (`build --tag NAME`, the `tags` setting, `IMGTOOL_TAGS`): once an image's
// content tag is in the registry, each NAME is pointed at the same manifest or index by
// putting its bytes under NAME, with no rebuild and no blob upload. Run as users run imgtool,
// against a stand-in registry on 127.0.0.1 (tests/fake_registry.ts); the image exists there
// already, so no builder is needed (the docker client configured does not exist).
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Config, definePlugin, identify, Image, planImage } from "../mod.ts";
import { loadConfig } from "../src/config.ts";
import { serveLocal } from "../src/registry/testing.ts";
import { type FakeRegistry, startFakeRegistry } from "./fake_registry.ts";
import { type CliResult, fixtureConfig, imgtool, withTempDir, writeTree } from "./helpers.ts";

const BOTH = ["linux/amd64", "linux/arm64"];
const ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
].join(", ");

function projectFiles(registry: string, toml = "") {
  return {
    "spec.ts": `import { Image } from "imgtool";
export default Image.fromBase("${registry}/team/base:1").clone({ name: "app" })
  .withEnvVars({ A: "1" });
`,
    "imgtool.toml": `registry = "${registry}/team"\nplatforms = ${JSON.stringify(BOTH)}\n` +
      `registry-timeout = 2\n${toml}`,
  };
}

/** Run imgtool in `dir` with its own cache folder and no usable docker client. */
function run(dir: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return imgtool(args, {
    cwd: dir,
    env: {
      XDG_CACHE_HOME: join(dir, ".cache"),
      IMGTOOL_DOCKER_CLIENT: "/nonexistent/docker",
      ...env,
    },
  });
}

/** A project whose image is already in the registry (an index over both platforms). */
async function withPushedImage(
  body: (dir: string, registry: FakeRegistry, pushed: Pushed) => Promise<void>,
  toml = "",
) {
  const registry = await startFakeRegistry();
  try {
    await withTempDir(async (dir) => {
      await writeTree(dir, projectFiles(registry.host, toml));
      const uri = await run(dir, ["uri", "spec.ts"]);
      assert.equal(uri.code, 0, uri.stderr);
      const [repository, tag] = uri.stdout.trim().slice(registry.host.length + 1).split(":");
      const digest = await registry.addIndex(repository, tag, BOTH);
      await body(dir, registry, { uri: uri.stdout.trim(), repository, tag, digest });
    });
  } finally {
    await registry.close();
  }
}

interface Pushed {
  readonly uri: string;
  readonly repository: string;
  readonly tag: string;
  readonly digest: string;
}

/** The bytes and digest the registry serves for `repository:reference`, asked over HTTP. */
async function served(registry: FakeRegistry, repository: string, reference: string) {
  const response = await fetch(`http://${registry.host}/v2/${repository}/manifests/${reference}`, {
    headers: { accept: ACCEPT },
  });
  assert.equal(response.status, 200, `${repository}:${reference} is served`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const digest = `sha256:${Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")}`;
  return { bytes, digest, mediaType: response.headers.get("content-type") };
}

function images(result: CliResult): { status: string; tags?: string[]; reason?: string }[] {
  try {
    return JSON.parse(result.stdout).images;
  } catch {
    throw new Error(`no JSON on stdout:\n${result.stdout}\n${result.stderr}`);
  }
}

Deno.test("build --push --tag points each tag at the content tag's index, byte for byte, with no blob upload", () =>
  withPushedImage(async (dir, registry, pushed) => {
    // `latest` named another image before: it moves.
    const old = await registry.addImage(pushed.repository, "latest", "linux/amd64");
    const before = registry.requests.length;
    const result = await run(dir, [
      "build",
      "spec.ts",
      "--push",
      "--tag",
      "latest",
      "--tag=release-1.2",
      "--json",
    ]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const [image] = images(result);
    assert.equal(image.status, "skipped");
    const repo = `${registry.host}/${pushed.repository}`;
    assert.deepEqual(image.tags, [`${repo}:latest`, `${repo}:release-1.2`]);

    const content = await served(registry, pushed.repository, pushed.tag);
    assert.equal(content.digest, pushed.digest);
    for (const tag of ["latest", "release-1.2"]) {
      const tagged = await served(registry, pushed.repository, tag);
      assert.deepEqual(tagged.bytes, content.bytes, `${tag}: the same bytes`);
      assert.equal(tagged.digest, pushed.digest, `${tag}: the same digest`);
      assert.equal(tagged.mediaType, content.mediaType);
    }
    assert.notEqual(old, pushed.digest);
    // One manifest PUT per tag, and nothing else written: no blob, no content tag again.
    const written = registry.requests.slice(before).filter((line) => !/^(GET|HEAD) /.test(line));
    assert.deepEqual(written.sort(), [
      `PUT /v2/${pushed.repository}/manifests/latest -> 201`,
      `PUT /v2/${pushed.repository}/manifests/release-1.2 -> 201`,
    ]);
  }));

Deno.test("build --push --tag says `tagged <repo>:NAME` for each tag", () =>
  withPushedImage(async (dir, registry, pushed) => {
    const result = await run(dir, ["build", "spec.ts", "--push", "--tag", "latest"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(`: tagged ${registry.host}/${pushed.repository}:latest\\n`),
    );
    // Standard output stays one URI a line, for scripts.
    assert.equal(result.stdout, `${pushed.uri}\n`);
  }));

Deno.test("the tags setting points its tags; IMGTOOL_TAGS replaces it, and --tag replaces both", () =>
  withPushedImage(async (dir, registry, pushed) => {
    const tagsOf = async (args: string[], env: Record<string, string> = {}) => {
      const result = await run(dir, ["build", "spec.ts", "--push", "--json", ...args], env);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      return images(result)[0].tags?.map((ref) => ref.split(":").pop());
    };
    assert.deepEqual(await tagsOf([]), ["stable", "v2"]);
    assert.deepEqual(await tagsOf([], { IMGTOOL_TAGS: "edge, nightly" }), ["edge", "nightly"]);
    assert.deepEqual(await tagsOf(["--tag", "hotfix"], { IMGTOOL_TAGS: "edge" }), ["hotfix"]);
    for (const tag of ["stable", "v2", "edge", "nightly", "hotfix"]) {
      assert.equal((await served(registry, pushed.repository, tag)).digest, pushed.digest, tag);
    }
  }, `tags = ["stable", "v2"]\n`));

Deno.test("a tag name that is not a valid tag is a command-line error (exit 2) naming it, before any request", () =>
  withPushedImage(async (dir, registry) => {
    const before = registry.requests.length;
    for (const bad of [".hidden", "-rc1", "has space", "a/b", "ünï", "x".repeat(129), ""]) {
      const result = await run(dir, ["build", "spec.ts", "--push", `--tag=${bad}`]);
      assert.equal(result.code, 2, `${JSON.stringify(bad)}: ${result.stderr}`);
      assert.ok(
        result.stderr.includes(`--tag: ${JSON.stringify(bad)} is not a valid tag`),
        result.stderr,
      );
      assert.match(result.stderr, /hint: a tag is letters, digits/);
    }
    // The longest valid tag, and one starting with "_", are fine.
    for (const good of ["x".repeat(128), "_1.0-rc"]) {
      const result = await run(dir, ["build", "spec.ts", "--push", "--tag", good]);
      assert.equal(result.code, 0, `${good}: ${result.stderr}`);
    }
    assert.ok(
      registry.requests.slice(before).every((line) => !line.includes("manifests/.hidden")),
    );
  }));

Deno.test("an invalid tag in the tags setting or IMGTOOL_TAGS exits 2 naming where it came from", () =>
  withPushedImage(async (dir, registry) => {
    await Deno.writeTextFile(
      join(dir, "imgtool.toml"),
      `${projectFiles(registry.host)["imgtool.toml"]}tags = ["latest", "bad tag"]\n`,
    );
    const file = await run(dir, ["build", "spec.ts", "--push"]);
    assert.equal(file.code, 2, file.stderr);
    assert.match(file.stderr, /imgtool\.toml: tags: "bad tag" is not a valid tag/);
    await Deno.writeTextFile(
      join(dir, "imgtool.toml"),
      projectFiles(registry.host)["imgtool.toml"],
    );
    const env = await run(dir, ["uri", "spec.ts"], { IMGTOOL_TAGS: "ok,-no" });
    assert.equal(env.code, 2, env.stderr);
    assert.match(env.stderr, /IMGTOOL_TAGS: "-no" is not a valid tag/);
    const type = loadConfigError(`tags = "latest"\n`);
    assert.match(type, /tags: expected a list of tags/);
  }));

function loadConfigError(toml: string): string {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(join(dir, "imgtool.toml"), toml);
    loadConfig({ startDir: dir, env: {} });
    return "loaded";
  } catch (error) {
    return (error as Error).message;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("--tag without --push exits 2 with a hint; the tags setting without --push is a note", () =>
  withPushedImage(async (dir, registry) => {
    const flag = await run(dir, ["build", "spec.ts", "--tag", "latest"]);
    assert.equal(flag.code, 2, flag.stderr);
    assert.match(flag.stderr, /^error: build: --tag latest needs --push\nhint: .*add --push/);
    // A local build of a base used as is needs no builder: it shows the note and succeeds.
    await Deno.writeTextFile(
      join(dir, "spec.ts"),
      `import { Image } from "imgtool";\nexport default Image.fromBase("${registry.host}/team/base:1");\n`,
    );
    const setting = await run(dir, ["build", "spec.ts"]);
    assert.equal(setting.code, 0, setting.stderr);
    assert.match(setting.stderr, /note: the tags setting \(latest\) applies to pushed builds only/);
    assert.equal(registry.manifest("team/base", "latest"), undefined);
  }, `tags = ["latest"]\n`));

Deno.test("a registry that refuses the tag fails the image (exit 1) with the registry's reason", async () => {
  const registry = await startFakeRegistry();
  // In front of the stand-in: everything passes, except a PUT under the extra tag.
  const proxy = serveLocal(async (request) => {
    const url = new URL(request.url);
    if (request.method === "PUT" && url.pathname.endsWith("/manifests/latest")) {
      return Response.json(
        { errors: [{ code: "DENIED", message: "tag latest is immutable here" }] },
        { status: 403 },
      );
    }
    const body = request.method === "PUT" ? await request.arrayBuffer() : undefined;
    return await fetch(`http://${registry.host}${url.pathname}`, {
      method: request.method,
      headers: request.headers,
      body,
    });
  });
  try {
    await withTempDir(async (dir) => {
      await writeTree(dir, projectFiles(proxy.host));
      const uri = (await run(dir, ["uri", "spec.ts"])).stdout.trim();
      const [repository, tag] = uri.slice(proxy.host.length + 1).split(":");
      await registry.addIndex(repository, tag, BOTH);
      const result = await run(dir, ["build", "spec.ts", "--push", "--tag", "latest", "--json"]);
      assert.equal(result.code, 1, result.stderr);
      const [image] = images(result);
      assert.equal(image.status, "failed");
      assert.match(image.reason!, /denied PUT manifest latest .*tag latest is immutable here/);
      const human = await run(dir, ["build", "spec.ts", "--push", "--tag", "latest"]);
      assert.equal(human.code, 1);
      assert.match(human.stderr, /error: .*tag latest is immutable here/);
      assert.equal(human.stdout, "", "a failed image prints no URI");
    });
  } finally {
    await proxy.close();
    await registry.close();
  }
});

Deno.test("the tags setting changes no image's tag, even for a plugin that copies the whole configuration", async () => {
  const copier = definePlugin<Record<string, never>>({
    name: "copier",
    render(_options, context) {
      const copy = { ...context.config };
      return { instructions: [`LABEL installer=${copy.installer}`] };
    },
  });
  const image = Image.fromBase("debian:bookworm-slim").withLayer(copier.layer({}))
    .withEnvVars({ A: "1" });
  const tag = async (config: Config) => (await identify(planImage(image, "x", config))).tag;
  const base = fixtureConfig();
  assert.equal(await tag({ ...base, tags: ["latest", "v2"] }), await tag(base));
  // The copy does count what changes a recipe, so the check above can tell.
  assert.notEqual(
    await tag({ ...base, installer: "pip" }),
    await tag({ ...base, installer: "uv" }),
  );
});
