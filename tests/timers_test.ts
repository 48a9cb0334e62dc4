// The registry client's timers (src/timers.ts): `after` and `every` fire as setTimeout and
// setInterval would, a cancelled one never fires, and only a waiting one holds the process.
import assert from "node:assert/strict";
import { after, every } from "../src/timers.ts";

const timers = new URL("../src/timers.ts", import.meta.url).href;

/** Run `code` (with `after` and `every` imported) in a fresh Deno; what it printed. */
async function inFreshProcess(code: string): Promise<{ stdout: string; ms: number }> {
  const started = performance.now();
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", `import { after, every } from "${timers}";\n${code}`],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(output.code, 0);
  return { stdout: new TextDecoder().decode(output.stdout), ms: performance.now() - started };
}

Deno.test("after fires once after its wait; cancelled, it never fires", async () => {
  const fired: string[] = [];
  const cancel = after(5, () => fired.push("cancelled"));
  cancel();
  const started = performance.now();
  await new Promise<void>((resolve) =>
    after(20, () => {
      fired.push("kept");
      resolve();
    })
  );
  assert.ok(performance.now() - started >= 19, "it waited");
  await new Promise<void>((resolve) => after(10, resolve));
  assert.deepEqual(fired, ["kept"]);
  // Odd waits are taken as setTimeout takes them, not refused.
  await new Promise<void>((resolve) => after(Number.NaN, resolve));
  await new Promise<void>((resolve) => after(-5, resolve));
  await new Promise<void>((resolve) => after(0.5, resolve));
  after(Number.POSITIVE_INFINITY, () => fired.push("never"))();
});

Deno.test("every ticks until stopped, also when stopped from inside a tick", async () => {
  let ticks = 0;
  await new Promise<void>((resolve) => {
    const stop = every(2, () => {
      if (++ticks === 3) {
        stop();
        resolve();
      }
    });
  });
  await new Promise<void>((resolve) => after(20, resolve));
  assert.equal(ticks, 3);
  let outside = 0;
  const stop = every(1, () => outside++);
  await new Promise<void>((resolve) => after(15, resolve));
  stop();
  const seen = outside;
  assert.ok(seen >= 1);
  await new Promise<void>((resolve) => after(15, resolve));
  assert.equal(outside, seen);
});

Deno.test("a waiting timer holds the process; a cancelled or stopped one does not", async () => {
  const waited = await inFreshProcess(`after(300, () => console.log("fired"));`);
  assert.equal(waited.stdout, "fired\n");
  // An hour-long wait, cancelled: the process ends at once (Deno's start-up, not an hour).
  const cancelled = await inFreshProcess(
    `after(3_600_000, () => console.log("fired"))();\nevery(3_600_000, () => {})();\nconsole.log("done");`,
  );
  assert.equal(cancelled.stdout, "done\n");
  assert.ok(cancelled.ms < 60_000, `ended after ${cancelled.ms} ms`);
});
