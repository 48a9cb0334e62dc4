/**
 * Spreading builds over a pool of engines (`[[builders]]` in imgtool.toml): which unit of
 * work (an image, or one platform of it) runs on which engine, and when. No scheduler beyond
 * that and no daemon: the engines are the user's, and each build is an ordinary builder
 * plugin call aimed at one of them.
 *
 * - Each unit runs on an engine that builds its platform natively when one answers; only
 *   when none does is it emulated on another, and the placement says so.
 * - Among the able engines, the one that built the same image and platform last time is
 *   taken when it has a free slot (its build cache serves); otherwise the engine with the
 *   most free slots, in the pool's order. A unit never waits for one engine while another
 *   able one is free.
 * - An engine runs at most `jobs` units at once.
 * - Groups (the images) keep their order: a group starts once every group it comes `after`
 *   is finished (all its units done, then its `finish` hook, which joins the platforms into
 *   one index); a group after one that failed is blocked, not built.
 * - An engine is probed before its first unit; one that does not answer is reported once and
 *   left out. After a unit fails, its engine is probed again: if it answers, the failure is
 *   the unit's own (a failing step) and is not retried elsewhere; if it does not, the unit
 *   goes to another able engine.
 * - Aborting `signal` (Ctrl-C) stops every running unit (their signal aborts) and starts no
 *   other; {@link runPool} returns once all have ended, and throws.
 *
 * The module knows nothing of images, plugins or processes: the caller's hooks do the work,
 * which keeps it testable with engines made of promises.
 *
 * @module
 */

import type { Platform } from "./plugin.ts";

/**
 * One engine of the pool, as the scheduler sees it.
 *
 * @example
 * ```ts
 * import type { PoolEngine } from "./pool.ts";
 * const engine: PoolEngine = { name: "arm", where: "ssh://arm-box", platforms: ["linux/arm64"], jobs: 2 };
 * console.log(engine.platforms.includes("linux/arm64")); // true
 * ```
 */
export interface PoolEngine {
  /** Its name (unique in the pool). */
  readonly name: string;
  /** Where it is, for messages (`tcp://10.0.0.5:2376`, `this machine`). */
  readonly where: string;
  /** The platforms it builds natively. */
  readonly platforms: readonly Platform[];
  /** How many units it runs at once. */
  readonly jobs: number;
}

/**
 * One unit of work: an image, or one platform of a multi-platform image.
 *
 * @example
 * ```ts
 * import type { PoolUnit } from "./pool.ts";
 * const unit: PoolUnit = { id: "api linux/arm64", group: "api", platform: "linux/arm64" };
 * console.log(unit.group); // api
 * ```
 */
export interface PoolUnit {
  /** Unique among the units. */
  readonly id: string;
  /** The group (image) it belongs to. */
  readonly group: string;
  /** The platform that decides which engines build it natively. */
  readonly platform: Platform;
  /** The key under which the engine that built it last is remembered. */
  readonly affinity?: string;
  /** The engines it may run on, by name; absent: any engine of the pool. */
  readonly engines?: readonly string[];
}

/**
 * A group of units (an image) and the groups that must be finished before it starts.
 *
 * @example
 * ```ts
 * import type { PoolGroup } from "./pool.ts";
 * const app: PoolGroup = { id: "app", after: ["base"] };
 * console.log(app.after); // [ "base" ]
 * ```
 */
export interface PoolGroup {
  /** Unique among the groups. */
  readonly id: string;
  /** Groups to finish first (ids; unknown ones are taken as finished). */
  readonly after: readonly string[];
}

/**
 * Where a unit ran, and whether under emulation.
 *
 * @example
 * ```ts
 * import type { Placement } from "./pool.ts";
 * const placement: Placement = { engine: "amd", emulated: true, why: "no engine of the pool builds linux/arm64 natively" };
 * console.log(placement.emulated ? `on ${placement.engine}, emulated: ${placement.why}` : placement.engine);
 * ```
 */
export interface Placement {
  /** The engine's name. */
  readonly engine: string;
  /** Whether the engine does not build the unit's platform natively. */
  readonly emulated: boolean;
  /** Why it is emulated. */
  readonly why?: string;
}

/**
 * How a unit ended.
 *
 * @example
 * ```ts
 * import type { UnitOutcome } from "./pool.ts";
 * const outcome: UnitOutcome<string> = {
 *   status: "done",
 *   placement: { engine: "a", emulated: false },
 *   result: "built",
 * };
 * console.log(outcome.status); // done
 * ```
 */
export type UnitOutcome<R> =
  | { readonly status: "done"; readonly placement: Placement; readonly result: R }
  | { readonly status: "failed"; readonly placement?: Placement; readonly error: unknown }
  | { readonly status: "blocked"; readonly by: string };

/**
 * How a group ended: done (its units and its finish hook), failed (the first error), or
 * blocked by a group before it that did not finish.
 *
 * @example
 * ```ts
 * import type { GroupOutcome } from "./pool.ts";
 * const describe = (outcome: GroupOutcome) =>
 *   outcome.status === "blocked" ? `waits on ${outcome.by}, which did not finish` : outcome.status;
 * console.log(describe({ status: "blocked", by: "base" })); // waits on base, which did not finish
 * ```
 */
export type GroupOutcome =
  | { readonly status: "done" }
  | { readonly status: "failed"; readonly error: unknown }
  | { readonly status: "blocked"; readonly by: string };

/**
 * An engine's answer to a probe.
 *
 * @example
 * ```ts
 * import type { EngineAnswer } from "./pool.ts";
 * const answer: EngineAnswer = { ok: false, reason: "connection refused" };
 * console.log(answer.ok); // false
 * ```
 */
export type EngineAnswer = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/**
 * What the pool remembers between runs: the engine that last built a unit's key.
 *
 * @example
 * ```ts
 * import type { AffinityMemory } from "./pool.ts";
 * const remembered = new Map<string, string>();
 * const memory: AffinityMemory = {
 *   recall: (key) => remembered.get(key),
 *   remember: (key, engine) => void remembered.set(key, engine),
 * };
 * memory.remember("api linux/amd64", "a");
 * console.log(memory.recall("api linux/amd64")); // a
 * ```
 */
export interface AffinityMemory {
  /** The engine that built `key` last. */
  recall(key: string): string | undefined;
  /** Note that `engine` built `key`. */
  remember(key: string, engine: string): void;
}

/**
 * What {@link runPool} is given.
 *
 * @example
 * ```ts
 * import { runPool, type PoolOptions } from "./pool.ts";
 * const options: PoolOptions<string> = {
 *   engines: [{ name: "a", where: "here", platforms: ["linux/amd64"], jobs: 1 }],
 *   groups: [{ id: "app", after: [] }],
 *   units: [{ id: "app", group: "app", platform: "linux/amd64" }],
 *   signal: new AbortController().signal,
 *   probe: () => Promise.resolve({ ok: true }),
 *   run: (unit, placement) => Promise.resolve(`${unit.id} on ${placement.engine}`),
 * };
 * const outcome = await runPool(options);
 * const app = outcome.units.get("app");
 * console.log(app?.status === "done" ? app.result : app?.status); // app on a
 * ```
 */
export interface PoolOptions<R> {
  /** The engines, in the pool's order (which breaks ties). */
  readonly engines: readonly PoolEngine[];
  /** The groups. */
  readonly groups: readonly PoolGroup[];
  /** The units, in the order they should start when nothing else decides. */
  readonly units: readonly PoolUnit[];
  /** Stops everything (Ctrl-C). */
  readonly signal: AbortSignal;
  /** Which engine built a unit's key last; told what built each unit that is done. */
  readonly affinity?: AffinityMemory;
  /** Ask an engine whether it answers, now. */
  probe(engine: PoolEngine, signal: AbortSignal): Promise<EngineAnswer>;
  /** Run a unit on an engine; throws when it fails. */
  run(unit: PoolUnit, placement: Placement, signal: AbortSignal): Promise<R>;
  /**
   * Finish a group whose units are all done (join its platforms, push its records); throws
   * when that fails. Groups after it start once it returns.
   */
  finish?(
    group: PoolGroup,
    done: ReadonlyMap<string, UnitOutcome<R>>,
    signal: AbortSignal,
  ): Promise<void>;
  /** Whether an error of `run` or `finish` stops the whole run (a mistake in the spec). */
  stopsRun?(error: unknown): boolean;
  /** Told once about each engine that does not answer. */
  onEngineDown?(engine: PoolEngine, reason: string): void;
  /** Told when a unit starts on an engine. */
  onStart?(unit: PoolUnit, placement: Placement): void;
  /** Told when a unit whose engine went away waits for another. */
  onRetry?(unit: PoolUnit, from: PoolEngine): void;
  /** Told when a group ends (done, failed or blocked), with its units' outcomes. */
  onGroupEnd?(
    group: PoolGroup,
    outcome: GroupOutcome,
    units: ReadonlyMap<string, UnitOutcome<R>>,
  ): void;
}

/**
 * What a run of the pool ended with.
 *
 * @example
 * ```ts
 * import type { PoolOutcome } from "./pool.ts";
 * const outcome: PoolOutcome<void> = { units: new Map(), groups: new Map([["app", { status: "done" }]]) };
 * console.log(outcome.groups.get("app")?.status); // done
 * ```
 */
export interface PoolOutcome<R> {
  /** Each unit's outcome, by id. */
  readonly units: ReadonlyMap<string, UnitOutcome<R>>;
  /** Each group's outcome, by id. */
  readonly groups: ReadonlyMap<string, GroupOutcome>;
}

/**
 * The error of a unit that no engine of the pool can take: every able engine is down.
 *
 * @example
 * ```ts
 * import { NoEngineError } from "./pool.ts";
 * const error = new NoEngineError("no engine of the pool answers", ["a at tcp://h:1: refused"]);
 * console.log(error.downs.length); // 1
 * ```
 */
export class NoEngineError extends Error {
  /** What each engine that does not answer said. */
  readonly downs: readonly string[];

  /** A unit no engine can take, with what each down engine said. */
  constructor(message: string, downs: readonly string[]) {
    super(message);
    this.name = "NoEngineError";
    this.downs = downs;
  }
}

interface EngineState {
  readonly engine: PoolEngine;
  readonly index: number;
  running: number;
  status: "unknown" | "up" | "down";
  reason?: string;
  probing?: Promise<EngineAnswer>;
}

/**
 * Run `units` on `engines` (see the module's documentation for the rules); returns each
 * unit's and group's outcome. Throws, once every running unit has ended, when `signal` was
 * aborted (its reason) or when an error stopped the run (`stopsRun`).
 *
 * @example
 * ```ts
 * import { runPool } from "./pool.ts";
 * const ran: string[] = [];
 * const outcome = await runPool({
 *   engines: [
 *     { name: "amd", where: "here", platforms: ["linux/amd64"], jobs: 1 },
 *     { name: "arm", where: "there", platforms: ["linux/arm64"], jobs: 1 },
 *   ],
 *   groups: [{ id: "app", after: [] }],
 *   units: [
 *     { id: "app amd64", group: "app", platform: "linux/amd64" },
 *     { id: "app arm64", group: "app", platform: "linux/arm64" },
 *   ],
 *   signal: new AbortController().signal,
 *   probe: () => Promise.resolve({ ok: true }),
 *   run: (unit, placement) => Promise.resolve(void ran.push(`${unit.id} on ${placement.engine}`)),
 * });
 * console.log(ran.sort()); // [ "app amd64 on amd", "app arm64 on arm" ]
 * console.log(outcome.groups.get("app")?.status); // done
 * ```
 */
export async function runPool<R>(options: PoolOptions<R>): Promise<PoolOutcome<R>> {
  const engines: EngineState[] = options.engines.map((engine, index) => ({
    engine,
    index,
    running: 0,
    status: "unknown",
  }));
  const units = new Map<string, UnitOutcome<R>>();
  const groups = new Map<string, GroupOutcome>();
  const groupIds = new Set(options.groups.map((group) => group.id));
  const unitsOf = new Map<string, PoolUnit[]>();
  for (const unit of options.units) {
    unitsOf.set(unit.group, [...(unitsOf.get(unit.group) ?? []), unit]);
  }
  // Units not yet started (or put back after their engine went away), in order.
  let waiting: PoolUnit[] = [...options.units];
  const tasks = new Set<Promise<void>>();
  // Stops the running units when the user aborts, or when an error stops the run.
  const stop = new AbortController();
  const abortAll = () => stop.abort(options.signal.reason);
  options.signal.addEventListener("abort", abortAll, { once: true });
  if (options.signal.aborted) abortAll();
  let fatal: { error: unknown } | undefined;
  const recalled = new Map<string, string | undefined>();

  // A change of state (a slot freed, a group finished) wakes the loop.
  let changed = false;
  let wake = () => {};
  const notify = () => {
    changed = true;
    wake();
  };
  const nextChange = () =>
    changed ? Promise.resolve() : new Promise<void>((resolve) => (wake = resolve));

  const markDown = (state: EngineState, reason: string) => {
    if (state.status === "down") return;
    state.status = "down";
    state.reason = reason;
    options.onEngineDown?.(state.engine, reason);
  };

  const probe = (state: EngineState): Promise<EngineAnswer> => {
    state.probing ??= options.probe(state.engine, stop.signal)
      .catch((error): EngineAnswer => ({ ok: false, reason: messageOf(error) }))
      .then((answer) => {
        state.probing = undefined;
        if (answer.ok) state.status = state.status === "down" ? "down" : "up";
        else markDown(state, answer.reason);
        return answer;
      });
    return state.probing;
  };

  const groupReady = (group: PoolGroup): "ready" | "waiting" | { blockedBy: string } => {
    for (const before of group.after) {
      if (before === group.id || !groupIds.has(before)) continue;
      const outcome = groups.get(before);
      if (outcome === undefined) return "waiting";
      if (outcome.status !== "done") return { blockedBy: before };
    }
    return "ready";
  };

  const outcomesOf = (group: PoolGroup) => {
    const outcomes = new Map<string, UnitOutcome<R>>();
    for (const unit of unitsOf.get(group.id) ?? []) {
      const outcome = units.get(unit.id);
      if (outcome) outcomes.set(unit.id, outcome);
    }
    return outcomes;
  };

  const endGroup = (group: PoolGroup, outcome: GroupOutcome) => {
    groups.set(group.id, outcome);
    options.onGroupEnd?.(group, outcome, outcomesOf(group));
  };

  const finishGroup = async (group: PoolGroup) => {
    const outcomes = outcomesOf(group);
    const failed = [...outcomes.values()].find((outcome) => outcome.status !== "done");
    if (failed) {
      endGroup(
        group,
        failed.status === "failed"
          ? { status: "failed", error: failed.error }
          : { status: "blocked", by: failed.by },
      );
      return;
    }
    try {
      if (stop.signal.aborted) throw stop.signal.reason;
      await options.finish?.(group, outcomes, stop.signal);
      endGroup(group, { status: "done" });
    } catch (error) {
      endGroup(group, { status: "failed", error });
      if (!stop.signal.aborted && options.stopsRun?.(error)) {
        fatal ??= { error };
        stop.abort(error);
      }
    }
  };

  const settle = (unit: PoolUnit, outcome: UnitOutcome<R>) => {
    units.set(unit.id, outcome);
    const group = options.groups.find((candidate) => candidate.id === unit.group);
    const pending = (unitsOf.get(unit.group) ?? []).some((other) => !units.has(other.id));
    if (group && !pending && !groups.has(group.id)) track(finishGroup(group));
    notify();
  };

  const track = (task: Promise<void>) => {
    const tracked = task.finally(() => {
      tasks.delete(tracked);
      notify();
    });
    tasks.add(tracked);
  };

  /** The engines a unit may run on now, native ones first when any answers. */
  const candidates = (unit: PoolUnit) => {
    const allowed = engines.filter((state) =>
      unit.engines === undefined || unit.engines.includes(state.engine.name)
    );
    const alive = allowed.filter((state) => state.status !== "down");
    const native = alive.filter((state) => state.engine.platforms.includes(unit.platform));
    if (native.length > 0) return { states: native, emulated: false, allowed };
    const declared = allowed.some((state) => state.engine.platforms.includes(unit.platform));
    return {
      states: alive,
      emulated: true,
      allowed,
      why: declared
        ? `the engines that build ${unit.platform} natively do not answer`
        : `no engine of the pool builds ${unit.platform} natively`,
    };
  };

  const start = (unit: PoolUnit, state: EngineState, placement: Placement) => {
    state.running++;
    waiting = waiting.filter((other) => other !== unit);
    track(attempt(unit, state, placement));
  };

  const attempt = async (unit: PoolUnit, state: EngineState, placement: Placement) => {
    let answer: EngineAnswer | undefined;
    try {
      answer = state.status === "up" ? { ok: true } : await probe(state);
      if (!answer.ok || state.status === "down") {
        // Down before it started: another engine takes it, as if it had never been placed.
        if (!stop.signal.aborted) waiting.unshift(unit);
        else settle(unit, { status: "failed", error: stop.signal.reason });
        return;
      }
      if (stop.signal.aborted) throw stop.signal.reason;
      options.onStart?.(unit, placement);
      const result = await options.run(unit, placement, stop.signal);
      if (unit.affinity !== undefined) options.affinity?.remember(unit.affinity, state.engine.name);
      settle(unit, { status: "done", placement, result });
    } catch (error) {
      if (stop.signal.aborted) {
        settle(unit, { status: "failed", placement, error });
        return;
      }
      if (options.stopsRun?.(error)) {
        fatal ??= { error };
        settle(unit, { status: "failed", placement, error });
        stop.abort(error);
        return;
      }
      // Did the engine go away, or did the unit fail on its own? Ask the engine again.
      const again: EngineAnswer = state.status === "down"
        ? { ok: false, reason: state.reason ?? "does not answer" }
        : await probe(state);
      if (!again.ok && !stop.signal.aborted) {
        options.onRetry?.(unit, state.engine);
        waiting.unshift(unit);
        return;
      }
      settle(unit, { status: "failed", placement, error });
    } finally {
      state.running--;
    }
  };

  /** Start what can start now. */
  const schedule = () => {
    if (stop.signal.aborted) return;
    // Groups after one that did not finish are blocked, unit by unit.
    for (const unit of [...waiting]) {
      const group = options.groups.find((candidate) => candidate.id === unit.group);
      const ready = group ? groupReady(group) : "ready";
      if (typeof ready === "object") {
        waiting = waiting.filter((other) => other !== unit);
        settle(unit, { status: "blocked", by: ready.blockedBy });
      }
    }
    const ready = waiting.filter((unit) => {
      const group = options.groups.find((candidate) => candidate.id === unit.group);
      return group === undefined || groupReady(group) === "ready";
    });
    const free = (state: EngineState) => state.running < state.engine.jobs;
    const placed = new Set<PoolUnit>();
    const place = (unit: PoolUnit, state: EngineState, found: ReturnType<typeof candidates>) => {
      placed.add(unit);
      start(unit, state, {
        engine: state.engine.name,
        emulated: found.emulated,
        ...(found.emulated ? { why: found.why } : {}),
      });
    };
    // First, each unit whose engine of last time is able and free goes there.
    for (const unit of ready) {
      const found = candidates(unit);
      if (found.states.length === 0) {
        placed.add(unit);
        waiting = waiting.filter((other) => other !== unit);
        const downs = found.allowed.map((state) =>
          `${state.engine.name} at ${state.engine.where}: ${state.reason ?? "does not answer"}`
        );
        settle(unit, {
          status: "failed",
          error: new NoEngineError("no engine of the pool that can build it answers", downs),
        });
        continue;
      }
      if (unit.affinity === undefined || options.affinity === undefined) continue;
      if (!recalled.has(unit.affinity)) {
        recalled.set(unit.affinity, options.affinity.recall(unit.affinity));
      }
      const last = recalled.get(unit.affinity);
      const state = found.states.find((candidate) => candidate.engine.name === last);
      if (state && free(state)) place(unit, state, found);
    }
    // Then the others, each on the able engine with the most free slots.
    for (const unit of ready) {
      if (placed.has(unit)) continue;
      const found = candidates(unit);
      const best = found.states.filter(free).sort((a, b) =>
        (b.engine.jobs - b.running) - (a.engine.jobs - a.running) || a.index - b.index
      )[0];
      if (best) {
        place(unit, best, found);
      }
    }
  };

  try {
    while (true) {
      changed = false;
      schedule();
      if (tasks.size === 0) {
        // Nothing runs and nothing could start: what still waits never will.
        for (const unit of waiting) {
          settle(unit, { status: "blocked", by: unit.group });
        }
        waiting = [];
        if (tasks.size === 0) break;
      }
      await nextChange();
    }
  } finally {
    options.signal.removeEventListener("abort", abortAll);
  }
  for (const group of options.groups) {
    if (!groups.has(group.id)) {
      const blocked = [...outcomesOf(group).values()]
        .find((outcome) => outcome.status === "blocked");
      endGroup(group, {
        status: "blocked",
        by: blocked?.status === "blocked" ? blocked.by : group.id,
      });
    }
  }
  if (fatal) throw fatal.error;
  if (options.signal.aborted) throw options.signal.reason;
  return { units, groups };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
