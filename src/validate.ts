/**
 * Stage "validate": every problem of every image, found at once. Runs each layer's
 * `validate` hook, checks the secrets each layer asks for have a value, checks that no
 * file a layer names is excluded by the image's `.dockerignore`, and checks the image-level
 * settings. Problems carry the image, the layer, the method and the spec line. A plugin's
 * diagnostic may be a warning (`severity: "warning"`): it goes the same way, marked so, and
 * callers that ask for warnings report them without failing.
 *
 * @module
 */

import { canonicalJson, collectRefs } from "./canonical.ts";
import { type Diagnostic, isWarning } from "./errors.ts";
import { contribution } from "./identify.ts";
import { hookProblem, type ImagePlan, layerProblem, type PlannedLayer } from "./plan.ts";
import type { ValidateContext } from "./plugin.ts";
import { secretSource } from "./secrets.ts";
import { optionTextProblems } from "./text_safety.ts";
import { outsideProjectProblem } from "./project.ts";

/**
 * Validate planned images; returns their problems, in spec order (none means valid). With
 * `options.warnings`, the warnings too ({@link isWarning}); they never make a spec invalid.
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage, validateImages } from "imgtool";
 * const plan = planImage(Image.fromBase("debian:bookworm").withEnvVars({ "1BAD": "x" }), "default", defaultConfig());
 * console.log((await validateImages([plan])).length); // 1
 * // A literal `$PATH` without `expand` is valid, and worth a warning.
 * const literal = Image.fromBase("debian:bookworm").withEnvVars({ PATH: "/opt/bin:$PATH" });
 * const warned = await validateImages([planImage(literal, "default", defaultConfig())], { warnings: true });
 * console.log(warned.map((d) => d.severity)); // [ "warning" ]
 * ```
 */
export async function validateImages(
  plans: readonly ImagePlan[],
  options: ValidateOptions = {},
): Promise<Diagnostic[]> {
  const perImage = await Promise.all(plans.map((plan) => validatePlan(plan, options)));
  const found = perImage.flat();
  return options.warnings ? found : found.filter((d) => !isWarning(d));
}

/**
 * Options for {@link validateImages}.
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage, validateImages, type ValidateOptions } from "imgtool";
 * const image = Image.fromBase("debian:bookworm")
 *   .withCommands("make deploy", { secretMounts: "DEPLOY_TOKEN" });
 * const plan = planImage(image, "default", defaultConfig());
 * // Like `imgtool dockerfile`: nothing is built, so secrets need no values.
 * const options: ValidateOptions = { secretValues: false };
 * console.log((await validateImages([plan], options)).length); // 0
 * ```
 */
export interface ValidateOptions {
  /**
   * Require every secret to have a value (default true). Commands that do not build,
   * like `imgtool dockerfile`, need no values.
   */
  readonly secretValues?: boolean;
  /**
   * Also return the warnings (default false): diagnostics with `severity: "warning"`, which
   * point out what is valid but rarely meant, such as a literal `$PATH` in an environment
   * value.
   */
  readonly warnings?: boolean;
}

async function validatePlan(plan: ImagePlan, options: ValidateOptions): Promise<Diagnostic[]> {
  const problems: Diagnostic[] = [...plan.problems, ...imageProblems(plan, options)];
  const perLayer = await Promise.all(
    plan.layers.map((planned, index) => validateLayer(plan, planned, index, options)),
  );
  return [...problems, ...perLayer.flat()];
}

async function validateLayer(
  plan: ImagePlan,
  planned: PlannedLayer,
  index: number,
  validation: ValidateOptions,
): Promise<Diagnostic[]> {
  const { layer } = planned;
  const { plugin, options } = layer;
  const problem = (p: { message: string; hint?: string; file?: string }) =>
    layerProblem(plan.exportName, layer, index, p);
  const problems: Diagnostic[] = [];
  const context: ValidateContext = {
    ...planned.context,
    isIgnored: (path) => plan.ignore.ignores(planned.context.resolve(path)),
    outsideProject: (path, namedIn) =>
      outsideProjectProblem(
        planned.context.resolve(path),
        namedIn,
        planned.context.projectRoot,
        plan.config.allowedPaths,
      ),
  };

  // Before the plugin's own checks, which may parse the strings (URL parsers drop line breaks).
  for (const found of optionTextProblems(options, plugin.literalOptions)) {
    problems.push(problem(found));
  }
  try {
    for (const found of (await plugin.validate?.(options, context)) ?? []) {
      // A plugin's warning stays one; any other severity a plugin writes is an error.
      const { severity: _, ...said } = problem(found);
      problems.push(isWarning(found) ? { ...said, severity: "warning" } : said);
    }
  } catch (error) {
    problems.push(hookProblem(plan.exportName, layer, index, "validate", error));
  }

  try {
    for (const secret of plugin.secrets?.(options, planned.context) ?? []) {
      const described = secret.problems();
      for (const message of described) problems.push(problem({ message, hint: SECRET_HINT }));
      // A secret without a valid name has no variable to look for.
      if (
        described.length === 0 && validation.secretValues !== false &&
        !secretSource(secret.id, plan.config)
      ) {
        problems.push(problem({
          message: `secret ${secret.id} has no value`,
          hint:
            `set the environment variable ${secret.id}, or name a file for it in imgtool.toml ` +
            `([secrets] dir, or [secrets.files] ${secret.id} = "path")`,
        }));
      }
    }
  } catch (error) {
    problems.push(hookProblem(plan.exportName, layer, index, "secrets", error));
  }

  try {
    const value = contribution(planned);
    canonicalJson(value, () => null); // throws for values the identity cannot encode
    for (const ref of collectRefs(value)) {
      if (plan.ignore.ignores(ref.path)) {
        problems.push(problem({
          message: `${ref.path} is excluded by the image's .dockerignore rules`,
          hint: "remove the pattern that matches it, or add a ! exception for it",
          file: ref.path,
        }));
      }
    }
  } catch (error) {
    problems.push(hookProblem(plan.exportName, layer, index, "identify", error));
  }
  return problems;
}

const SECRET_HINT = "name the secret with letters, digits, _ and - (not starting with a digit), " +
  'e.g. secretMounts: "GITHUB_PAT"; a mount is an absolute path, an asEnvVar a variable name';

// Docker's rules for repository names and tags.
const NAME = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const REGISTRY = /^[A-Za-z0-9.-]+(?::\d+)?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

function imageProblems(plan: ImagePlan, validation: ValidateOptions): Diagnostic[] {
  const problems: Diagnostic[] = [];
  const { info } = plan;
  // Image-level settings are given where the image starts: point there.
  const origin = plan.spec.layers[0]?.origin;
  const callSite = origin?.file
    ? `${origin.file}${origin.line ? `:${origin.line}` : ""}`
    : undefined;
  const add = (message: string, hint: string) =>
    problems.push({ image: plan.exportName, message, hint, callSite });
  if (info.name !== undefined && !NAME.test(info.name)) {
    add(
      `image name ${JSON.stringify(info.name)} is not a valid repository name`,
      "use lowercase letters, digits, and . _ - / between them",
    );
  }
  if (info.registry !== undefined && !REGISTRY.test(info.registry)) {
    add(
      `registry ${JSON.stringify(info.registry)} is not a valid registry`,
      "use host[:port][/namespace], e.g. ghcr.io/acme or 127.0.0.1:5000",
    );
  }
  const [major, minor] = info.pythonVersion;
  if (!Number.isInteger(major) || !Number.isInteger(minor) || major < 3 || minor < 0) {
    add(
      `Python version ${info.pythonVersion.join(".")} is not valid`,
      "give [major, minor], e.g. [3, 12]",
    );
  }
  for (const platform of info.platforms) {
    if (platform !== "linux/amd64" && platform !== "linux/arm64") {
      add(`unknown platform ${JSON.stringify(platform)}`, 'use "linux/amd64" or "linux/arm64"');
    }
  }
  const registrySecret = plan.spec.registrySecret;
  if (registrySecret) {
    const described = registrySecret.problems();
    for (const message of described) add(message, "fix the registrySecret");
    if (
      described.length === 0 && validation.secretValues !== false &&
      !secretSource(registrySecret.id, plan.config)
    ) {
      add(
        `registry secret ${registrySecret.id} has no value`,
        `set the environment variable ${registrySecret.id} to user:password (or a token)`,
      );
    }
  }
  return problems;
}
