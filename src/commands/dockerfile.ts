/**
 * `imgtool dockerfile`: print the Dockerfile of one image, or with `--out DIR` write it with
 * its whole build context, ready for any builder (`docker build DIR`). DIR must be new or
 * empty, in a folder that exists; the context is written beside it first and moved into
 * place whole, so a failure (a full disk, a file that cannot be read) leaves nothing
 * half-written and is said as what, where and how to fix it.
 *
 * @module
 */

import { dirname, resolve } from "../path.ts";
import type { Flags } from "../cli/args.ts";
import { out, outJson, reportWarnings } from "../cli/output.ts";
import { writeContext } from "../context.ts";
import { systemError, UsageError } from "../errors.ts";
import { renderImage } from "../render.ts";
import { shellQuote } from "../dockerfile.ts";
import { ensureLocked } from "../lock_check.ts";
import { ensureValid, prepare } from "./prepare.ts";

/** Run `imgtool dockerfile`. */
export async function dockerfileCommand(specPath: string, flags: Flags): Promise<number> {
  const { spec, plans } = await prepare(specPath, flags);
  if (flags.locked) ensureLocked(spec, plans);
  if (plans.length !== 1) {
    throw new UsageError(`the spec has ${plans.length} images; dockerfile prints one`, {
      hint: `pick one with --image (${plans.map((plan) => plan.exportName).join(", ")})`,
    });
  }
  // Printing or writing the Dockerfile needs no secret values; building it does.
  // Warnings go to standard error: standard output is the Dockerfile.
  reportWarnings(await ensureValid(plans, { secretValues: false }));
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
  checkOutFolder(dir, flags.out);
  const doing = `writing the build context to ${dir}`;
  let staging: string;
  try {
    staging = await Deno.makeTempDir({ dir: dirname(dir), prefix: ".imgtool-out-" });
  } catch (error) {
    throw systemError(error, { doing }) ?? error;
  }
  try {
    await writeContext(rendered, staging, plan.ignore);
    await Deno.remove(dir).catch(() => {});
    await Deno.rename(staging, dir);
  } catch (error) {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
    // The staging folder is gone: name the folder the user asked for.
    throw systemError(error, { doing, rename: [[staging, dir]] }) ?? error;
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

/**
 * Refuse an `--out` that is not a new or empty folder in a folder that exists: a file, a
 * folder with files, a path whose parent is missing or is a file. `given` is the flag as
 * typed, for the message.
 */
function checkOutFolder(dir: string, given: string): void {
  const named = given === dir ? dir : `${given} (${dir})`;
  let info: Deno.FileInfo | undefined;
  try {
    info = Deno.statSync(dir);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound) && !(error instanceof Deno.errors.NotADirectory)) {
      throw systemError(error, { doing: `checking --out ${named}` }) ?? error;
    }
  }
  if (info === undefined) {
    const parent = dirname(dir);
    let parentInfo: Deno.FileInfo | undefined;
    try {
      parentInfo = Deno.statSync(parent);
    } catch (error) {
      if (
        !(error instanceof Deno.errors.NotFound) && !(error instanceof Deno.errors.NotADirectory)
      ) {
        throw systemError(error, { doing: `checking --out ${named}` }) ?? error;
      }
    }
    if (parentInfo === undefined) {
      throw new UsageError(`--out ${named} cannot be made: its folder ${parent} does not exist`, {
        hint:
          `create that folder first (mkdir -p ${parent}), or give --out a path in a folder that exists`,
      });
    }
    if (!parentInfo.isDirectory) {
      throw new UsageError(`--out ${named} cannot be made: ${parent} is a file, not a folder`, {
        hint: "give --out a path in a folder that exists",
      });
    }
    return;
  }
  if (!info.isDirectory) {
    throw new UsageError(`--out ${named} is a file, not a folder`, {
      hint: "give --out a new or empty folder (imgtool never replaces a file)",
    });
  }
  let empty = true;
  try {
    for (const _ of Deno.readDirSync(dir)) {
      empty = false;
      break;
    }
  } catch (error) {
    throw systemError(error, { doing: `checking --out ${named}` }) ?? error;
  }
  if (!empty) {
    throw new UsageError(`${dir} exists and is not empty`, {
      hint: "give a new or empty folder to --out (imgtool never overwrites files): empty " +
        "this one, or name another",
    });
  }
}
