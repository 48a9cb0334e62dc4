/**
 * `imgtool uri`: print the URI of each selected image, one a line. Reads files to compute
 * the identity; never builds and never reaches a registry.
 *
 * @module
 */

import type { Flags } from "../cli/args.ts";
import { out, outJson } from "../cli/output.ts";
import { identify } from "../identify.ts";
import { ensureLocked } from "../lock_check.ts";
import { prepare } from "./prepare.ts";

/** Run `imgtool uri`. */
export async function uriCommand(specPath: string, flags: Flags): Promise<number> {
  const { spec, plans } = await prepare(specPath, flags);
  if (flags.locked) ensureLocked(spec, plans);
  const identities = await Promise.all(plans.map(identify));
  if (flags.json) {
    outJson(plans.map((plan, index) => ({
      image: plan.exportName,
      uri: identities[index].uri,
      tag: identities[index].tag,
      platforms: plan.info.platforms,
      prebuilt: identities[index].prebuilt,
    })));
  } else {
    for (const identity of identities) out(identity.uri);
  }
  return 0;
}
