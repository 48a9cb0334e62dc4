/**
 * `imgtool init [DIR]`: write a starter `spec.ts`, an `imgtool.toml`, and a `deno.json`
 * that lets an editor type-check the spec against the API (its import map names where the
 * API is). Never overwrites a file: existing ones are left as they are and reported.
 *
 * @module
 */

import { fromFileUrl, join, relative, resolve } from "../path.ts";
import type { Flags } from "../cli/args.ts";
import { out, outJson } from "../cli/output.ts";
import { systemError, UsageError } from "../errors.ts";

const SPEC = `import { Image } from "imgtool";

// One image: the Debian Python recipe, some packages, your code.
// Build it with: imgtool build spec.ts   (add --push to push it to the registry)
export default Image.fromDebianBase({ name: "my-app", pythonVersion: [3, 12] })
  .withAptPackages(["curl"])
  .withPipPackages(["requests"])
  .withEnvVars({ APP_ENV: "production" })
  .withWorkdir("/app");
`;

const CONFIG =
  `# imgtool configuration. Environment variables IMGTOOL_<SETTING> and flags override it.
# See \`imgtool --help\` for every setting.

# registry = "ghcr.io/acme"          # where images without a registry are pushed
# platforms = ["linux/amd64"]        # default platforms
# python-version = "3.12"            # default Python version
# builder = "auto"                   # docker, buildah, or auto

# [images]                           # mirrors of the public images the recipes use
# python = "python:{major}.{minor}-slim-bookworm"
# uv = "ghcr.io/astral-sh/uv:0.8.13"

# [refs]                             # names for Image.fromRefName
# base = "ghcr.io/acme/base:1.0"
`;

// This copy's source root: the repository under `deno run`, or the binary's embedded copy.
const SOURCE_ROOT = new URL("../../", import.meta.url);

/** Is this code running from inside a `deno compile` binary (not from files on disk)? */
function insideBinary(): boolean {
  return SOURCE_ROOT.pathname.includes("/deno-compile-");
}

/**
 * Where an editor finds the API for "imgtool": under `deno run`, this checkout's mod.ts;
 * inside the binary, a copy of the API's sources written to `<dir>/.imgtool/sdk` (the
 * binary embeds them), since the binary's own files are not on disk.
 */
async function apiLocation(dir: string): Promise<string> {
  if (!insideBinary()) {
    const rel = relative(dir, fromFileUrl(new URL("mod.ts", SOURCE_ROOT)));
    return rel.startsWith(".") ? rel : `./${rel}`;
  }
  await copySdk(fromFileUrl(SOURCE_ROOT), join(dir, ".imgtool", "sdk"));
  return "./.imgtool/sdk/mod.ts";
}

/** The import map an editor needs: "imgtool", and the packages the API itself imports. */
async function editorImports(dir: string): Promise<Record<string, string>> {
  const manifest = JSON.parse(await Deno.readTextFile(new URL("deno.json", SOURCE_ROOT)));
  return { ...manifest.imports, imgtool: await apiLocation(dir) };
}

/** Copy the API's sources (mod.ts, deno.json, src/, plugins/) from `root` into `target`. */
export async function copySdk(root: string, target: string): Promise<void> {
  const copyTree = async (from: string, to: string) => {
    await Deno.mkdir(to, { recursive: true });
    for await (const entry of Deno.readDir(from)) {
      if (entry.isDirectory) await copyTree(join(from, entry.name), join(to, entry.name));
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) {
        await Deno.writeTextFile(
          join(to, entry.name),
          await Deno.readTextFile(join(from, entry.name)),
        );
      }
    }
  };
  await Deno.mkdir(target, { recursive: true });
  for (const file of ["mod.ts", "deno.json"]) {
    await Deno.writeTextFile(join(target, file), await Deno.readTextFile(join(root, file)));
  }
  for (const folder of ["src", "plugins"]) await copyTree(join(root, folder), join(target, folder));
}

/** {@link editorImports}, with a failure to copy the API's sources said as a sentence. */
async function importsFor(dir: string): Promise<Record<string, string>> {
  try {
    return await editorImports(dir);
  } catch (error) {
    throw systemError(error, { doing: `imgtool init ${dir}: copying the API for editors` }) ??
      error;
  }
}

/** Run `imgtool init`. */
export async function initCommand(dirArg: string, flags: Flags): Promise<number> {
  const dir = resolve(Deno.cwd(), dirArg);
  try {
    if (!Deno.statSync(dir).isDirectory) {
      throw new UsageError(`${dir} is a file, not a folder`, {
        hint: "give imgtool init a folder (new or existing), or no argument for this one",
      });
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      throw systemError(error, { doing: `imgtool init ${dir}` }) ?? error;
    }
  }
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (error) {
    throw systemError(error, { doing: `imgtool init ${dir}` }) ?? error;
  }
  const files: Record<string, string> = {
    "spec.ts": SPEC,
    "imgtool.toml": CONFIG,
    "deno.json": `${JSON.stringify({ imports: await importsFor(dir) }, null, 2)}\n`,
  };
  const written: string[] = [];
  const kept: string[] = [];
  for (const [name, content] of Object.entries(files)) {
    const path = join(dir, name);
    try {
      // createNew: fails if the file exists, with no window between check and write.
      await Deno.writeTextFile(path, content, { createNew: true });
      written.push(path);
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) {
        throw systemError(error, { doing: `imgtool init ${dir}` }) ?? error;
      }
      kept.push(path);
    }
  }
  if (flags.json) {
    outJson({ written, kept });
  } else {
    for (const path of written) out(`wrote ${path}`);
    for (const path of kept) out(`kept ${path} (it exists)`);
    out(`next: imgtool build ${relative(Deno.cwd(), join(dir, "spec.ts")) || "spec.ts"}`);
  }
  return 0;
}
