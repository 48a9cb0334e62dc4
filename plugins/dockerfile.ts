/**
 * `Image.fromDockerfile`: build your own Dockerfile, with its folder as the build context
 * and that folder's `.dockerignore` applied (or the Dockerfile's own `<name>.dockerignore`,
 * which BuildKit prefers). The whole context counts in the identity, so editing any file the
 * Dockerfile may copy rebuilds the image. Layers may follow: they continue the Dockerfile's
 * last stage. Its parser directives stay first in the generated Dockerfile; under
 * `# escape=\`` the core rewrites the instructions of later layers for that escape
 * character, and the rules apply to the user's files only, never to what later layers stage.
 * The images the Dockerfile names (`FROM`, `COPY --from`, `RUN --mount=...,from=`) are pinned
 * by `imgtool.lock` when it has entries for them (`./shared/dockerfile_images.ts`).
 *
 * @module
 */

import { definePlugin, type Diagnostic, paths } from "../contract.ts";
import { parseDockerignore } from "./dockerignore.ts";
import { pinImages } from "./shared/dockerfile_images.ts";

const { basename, dirname, join } = paths;

/** The layer's options. */
export interface Options {
  /** The Dockerfile, relative to the spec's folder. */
  readonly file: string;
}

/** The Dockerfile plugin. */
export const dockerfile = definePlugin<Options>({
  name: "dockerfile",
  version: 1,
  kind: "base",
  validate(options, context) {
    const problems: Diagnostic[] = [];
    const path = context.resolve(options.file);
    const text = context.readText(path);
    if (text === undefined) {
      problems.push({
        message: `Dockerfile not found: ${path}`,
        hint: "check the path; relative paths are relative to the spec file's folder",
        file: path,
      });
    } else if (!/^\s*FROM\s/im.test(text)) {
      problems.push({ message: `${path} has no FROM instruction`, file: path });
    } else {
      const { directives, body } = splitDirectives(text);
      const escape = directives.escape ?? "\\";
      if (escape !== "\\" && escape !== "`") {
        problems.push({
          message: `${path}: the escape directive must be \\ or \`, not ${JSON.stringify(escape)}`,
          file: path,
        });
      }
      const last = body.split("\n").filter((line) => !/^\s*(#.*)?$/.test(line)).at(-1);
      if (last?.trimEnd().endsWith(escape)) {
        problems.push({
          message: `${path}: its last instruction ends in ${escape}, which would join the ` +
            "next instruction to it",
          hint: `remove the ${escape} at the end of the last line`,
          file: path,
        });
      }
    }
    return problems;
  },
  ignoreRules(options, context) {
    const path = context.resolve(options.file);
    const folder = dirname(path);
    // As BuildKit does: the Dockerfile's own rules file (`app.Dockerfile.dockerignore` beside
    // `app.Dockerfile`) in place of the context's `.dockerignore`.
    for (const file of [`${path}.dockerignore`, join(folder, ".dockerignore")]) {
      const text = context.readText(file);
      if (text !== undefined) return { root: folder, patterns: parseDockerignore(text), file };
    }
    return undefined;
  },
  // Later layers that need root run as root when the Dockerfile's image runs as another user.
  nextState: (options, context) => {
    const user = finalUser(splitDirectives(context.readText(options.file) ?? "").body);
    return user === undefined ? undefined : { user: user || undefined };
  },
  identify: (options, context) => ({
    dockerfile: context.readText(options.file) ?? null,
    name: basename(context.resolve(options.file)),
    context: context.tree(dirname(context.resolve(options.file))),
  }),
  render(options, context) {
    const path = context.resolve(options.file);
    const { directives, body } = splitDirectives(context.readText(path) ?? "");
    const escape = directives.escape === "`" ? "`" : "\\";
    return {
      instructions: [],
      directives,
      dockerfileText: pinImages(body, escape, (reference) => context.pinned(reference)),
      context: [{ kind: "tree", source: dirname(path), target: "." }],
    };
  },
}, { module: import.meta.url });

export default dockerfile;

const DIRECTIVES = ["syntax", "escape", "check"];

/**
 * A Dockerfile's parser directives (`# syntax=...`, `# escape=...`, `# check=...`: the
 * comment lines of that form at the very top, before any other line) and the rest of it.
 * imgtool writes the directives first in the Dockerfile it generates, as Docker requires.
 *
 * @example
 * ```ts
 * import { splitDirectives } from "./dockerfile.ts";
 * const { directives, body } = splitDirectives("# escape=`\nFROM debian\nRUN a `\n  b\n");
 * console.log(directives.escape, body.split("\n")[0]); // ` FROM debian
 * ```
 */
export function splitDirectives(
  text: string,
): { directives: Record<string, string>; body: string } {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  const directives: Record<string, string> = {};
  let index = 0;
  for (; index < lines.length; index++) {
    // Docker's rule: `# name=value`, each name once; the first other line ends them.
    const match = /^#\s*([A-Za-z]+)\s*=\s*(.*?)\s*$/.exec(lines[index]);
    const name = match?.[1].toLowerCase();
    // An unknown name makes the line a comment, and a comment ends the directives.
    if (!match || !name || !DIRECTIVES.includes(name) || name in directives) break;
    directives[name] = match[2];
  }
  return { directives, body: lines.slice(index).join("\n").replace(/\s+$/, "") };
}

/**
 * The user the last stage of a Dockerfile switches to with its last `USER` instruction:
 * `""` for root, `undefined` when the stage has none, or names it through a variable or in a
 * form imgtool does not write back (then nothing is assumed).
 *
 * @example
 * ```ts
 * import { finalUser } from "./dockerfile.ts";
 * console.log(finalUser("FROM a AS build\nUSER builder\nFROM b\nUSER app:app\n")); // app:app
 * console.log(finalUser("FROM a\nUSER app\nFROM b\n")); // undefined
 * console.log(JSON.stringify(finalUser("FROM b\nUSER app\nUSER 0\n"))); // ""
 * ```
 */
export function finalUser(body: string): string | undefined {
  let user: string | undefined;
  for (const line of body.split("\n")) {
    if (/^\s*FROM\s/i.test(line)) user = undefined;
    const match = /^\s*USER\s+(\S+)\s*$/i.exec(line);
    if (!match) continue;
    const value = match[1];
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/.test(value)) {
      user = undefined;
      continue;
    }
    const name = value.split(":")[0];
    user = name === "root" || name === "0" ? "" : value;
  }
  return user;
}
