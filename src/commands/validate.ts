/**
 * `imgtool validate`: report every problem of the spec at once; exit 0 when there is none.
 * Warnings (a literal `$PATH` in an environment value, ...) are reported too, on standard
 * error as `warning:` lines and in `--json` output as `warnings`, and leave the exit status 0.
 *
 * @module
 */

import type { Flags } from "../cli/args.ts";
import { diagnosticsJson, out, outJson, reportWarnings } from "../cli/output.ts";
import { ensureValid, prepare } from "./prepare.ts";

/** Run `imgtool validate`. */
export async function validateCommand(specPath: string, flags: Flags): Promise<number> {
  const { plans } = await prepare(specPath, flags);
  const warnings = await ensureValid(plans, { warnings: flags.json || !flags.quiet });
  if (flags.json) {
    outJson({
      ok: true,
      images: plans.map((plan) => plan.exportName),
      warnings: diagnosticsJson(warnings),
    });
  } else {
    reportWarnings(warnings);
    out(
      `ok: ${plans.length} image${plans.length === 1 ? "" : "s"} valid (${
        plans.map((p) => p.exportName).join(", ")
      })`,
    );
  }
  return 0;
}
