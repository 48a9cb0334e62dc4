/**
 * Part of the no-op build benchmark: the same no-op `build --push`, against the same registry
 * made to look far away (bench/delay_proxy.ts), with and without the tags of the last build
 * remembered. Remembered, they are asked for before the spec loads
 * (`RegistryClient.prefetch`, src/last_checked.ts), so the registry's answer travels while
 * the spec is loaded, validated and hashed; forgotten, the one `HEAD` waits for its round trip
 * after the tag is known. No goal: it shows what the guess is worth where registries are not
 * on loopback.
 *
 * @module
 */

import { join } from "node:path";
import { defaultLastCheckedDir, LastChecked } from "../src/last_checked.ts";
import { startDelayProxy } from "./delay_proxy.ts";
import { table, timingRow } from "./lib.ts";

/** How to run the far-registry comparison. */
export interface FarRegistryOptions {
  /** The benchmark's folder, holding `spec.ts` (its image pushed already). */
  readonly dir: string;
  /** The registry's `host:port` on loopback. */
  readonly registry: string;
  /** The repository namespace the spec's images go to, below the registry. */
  readonly namespace: string;
  /** Runs `imgtool <args>` in `dir`, returning its time. */
  readonly imgtool: (...args: string[]) => Promise<{ ms: number; stderr: string }>;
  /** Timed runs of each variant. */
  readonly runs: number;
  /** The delay each way, in milliseconds. */
  readonly oneWayMs: number;
}

/**
 * Time no-op builds through a delaying proxy, with the last build's tags remembered and
 * forgotten, and print the table.
 *
 * @example
 * ```ts
 * import { farRegistry } from "./far_registry.ts";
 * console.log(typeof farRegistry); // function
 * ```
 */
export async function farRegistry(options: FarRegistryOptions): Promise<void> {
  const memoryDir = defaultLastCheckedDir();
  if (memoryDir === undefined) {
    console.log("\n  far registry: skipped (no cache folder: neither XDG_CACHE_HOME nor HOME)");
    return;
  }
  const [hostname, port] = options.registry.split(":");
  const proxy = startDelayProxy({ hostname, port: Number(port) }, options.oneWayMs);
  try {
    const registryFlag = `${proxy.host}/${options.namespace}`;
    const selection = {
      spec: join(options.dir, "spec.ts"),
      images: [],
      platforms: [],
      registry: registryFlag,
    };
    const noop = async () => {
      const ran = await options.imgtool("build", "--push", "--registry", registryFlag, "spec.ts");
      if (!/0 built, 1 skipped, 0 failed/.test(ran.stderr)) {
        throw new Error(`imgtool build was not a no-op:\n${ran.stderr}`);
      }
      return ran.ms;
    };
    // The first check of a tag at this address reads its manifest; later ones cost one HEAD.
    await noop();
    const remembered: number[] = [];
    const forgotten: number[] = [];
    for (let i = 0; i < options.runs; i++) {
      const variants = [
        async () => remembered.push(await noop()),
        async () => {
          new LastChecked(memoryDir).remember(selection, []);
          forgotten.push(await noop());
        },
      ];
      for (let k = 0; k < variants.length; k++) await variants[(i + k) % variants.length]();
    }
    console.log(
      `\n  the same no-op build against a registry ${
        2 * options.oneWayMs
      } ms away (a proxy on 127.0.0.1 holding each packet ${options.oneWayMs} ms each way):`,
    );
    table(["imgtool build --push", "median", "min", "runs (ms)"], [
      timingRow("last build's tags remembered (asked first)", remembered),
      timingRow("forgotten (asked once the tag is known)", forgotten),
    ]);
  } finally {
    await proxy.close();
  }
}
