/**
 * What a requirements layer's install step sees, for tests: the step's command, the files under
 * its mount mapped back to disk, and every requirement line it reads from its `-r` file through
 * `-r`/`-c` includes. The tests compare that with the files the original lines name, so their
 * expectations do not depend on how imgtool lays the build context out.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type Config,
  type ContextEntry,
  type Diagnostic,
  type Image,
  planImage,
  renderImage,
  validateImages,
} from "../mod.ts";
import { loadSpec } from "../src/load.ts";
import { fixtureConfig } from "./helpers.ts";

/** The fixture configuration with pip as the installer. */
export const pip: Config = fixtureConfig({}, { "python.installer": "pip" });
/** The fixture configuration with uv (the default installer). */
export const uv: Config = fixtureConfig();
/** Where the requirements layer mounts its folder in the install step. */
export const MOUNT = "/tmp/imgtool-requirements";

let specCount = 0;

/** The default image of a spec written into `dir` (its project: `dir` has no `.git`). */
export async function specImage(dir: string, requirements: string, before = ""): Promise<Image> {
  const spec = join(dir, `spec${specCount++}.ts`);
  await Deno.writeTextFile(
    spec,
    `import { Image } from "imgtool";\nexport default Image.fromBase("python:3.12-slim")${before}` +
      `.withRequirements(${JSON.stringify(requirements)});\n`,
  );
  return (await loadSpec(spec)).images[0].image;
}

/** The validation problems of an image. */
export async function problemsOf(image: Image, config: Config = pip): Promise<Diagnostic[]> {
  return await validateImages([planImage(image, "default", config)], { secretValues: false });
}

/** What the install step sees: its command, and the files under the mount, mapped to disk. */
export interface StepView {
  readonly command: string;
  readonly entries: readonly ContextEntry[];
  /** The host file or folder at a path the step sees, and its kind. */
  where(path: string): { source: string; kind: "file" | "tree" | "text" } | undefined;
  /** The text of a file the step sees. */
  read(path: string): string;
}

/** Render a valid image and look at its requirements step (layer 1). */
export async function stepView(image: Image, config: Config = pip): Promise<StepView> {
  const plan = planImage(image, "default", config);
  assert.deepEqual(await validateImages([plan], { secretValues: false }), []);
  const rendered = await renderImage(plan);
  const run = rendered.dockerfile.split("\n# [1]")[1];
  const contextDir = new RegExp(`source=([^,]+),target=${MOUNT}`).exec(run)?.[1];
  assert.ok(contextDir, `no bind mount of ${MOUNT} in\n${run}`);
  const entries = rendered.context;
  const where = (path: string) => {
    if (!path.startsWith(`${MOUNT}/`)) return undefined;
    const inContext = `${contextDir}/${path.slice(MOUNT.length + 1)}`;
    for (const entry of entries) {
      if (entry.target === inContext) {
        return entry.kind === "text"
          ? { source: entry.target, kind: "text" as const }
          : { source: entry.source, kind: entry.kind };
      }
      if (entry.kind === "tree" && inContext.startsWith(`${entry.target}/`)) {
        return {
          source: entry.source + inContext.slice(entry.target.length),
          kind: "tree" as const,
        };
      }
    }
    return undefined;
  };
  const read = (path: string) => {
    const inContext = `${contextDir}/${path.slice(MOUNT.length + 1)}`;
    const entry = entries.find((e) => e.target === inContext);
    assert.ok(entry, `the step cannot read ${path}`);
    if (entry.kind === "text") return String(entry.content);
    const found = where(path);
    return Deno.readTextFileSync(found!.source);
  };
  return { command: run, entries, where, read };
}

/** The lines of a requirements file as pip reads them (continuations joined, comments out). */
export function pipLines(text: string): string[] {
  return text.replace(/\\\n/g, "").split("\n").map((line) => line.replace(/(^|\s+)#.*$/, "").trim())
    .filter(Boolean);
}

/** Every requirement line the step reads, from its `-r` file through `-r`/`-c` includes. */
export function readAll(view: StepView): { file: string; line: string }[] {
  const top = /-r '?([^'\s]+)'?\s*$/m.exec(view.command)?.[1];
  assert.ok(top, `no -r in ${view.command}`);
  const out: { file: string; line: string }[] = [];
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const line of pipLines(view.read(file))) {
      const include = /^(?:-r|-c|--requirement|--constraint)(?:\s+|=)(\S+)$/.exec(line);
      if (include) {
        const next = include[1].startsWith("/") ? include[1] : join(file, "..", include[1]);
        visit(next);
      } else out.push({ file, line });
    }
  };
  visit(top);
  return out;
}
