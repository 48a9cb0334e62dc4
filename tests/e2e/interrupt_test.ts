/**
 * Ctrl-C during a build: imgtool stops the builder process, removes its temporary build
 * context and secret files, and exits 130.
 *
 * @module
 */

import assert from "node:assert/strict";
import { environmentWithoutImgtool, IMGTOOL_COMMAND } from "../helpers.ts";
import { e2eTest, makeProject, projectConfig, run, RUN_ID } from "./harness.ts";

async function temporaryFolders(): Promise<Set<string>> {
  const found = new Set<string>();
  for await (const entry of Deno.readDir("/tmp")) {
    if (/^imgtool-(context|secrets)-/.test(entry.name)) found.add(entry.name);
  }
  return found;
}

e2eTest(
  "Ctrl-C stops the builder and leaves no temporary build files behind",
  async (_t, facts) => {
    // The step prints this only when it runs: the command text holds `$((6*7))`, not 42.
    const marker = `step-42-${RUN_ID}`;
    // A wait of about 120 s that no other process on the machine has on its command line.
    const sleep = `sleep 120.${crypto.getRandomValues(new Uint32Array(1))[0]}`;
    const dir = await makeProject({
      "imgtool.toml": projectConfig(facts, `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-interrupt`),
      "spec.ts": `import { Image } from "imgtool";
export default Image.fromBase(${JSON.stringify(facts.PYTHON_BASE)})
  .clone({ name: "interrupted" })
  .withCommands("echo step-$((6*7))-${RUN_ID} && ${sleep}", { secretMounts: "E2E_INTERRUPT_TOKEN" });
`,
    });
    const before = await temporaryFolders();
    const [program, ...prefix] = IMGTOOL_COMMAND;
    const child = new Deno.Command(program, {
      args: [...prefix, "build", "spec.ts"],
      cwd: dir,
      env: { ...environmentWithoutImgtool(), NO_COLOR: "1", E2E_INTERRUPT_TOKEN: "t0ken" },
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    try {
      // Wait until the step is running, then press Ctrl-C.
      const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let seen = "";
      const deadline = Date.now() + 120_000;
      while (!seen.includes(marker) && Date.now() < deadline) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += value;
      }
      assert.ok(seen.includes(marker), `the step never ran:\n${seen}`);
      const during = [...await temporaryFolders()].filter((name) => !before.has(name));
      assert.ok(during.length >= 2, `the build had its context and secrets folders:\n${seen}`);
      const stoppedAt = Date.now();
      child.kill("SIGINT");
      while (!(await reader.read()).done) {
        // drain the rest of the output
      }
      const status = await child.status;
      assert.equal(status.code, 130);
      assert.ok(Date.now() - stoppedAt < 30_000, "it stopped long before the 120 s step would end");
      const after = await temporaryFolders();
      assert.deepEqual(
        during.filter((name) => after.has(name)),
        [],
        "temporary folders are removed",
      );
      // The engine cancels the step once its client is gone, within seconds, not 120.
      let left = "";
      for (let tries = 0; tries < 40; tries++) {
        left = (await run("pgrep", ["-f", sleep])).stdout.trim();
        if (left === "") break;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      assert.equal(left, "", "the build step's process is gone");
    } finally {
      await child.stdout.cancel().catch(() => {});
      try {
        child.kill("SIGKILL");
      } catch {
        // already ended
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
);
