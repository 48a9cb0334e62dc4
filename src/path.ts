/**
 * POSIX path helpers (imgtool runs on Linux, and paths inside images are POSIX too).
 *
 * They are written here rather than imported from `node:path` because the first `node:`
 * import starts Deno's Node compatibility layer, which costs more than everything else a
 * no-op build does; the spec, the pipeline and the built-in plugins load none of it. Plugins
 * reach them through the public `paths` namespace of `mod.ts`.
 *
 * @example
 * ```ts
 * import { paths } from "imgtool";
 * console.log(paths.join("/app", "src", "../lib")); // /app/lib
 * ```
 *
 * @module
 */

/**
 * Is `path` absolute?
 *
 * @example
 * ```ts
 * import { paths } from "imgtool";
 * console.log(paths.isAbsolute("/etc"), paths.isAbsolute("etc")); // true false
 * ```
 */
export function isAbsolute(path: string): boolean {
  return path.startsWith("/");
}

/**
 * Resolve `.` and `..` segments and repeated slashes; a trailing slash is kept, an empty
 * path becomes `.`.
 *
 * @example
 * ```ts
 * import { paths } from "imgtool";
 * console.log(paths.normalize("/app//src/./../lib/")); // /app/lib/
 * ```
 */
export function normalize(path: string): string {
  if (path === "") return ".";
  const absolute = isAbsolute(path);
  const trailing = path.endsWith("/");
  const segments: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") {
      if (segments.length > 0 && segments[segments.length - 1] !== "..") segments.pop();
      else if (!absolute) segments.push("..");
      continue;
    }
    segments.push(segment);
  }
  const body = segments.join("/");
  if (absolute) return body === "" ? "/" : `/${body}${trailing ? "/" : ""}`;
  if (body === "") return trailing ? "./" : ".";
  return trailing ? `${body}/` : body;
}

/**
 * A path inside an image in one spelling for one place: repeated slashes, `.` segments and a
 * trailing slash dropped, `..` resolved against the path before it (as Docker resolves
 * `WORKDIR` and `COPY` destinations, without following links). `/opt/app`, `/opt/app/`,
 * `/opt//app` and `/opt/./app` all give `/opt/app`; a relative path stays relative (`./data/`
 * gives `data`, `.` stays `.`). Whether a `COPY` destination ends in `/` (copy *into* that
 * folder) is a meaning of its own: keep it apart, as {@link normalize} does.
 *
 * @example
 * ```ts
 * import { paths } from "imgtool";
 * console.log(paths.normalizeImagePath("/opt//app/"), paths.normalizeImagePath("./data/")); // /opt/app data
 * ```
 */
export function normalizeImagePath(path: string): string {
  const normal = normalize(path);
  if (normal === "./") return ".";
  return normal.length > 1 && normal.endsWith("/") ? normal.slice(0, -1) : normal;
}

/**
 * Join segments with `/` and normalize the result; empty segments are skipped.
 *
 * @example
 * ```ts
 * import { paths } from "imgtool";
 * console.log(paths.join("project", "./pyproject.toml")); // project/pyproject.toml
 * ```
 */
export function join(...segments: string[]): string {
  const present = segments.filter((segment) => segment !== "");
  return present.length === 0 ? "." : normalize(present.join("/"));
}

/**
 * The absolute path of `segments`, resolved from the right and then against the working
 * directory; no trailing slash (except for `/` itself).
 *
 * @example
 * ```ts
 * import { paths } from "imgtool";
 * console.log(paths.resolve("/project", "src", "../uv.lock")); // /project/uv.lock
 * ```
 */
export function resolve(...segments: string[]): string {
  let path = "";
  for (let index = segments.length - 1; index >= 0 && !isAbsolute(path); index--) {
    if (segments[index] !== "") path = path === "" ? segments[index] : `${segments[index]}/${path}`;
  }
  if (!isAbsolute(path)) path = path === "" ? Deno.cwd() : `${Deno.cwd()}/${path}`;
  const normal = normalize(path);
  return normal.length > 1 && normal.endsWith("/") ? normal.slice(0, -1) : normal;
}

/**
 * The folder part of `path` (trailing slashes ignored), `.` when there is none.
 *
 * @example
 * ```ts
 * import { paths } from "imgtool";
 * console.log(paths.dirname("/project/pyproject.toml")); // /project
 * ```
 */
export function dirname(path: string): string {
  const trimmed = trimTrailingSlashes(path);
  const slash = trimmed.lastIndexOf("/");
  if (slash === -1) return ".";
  if (slash === 0) return "/";
  return trimTrailingSlashes(trimmed.slice(0, slash)) || "/";
}

/**
 * The last segment of `path` (trailing slashes ignored), without `suffix` when it ends so.
 *
 * @example
 * ```ts
 * import { paths } from "imgtool";
 * console.log(paths.basename("/project/src/"), paths.basename("main.py", ".py")); // src main
 * ```
 */
export function basename(path: string, suffix?: string): string {
  const trimmed = trimTrailingSlashes(path);
  const name = trimmed.slice(trimmed.lastIndexOf("/") + 1);
  return suffix !== undefined && name !== suffix && name.endsWith(suffix)
    ? name.slice(0, -suffix.length)
    : name;
}

/**
 * The path from `from` to `to` (both resolved first); `""` when they are the same.
 *
 * @example
 * ```ts
 * import { paths } from "imgtool";
 * console.log(paths.relative("/project/a", "/project/b/c")); // ../b/c
 * ```
 */
export function relative(from: string, to: string): string {
  const source = resolve(from).split("/").filter(Boolean);
  const target = resolve(to).split("/").filter(Boolean);
  let shared = 0;
  while (shared < source.length && shared < target.length && source[shared] === target[shared]) {
    shared++;
  }
  return [...source.slice(shared).map(() => ".."), ...target.slice(shared)].join("/");
}

/**
 * The `file:` URL of an absolute path, with every character that URLs reserve escaped.
 *
 * @example
 * ```ts
 * import { paths } from "imgtool";
 * console.log(paths.toFileUrl("/my specs/#1.ts").href); // file:///my%20specs/%231.ts
 * ```
 */
export function toFileUrl(path: string): URL {
  if (!isAbsolute(path)) throw new TypeError(`not an absolute path: ${path}`);
  const url = new URL("file:///");
  // The pathname setter escapes spaces, `?` and `#`; `%` and `\` it would take literally.
  url.pathname = path.replace(/%/g, "%25").replace(/\\/g, "%5C").replace(/\n/g, "%0A")
    .replace(/\r/g, "%0D").replace(/\t/g, "%09");
  return url;
}

/**
 * The path of a `file:` URL.
 *
 * @example
 * ```ts
 * import { paths } from "imgtool";
 * console.log(paths.fromFileUrl("file:///my%20specs/spec.ts")); // /my specs/spec.ts
 * ```
 */
export function fromFileUrl(url: string | URL): string {
  const parsed = url instanceof URL ? url : new URL(url);
  if (parsed.protocol !== "file:") throw new TypeError(`not a file: URL: ${parsed.href}`);
  return decodeURIComponent(parsed.pathname.replace(/%(?![0-9A-Fa-f]{2})/g, "%25"));
}

function trimTrailingSlashes(path: string): string {
  let end = path.length;
  while (end > 1 && path[end - 1] === "/") end--;
  return path.slice(0, end);
}
