/**
 * The README's quick start, run as written (`deno task imgtool build
 * examples/quickstart/spec.ts` from the repository's root), with the public base image
 * pointed at the environment's mirror through IMGTOOL_* variables, as the README tells
 * air-gapped sites to do.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  e2eTest,
  inImage,
  pythonImagePattern,
  removeImages,
  REPO_ROOT,
  run,
  RUN_ID,
} from "./harness.ts";
import { environmentWithoutImgtool } from "../helpers.ts";

e2eTest(
  "the README's quick-start command builds the example image, and skips it the second time",
  async (_t, facts) => {
    const env = {
      ...environmentWithoutImgtool(),
      NO_COLOR: "1",
      IMGTOOL_IMAGES_PYTHON: pythonImagePattern(facts),
      IMGTOOL_PYTHON_INSTALLER: "pip",
      IMGTOOL_DEBIAN_PACKAGES: "ca-certificates",
      IMGTOOL_DOCKER_CLIENT: facts.DOCKER,
      IMGTOOL_REGISTRY: `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-quickstart`,
    };
    const command = ["task", "imgtool", "build", "examples/quickstart/spec.ts"];
    const first = await run(Deno.execPath(), command, { cwd: REPO_ROOT, env, clearEnv: true });
    assert.equal(first.code, 0, `${first.stdout}\n${first.stderr}`);
    const uri = first.stdout.trim().split("\n").pop() ?? "";
    assert.match(uri, /\/quickstart:[0-9a-f]{32}$/);
    try {
      assert.equal(
        (await inImage(facts, uri, ["cat", "/app/greeting.txt"])).trim(),
        "hello from imgtool",
      );
      const second = await run(Deno.execPath(), command, { cwd: REPO_ROOT, env, clearEnv: true });
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stderr, /exists \(local\), skipped/);
    } finally {
      await removeImages(facts, [uri]);
    }
  },
);
