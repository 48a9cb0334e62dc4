/**
 * `withAptPackages`: install Debian packages with apt-get, without recommended packages,
 * with apt's caches on BuildKit cache mounts so nothing of them lands in the layer.
 *
 * @module
 */

import { definePlugin, type Diagnostic, type Mount, run, type Secret, shellQuote } from "../mod.ts";

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

/** The apt-get commands that install `packages`, shared with the Debian base recipe. */
export function aptInstallCommands(packages: readonly string[], cacheMounts: boolean): string[] {
  const install = `DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${
    packages.map(shellQuote).join(" ")
  }`;
  return cacheMounts
    // Debian images delete downloaded packages after each install; keep them in the cache.
    ? ["rm -f /etc/apt/apt.conf.d/docker-clean", "apt-get update", install]
    : ["apt-get update", install, "rm -rf /var/lib/apt/lists/*"];
}

/** apt's cache folders as cache mounts (locked: apt cannot share them between steps). */
export function aptCacheMounts(cacheMounts: boolean): Mount[] {
  return cacheMounts
    ? [
      { type: "cache", target: "/var/cache/apt", id: "imgtool-apt-cache" },
      { type: "cache", target: "/var/lib/apt/lists", id: "imgtool-apt-lists" },
    ]
    : [];
}

/** The apt plugin. */
export const apt = definePlugin<Options>({
  name: "apt",
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
