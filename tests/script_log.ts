// What a run of Deno loads, read from V8's own log: `--log-function-events` writes a
// `script-details` line for every script the process compiles, Deno's internal ones included,
// so a test can tell whether a run started Deno's Node compatibility layer (or its `fetch`)
// without trusting imgtool's account of itself. The runs use `--no-code-cache`: other V8 flags
// would otherwise replace the code cache the other tests and the CLI share.

import assert from "node:assert/strict";
import { join } from "node:path";
import { IMGTOOL_RUNTIME_FLAGS, IMGTOOL_V8_FLAGS } from "../scripts/runtime_flags.ts";
import { environmentWithoutImgtool, type Ran, runProcess } from "./helpers.ts";

/** Scripts of Deno's Node compatibility layer: `node:` modules and their implementation. */
export const isNodeLayer = (script: string) =>
  script.startsWith("node:") || script.startsWith("ext:deno_node/");
/** Deno's `fetch`, loaded on its first use. */
export const FETCH_SCRIPT = "ext:deno_fetch/26_fetch.js";

/**
 * Run `deno run` with imgtool's permissions and V8 flags (plus V8's log) and `args`; what it
 * printed and every script it compiled, by name.
 */
export async function runLogged(
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string>; permissions?: readonly string[] },
): Promise<{ ran: Ran; scripts: Set<string> }> {
  const log = await Deno.makeTempFile({ prefix: "imgtool-test-v8-", suffix: ".log" });
  try {
    assert.equal(IMGTOOL_V8_FLAGS.length, 1, "imgtool runs with one --v8-flags");
    const v8Flags = `${
      IMGTOOL_V8_FLAGS[0]
    },--log-function-events,--logfile=${log},--no-logfile-per-isolate`;
    const permissions = options.permissions ??
      IMGTOOL_RUNTIME_FLAGS.filter((flag) => flag.startsWith("--allow-"));
    const ran = await runProcess(
      Deno.execPath(),
      ["run", "--no-code-cache", v8Flags, ...permissions, ...args],
      {
        cwd: options.cwd,
        env: { ...environmentWithoutImgtool(), NO_COLOR: "1", ...options.env },
        clearEnv: true,
      },
    );
    // `script-details,<id>,<name>,...`: V8 escapes commas in names, so the third field is whole.
    const scripts = new Set(
      (await Deno.readTextFile(log)).split("\n")
        .filter((line) => line.startsWith("script-details,"))
        .map((line) => line.split(",")[2])
        .filter((name) => name !== ""),
    );
    assert.ok(scripts.size > 0, "V8's log names no script: the log flags no longer work");
    return { ran, scripts };
  } finally {
    await Deno.remove(log);
  }
}

/** Scripts `loaded` has that a run of an empty module (Deno's own start) does not. */
export async function beyondDenoStart(loaded: Set<string>, dir: string): Promise<string[]> {
  const empty = join(dir, "empty.ts");
  await Deno.writeTextFile(empty, "");
  const { ran, scripts } = await runLogged([empty], { cwd: dir });
  assert.equal(ran.code, 0, ran.stderr);
  return [...loaded].filter((script) => !scripts.has(script));
}

/**
 * Whether this machine has a libcrypto imgtool would load for SHA-256 (the names
 * `src/libcrypto.ts` tries): where it has, hashing starts no Node layer.
 */
export function systemHasLibcrypto(): boolean {
  for (const name of ["libcrypto.so.3", "libcrypto.so.1.1"]) {
    try {
      Deno.dlopen(name, {}).close();
      return true;
    } catch {
      // Not this one.
    }
  }
  return false;
}
