// scripts/smoke.sh, the checks the release runs against each binary and CI against the bundle:
// it passes imgtool from the sources, fails (showing the output) a command that is not a working
// imgtool, counts what it prints, and leaves no temporary folder behind. The real build check
// needs a Docker engine and a base image; .ci/run and the release workflow run it.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  environmentWithoutImgtool,
  IMGTOOL_COMMAND,
  REPO_ROOT,
  runProcess,
  withTempDir,
} from "./helpers.ts";

const SMOKE = join(REPO_ROOT, "scripts", "smoke.sh");
const VERSION: string = JSON.parse(Deno.readTextFileSync(join(REPO_ROOT, "deno.json"))).version;

/** The smoke script's lines of each kind and its closing counts. */
function report(stdout: string) {
  const lines = stdout.split("\n");
  const summary = /^smoke: (\d+) passed, (\d+) failed/m.exec(stdout);
  assert.ok(summary, `no summary line in:\n${stdout}`);
  return {
    ok: lines.filter((line) => line.startsWith("ok: ")),
    failed: lines.filter((line) => line.startsWith("FAIL: ")),
    skipped: lines.filter((line) => line.startsWith("skip: ")),
    passedCount: Number(summary[1]),
    failedCount: Number(summary[2]),
  };
}

/** Run the smoke script with `command`, its temporary folders under `tmp`, no Docker base. */
function smoke(command: readonly string[], tmp: string, env: Record<string, string> = {}) {
  const base = Object.fromEntries(
    Object.entries(environmentWithoutImgtool()).filter(([name]) => !name.startsWith("SMOKE_")),
  );
  return runProcess("bash", [SMOKE, ...command], {
    cwd: tmp,
    env: { ...base, TMPDIR: tmp, NO_COLOR: "1", ...env },
    clearEnv: true,
  });
}

Deno.test("smoke.sh passes imgtool from the sources, one ok line per passed check, build skipped without a base", async () => {
  await withTempDir(async (tmp) => {
    const ran = await smoke(IMGTOOL_COMMAND, tmp);
    assert.equal(ran.code, 0, ran.stdout + ran.stderr);
    const seen = report(ran.stdout);
    assert.equal(seen.failed.length, 0, ran.stdout);
    assert.equal(seen.failedCount, 0);
    assert.equal(seen.ok.length, seen.passedCount);
    assert.ok(seen.ok.some((line) => line.includes(`--version prints ${VERSION}`)), ran.stdout);
    assert.ok(seen.ok.some((line) => line.includes("non_root_user.ts")), ran.stdout);
    assert.ok(seen.ok.some((line) => /uri .* [a-z0-9-]+:[0-9a-f]{32} /.test(line)), ran.stdout);
    assert.deepEqual(seen.skipped.length, 1, ran.stdout);
    assert.match(seen.skipped[0], /^skip: build: SMOKE_BASE_IMAGE/);
    // The fresh folder (under TMPDIR) is gone at the end.
    assert.deepEqual([...Deno.readDirSync(tmp)], []);
  });
});

Deno.test("smoke.sh fails a command that is not a working imgtool, showing what it printed (exit 1)", async () => {
  await withTempDir(async (tmp) => {
    const fake = join(tmp, "fake-imgtool");
    await Deno.writeTextFile(fake, "#!/bin/sh\necho 'imgtool 0.0.0-not-this-one'\n");
    await Deno.chmod(fake, 0o755);
    const ran = await smoke([fake], tmp);
    assert.equal(ran.code, 1, ran.stdout + ran.stderr);
    const seen = report(ran.stdout);
    assert.equal(seen.failedCount, seen.failed.length);
    assert.equal(seen.passedCount, seen.ok.length);
    // --version, init, uri, dockerfile, the plugin spec and the mistake all fail.
    for (const check of ["--version", "init", "uri", "dockerfile", "non_root_user", "validate"]) {
      assert.ok(seen.failed.some((line) => line.includes(check)), `${check}: ${ran.stdout}`);
    }
    assert.match(ran.stdout, /^ {6}imgtool 0\.0\.0-not-this-one$/m);
    assert.ok(![...Deno.readDirSync(tmp)].some((entry) => entry.name.startsWith("imgtool-smoke")));
  });
});

Deno.test("smoke.sh with SMOKE_REQUIRE_BUILD counts a build it cannot run as failed, not skipped", async () => {
  await withTempDir(async (tmp) => {
    const ran = await smoke(IMGTOOL_COMMAND, tmp, { SMOKE_REQUIRE_BUILD: "1" });
    assert.equal(ran.code, 1, ran.stdout + ran.stderr);
    const seen = report(ran.stdout);
    assert.deepEqual(seen.skipped, []);
    assert.equal(seen.failed.length, 1, ran.stdout);
    assert.match(seen.failed[0], /^FAIL: build: .*SMOKE_REQUIRE_BUILD/);
    assert.equal(seen.failedCount, 1);
  });
});

Deno.test("smoke.sh without a command prints its usage and exits 2", async () => {
  await withTempDir(async (tmp) => {
    const ran = await smoke([], tmp);
    assert.equal(ran.code, 2);
    assert.match(ran.stderr, /^usage: scripts\/smoke\.sh IMGTOOL_COMMAND\.\.\./);
  });
});
