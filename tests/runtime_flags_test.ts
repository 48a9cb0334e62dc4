// The V8 flags imgtool runs with are the ones its tests and benchmarks run with: V8 refuses a
// code cache made under other flags, so tasks that disagree would replace each other's cache
// of the same modules on every run (and the benchmarks would time a runtime users do not get).

import assert from "node:assert/strict";
import { join } from "node:path";
import { IMGTOOL_RUNTIME_FLAGS, IMGTOOL_V8_FLAGS } from "../scripts/runtime_flags.ts";
import { REPO_ROOT } from "./helpers.ts";

const tasks: Record<string, string> = JSON.parse(
  Deno.readTextFileSync(join(REPO_ROOT, "deno.json")),
).tasks;

const v8Flags = (task: string) =>
  tasks[task].split(/\s+/).filter((arg) => arg.startsWith("--v8-flags="));

Deno.test("the imgtool task has V8 flags, and the runtime flags carry them", () => {
  assert.equal(IMGTOOL_V8_FLAGS.length, 1);
  assert.deepEqual(v8Flags("imgtool"), IMGTOOL_V8_FLAGS);
  for (const flag of IMGTOOL_V8_FLAGS) assert.ok(IMGTOOL_RUNTIME_FLAGS.includes(flag));
  assert.ok(IMGTOOL_RUNTIME_FLAGS.includes("--allow-all"));
  assert.ok(!IMGTOOL_RUNTIME_FLAGS.includes("--config=deno.json"), "no task-only arguments");
});

Deno.test("the test and bench tasks run with the imgtool task's V8 flags", () => {
  assert.deepEqual(v8Flags("test"), IMGTOOL_V8_FLAGS);
  assert.deepEqual(v8Flags("bench"), IMGTOOL_V8_FLAGS);
});
