import assert from "node:assert/strict";
import fc from "fast-check";
import { RegistryClient } from "./client.ts";
import type { RequestProgress } from "./progress.ts";
import { MAX_RETRY_AFTER_MS, retryDelayMs } from "./retry.ts";
import { serveLocal } from "./testing.ts";

// The documented schedule, written out here rather than taken from the module under test:
// 250 ms doubling per attempt, capped at 8 s; the delay lies in [step / 2, step].
function documentedStep(attempt: number): number {
  return Math.min(8000, 250 * 2 ** attempt);
}

Deno.test("retry delays stay within half a step and a whole step, for any random number", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 60 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (attempt, random) => {
        const delay = retryDelayMs(attempt, { random: () => random });
        const step = documentedStep(attempt);
        return delay >= step / 2 && delay <= step;
      },
    ),
  );
});

Deno.test("retry delays follow the random source: the lowest and highest draws differ by half a step", () => {
  for (let attempt = 0; attempt < 8; attempt++) {
    const step = documentedStep(attempt);
    const low = retryDelayMs(attempt, { random: () => 0 });
    const high = retryDelayMs(attempt, { random: () => 0.999999 });
    assert.equal(low, step / 2, `attempt ${attempt}`);
    assert.equal(high, step, `attempt ${attempt}`);
  }
  // Ten different draws for one attempt give ten different delays: the jitter is real.
  const draws = [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95];
  const delays = draws.map((r) => retryDelayMs(5, { random: () => r }));
  assert.equal(new Set(delays).size, draws.length, delays.join(", "));
  assert.deepEqual([...delays].sort((a, b) => a - b), delays, "a larger draw waits longer");
});

Deno.test("a random source out of range cannot push a delay out of its bounds", () => {
  for (const random of [-5, 7, NaN, Infinity]) {
    const delay = retryDelayMs(2, { random: () => random });
    assert.ok(delay >= 500 && delay <= 1000, `${random}: ${delay}`);
  }
});

Deno.test("Retry-After lengthens a delay, as seconds or a date, but never past 30 s", () => {
  const low = { random: () => 0 };
  assert.equal(retryDelayMs(0, { ...low, retryAfter: "2" }), 2000);
  assert.equal(retryDelayMs(0, { ...low, retryAfter: "0" }), 125, "a shorter one does not shorten");
  const now = Date.parse("2025-01-01T00:00:00Z");
  assert.equal(
    retryDelayMs(0, { ...low, now, retryAfter: "Wed, 01 Jan 2025 00:00:03 GMT" }),
    3000,
  );
  assert.equal(retryDelayMs(0, { ...low, retryAfter: "86400" }), MAX_RETRY_AFTER_MS);
  assert.equal(
    retryDelayMs(0, { ...low, retryAfter: "soon" }),
    125,
    "an unreadable one is ignored",
  );
});

/** Retries of a registry that answers 503 twice, as seen by the client and by the server. */
async function retriesWith(random: () => number) {
  const arrivals: number[] = [];
  const server = serveLocal(() => {
    arrivals.push(performance.now());
    return arrivals.length <= 2
      ? new Response("busy", { status: 503 })
      : new Response(null, { status: 404 });
  });
  const events: RequestProgress[] = [];
  try {
    const client = new RegistryClient({ random, onProgress: (event) => events.push(event) });
    assert.equal(await client.getManifest(`${server.host}/a:1`), undefined);
  } finally {
    await server.close();
  }
  return { arrivals, retries: events.filter((e) => e.kind === "retrying") };
}

Deno.test("the client waits the jittered delay its random source gives, and reports it", async () => {
  const slow = await retriesWith(() => 0.999999);
  const fast = await retriesWith(() => 0);
  for (const run of [slow, fast]) {
    assert.equal(run.arrivals.length, 3);
    assert.deepEqual(run.retries.map((e) => e.attempt), [1, 2]);
  }
  // What the client reports is what the pure function gives for its random source...
  assert.deepEqual(slow.retries.map((e) => e.retryInMs), [documentedStep(0), documentedStep(1)]);
  assert.deepEqual(fast.retries.map((e) => e.retryInMs), [
    documentedStep(0) / 2,
    documentedStep(1) / 2,
  ]);
  // ...and it really waits that long between attempts (timers may fire a little late only).
  for (const run of [slow, fast]) {
    for (let i = 0; i < 2; i++) {
      const gap = run.arrivals[i + 1] - run.arrivals[i];
      assert.ok(gap >= run.retries[i].retryInMs! - 2, `gap ${gap} for ${run.retries[i].retryInMs}`);
    }
  }
  const slowTotal = slow.arrivals[2] - slow.arrivals[0];
  const fastTotal = fast.arrivals[2] - fast.arrivals[0];
  assert.ok(slowTotal > fastTotal + 100, `${slowTotal} vs ${fastTotal}`);
});
