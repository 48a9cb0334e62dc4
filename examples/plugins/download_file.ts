/**
 * An example custom plugin: download a file at build time and check its SHA-256 before it
 * lands in the image.
 *
 * The download runs in the image with `python3 -c` and `urllib` (the Debian Python base has
 * `python3`; `curl` is not there), so the image must have `python3` on `PATH` (or a Python
 * environment from its base). The file is checked with `sha256sum --check` (coreutils)
 * before it is moved to `dest`; a mismatch fails the build with a message naming the URL,
 * the expected digest and the one received.
 *
 * @example
 * ```ts
 * import { Image } from "imgtool";
 * import { downloadFile } from "./download_file.ts";
 *
 * export default Image.fromDebianBase({ name: "with-data" }).withLayer(downloadFile({
 *   url: "https://files.example/data/v1/words.txt",
 *   sha256: "0b8e5d5bbd2a7f5b1a4f2b6f2bd4e1bd2d1f3c5f51d69ab8b3c6c8e0f6c1a2b3",
 *   dest: "/opt/data/words.txt",
 * }));
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
  run,
  shellQuote,
} from "imgtool";

/**
 * The options of a `download_file` layer.
 *
 * @example
 * ```ts
 * import type { Options } from "./download_file.ts";
 * const options: Options = {
 *   url: "https://files.example/tool.tar.gz",
 *   sha256: "a".repeat(64),
 *   dest: "/opt/tool.tar.gz",
 *   mode: "0644",
 * };
 * ```
 */
export interface Options {
  /** Where to download from: an http(s) URL, without credentials. */
  readonly url: string;
  /** The file's SHA-256, 64 hex digits. The build fails if the download differs. */
  readonly sha256: string;
  /** The absolute path of the file in the image; missing folders are created. */
  readonly dest: string;
  /** The file's mode, in octal: `"0755"`, `"644"` or `0o755`. */
  readonly mode: string | number;
}

/**
 * The options when none are given: every file needs a `url`, `sha256` and `dest`; the mode
 * is `0644`.
 *
 * @example
 * ```ts
 * import { defaults } from "./download_file.ts";
 * console.log(defaults.mode); // 0644
 * ```
 */
export const defaults = { url: "", sha256: "", dest: "", mode: "0644" } satisfies Options;

const SHA256 = /^[0-9a-fA-F]{64}$/;

/** The mode as four octal digits, or `undefined` if it is not a file mode. */
function octalMode(mode: string | number): string | undefined {
  if (typeof mode === "number") {
    return Number.isInteger(mode) && mode >= 0 && mode <= 0o7777
      ? mode.toString(8).padStart(4, "0")
      : undefined;
  }
  return typeof mode === "string" && /^[0-7]{3,4}$/.test(mode) ? mode.padStart(4, "0") : undefined;
}

function parentOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}

function urlProblems(url: string): Diagnostic[] {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  // The URL parser drops tabs and line breaks silently; the raw text must not have them.
  // deno-lint-ignore no-control-regex
  if (!parsed || !["http:", "https:"].includes(parsed.protocol) || /[\s\x00-\x1f\x7f]/.test(url)) {
    return [{
      message: `url ${JSON.stringify(url)} is not an http(s) URL`,
      hint: 'give a URL such as "https://files.example/data.bin"',
    }];
  }
  if (parsed.username || parsed.password) {
    return [{
      message: `url ${
        JSON.stringify(url)
      } has a user name or password, which would be written into the Dockerfile`,
      hint: "serve the file without credentials, or download it with withCommands and a secret",
    }];
  }
  return [];
}

function userInstruction(user: string): string {
  return /^[A-Za-z0-9_.:-]+$/.test(user) ? `USER ${user}` : `USER ${dockerfileQuote(user)}`;
}

// A one-line script: Dockerfile text cannot hold a line break inside a RUN step.
const FETCH = "import socket, sys, urllib.request; socket.setdefaulttimeout(300); " +
  "urllib.request.urlretrieve(sys.argv[1], sys.argv[2])";

/**
 * The `download_file` plugin. Use it through {@link downloadFile}.
 *
 * @example
 * ```ts
 * import { Image } from "imgtool";
 * import { defaults, downloadFilePlugin } from "./download_file.ts";
 *
 * const image = Image.fromDebianBase().withLayer(downloadFilePlugin.layer({
 *   ...defaults,
 *   url: "https://files.example/a.txt",
 *   sha256: "b".repeat(64),
 *   dest: "/opt/a.txt",
 * }));
 * ```
 */
export const downloadFilePlugin = definePlugin<Options>({
  name: "download_file",
  version: 1,
  validate(options) {
    const problems: Diagnostic[] = [...urlProblems(options.url)];
    if (!SHA256.test(options.sha256)) {
      problems.push({
        message: `sha256 ${JSON.stringify(options.sha256)} is not a SHA-256 digest (64 hex digits)`,
        hint: "compute it with: sha256sum FILE",
      });
    }
    const { dest } = options;
    if (!dest.startsWith("/") || dest.endsWith("/") || !isSafePath(dest)) {
      problems.push({
        message: `dest ${JSON.stringify(dest)} is not an absolute file path`,
        hint: 'give the full path of the file in the image, e.g. "/opt/data/words.txt" ' +
          "(no $, \\ or control characters)",
      });
    }
    if (octalMode(options.mode) === undefined) {
      problems.push({
        message: `mode ${JSON.stringify(options.mode)} is not an octal file mode`,
        hint: 'give a string such as "0755" or "644", or a number such as 0o755',
      });
    }
    return problems;
  },
  // The digest pins the content, so the tag needs no download (identify must be
  // synchronous and must not reach the network anyway). Mode and digest are normalized:
  // "755" and 0o755 are the same file.
  identify: (options) => ({
    url: options.url,
    sha256: options.sha256.toLowerCase(),
    dest: options.dest,
    mode: octalMode(options.mode) ?? String(options.mode),
  }),
  render(options, context) {
    const dest = shellQuote(options.dest);
    const python = shellQuote(context.state.python?.python ?? "python3");
    const user = context.state.user;
    const step = run([
      'tmp="$(mktemp)"',
      `if ! ${python} -c ${shellQuote(FETCH)} "$DOWNLOAD_URL" "$tmp"; then ` +
      `printf 'download_file: could not download %s\\n' "$DOWNLOAD_URL" >&2; exit 1; fi`,
      `if ! printf '%s  %s\\n' "$DOWNLOAD_SHA256" "$tmp" | sha256sum --check --status; then ` +
      `printf 'download_file: %s has SHA-256 %s, expected %s\\n' "$DOWNLOAD_URL" ` +
      `"$(sha256sum < "$tmp" | cut -d ' ' -f 1)" "$DOWNLOAD_SHA256" >&2; exit 1; fi`,
      `mkdir -p ${shellQuote(parentOf(options.dest))}`,
      `mv "$tmp" ${dest}`,
      `chmod ${octalMode(options.mode)} ${dest}`,
      // Like the built-in COPY layers: after a user switch, files belong to that user.
      ...(user ? [`chown ${shellQuote(user)} ${dest}`] : []),
    ], {
      // Step variables (quoted by run) keep the commands short and the values in one place.
      env: { DOWNLOAD_URL: options.url, DOWNLOAD_SHA256: options.sha256.toLowerCase() },
    });
    return {
      instructions: user ? ["USER root", step, userInstruction(user)] : [step],
    };
  },
});

/**
 * Download `url` to `dest` at build time, checking its SHA-256 first.
 *
 * @example
 * ```ts
 * import { Image } from "imgtool";
 * import { downloadFile } from "./download_file.ts";
 *
 * const image = Image.fromDebianBase({ name: "tool" }).withLayer(downloadFile({
 *   url: "https://files.example/tool-1.2.0",
 *   sha256: "c".repeat(64),
 *   dest: "/usr/local/bin/tool",
 *   mode: "0755",
 * }));
 * ```
 */
export function downloadFile(
  options: Pick<Options, "url" | "sha256" | "dest"> & Partial<Options>,
): Layer<Options> {
  return downloadFilePlugin.layer({
    url: options.url,
    sha256: options.sha256,
    dest: options.dest,
    mode: options.mode ?? defaults.mode,
  }, "downloadFile");
}

export default downloadFile;
