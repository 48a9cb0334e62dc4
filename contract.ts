/**
 * The plugin contract: everything a layer or builder plugin may use, and nothing of the
 * pipeline. The built-in plugins in `plugins/` import it from here; `mod.ts` (the module a
 * spec and a user's plugin import as `"imgtool"`) re-exports all of it. Because this module
 * never reaches `Image`, the built-in plugins that `Image` loads import no module that loads
 * them: `mod.ts` → `src/image.ts` → `plugins/` → `contract.ts` has no cycle.
 *
 * ```ts
 * import { definePlugin, shellQuote } from "./contract.ts";
 *
 * export const motd = definePlugin<{ readonly text: string }>({
 *   name: "motd",
 *   render: (options) => ({
 *     instructions: [`RUN printf '%s\\n' ${shellQuote(options.text)} > /etc/motd`],
 *   }),
 * });
 * ```
 *
 * @module
 */

export * from "./src/errors.ts";
export * from "./src/secret.ts";
export * from "./src/dockerfile.ts";
export * from "./src/text_safety.ts";
export { isInside, outsideProjectProblem, projectRoot } from "./src/project.ts";
export * from "./src/plugin.ts";
export { fromInstructions, isPinnedByDigest, lockedComment } from "./src/pinning.ts";
/** POSIX path helpers for plugins (no `node:path`: see `src/path.ts`). */
export * as paths from "./src/path.ts";
export type {
  BuilderEntry,
  Config,
  ConfigOverrides,
  Installer,
  LoadConfigOptions,
} from "./src/config.ts";
export * from "./src/builder.ts";
export * from "./src/exec.ts";
