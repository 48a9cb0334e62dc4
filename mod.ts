/**
 * imgtool: container images described in typed code.
 *
 * A spec imports this module by the bare name `"imgtool"` and exports images:
 *
 * ```ts
 * import { Image } from "imgtool";
 *
 * export default Image.fromDebianBase({ pythonVersion: [3, 12], name: "trainer" })
 *   .withAptPackages(["git", "curl"])
 *   .withPipPackages(["numpy==2.1.0"])
 *   .withSourceFolder("./src", "/app/src")
 *   .withWorkdir("/app");
 * ```
 *
 * Plugin authors use {@link definePlugin} and the Dockerfile helpers ({@link run},
 * {@link copy}, {@link env}, {@link shellQuote}, ...); see docs/plugins.md.
 *
 * @module
 */

// The plugin contract (layer and builder plugins, Dockerfile helpers, errors, secrets).
export * from "./contract.ts";
export {
  activeConfig,
  defaultConfig,
  loadConfig,
  parsePlatforms,
  setActiveConfig,
} from "./src/config.ts";
export { activeLock, setActiveLock } from "./src/lock.ts";
export type { ActiveLock } from "./src/lock.ts";
export { redactor } from "./src/secrets.ts";
export type { BuildSecret } from "./src/secrets.ts";
export { Image, isImage } from "./src/image.ts";
export type {
  CloneOptions,
  EnvVarsOptions,
  FromDebianBaseOptions,
  FromDockerfileOptions,
  FromUvScriptOptions,
  ImageSpec,
  IndexOptions,
  PlatformRequest,
  PoetryProjectOptions,
  ProjectInstallMode,
  SecretMountOptions,
  SourceFolderOptions,
  UvProjectOptions,
} from "./src/image.ts";
export { planImage } from "./src/plan.ts";
export type { BaseFacts, ImagePlan, PlannedLayer, PlanOverrides } from "./src/plan.ts";
export type { IgnoreRules } from "./src/ignore.ts";
export { identify, identifySync } from "./src/identify.ts";
export type { ImageIdentity } from "./src/identify.ts";
export { validateImages } from "./src/validate.ts";
export type { ValidateOptions } from "./src/validate.ts";
export { renderImage } from "./src/render.ts";
export type { RenderedImage, RenderedSection } from "./src/render.ts";
export { VERSION } from "./src/version.ts";
