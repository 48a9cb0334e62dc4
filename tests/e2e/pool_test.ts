/**
 * A pool of builders (`[[builders]]` in imgtool.toml) on real Docker engines: the two extra
 * engines `env.sh up` starts on 127.0.0.1 (`POOL_ENGINE_A`, `POOL_ENGINE_B`), and, for the
 * engine that is stopped mid-run, a third one the test starts and stops itself.
 *
 * - four images spread over both engines: each engine's image list holds exactly its share;
 * - a two-platform image, engine A declared for amd64 and B for arm64: each platform is built
 *   on its engine, and the registry gets one index holding both;
 * - an engine stopped during its build: the build goes to the other engine and succeeds;
 * - Ctrl-C while both engines build: imgtool exits 130 and no build step is left running.
 *
 * Each run uses its own registry namespace and a step text unique to the run (so no engine's
 * cache answers), and its own imgtool cache (the engine remembered for an image starts empty).
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { environmentWithoutImgtool, IMGTOOL_COMMAND } from "../helpers.ts";
import {
  assertExit,
  closedPort,
  e2eTest,
  type Facts,
  imgtool,
  jsonImages,
  makeProject,
  manifestStatus,
  projectConfig,
  rawManifest,
  run,
  RUN_ID,
  timing,
} from "./harness.ts";

// Deno's own cache would follow XDG_CACHE_HOME too: the CLI keeps using this one.
const DENO_DIR = Deno.env.get("DENO_DIR") ?? JSON.parse(
  new TextDecoder().decode(
    (await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output()).stdout,
  ),
).denoDir;

/** The address of a pool engine env.sh started (`A` or `B`). */
function poolEngine(facts: Facts, which: "A" | "B"): string {
  const host = (facts as unknown as Record<string, string | undefined>)[`POOL_ENGINE_${which}`];
  assert.ok(host, `POOL_ENGINE_${which} is not in the facts: run tests/e2e/env.sh up`);
  return host;
}

/** One `[[builders]]` entry. */
function entry(name: string, host: string, platforms: readonly string[]): string {
  return `[[builders]]\nname = "${name}"\nhost = "${host}"\nplatforms = ${
    JSON.stringify(platforms)
  }\n`;
}

/** A project whose imgtool.toml has the pool `entries`; its own imgtool cache. */
async function poolProject(
  facts: Facts,
  what: string,
  entries: readonly string[],
  spec: string,
): Promise<{ dir: string; registry: string; env: Record<string, string> }> {
  const registry = `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-pool-${what}`;
  const dir = await makeProject({
    "imgtool.toml": projectConfig(facts, registry, entries.join("\n")),
    "spec.ts": spec,
  });
  return { dir, registry, env: { XDG_CACHE_HOME: join(dir, ".cache"), DENO_DIR } };
}

/** `docker -H HOST ...` (BuildKit on); never throws. */
function dockerAt(facts: Facts, host: string, args: readonly string[]) {
  return run(facts.DOCKER, ["-H", host, ...args], { env: { DOCKER_BUILDKIT: "1" } });
}

/** The `repository:tag` names in an engine's image list. */
async function imageList(facts: Facts, host: string): Promise<Set<string>> {
  const listed = await dockerAt(facts, host, [
    "image",
    "ls",
    "--format",
    "{{.Repository}}:{{.Tag}}",
  ]);
  assert.equal(listed.code, 0, listed.stderr);
  return new Set(listed.stdout.split("\n").filter(Boolean));
}

/** Remove images from an engine by reference (those not there are fine). */
async function removeFrom(facts: Facts, host: string, references: Iterable<string>) {
  for (const reference of references) await dockerAt(facts, host, ["rmi", reference]);
}

/** A running imgtool whose standard error is read as it comes. */
function spawnImgtool(dir: string, args: readonly string[], env: Record<string, string>) {
  const [program, ...prefix] = IMGTOOL_COMMAND;
  const child = new Deno.Command(program, {
    args: [...prefix, ...args],
    cwd: dir,
    env: { ...environmentWithoutImgtool(), NO_COLOR: "1", ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const stdout = new Response(child.stdout).text();
  let seen = "";
  let ended = false;
  return {
    child,
    get seen() {
      return seen;
    },
    /** Read until `done(seen)` holds (or `seconds` pass, or the output ends). */
    async until(done: (text: string) => boolean, seconds: number): Promise<boolean> {
      const deadline = Date.now() + seconds * 1000;
      while (!done(seen) && !ended && Date.now() < deadline) {
        const { value, done: end } = await reader.read();
        if (end) ended = true;
        else seen += value;
      }
      return done(seen);
    },
    /** Read the rest; the exit status and standard output. */
    async end(): Promise<{ code: number; stdout: string; stderr: string }> {
      while (!ended) {
        const { value, done } = await reader.read();
        if (done) ended = true;
        else seen += value;
      }
      const status = await child.status;
      return { code: status.code, stdout: await stdout, stderr: seen };
    },
    kill(signal: Deno.Signal) {
      try {
        child.kill(signal);
      } catch {
        // already ended
      }
    },
  };
}

/** The temporary build folders (contexts, secrets) in /tmp now. */
async function temporaryFolders(): Promise<Set<string>> {
  const found = new Set<string>();
  for await (const entry of Deno.readDir("/tmp")) {
    if (/^imgtool-(context|secrets)-/.test(entry.name)) found.add(entry.name);
  }
  return found;
}

/** Processes whose command line holds `marker` (build steps): their pids. */
async function processesWith(marker: string): Promise<number[]> {
  const found = await run("pgrep", ["-f", marker]);
  return found.stdout.split("\n").filter(Boolean).map(Number);
}

/** Wait until no process holds `marker`; the pids still there after `seconds`. */
async function gone(marker: string, seconds: number): Promise<number[]> {
  let left: number[] = [];
  for (const deadline = Date.now() + seconds * 1000; Date.now() < deadline;) {
    left = await processesWith(marker);
    if (left.length === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return left;
}

e2eTest(
  "pool: four images spread over both engines, each engine holding its share",
  async (_t, facts) => {
    const [a, b] = [poolEngine(facts, "A"), poolEngine(facts, "B")];
    const names = ["api", "worker", "web", "jobs"];
    const spec = `import { Image } from "imgtool";
const base = Image.fromBase(${JSON.stringify(facts.DEBIAN_BASE)});
${
      names.map((name) =>
        `export const ${name} = base.clone({ name: "${name}" })
  .withCommands("echo pool-spread-${name}-${RUN_ID} > /made-by && sleep 3");`
      ).join("\n")
    }
`;
    const project = await poolProject(facts, "spread", [
      entry("engine-a", a, ["linux/amd64"]),
      entry("engine-b", b, ["linux/amd64"]),
    ], spec);
    const uris: string[] = [];
    try {
      const started = performance.now();
      const built = await imgtool(
        project.dir,
        ["build", "spec.ts", "--push", "--json"],
        project.env,
      );
      timing("pool: four images on two engines", started);
      assertExit(built, 0, "build --push on the pool");
      const images = jsonImages(built);
      assert.deepEqual(
        images.map((image) => [image.image, image.status]),
        names.map((n) => [n, "built"]),
      );
      uris.push(...images.map((image) => image.uri));
      const onA = images.filter((image) => image.engine === "engine-a").map((image) => image.uri);
      const onB = images.filter((image) => image.engine === "engine-b").map((image) => image.uri);
      assert.equal(onA.length + onB.length, 4, JSON.stringify(images));
      assert.ok(onA.length >= 1 && onB.length >= 1, `both engines built: A ${onA}, B ${onB}`);
      for (const image of images) {
        assert.deepEqual(image.engines, [{
          platform: "linux/amd64",
          engine: image.engine,
          emulated: false,
        }]);
        assert.equal(await manifestStatus(image.uri), 200, `${image.uri} is in the registry`);
      }
      // Each engine's own store holds what it built, and not what the other built.
      const [listA, listB] = [await imageList(facts, a), await imageList(facts, b)];
      for (const uri of onA) {
        assert.ok(
          listA.has(uri) && !listB.has(uri),
          `${uri} only on engine-a`,
        );
      }
      for (const uri of onB) {
        assert.ok(
          listB.has(uri) && !listA.has(uri),
          `${uri} only on engine-b`,
        );
      }
      const pool = JSON.parse(built.stdout).engines;
      assert.deepEqual(pool.map((e: { name: string; answered: boolean }) => [e.name, e.answered]), [
        ["engine-a", true],
        ["engine-b", true],
      ]);
    } finally {
      await removeFrom(facts, a, uris);
      await removeFrom(facts, b, uris);
      await Deno.remove(project.dir, { recursive: true });
    }
  },
);

e2eTest(
  "pool: a two-platform image is built on each platform's engine and pushed as one index",
  async (_t, facts) => {
    const [a, b] = [poolEngine(facts, "A"), poolEngine(facts, "B")];
    const spec = `import { Image } from "imgtool";
export default Image.fromBase(${JSON.stringify(facts.DEBIAN_BASE)})
  .clone({ name: "two-platform" })
  .withCommands("uname -m > /built-arch && echo ${RUN_ID} > /run-id");
`;
    const project = await poolProject(facts, "platforms", [
      entry("engine-a", a, ["linux/amd64"]),
      entry("engine-b", b, ["linux/arm64"]),
    ], spec);
    let uri = "";
    try {
      const built = await imgtool(
        project.dir,
        ["build", "spec.ts", "--push", "--json", "--platform", "linux/amd64,linux/arm64"],
        project.env,
      );
      assertExit(built, 0, "two-platform build on the pool");
      const [image] = jsonImages(built);
      uri = image.uri;
      assert.equal(image.status, "built");
      assert.equal(image.engine, undefined, "no one engine built it all");
      assert.deepEqual(image.engines, [
        { platform: "linux/amd64", engine: "engine-a", emulated: false },
        { platform: "linux/arm64", engine: "engine-b", emulated: false },
      ]);
      // One index in the registry, with both platforms.
      const index = await rawManifest(uri) as {
        mediaType?: string;
        manifests?: { platform: { architecture: string } }[];
      };
      assert.ok(Array.isArray(index.manifests), `an index: ${JSON.stringify(index)}`);
      assert.deepEqual(index.manifests.map((m) => m.platform.architecture).sort(), [
        "amd64",
        "arm64",
      ]);
      // Each platform in the store of the engine that built it, and only there.
      const inspect = async (host: string, reference: string) => {
        const found = await dockerAt(facts, host, [
          "image",
          "inspect",
          "--format",
          "{{.Architecture}}",
          reference,
        ]);
        return found.code === 0 ? found.stdout.trim() : undefined;
      };
      assert.equal(await inspect(a, `${uri}-linux-amd64`), "amd64");
      assert.equal(await inspect(b, `${uri}-linux-arm64`), "arm64");
      assert.equal(await inspect(a, `${uri}-linux-arm64`), undefined);
      assert.equal(await inspect(b, `${uri}-linux-amd64`), undefined);
      // And each ran its step as its own architecture.
      for (const [host, arch, expected] of [[a, "amd64", "x86_64"], [b, "arm64", "aarch64"]]) {
        const out = await dockerAt(facts, host, [
          "run",
          "--rm",
          "--network=host",
          `${uri}-linux-${arch}`,
          "cat",
          "/built-arch",
          "/run-id",
        ]);
        assert.equal(out.stdout, `${expected}\n${RUN_ID}\n`, `${arch}: ${out.stderr}`);
      }
    } finally {
      if (uri) {
        await removeFrom(facts, a, [`${uri}-linux-amd64`]);
        await removeFrom(facts, b, [`${uri}-linux-arm64`]);
      }
      await Deno.remove(project.dir, { recursive: true });
    }
  },
);

/** A Docker engine of the test's own on 127.0.0.1, with its own roots under `dir`. */
async function startEngine(facts: Facts, dir: string) {
  const host = `tcp://127.0.0.1:${closedPort()}`;
  const child = new Deno.Command("dockerd", {
    args: [
      "-H",
      host,
      "--data-root",
      join(dir, "data"),
      "--exec-root",
      join(dir, "exec"),
      "--pidfile",
      join(dir, "dockerd.pid"),
      "--iptables=false",
      "--bridge=none",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      return; // already ended
    }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // ended meanwhile
      }
    }, 30_000);
    await child.status;
    clearTimeout(timer);
  };
  for (const deadline = Date.now() + 60_000; Date.now() < deadline;) {
    if ((await dockerAt(facts, host, ["version"])).code === 0) return { host, stop };
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  await stop();
  throw new Error(`the test's own dockerd on ${host} did not answer within 60 s`);
}

e2eTest(
  "pool: an engine stopped during its build: the build goes to the other engine and succeeds",
  async (_t, facts) => {
    const a = poolEngine(facts, "A");
    const engineDir = await Deno.makeTempDir({ prefix: "imgtool-e2e-engine-" });
    const engine = await startEngine(facts, engineDir);
    // The step prints this only when it runs: its text holds `$((6*7))`, not 42.
    const marker = `pool-stopped-${RUN_ID}`;
    const spec = `import { Image } from "imgtool";
export default Image.fromBase(${JSON.stringify(facts.DEBIAN_BASE)})
  .clone({ name: "survivor" })
  .withCommands("echo ${marker}-$((6*7)) && sleep 15");
`;
    // The engine to stop comes first: with both free and nothing remembered, it gets the build.
    const project = await poolProject(facts, "stopped", [
      entry("engine-c", engine.host, ["linux/amd64"]),
      entry("engine-a", a, ["linux/amd64"]),
    ], spec);
    const build = spawnImgtool(project.dir, ["build", "spec.ts", "--push"], project.env);
    let uri = "";
    try {
      const runningOnC = (text: string) =>
        text.split("\n").some((line) =>
          line.includes("on engine-c |") && line.includes(`${marker}-42`)
        );
      assert.ok(
        await build.until(runningOnC, 180),
        `the step never ran on engine-c:\n${build.seen}`,
      );
      await engine.stop();
      const ended = await build.end();
      assert.equal(ended.code, 0, `exit ${ended.code}\n${ended.stderr}`);
      assert.match(ended.stderr, new RegExp(`engine engine-c at ${engine.host} does not answer`));
      assert.match(ended.stderr, /engine-c went away during the build; another engine takes it/);
      assert.match(ended.stderr, /linux\/amd64 on engine-a: built and pushed/);
      assert.match(ended.stderr, /: built and pushed on engine-a in /);
      uri = ended.stdout.trim();
      assert.match(uri, /\/survivor:[0-9a-f]{32}$/);
      assert.equal(await manifestStatus(uri), 200);
      assert.ok((await imageList(facts, a)).has(uri), "engine-a holds it");
    } finally {
      build.kill("SIGKILL");
      await build.end().catch(() => {});
      await engine.stop();
      // Engine 20.10 leaves a step running when it stops mid-build (its BuildKit does not end
      // it): the step is this test's, found by the run's marker; it would end by itself.
      for (const pid of await processesWith(marker)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch {
          // ended meanwhile
        }
      }
      if (uri) await removeFrom(facts, a, [uri]);
      await Deno.remove(engineDir, { recursive: true }).catch(() => {});
      await Deno.remove(project.dir, { recursive: true });
    }
  },
);

e2eTest(
  "pool: Ctrl-C stops the build on every engine and leaves no step running",
  async (_t, facts) => {
    const [a, b] = [poolEngine(facts, "A"), poolEngine(facts, "B")];
    const marker = `pool-interrupt-${RUN_ID}`;
    const spec = `import { Image } from "imgtool";
const base = Image.fromBase(${JSON.stringify(facts.DEBIAN_BASE)});
export const left = base.clone({ name: "left" }).withCommands("echo ${marker}-left-$((6*7)) && sleep 120");
export const right = base.clone({ name: "right" }).withCommands("echo ${marker}-right-$((6*7)) && sleep 120");
`;
    const project = await poolProject(facts, "interrupt", [
      entry("engine-a", a, ["linux/amd64"]),
      entry("engine-b", b, ["linux/amd64"]),
    ], spec);
    const before = await temporaryFolders();
    const build = spawnImgtool(project.dir, ["build", "spec.ts", "--push"], project.env);
    try {
      const bothRunning = (text: string) =>
        text.includes(`${marker}-left-42`) && text.includes(`${marker}-right-42`);
      assert.ok(await build.until(bothRunning, 180), `both steps never ran:\n${build.seen}`);
      // One step on each engine.
      const onEngine = (side: string) =>
        build.seen.split("\n").find((line) => line.includes(`${marker}-${side}-42`))?.match(
          / on (engine-[ab]) \|/,
        )?.[1];
      assert.deepEqual([onEngine("left"), onEngine("right")].sort(), ["engine-a", "engine-b"]);
      assert.equal((await processesWith(marker)).length >= 2, true, "the steps are running");
      // Each build has its context and secrets folders.
      const during = [...await temporaryFolders()].filter((name) => !before.has(name));
      assert.ok(during.length >= 4, `both builds had their folders: ${during}`);
      const stoppedAt = Date.now();
      build.kill("SIGINT");
      const ended = await build.end();
      assert.equal(ended.code, 130, ended.stderr);
      assert.ok(
        Date.now() - stoppedAt < 30_000,
        "it stopped long before the 120 s steps would end",
      );
      assert.match(ended.stderr, /interrupted/);
      const after = await temporaryFolders();
      assert.deepEqual(
        during.filter((name) => after.has(name)),
        [],
        "temporary folders are removed",
      );
      // Each engine cancels its step once its client is gone.
      assert.deepEqual(await gone(marker, 20), [], "no build step is left running");
    } finally {
      build.kill("SIGKILL");
      await build.end().catch(() => {});
      await Deno.remove(project.dir, { recursive: true });
    }
  },
);
