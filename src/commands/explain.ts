/**
 * `imgtool explain`: why does the spec have this tag, and what changed since REF? It
 * computes each selected image's identity tree as the spec is now, reads the provenance
 * record of REF through the registry (`../provenance.ts`: the referrers API, else the
 * referrers tag schema) and prints only what differs, one line per difference naming the
 * layer (its place, the method and the spec line) and the change (`../identity_diff.ts`).
 *
 * REF is `--against`, else the URI the last pushed build of this spec on this machine
 * checked for the image (`../last_checked.ts`); with `--against`, nothing of this machine is
 * needed but the spec and its files. A REF with this spec's tag has nothing to tell: "no
 * difference". A REF the registry does not have, or that has no record (pushed by another
 * tool, or by an imgtool before records), is said plainly, exit 1.
 *
 * @module
 */

import type { Flags } from "../cli/args.ts";
import { err, out, outJson } from "../cli/output.ts";
import { ImgtoolError, UsageError } from "../errors.ts";
import { identify, type ImageIdentity } from "../identify.ts";
import {
  compareDependencies,
  compareTrees,
  describeDifference,
  type Difference,
} from "../identity_diff.ts";
import { listedTree } from "../identity_tree.ts";
import { defaultLastCheckedDir, LastChecked } from "../last_checked.ts";
import type { ImagePlan } from "../plan.ts";
import { fetchProvenance, resolveDependencies } from "../provenance.ts";
import { parseReference } from "../registry/reference.ts";
import type { RegistryClient } from "../registry/client.ts";
import { commandRegistryClient } from "./registry_client.ts";
import { loadSpecConfig, prepare } from "./prepare.ts";

/**
 * What `explain` found for one image.
 *
 * @example
 * ```ts
 * import type { Explained } from "./explain.ts";
 * const same: Explained = {
 *   image: "default",
 *   uri: "127.0.0.1:5000/app:0123",
 *   against: "127.0.0.1:5000/app:0123",
 *   same: true,
 *   differences: [],
 * };
 * console.log(same.same); // true
 * ```
 */
export interface Explained {
  /** Its export name. */
  readonly image: string;
  /** Its URI as the spec is now. */
  readonly uri: string;
  /** REF. */
  readonly against?: string;
  /** Whether REF has this spec's tag (then there are no differences). */
  readonly same?: boolean;
  /** The record read: its artifact's digest and how it was found. */
  readonly record?: { readonly digest: string; readonly via: "api" | "tag" };
  /** What differs, in chain order. */
  readonly differences?: readonly Difference[];
  /** Why there is no comparison (exit 1). */
  readonly error?: { readonly message: string; readonly hint?: string };
  /** Why the image has nothing to explain (an existing image used as is). */
  readonly note?: string;
}

/** Run `imgtool explain`. */
export async function explainCommand(specPath: string, flags: Flags): Promise<number> {
  const config = loadSpecConfig(specPath, flags);
  let plans: readonly ImagePlan[] = [];
  const registry = commandRegistryClient(config, flags, () => plans);
  try {
    const prepared = await prepare(specPath, flags, config);
    plans = prepared.plans;
    if (flags.against !== undefined && plans.length > 1) {
      throw new UsageError(
        `explain --against compares one image, and the spec has ${plans.length}: ` +
          plans.map((plan) => plan.exportName).join(", "),
        { hint: "pick one with --image NAME" },
      );
    }
    const identities = await Promise.all(plans.map(identify));
    const remembered = flags.against === undefined
      ? rememberedUris(prepared.spec.file, flags, plans, identities)
      : undefined;
    const results: Explained[] = [];
    for (const [index, plan] of plans.entries()) {
      const identity = identities[index];
      const against = flags.against ?? remembered?.get(plan);
      results.push(await explainImage(plan, identity, against, prepared.spec.file, registry));
    }
    const failed = results.some((result) => result.error !== undefined);
    if (flags.json) outJson({ ok: !failed, images: results });
    else if (results.length === 1 && results[0].error) {
      throw new ImgtoolError(results[0].error.message, { hint: results[0].error.hint });
    } else printResults(results, flags.quiet);
    return failed ? 1 : 0;
  } finally {
    await registry.close();
  }
}

/** Compare one image with REF. */
async function explainImage(
  plan: ImagePlan,
  identity: ImageIdentity,
  against: string | undefined,
  specFile: string,
  registry: RegistryClient,
): Promise<Explained> {
  const base = { image: plan.exportName, uri: identity.uri };
  if (identity.prebuilt) {
    return { ...base, note: "an existing image used as is: imgtool builds nothing for it" };
  }
  if (against === undefined) {
    return {
      ...base,
      error: {
        message: `no pushed build of image "${plan.exportName}" of this spec is remembered ` +
          "on this machine, so there is nothing to compare it with",
        hint: "name the image to compare with: --against REF (a URI a build printed, e.g. " +
          "the one `imgtool uri` gave before the change)",
      },
    };
  }
  const ref = parseReference(against);
  if (ref.digest === undefined && ref.tag === identity.tag) {
    return { ...base, against, same: true, differences: [] };
  }
  // The registry answers while this process lists the tree (the record of a digest REF may
  // yet hold this tag: then the tree goes unused). Listed, not made into records: a folder's
  // files are compared as the identity's walk lists them, without an object each.
  const fetching = fetchProvenance(registry, against);
  const listing = listedTree(plan, specFile, { afterIdentify: true });
  const [found, tree] = await Promise.all([fetching, listing]);
  if (!found) {
    return {
      ...base,
      against,
      error: {
        message: `${against} has no provenance record`,
        hint: "imgtool pushes one with every image `build --push` builds; an image pushed " +
          "by another tool, or by an imgtool before records, has none: compare with a tag " +
          "imgtool pushed",
      },
    };
  }
  const record = { digest: found.digest, via: found.via };
  const { externalParameters, resolvedDependencies } = found.statement.predicate.buildDefinition;
  if (externalParameters.tag === identity.tag) {
    return { ...base, against, same: true, record, differences: [] };
  }
  const then = resolvedDependencies.flatMap((dependency) => {
    const [algorithm, hex] = Object.entries(dependency.digest ?? {})[0] ?? [];
    return hex ? [{ reference: dependency.name, digest: `${algorithm}:${hex}` }] : [];
  });
  // Only images the record knows a digest of can have moved; asked while the trees compare.
  const known = new Set(then.map((dependency) => dependency.reference));
  const resolving = resolveDependencies(registry, plan, (reference) => known.has(reference));
  const fileDifferences = compareTrees(externalParameters.identity, tree);
  const differences = [...fileDifferences, ...compareDependencies(then, await resolving, tree)];
  return { ...base, against, same: false, record, differences };
}

/**
 * The URI the last pushed build of this spec checked for each image, by plan: with the
 * same selection of images first, then with all of them (a build of the whole spec).
 */
function rememberedUris(
  specFile: string,
  flags: Flags,
  plans: readonly ImagePlan[],
  identities: readonly ImageIdentity[],
): Map<ImagePlan, string> {
  const dir = defaultLastCheckedDir();
  const found = new Map<ImagePlan, string>();
  if (dir === undefined) return found;
  const memory = new LastChecked(dir);
  const selection = {
    spec: specFile,
    images: flags.image,
    platforms: flags.platform,
    registry: flags.registry,
  };
  const repositoryOf = (uri: string) => uri.slice(0, uri.lastIndexOf(":"));
  for (const images of [flags.image, []]) {
    const uris = memory.recall({ ...selection, images });
    for (const [index, plan] of plans.entries()) {
      if (found.has(plan)) continue;
      const uri = uris.find((uri) => repositoryOf(uri) === repositoryOf(identities[index].uri));
      if (uri !== undefined) found.set(plan, uri);
    }
  }
  return found;
}

/** The human output: what differs, a line each (the image's name first when there are several). */
function printResults(results: readonly Explained[], quiet: boolean): void {
  const several = results.length > 1;
  const prefix = (result: Explained) => several ? `${result.image}: ` : "";
  for (const result of results) {
    if (result.note) {
      if (!quiet) err(`${prefix(result)}${result.note}`);
    } else if (result.error) {
      err(`error: ${result.image}: ${result.error.message}`);
      if (result.error.hint) err(`hint: ${result.error.hint}`);
    } else if (result.same) {
      out(`${prefix(result)}no difference: ${result.against} is this spec's tag`);
    } else {
      const differences = result.differences ?? [];
      if (!quiet) err(`${prefix(result)}${result.uri} (the spec now) against ${result.against}:`);
      for (const difference of differences) {
        out(`${prefix(result)}${describeDifference(difference)}`);
      }
      if (differences.length === 0) {
        out(
          `${prefix(result)}the tags differ, but the record holds nothing that does: it was ` +
            "written by an imgtool that counted something else",
        );
      }
      if (!quiet) {
        err(
          `${prefix(result)}${differences.length} difference${differences.length === 1 ? "" : "s"}`,
        );
      }
    }
  }
}
