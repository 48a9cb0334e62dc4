/**
 * An example custom plugin: create a user and switch to it.
 *
 * The layer runs `groupadd` and `useradd` (from Debian's `passwd` package, in every Debian
 * image), then `USER`. It also tells later layers about the user through the image state:
 * built-in layers that copy files (`withSourceFile`, `withSourceFolder`) then give the
 * files to that user (`COPY --chown`). Layers that need root (installing packages) belong
 * before this one.
 *
 * @example
 * ```ts
 * import { Image } from "imgtool";
 * import { nonRootUser } from "./non_root_user.ts";
 *
 * export default Image.fromDebianBase({ name: "service" })
 *   .withLayer(nonRootUser("app", { uid: 10001, workdir: true }))
 *   .withSourceFile("./main.py");
 * ```
 *
 * @module
 */

import {
  definePlugin,
  type Diagnostic,
  dockerfileQuote,
  isSafePath,
  type Layer,
  shellQuote,
} from "imgtool";

/**
 * The options of a `non_root_user` layer.
 *
 * @example
 * ```ts
 * import type { Options } from "./non_root_user.ts";
 * const options: Options = { name: "app", uid: 1000, shell: "/bin/bash", workdir: false };
 * ```
 */
export interface Options {
  /** The user name: lowercase letters, digits, `_` and `-`, starting with a letter or `_`. */
  readonly name: string;
  /** The user id; not 0 (that is root). */
  readonly uid: number;
  /** The primary group's id; default the user id. */
  readonly gid?: number;
  /** The primary group's name; default the user name. */
  readonly group?: string;
  /** The home folder, created if missing; default `/home/<name>`. */
  readonly home?: string;
  /** The login shell. */
  readonly shell: string;
  /** Make the home folder the working directory for later layers and the container. */
  readonly workdir: boolean;
}

/**
 * The options when none are given.
 *
 * @example
 * ```ts
 * import { defaults } from "./non_root_user.ts";
 * console.log(defaults.uid); // 1000
 * ```
 */
export const defaults = {
  name: "app",
  uid: 1000,
  shell: "/bin/bash",
  workdir: false,
} satisfies Options;

// What useradd accepts by default on Debian, kept to names that need no quoting anywhere.
const NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
// Ids up to 2^31 - 1: some tools read ids as signed 32-bit numbers.
const MAX_ID = 2 ** 31 - 1;

/** The user and group as the other layers see them, with every default filled in. */
function resolved(options: Options) {
  return {
    name: options.name,
    uid: options.uid,
    gid: options.gid ?? options.uid,
    group: options.group ?? options.name,
    home: options.home ?? `/home/${options.name}`,
    shell: options.shell,
    workdir: options.workdir,
  };
}

function idProblems(what: string, id: unknown): Diagnostic[] {
  if (typeof id === "number" && Number.isInteger(id) && id > 0 && id <= MAX_ID) return [];
  return [{
    message: id === 0
      ? `${what} 0 is root's; a non-root user needs another id`
      : `${what} ${
        typeof id === "number" ? String(id) : JSON.stringify(id)
      } is not a whole number from 1 to ${MAX_ID}`,
    hint: `give a number such as 1000 or 10001`,
  }];
}

function pathProblems(what: string, path: string): Diagnostic[] {
  if (path.startsWith("/") && isSafePath(path)) return [];
  return [{
    message: `${what} ${JSON.stringify(path)} is not an absolute path`,
    hint: `give a path such as ${what === "shell" ? "/bin/bash" : "/home/app"} ` +
      "(no $, \\ or control characters)",
  }];
}

/**
 * The `non_root_user` plugin. Use it through {@link nonRootUser}.
 *
 * @example
 * ```ts
 * import { Image } from "imgtool";
 * import { defaults, nonRootUserPlugin } from "./non_root_user.ts";
 *
 * const image = Image.fromDebianBase().withLayer(nonRootUserPlugin.layer({ ...defaults }));
 * ```
 */
export const nonRootUserPlugin = definePlugin<Options>({
  name: "non_root_user",
  version: 1,
  validate(options) {
    const user = resolved(options);
    const problems: Diagnostic[] = [];
    for (const [what, name] of [["user name", user.name], ["group name", user.group]]) {
      if (!NAME.test(name)) {
        problems.push({
          message: `${what} ${JSON.stringify(name)} is not a valid name`,
          hint: "use up to 32 lowercase letters, digits, _ and -, starting with a letter or _",
        });
      }
    }
    problems.push(...idProblems("uid", user.uid), ...idProblems("gid", user.gid));
    problems.push(...pathProblems("home", user.home), ...pathProblems("shell", user.shell));
    return problems;
  },
  // Later layers read the user from the state: the built-in COPY layers chown to it.
  nextState(options) {
    const user = resolved(options);
    return {
      user: `${user.name}:${user.group}`,
      ...(user.workdir ? { workdir: user.home } : {}),
      extra: { non_root_user: { name: user.name, uid: user.uid, gid: user.gid, home: user.home } },
    };
  },
  // Defaults filled in, so that `nonRootUser("app")` and `nonRootUser("app", { uid: 1000 })`
  // are the same image. Ids as text: an invalid id (NaN) must not break `Image.uri`;
  // validation reports it.
  identify(options) {
    const user = resolved(options);
    return { ...user, uid: String(user.uid), gid: String(user.gid) };
  },
  render(options) {
    const user = resolved(options);
    const instructions = [
      [
        `RUN groupadd --gid ${user.gid} ${user.group}`,
        // --no-log-init: a large uid would otherwise make a huge sparse /var/log/lastlog.
        `useradd --no-log-init --uid ${user.uid} --gid ${user.gid} --create-home ` +
        `--home-dir ${shellQuote(user.home)} --shell ${shellQuote(user.shell)} ${user.name}`,
      ].join(" \\\n    && "),
      `USER ${user.name}`,
    ];
    if (user.workdir) instructions.push(`WORKDIR ${dockerfileQuote(user.home)}`);
    return { instructions };
  },
});

/**
 * Create the user `name` (and its group), switch to it, and let later layers' copied
 * files belong to it.
 *
 * @example
 * ```ts
 * import { Image } from "imgtool";
 * import { nonRootUser } from "./non_root_user.ts";
 *
 * const image = Image.fromDebianBase({ name: "worker" })
 *   .withLayer(nonRootUser("worker", { uid: 2000, home: "/srv/worker", workdir: true }))
 *   .withSourceFolder("./jobs");
 * ```
 */
export function nonRootUser(
  name: string,
  options: Partial<Omit<Options, "name">> = {},
): Layer<Options> {
  return nonRootUserPlugin.layer({
    name,
    uid: options.uid ?? defaults.uid,
    gid: options.gid,
    group: options.group,
    home: options.home,
    shell: options.shell ?? defaults.shell,
    workdir: options.workdir ?? defaults.workdir,
  }, "nonRootUser");
}

export default nonRootUser;
