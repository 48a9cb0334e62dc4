/**
 * SIGINT and SIGTERM always end imgtool. Before a builder runs, a signal ends it at once
 * (status 130 or 143, as a shell reports), even while a spec's top-level `await` never
 * settles or its code never returns. During a build, the first signal stops the builder
 * and removes the temporary build files, and a second one exits at once.
 *
 * The builder here is a stand-in `docker` client (a shell script): it answers the version
 * questions and then "builds" by sleeping, so no engine is needed. Every child is killed
 * after a deadline, and every sleep ends by itself.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { environmentWithoutImgtool, IMGTOOL_COMMAND, withTempDir } from "./helpers.ts";

/** How long a signalled imgtool may take to end when nothing needs cleaning up. */
const PROMPT_MS = 2_000;
/** After this, a child is killed and the test fails (Deno's start-up included). */
const DEADLINE_MS = 30_000;

/** A running imgtool, its standard error gathered as it comes. */
class Running {
  readonly #child: Deno.ChildProcess;
  readonly status: Promise<Deno.CommandStatus>;
  #stderr = "";
  readonly #deadline: ReturnType<typeof setTimeout>;

  constructor(args: readonly string[], cwd: string, env: Record<string, string> = {}) {
    const [program, ...prefix] = IMGTOOL_COMMAND;
    const child = new Deno.Command(program, {
      args: [...prefix, ...args],
      cwd,
      env: { ...environmentWithoutImgtool(), NO_COLOR: "1", ...env },
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.#deadline = setTimeout(() => this.kill("SIGKILL"), DEADLINE_MS);
    const gathered = (async () => {
      for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
        this.#stderr += text;
      }
    })();
    this.status = Promise.all([child.status, gathered]).then(([status]) => status)
      .finally(() => clearTimeout(this.#deadline));
  }

  get stderr(): string {
    return this.#stderr;
  }

  kill(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch {
      // already ended
    }
  }

  /** Wait until standard error holds `text` (or the process ends first: then fail). */
  async waitFor(text: string): Promise<void> {
    let ended = false;
    this.status.finally(() => ended = true);
    while (!this.#stderr.includes(text)) {
      assert.ok(!ended, `imgtool ended before printing ${JSON.stringify(text)}:\n${this.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Whether it ends within `ms`. */
  async endsWithin(ms: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
    try {
      return await Promise.race([this.status.then(() => true), late]);
    } finally {
      clearTimeout(timer);
    }
  }
}

const NEVER_LOADS = `import { Image } from "imgtool";
console.error("spec-loading");
setInterval(() => {}, 1000);
await new Promise(() => {});
export default Image.fromBase("debian:bookworm-slim").clone({ name: "never" });
`;

const LOOPS = `import { Image } from "imgtool";
console.error("spec-loading");
while (Date.now() > 0) {
  // never returns
}
export default Image.fromBase("debian:bookworm-slim").clone({ name: "loops" });
`;

for (
  const [command, signal, spec, code] of [
    ["build", "SIGINT", NEVER_LOADS, 130],
    ["build", "SIGTERM", NEVER_LOADS, 143],
    ["uri", "SIGTERM", NEVER_LOADS, 143],
    ["validate", "SIGINT", LOOPS, 130],
  ] as const
) {
  const what = spec === LOOPS ? "the spec's code never returns" : "the spec never finishes loading";
  Deno.test(`${signal} ends imgtool ${command} at once (${code}) while ${what}`, async () => {
    await withTempDir(async (dir) => {
      await Deno.writeTextFile(join(dir, "spec.ts"), spec);
      await Deno.writeTextFile(join(dir, "imgtool.toml"), "# test project\n");
      const running = new Running([command, "spec.ts"], dir);
      try {
        await running.waitFor("spec-loading");
        const sent = performance.now();
        running.kill(signal);
        assert.ok(
          await running.endsWithin(PROMPT_MS),
          `still running ${PROMPT_MS} ms after ${signal}`,
        );
        assert.equal((await running.status).code, code, running.stderr);
        assert.ok(performance.now() - sent < PROMPT_MS);
      } finally {
        running.kill("SIGKILL");
        await running.status;
      }
    });
  });
}

/**
 * A stand-in docker client: an engine 27 with buildx, no image yet, and a build that prints a
 * line, notes its pid, and sleeps (ignoring SIGINT and SIGTERM when `FAKE_DOCKER_STUBBORN` is
 * set, as a client that does not stop would).
 */
const FAKE_DOCKER = `#!/bin/sh
case "$1" in
  version) echo "27.0.0 27.0.0"; exit 0 ;;
  image) exit 1 ;;
  buildx)
    if [ "$2" = version ]; then echo "github.com/docker/buildx v0.17.0"; exit 0; fi
    echo $$ > "$FAKE_DOCKER_PID"
    if [ -n "$FAKE_DOCKER_STUBBORN" ]; then trap '' INT TERM; fi
    echo "fake-build-running"
    exec sleep 20 ;;
esac
echo "unexpected: $*" >&2
exit 1
`;

const BUILT = `import { Image } from "imgtool";
export default Image.fromBase("debian:bookworm-slim").clone({ name: "app" })
  .withEnvVars({ MODE: "test" });
`;

/** A project whose builds go to the stand-in docker; its temporary folders go to `tmp`. */
async function buildProject(dir: string, stubborn: boolean) {
  await Deno.writeTextFile(join(dir, "spec.ts"), BUILT);
  await Deno.writeTextFile(join(dir, "imgtool.toml"), "# test project\n");
  const docker = join(dir, "docker");
  await Deno.writeTextFile(docker, FAKE_DOCKER);
  await Deno.chmod(docker, 0o755);
  const tmp = join(dir, "tmp");
  await Deno.mkdir(tmp);
  const pidFile = join(dir, "docker.pid");
  const env: Record<string, string> = {
    IMGTOOL_BUILDER: "docker",
    IMGTOOL_DOCKER_CLIENT: docker,
    TMPDIR: tmp,
    FAKE_DOCKER_PID: pidFile,
    ...(stubborn ? { FAKE_DOCKER_STUBBORN: "1" } : {}),
  };
  return { env, tmp, pidFile };
}

/** Is the process `pid` still there? */
function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

async function killStandIn(pidFile: string): Promise<void> {
  const pid = Number((await Deno.readTextFile(pidFile).catch(() => "")).trim());
  if (pid > 0 && alive(pid)) Deno.kill(pid, "SIGKILL");
}

for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  Deno.test(`${signal} during a build stops the builder, removes its files, exits ${code}`, async () => {
    await withTempDir(async (dir) => {
      const { env, tmp, pidFile } = await buildProject(dir, false);
      const running = new Running(["build", "spec.ts"], dir, env);
      try {
        await running.waitFor("fake-build-running");
        const during = [...Deno.readDirSync(tmp)].map((entry) => entry.name);
        assert.ok(during.some((name) => name.startsWith("imgtool-secrets-")), during.join(" "));
        const pid = Number((await Deno.readTextFile(pidFile)).trim());
        running.kill(signal);
        assert.ok(await running.endsWithin(10_000), "it stopped once the builder did");
        assert.equal((await running.status).code, code, running.stderr);
        assert.match(running.stderr, /interrupted: the builder was stopped/);
        assert.deepEqual([...Deno.readDirSync(tmp)], [], "temporary build files are removed");
        assert.equal(alive(pid), false, "the builder process was stopped");
      } finally {
        running.kill("SIGKILL");
        await running.status;
        await killStandIn(pidFile);
      }
    });
  });
}

Deno.test("a second signal during a build exits at once when the builder does not stop", async () => {
  await withTempDir(async (dir) => {
    const { env, pidFile } = await buildProject(dir, true);
    const running = new Running(["build", "spec.ts"], dir, env);
    try {
      await running.waitFor("fake-build-running");
      running.kill("SIGINT");
      // The first signal waits for the builder, which ignores it (imgtool kills it after 5 s).
      assert.equal(await running.endsWithin(1_500), false, "the first signal waits for clean-up");
      const sent = performance.now();
      running.kill("SIGINT");
      assert.ok(
        await running.endsWithin(PROMPT_MS),
        `still running ${PROMPT_MS} ms after a second SIGINT`,
      );
      assert.equal((await running.status).code, 130, running.stderr);
      assert.match(running.stderr, /interrupted again: exiting without waiting/);
      assert.ok(performance.now() - sent < PROMPT_MS);
    } finally {
      running.kill("SIGKILL");
      await running.status;
      await killStandIn(pidFile);
    }
  });
});
