/**
 * `imgtool init [DIR]`: write a starter `spec.ts`, an `imgtool.toml`, and a `deno.json`
 * that lets an editor type-check the spec against the API (its import map names where the
 * API is). Never overwrites a file: existing ones are left as they are and reported.
 *
 * @module
 */

import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Flags } from "../cli/args.ts";
import { out, outJson } from "../cli/output.ts";
import { ImgtoolError } from "../errors.ts";

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

/** The module editors should resolve "imgtool" to: this copy's mod.ts. */
function apiLocation(dir: string): string {
  const url = new URL("../../mod.ts", import.meta.url);
  if (url.protocol !== "file:") return url.href;
  const path = fileURLToPath(url);
  // Inside a compiled binary the API has no file on disk; point at the published module.
  try {
    Deno.statSync(path);
  } catch {
    return "npm:@imgtool/imgtool";
  }
  const rel = relative(dir, path);
  return rel.startsWith(".") ? rel : `./${rel}`;
}

/** Run `imgtool init`. */
export async function initCommand(dirArg: string, flags: Flags): Promise<number> {
  const dir = resolve(Deno.cwd(), dirArg);
  await Deno.mkdir(dir, { recursive: true });
  const files: Record<string, string> = {
    "spec.ts": SPEC,
    "imgtool.toml": CONFIG,
    "deno.json": `${JSON.stringify({ imports: { imgtool: apiLocation(dir) } }, null, 2)}\n`,
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
        throw new ImgtoolError(`cannot write ${path}: ${(error as Error).message}`);
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
