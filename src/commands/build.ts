/**
 * `imgtool build`: the whole pipeline. Load and plan the spec, validate it, compute every
 * image's identity, check what already exists (in the registry when pushing, in the local
 * engine otherwise), build and push what is missing, and report each image as built,
 * skipped or failed. It names the configuration file it used (`config: PATH`, or
 * `config: none (defaults)`, on standard error; `config` in `--json` output, `null` for
 * none). Validation warnings are printed before the build (in `--json` output, as
 * `warnings`) and never stop it. With `--push`, each image built is pushed with its
 * provenance record beside it (`../provenance.ts`), and the extra tags (`--tag`, else the
 * `tags` setting) are pointed at each image once its content tag is in the registry.
 *
 * @module
 */

import type { Flags } from "../cli/args.ts";
import { diagnosticsJson, err, out, outJson, reportWarnings } from "../cli/output.ts";
import type { BuilderContext, BuilderPlugin } from "../builder.ts";
import type { Config } from "../config.ts";
import { buildImage } from "../build.ts";
import { checkImage } from "../check.ts";
import { type Diagnostic, ImgtoolError } from "../errors.ts";
import { exec } from "../exec.ts";
import { identify, type ImageIdentity } from "../identify.ts";
import { collectGarbage } from "../garbage.ts";
import { startProvenance } from "../provenance.ts";
import type { ImagePlan } from "../plan.ts";
import type { RegistryClient } from "../registry/client.ts";
import { defaultTagCacheDir, FileTagCache } from "../registry/tag_cache.ts";
import { selectBuilder } from "../select_builder.ts";
import { defaultLastCheckedDir, LastChecked } from "../last_checked.ts";
import { resolve } from "../path.ts";
import { ensureLocked } from "../lock_check.ts";
import { ensureValid, loadSpecConfig, prepare } from "./prepare.ts";
import { commandRegistryClient } from "./registry_client.ts";
import {
  ensurePushTarget,
  type ImageReport,
  isPlainHttp,
  noTags,
  pointTags,
} from "./build_common.ts";
import { appendSplit } from "../append_plan.ts";
import { buildByAppending } from "../append.ts";
import { layerMtime } from "../layer_tar.ts";
import { buildOnPool, type EngineStatus, poolEntries } from "./build_pool.ts";

export type { ImageReport, PlatformEngine } from "./build_common.ts";

/** Run `imgtool build` with the builder plugins `builders` loads (when it needs one). */
export async function buildCommand(
  specPath: string,
  flags: Flags,
  builders: () => Promise<readonly BuilderPlugin[]>,
  signal: AbortSignal,
): Promise<number> {
  const config = loadSpecConfig(specPath, flags);
  let plans: readonly ImagePlan[] = [];
  const tagCacheDir = defaultTagCacheDir();
  const registry = commandRegistryClient(config, flags, () => plans, {
    tagCache: tagCacheDir === undefined ? undefined : new FileTagCache(tagCacheDir),
  });
  // A pushed build asks the registry first. Ask now for the tags this spec had last time,
  // and connect for the others, so that the registry's answers overlap loading the spec,
  // validating and hashing; the check below still asks for exactly the computed tags.
  const asksRegistry = flags.push && !flags.force;
  const lastCheckedDir = asksRegistry ? defaultLastCheckedDir() : undefined;
  const lastChecked = lastCheckedDir === undefined ? undefined : new LastChecked(lastCheckedDir);
  const selection = {
    spec: resolve(Deno.cwd(), specPath),
    images: flags.image,
    platforms: flags.platform,
    registry: flags.registry,
  };
  for (const uri of lastChecked?.recall(selection) ?? []) registry.prefetch(uri);
  try {
    const prepared = await prepare(specPath, flags, config);
    plans = prepared.plans;
    // Before anything is validated, checked or built, as `cargo --locked` stops.
    if (flags.locked) ensureLocked(prepared.spec, plans);
    if (asksRegistry) {
      for (const plan of plans) {
        if (plan.info.registry) registry.preconnect(`${plan.info.registry}/${plan.info.name}`);
      }
    }
    // Warnings never stop a build; `--quiet` output leaves them out.
    const warnings = await ensureValid(plans, { warnings: flags.json || !flags.quiet });
    // What listing large folders for unreadable ones left behind goes before the walks.
    collectGarbage();
    if (!flags.json) reportWarnings(warnings);
    const identities = new Map<ImagePlan, ImageIdentity>();
    for (const plan of plans) identities.set(plan, await identify(plan));
    // What the walks of large trees left behind goes before anything is built.
    collectGarbage();
    if (lastChecked) {
      const checked = plans.filter((plan) => plan.info.registry && !identities.get(plan)!.prebuilt);
      lastChecked.remember(selection, checked.map((plan) => identities.get(plan)!.uri));
    }
    return await buildPlans(plans, identities, flags, registry, builders, signal, config, {
      warnings,
      specFile: selection.spec,
    });
  } finally {
    await registry.close();
  }
}

/** Check, build and report each identified plan: the rest of {@link buildCommand}. */
async function buildPlans(
  plans: readonly ImagePlan[],
  identities: ReadonlyMap<ImagePlan, ImageIdentity>,
  flags: Flags,
  registry: RegistryClient,
  builders: () => Promise<readonly BuilderPlugin[]>,
  signal: AbortSignal,
  config: Config,
  run: { readonly warnings: readonly Diagnostic[]; readonly specFile: string },
): Promise<number> {
  const { warnings, specFile } = run;
  const progress = (line: string) => {
    if (!flags.quiet && !flags.json) err(line);
  };
  // Which settings a build used matters when they surprise: say where they came from.
  progress(`config: ${config.file ?? "none (defaults)"}`);
  const extraTags = flags.push ? wantedTags(flags, config) : [];
  const unpushedTags = flags.push ? [] : config.tags ?? [];
  if (unpushedTags.length > 0) {
    // Unlike --tag (refused without --push), a setting may serve pushed and local builds
    // alike: a local build goes on, and says what it left undone.
    progress(`note: the tags setting (${unpushedTags.join(", ")}) applies to pushed builds only`);
  }
  const context: BuilderContext = { config, registry, exec };
  const chosen = new Map<boolean, Promise<BuilderPlugin>>();
  const builderFor = (plan: ImagePlan) => {
    const local = plan.spec.localBuilder;
    let found = chosen.get(local);
    if (!found) {
      found = builders().then((all) => selectBuilder(all, config.builder, context, { local }));
      chosen.set(local, found);
    }
    return found;
  };

  const reports: ImageReport[] = [];
  const ordered = buildOrder(plans, (plan) => identities.get(plan)!.uri);
  const pool = poolEntries(config);
  if (pool) {
    const pooled = await buildOnPool(ordered, identities, pool, {
      flags,
      registry,
      builders,
      signal,
      config,
      context,
      specFile,
      extraTags,
      progress,
    });
    reports.push(...pooled.reports);
    return finishRun(reports, flags, config, warnings, progress, pooled.engines);
  }
  for (const [index, plan] of ordered.entries()) {
    const started = performance.now();
    const identity = identities.get(plan)!;
    const label = `[${index + 1}/${plans.length}] ${plan.exportName} ${identity.uri}`;
    const report = (status: ImageReport["status"], extra: Partial<ImageReport> = {}) => {
      const done: ImageReport = {
        image: plan.exportName,
        uri: identity.uri,
        platforms: plan.info.platforms,
        status,
        seconds: Math.round((performance.now() - started) / 100) / 10,
        ...extra,
      };
      reports.push(done);
      return done;
    };
    try {
      if (identity.prebuilt) {
        progress(`${label}: an existing image, used as is`);
        // Not imgtool's image, maybe not in a registry of the user's: it is not renamed.
        if (extraTags.length > 0) progress(`${label}: extra tags are not applied to it`);
        report("skipped", { reason: "existing base image, no layers", ...noTags(extraTags) });
        continue;
      }
      ensurePushTarget(plan, flags);
      // A pushed build asks the registry, so an image that exists needs no builder at all.
      let builder = flags.push ? undefined : await builderFor(plan);
      if (!flags.force) {
        progress(`${label}: checking ${flags.push ? "the registry" : "the local engine"}`);
        const found = await checkImage(plan, identity, {
          push: flags.push,
          registry,
          builder,
          builderContext: context,
        });
        if (found.exists) {
          progress(`${label}: exists (${found.where}), skipped`);
          const tagged = await pointTags(registry, identity, extraTags, label, progress);
          report("skipped", {
            reason: `exists in the ${found.where === "registry" ? "registry" : "local engine"}`,
            ...tagged,
          });
          continue;
        }
      }
      const said = (line: string) => progress(`${label}: ${line}`);
      const engineBuild = async (what: ImagePlan, as: ImageIdentity) => {
        builder ??= await builderFor(plan);
        progress(
          `${label}: building for ${what.info.platforms.join(", ")} with ${builder.name}${
            flags.push ? ", then pushing" : ""
          }`,
        );
        await buildImage(what, as, builder, context, {
          push: flags.push,
          insecureRegistry: isPlainHttp(as.uri, config.insecureRegistries),
          signal,
          output: (line) => progress(`    | ${line}`),
          progress: said,
        });
      };
      // Its provenance record starts beside the build: what does not need the image.
      const provenance = flags.push
        ? startProvenance(registry, plan, identity, specFile, said)
        : undefined;
      // Layers that only add files and settings go through the registry, on top of the
      // rest built by the engine (or found in the registry: then no engine is asked at all).
      const split = flags.push && config.append && !flags.noAppend
        ? appendSplit(plan, identity)
        : undefined;
      const appended = split &&
        await buildByAppending(identity, split, {
          registry,
          ignore: plan.ignore,
          epoch: layerMtime(Deno.env.get("SOURCE_DATE_EPOCH")),
          platforms: plan.info.platforms,
          force: flags.force,
          progress: said,
          buildPrefix: engineBuild,
        });
      if (!appended) await engineBuild(plan, identity);
      // Its provenance record goes with it; without one, the image fails.
      await provenance?.push(appended?.image, { filesChecked: appended?.filesChecked });
      const tagged = await pointTags(registry, identity, extraTags, label, progress);
      const how = appended
        ? { builder: builder?.name ?? "registry", appended: split.layers.length }
        : { builder: builder!.name };
      const done = report("built", { ...how, ...tagged });
      progress(`${label}: built${flags.push ? " and pushed" : ""} in ${done.seconds}s`);
    } catch (error) {
      if (signal.aborted) throw error;
      if (!(error instanceof ImgtoolError)) throw error;
      const output = (error as { output?: string }).output;
      report("failed", { reason: error.message, hint: error.hint, output });
      // A mistake in the spec or command line (exit 2) stops the run; a failed build does not.
      if (error.exitCode === 2) throw error;
      if (flags.json) continue;
      err(`${label}: failed`);
      if (output) err(`--- output of the failing step ---\n${output}\n---`);
      err(`error: ${error.message}`);
      if (error.hint) err(`hint: ${error.hint}`);
    }
  }

  return finishRun(reports, flags, config, warnings, progress);
}

/** Print the run's results (`--json`, or the URIs and a count); its exit status. */
function finishRun(
  reports: readonly ImageReport[],
  flags: Flags,
  config: Config,
  warnings: readonly Diagnostic[],
  progress: (line: string) => void,
  engines?: readonly EngineStatus[],
): number {
  const failed = reports.filter((r) => r.status === "failed").length;
  if (flags.json) {
    outJson({
      ok: failed === 0,
      config: config.file ?? null,
      images: reports,
      ...(engines ? { engines } : {}),
      warnings: diagnosticsJson(warnings),
    });
  } else {
    for (const r of reports) if (r.status !== "failed") out(r.uri);
    const built = reports.filter((r) => r.status === "built").length;
    const skipped = reports.filter((r) => r.status === "skipped").length;
    progress(`${built} built, ${skipped} skipped, ${failed} failed`);
  }
  return failed > 0 ? 1 : 0;
}
/** The extra tags of a pushed build: `--tag` when given, else the `tags` setting. */
function wantedTags(flags: Flags, config: Config): readonly string[] {
  const given = flags.tag ?? [];
  return given.length > 0 ? given : config.tags ?? [];
}
/**
 * The plans in build order: spec order, except that an image whose base is another image of
 * the spec (`Image.fromBase(other.uri)`) comes after that image, so its base exists first.
 */
export function buildOrder(
  plans: readonly ImagePlan[],
  uriOf: (plan: ImagePlan) => string,
): ImagePlan[] {
  const byUri = new Map(plans.map((plan) => [uriOf(plan), plan]));
  const ordered: ImagePlan[] = [];
  const visiting = new Set<ImagePlan>();
  const visit = (plan: ImagePlan) => {
    if (ordered.includes(plan) || visiting.has(plan)) return;
    visiting.add(plan);
    const base = byUri.get(plan.baseReference ?? "");
    if (base && base !== plan) visit(base);
    ordered.push(plan);
  };
  for (const plan of plans) visit(plan);
  return ordered;
}
