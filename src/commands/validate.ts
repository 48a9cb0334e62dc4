/**
 * `imgtool validate`: report every problem of the spec at once; exit 0 when there is none.
 *
 * @module
 */

import type { Flags } from "../cli/args.ts";
import { out, outJson } from "../cli/output.ts";
import { ensureValid, prepare } from "./prepare.ts";

/** Run `imgtool validate`. */
export async function validateCommand(specPath: string, flags: Flags): Promise<number> {
  const { plans } = await prepare(specPath, flags);
  await ensureValid(plans);
  if (flags.json) {
    outJson({ ok: true, images: plans.map((plan) => plan.exportName) });
  } else {
    out(
      `ok: ${plans.length} image${plans.length === 1 ? "" : "s"} valid (${
        plans.map((p) => p.exportName).join(", ")
      })`,
    );
  }
  return 0;
}
