// Ctrl-C during a build, without the end-to-end environment: the docker client is a stand-in
// script whose build runs until stopped. The build stage stops it and removes its temporary
// context and secrets folders; the command line then exits 130.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import docker from "../plugins/docker.ts";
import {
  type BuilderContext,
  BuildError,
  defaultConfig,
  exec,
  identify,
  Image,
  planImage,
} from "../mod.ts";
import { buildImage } from "../src/build.ts";
import { environmentWithoutImgtool, IMGTOOL_COMMAND, withTempDir } from "./helpers.ts";
import { optionFields } from "./recording_exec.ts";

const MARKER = "stand-in-build-running";
/** How long the stand-in build would run if nobody stopped it. */
const BUILD_SECONDS = 30;

/**
 * Write a stand-in docker client into `dir`: it answers detection as a 20.10 client without
 * buildx, has no images, and on `build` records its pid and arguments, prints the marker and
 * becomes a long `sleep` (same pid, so stopping the client stops the build).
 */
function writeStandInDocker(dir: string): { client: string; pidFile: string; argsFile: string } {
  const client = join(dir, "docker");
  const pidFile = join(dir, "build.pid");
  const argsFile = join(dir, "build.args");
  Deno.writeTextFileSync(
    client,
    `#!/bin/sh
case "$1" in
  version) echo "20.10.24 20.10.24" ;;
  buildx) exit 1 ;;
  image) echo "Error: No such image" >&2; exit 1 ;;
  build)
    printf '%s\\n' "$@" > '${argsFile}'
    echo $$ > '${pidFile}'
    echo "#1 [1/1] ${MARKER}"
    exec sleep ${BUILD_SECONDS} ;;
  *) exit 0 ;;
esac
`,
  );
  Deno.chmodSync(client, 0o755);
  return { client, pidFile, argsFile };
}

/** Whether a process with this pid is alive (a zombie counts as gone). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

/** Stop a stand-in build that outlived its test (a test that failed must not leave it). */
function stopLeftover(pidFile: string): void {
  try {
    const pid = Number(Deno.readTextFileSync(pidFile).trim());
    if (pid > 0 && alive(pid)) Deno.kill(pid, "SIGKILL");
  } catch {
    // never started, or gone
  }
}

/** The folders imgtool made in `tmp` (its TMPDIR), sorted. */
function temporaryFolders(tmp: string): string[] {
  return [...Deno.readDirSync(tmp)].map((entry) => entry.name).filter((name) =>
    name.startsWith("imgtool-")
  ).sort();
}

/** The context and secrets folders a recorded `docker build` command line was handed. */
function handedFolders(argsFile: string): string[] {
  const args = Deno.readTextFileSync(argsFile).split("\n");
  const dockerfile = args[args.indexOf("--file") + 1];
  const secret = optionFields(args[args.indexOf("--secret") + 1]).src;
  return [dockerfile.replace(/\/Dockerfile$/, ""), secret.replace(/\/[^/]+$/, "")];
}

Deno.test("an interrupted build stops the running builder and removes its context and secrets folders", () =>
  withTempDir(async (dir) => {
    const standIn = writeStandInDocker(dir);
    Deno.env.set("UNIT_INTERRUPT_TOKEN", "t0ken");
    try {
      const config = { ...defaultConfig(), dockerClient: standIn.client };
      const image = Image.fromBase("debian:bookworm").clone({ name: "app" })
        .withCommands("true", { secretMounts: "UNIT_INTERRUPT_TOKEN" });
      const plan = planImage(image, "app", config);
      const context: BuilderContext = {
        config,
        registry: { putIndex: () => Promise.reject(new Error("not used")) },
        exec,
      };
      const interrupt = new AbortController();
      const started = performance.now();
      let folders: string[] = [];
      let pid = 0;
      const outcome = await buildImage(plan, await identify(plan), docker, context, {
        push: false,
        insecureRegistry: false,
        signal: interrupt.signal,
        output(line) {
          if (!line.includes(MARKER)) return;
          // The build is running: see what it holds, then press Ctrl-C.
          pid = Number(Deno.readTextFileSync(standIn.pidFile).trim());
          folders = handedFolders(standIn.argsFile);
          assert.ok(alive(pid));
          for (const folder of folders) assert.ok(existsSync(folder), `${folder} exists`);
          interrupt.abort();
        },
      }).then(() => undefined, (error: unknown) => error);
      assert.ok(outcome instanceof BuildError, String(outcome));
      assert.match(outcome.message, /interrupted/);
      assert.ok(pid > 0, "the build ran");
      assert.ok(!alive(pid), "the builder process is stopped");
      assert.ok(performance.now() - started < BUILD_SECONDS * 1000 / 2, "long before it ends");
      assert.equal(folders.length, 2);
      for (const folder of folders) assert.ok(!existsSync(folder), `${folder} is removed`);
    } finally {
      Deno.env.delete("UNIT_INTERRUPT_TOKEN");
      stopLeftover(standIn.pidFile);
    }
  }));

Deno.test("Ctrl-C during `imgtool build` stops the builder, leaves no temporary folder, and exits 130", () =>
  withTempDir(async (dir) => {
    const standIn = writeStandInDocker(dir);
    const tmp = join(dir, "tmp");
    const project = join(dir, "project");
    Deno.mkdirSync(tmp);
    Deno.mkdirSync(project);
    Deno.writeTextFileSync(
      join(project, "spec.ts"),
      `import { Image } from "imgtool";
export default Image.fromBase("debian:bookworm").clone({ name: "interrupted" })
  .withCommands("true", { secretMounts: "UNIT_INTERRUPT_TOKEN" });
`,
    );
    const [program, ...prefix] = IMGTOOL_COMMAND;
    const child = new Deno.Command(program, {
      args: [...prefix, "build", "spec.ts"],
      cwd: project,
      env: {
        ...environmentWithoutImgtool(),
        NO_COLOR: "1",
        TMPDIR: tmp,
        XDG_CACHE_HOME: join(dir, "cache"),
        IMGTOOL_BUILDER: "docker",
        IMGTOOL_DOCKER_CLIENT: standIn.client,
        UNIT_INTERRUPT_TOKEN: "t0ken",
      },
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // Stop the CLI if it does not end by itself (it would wait for the stand-in's sleep).
    const deadline = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // already ended
      }
    }, 60_000);
    try {
      const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let seen = "";
      while (!seen.includes(MARKER)) {
        const { value, done } = await stderr.read();
        if (done) break;
        seen += value;
      }
      assert.ok(seen.includes(MARKER), `the build never ran:\n${seen}`);
      const during = temporaryFolders(tmp);
      assert.deepEqual(
        during.map((name) => name.replace(/-[^-]*$/, "")),
        ["imgtool-context", "imgtool-secrets"],
        "the build had its context and secrets folders",
      );
      const pid = Number(Deno.readTextFileSync(standIn.pidFile).trim());
      const stoppedAt = performance.now();
      child.kill("SIGINT");
      for (let read = await stderr.read(); !read.done; read = await stderr.read()) {
        seen += read.value;
      }
      const status = await child.status;
      assert.equal(status.code, 130, seen);
      assert.ok(performance.now() - stoppedAt < BUILD_SECONDS * 1000 / 2, "it did not wait");
      assert.match(seen, /interrupted/);
      assert.ok(!alive(pid), "the builder process is stopped");
      assert.deepEqual(temporaryFolders(tmp), []);
    } finally {
      clearTimeout(deadline);
      try {
        child.kill("SIGKILL");
      } catch {
        // already ended
      }
      await child.status;
      stopLeftover(standIn.pidFile);
    }
  }));
