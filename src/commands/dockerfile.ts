/**
 * `imgtool dockerfile`: print the Dockerfile of one image, or with `--out DIR` write it with
 * its whole build context, ready for any builder (`docker build DIR`). DIR must be new or
 * empty; the context is written beside it first and moved into place whole, so a failure
 * leaves nothing half-written.
 *
 * @module
 */

import { dirname, resolve } from "../path.ts";
import type { Flags } from "../cli/args.ts";
import { out, outJson } from "../cli/output.ts";
import { writeContext } from "../context.ts";
import { UsageError } from "../errors.ts";
import { renderImage } from "../render.ts";
import { shellQuote } from "../dockerfile.ts";
import { ensureValid, prepare } from "./prepare.ts";

/** Run `imgtool dockerfile`. */
export async function dockerfileCommand(specPath: string, flags: Flags): Promise<number> {
  const { plans } = await prepare(specPath, flags);
  if (plans.length !== 1) {
    throw new UsageError(`the spec has ${plans.length} images; dockerfile prints one`, {
      hint: `pick one with --image (${plans.map((plan) => plan.exportName).join(", ")})`,
    });
  }
  // Printing or writing the Dockerfile needs no secret values; building it does.
  await ensureValid(plans, { secretValues: false });
  const [plan] = plans;
  const rendered = await renderImage(plan);
  const buildArgs = Object.entries(rendered.buildArgs)
    .map(([name, value]) => `--build-arg ${name}=${shellQuote(value)}`);
  if (flags.out === undefined) {
    if (flags.json) {
      outJson({
        image: plan.exportName,
        dockerfile: rendered.dockerfile,
        buildArgs: rendered.buildArgs,
      });
    } else {
      Deno.stdout.writeSync(new TextEncoder().encode(rendered.dockerfile));
    }
    return 0;
  }
  const dir = resolve(Deno.cwd(), flags.out);
  if (!isEmptyOrMissing(dir)) {
    throw new UsageError(`${dir} exists and is not empty`, {
      hint: "give a new or empty folder to --out",
    });
  }
  const staging = await Deno.makeTempDir({ dir: dirname(dir), prefix: ".imgtool-out-" });
  try {
    await writeContext(rendered, staging, plan.ignore);
    await Deno.remove(dir).catch(() => {});
    await Deno.rename(staging, dir);
  } catch (error) {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
    throw error;
  }
  const command = ["docker build", ...buildArgs, shellQuote(dir)].join(" ");
  if (flags.json) {
    outJson({
      image: plan.exportName,
      out: dir,
      buildArgs: rendered.buildArgs,
      secrets: rendered.secrets.map((s) => s.id),
    });
  } else {
    out(`wrote ${dir}/Dockerfile and its build context`);
    out(
      `build it with: DOCKER_BUILDKIT=1 ${command}${
        rendered.secrets.map((s) => ` --secret id=${s.id},src=FILE`).join("")
      }`,
    );
  }
  return 0;
}

function isEmptyOrMissing(dir: string): boolean {
  try {
    for (const _ of Deno.readDirSync(dir)) return false;
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return true;
    throw error;
  }
}
