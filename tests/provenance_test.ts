// The provenance record (src/provenance.ts): an in-toto v1 statement with a SLSA provenance v1
// predicate, pushed beside its image as an OCI artifact that refers to it, and found again
// through the registry: the referrers API where the stand-in registry (tests/fake_registry.ts)
// is started with one, else the referrers tag schema, as on Distribution 2.8. What a record
// must never hold (a secret value, a path or user or host name of the machine) is searched
// for in the bytes the registry stores.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { ImgtoolError } from "../src/errors.ts";
import { identify } from "../src/identify.ts";
import { identityTree } from "../src/identity_tree.ts";
import { formatLock, setActiveLock } from "../src/lock.ts";
import type { ImagePlan } from "../src/plan.ts";
import {
  fetchProvenance,
  type ProvenanceStatement,
  provenanceStatement,
  pushProvenance,
  recordProvenance,
} from "../src/provenance.ts";
import { RegistryClient } from "../src/registry/client.ts";
import { RegistryError } from "../src/registry/errors.ts";
import { type FakeRegistry, startFakeRegistry } from "./fake_registry.ts";
import { assertNoAbsolutePaths, planIn, REPO_ROOT, withTempDir, writeTree } from "./helpers.ts";

const IN_TOTO = "application/vnd.in-toto+json";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const EMPTY = "application/vnd.oci.empty.v1+json";
const hex = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");
const VERSION = JSON.parse(Deno.readTextFileSync(join(REPO_ROOT, "deno.json"))).version;

/** A project whose image starts from `team/base:1` in `registry` and pushes to `team/app`. */
function project(registry: FakeRegistry): Record<string, string> {
  return {
    "imgtool.toml": `registry = "${registry.host}/team"\n[python]\ninstaller = "pip"\n`,
    "spec.ts": `import { Image, Secret } from "imgtool";
export default Image.fromBase("${registry.host}/team/base:1").clone({ name: "app" })
  .withPipPackages(["a==1"], { extraArgs: "--no-deps", secretMounts: "PIP_TOKEN" })
  .withSourceFolder("./src", "/app/src")
  .withCommands("make", { secretMounts: new Secret({ key: "deploy-key", group: "ci" }) });
`,
    "src/app.py": "print('app')\n",
    "src/tool.sh": "#!/bin/sh\n",
  };
}

/**
 * A project in a new folder, its base in `registry` and its image "pushed" there under its
 * tag (a build would have); `body` gets what it needs.
 */
function withPushedImage(
  body: (
    context: {
      dir: string;
      registry: FakeRegistry;
      client: RegistryClient;
      plan: ImagePlan;
      spec: string;
      uri: string;
      repository: string;
      imageDigest: string;
    },
  ) => Promise<void>,
  options: { referrersApi?: boolean } = {},
): Promise<void> {
  return withTempDir(async (dir) => {
    const registry = await startFakeRegistry(options);
    try {
      await writeTree(dir, project(registry));
      await registry.addImage("team/base", "1", "linux/amd64");
      const { plan, spec } = await planIn(dir);
      const { uri, tag } = await identify(plan);
      const imageDigest = await registry.addImage("team/app", tag, "linux/amd64");
      const client = new RegistryClient();
      const repository = `${registry.host}/team/app`;
      await body({ dir, registry, client, plan, spec, uri, repository, imageDigest });
    } finally {
      await registry.close();
    }
  });
}

/** The artifact manifests of `repository` in the stand-in whose subject is `digest`. */
function artifactsOf(registry: FakeRegistry, repository: string, digest: string) {
  const index = registry.manifest(repository, `sha256-${digest.slice("sha256:".length)}`);
  return index;
}

Deno.test("the record is an in-toto v1 statement with a SLSA provenance v1 predicate about the pushed image", () =>
  withPushedImage(async ({ client, plan, spec, uri, repository, imageDigest, registry }) => {
    const identity = await identify(plan);
    await recordProvenance(client, plan, identity, spec);
    const found = await fetchProvenance(client, uri);
    assert.ok(found, "the record is found");
    const statement = found.statement;
    assert.equal(statement._type, "https://in-toto.io/Statement/v1");
    assert.deepEqual(statement.subject, [
      { name: repository, digest: { sha256: imageDigest.slice("sha256:".length) } },
    ]);
    assert.equal(statement.predicateType, "https://slsa.dev/provenance/v1");
    const { buildDefinition, runDetails } = statement.predicate;
    assert.match(buildDefinition.buildType, /^urn:imgtool:.*:v1$/);
    assert.equal(buildDefinition.externalParameters.tag, identity.tag);
    assert.deepEqual(buildDefinition.externalParameters.identity, await identityTree(plan, spec));
    // The base, by the digest the registry serves for its tag.
    const base = registry.manifest("team/base", "1")!;
    assert.deepEqual(buildDefinition.resolvedDependencies, [{
      name: `${registry.host}/team/base:1`,
      uri: `oci://${registry.host}/team/base:1`,
      digest: { sha256: base.digest.slice("sha256:".length) },
    }]);
    assert.deepEqual(runDetails.builder, {
      id: "urn:imgtool:builder:imgtool",
      version: { imgtool: VERSION },
    });
  }));

Deno.test("the record holds no secret value, no path of the machine, and no user or host name", () =>
  withTempDir(async (home) => {
    // The spec lives in a home folder named after a user, as it would on a workstation.
    const user = `imgtool-user-${crypto.randomUUID().slice(0, 8)}`;
    const saved = { HOME: Deno.env.get("HOME") };
    const secrets = {
      PIP_TOKEN: `pip-${crypto.randomUUID()}`,
      CI_DEPLOY_KEY: `key-${crypto.randomUUID()}`,
    };
    const registry = await startFakeRegistry();
    try {
      const dir = join(home, user, "project");
      await writeTree(dir, project(registry));
      Deno.env.set("HOME", join(home, user));
      for (const [name, value] of Object.entries(secrets)) Deno.env.set(name, value);
      await registry.addImage("team/base", "1", "linux/amd64");
      const { plan, spec } = await planIn(dir);
      const identity = await identify(plan);
      await registry.addImage("team/app", identity.tag, "linux/amd64");
      const client = new RegistryClient();
      await recordProvenance(client, plan, identity, spec);
      const found = await fetchProvenance(client, identity.uri);
      assert.ok(found);
      // The bytes as stored: the artifact's one layer.
      const artifact = registry.manifest("team/app", found.digest)!;
      const layers = artifact.json.layers as { digest: string }[];
      const text = new TextDecoder().decode(registry.blob(layers[0].digest));
      for (const value of Object.values(secrets)) {
        assert.ok(!text.includes(value), "a secret's value");
      }
      assertNoAbsolutePaths(text, [home, dir]);
      assert.ok(!text.includes(user), "the user's name (from the home folder)");
      const login = Deno.env.get("USER");
      if (login) assert.ok(!text.includes(`"${login}"`) && !text.includes(`/${login}/`), "USER");
      assert.ok(!text.includes(Deno.hostname()), "the host name");
      // The secrets count by name.
      assert.ok(text.includes(`"$secret":"PIP_TOKEN"`));
      assert.ok(text.includes(`"$secret":"CI_DEPLOY_KEY"`));
    } finally {
      await registry.close();
      for (const name of Object.keys(secrets)) Deno.env.delete(name);
      if (saved.HOME === undefined) Deno.env.delete("HOME");
      else Deno.env.set("HOME", saved.HOME);
    }
  }));

Deno.test("without a referrers API, the record is an OCI artifact referring to the image, listed under the sha256-<hex> tag", () =>
  withPushedImage(async ({ registry, client, plan, spec, uri, imageDigest }) => {
    const pushed = await recordProvenance(client, plan, await identify(plan), spec);
    assert.equal(pushed.via, "tag");
    // The registry was asked for its referrers API first, and has none.
    assert.ok(registry.requests.includes(`GET /v2/team/app/referrers/${imageDigest} -> 404`));
    // The artifact, as the registry stores it, by the digest of its bytes.
    const artifact = registry.manifest("team/app", pushed.digest)!;
    assert.equal(artifact.digest, pushed.digest);
    assert.equal(artifact.mediaType, OCI_MANIFEST);
    const image = registry.manifest("team/app", imageDigest)!;
    const imageBytes = new TextEncoder().encode(JSON.stringify(image.json));
    assert.deepEqual(artifact.json.subject, {
      mediaType: image.mediaType,
      digest: imageDigest,
      size: imageBytes.length,
    });
    assert.equal(artifact.json.artifactType, IN_TOTO);
    assert.deepEqual(artifact.json.config, {
      mediaType: EMPTY,
      digest: `sha256:${hex("{}")}`,
      size: 2,
    });
    assert.equal(new TextDecoder().decode(registry.blob(`sha256:${hex("{}")}`)), "{}");
    const layers = artifact.json.layers as { mediaType: string; digest: string; size: number }[];
    assert.equal(layers.length, 1);
    assert.equal(layers[0].mediaType, IN_TOTO);
    const statement = registry.blob(layers[0].digest)!;
    assert.equal(layers[0].digest, `sha256:${hex(statement)}`);
    assert.equal(layers[0].size, statement.length);
    // The referrers tag schema's index lists it, with its artifact type and annotations.
    const index = artifactsOf(registry, "team/app", imageDigest);
    assert.ok(index, "the sha256-<hex> tag exists");
    assert.equal(index.mediaType, OCI_INDEX);
    assert.deepEqual(index.json.manifests, [{
      mediaType: OCI_MANIFEST,
      digest: pushed.digest,
      size: new TextEncoder().encode(JSON.stringify(artifact.json)).length,
      artifactType: IN_TOTO,
      annotations: artifact.json.annotations,
    }]);
    // Found again, by anyone with the image's URI.
    const found = await fetchProvenance(new RegistryClient(), uri);
    assert.equal(found?.via, "tag");
    assert.equal(found?.digest, pushed.digest);
    assert.deepEqual(found?.statement, JSON.parse(new TextDecoder().decode(statement)));
  }));

Deno.test("pushing a record again changes nothing; the referrers listed before stay, and the newest record is read", () =>
  withPushedImage(async ({ registry, client, plan, spec, uri, repository, imageDigest }) => {
    // Another tool's artifact (a signature) is listed under the tag already.
    const signature = await registry.addImage("team/app", undefined, "linux/amd64");
    const foreign = {
      mediaType: OCI_MANIFEST,
      digest: signature,
      size: 10,
      artifactType: "application/vnd.example.signature",
      annotations: { "org.example.signer": "ci" },
      "org.example.extra": true,
    };
    await client.putManifest(
      `${repository}:sha256-${imageDigest.slice(7)}`,
      new TextEncoder().encode(
        JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [foreign] }),
      ),
      OCI_INDEX,
    );
    const first = await recordProvenance(client, plan, await identify(plan), spec);
    const again = await recordProvenance(client, plan, await identify(plan), spec);
    assert.equal(again.digest, first.digest, "the same image and tree make the same record");
    const listed = () => (artifactsOf(registry, "team/app", imageDigest)!.json.manifests as {
      digest: string;
    }[]);
    assert.deepEqual(listed().map((entry) => entry.digest), [signature, first.digest]);
    assert.deepEqual(listed()[0], foreign, "the other tool's entry is kept as it was");
    // A second record of the same image (another spec with the same tag): both listed; the
    // newest is read.
    const found = await fetchProvenance(client, uri);
    const other: ProvenanceStatement = provenanceStatement({
      repository,
      digest: imageDigest,
      tag: found!.statement.predicate.buildDefinition.externalParameters.tag,
      tree: { ...found!.statement.predicate.buildDefinition.externalParameters.identity },
      dependencies: [],
    });
    const image = registry.manifest("team/app", imageDigest)!;
    const size = new TextEncoder().encode(JSON.stringify(image.json)).length;
    const second = await pushProvenance(
      client,
      repository,
      { mediaType: image.mediaType, digest: imageDigest, size },
      other,
    );
    assert.deepEqual(listed().map((entry) => entry.digest), [
      signature,
      first.digest,
      second.digest,
    ]);
    assert.equal((await fetchProvenance(client, uri))?.digest, second.digest);
  }));

Deno.test("with a referrers API the registry lists the record by its subject, and no tag is written", () =>
  withPushedImage(async ({ registry, client, plan, spec, uri, imageDigest }) => {
    const pushed = await recordProvenance(client, plan, await identify(plan), spec);
    assert.equal(pushed.via, "api");
    assert.deepEqual(registry.tags("team/app").filter((tag) => tag.startsWith("sha256-")), []);
    const found = await fetchProvenance(new RegistryClient(), uri);
    assert.equal(found?.via, "api");
    assert.equal(found?.digest, pushed.digest);
    assert.equal(found?.subject, imageDigest);
  }, { referrersApi: true }));

Deno.test("a sha256-<hex> tag that holds something other than an index is not overwritten; reading counts it as no record", () =>
  withPushedImage(async ({ registry, client, plan, spec, uri, imageDigest }) => {
    const tag = `sha256-${imageDigest.slice(7)}`;
    const squatter = await registry.addImage("team/app", tag, "linux/arm64");
    await assert.rejects(
      recordProvenance(client, plan, await identify(plan), spec),
      (error: unknown) => {
        assert.ok(error instanceof ImgtoolError && error.exitCode === 1);
        assert.match(error.message, /was pushed, but its provenance record was not/);
        assert.match(error.message, new RegExp(`${tag}.*should hold the referrers`));
        assert.match(error.hint ?? "", /--force --image default/);
        return true;
      },
    );
    assert.equal(registry.manifest("team/app", tag)?.digest, squatter);
    assert.equal(await fetchProvenance(client, uri), undefined);
  }));

Deno.test("an image without a record has none to read; an image the registry lacks is an error", () =>
  withPushedImage(async ({ client, uri, repository }) => {
    assert.equal(await fetchProvenance(client, uri), undefined);
    await assert.rejects(
      fetchProvenance(client, `${repository}:not-pushed`),
      (error: unknown) =>
        error instanceof ImgtoolError && error.exitCode === 1 &&
        /not-pushed is not in the registry/.test(error.message),
    );
  }));

Deno.test("a file that changed while the image was built fails the image, and no record is pushed", () =>
  withPushedImage(async ({ dir, registry, client, plan, spec }) => {
    const identity = await identify(plan);
    await Deno.writeTextFile(join(dir, "src", "app.py"), "print('changed')\n");
    await assert.rejects(recordProvenance(client, plan, identity, spec), (error: unknown) => {
      assert.ok(error instanceof ImgtoolError && error.exitCode === 1);
      assert.match(error.message, /changed while it was built/);
      return true;
    });
    assert.deepEqual(registry.tags("team/app").filter((tag) => tag.startsWith("sha256-")), []);
  }));

Deno.test("a registry that fails the record's push fails the image with the reason and how to push it again", () =>
  withPushedImage(async ({ registry, plan, spec }) => {
    const identity = await identify(plan);
    const client = new RegistryClient({ retries: 0 });
    registry.failWith(500);
    await assert.rejects(recordProvenance(client, plan, identity, spec), (error: unknown) => {
      assert.ok(error instanceof ImgtoolError && error.exitCode === 1);
      assert.ok(!(error instanceof RegistryError), "the image's failure, not the bare request's");
      assert.match(error.message, new RegExp(`^${identity.uri} was pushed, but its provenance`));
      assert.match(error.message, /500/);
      assert.match(error.hint ?? "", /imgtool build --push --force --image default/);
      return true;
    });
  }));

Deno.test("with imgtool.lock, the record names the base by the locked digest the build used, without asking its registry", () =>
  withTempDir(async (dir) => {
    const registry = await startFakeRegistry();
    try {
      await writeTree(dir, project(registry));
      const locked = `sha256:${"c".repeat(64)}`;
      const base = `${registry.host}/team/base:1`;
      await Deno.writeTextFile(
        join(dir, "imgtool.lock"),
        formatLock({ images: { [base]: locked }, specs: { "spec.ts": [base] } }),
      );
      setActiveLock(join(dir, "imgtool.lock"));
      const { plan, spec } = await planIn(dir);
      const identity = await identify(plan);
      await registry.addImage("team/app", identity.tag, "linux/amd64");
      const client = new RegistryClient();
      await recordProvenance(client, plan, identity, spec);
      const found = await fetchProvenance(client, identity.uri);
      const { resolvedDependencies, externalParameters } = found!.statement.predicate
        .buildDefinition;
      assert.deepEqual(resolvedDependencies, [{
        name: `${base}@${locked}`,
        uri: `oci://${base}@${locked}`,
        digest: { sha256: "c".repeat(64) },
      }]);
      assert.ok(!registry.requests.some((line) => line.includes("/team/base/")), "not asked");
      // The locked digest counts in the tag: the tree holds it where the base layer read it.
      assert.equal(externalParameters.identity.layers[0].settings[`lock.${base}`], locked);
    } finally {
      setActiveLock(undefined);
      await registry.close();
    }
  }));
