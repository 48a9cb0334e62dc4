/**
 * End-to-end check of `imgtool.lock` (issue 12, item 1) on the real engine and registry: a spec
 * locked to its base's digest keeps its URI, and builds from that digest, after another image
 * is pushed under the base's tag, until `imgtool lock --update` moves the entry (and the tag);
 * `build --locked` with a base that has no entry exits 2 before building anything.
 *
 * The base is a per-run copy of the environment's Python base index, so that moving its tag
 * touches nothing another test uses. Every imgtool run is bounded in time; the images built
 * or pulled here are removed from the engine afterwards.
 *
 * Needs the `lock` command and the `--locked` flag wired into the CLI (cli.ts, src/cli/args.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  assertExit,
  boundedImgtool,
  copyImage,
  e2eTest,
  type Facts,
  inImage,
  makeProject,
  must,
  projectConfig,
  type Ran,
  removeImages,
  RUN_ID,
  sha256,
  timing,
} from "./harness.ts";

/** The digest the registry serves for `reference` (of its index, for a multi-platform one). */
async function servedDigest(reference: string): Promise<string> {
  const raw = await must("skopeo", [
    "inspect",
    "--raw",
    "--tls-verify=false",
    `docker://${reference}`,
  ]);
  return `sha256:${sha256(new TextEncoder().encode(raw))}`;
}

/** The one line of a command's standard output (the URI `uri` prints). */
function onlyLine(result: Ran): string {
  const lines = result.stdout.trim().split("\n");
  assert.equal(lines.length, 1, `one line expected:\n${result.stdout}`);
  return lines[0];
}

function spec(base: string): string {
  return `import { Image } from "imgtool";

// python3 runs in the build: it fails on a base without Python.
export default Image.fromBase(${JSON.stringify(base)})
  .clone({ name: "locked" })
  .withEnvVars({ E2E_RUN: ${JSON.stringify(RUN_ID)} })
  .withCommands("python3 -c 'import sys; print(sys.version)' > /python-version.txt");
`;
}

e2eTest(
  "docker: a locked spec keeps its URI and builds from the locked digest after its base's tag moves, until lock --update",
  async (t, facts: Facts) => {
    const registry = `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-lock`;
    const base = `${registry}/base:1`;
    await copyImage(facts.PYTHON_BASE, base);
    const pythonDigest = await servedDigest(base);
    const dir = await makeProject({
      "imgtool.toml": projectConfig(facts, registry),
      "spec.ts": spec(base),
      "unlocked.ts": spec(`${registry}/other:1`),
    });
    const built: string[] = [];
    try {
      const unlockedUri = onlyLine(await boundedImgtool(dir, ["uri", "spec.ts"]));

      let lockedUri = "";
      await t.step(
        "lock writes the digest the registry serves for the base, and the URI covers it",
        async () => {
          const started = performance.now();
          const locked = await boundedImgtool(dir, ["lock", "spec.ts"]);
          timing("lock", started);
          assertExit(locked, 0, "lock");
          const text = await Deno.readTextFile(join(dir, "imgtool.lock"));
          assert.ok(text.includes(`"${base}" = "${pythonDigest}"`), text);
          lockedUri = onlyLine(await boundedImgtool(dir, ["uri", "spec.ts"]));
          assert.notEqual(lockedUri, unlockedUri);
        },
      );

      await t.step(
        "another image under the base's tag changes neither the URI nor what is built",
        async () => {
          await copyImage(facts.DEBIAN_BASE, base);
          assert.notEqual(await servedDigest(base), pythonDigest, "the tag moved");
          assert.equal(onlyLine(await boundedImgtool(dir, ["uri", "spec.ts"])), lockedUri);
          const dockerfile = await boundedImgtool(dir, ["dockerfile", "spec.ts"]);
          assertExit(dockerfile, 0, "dockerfile");
          assert.match(dockerfile.stdout, new RegExp(`^FROM ${base}@${pythonDigest}$`, "m"));
          const started = performance.now();
          const build = await boundedImgtool(dir, [
            "build",
            "spec.ts",
            "--push",
            "--locked",
            "--builder",
            "docker",
          ]);
          timing("locked build and push", started);
          assertExit(build, 0, "build --push --locked");
          assert.equal(build.stdout.trim().split("\n").pop(), lockedUri);
          built.push(lockedUri);
          // Python is there although the tag names a Debian image without it now.
          await removeImages(facts, [lockedUri]);
          const version = await inImage(facts, lockedUri, ["cat", "/python-version.txt"]);
          assert.match(version, /^3\.\d+/);
        },
      );

      await t.step("lock --update moves the entry, says so, and changes the URI", async () => {
        const debianDigest = await servedDigest(base);
        const update = await boundedImgtool(dir, ["lock", "spec.ts", "--update"]);
        assertExit(update, 0, "lock --update");
        const short = (digest: string) => `${digest.slice(0, "sha256:".length + 12)}…`;
        assert.match(
          update.stdout,
          new RegExp(`^moved ${base} ${short(pythonDigest)} → ${short(debianDigest)}$`, "m"),
        );
        const text = await Deno.readTextFile(join(dir, "imgtool.lock"));
        assert.ok(text.includes(`"${base}" = "${debianDigest}"`), text);
        const movedUri = onlyLine(await boundedImgtool(dir, ["uri", "spec.ts"]));
        assert.notEqual(movedUri, lockedUri);
        assert.notEqual(movedUri, unlockedUri);
      });

      await t.step(
        "build --locked with a base that has no entry exits 2 and builds nothing",
        async () => {
          const refused = await boundedImgtool(dir, [
            "build",
            "unlocked.ts",
            "--push",
            "--locked",
            "--builder",
            "docker",
          ]);
          assertExit(refused, 2, "build --locked of a spec with an unlocked base");
          assert.match(refused.stderr, new RegExp(`${registry}/other:1 has no entry`));
          assert.match(refused.stderr, /imgtool lock unlocked\.ts/);
          assert.doesNotMatch(refused.stderr, /\n\s+at /, "no stack trace");
          assert.equal(refused.stdout, "");
        },
      );
    } finally {
      await removeImages(facts, built);
      await Deno.remove(dir, { recursive: true });
    }
  },
);
