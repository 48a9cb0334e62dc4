/**
 * Platforms (`linux/amd64`, `linux/arm/v7`): parsing, normalizing and comparing them the
 * way containerd does, so `linux/arm64` matches an image that says `arm64` + `v8`.
 *
 * @module
 */

import { UsageError } from "../errors.ts";

/** A platform as `os/architecture[/variant]`: "linux/amd64", "linux/arm64", "linux/arm/v7". */
export type Platform = string;

/** A platform as manifests and image configs spell it. */
export interface PlatformObject {
  /** The operating system: `linux`, `windows`. */
  os: string;
  /** The CPU architecture in Go's naming: `amd64`, `arm64`, `arm`. */
  architecture: string;
  /** The CPU variant, when one matters: `v7` for `arm`. */
  variant?: string;
}

/**
 * Parse `os/architecture[/variant]`; throws a {@link UsageError} when it is not that shape.
 *
 * @example
 * ```ts
 * import { parsePlatform } from "./platform.ts";
 * console.log(parsePlatform("linux/arm/v7")); // { os: "linux", architecture: "arm", variant: "v7" }
 * ```
 */
export function parsePlatform(platform: Platform): PlatformObject {
  const parts = platform.split("/");
  const valid = (parts.length === 2 || parts.length === 3) &&
    parts.every((part) => /^[a-z0-9_.-]+$/.test(part));
  if (!valid) {
    throw new UsageError(`invalid platform ${JSON.stringify(platform)}`, {
      hint: "write it as os/architecture[/variant], e.g. linux/amd64, linux/arm64, linux/arm/v7",
    });
  }
  const [os, architecture, variant] = parts;
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

/**
 * Write a platform object as `os/architecture[/variant]`.
 *
 * @example
 * ```ts
 * import { formatPlatform } from "./platform.ts";
 * console.log(formatPlatform({ os: "linux", architecture: "arm64", variant: "v8" })); // linux/arm64/v8
 * ```
 */
export function formatPlatform(platform: PlatformObject): Platform {
  const base = `${platform.os}/${platform.architecture}`;
  return platform.variant ? `${base}/${platform.variant}` : base;
}

/**
 * The canonical form of a platform, as containerd normalizes it: architecture aliases
 * (`x86_64`, `aarch64`) become Go's names, default variants are dropped (`arm64/v8`,
 * `amd64/v1`) or filled in (`arm` is `arm/v7`).
 *
 * @example
 * ```ts
 * import { normalizePlatform } from "./platform.ts";
 * console.log(normalizePlatform("linux/aarch64/v8"), normalizePlatform("linux/arm"));
 * // linux/arm64 linux/arm/v7
 * ```
 */
export function normalizePlatform(platform: Platform | PlatformObject): Platform {
  const p = typeof platform === "string" ? parsePlatform(platform) : platform;
  const os = p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = (p.variant ?? "").toLowerCase();
  if (/^[0-9]$/.test(variant)) variant = `v${variant}`;
  switch (architecture) {
    case "i386":
      architecture = "386";
      variant = "";
      break;
    case "x86_64":
    case "x86-64":
    case "amd64":
      architecture = "amd64";
      if (variant === "v1") variant = "";
      break;
    case "aarch64":
    case "arm64":
      architecture = "arm64";
      if (variant === "v8") variant = "";
      break;
    case "armhf":
      architecture = "arm";
      variant = "v7";
      break;
    case "armel":
      architecture = "arm";
      variant = "v6";
      break;
    case "arm":
      if (variant === "") variant = "v7";
      break;
  }
  return formatPlatform({ os, architecture, variant: variant || undefined });
}
