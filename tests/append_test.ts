// The append stage (src/append.ts) against a real Distribution registry on loopback, with no
// build engine: layers of files and settings put on top of a prefix image, reproducibly.

import assert from "node:assert/strict";
import { appendLayers, AppendRefused } from "../src/append.ts";
import { treeDigest } from "../src/digest.ts";
import type { AppendedLayer, AppendSplit } from "../src/append_plan.ts";
import { RegistryClient } from "../src/registry/client.ts";
import {
  DOCKER_REGISTRY_BIN,
  hasExecutable,
  pushTestImage,
  type RunningRegistry,
  startRegistry,
} from "../src/registry/testing.ts";
import { IgnoreRules } from "../src/ignore.ts";
import { ImgtoolError } from "../src/errors.ts";
import { sha256Digest } from "../src/registry/bytes.ts";

const NO_REGISTRY = !hasExecutable(DOCKER_REGISTRY_BIN);

/** A source folder with the files people have: executable, nested, odd names, a link. */
async function writeProject(root: string, umask: "0022" | "0077"): Promise<void> {
  const fileMode = umask === "0022" ? 0o644 : 0o600;
  const execMode = umask === "0022" ? 0o755 : 0o700;
  const dirMode = umask === "0022" ? 0o755 : 0o700;
  await Deno.mkdir(`${root}/src/pkg`, { recursive: true, mode: dirMode });
  await Deno.writeTextFile(`${root}/src/main.py`, "print('hi')\n", { mode: fileMode });
  await Deno.writeTextFile(`${root}/src/run.sh`, "#!/bin/sh\necho run\n", { mode: execMode });
  await Deno.writeTextFile(`${root}/src/pkg/a b [1].txt`, "odd\n", { mode: fileMode });
  await Deno.writeTextFile(`${root}/src/pkg/ünï.txt`, "unicode\n", { mode: fileMode });
  await Deno.writeTextFile(`${root}/src/.cache`, "ignored\n", { mode: fileMode });
  await Deno.symlink("main.py", `${root}/src/link.py`);
  await Deno.writeTextFile(`${root}/settings.toml`, "[app]\n", { mode: fileMode });
  for (const path of [`${root}/src/pkg`, `${root}/src`]) await Deno.chmod(path, dirMode);
  for (const path of [`${root}/src/main.py`, `${root}/settings.toml`]) {
    await Deno.chmod(path, fileMode);
  }
  await Deno.chmod(`${root}/src/run.sh`, execMode);
}

function layersFor(root: string): AppendedLayer[] {
  return [
    {
      index: 2,
      plugin: "source_folder",
      method: "withSourceFolder",
      appended: { files: [{ kind: "tree", source: `${root}/src`, target: "/app/src/" }] },
    },
    {
      index: 3,
      plugin: "source_file",
      method: "withSourceFile",
      appended: { files: [{ kind: "file", source: `${root}/settings.toml`, target: "conf/" }] },
    },
    {
      index: 4,
      plugin: "env_vars",
      method: "withEnvVars",
      appended: { config: { env: { MODE: "prod", PATH: "/app/bin:/usr/bin" } } },
    },
    {
      index: 5,
      plugin: "workdir",
      method: "withWorkdir",
      appended: { files: [{ kind: "dir", target: "/app" }], config: { workdir: "/app" } },
    },
  ];
}

function split(prefixUri: string, layers: AppendedLayer[]): AppendSplit {
  // appendLayers reads only the prefix's reference and the layers.
  return { prefix: undefined as never, prefixUri, layers };
}

async function withRegistry(test: (host: string, client: RegistryClient) => Promise<void>) {
  const registry: RunningRegistry = await startRegistry();
  const client = new RegistryClient({ retries: 0 });
  try {
    await test(registry.host, client);
  } finally {
    await client.close();
    await registry.stop();
  }
}

/** {@link withRegistry}, with a project of {@link writeProject} (umask 0022) in a new folder. */
function withProject(
  test: (host: string, client: RegistryClient, root: string) => Promise<void>,
): Promise<void> {
  return withRegistry(async (host, client) => {
    const root = await Deno.makeTempDir();
    try {
      await writeProject(root, "0022");
      await test(host, client, root);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });
}

async function run(command: string[], stdin?: Uint8Array): Promise<string> {
  const child = new Deno.Command(command[0], {
    args: command.slice(1),
    stdin: stdin ? "piped" : "null",
    env: { TZ: "UTC" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const writer = child.stdin.getWriter();
    await writer.write(stdin);
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  if (code !== 0) throw new Error(`${command.join(" ")}: ${new TextDecoder().decode(stderr)}`);
  return new TextDecoder().decode(stdout);
}

/** `tar -tv` of a layer blob: one line per entry, mode, owner, time, name. */
async function listLayer(client: RegistryClient, repository: string, digest: string) {
  const blob = await client.getBlob(repository, digest, { maxBytes: 64 << 20 });
  const listing = await run(
    ["tar", "-tzv", "--numeric-owner", "--full-time", "-f", "-"],
    blob,
  );
  return listing.trim().split("\n").map((line) => line.replace(/\s+/g, " "));
}

interface ManifestJson {
  config: { digest: string };
  layers: { digest: string; mediaType: string }[];
  manifests?: { digest: string; platform: { architecture: string } }[];
}

async function readJson<T>(client: RegistryClient, repository: string, digest: string) {
  const bytes = await client.getBlob(repository, digest, { maxBytes: 1 << 20 });
  return JSON.parse(new TextDecoder().decode(bytes)) as T;
}

const options = (client: RegistryClient, root: string, epoch = 1) => ({
  registry: client,
  ignore: new IgnoreRules([{ root, patterns: ["**/.cache"] }]),
  epoch,
  progress: () => {},
});

/**
 * Append `root`'s layers onto `<host>/app:prefix` as `<host>/app:full`; returns what the
 * registry serves there, checked to be the descriptor `appendLayers` returned.
 */
async function appendServed(client: RegistryClient, host: string, root: string) {
  const { digest, mediaType, size } = await appendLayers(
    split(`${host}/app:prefix`, layersFor(root)),
    `${host}/app:full`,
    options(client, root),
  );
  const served = (await client.getManifest(`${host}/app:full`))!;
  assert.deepEqual(
    { digest: served.digest, mediaType: served.mediaType, size: served.size },
    { digest, mediaType, size },
    "the descriptor returned is the one the registry serves",
  );
  return served;
}

Deno.test({
  name: "append: says whether every file went in checked against the first walk of its folder",
  ignore: NO_REGISTRY,
  async fn() {
    await withProject(async (host, client, root) => {
      await pushTestImage(client, `${host}/app:prefix`, "linux/amd64");
      const settings = options(client, root);
      const [folder, file] = layersFor(root);
      const append = async (layers: AppendedLayer[], tag: string) =>
        (await appendLayers(split(`${host}/app:prefix`, layers), `${host}/app:${tag}`, settings))
          .filesChecked;
      // No walk of the folder before: this stage walks it, with nothing to check against.
      assert.equal(await append([folder], "first"), false);
      // The walk made before (the identity's, in a build) is the one the files come from.
      assert.equal(await append([folder], "second"), true);
      // A single file has no digest from a walk here: not checked.
      assert.equal(await append([folder, file], "third"), false);
      // Walked again since (another image's identity, a check after a build): that walk may
      // have seen other content than the tags computed before it, so nothing is taken as checked.
      assert.ok(await treeDigest(`${root}/src`, settings.ignore));
      assert.equal(await append([folder], "again"), false);
      // Other ignore rules: another walk, not the one made before.
      const other = { ...settings, ignore: new IgnoreRules([{ root, patterns: [] }]) };
      const { filesChecked } = await appendLayers(
        split(`${host}/app:prefix`, [folder]),
        `${host}/app:fourth`,
        other,
      );
      assert.equal(filesChecked, false);
    });
  },
});

Deno.test({
  name: "append: folder, file, env and workdir on a prefix, read back from the registry",
  ignore: NO_REGISTRY,
  async fn() {
    await withProject(async (host, client, root) => {
      const prefix = await pushTestImage(client, `${host}/app:prefix`, "linux/amd64", "docker");
      const manifest = await appendServed(client, host, root);
      const json = manifest.json as ManifestJson;
      // The prefix's layer, then one per layer with files (folder, file, workdir's folder).
      assert.deepEqual(json.layers.length, 4);
      assert.ok(
        json.layers.slice(1).every((layer) =>
          layer.mediaType === "application/vnd.docker.image.rootfs.diff.tar.gzip"
        ),
      );
      const config = await readJson<{
        created: string;
        config: { Env: string[]; WorkingDir: string; Labels: Record<string, string> };
        rootfs: { diff_ids: string[] };
        history: { created_by: string; empty_layer?: boolean }[];
        architecture: string;
      }>(client, `${host}/app`, json.config.digest);
      assert.ok(config.config.Env.includes("MODE=prod"));
      assert.ok(config.config.Env.includes("PATH=/app/bin:/usr/bin"));
      assert.deepEqual(config.config.WorkingDir, "/app");
      assert.deepEqual(config.config.Labels["test.platform"], "linux/amd64"); // kept
      assert.deepEqual(config.architecture, "amd64");
      assert.deepEqual(config.created, "1970-01-01T00:00:01Z");
      assert.deepEqual(config.rootfs.diff_ids.length, 4);
      assert.deepEqual(config.history.at(-2)?.empty_layer, true); // env: no layer
      assert.deepEqual(prefix.mediaType, manifest.mediaType);

      const folder = await listLayer(client, `${host}/app`, json.layers[1].digest);
      const names = folder.map((line) => line.split(" ").slice(5).join(" "));
      assert.deepEqual(names, [
        "app/src/link.py -> main.py",
        "app/src/main.py",
        "app/src/pkg/",
        "app/src/pkg/a b [1].txt",
        "app/src/pkg/ünï.txt",
        "app/src/run.sh",
      ]);
      const modeOf = (name: string) =>
        folder.find((line) => line.endsWith(` ${name}`))?.split(" ").slice(0, 2).join(" ");
      assert.deepEqual(modeOf("app/src/main.py"), "-rw-r--r-- 0/0");
      assert.deepEqual(modeOf("app/src/run.sh"), "-rwxr-xr-x 0/0");
      assert.deepEqual(modeOf("app/src/pkg/"), "drwxr-xr-x 0/0");
      assert.ok(
        folder.every((line) => line.includes(" 1970-01-01 00:00:01 ")),
        folder.join("\n"),
      );
      // A relative destination is relative to the working directory at that point: `/`.
      const file = await listLayer(client, `${host}/app`, json.layers[2].digest);
      assert.deepEqual(file.map((line) => line.split(" ").slice(5).join(" ")), [
        "conf/settings.toml",
      ]);
      const workdir = await listLayer(client, `${host}/app`, json.layers[3].digest);
      assert.deepEqual(workdir.map((line) => line.split(" ").slice(0, 2).join(" ")), [
        "drwxr-xr-x 0/0",
      ]);
    });
  },
});

Deno.test({
  name: "append: the same files under another umask, folder and mtime give the same digest",
  ignore: NO_REGISTRY,
  async fn() {
    await withRegistry(async (host, client) => {
      const first = await Deno.makeTempDir();
      const second = await Deno.makeTempDir({ prefix: "elsewhere-" });
      try {
        await writeProject(first, "0022");
        await writeProject(second, "0077");
        // touch: new modification times on the second copy.
        const later = new Date(Date.now() + 3_600_000);
        for await (const name of ["src/main.py", "settings.toml"]) {
          await Deno.utime(`${second}/${name}`, later, later);
        }
        await pushTestImage(client, `${host}/app:prefix`, "linux/amd64");
        const { digest: one } = await appendLayers(
          split(`${host}/app:prefix`, layersFor(first)),
          `${host}/app:one`,
          options(client, first),
        );
        const { digest: two } = await appendLayers(
          split(`${host}/app:prefix`, layersFor(second)),
          `${host}/app:two`,
          options(client, second),
        );
        assert.deepEqual(two, one);
        // An edit is a different image.
        await Deno.writeTextFile(`${second}/src/main.py`, "print('changed')\n");
        const { digest: three } = await appendLayers(
          split(`${host}/app:prefix`, layersFor(second)),
          `${host}/app:three`,
          options(client, second),
        );
        assert.ok(three !== one);
        // SOURCE_DATE_EPOCH moves every time, so the digest too.
        const { digest: dated } = await appendLayers(
          split(`${host}/app:prefix`, layersFor(first)),
          `${host}/app:dated`,
          options(client, first, 1_700_000_000),
        );
        assert.ok(dated !== one);
      } finally {
        await Deno.remove(first, { recursive: true });
        await Deno.remove(second, { recursive: true });
      }
    });
  },
});

Deno.test({
  name: "append: a two-platform prefix gets a new index with both platforms appended",
  ignore: NO_REGISTRY,
  async fn() {
    await withProject(async (host, client, root) => {
      await pushTestImage(client, `${host}/app:prefix-amd64`, "linux/amd64");
      await pushTestImage(client, `${host}/app:prefix-arm64`, "linux/arm64");
      await client.putIndex(`${host}/app:prefix`, [
        { reference: ":prefix-amd64", platform: "linux/amd64" },
        { reference: ":prefix-arm64", platform: "linux/arm64" },
      ]);
      // An index now: the descriptor is the index's.
      const served = await appendServed(client, host, root);
      const index = served.json as ManifestJson;
      assert.deepEqual(index.manifests?.map((m) => m.platform.architecture), ["amd64", "arm64"]);
      const layerSets = [];
      for (const entry of index.manifests!) {
        const manifest = (await client.getManifest(`${host}/app@${entry.digest}`))!;
        const json = manifest.json as ManifestJson;
        assert.deepEqual(json.layers.length, 4);
        const config = await readJson<{ architecture: string; config: { WorkingDir: string } }>(
          client,
          `${host}/app`,
          json.config.digest,
        );
        assert.deepEqual(config.architecture, entry.platform.architecture);
        assert.deepEqual(config.config.WorkingDir, "/app");
        layerSets.push(json.layers.slice(1).map((layer) => layer.digest));
      }
      // One set of blobs serves both platforms.
      assert.deepEqual(layerSets[0], layerSets[1]);
    });
  },
});

Deno.test({
  name: "append: files belong to a numeric user; a user by name is refused (engine path)",
  ignore: NO_REGISTRY,
  async fn() {
    await withProject(async (host, client, root) => {
      await pushTestImage(client, `${host}/app:prefix`, "linux/amd64");
      const user = [{
        index: 2,
        plugin: "custom",
        method: "withLayer",
        appended: { config: { user: "1000:100" } },
      }, ...layersFor(root)];
      await appendLayers(
        split(`${host}/app:prefix`, user),
        `${host}/app:numeric`,
        options(client, root),
      );
      // The numeric user from the first appended layer is the prefix's for the next build.
      await appendLayers(
        split(`${host}/app:numeric`, layersFor(root).slice(1, 2)),
        `${host}/app:owned`,
        options(client, root),
      );
      const json = (await client.getManifest(`${host}/app:owned`))!.json as ManifestJson;
      const listing = await listLayer(client, `${host}/app`, json.layers.at(-1)!.digest);
      assert.deepEqual(listing.map((line) => line.split(" ")[1]), ["1000/100"]);

      const named = [{ ...user[0], appended: { config: { user: "app" } } }];
      await appendLayers(
        split(`${host}/app:prefix`, named),
        `${host}/app:named`,
        options(client, root),
      );
      await assert.rejects(
        () =>
          appendLayers(
            split(`${host}/app:named`, layersFor(root).slice(0, 1)),
            `${host}/app:refused`,
            options(client, root),
          ),
        (error) => error instanceof AppendRefused && /a user by name/.test(error.message),
      );
    });
  },
});

/** A registry (at the fetch boundary) that serves `manifest` for every tag and `blobs` by digest. */
function lyingRegistry(manifest: unknown, mediaType: string, blobs: Uint8Array[]) {
  const body = new TextEncoder().encode(JSON.stringify(manifest));
  const byDigest = new Map<string, Uint8Array>();
  const ready = Promise.all(blobs.map(async (blob) => {
    byDigest.set(await sha256Digest(blob), blob);
  }));
  const fetchStub: typeof fetch = async (input) => {
    await ready;
    const url = new URL(input instanceof Request ? input.url : String(input));
    const blob = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url.pathname)?.[1];
    if (blob !== undefined) {
      const bytes = byDigest.get(blob);
      return bytes
        ? new Response(bytes as Uint8Array<ArrayBuffer>, { status: 200 })
        : new Response("", { status: 404 });
    }
    if (url.pathname.includes("/manifests/")) {
      return new Response(body, { status: 200, headers: { "content-type": mediaType } });
    }
    return new Response("", { status: 404 });
  };
  return new RegistryClient({ fetch: fetchStub, retries: 0 });
}

Deno.test("append: a prefix the registry serves malformed is an error naming it, not a crash", async () => {
  const config = new TextEncoder().encode(JSON.stringify({ config: { Env: ["A=1"] } }));
  const notJson = new TextEncoder().encode("{not json");
  const badEnv = new TextEncoder().encode(JSON.stringify({ config: { Env: [1, 2] } }));
  const manifestWith = async (configBytes: Uint8Array, layers: unknown) => ({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: await sha256Digest(configBytes),
      size: configBytes.length,
    },
    layers,
  });
  const cases: [string, RegistryClient][] = [
    [
      'has no "layers" list',
      lyingRegistry(
        await manifestWith(config, "nope"),
        "application/vnd.oci.image.manifest.v1+json",
        [config],
      ),
    ],
    [
      "is not an image config",
      lyingRegistry(await manifestWith(notJson, []), "application/vnd.oci.image.manifest.v1+json", [
        notJson,
      ]),
    ],
    [
      "is not an image config",
      lyingRegistry(await manifestWith(badEnv, []), "application/vnd.oci.image.manifest.v1+json", [
        badEnv,
      ]),
    ],
    [
      "lists no platform image",
      lyingRegistry(
        {
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.index.v1+json",
          manifests: [{
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            digest: await sha256Digest(config),
            size: 1,
            platform: { os: "unknown", architecture: "unknown" },
          }],
        },
        "application/vnd.oci.image.index.v1+json",
        [config],
      ),
    ],
  ];
  const layers: AppendedLayer[] = [{
    index: 1,
    plugin: "env_vars",
    method: "withEnvVars",
    appended: { config: { env: { A: "2" } } },
  }];
  for (const [said, client] of cases) {
    await assert.rejects(
      () =>
        appendLayers(split("127.0.0.1:5/app:prefix", layers), "127.0.0.1:5/app:full", {
          registry: client,
          ignore: new IgnoreRules([]),
          epoch: 1,
          progress: () => {},
        }),
      (error) =>
        error instanceof ImgtoolError && !(error instanceof AppendRefused) &&
        error.message.includes("cannot be appended to") && error.message.includes(said),
      said,
    );
    await client.close();
  }
});
