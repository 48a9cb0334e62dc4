// The pool scheduler (src/pool.ts) with engines made of promises: where each unit runs (native
// first, emulation reported, the engine of last time when free), in which order (groups after
// their bases, at most `jobs` at once per engine), and what happens on faults (an engine down
// before or during a build, a failing step, a mistake that stops the run, Ctrl-C).

import assert from "node:assert/strict";
import {
  type AffinityMemory,
  type EngineAnswer,
  NoEngineError,
  type Placement,
  type PoolEngine,
  type PoolGroup,
  type PoolOptions,
  type PoolUnit,
  runPool,
} from "../src/pool.ts";
import { BuildError, UsageError } from "../src/errors.ts";

const AMD: PoolEngine = {
  name: "amd",
  where: "tcp://amd:2376",
  platforms: ["linux/amd64"],
  jobs: 1,
};
const ARM: PoolEngine = {
  name: "arm",
  where: "tcp://arm:2376",
  platforms: ["linux/arm64"],
  jobs: 1,
};
const AMD2: PoolEngine = { ...AMD, name: "amd2", where: "tcp://amd2:2376" };

/** A unit of its own group (an image of one platform). */
function unit(id: string, platform: PoolUnit["platform"] = "linux/amd64", extra = {}): PoolUnit {
  return { id, group: id, platform, ...extra };
}

function groupsOf(units: readonly PoolUnit[], after: Record<string, string[]> = {}): PoolGroup[] {
  return [...new Set(units.map((u) => u.group))].map((id) => ({ id, after: after[id] ?? [] }));
}

/** A promise with its resolve, for units that run until the test lets them end. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

/** A pool run with recording hooks; `run` defaults to finishing at once with "built". */
function recorded(
  options: Partial<PoolOptions<string>> & Pick<PoolOptions<string>, "engines" | "units">,
) {
  const started: { unit: string; placement: Placement }[] = [];
  const probes: string[] = [];
  const downs: string[] = [];
  const run = options.run ?? (() => Promise.resolve("built"));
  const result = runPool<string>({
    groups: groupsOf(options.units),
    signal: new AbortController().signal,
    probe: (engine) => {
      probes.push(engine.name);
      return Promise.resolve({ ok: true });
    },
    ...options,
    run: (u, placement, signal) => {
      started.push({ unit: u.id, placement });
      return run(u, placement, signal);
    },
    onEngineDown: (engine, reason) => downs.push(`${engine.name}: ${reason}`),
  });
  return { result, started, probes, downs };
}

Deno.test("each platform goes to the engine that builds it natively", async () => {
  const { result, started } = recorded({
    engines: [AMD, ARM],
    units: [
      { id: "app arm64", group: "app", platform: "linux/arm64" },
      { id: "app amd64", group: "app", platform: "linux/amd64" },
    ],
  });
  const outcome = await result;
  const where = Object.fromEntries(started.map((s) => [s.unit, s.placement]));
  assert.deepEqual(where["app arm64"], { engine: "arm", emulated: false });
  assert.deepEqual(where["app amd64"], { engine: "amd", emulated: false });
  assert.equal(outcome.groups.get("app")?.status, "done");
});

Deno.test("a platform no engine builds natively is emulated, and the placement says why", async () => {
  const { result, started } = recorded({
    engines: [AMD],
    units: [unit("arm-only", "linux/arm64")],
  });
  await result;
  assert.deepEqual(started.map((s) => s.placement), [{
    engine: "amd",
    emulated: true,
    why: "no engine of the pool builds linux/arm64 natively",
  }]);
});

Deno.test("a unit waits for a busy native engine rather than be emulated on a free one", async () => {
  const first = gate();
  const { result, started } = recorded({
    engines: [AMD, ARM],
    units: [unit("one", "linux/arm64"), unit("two", "linux/arm64")],
    run: (u) => u.id === "one" ? first.opened.then(() => "built") : Promise.resolve("built"),
  });
  await tick();
  assert.deepEqual(started.map((s) => s.unit), ["one"], "two waits for arm");
  first.open();
  await result;
  assert.deepEqual(started.map((s) => `${s.unit}@${s.placement.engine}`), ["one@arm", "two@arm"]);
});

Deno.test("units spread over the free engines; an engine runs at most `jobs` at once", async () => {
  let running = 0;
  let most = 0;
  const perEngine = new Map<string, number>();
  const { result, started } = recorded({
    engines: [AMD, { ...AMD2, jobs: 2 }],
    units: ["a", "b", "c", "d", "e", "f"].map((id) => unit(id)),
    run: async (_u, placement) => {
      running++;
      most = Math.max(most, running);
      const now = (perEngine.get(placement.engine) ?? 0) + 1;
      perEngine.set(placement.engine, now);
      assert.ok(now <= (placement.engine === "amd" ? 1 : 2), `${placement.engine} over its jobs`);
      await tick();
      perEngine.set(placement.engine, perEngine.get(placement.engine)! - 1);
      running--;
      return "built";
    },
  });
  await result;
  assert.equal(most, 3, "three at once: one on amd, two on amd2");
  const used = new Set(started.map((s) => s.placement.engine));
  assert.deepEqual([...used].sort(), ["amd", "amd2"]);
});

Deno.test("an image after its base starts only once the base is finished (index joined)", async () => {
  const events: string[] = [];
  const units = [unit("app"), unit("base")];
  const outcome = await runPool<string>({
    engines: [AMD, AMD2],
    groups: groupsOf(units, { app: ["base"] }),
    units,
    signal: new AbortController().signal,
    probe: () => Promise.resolve({ ok: true }),
    run: async (u) => {
      events.push(`run ${u.id}`);
      await tick();
      return "built";
    },
    finish: async (group) => {
      await tick();
      events.push(`finish ${group.id}`);
    },
  });
  assert.deepEqual(events, ["run base", "finish base", "run app", "finish app"]);
  assert.equal(outcome.groups.get("app")?.status, "done");
});

Deno.test("an image whose base failed is blocked, never run", async () => {
  const units = [unit("base"), unit("app"), unit("other")];
  const ran: string[] = [];
  const outcome = await runPool<string>({
    engines: [AMD],
    groups: groupsOf(units, { app: ["base"] }),
    units,
    signal: new AbortController().signal,
    probe: () => Promise.resolve({ ok: true }),
    run: (u) => {
      ran.push(u.id);
      return u.id === "base"
        ? Promise.reject(new BuildError("step failed: RUN false"))
        : Promise.resolve("built");
    },
  });
  assert.deepEqual(ran, ["base", "other"]);
  assert.deepEqual(outcome.groups.get("app"), { status: "blocked", by: "base" });
  assert.equal(outcome.groups.get("base")?.status, "failed");
  assert.equal(outcome.groups.get("other")?.status, "done");
});

Deno.test("an engine that does not answer is reported once and its work goes to another", async () => {
  const { result, started, downs } = recorded({
    engines: [{ ...AMD, jobs: 2 }, AMD2],
    units: [unit("a"), unit("b"), unit("c")],
    probe: (engine) =>
      Promise.resolve<EngineAnswer>(
        engine.name === "amd" ? { ok: false, reason: "connection refused" } : { ok: true },
      ),
  });
  const outcome = await result;
  assert.deepEqual(downs, ["amd: connection refused"], "reported once");
  assert.deepEqual(new Set(started.map((s) => s.placement.engine)), new Set(["amd2"]));
  for (const id of ["a", "b", "c"]) assert.equal(outcome.units.get(id)?.status, "done");
});

Deno.test("the native engine down: the platform is emulated elsewhere, and the placement says why", async () => {
  const { result, started } = recorded({
    engines: [AMD, ARM],
    units: [unit("x", "linux/arm64")],
    probe: (engine) =>
      Promise.resolve<EngineAnswer>(
        engine.name === "arm" ? { ok: false, reason: "no route to host" } : { ok: true },
      ),
  });
  await result;
  assert.deepEqual(started.map((s) => s.placement), [{
    engine: "amd",
    emulated: true,
    why: "the engines that build linux/arm64 natively do not answer",
  }]);
});

Deno.test("an engine that goes away during a build: the unit runs again on another engine", async () => {
  let amdUp = true;
  const { result, started, downs } = recorded({
    engines: [AMD, AMD2],
    units: [unit("only")],
    probe: (engine) =>
      Promise.resolve<EngineAnswer>(
        engine.name === "amd" && !amdUp
          ? { ok: false, reason: "connection refused" }
          : { ok: true },
      ),
    run: (_u, placement) => {
      if (placement.engine === "amd") {
        amdUp = false;
        return Promise.reject(new BuildError("docker build failed (exit 1)"));
      }
      return Promise.resolve("built on amd2");
    },
  });
  const outcome = await result;
  assert.deepEqual(started.map((s) => s.placement.engine), ["amd", "amd2"]);
  assert.deepEqual(downs, ["amd: connection refused"]);
  const only = outcome.units.get("only");
  assert.equal(only?.status === "done" && only.result, "built on amd2");
});

Deno.test("a build that fails on an engine that still answers is the spec's: not retried", async () => {
  const failure = new BuildError("step failed: RUN exit 3");
  const { result, started, probes } = recorded({
    engines: [AMD, AMD2],
    units: [unit("broken")],
    run: () => Promise.reject(failure),
  });
  const outcome = await result;
  assert.equal(started.length, 1, "run once");
  assert.deepEqual(probes, ["amd", "amd"], "probed before, and again after the failure");
  const broken = outcome.units.get("broken");
  assert.equal(broken?.status, "failed");
  assert.equal(broken?.status === "failed" && broken.error, failure);
  assert.deepEqual(outcome.groups.get("broken"), { status: "failed", error: failure });
});

Deno.test("with no engine answering, a unit fails naming what each engine said", async () => {
  const { result, started } = recorded({
    engines: [AMD, ARM],
    units: [unit("x")],
    probe: (engine) => Promise.resolve({ ok: false, reason: `${engine.name} is off` }),
  });
  const outcome = await result;
  assert.equal(started.length, 0);
  const x = outcome.units.get("x");
  assert.ok(x?.status === "failed" && x.error instanceof NoEngineError, JSON.stringify(x));
  assert.deepEqual((x.error as NoEngineError).downs, [
    "amd at tcp://amd:2376: amd is off",
    "arm at tcp://arm:2376: arm is off",
  ]);
});

Deno.test("a unit goes to the engine that built it last when that one is free, and is remembered", async () => {
  const remembered = new Map([["api linux/amd64", "amd2"]]);
  const memory: AffinityMemory = {
    recall: (key) => remembered.get(key),
    remember: (key, engine) => void remembered.set(key, engine),
  };
  const { result, started } = recorded({
    engines: [AMD, AMD2],
    units: [
      unit("api", "linux/amd64", { affinity: "api linux/amd64" }),
      unit("web", "linux/amd64", { affinity: "web linux/amd64" }),
    ],
    affinity: memory,
  });
  await result;
  const where = Object.fromEntries(started.map((s) => [s.unit, s.placement.engine]));
  assert.deepEqual(where, { api: "amd2", web: "amd" }, "web takes the engine api left free");
  assert.equal(remembered.get("web linux/amd64"), "amd");
  assert.equal(remembered.get("api linux/amd64"), "amd2");
});

Deno.test("the engine of last time is passed over when it is not able (down, or not allowed)", async () => {
  const memory: AffinityMemory = { recall: () => "amd", remember: () => {} };
  const { result, started } = recorded({
    engines: [AMD, AMD2],
    units: [unit("x", "linux/amd64", { affinity: "x", engines: ["amd2"] })],
    affinity: memory,
  });
  await result;
  assert.deepEqual(started.map((s) => s.placement.engine), ["amd2"]);
});

Deno.test("a mistake in the spec (exit 2) stops every running unit and starts no other", async () => {
  const stopped: string[] = [];
  const mistake = new UsageError("secret TOKEN has no value");
  const units = [unit("slow"), unit("wrong"), unit("later")];
  const run = runPool<string>({
    engines: [AMD, AMD2],
    groups: groupsOf(units, { later: ["slow"] }),
    units,
    signal: new AbortController().signal,
    probe: () => Promise.resolve({ ok: true }),
    run: (u, _placement, signal) => {
      if (u.id === "wrong") return tick().then(() => Promise.reject(mistake));
      return new Promise((_resolve, reject) => {
        signal.addEventListener("abort", () => {
          stopped.push(u.id);
          reject(new Error("stopped"));
        });
      });
    },
    stopsRun: (error) => error instanceof UsageError,
  });
  await assert.rejects(run, (error) => error === mistake);
  assert.deepEqual(stopped, ["slow"]);
});

Deno.test("Ctrl-C: every running unit is stopped, none starts, and the run throws once all ended", async () => {
  const controller = new AbortController();
  const ended: string[] = [];
  const started: string[] = [];
  const units = [unit("a"), unit("b"), unit("c")];
  const run = runPool<string>({
    engines: [AMD, AMD2],
    groups: groupsOf(units),
    units,
    signal: controller.signal,
    probe: () => Promise.resolve({ ok: true }),
    run: (u, _placement, signal) => {
      started.push(u.id);
      return new Promise((_resolve, reject) => {
        signal.addEventListener("abort", () =>
          setTimeout(() => {
            ended.push(u.id);
            reject(new BuildError(`build of ${u.id} was interrupted`));
          }, 5));
      });
    },
  });
  while (started.length < 2) await tick();
  controller.abort(new Error("interrupted"));
  await assert.rejects(run, /interrupted/);
  assert.deepEqual(started.sort(), ["a", "b"], "c never started");
  assert.deepEqual(ended.sort(), ["a", "b"], "the run waited for both to end");
});
