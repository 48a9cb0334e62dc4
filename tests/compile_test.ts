// `deno task compile` where no denort runtime can be had: it type-checks what it would embed,
// then stops with a message saying what is missing and how to supply it.
import assert from "node:assert/strict";
import { join } from "node:path";
import { environmentWithoutImgtool, REPO_ROOT, runProcess, withTempDir } from "./helpers.ts";

Deno.test("compile without a denort runtime type-checks, then says how to supply one (exit 1)", async () => {
  await withTempDir(async (denoDir) => {
    const env = Object.fromEntries(
      Object.entries(environmentWithoutImgtool()).filter(([name]) =>
        !name.startsWith("DENORT_BIN")
      ),
    );
    // An empty Deno cache: no denort zip is in it, whatever this machine has cached.
    const result = await runProcess(
      Deno.execPath(),
      ["run", "--allow-all", "scripts/compile.ts", "--target", "aarch64-unknown-linux-gnu"],
      { cwd: REPO_ROOT, env: { ...env, DENO_DIR: denoDir, NO_COLOR: "1" }, clearEnv: true },
    );
    const output = result.stdout + result.stderr;
    assert.equal(result.code, 1, output);
    assert.match(output, /type-checking cli\.ts[\s\S]*Check cli\.ts[\s\S]*cannot compile 1 target/);
    assert.ok(
      output.includes(
        join(
          denoDir,
          "dl",
          "release",
          `v${Deno.version.deno}`,
          "denort-aarch64-unknown-linux-gnu.zip",
        ),
      ),
      output,
    );
    assert.match(output, /DENORT_BIN_AARCH64_UNKNOWN_LINUX_GNU/);
    assert.match(output, /point DENORT_BIN_<TARGET>/);
  });
});
