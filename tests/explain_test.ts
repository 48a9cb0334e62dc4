// `imgtool explain`, run as users run it against a stand-in registry on 127.0.0.1
// (tests/fake_registry.ts, without a referrers API, as Distribution 2.8). The image and its
// provenance record are put there as `build --push` puts them (the image stands in for a
// build; the record is pushed by the code build uses), then the spec is edited and explain
// asked, from a fresh cache folder: it names each change with its layer, method and line.
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig, setActiveConfig } from "../src/config.ts";
import { identify } from "../src/identify.ts";
import { defaultLastCheckedDir, LastChecked } from "../src/last_checked.ts";
import { loadSpec } from "../src/load.ts";
import { planImage } from "../src/plan.ts";
import { recordProvenance } from "../src/provenance.ts";
import { RegistryClient } from "../src/registry/client.ts";
import { type FakeRegistry, startFakeRegistry } from "./fake_registry.ts";
import { type CliResult, imgtool, lineOf, withTempDir, writeTree } from "./helpers.ts";

const SPEC = (host: string) =>
  `import { Image } from "imgtool";
export default Image.fromBase("${host}/team/base:1").clone({ name: "app" })
  .withPipPackages(["a==1"], { extraArgs: "--no-deps" })
  .withSourceFolder("./src", "/app/src")
  .withCommands("echo built");
`;

/** Run imgtool in `dir` with the cache folder `cache` (a fresh machine: a new folder). */
function run(dir: string, cache: string, args: string[]): Promise<CliResult> {
  return imgtool(args, { cwd: dir, env: { XDG_CACHE_HOME: cache } });
}

interface Pushed {
  readonly dir: string;
  readonly registry: FakeRegistry;
  /** The URI the spec had when it was "built". */
  readonly uri: string;
}

/**
 * A project whose image is in the stand-in registry with its record, as `build --push`
 * leaves it; the spec's image `default` (and `extra` exports) unchanged since.
 */
function withPushedProject(body: (pushed: Pushed) => Promise<void>, extra = ""): Promise<void> {
  return withTempDir(async (dir) => {
    const registry = await startFakeRegistry();
    try {
      await writeTree(dir, {
        "imgtool.toml": `registry = "${registry.host}/team"\nregistry-timeout = 5\n` +
          `[python]\ninstaller = "pip"\n`,
        "spec.ts": SPEC(registry.host) + extra,
        "src/app.py": "print(1)\n",
        "src/old.py": "old\n",
      });
      await registry.addImage("team/base", "1", "linux/amd64");
      const config = loadConfig({ startDir: dir });
      setActiveConfig(config);
      const spec = await loadSpec(join(dir, "spec.ts"));
      const plan = planImage(spec.images[0].image, "default", config);
      const identity = await identify(plan);
      await registry.addImage("team/app", identity.tag, "linux/amd64");
      await recordProvenance(new RegistryClient(), plan, identity, spec.file);
      registry.requests.length = 0;
      await body({ dir, registry, uri: identity.uri });
    } finally {
      await registry.close();
    }
  });
}

/** Edit the project: a file changed, one added, one removed, the pip option changed. */
async function edit(dir: string): Promise<void> {
  await Deno.writeTextFile(join(dir, "src", "app.py"), "print(2)\n");
  await Deno.writeTextFile(join(dir, "src", "new.py"), "new\n");
  await Deno.remove(join(dir, "src", "old.py"));
  const spec = join(dir, "spec.ts");
  await Deno.writeTextFile(spec, (await Deno.readTextFile(spec)).replace("--no-deps", "--pre"));
}

/** The lines explain should print for {@link edit}, from the spec file's own lines. */
function editedLines(dir: string): string[] {
  const spec = join(dir, "spec.ts");
  const pip = `layer 1 withPipPackages (spec.ts:${lineOf(spec, "withPipPackages")})`;
  const src = `layer 2 withSourceFolder (spec.ts:${lineOf(spec, "withSourceFolder")})`;
  return [
    `${pip}: option extraArgs: "--no-deps" → "--pre"`,
    `${src}: file changed: src/app.py`,
    `${src}: file added: src/new.py`,
    `${src}: file removed: src/old.py`,
  ];
}

Deno.test("explain --against REF names each change with its layer, method and spec line, from a fresh cache folder", () =>
  withPushedProject(async ({ dir, registry, uri }) => {
    await edit(dir);
    // The base moved too (another image under its tag): not in the tag, but named.
    const built = registry.manifest("team/base", "1")!.digest;
    const moved = await registry.addImage("team/base", "1", "linux/amd64", { User: "other" });
    const result = await run(dir, await Deno.makeTempDir({ dir }), [
      "explain",
      "spec.ts",
      "--against",
      uri,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const base = `layer 0 Image.fromBase (spec.ts:${lineOf(join(dir, "spec.ts"), "fromBase")})`;
    assert.deepEqual(result.stdout.trimEnd().split("\n"), [
      ...editedLines(dir),
      `${base}: base ${registry.host}/team/base:1 moved: ${built.slice(0, 19)} → ${
        moved.slice(0, 19)
      }`,
    ]);
    assert.match(result.stderr, /^5 differences$/m);
    // It read the record through the referrers tag schema: the registry has no API.
    const asked = (pattern: RegExp) => registry.requests.some((line) => pattern.test(line));
    assert.ok(asked(/^GET \/v2\/team\/app\/referrers\/sha256:\w+ -> 404$/));
    assert.ok(asked(/^GET \/v2\/team\/app\/manifests\/sha256-\w+ -> 200$/));
  }));

Deno.test("explain without --against compares with the URI the last pushed build of the spec checked", () =>
  withPushedProject(async ({ dir, uri }) => {
    const cache = await Deno.makeTempDir({ dir });
    const none = await run(dir, cache, ["explain", "spec.ts"]);
    assert.equal(none.code, 1, none.stderr);
    assert.match(none.stderr, /no pushed build of image "default" of this spec is remembered/);
    assert.match(none.stderr, /hint: .*--against REF/);
    // What a build --push of the whole spec remembers.
    const memory = new LastChecked(defaultLastCheckedDir({ XDG_CACHE_HOME: cache })!);
    memory.remember({ spec: join(dir, "spec.ts"), images: [], platforms: [] }, [uri]);
    await edit(dir);
    const result = await run(dir, cache, ["explain", "spec.ts", "--image", "default"]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.stdout.trimEnd().split("\n"), editedLines(dir));
    assert.ok(result.stderr.includes(`against ${uri}`), result.stderr);
  }));

Deno.test("a REF with the spec's tag: no difference, without asking the registry", () =>
  withPushedProject(async ({ dir, registry, uri }) => {
    const result = await run(dir, await Deno.makeTempDir({ dir }), [
      "explain",
      "spec.ts",
      "--against",
      uri,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `no difference: ${uri} is this spec's tag\n`);
    assert.deepEqual(registry.requests, []);
  }));

Deno.test("a REF without a record, or not in the registry, is said plainly: exit 1", () =>
  withPushedProject(async ({ dir, registry }) => {
    const cache = await Deno.makeTempDir({ dir });
    const base = `${registry.host}/team/base:1`;
    const bare = await run(dir, cache, ["explain", "spec.ts", "--against", base]);
    assert.equal(bare.code, 1, bare.stderr);
    assert.equal(bare.stdout, "");
    assert.match(bare.stderr, new RegExp(`^error: ${base} has no provenance record$`, "m"));
    assert.match(bare.stderr, /^hint: /m);
    assert.doesNotMatch(bare.stderr, /\bat .*\.ts:\d+/, "no stack trace");
    const gone = `${registry.host}/team/app:not-pushed`;
    const missing = await run(dir, cache, ["explain", "spec.ts", "--against", gone]);
    assert.equal(missing.code, 1, missing.stderr);
    assert.match(missing.stderr, new RegExp(`^error: ${gone} is not in the registry$`, "m"));
  }));

Deno.test("explain --json gives { ok, images: [{ image, uri, against, same, record, differences }] }", () =>
  withPushedProject(async ({ dir, uri }) => {
    await edit(dir);
    const result = await run(dir, await Deno.makeTempDir({ dir }), [
      "explain",
      "spec.ts",
      "--against",
      uri,
      "--json",
    ]);
    assert.equal(result.code, 0, result.stderr);
    const json = JSON.parse(result.stdout);
    assert.equal(json.ok, true);
    assert.equal(json.images.length, 1);
    const [image] = json.images;
    assert.equal(image.image, "default");
    assert.equal(image.against, uri);
    assert.equal(image.same, false);
    assert.equal(image.record.via, "tag");
    assert.match(image.record.digest, /^sha256:[0-9a-f]{64}$/);
    const spec = join(dir, "spec.ts");
    assert.deepEqual(image.differences[0], {
      kind: "option",
      layer: {
        index: 1,
        plugin: "pip",
        method: "withPipPackages",
        file: "spec.ts",
        line: lineOf(spec, "withPipPackages"),
      },
      what: "extraArgs",
      old: "--no-deps",
      new: "--pre",
    });
    assert.deepEqual(
      image.differences.slice(1).map((d: { kind: string; what: string }) => `${d.kind} ${d.what}`),
      ["file-changed src/app.py", "file-added src/new.py", "file-removed src/old.py"],
    );
  }));

Deno.test("explain --against compares one image: a spec with several needs --image (exit 2)", () =>
  withPushedProject(async ({ dir, uri }) => {
    const result = await run(dir, await Deno.makeTempDir({ dir }), [
      "explain",
      "spec.ts",
      "--against",
      uri,
    ]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /explain --against compares one image.*default, other/);
    assert.match(result.stderr, /hint: pick one with --image NAME/);
  }, `export const other = Image.fromBase("debian:bookworm-slim").withWorkdir("/x");\n`));

Deno.test("explain --help teaches the question it answers; build's flags are not explain's", async () => {
  const help = await imgtool(["explain", "--help"], { cwd: Deno.cwd() });
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^imgtool explain \[SPEC\] \[flags\]/);
  assert.match(help.stdout, /Why this tag\? What changed since REF\?/);
  assert.match(help.stdout, /--against REF/);
  const general = await imgtool(["--help"], { cwd: Deno.cwd() });
  assert.match(general.stdout, /^ {2}explain {5}why this tag\?/m);
  const wrong = await imgtool(["explain", "spec.ts", "--push"], { cwd: Deno.cwd() });
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /explain: unknown flag --push/);
});
