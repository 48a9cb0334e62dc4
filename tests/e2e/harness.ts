/**
 * What the end-to-end tests share: the environment `tests/e2e/env.sh up` brought up (read
 * from `tests/e2e/.work/env` and probed), registering tests that are ignored (or fail, with
 * `IMGTOOL_E2E=require`) when it is not up, running the imgtool CLI as users run it, running
 * docker/buildah/skopeo, temporary spec projects, and looking inside images.
 *
 * Every docker build and run here uses the host network (the machine has no bridge), every
 * server a test starts listens on 127.0.0.1 and is stopped by that test, and only images a
 * test built or pulled (by reference) are removed.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  copyTree,
  environmentWithoutImgtool,
  IMGTOOL_COMMAND,
  type Ran,
  runProcess,
} from "../helpers.ts";
import type { ImageReport } from "../../src/commands/build.ts";
import { ENV_FILE, type Facts, projectConfig, pythonImagePattern, readFacts } from "./facts.ts";

export { ENV_FILE, type Facts, projectConfig, pythonImagePattern };

/** The repository's root folder. */
export const REPO_ROOT: string = fileURLToPath(new URL("../..", import.meta.url)).replace(
  /\/$/,
  "",
);
const HINT = "run tests/e2e/env.sh up";

/** A short id unique to this run of the suite: registry namespaces and env values use it. */
export const RUN_ID: string = `${Date.now().toString(36)}${
  crypto.getRandomValues(new Uint32Array(1))[0].toString(36)
}`;

/** What a process printed and how it ended. */
export type { Ran };

/** Run a program to completion; never throws for a non-zero exit. */
export const run = runProcess;

/** Run a program and return its standard output; throw with its output if it fails. */
export async function must(
  program: string,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<string> {
  const result = await run(program, args, options);
  if (result.code !== 0) {
    throw new Error(
      `${program} ${args.join(" ")} exited ${result.code}:\n${tail(result.stdout)}\n${
        tail(result.stderr)
      }`,
    );
  }
  return result.stdout;
}

/** The last lines of a text, for failure messages. */
export function tail(text: string, lines = 40): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

async function httpStatus(url: string): Promise<number> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
    await response.body?.cancel();
    return response.status;
  } catch {
    return 0;
  }
}

/** Find out whether the environment is up; a text saying what is missing when it is not. */
async function probe(): Promise<Facts | string> {
  const facts = await readFacts();
  if (typeof facts === "string") return facts;
  const checks: [string, Promise<boolean>][] = [
    [
      `the registry on ${facts.REGISTRY} does not answer`,
      httpStatus(`http://${facts.REGISTRY}/v2/`).then((status) => status === 200),
    ],
    [
      `the auth registry on ${facts.AUTH_REGISTRY} does not answer 401`,
      httpStatus(`http://${facts.AUTH_REGISTRY}/v2/`).then((status) => status === 401),
    ],
    [
      `the package index ${facts.PACKAGE_INDEX} does not answer`,
      httpStatus(facts.PACKAGE_INDEX).then((status) => status === 200),
    ],
    [
      `the Docker engine does not answer ${facts.DOCKER}`,
      run(facts.DOCKER, ["version", "--format", "{{.Server.Version}}"])
        .then((result) => result.code === 0, () => false),
    ],
    [
      "buildah does not run",
      run("buildah", ["version"]).then((result) => result.code === 0, () => false),
    ],
    ["skopeo does not run", run("skopeo", ["--version"]).then((r) => r.code === 0, () => false)],
  ];
  const failed: string[] = [];
  for (const [problem, check] of checks) if (!(await check)) failed.push(problem);
  return failed.length > 0 ? failed.join("; ") : facts;
}

const environment: Facts | string = await probe();

/** Register an end-to-end test: run when the environment is up, else ignored (or failing). */
export function e2eTest(
  name: string,
  fn: (t: Deno.TestContext, facts: Facts) => Promise<void>,
): void {
  if (typeof environment !== "string") {
    const facts = environment;
    Deno.test({ name, fn: (t) => fn(t, facts) });
  } else if (Deno.env.get("IMGTOOL_E2E") === "require") {
    Deno.test(name, () => {
      throw new Error(`the end-to-end environment is not up (${environment}): ${HINT}`);
    });
  } else {
    Deno.test({ name: `${name} (environment not up: ${HINT})`, ignore: true, fn: () => {} });
  }
}

/**
 * How imgtool is started: `IMGTOOL_E2E_BINARY` (a compiled binary), else `deno run` of
 * `cli.ts` with the repository's config, as `deno task imgtool` does.
 */
function imgtoolCommand(): [string, string[]] {
  const binary = Deno.env.get("IMGTOOL_E2E_BINARY");
  if (binary) return [binary, []];
  const [program, ...prefix] = IMGTOOL_COMMAND;
  return [program, prefix];
}

/**
 * Run the imgtool CLI in `cwd` with `args`. Its environment is this process's without any
 * `IMGTOOL_*` variable (so a developer's settings cannot leak in), plus `env`.
 */
export function imgtool(
  cwd: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<Ran> {
  const [program, prefix] = imgtoolCommand();
  return run(program, [...prefix, ...args], {
    cwd,
    env: { ...environmentWithoutImgtool(), NO_COLOR: "1", ...env },
    clearEnv: true,
  });
}

/**
 * Run imgtool in `cwd` as {@link imgtool} does, but ended after `seconds` (SIGTERM, then
 * SIGKILL 20 s later), so that a build that hangs fails its test instead of stalling the run.
 */
export function boundedImgtool(
  cwd: string,
  args: readonly string[],
  seconds = 300,
  env: Record<string, string> = {},
): Promise<Ran> {
  const [program, prefix] = imgtoolCommand();
  return run("timeout", ["--kill-after=20", String(seconds), program, ...prefix, ...args], {
    cwd,
    env: { ...environmentWithoutImgtool(), NO_COLOR: "1", ...env },
    clearEnv: true,
  });
}

/** Copy every platform of `from` to `to` in the environment's plain-HTTP registry (skopeo). */
export async function copyImage(from: string, to: string): Promise<void> {
  await must("timeout", [
    "120",
    "skopeo",
    "copy",
    "--all",
    "--src-tls-verify=false",
    "--dest-tls-verify=false",
    `docker://${from}`,
    `docker://${to}`,
  ]);
}

/** Assert an imgtool run ended with `code`, showing its output when it did not. */
export function assertExit(result: Ran, code: number, what: string): void {
  assert.equal(
    result.code,
    code,
    `${what}: expected exit ${code}, got ${result.code}\n--- stdout\n${
      tail(result.stdout)
    }\n--- stderr\n${tail(result.stderr, 80)}`,
  );
}

/** The images of a `build --json` run. */
export function jsonImages(result: Ran): ImageReport[] {
  let parsed;
  try {
    parsed = JSON.parse(result.stdout);
  } catch {
    throw new Error(
      `build --json printed no JSON:\n${tail(result.stdout)}\n${tail(result.stderr)}`,
    );
  }
  assert.ok(Array.isArray(parsed.images), `no images in ${result.stdout}`);
  return parsed.images;
}

/** Run the engine's docker client (BuildKit on). */
export function docker(facts: Facts, args: readonly string[]): Promise<Ran> {
  return run(facts.DOCKER, args, { env: { DOCKER_BUILDKIT: "1" } });
}

/** Run the engine's docker client; its standard output, or throw with its output. */
export function mustDocker(facts: Facts, args: readonly string[]): Promise<string> {
  return must(facts.DOCKER, args, { env: { DOCKER_BUILDKIT: "1" } });
}

/** `docker run --rm --network=host [--platform P] [--user U] IMAGE ...command`: its stdout. */
export function inImage(
  facts: Facts,
  image: string,
  command: readonly string[],
  options: { platform?: string; user?: string } = {},
): Promise<string> {
  return mustDocker(facts, [
    "run",
    "--rm",
    "--network=host",
    ...(options.platform ? ["--platform", options.platform] : []),
    ...(options.user ? ["--user", options.user] : []),
    image,
    ...command,
  ]);
}

/** Remove images from the engine by reference; those that are not there are fine. */
export async function removeImages(facts: Facts, references: Iterable<string>): Promise<void> {
  for (const reference of references) {
    await docker(facts, ["rmi", reference]);
  }
}

/** A temporary folder holding `files` (paths relative to it; a string or bytes each). */
export async function makeProject(files: Record<string, string | Uint8Array>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "imgtool-e2e-" });
  for (const [path, content] of Object.entries(files)) {
    const target = join(dir, path);
    await Deno.mkdir(dirname(target), { recursive: true });
    if (typeof content === "string") await Deno.writeTextFile(target, content);
    else await Deno.writeFile(target, content);
  }
  return dir;
}

/** Copy a folder tree (files and folders). */
export { copyTree };

/** The lowercase hex SHA-256 of a text or bytes. */
export function sha256(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Does the file hold `needle` anywhere (read in chunks, so large tars are fine)? */
export async function fileContains(path: string, needle: string): Promise<boolean> {
  const wanted = Buffer.from(needle, "utf8");
  using file = await Deno.open(path);
  const chunk = new Uint8Array(1 << 20);
  let carry = Buffer.alloc(0);
  while (true) {
    const count = await file.read(chunk);
    if (count === null) return false;
    const window = Buffer.concat([carry, chunk.subarray(0, count)]);
    if (window.indexOf(wanted) >= 0) return true;
    carry = window.subarray(Math.max(0, window.length - wanted.length + 1));
  }
}

/** `skopeo inspect --raw` of a reference in a plain-HTTP registry, parsed. */
export async function rawManifest(
  reference: string,
  credentials?: string,
): Promise<Record<string, unknown>> {
  const out = await must("skopeo", [
    "inspect",
    "--raw",
    "--tls-verify=false",
    ...(credentials ? ["--creds", credentials] : []),
    `docker://${reference}`,
  ]);
  return JSON.parse(out);
}

/** The HTTP status of `HEAD /v2/<repository>/manifests/<tag>` for a reference. */
export async function manifestStatus(reference: string, basicAuth?: string): Promise<number> {
  const match = /^([^/]+)\/(.+):([^:/]+)$/.exec(reference);
  assert.ok(match, `not a registry/repository:tag reference: ${reference}`);
  const [, registry, repository, tag] = match;
  const response = await fetch(`http://${registry}/v2/${repository}/manifests/${tag}`, {
    method: "HEAD",
    headers: {
      Accept: [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
      ].join(", "),
      ...(basicAuth ? { Authorization: `Basic ${btoa(basicAuth)}` } : {}),
    },
    signal: AbortSignal.timeout(10_000),
  });
  await response.body?.cancel();
  return response.status;
}

/** A TCP port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Print a timing line (the suite reports where its time goes). */
export function timing(what: string, started: number): void {
  console.log(`  [e2e] ${what}: ${((performance.now() - started) / 1000).toFixed(1)}s`);
}
