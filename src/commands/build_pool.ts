/**
 * `imgtool build` on a pool of builders (`[[builders]]` in imgtool.toml): what the registry
 * lacks is spread over the pool's engines by `../pool.ts`, each platform of a pushed
 * multi-platform image on an engine that builds it natively when one answers; per-platform
 * tags are joined into one index, and each image gets its provenance record and extra tags as
 * without a pool.
 *
 * @module
 */

import type { Flags } from "../cli/args.ts";
import type { BuilderContext, BuilderPlugin, EngineScheme, EngineTarget } from "../builder.ts";
import type { BuilderEntry, Config } from "../config.ts";
import { buildImage } from "../build.ts";
import { checkImage } from "../check.ts";
import { ImgtoolError, UsageError } from "../errors.ts";
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
import type { ImageIdentity } from "../identify.ts";
import { startProvenance } from "../provenance.ts";
import type { ImagePlan } from "../plan.ts";
import type { RegistryClient } from "../registry/client.ts";
import { selectBuilder } from "../select_builder.ts";
import { join } from "../path.ts";
import { type AppendSplit, appendSplit, prefixIdentity } from "../append_plan.ts";
import { appendLayers, appendOwner, AppendRefused } from "../append.ts";
import { layerMtime } from "../layer_tar.ts";
import {
  ensurePushTarget,
  failedReport,
  type ImageReport,
  isPlainHttp,
  noTags,
  type PlatformEngine,
  pointTags,
} from "./build_common.ts";

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
export interface PoolRun {
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
  /** What the engines build: the image, or the prefix of one whose last layers are appended. */
  readonly plan: ImagePlan;
  readonly identity: ImageIdentity;
  readonly label: string;
  /** The image itself when the engines build its prefix: the rest is appended after. */
  readonly appendTo?: { plan: ImagePlan; identity: ImageIdentity; split: AppendSplit };
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
export async function buildOnPool(
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
    ensurePushTarget(plan, flags);
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
    const perPlatform = flags.push && plan.info.platforms.length > 1 && !plan.spec.localBuilder;
    // Layers that only add files and settings go through the registry: on the prefix found
    // there (no engine at all), else on the prefix the pool builds first.
    const split = flags.push && config.append && !flags.noAppend && !plan.spec.localBuilder
      ? await appendableOnPool(plan, identity, registry)
      : undefined;
    if (split) {
      const said = (line: string) => progress(`${label}: ${line}`);
      const found = flags.force
        ? undefined
        : await registry.check(split.prefixUri, [...plan.info.platforms]);
      if (found?.exists) {
        const started = performance.now();
        try {
          said(`the layers before them are in the registry (${split.prefixUri})`);
          const provenance = startProvenance(registry, plan, identity, run.specFile, said);
          const { filesChecked, ...image } = await appendLayers(
            split,
            identity.uri,
            appendOptions(plan, registry, said),
          );
          said(`appended ${split.layers.length} layer(s) through the registry: ${image.digest}`);
          // The prefix was found: the appended files are all the build took from disk.
          await provenance.push(image, { filesChecked });
          const tagged = await pointTags(registry, identity, extraTags, label, progress);
          reports.set(plan, {
            ...base,
            status: "built",
            builder: "registry",
            appended: split.layers.length,
            ...tagged,
            seconds: seconds(started),
          });
          progress(`${label}: built and pushed in ${seconds(started)}s`);
          continue;
        } catch (error) {
          if (!(error instanceof AppendRefused)) {
            if (run.signal.aborted || !(error instanceof ImgtoolError) || error.exitCode === 2) {
              throw error;
            }
            reports.set(plan, failedReport(base, error, seconds(started), label, flags));
            continue;
          }
          said(`cannot append (${error.message}): the pool builds the whole image`);
        }
      } else {
        toBuild.push({
          plan: split.prefix,
          identity: prefixIdentity(identity, split),
          label,
          split: perPlatform,
          appendTo: { plan, identity, split },
        });
        continue;
      }
    }
    toBuild.push({ plan, identity, label, split: perPlatform });
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
  // An image whose prefix the pool builds is the image (appended to) for those based on it.
  const byUri = new Map(
    toBuild.map((image) => [(image.appendTo ?? image).identity.uri, image]),
  );
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
    const { label } = image;
    const { plan, identity } = image.appendTo ?? image;
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
        ...(image.appendTo ? { appended: image.appendTo.split.layers.length } : {}),
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
      const { label } = image;
      const results = [...done.values()];
      if (results.every((result) => result.status === "done" && result.result === "exists")) return;
      const said = (line: string) => progress(`${label}: ${line}`);
      if (image.split) {
        const parts = units.filter((unit) => unit.image === image)
          .map((unit) => ({ reference: unit.reference, platform: unit.platforms[0] }));
        const digest = await registry.putIndex(image.identity.uri, parts);
        said(`joined ${parts.map((part) => part.platform).join(", ")} into one index (${digest})`);
      }
      const { plan, identity } = image.appendTo ?? image;
      const provenance = flags.push
        ? startProvenance(registry, plan, identity, run.specFile, said)
        : undefined;
      if (image.appendTo) {
        const { split } = image.appendTo;
        // A refusal here (a base whose user is a name) fails the image: the check before the
        // pool was given the work looks at the same user and should have kept it whole.
        const { digest } = await appendLayers(
          split,
          identity.uri,
          appendOptions(plan, registry, said),
        );
        said(`appended ${split.layers.length} layer(s) through the registry: ${digest}`);
      }
      await provenance?.push();
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

/**
 * The split of an image for appending on a pool, or `undefined` when it is built whole: the
 * engines build only the prefix, so an image that cannot be appended must be known before
 * they are given the work. Its files belong to the user the image runs as when the first
 * appended layer comes: a user by name (not numbers, not root) keeps it whole, as
 * {@link appendLayers} would refuse it.
 */
async function appendableOnPool(
  plan: ImagePlan,
  identity: ImageIdentity,
  registry: RegistryClient,
): Promise<AppendSplit | undefined> {
  const split = appendSplit(plan, identity);
  if (!split) return undefined;
  let user = plan.layers[split.layers[0].index].context.state.user;
  if (user === undefined && plan.baseReference !== undefined) {
    const config = await registry.imageConfig(plan.baseReference, plan.info.platforms[0])
      .catch(() => undefined);
    user = config?.user;
  }
  return user !== undefined && appendOwner(user) === undefined ? undefined : split;
}

function appendOptions(plan: ImagePlan, registry: RegistryClient, said: (line: string) => void) {
  return {
    registry,
    ignore: plan.ignore,
    epoch: layerMtime(Deno.env.get("SOURCE_DATE_EPOCH")),
    progress: said,
  };
}
