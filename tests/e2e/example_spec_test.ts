/**
 * The example spec `examples/specs/all_plugins/spec.ts` (three custom plugins from
 * `examples/plugins/`) builds for real and its image does what the spec says.
 *
 * What the build reaches, all from this test: the file the download_file plugin fetches,
 * served here on 127.0.0.1; and the npm package node_packages installs, served here on
 * 127.0.0.1 as a one-package npm registry. That package is a real one: `npm pack` fetches
 * it on the host from the registry npm is configured with. The build cannot use that
 * registry directly: the machine reaches it through an egress proxy whose TLS certificate
 * only the host trusts, so `npm install` inside a build step fails certificate checks.
 * Debian's `nodejs` and `npm` come from the base image's apt sources.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  assertExit,
  e2eTest,
  imgtool,
  inImage,
  jsonImages,
  makeProject,
  must,
  mustDocker,
  projectConfig,
  removeImages,
  REPO_ROOT,
  RUN_ID,
  sha256,
  timing,
} from "./harness.ts";

const EXAMPLE = join(REPO_ROOT, "examples", "specs", "all_plugins");
const NPM_PACKAGE = "semver";
const NPM_VERSION = "7.6.3";

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

interface Packed {
  readonly filename: string;
  readonly shasum: string;
  readonly integrity: string;
}

/** `npm pack NAME@VERSION` into `dir`, from npm's configured registry. */
async function npmPack(
  dir: string,
): Promise<{ tarball: Uint8Array<ArrayBuffer>; manifest: object } & Packed> {
  const out = await must("npm", [
    "pack",
    `${NPM_PACKAGE}@${NPM_VERSION}`,
    "--json",
    "--pack-destination",
    dir,
  ], { cwd: dir });
  const [packed] = JSON.parse(out) as Packed[];
  const file = join(dir, packed.filename);
  const manifest = JSON.parse(await must("tar", ["-xzOf", file, "package/package.json"]));
  return { ...packed, tarball: await Deno.readFile(file), manifest };
}

/** What this test serves on 127.0.0.1, and the paths asked for. */
interface Served {
  readonly port: number;
  readonly requests: string[];
  close(): Promise<void>;
}

/** Serve the greeting file, and the packed npm package as a one-package npm registry. */
function serve(
  packed: Packed & { tarball: Uint8Array<ArrayBuffer>; manifest: object },
  greeting: Uint8Array<ArrayBuffer>,
): Served {
  const requests: string[] = [];
  const controller = new AbortController();
  const tarballPath = `/npm/${NPM_PACKAGE}/-/${packed.filename}`;
  const server: Deno.HttpServer<Deno.NetAddr> = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: controller.signal,
    onListen: () => {},
  }, (request): Response => {
    const path = new URL(request.url).pathname;
    requests.push(path);
    if (path === "/files/greeting.txt") return new Response(greeting);
    if (path === tarballPath) return new Response(packed.tarball);
    if (path !== `/npm/${NPM_PACKAGE}`) return new Response("not found", { status: 404 });
    const version = {
      ...packed.manifest,
      dist: {
        tarball: `http://127.0.0.1:${server.addr.port}${tarballPath}`,
        shasum: packed.shasum,
        integrity: packed.integrity,
      },
    };
    return Response.json({
      name: NPM_PACKAGE,
      "dist-tags": { latest: NPM_VERSION },
      versions: { [NPM_VERSION]: version },
    });
  });
  return {
    port: server.addr.port,
    requests,
    close: async () => {
      controller.abort();
      await server.finished;
    },
  };
}

e2eTest(
  "the all_plugins example spec builds for real and its image does what it says",
  async (t, facts) => {
    const registry = `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-example`;
    const greeting = await Deno.readFile(join(EXAMPLE, "files", "greeting.txt"));
    const dir = await makeProject({});
    let server: Served | undefined;
    let uri = "";
    try {
      server = serve(await npmPack(dir), greeting);
      const { port, requests } = server;
      const config = join(dir, "imgtool.toml");
      await Deno.writeTextFile(
        config,
        projectConfig(
          facts,
          registry,
          `[plugins.node_packages]\nregistry = "http://127.0.0.1:${port}/npm/"\n`,
        ),
      );
      const env = {
        IMGTOOL_CONFIG: config,
        IMGTOOL_EXAMPLE_DOWNLOAD_URL: `http://127.0.0.1:${port}/files/greeting.txt`,
        IMGTOOL_EXAMPLE_DOWNLOAD_SHA256: sha256(greeting),
        IMGTOOL_EXAMPLE_NPM_PACKAGES: `${NPM_PACKAGE}@${NPM_VERSION}`,
      };
      const started = performance.now();
      const built = await imgtool(dir, [
        "build",
        join(EXAMPLE, "spec.ts"),
        "--push",
        "--builder",
        "docker",
        "--json",
      ], env);
      timing("example spec build and push", started);
      assertExit(built, 0, "build --push of the all_plugins example");
      const [image] = jsonImages(built);
      assert.equal(image.status, "built", JSON.stringify(image));
      uri = image.uri;
      assert.match(uri, new RegExp(`^${registry}/imgtool-example-all-plugins:[0-9a-f]{32}$`));
      await removeImages(facts, [uri]);
      await mustDocker(facts, ["pull", "-q", uri]);

      await t.step("the build fetched the file and the npm package from this test's server", () => {
        assert.ok(requests.includes("/files/greeting.txt"), requests.join(", "));
        // npm always asks the registry for the package document; the tarball may come from
        // npm's cache mount instead (on a rerun), checked against the integrity served here.
        assert.ok(requests.includes(`/npm/${NPM_PACKAGE}`), requests.join(", "));
      });

      await t.step(
        "node hello.js, run as the non-root user, prints the downloaded greeting",
        async () => {
          const out = await inImage(facts, uri, ["node", "hello.js"]);
          const text = new TextDecoder().decode(greeting).trim();
          assert.match(out, new RegExp(`^${escapeRegExp(text)} \\(node v[0-9.]+, user app\\)\\n$`));
        },
      );

      await t.step("the container runs as app (uid 10001) in /home/app", async () => {
        assert.equal(
          await inImage(facts, uri, ["sh", "-c", "id -un; id -u; pwd"]),
          "app\n10001\n/home/app\n",
        );
      });

      await t.step("the downloaded file is there, with its content and mode 0644", async () => {
        const out = await inImage(facts, uri, ["stat", "-c", "%a %U", "/opt/example/greeting.txt"]);
        assert.equal(out, "644 root\n");
        const content = await inImage(facts, uri, ["cat", "/opt/example/greeting.txt"]);
        assert.equal(content, new TextDecoder().decode(greeting));
      });

      await t.step("the copied app belongs to the non-root user", async () => {
        const out = await inImage(facts, uri, ["stat", "-c", "%U:%G %n", "/home/app/hello.js"]);
        assert.equal(out, "app:app /home/app/hello.js\n");
      });

      await t.step("the npm package is installed globally and its command runs", async () => {
        const version = await inImage(facts, uri, [
          "sh",
          "-c",
          `node -p "require('$(npm root -g)/${NPM_PACKAGE}/package.json').version"`,
        ]);
        assert.equal(version, `${NPM_VERSION}\n`);
        assert.equal(
          await inImage(facts, uri, ["semver", "-r", ">=7.0.0", "7.6.3", "6.0.0"]),
          "7.6.3\n",
        );
      });
    } finally {
      await server?.close();
      if (uri) await removeImages(facts, [uri]);
      await Deno.remove(dir, { recursive: true });
    }
  },
);
