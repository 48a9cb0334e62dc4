/**
 * The test groups every builder must pass (`docker_test.ts` and `buildah_test.ts` run them):
 *
 * - an image with every layer type that can run here (apt, pip and requirements from the
 *   local index, a Poetry project with Debian's poetry, source files and folders with and
 *   without destinations, a .dockerignore, env vars that need exact quoting, a workdir,
 *   commands, a secret), built and pushed, then pulled back and looked into; the secret
 *   reaches its step and appears in no layer, history, config or imgtool output; a second
 *   build is skipped, `--force` rebuilds;
 * - a two-platform image pushed as one OCI index whose platforms each run.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  assertExit,
  copyTree,
  docker,
  type Facts,
  fileContains,
  imgtool,
  inImage,
  jsonImages,
  makeProject,
  manifestStatus,
  mustDocker,
  projectConfig,
  rawManifest,
  removeImages,
  run,
  RUN_ID,
  sha256,
  timing,
} from "./harness.ts";
import { RegistryClient } from "../../src/registry/client.ts";

/** The builders the suite runs with. */
export type BuilderName = "docker" | "buildah";

/** An env value that every layer of quoting could get wrong (it goes through a build arg). */
export const WEIRD_VALUE =
  `quote " apostrophe ' dollar $HOME \${PATH} backslash \\ \\n backtick \` percent %s ` +
  `tab\there unicode é→ line1\nline2  `;
/** A value with quotes, `$` and backslashes but no line break (a plain ENV instruction). */
export const QUOTED_VALUE = `say "hi" to '$USER' at C:\\temp\\ and \${HOME} 100%`;

/** The secret's variable; its value is made per run and known only to the test. */
const TOKEN_VAR = "IMGTOOL_E2E_TOKEN";

/** Files of the every-layer project, and the spec that uses them all. */
function everyLayerFiles(facts: Facts, registry: string): Record<string, string> {
  const spec = `import { Image } from "imgtool";

// Every layer type that can run on this machine, in one image.
export default Image.fromDebianBase({ name: "every-layer" })
  // Unique per run: every later layer is built for real, not taken from a builder's cache.
  .withEnvVars({ E2E_RUN: ${JSON.stringify(RUN_ID)} })
  .withDockerignore("./.dockerignore")
  .withAptPackages(["python3-poetry"])
  .withPipPackages("imgtool-demo-a==1.1.0", { indexUrl: ${JSON.stringify(facts.PACKAGE_INDEX)} })
  .withRequirements("./requirements.txt")
  .withPoetryProject("./poetry/pyproject.toml")
  .withPoetryProject("./poetry/pyproject.toml", { projectInstallMode: "install_project" })
  .withWorkdir("/app")
  .withSourceFile("./main.py")
  .withSourceFile("./settings.ini", "conf/settings.ini")
  .withSourceFile("./main.py", "/opt/dst/renamed.py")
  .withSourceFolder("./src/pkg")
  .withSourceFolder("./data", "/opt/data")
  .withSourceFolder("./tree", "/opt/contents", { copyContentsOnly: true })
  .withSourceFolder("./flat", undefined, { copyContentsOnly: true })
  .withEnvVars({
    E2E_WEIRD: ${JSON.stringify(WEIRD_VALUE)},
    E2E_QUOTED: ${JSON.stringify(QUOTED_VALUE)},
  })
  .withCommands("echo made-by-withCommands > cmd.txt")
  .withCommands([
    'printf %s "$${TOKEN_VAR}" | sha256sum | cut -d " " -f 1 > token.sha256',
    'printf "the step sees the token as %s\\\\n" "$${TOKEN_VAR}"',
  ], { secretMounts: "${TOKEN_VAR}" });
`;
  return {
    "imgtool.toml": projectConfig(
      facts,
      registry,
      '[plugins.poetry_project]\ncommand = "poetry"\n',
    ),
    "spec.ts": spec,
    ".dockerignore": "**/*.log\n!**/keep.log\n",
    "main.py": `print("imgtool e2e main ${RUN_ID}")\n`,
    "settings.ini": `[e2e]\nrun = ${RUN_ID}\n`,
    "requirements.txt": `--index-url ${facts.PACKAGE_INDEX}\nimgtool-demo-hello==0.1.0\n`,
    "src/pkg/a.txt": "a\n",
    "src/pkg/sub/b.txt": "b\n",
    "src/pkg/debug.log": "ignored by **/*.log\n",
    "src/pkg/keep.log": "kept by !**/keep.log\n",
    "data/d1.txt": "d1\n",
    "data/skip.log": "ignored by **/*.log\n",
    "tree/x.txt": "x\n",
    "tree/nested/y.txt": "y\n",
    "flat/flat1.txt": "flat1\n",
  };
}

/** Every file the copy layers, commands and the secret step leave in those folders. */
const EXPECTED_FILES = [
  "/app/cmd.txt",
  "/app/conf/settings.ini",
  "/app/flat1.txt",
  "/app/main.py",
  "/app/pkg/a.txt",
  "/app/pkg/keep.log",
  "/app/pkg/sub/b.txt",
  "/app/token.sha256",
  "/opt/contents/nested/y.txt",
  "/opt/contents/x.txt",
  "/opt/data/d1.txt",
  "/opt/dst/renamed.py",
];

/** Remove what a builder keeps of an image in its own store (buildah; docker's is the engine). */
async function removeFromBuilder(builder: BuilderName, uri: string, multi: boolean) {
  if (builder !== "buildah") return;
  if (!multi) {
    await run("buildah", ["rmi", uri]);
    return;
  }
  // A manifest list: remove it, then the per-platform images it listed (untagged; by id).
  const list = await run("buildah", ["manifest", "inspect", uri]);
  const digests: string[] = list.code === 0
    ? JSON.parse(list.stdout).manifests.map((m: { digest: string }) => m.digest)
    : [];
  await run("buildah", ["manifest", "rm", uri]);
  const images = await run("buildah", ["images", "--all", "--format", "{{.ID}} {{.Digest}}"]);
  for (const line of images.stdout.split("\n")) {
    const [id, digest] = line.trim().split(/\s+/);
    if (id && digests.includes(digest)) await run("buildah", ["rmi", id]);
  }
}

/** The every-layer group for one builder. */
export async function everyLayerSuite(t: Deno.TestContext, facts: Facts, builder: BuilderName) {
  const registry = `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-${builder}`;
  const dir = await makeProject(everyLayerFiles(facts, registry));
  const token = `imgtool-e2e-secret-${crypto.randomUUID()}`;
  const env = { [TOKEN_VAR]: token };
  const flags = ["--push", "--builder", builder];
  const references = new Set<string>();
  let uri = "";
  try {
    await copyTree(facts.POETRY_FIXTURE, join(dir, "poetry"));
    let started = performance.now();
    const first = await imgtool(dir, ["build", "spec.ts", ...flags], env);
    timing(`${builder}: every-layer build and push`, started);
    assertExit(first, 0, "build --push");
    uri = first.stdout.trim().split("\n").pop() ?? "";
    assert.match(uri, new RegExp(`^${registry}/every-layer:[0-9a-f]{32}$`));
    references.add(uri);

    await t.step("imgtool's output never holds the secret; a step that prints it is masked", () => {
      const output = first.stdout + first.stderr;
      assert.ok(!output.includes(token), "the secret value is in imgtool's output");
      assert.match(first.stderr, /the step sees the token as \*\*\*/);
    });

    await t.step("the tag is in the registry", async () => {
      assert.equal(await manifestStatus(uri), 200);
    });

    // Look inside what the registry serves, not what the builder left behind.
    started = performance.now();
    await removeImages(facts, [uri]);
    assert.notEqual((await docker(facts, ["image", "inspect", uri])).code, 0, "rmi failed");
    await mustDocker(facts, ["pull", "-q", uri]);
    timing(`${builder}: every-layer pull`, started);

    await t.step("the secret reached its step (the step wrote its hash)", async () => {
      const written = await inImage(facts, uri, ["cat", "/app/token.sha256"]);
      assert.equal(written.trim(), sha256(token));
    });

    await t.step("the secret is in no layer, history entry or config", async () => {
      const saveDir = await Deno.makeTempDir({ prefix: "imgtool-e2e-save-" });
      try {
        const tar = join(saveDir, "image.tar");
        await mustDocker(facts, ["save", "-o", tar, uri]);
        // `docker save` writes layers uncompressed, so a byte search sees every file. The
        // same search finds a marker that is in a layer: the search itself works.
        assert.ok(await fileContains(tar, `imgtool e2e main ${RUN_ID}`), "marker not found");
        assert.ok(!(await fileContains(tar, token)), "the secret value is in the saved image");
      } finally {
        await Deno.remove(saveDir, { recursive: true });
      }
      const history = await mustDocker(facts, ["history", "--no-trunc", uri]);
      assert.ok(history.includes(TOKEN_VAR), "history does not show the secret step");
      assert.ok(!history.includes(token), "the secret value is in docker history");
      const inspect = await mustDocker(facts, ["inspect", uri]);
      assert.ok(!inspect.includes(token), "the secret value is in docker inspect");
    });

    await t.step(
      "the packages from apt, pip, requirements and poetry are in the venv",
      async () => {
        const out = await inImage(facts, uri, [
          "python",
          "-c",
          "import sys, imgtool_demo_a, imgtool_demo_hello, imgtool_demo_b\n" +
          "import imgtool_poetry_fixture as project\n" +
          "print(sys.prefix)\nprint(imgtool_demo_b.describe())\nprint(project.__file__)\n" +
          "project.main()",
        ]);
        // The project itself (install_project) is a wheel in site-packages, not editable.
        assert.equal(
          out,
          "imgtool-demo-hello 0.1.0\n/opt/venv\nimgtool-demo-b 2.0.0 using imgtool-demo-a 1.1.0\n" +
            "/opt/venv/lib/python3.11/site-packages/imgtool_poetry_fixture/__init__.py\n" +
            "imgtool-demo-b 2.0.0 using imgtool-demo-a 1.1.0\n",
        );
        // The console script of the package from the requirements file.
        assert.equal(
          await inImage(facts, uri, ["imgtool-demo-hello"]),
          "imgtool-demo-hello 0.1.0\nimgtool-demo-hello 0.1.0 (console script)\n",
        );
        // Poetry installed into the venv, not into the system Python.
        const system = await docker(facts, [
          "run",
          "--rm",
          "--network=host",
          uri,
          "/usr/bin/python3",
          "-c",
          "import imgtool_demo_b",
        ]);
        assert.notEqual(system.code, 0, "imgtool_demo_b is in the system Python");
        const status = await inImage(facts, uri, [
          "dpkg-query",
          "-W",
          "-f=${Status}",
          "python3-poetry",
        ]);
        assert.equal(status, "install ok installed");
      },
    );

    await t.step("env values arrive byte for byte (printenv, os.environ, config)", async () => {
      assert.equal(await inImage(facts, uri, ["printenv", "E2E_WEIRD"]), `${WEIRD_VALUE}\n`);
      assert.equal(await inImage(facts, uri, ["printenv", "E2E_QUOTED"]), `${QUOTED_VALUE}\n`);
      const fromPython = await inImage(facts, uri, [
        "python",
        "-c",
        "import json, os; print(json.dumps([os.environ[k] for k in " +
        "('E2E_WEIRD', 'E2E_QUOTED', 'E2E_RUN')]))",
      ]);
      assert.deepEqual(JSON.parse(fromPython), [WEIRD_VALUE, QUOTED_VALUE, RUN_ID]);
      const config = JSON.parse(
        await mustDocker(facts, ["inspect", "--format", "{{json .Config.Env}}", uri]),
      );
      assert.ok(config.includes(`E2E_WEIRD=${WEIRD_VALUE}`), `config env: ${config}`);
    });

    await t.step("workdir: the image's working directory is /app", async () => {
      assert.equal(await inImage(facts, uri, ["pwd"]), "/app\n");
      const workdir = await mustDocker(facts, [
        "inspect",
        "--format",
        "{{.Config.WorkingDir}}",
        uri,
      ]);
      assert.equal(workdir.trim(), "/app");
    });

    await t.step("files are where the copy contract says; ignored files are absent", async () => {
      const listing = await inImage(facts, uri, [
        "find",
        "/app",
        "/opt/dst",
        "/opt/data",
        "/opt/contents",
        "-type",
        "f",
      ]);
      assert.deepEqual(listing.trim().split("\n").sort(), EXPECTED_FILES);
      const contents = await inImage(facts, uri, [
        "sh",
        "-c",
        "cat main.py conf/settings.ini pkg/sub/b.txt /opt/data/d1.txt /opt/contents/nested/y.txt " +
        "flat1.txt cmd.txt",
      ]);
      assert.equal(
        contents,
        `print("imgtool e2e main ${RUN_ID}")\n[e2e]\nrun = ${RUN_ID}\nb\nd1\ny\nflat1\n` +
          "made-by-withCommands\n",
      );
    });

    await t.step("a second build --push is skipped", async () => {
      const again = await imgtool(dir, ["build", "spec.ts", ...flags, "--json"], env);
      assertExit(again, 0, "second build --push");
      const [image] = jsonImages(again);
      assert.equal(image.uri, uri);
      assert.equal(image.status, "skipped", JSON.stringify(image));
    });

    await t.step("--force rebuilds and pushes again", async () => {
      const forced = await imgtool(dir, ["build", "spec.ts", ...flags, "--force", "--json"], env);
      assertExit(forced, 0, "build --push --force");
      const [image] = jsonImages(forced);
      assert.equal(image.status, "built", JSON.stringify(image));
      assert.equal(image.builder, builder);
      assert.ok(!(forced.stdout + forced.stderr).includes(token));
      assert.equal(await manifestStatus(uri), 200);
    });
  } finally {
    await removeImages(facts, references);
    if (uri) await removeFromBuilder(builder, uri, false);
    await Deno.remove(dir, { recursive: true });
  }
}

/** The two-platform group for one builder. */
export async function twoPlatformSuite(t: Deno.TestContext, facts: Facts, builder: BuilderName) {
  const registry = `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-${builder}`;
  // Light on purpose: arm64 steps run under qemu.
  const spec = `import { Image } from "imgtool";

export default Image.fromBase(${JSON.stringify(facts.PYTHON_BASE)})
  .clone({ name: "two-platform" })
  .withEnvVars({ E2E_RUN: ${JSON.stringify(RUN_ID)} })
  .withCommands("uname -m > /arch");
`;
  const dir = await makeProject({
    "imgtool.toml": projectConfig(facts, registry),
    "spec.ts": spec,
  });
  const flags = ["--push", "--builder", builder, "--platform", "linux/amd64,linux/arm64", "--json"];
  const references = new Set<string>();
  let uri = "";
  try {
    const started = performance.now();
    const built = await imgtool(dir, ["build", "spec.ts", ...flags]);
    timing(`${builder}: two-platform build and push`, started);
    assertExit(built, 0, "build --push for two platforms");
    const [image] = jsonImages(built);
    assert.equal(image.status, "built", JSON.stringify(image));
    assert.deepEqual(image.platforms, ["linux/amd64", "linux/arm64"]);
    uri = image.uri;
    assert.match(uri, new RegExp(`^${registry}/two-platform:[0-9a-f]{32}$`));
    // What docker's built-in BuildKit path leaves in the engine: one tag per platform.
    for (const platform of ["linux-amd64", "linux-arm64"]) references.add(`${uri}-${platform}`);
    references.add(uri);

    const manifests: { digest: string; platform: { os: string; architecture: string } }[] = [];
    await t.step("the tag is one OCI index holding both platforms", async () => {
      const index = await rawManifest(uri);
      assert.equal(index.mediaType, "application/vnd.oci.image.index.v1+json");
      manifests.push(...(index.manifests as typeof manifests));
      assert.deepEqual(
        manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`).sort(),
        ["linux/amd64", "linux/arm64"],
      );
      // imgtool's own registry client reads it the same way.
      const status = await new RegistryClient().check(uri, ["linux/amd64", "linux/arm64"]);
      assert.equal(status.exists, true, JSON.stringify(status));
      assert.deepEqual(status.missing, []);
    });

    await t.step("each platform runs and reports its architecture", async () => {
      assert.equal(manifests.length, 2, "the index step failed");
      const repository = uri.replace(/:[^:/]+$/, "");
      const expected: Record<string, string> = { amd64: "x86_64", arm64: "aarch64" };
      for (const manifest of manifests) {
        const { architecture } = manifest.platform;
        // By digest: engine 20.10 keeps one platform per tag.
        const reference = `${repository}@${manifest.digest}`;
        references.add(reference);
        await mustDocker(facts, ["pull", "-q", "--platform", `linux/${architecture}`, reference]);
        const inspected = await mustDocker(facts, [
          "image",
          "inspect",
          "--format",
          "{{.Os}}/{{.Architecture}}",
          reference,
        ]);
        assert.equal(inspected.trim(), `linux/${architecture}`);
        const out = await inImage(facts, reference, [
          "sh",
          "-c",
          'cat /arch; uname -m; echo "$E2E_RUN"',
        ], {
          platform: `linux/${architecture}`,
        });
        const arch = expected[architecture];
        assert.equal(out, `${arch}\n${arch}\n${RUN_ID}\n`, `platform ${architecture}`);
      }
    });

    await t.step("a second build --push of both platforms is skipped", async () => {
      const again = await imgtool(dir, ["build", "spec.ts", ...flags]);
      assertExit(again, 0, "second build --push");
      const [second] = jsonImages(again);
      assert.equal(second.uri, uri);
      assert.equal(second.status, "skipped", JSON.stringify(second));
    });
  } finally {
    await removeImages(facts, references);
    if (uri) await removeFromBuilder(builder, uri, true);
    await Deno.remove(dir, { recursive: true });
  }
}
