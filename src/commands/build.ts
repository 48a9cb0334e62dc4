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
import type { BuilderContext, BuilderPlugin, EngineScheme, EngineTarget } from "../builder.ts";
import type { BuilderEntry, Config } from "../config.ts";
import { buildImage } from "../build.ts";
import { checkImage } from "../check.ts";
import { type Diagnostic, ImgtoolError, UsageError } from "../errors.ts";
import { affinityKey, defaultEngineAffinityDir, EngineAffinity } from "../engine_affinity.ts";
import type { Platform } from "../plugin.ts";
import {
  type GroupOutcome,
  NoEngineError,
  type PoolEngine,
  type PoolGroup,
  type PoolUnit,
  runPool,
  type UnitOutcome,
} from "../pool.ts";
import { exec } from "../exec.ts";
import { identify, type ImageIdentity } from "../identify.ts";
import { recordProvenance } from "../provenance.ts";
import type { ImagePlan } from "../plan.ts";
import type { RegistryClient } from "../registry/client.ts";
import { isLoopback } from "../registry/http.ts";
import { parseReference } from "../registry/reference.ts";
import { defaultTagCacheDir, FileTagCache } from "../registry/tag_cache.ts";
import { selectBuilder } from "../select_builder.ts";
import { defaultLastCheckedDir, LastChecked } from "../last_checked.ts";
import { join, resolve } from "../path.ts";
import { ensureLocked } from "../lock_check.ts";
import { ensureValid, loadSpecConfig, prepare } from "./prepare.ts";
import { commandRegistryClient } from "./registry_client.ts";

/** How one image ended. */
export interface ImageReport {
  /** Its export name. */
  readonly image: string;
  /** Its URI. */
  readonly uri: string;
  /** Its platforms. */
  readonly platforms: readonly string[];
  /** What happened. */
  readonly status: "built" | "skipped" | "failed";
  /** Why (for skipped and failed). */
  readonly reason?: string;
  /** How to fix a failure. */
  readonly hint?: string;
  /** The tail of the failing step's output. */
  readonly output?: string;
  /** The builder that built it. */
  readonly builder?: string;
  /** The engine of the pool that built it, when one built every platform of it. */
  readonly engine?: string;
  /** With a pool of builders: the engine of each platform (several when the image was split). */
  readonly engines?: readonly PlatformEngine[];
  /** The extra tags pointed at it (`<registry>/<name>:NAME`), when extra tags were asked for. */
  readonly tags?: readonly string[];
  /** Seconds spent on it. */
  readonly seconds: number;
}

/** Which engine of a pool built one platform of an image. */
export interface PlatformEngine {
  /** The platform (or platforms, comma-separated, when one engine built them together). */
  readonly platform: string;
  /** The engine's name (`[[builders]] name`). */
  readonly engine: string;
  /** Whether the engine emulated the platform (no engine of the pool builds it natively). */
  readonly emulated: boolean;
}

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
    if (!flags.json) reportWarnings(warnings);
    const identities = new Map<ImagePlan, ImageIdentity>();
    for (const plan of plans) identities.set(plan, await identify(plan));
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
      if (flags.push && !plan.info.registry) {
        throw new ImgtoolError(`image "${plan.exportName}" has no registry to push to`, {
          hint:
            "set registry in the image (registry: ...), in imgtool.toml, IMGTOOL_REGISTRY or --registry",
          exitCode: 2,
        });
      }
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
      builder ??= await builderFor(plan);
      progress(
        `${label}: building for ${plan.info.platforms.join(", ")} with ${builder.name}${
          flags.push ? ", then pushing" : ""
        }`,
      );
      const said = (line: string) => progress(`${label}: ${line}`);
      await buildImage(plan, identity, builder, context, {
        push: flags.push,
        insecureRegistry: isPlainHttp(identity.uri, config.insecureRegistries),
        signal,
        output: (line) => progress(`    | ${line}`),
        progress: said,
      });
      // Its provenance record goes with it; without one, the image fails.
      if (flags.push) await recordProvenance(registry, plan, identity, specFile, said);
      const tagged = await pointTags(registry, identity, extraTags, label, progress);
      const done = report("built", { builder: builder.name, ...tagged });
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

/** Is the registry of `uri` reached over plain HTTP (loopback, or configured insecure)? */
function isPlainHttp(uri: string, insecure: readonly string[]): boolean {
  const { registry } = parseReference(uri);
  return isLoopback(registry) || insecure.includes(registry);
}

/** The extra tags of a pushed build: `--tag` when given, else the `tags` setting. */
function wantedTags(flags: Flags, config: Config): readonly string[] {
  const given = flags.tag ?? [];
  return given.length > 0 ? given : config.tags ?? [];
}

/** The `tags` of a report for an image no extra tag was pointed at. */
function noTags(tags: readonly string[]): { tags?: readonly string[] } {
  return tags.length > 0 ? { tags: [] } : {};
}

/**
 * Point each of `tags` at the manifest or index the content tag of `identity` names (its
 * bytes put under each tag: no rebuild, no blob upload); the `tags` of its report. A
 * registry that refuses is thrown, and is the image's failure.
 */
async function pointTags(
  registry: RegistryClient,
  identity: ImageIdentity,
  tags: readonly string[],
  label: string,
  progress: (line: string) => void,
): Promise<{ tags?: readonly string[] }> {
  if (tags.length === 0) return {};
  const repository = identity.uri.slice(0, identity.uri.lastIndexOf(":"));
  const tagged: string[] = [];
  for (const tag of tags) {
    await registry.tag(identity.uri, tag);
    tagged.push(`${repository}:${tag}`);
    progress(`${label}: tagged ${repository}:${tag}`);
  }
  return { tags: tagged };
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

// ---------------------------------------------------------------------------------------------
// A pool of builders (`[[builders]]`): the images and their platforms spread over engines.

/**
 * The engines `build` spreads its work over: every `[[builders]]` entry when no builder is
 * named (`auto`), the one entry `--builder NAME` (or the `builder` setting) names; none
 * without entries, or when a builder plugin is named (which builds as without a pool).
 */
export function poolEntries(config: Config): readonly BuilderEntry[] | undefined {
  const entries = config.builders ?? [];
  if (entries.length === 0) return undefined;
  if (config.builder === "auto") return entries;
  const named = entries.find((entry) => entry.name === config.builder);
  return named ? [named] : undefined;
}

/** How each engine of the pool fared, for `--json`. */
export interface EngineStatus {
  /** The `[[builders]]` entry's name. */
  readonly name: string;
  /** Its address, or `default` for the plugin's own default engine. */
  readonly host: string;
  /** Its builder plugin. */
  readonly plugin: string;
  /** Whether it answered; `null` when it was never asked (nothing was built on it). */
  readonly answered: boolean | null;
  /** What it said when it did not answer. */
  readonly reason?: string;
}

/** An engine of the pool with the plugin and context that build on it. */
interface PoolMember {
  readonly engine: PoolEngine;
  readonly builder: BuilderPlugin;
  readonly context: BuilderContext;
  readonly entry?: BuilderEntry;
}

/** How long a probe may take before its engine counts as not answering. */
const PROBE_SECONDS = 30;

/** The name of the implicit engine that builds `withLocalV2()` images: never an entry's. */
const localEngineName = (builder: BuilderPlugin) => `local:${builder.name}`;

/**
 * The members of the pool: each entry's plugin (checked to exist, to reach the entry's kind
 * of address, and to find its TLS files) with a context aimed at its engine.
 */
export function poolMembers(
  entries: readonly BuilderEntry[],
  builders: readonly BuilderPlugin[],
  config: Config,
  context: BuilderContext,
): PoolMember[] {
  const file = config.file ?? "imgtool.toml";
  const names = builders.map((builder) => builder.name);
  return entries.map((entry) => {
    const at = `${file}: [[builders]] ${JSON.stringify(entry.name)}`;
    const builder = builders.find((candidate) => candidate.name === entry.plugin);
    if (!builder) {
      throw new UsageError(
        `${at}: plugin ${JSON.stringify(entry.plugin)} is not a builder plugin`,
        {
          hint: `name one of the builder plugins: ${names.join(", ")}`,
        },
      );
    }
    if (names.includes(entry.name)) {
      throw new UsageError(
        `${at}: the name is also a builder plugin's, so --builder ${entry.name} would be ambiguous`,
        { hint: `rename the entry (e.g. name = "${entry.name}-1")` },
      );
    }
    if (entry.host !== undefined) {
      const scheme = entry.host.slice(0, entry.host.indexOf(":"));
      const reaches = builder.engineSchemes ?? [];
      if (!reaches.includes(scheme as EngineScheme)) {
        const able = builders.filter((other) =>
          other.engineSchemes?.includes(scheme as EngineScheme)
        )
          .map((other) => other.name);
        throw new UsageError(
          `${at}: plugin ${builder.name} cannot build on ${entry.host}: ${
            reaches.length === 0
              ? "it builds only on this machine"
              : `it reaches ${reaches.join(", ")} engines only`
          }`,
          {
            hint: `remove host to build with ${builder.name} on this machine` +
              (able.length > 0 ? `, or use a plugin that reaches it (${able.join(", ")})` : ""),
          },
        );
      }
    }
    if (entry.certPath !== undefined) {
      const missing = ["ca.pem", "cert.pem", "key.pem"].filter((name) =>
        !isFile(join(entry.certPath!, name))
      );
      if (missing.length > 0) {
        throw new UsageError(`${at}: cert_path ${entry.certPath} has no ${missing.join(", ")}`, {
          hint:
            "point cert_path at the folder of the engine's TLS client files (ca.pem, cert.pem, " +
            "key.pem), as DOCKER_CERT_PATH would",
        });
      }
    }
    const engine: EngineTarget = {
      name: entry.name,
      ...(entry.host === undefined ? {} : { host: entry.host }),
      ...(entry.certPath === undefined ? {} : { certPath: entry.certPath }),
      ...(entry.tlsVerify === undefined ? {} : { tlsVerify: entry.tlsVerify }),
    };
    return {
      engine: {
        name: entry.name,
        where: entry.host ?? `the default engine of ${builder.name}`,
        platforms: entry.platforms,
        jobs: entry.jobs,
      },
      builder,
      context: { ...context, engine },
      entry,
    };
  });
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** The platform of this machine, as images name it (the native one of a local builder). */
function hostPlatform(): Platform {
  return Deno.build.arch === "aarch64" ? "linux/arm64" : "linux/amd64";
}

/** What {@link buildOnPool} needs of the command's run. */
interface PoolRun {
  readonly flags: Flags;
  readonly registry: RegistryClient;
  readonly builders: () => Promise<readonly BuilderPlugin[]>;
  readonly signal: AbortSignal;
  readonly config: Config;
  readonly context: BuilderContext;
  readonly specFile: string;
  readonly extraTags: readonly string[];
  readonly progress: (line: string) => void;
}

/** One image to build on the pool. */
interface PoolImage {
  readonly plan: ImagePlan;
  readonly identity: ImageIdentity;
  readonly label: string;
  /** Its platforms built each on its own and joined into one index (pushed, several). */
  readonly split: boolean;
  started?: number;
  ended?: number;
  tags?: { tags?: readonly string[] };
}

/** A unit of the pool with what it builds. */
interface ImageUnit extends PoolUnit {
  readonly image: PoolImage;
  /** The platforms it builds (one when split). */
  readonly platforms: readonly Platform[];
  /** The reference it produces: the image's URI, or its per-platform tag when split. */
  readonly reference: string;
}

/**
 * A per-platform tag of a split image (`repo:tag-linux-arm64`), pushed by one engine and
 * joined with the others into the image's index; it stays in the repository.
 */
export function platformReference(uri: string, platform: Platform): string {
  return `${uri}-${platform.replaceAll("/", "-")}`;
}

/**
 * Check, build and report `ordered` on the pool `entries`: every image the registry lacks
 * (or, without `--push`, the engine it lands on lacks) is built, its platforms spread over
 * the engines (`../pool.ts`), and each split image's platforms joined into one index.
 */
async function buildOnPool(
  ordered: readonly ImagePlan[],
  identities: ReadonlyMap<ImagePlan, ImageIdentity>,
  entries: readonly BuilderEntry[],
  run: PoolRun,
): Promise<{ reports: ImageReport[]; engines: EngineStatus[] }> {
  const { flags, registry, config, progress, extraTags } = run;
  const reports = new Map<ImagePlan, ImageReport>();
  const startedAt = performance.now();
  const seconds = (from: number, to = performance.now()) => Math.round((to - from) / 100) / 10;
  const toBuild: PoolImage[] = [];
  // First what needs no engine: existing bases, and (pushed builds) what the registry has.
  for (const [index, plan] of ordered.entries()) {
    const started = performance.now();
    const identity = identities.get(plan)!;
    const label = `[${index + 1}/${ordered.length}] ${plan.exportName} ${identity.uri}`;
    const base = { image: plan.exportName, uri: identity.uri, platforms: plan.info.platforms };
    if (identity.prebuilt) {
      progress(`${label}: an existing image, used as is`);
      if (extraTags.length > 0) progress(`${label}: extra tags are not applied to it`);
      reports.set(plan, {
        ...base,
        status: "skipped",
        reason: "existing base image, no layers",
        ...noTags(extraTags),
        seconds: seconds(started),
      });
      continue;
    }
    if (flags.push && !plan.info.registry) {
      throw new ImgtoolError(`image "${plan.exportName}" has no registry to push to`, {
        hint:
          "set registry in the image (registry: ...), in imgtool.toml, IMGTOOL_REGISTRY or --registry",
        exitCode: 2,
      });
    }
    if (flags.push && !flags.force) {
      try {
        progress(`${label}: checking the registry`);
        const found = await checkImage(plan, identity, { push: true, registry });
        if (found.exists) {
          progress(`${label}: exists (${found.where}), skipped`);
          const tagged = await pointTags(registry, identity, extraTags, label, progress);
          reports.set(plan, {
            ...base,
            status: "skipped",
            reason: "exists in the registry",
            ...tagged,
            seconds: seconds(started),
          });
          continue;
        }
      } catch (error) {
        if (run.signal.aborted || !(error instanceof ImgtoolError) || error.exitCode === 2) {
          throw error;
        }
        reports.set(plan, failedReport(base, error, seconds(started), label, flags));
        continue;
      }
    }
    toBuild.push({
      plan,
      identity,
      label,
      split: flags.push && plan.info.platforms.length > 1 && !plan.spec.localBuilder,
    });
  }
  if (toBuild.length === 0) {
    return { reports: ordered.map((plan) => reports.get(plan)!), engines: [] };
  }

  const all = await run.builders();
  const members = poolMembers(entries, all, config, run.context);
  // withLocalV2() images keep their meaning: the local builder builds them, not the pool.
  if (toBuild.some(({ plan }) => plan.spec.localBuilder)) {
    const local = await selectBuilder(all, "auto", run.context, { local: true });
    members.push({
      engine: {
        name: localEngineName(local),
        where: "this machine",
        platforms: [hostPlatform()],
        jobs: 1,
      },
      builder: local,
      context: run.context,
    });
  }
  const memberOf = new Map(members.map((member) => [member.engine.name, member]));
  const poolNames = members.filter((member) => member.entry).map((member) => member.engine.name);
  const localNames = members.filter((member) => !member.entry).map((member) => member.engine.name);

  const units: ImageUnit[] = [];
  const groups: PoolGroup[] = [];
  const byUri = new Map(toBuild.map((image) => [image.identity.uri, image]));
  for (const image of toBuild) {
    const { plan, identity } = image;
    const engines = plan.spec.localBuilder ? localNames : poolNames;
    const base = byUri.get(plan.baseReference ?? "");
    groups.push({
      id: plan.exportName,
      after: base && base !== image ? [base.plan.exportName] : [],
    });
    const platforms = plan.info.platforms;
    const parts = image.split ? platforms.map((platform) => [platform]) : [platforms];
    for (const part of parts) {
      const platform = part.join(",");
      units.push({
        id: `${plan.exportName} ${platform}`,
        group: plan.exportName,
        platform: part[0],
        // Only the pool's engines are remembered: the local builder is the only choice anyway.
        ...(plan.spec.localBuilder ? {} : { affinity: affinityKey(identity.uri, platform) }),
        engines,
        image,
        platforms: part,
        reference: image.split ? platformReference(identity.uri, part[0]) : identity.uri,
      });
    }
  }
  const unitOf = new Map(units.map((unit) => [unit.id, unit]));
  const affinityDir = defaultEngineAffinityDir();
  const answered = new Map<string, { ok: boolean; reason?: string }>();

  let unexpected: unknown;
  /** Report an image once its group ended, as the run without a pool does after each image. */
  const reportImage = (
    image: PoolImage,
    group: GroupOutcome,
    outcomes: ReadonlyMap<string, UnitOutcome<"built" | "exists">>,
  ) => {
    if (run.signal.aborted) return;
    const { plan, identity, label } = image;
    const base = { image: plan.exportName, uri: identity.uri, platforms: plan.info.platforms };
    const took = seconds(image.started ?? startedAt, image.ended);
    const mine = units.filter((unit) => unit.image === image);
    const engines: PlatformEngine[] = mine.flatMap((unit) => {
      const result = outcomes.get(unit.id);
      const placement = result?.status === "done" || result?.status === "failed"
        ? result.placement
        : undefined;
      return placement
        ? [{
          platform: unit.platforms.join(","),
          engine: placement.engine,
          emulated: placement.emulated,
        }]
        : [];
    });
    const builtOn = [...new Set(engines.map((engine) => engine.engine))];
    const placed = {
      ...(builtOn.length === 1 ? { engine: builtOn[0] } : {}),
      ...(engines.length > 0 ? { engines } : {}),
    };
    if (group.status === "done") {
      const existed = mine.every((unit) => {
        const result = outcomes.get(unit.id);
        return result?.status === "done" && result.result === "exists";
      });
      if (existed) {
        reports.set(plan, {
          ...base,
          status: "skipped",
          reason: `exists in the local engine (${builtOn.join(", ")})`,
          ...placed,
          seconds: took,
        });
        return;
      }
      const plugins = [...new Set(builtOn.map((name) => memberOf.get(name)!.builder.name))];
      const done: ImageReport = {
        ...base,
        status: "built",
        builder: plugins.join(", "),
        ...placed,
        ...image.tags,
        seconds: took,
      };
      reports.set(plan, done);
      progress(
        `${label}: built${flags.push ? " and pushed" : ""} on ${
          builtOn.join(", ")
        } in ${done.seconds}s`,
      );
      return;
    }
    let error: unknown = group.status === "failed" ? group.error : undefined;
    if (group.status === "blocked") {
      error = new ImgtoolError(
        `image "${plan.exportName}" was not built: its base image "${group.by}" was not built`,
        { hint: `fix image "${group.by}" first (see its error above)` },
      );
    }
    if (error instanceof NoEngineError) {
      error = new ImgtoolError(
        `image "${plan.exportName}": ${error.message}: ${error.downs.join("; ")}`,
        { hint: "start one of these engines, or fix [[builders]] in imgtool.toml" },
      );
    }
    if (!(error instanceof ImgtoolError)) {
      unexpected ??= error;
      return;
    }
    reports.set(plan, { ...failedReport(base, error, took, label, flags), ...placed });
  };

  await runPool<"built" | "exists">({
    engines: members.map((member) => member.engine),
    groups,
    units,
    signal: run.signal,
    affinity: affinityDir === undefined ? undefined : new EngineAffinity(affinityDir),
    probe: async (engine, signal) => {
      const member = memberOf.get(engine.name)!;
      const timeout = AbortSignal.timeout(PROBE_SECONDS * 1000);
      const stop = AbortSignal.any([signal, timeout]);
      // The plugin's tools get a stop signal: an engine that hangs must not hang the build.
      const context: BuilderContext = {
        ...member.context,
        exec: (command, options) =>
          member.context.exec(command, {
            ...options,
            signal: options.signal ? AbortSignal.any([options.signal, stop]) : stop,
          }),
      };
      const probe = await member.builder.probe(context);
      const answer = timeout.aborted
        ? { ok: false as const, reason: `no answer in ${PROBE_SECONDS} s` }
        : probe.ok
        ? { ok: true as const }
        : { ok: false as const, reason: probe.reason };
      answered.set(engine.name, answer);
      return answer;
    },
    onEngineDown: (engine, reason) => {
      progress(`engine ${engine.name} at ${engine.where} does not answer: ${reason}`);
    },
    onRetry: (unit, from) => {
      const { image, platforms } = unitOf.get(unit.id)!;
      progress(
        `${image.label} ${platforms.join(",")}: ${from.name} went away during the build; ` +
          "another engine takes it",
      );
    },
    run: async (unit, placement, signal) => {
      const { image, platforms, reference } = unitOf.get(unit.id)!;
      const { plan, identity } = image;
      image.started ??= performance.now();
      const member = memberOf.get(placement.engine)!;
      const started = performance.now();
      const label = `${image.label} ${platforms.join(",")} on ${placement.engine}`;
      if (!flags.push && !flags.force) {
        progress(`${label}: checking the engine`);
        const found = await checkImage(plan, identity, {
          push: false,
          registry,
          builder: member.builder,
          builderContext: member.context,
        });
        if (found.exists) {
          progress(`${label}: exists (local), skipped`);
          return "exists";
        }
      }
      progress(
        `${label}: building with ${member.builder.name}${
          placement.emulated ? ` (emulated: ${placement.why})` : ""
        }${flags.push ? ", then pushing" : ""}`,
      );
      const said = (line: string) => progress(`${label}: ${line}`);
      await buildImage(plan, identity, member.builder, member.context, {
        push: flags.push,
        insecureRegistry: isPlainHttp(identity.uri, config.insecureRegistries),
        signal,
        output: (line) =>
          progress(
            `    ${plan.exportName} ${platforms.join(",")} on ${placement.engine} | ${line}`,
          ),
        progress: said,
        platforms,
        uri: reference,
      });
      progress(`${label}: built${flags.push ? " and pushed" : ""} in ${seconds(started)}s`);
      return "built";
    },
    finish: async (group, done) => {
      const image = toBuild.find((candidate) => candidate.plan.exportName === group.id)!;
      const { plan, identity, label } = image;
      const results = [...done.values()];
      if (results.every((result) => result.status === "done" && result.result === "exists")) return;
      const said = (line: string) => progress(`${label}: ${line}`);
      if (image.split) {
        const parts = units.filter((unit) => unit.image === image)
          .map((unit) => ({ reference: unit.reference, platform: unit.platforms[0] }));
        const digest = await registry.putIndex(identity.uri, parts);
        said(`joined ${parts.map((part) => part.platform).join(", ")} into one index (${digest})`);
      }
      if (flags.push) await recordProvenance(registry, plan, identity, run.specFile, said);
      image.tags = await pointTags(registry, identity, extraTags, label, progress);
    },
    stopsRun: (error) => error instanceof ImgtoolError && error.exitCode === 2,
    onGroupEnd: (group, outcome, outcomes) => {
      const image = toBuild.find((candidate) => candidate.plan.exportName === group.id)!;
      image.ended ??= performance.now();
      reportImage(image, outcome, outcomes);
    },
  });

  if (unexpected !== undefined) throw unexpected;
  const engines: EngineStatus[] = members.filter((member) => member.entry).map((member) => {
    const answer = answered.get(member.engine.name);
    return {
      name: member.engine.name,
      host: member.entry?.host ?? "default",
      plugin: member.builder.name,
      answered: answer?.ok ?? null,
      ...(answer?.ok === false ? { reason: answer.reason } : {}),
    };
  });
  return { reports: ordered.map((plan) => reports.get(plan)!), engines };
}

/** The report of an image that failed, said on standard error as the run without a pool does. */
function failedReport(
  base: { image: string; uri: string; platforms: readonly string[] },
  error: ImgtoolError,
  seconds: number,
  label: string,
  flags: Flags,
): ImageReport {
  const output = (error as { output?: string }).output;
  if (!flags.json) {
    err(`${label}: failed`);
    if (output) err(`--- output of the failing step ---\n${output}\n---`);
    err(`error: ${error.message}`);
    if (error.hint) err(`hint: ${error.hint}`);
  }
  return { ...base, status: "failed", reason: error.message, hint: error.hint, output, seconds };
}
