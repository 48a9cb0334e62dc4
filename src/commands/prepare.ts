/**
 * What every spec command does first: load the configuration for the spec's folder, load
 * the spec, pick the images asked for, and plan them.
 *
 * @module
 */

import { dirname, resolve } from "../path.ts";
import type { Flags } from "../cli/args.ts";
import { type Config, loadConfig, parsePlatforms, setActiveConfig } from "../config.ts";
import { ValidationError } from "../errors.ts";
import { type LoadedSpec, loadSpec, selectImages } from "../load.ts";
import { type ImagePlan, planImage } from "../plan.ts";
import { validateImages, type ValidateOptions } from "../validate.ts";

/** A loaded, planned spec. */
export interface Prepared {
  /** The configuration in effect. */
  readonly config: Config;
  /** The spec. */
  readonly spec: LoadedSpec;
  /** The selected images, planned, in spec order. */
  readonly plans: readonly ImagePlan[];
}

/**
 * The configuration in effect for the spec at `specPath`: the `imgtool.toml` files from its
 * folder up, the environment and the flags. Also made the one `Image.uri` in the spec reads.
 */
export function loadSpecConfig(specPath: string, flags: Flags): Config {
  const config = loadConfig({
    startDir: dirname(resolve(Deno.cwd(), specPath)),
    overrides: { builder: flags.builder, registry: flags.registry },
  });
  setActiveConfig(config);
  return config;
}

/**
 * Load and plan the spec at `specPath` as the flags say, with the configuration
 * {@link loadSpecConfig} gives (loaded here unless given).
 */
export async function prepare(
  specPath: string,
  flags: Flags,
  config: Config = loadSpecConfig(specPath, flags),
): Promise<Prepared> {
  const platforms = flags.platform.length > 0
    ? parsePlatforms(flags.platform, "--platform")
    : undefined;
  const spec = await loadSpec(specPath);
  const plans = selectImages(spec, flags.image).map((exported) =>
    planImage(exported.image, exported.exportName, config, { platforms })
  );
  return { config, spec, plans };
}

/** Validate the plans; throws a {@link ValidationError} with every problem. */
export async function ensureValid(
  plans: readonly ImagePlan[],
  options: ValidateOptions = {},
): Promise<void> {
  const diagnostics = await validateImages(plans, options);
  if (diagnostics.length > 0) throw new ValidationError(diagnostics);
}
