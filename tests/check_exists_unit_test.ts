// The "exists" check (src/check.ts with the registry client): an image counts as there only
// when its tag is there with every requested platform; a registry that fails is an error,
// never a reason to skip the build. The registry is a real HTTP server on 127.0.0.1.

import assert from "node:assert/strict";
import { join } from "node:path";
import docker from "../plugins/docker.ts";
import {
  type BuilderContext,
  defaultConfig,
  identify,
  Image,
  type ImageIdentity,
  type ImagePlan,
  planImage,
  type Platform,
} from "../mod.ts";
import { checkImage } from "../src/check.ts";
import { RegistryClient } from "../src/registry/client.ts";
import { RegistryError } from "../src/registry/errors.ts";
import { FileTagCache } from "../src/registry/tag_cache.ts";
import { type FakeRegistry, startFakeRegistry } from "./fake_registry.ts";
import { withTempDir } from "./helpers.ts";
import { recordingExec } from "./recording_exec.ts";

/** An image to push to `registry`, planned for `platforms`, and where its tag lives. */
async function pushedImage(registry: FakeRegistry, platforms: Platform[]) {
  const image = Image.fromBase("debian:bookworm")
    .clone({ name: `team/app-${crypto.randomUUID().slice(0, 8)}`, registry: registry.host })
    .withEnvVars({ A: "1" });
  const plan = planImage(image, "app", defaultConfig(), { platforms });
  const identity = await identify(plan);
  const [repository, tag] = identity.uri.slice(registry.host.length + 1).split(":");
  return { plan, identity, repository, tag };
}

/** Check as a pushed build does. */
function checkRegistry(
  plan: ImagePlan,
  identity: ImageIdentity,
  client = new RegistryClient({ retries: 0 }),
) {
  return checkImage(plan, identity, { push: true, registry: client });
}

async function withRegistry(body: (registry: FakeRegistry) => Promise<void>): Promise<void> {
  const registry = await startFakeRegistry();
  try {
    await body(registry);
  } finally {
    await registry.close();
  }
}

Deno.test("a tag the registry does not have does not exist, with every platform missing; once pushed, it exists", () =>
  withRegistry(async (registry) => {
    const platforms: Platform[] = ["linux/amd64", "linux/arm64"];
    const { plan, identity, repository, tag } = await pushedImage(registry, platforms);
    assert.deepEqual(await checkRegistry(plan, identity), {
      exists: false,
      where: "registry",
      missing: platforms,
    });
    assert.ok(registry.requests.some((line) => line.endsWith(`/manifests/${tag} -> 404`)));
    await registry.addIndex(repository, tag, platforms);
    assert.deepEqual(await checkRegistry(plan, identity), {
      exists: true,
      where: "registry",
      missing: [],
    });
  }));

Deno.test("a tag whose image is for another platform only does not exist", () =>
  withRegistry(async (registry) => {
    const { plan, identity, repository, tag } = await pushedImage(registry, ["linux/arm64"]);
    await registry.addImage(repository, tag, "linux/amd64");
    const found = await checkRegistry(plan, identity);
    assert.equal(found.exists, false);
    assert.deepEqual(found.missing, ["linux/arm64"]);
  }));

Deno.test("an index that lacks one of the requested platforms does not exist", () =>
  withRegistry(async (registry) => {
    const wanted: Platform[] = ["linux/amd64", "linux/arm64"];
    const { plan, identity, repository, tag } = await pushedImage(registry, wanted);
    await registry.addIndex(repository, tag, ["linux/amd64"]);
    const found = await checkRegistry(plan, identity);
    assert.equal(found.exists, false);
    assert.deepEqual(found.missing, ["linux/arm64"]);
  }));

for (const status of [500, 403, 401]) {
  Deno.test(`a registry answering ${status} makes the check fail with a registry error, never "exists"`, () =>
    withRegistry(async (registry) => {
      const { plan, identity, repository, tag } = await pushedImage(registry, ["linux/amd64"]);
      await registry.addImage(repository, tag, "linux/amd64");
      registry.failWith(status);
      const outcome = await checkRegistry(plan, identity).catch((error: unknown) => error);
      assert.ok(outcome instanceof RegistryError, `got ${JSON.stringify(outcome)}`);
      assert.ok(registry.requests.length > 0, "the registry was asked");
    }));
}

Deno.test('a registry nobody listens on makes the check fail, never "exists"', async () => {
  const registry = await startFakeRegistry();
  const { plan, identity } = await pushedImage(registry, ["linux/amd64"]);
  await registry.close();
  const outcome = await checkRegistry(plan, identity).catch((error: unknown) => error);
  assert.ok(outcome instanceof RegistryError, `got ${JSON.stringify(outcome)}`);
});

Deno.test("a tag remembered from an earlier check is not there once the registry lost it, and an error stays an error", () =>
  withTempDir((dir) =>
    withRegistry(async (registry) => {
      const cacheDir = join(dir, "tags");
      const client = () => new RegistryClient({ retries: 0, tagCache: new FileTagCache(cacheDir) });
      const { plan, identity, repository, tag } = await pushedImage(registry, ["linux/amd64"]);
      await registry.addImage(repository, tag, "linux/amd64");
      assert.equal((await checkRegistry(plan, identity, client())).exists, true);
      assert.ok([...Deno.readDirSync(cacheDir)].length > 0, "the check remembered the tag");
      registry.remove(repository, tag);
      assert.equal((await checkRegistry(plan, identity, client())).exists, false);
      await registry.addImage(repository, tag, "linux/amd64");
      assert.equal((await checkRegistry(plan, identity, client())).exists, true);
      registry.failWith(500);
      const outcome = await checkRegistry(plan, identity, client()).catch((error: unknown) =>
        error
      );
      assert.ok(outcome instanceof RegistryError, `got ${JSON.stringify(outcome)}`);
    })
  ));

Deno.test("a local build's check asks the builder's image store, and an image not there does not exist", async () => {
  const image = Image.fromBase("debian:bookworm").clone({ name: "app" }).withEnvVars({ A: "1" });
  const plan = planImage(image, "app", defaultConfig());
  const identity = await identify(plan);
  const registry = new RegistryClient({
    fetch: () => Promise.reject(new Error("a local build asks no registry")),
  });
  const ask = async (store: Record<string, string>) => {
    const runner = recordingExec((call) => {
      if (call.args[0] !== "image") return undefined;
      const platform = store[call.args.at(-1)!];
      return platform ? { stdout: `${platform}\n` } : { code: 1, lines: ["No such image"] };
    });
    const context: BuilderContext = {
      config: { ...defaultConfig(), dockerClient: "/opt/fake/docker" },
      registry,
      exec: runner.exec,
    };
    return await checkImage(plan, identity, {
      push: false,
      registry,
      builder: docker,
      builderContext: context,
    });
  };
  assert.deepEqual(await ask({}), { exists: false, where: "local", missing: ["linux/amd64"] });
  assert.deepEqual(await ask({ [identity.uri]: "linux/arm64" }), {
    exists: false,
    where: "local",
    missing: ["linux/amd64"],
  });
  assert.deepEqual(await ask({ [identity.uri]: "linux/amd64" }), {
    exists: true,
    where: "local",
    missing: [],
  });
});

Deno.test("a local build with a builder that keeps no image store always builds", async () => {
  const image = Image.fromBase("debian:bookworm").clone({ name: "app" }).withEnvVars({ A: "1" });
  const plan = planImage(image, "app", defaultConfig());
  const found = await checkImage(plan, await identify(plan), {
    push: false,
    registry: { check: () => Promise.reject(new Error("a local build asks no registry")) },
    builder: {
      name: "remote",
      description: "keeps nothing here",
      local: false,
      probe: () => Promise.resolve({ ok: true, detail: "" }),
      build: () => Promise.resolve(),
    },
  });
  assert.equal(found.exists, false);
});
