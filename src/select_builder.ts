/**
 * Choosing the builder for an image: the one named by `--builder`, configuration or
 * `IMGTOOL_BUILDER`, else the first built-in that can run here. An image made with
 * `withLocalV2()` always gets a local builder. With none available, the error says what to
 * install.
 *
 * @module
 */

import type { BuilderContext, BuilderPlugin } from "./builder.ts";
import { ImgtoolError, UsageError } from "./errors.ts";

/** Pick a builder by name (`auto` to detect), or a local one when `local` is set. */
export async function selectBuilder(
  builders: readonly BuilderPlugin[],
  name: string,
  context: BuilderContext,
  options: { local: boolean },
): Promise<BuilderPlugin> {
  const known = builders.map((builder) => builder.name);
  if (name !== "auto" && !known.includes(name)) {
    throw new UsageError(`unknown builder ${JSON.stringify(name)}`, {
      hint: `builders: ${known.join(", ")}, auto`,
    });
  }
  const named = builders.find((builder) => builder.name === name);
  // withLocalV2 overrides the configured builder unless that one is local already.
  const candidates = options.local
    ? (named?.local ? [named] : builders.filter((builder) => builder.local))
    : (named ? [named] : builders);
  const refusals: string[] = [];
  for (const builder of candidates) {
    const probe = await builder.probe(context);
    if (probe.ok) return builder;
    refusals.push(`${builder.name}: ${probe.reason}\n    fix: ${probe.hint}`);
  }
  throw new ImgtoolError(
    `no ${options.local ? "local " : ""}builder can run here:\n  ${refusals.join("\n  ")}`,
    { hint: "install one of them, or pick another with --builder", exitCode: 1 },
  );
}
