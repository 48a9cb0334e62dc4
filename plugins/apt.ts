/**
 * `withAptPackages`: install Debian packages with apt-get, without recommended packages,
 * with apt's caches on BuildKit cache mounts so nothing of them lands in the layer.
 *
 * The image's apt configuration is left as the base has it. Debian and Ubuntu images carry
 * a `docker-clean` hook (`/etc/apt/apt.conf.d/docker-clean`) that deletes downloaded
 * packages after every install, so that `apt-get` in users' later commands leaves no
 * `.deb` in their layers; it stays in place. To keep downloads between builds anyway, the
 * install step points apt's download folder at a folder of the cache mount that the hook
 * does not clean (`-o Dir::Cache::Archives=...`).
 *
 * @module
 */

import {
  definePlugin,
  type Diagnostic,
  type Mount,
  run,
  type Secret,
  shellQuote,
} from "../contract.ts";

/** The layer's options. */
export interface Options {
  /** Package names, optionally `name=version` or `name/release`. */
  readonly packages: readonly string[];
  /** Secrets the install step needs (e.g. an auth file for a private repository). */
  readonly secretMounts: readonly Secret[];
}

/** The options when none are given. */
export const defaults = { packages: [], secretMounts: [] } satisfies Options;

// Debian policy names, with an optional :arch and =version or /release.
const PACKAGE = /^[a-z0-9][a-z0-9+.-]+(?::[a-z0-9-]+)?(?:=[A-Za-z0-9.+~:-]+|\/[a-z0-9.-]+)?$/;

/** The packages, sorted and without repeats: order and repeats do not change what is installed. */
export function normalizePackages(packages: readonly string[]): string[] {
  return [...new Set(packages.map((name) => name.trim()))].sort();
}

/**
 * Where apt downloads packages during an install step with cache mounts: a folder of the
 * `/var/cache/apt` cache mount that the base's `docker-clean` hook (which deletes
 * `/var/cache/apt/archives/*.deb`) does not touch, so downloads are kept between builds
 * without removing the hook.
 */
export const APT_DOWNLOADS = "/var/cache/apt/imgtool-archives/";

/**
 * Where apt keeps its package lists during an install step with cache mounts: a folder of
 * the same `/var/cache/apt` cache mount, so that the step mounts one cache, not two (buildah
 * holds all but one of a step's cache locks until the build ends, and a later apt step then
 * waits for them forever), and the image's own `/var/lib/apt/lists` stays as the base left it.
 */
export const APT_LISTS = "/var/cache/apt/imgtool-lists/";

/**
 * The apt-get commands that install `packages`, shared with the Debian base recipe. With
 * cache mounts, apt's lists and downloads stay on the mounts ({@link aptCacheMounts});
 * without them, the step removes what apt left before the layer is made. Either way the
 * layer holds no package lists and no downloaded packages, and apt's configuration is
 * untouched.
 *
 * @example
 * ```ts
 * import { aptInstallCommands } from "./apt.ts";
 * console.log(aptInstallCommands(["git"], false).join(" && "));
 * // apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends git && apt-get clean && rm -rf /var/lib/apt/lists/*
 * ```
 */
export function aptInstallCommands(packages: readonly string[], cacheMounts: boolean): string[] {
  const words = packages.map(shellQuote).join(" ");
  if (!cacheMounts) {
    return [
      "apt-get update",
      `DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${words}`,
      // Bases without a docker-clean hook keep downloads and apt's binary caches otherwise.
      "apt-get clean",
      "rm -rf /var/lib/apt/lists/*",
    ];
  }
  const aptGet =
    `apt-get -o Dir::Cache::Archives=${APT_DOWNLOADS} -o Dir::State::Lists=${APT_LISTS}`;
  return [
    `mkdir -p ${APT_DOWNLOADS}partial ${APT_LISTS}partial`,
    `${aptGet} update`,
    `DEBIAN_FRONTEND=noninteractive ${aptGet} install -y --no-install-recommends ${words}`,
  ];
}

/**
 * apt's cache folder as one cache mount (locked: apt cannot share it between steps), holding
 * the downloads ({@link APT_DOWNLOADS}) and the lists ({@link APT_LISTS}). The whole
 * `/var/cache/apt` is mounted, so that apt's binary caches on bases without a `docker-clean`
 * hook stay out of the layer too.
 *
 * @example
 * ```ts
 * import { aptCacheMounts } from "./apt.ts";
 * console.log(aptCacheMounts(true).map((mount) => mount.target)); // [ "/var/cache/apt" ]
 * ```
 */
export function aptCacheMounts(cacheMounts: boolean): Mount[] {
  return cacheMounts ? [{ type: "cache", target: "/var/cache/apt", id: "imgtool-apt-cache" }] : [];
}

/** The apt plugin. */
export const apt = definePlugin<Options>({
  name: "apt",
  // 2: the docker-clean hook stays in the image (version 1 removed it).
  // 3: one cache mount, the lists in it (two mounts hung buildah on a second apt step).
  version: 3,
  needsRoot: true,
  validate(options) {
    const problems: Diagnostic[] = [];
    if (options.packages.length === 0) {
      problems.push({ message: "no packages given", hint: "name at least one package" });
    }
    for (const name of options.packages) {
      if (!PACKAGE.test(name.trim())) {
        problems.push({
          message: `${JSON.stringify(name)} is not a valid Debian package name`,
          hint: "use lowercase letters, digits and + - . (optionally name=version or name/release)",
        });
      }
    }
    return problems;
  },
  secrets: (options) => options.secretMounts,
  identify: (options) => ({
    packages: normalizePackages(options.packages),
    secrets: options.secretMounts,
  }),
  render(options, context) {
    const { cacheMounts } = context.config;
    return {
      instructions: [
        run(aptInstallCommands(normalizePackages(options.packages), cacheMounts), {
          mounts: aptCacheMounts(cacheMounts),
          secrets: options.secretMounts,
        }),
      ],
    };
  },
}, { module: import.meta.url });

export default apt;
