/**
 * `deno task compile`: build the standalone imgtool binaries for linux amd64 and arm64 into
 * `dist/`, with the permissions the tool needs, its version and its import map embedded,
 * plus `dist/SHA256SUMS`. What a binary runs is the bundle of scripts/bundle.ts (a dozen
 * JavaScript modules, made into `dist/js/` first), the same code the no-op benchmark times.
 *
 * `deno compile` needs Deno's `denort` runtime for each target. It is taken from
 * `DENORT_BIN` (host target only), `DENORT_BIN_<TARGET>` (e.g. `DENORT_BIN_AARCH64_UNKNOWN_LINUX_GNU`),
 * or Deno's download cache (`$DENO_DIR/dl/release/v<version>/denort-<target>.zip`). Where
 * none can be had, the script stops with a message saying so and how to supply one, after
 * type-checking everything it would embed.
 *
 * Usage: deno task compile [--target TARGET]...
 *
 * @module
 */

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { bundleInto } from "./bundle.ts";
import { IMGTOOL_RUNTIME_FLAGS } from "./runtime_flags.ts";

const TARGETS = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"] as const;
const ROOT = new URL("../", import.meta.url).pathname;
const DIST = join(ROOT, "dist");
const ENTRY = "cli.ts";

const deno = Deno.execPath();

async function run(args: string[], env: Record<string, string> = {}): Promise<boolean> {
  const status = await new Deno.Command(deno, {
    args,
    cwd: ROOT,
    env,
    stdout: "inherit",
    stderr: "inherit",
  })
    .spawn().status;
  return status.success;
}

function hostTarget(): string {
  return `${Deno.build.arch}-unknown-linux-gnu`;
}

async function denoDir(): Promise<string> {
  const output = await new Deno.Command(deno, {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "null",
  })
    .output();
  return JSON.parse(new TextDecoder().decode(output.stdout)).denoDir;
}

/** Where this target's denort comes from, or why there is none. */
async function denortFor(
  target: string,
): Promise<{ env: Record<string, string> } | { missing: string }> {
  const specific = Deno.env.get(`DENORT_BIN_${target.toUpperCase().replaceAll("-", "_")}`);
  if (specific) return { env: { DENORT_BIN: specific } };
  const generic = Deno.env.get("DENORT_BIN");
  if (generic && target === hostTarget()) return { env: { DENORT_BIN: generic } };
  const cached = join(
    await denoDir(),
    "dl",
    "release",
    `v${Deno.version.deno}`,
    `denort-${target}.zip`,
  );
  if (existsSync(cached)) return { env: {} };
  return { missing: cached };
}

async function sha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { target: { type: "string", multiple: true } },
  });
  const targets = values.target ?? [...TARGETS];
  console.log(`type-checking ${ENTRY} and everything it embeds`);
  if (!(await run(["check", "--config", "deno.json", ENTRY, "mod.ts"]))) return 1;

  await Deno.mkdir(DIST, { recursive: true });
  const built: string[] = [];
  const missing: string[] = [];
  let bundle: string | undefined;
  for (const target of targets) {
    const runtime = await denortFor(target);
    if ("missing" in runtime) {
      missing.push(
        `${target}: no denort runtime (looked for DENORT_BIN_${
          target.toUpperCase().replaceAll("-", "_")
        }${target === hostTarget() ? ", DENORT_BIN" : ""} and ${runtime.missing})`,
      );
      continue;
    }
    if (bundle === undefined) {
      console.log("bundling into dist/js");
      bundle = await bundleInto("dist/js");
    }
    const output = join(DIST, `imgtool-${target}`);
    console.log(`compiling ${output}`);
    const ok = await run([
      "compile",
      "--config",
      join(bundle, "deno.json"),
      "--target",
      target,
      "--output",
      output,
      // The permissions and V8 flags `deno task imgtool` runs with: both behave alike.
      ...IMGTOOL_RUNTIME_FLAGS,
      // The whole bundle (the hashing Worker is started by URL, not imported), and the API's
      // sources, readable inside the binary, for `imgtool init` to hand to editors.
      ...[bundle, "mod.ts", "deno.json", "src", "plugins"].flatMap((path) => ["--include", path]),
      join(bundle, "cli.js"),
    ], runtime.env);
    if (!ok) return 1;
    built.push(output);
  }
  if (built.length > 0) {
    const lines = await Promise.all(
      built.map(async (file) => `${await sha256(file)}  ${file.split("/").pop()}`),
    );
    await Deno.writeTextFile(join(DIST, "SHA256SUMS"), `${lines.join("\n")}\n`);
    console.log(`wrote ${join(DIST, "SHA256SUMS")}`);
  }
  if (missing.length > 0) {
    console.error(`cannot compile ${missing.length} target(s):\n  ${missing.join("\n  ")}`);
    console.error(
      `deno compile needs the denort runtime of Deno ${Deno.version.deno} for each target, which it downloads ` +
        "from Deno's release server; where that server is out of reach, download denort-<target>.zip from a " +
        "machine that can reach it and either unzip it and point DENORT_BIN_<TARGET> (or DENORT_BIN for the " +
        "host target) at the binary, or place the zip at the path above.",
    );
    return 1;
  }
  return 0;
}

Deno.exit(await main());
