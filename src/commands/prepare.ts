/**
 * What every spec command does first: load the configuration for the spec's folder, load
 * the spec, pick the images asked for, and plan them; and what every command that builds
 * or writes does next: validate them, files the user cannot read included.
 *
 * @module
 */

import { dirname, join, resolve } from "../path.ts";
import type { Flags } from "../cli/args.ts";
import { currentUid } from "../cache_dir.ts";
import { collectRefs, type Ref } from "../canonical.ts";
import { type Config, loadConfig, parsePlatforms, setActiveConfig } from "../config.ts";
import { type Diagnostic, isWarning, ValidationError } from "../errors.ts";
import { contribution } from "../identify.ts";
import { lockFileFor, setActiveLock } from "../lock.ts";
import type { IgnoreRules } from "../ignore.ts";
import { type LoadedSpec, loadSpec, selectImages } from "../load.ts";
import { type ImagePlan, layerProblem, planImage } from "../plan.ts";
import { validateImages, type ValidateOptions } from "../validate.ts";
import { madeGarbage } from "../garbage.ts";

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
  // Before the spec is imported: `Image.uri` in the spec pins with the same lock.
  setActiveLock(lockFileFor(specPath));
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

/**
 * Validate the plans; throws a {@link ValidationError} with every problem, in spec order:
 * the validators' and {@link unreadableInputs}, and the warnings beside them. Returns the
 * warnings of a valid spec, for the command to report; they never fail it. Warnings are
 * asked for unless `options.warnings` is false (`--quiet` output has no use for them).
 */
export async function ensureValid(
  plans: readonly ImagePlan[],
  options: ValidateOptions = {},
): Promise<Diagnostic[]> {
  const found = [
    ...await validateImages(plans, { ...options, warnings: options.warnings ?? true }),
    ...unreadableInputs(plans),
  ];
  const order = (d: Diagnostic) => plans.findIndex((plan) => plan.exportName === d.image);
  const diagnostics = found.sort((a, b) => order(a) - order(b));
  if (diagnostics.some((d) => !isWarning(d))) throw new ValidationError(diagnostics);
  return diagnostics;
}

/**
 * The files and folders the layers take from disk that the user running imgtool cannot
 * read, as problems naming the layer: a build would stop at them (`uri` counts them as it
 * counts missing files). A file is opened and closed; a folder is listed with its
 * sub-folders (one listing each, what `.dockerignore` leaves out skipped); the files in a
 * folder are not opened, so that this stays cheap for large trees.
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage } from "imgtool";
 * import { unreadableInputs } from "./prepare.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/requirements.txt`, "numpy\n");
 * const image = Image.fromDebianBase().withRequirements(`${dir}/requirements.txt`);
 * console.log(unreadableInputs([planImage(image, "default", defaultConfig())])); // []
 * ```
 */
export function unreadableInputs(plans: readonly ImagePlan[]): Diagnostic[] {
  const problems: Diagnostic[] = [];
  // Images that share layers read the same paths: look at each once (a folder once per set
  // of ignore rules, which decide what of it is read; images without rules share one look).
  const seen = new Map<string, string | undefined>();
  const rules = new Map<IgnoreRules, number>();
  for (const plan of plans) {
    plan.layers.forEach((planned, index) => {
      let refs: Ref[];
      try {
        refs = collectRefs(contribution(planned));
      } catch {
        return; // Validation reports a plugin that cannot say what it reads.
      }
      const reported = new Set<string>();
      for (const ref of refs) {
        const scope = ref.$ref === "file" || plan.ignore.empty
          ? ""
          : rules.get(plan.ignore) ?? rules.set(plan.ignore, rules.size + 1).size;
        const key = `${ref.$ref}:${scope}:${ref.path}`;
        if (!seen.has(key)) {
          seen.set(
            key,
            ref.$ref === "file" ? deniedFile(ref.path) : deniedFolder(ref.path, plan.ignore),
          );
        }
        const denied = seen.get(key);
        if (denied === undefined || reported.has(denied)) continue;
        reported.add(denied);
        problems.push(layerProblem(plan.exportName, planned.layer, index, {
          ...deniedProblem(ref, denied),
          file: denied,
        }));
      }
    });
  }
  return problems;
}

function deniedProblem(ref: Ref, denied: string): { message: string; hint: string } {
  const user = `the user running imgtool (uid ${currentUid() ?? "?"})`;
  if (ref.$ref === "file") {
    return {
      message: `cannot read ${denied}: permission denied`,
      hint: `let ${user} read it (chmod a+r ${denied}) and enter the folders above it`,
    };
  }
  return {
    message: `cannot read the folder ${denied}${
      denied === ref.path ? "" : ` (in ${ref.path})`
    }: permission denied`,
    hint: `let ${user} list and enter it (chmod a+rx ${denied}), or leave it out of the ` +
      "image with a .dockerignore rule",
  };
}

/** `path` when it is a regular file this user may not open; missing files are not asked. */
function deniedFile(path: string): string | undefined {
  try {
    // Only a regular file is opened: opening a named pipe would wait for a writer.
    if (!Deno.statSync(path).isFile) return undefined;
    Deno.openSync(path, { read: true }).close();
    return undefined;
  } catch (error) {
    return isDenied(error) ? path : undefined;
  }
}

/** The first folder under `root` (or `root` itself) this user may not list. */
function deniedFolder(root: string, ignore: IgnoreRules): string | undefined {
  const prune = !ignore.mayReinclude();
  const walk = (dir: string): string | undefined => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(dir)];
      madeGarbage(entries.length);
      // A folder that may be listed but not entered (r without x) lists fine: look inside.
      if (entries.length > 0) Deno.lstatSync(join(dir, entries[0].name));
    } catch (error) {
      return isDenied(error) ? dir : undefined;
    }
    for (const entry of entries) {
      if (!entry.isDirectory) continue;
      const path = join(dir, entry.name);
      if (prune && ignore.ignores(path, root)) continue;
      const denied = walk(path);
      if (denied !== undefined) return denied;
    }
    return undefined;
  };
  try {
    if (!Deno.statSync(root).isDirectory) return undefined;
  } catch (error) {
    return isDenied(error) ? root : undefined;
  }
  return walk(root);
}

function isDenied(error: unknown): boolean {
  return error instanceof Deno.errors.PermissionDenied ||
    ["EACCES", "EPERM"].includes((error as { code?: string })?.code ?? "");
}
