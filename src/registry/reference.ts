/**
 * Image references, parsed and normalized the way Docker does it: `ubuntu` is
 * `docker.io/library/ubuntu:latest`, served by `registry-1.docker.io`.
 *
 * @module
 */

import { InvalidReferenceError } from "./errors.ts";

/** Docker Hub's canonical registry name, as references and config.json use it. */
export const DOCKER_HUB = "docker.io";
/** The host that serves Docker Hub's registry API. */
export const DOCKER_HUB_API_HOST = "registry-1.docker.io";
/** The key Docker uses for Docker Hub in config.json and when asking credential helpers. */
export const DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/";

/** A parsed, normalized image reference. */
export interface Reference {
  /** The registry as users name it: `docker.io`, `ghcr.io`, `127.0.0.1:5000`, `[::1]:5000`. */
  registry: string;
  /** Where the registry API lives (`host[:port]`): `registry-1.docker.io` for Docker Hub. */
  host: string;
  /** The repository path: `library/ubuntu`, `team/app`. */
  repository: string;
  /** The tag; `latest` when neither a tag nor a digest was given. */
  tag?: string;
  /** The digest (`sha256:...`), when given; it wins over the tag when fetching. */
  digest?: string;
}

// The grammar of distribution's reference package, piece by piece.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN = new RegExp(
  `^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::([0-9]+))?$`,
);
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const IMAGE_ID = /^[a-f0-9]{64}$/;
const NAME_MAX = 255;

/**
 * Parse and normalize an image reference. Throws {@link InvalidReferenceError} with the
 * reason when it does not parse.
 *
 * @example
 * ```ts
 * import { parseReference } from "./reference.ts";
 * const ref = parseReference("ubuntu");
 * console.log(ref.registry, ref.host, ref.repository, ref.tag);
 * // docker.io registry-1.docker.io library/ubuntu latest
 * const local = parseReference("127.0.0.1:5000/team/app@sha256:" + "a".repeat(64));
 * console.log(local.host, local.tag, local.digest?.slice(0, 7)); // 127.0.0.1:5000 undefined sha256:
 * ```
 */
export function parseReference(input: string): Reference {
  function fail(reason: string): never {
    throw new InvalidReferenceError(input, reason);
  }
  if (input.length === 0) fail("it is empty");
  if (/\s/.test(input)) fail("it contains whitespace");
  if (IMAGE_ID.test(input)) {
    fail("a 64-character hex string is an image ID, not a repository name");
  }

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    validateDigest(digest, fail);
  }

  // The first component is a registry only if it looks like a host: it has a dot or a port,
  // is `localhost`, or has upper case (which repository names cannot have).
  let registry = DOCKER_HUB;
  let remainder = rest;
  const slash = rest.indexOf("/");
  if (slash !== -1) {
    const first = rest.slice(0, slash);
    if (/[.:]/.test(first) || first === "localhost" || first.toLowerCase() !== first) {
      registry = first;
      remainder = rest.slice(slash + 1);
    }
  }

  let tag: string | undefined;
  const colon = remainder.lastIndexOf(":");
  if (colon !== -1) {
    tag = remainder.slice(colon + 1);
    remainder = remainder.slice(0, colon);
    if (!TAG.test(tag)) {
      fail(
        `tag ${JSON.stringify(tag)} is not valid (letters, digits, "_", "." and "-", ` +
          `not starting with "." or "-", at most 128 characters)`,
      );
    }
  }

  validateRegistry(registry, fail);
  if (registry === "index.docker.io") registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !remainder.includes("/")) remainder = `library/${remainder}`;

  if (remainder.length === 0) fail("the repository name is empty");
  if (remainder.toLowerCase() !== remainder) fail("repository name must be lowercase");
  for (const component of remainder.split("/")) {
    if (!PATH_COMPONENT.test(component)) {
      fail(
        `repository path component ${JSON.stringify(component)} is not valid (lowercase letters ` +
          `and digits, separated by ".", "_", "__" or "-")`,
      );
    }
  }
  if (registry.length + 1 + remainder.length > NAME_MAX) {
    fail(`the name is longer than ${NAME_MAX} characters`);
  }

  if (tag === undefined && digest === undefined) tag = "latest";
  const host = registry === DOCKER_HUB ? DOCKER_HUB_API_HOST : registry;
  return { registry, host, repository: remainder, tag, digest };
}

function validateRegistry(registry: string, fail: (reason: string) => never): void {
  const match = DOMAIN.exec(registry);
  if (!match) fail(`registry ${JSON.stringify(registry)} is not a valid host[:port]`);
  const port = match[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
    fail(`registry port ${port} is out of range`);
  }
}

function validateDigest(digest: string, fail: (reason: string) => never): void {
  if (!DIGEST.test(digest)) fail(`digest ${JSON.stringify(digest)} is not algorithm:hex`);
  const [algorithm, hex] = digest.split(":");
  const lengths: Record<string, number> = { sha256: 64, sha512: 128 };
  const want = lengths[algorithm];
  if (want === undefined) fail(`digest algorithm ${JSON.stringify(algorithm)} is not supported`);
  if (hex.length !== want || !/^[a-f0-9]+$/.test(hex)) {
    fail(`a ${algorithm} digest is ${want} lowercase hex characters`);
  }
}

/**
 * The full, normalized form of a reference: `docker.io/library/ubuntu:latest`,
 * `127.0.0.1:5000/app:1.0@sha256:...`.
 *
 * @example
 * ```ts
 * import { formatReference, parseReference } from "./reference.ts";
 * console.log(formatReference(parseReference("redis:7"))); // docker.io/library/redis:7
 * ```
 */
export function formatReference(ref: Reference): string {
  const tag = ref.tag !== undefined ? `:${ref.tag}` : "";
  const digest = ref.digest !== undefined ? `@${ref.digest}` : "";
  return `${ref.registry}/${ref.repository}${tag}${digest}`;
}

/**
 * What to ask the registry for in `/v2/<name>/manifests/<here>`: the digest if there is one,
 * else the tag.
 *
 * @example
 * ```ts
 * import { parseReference, referenceTarget } from "./reference.ts";
 * console.log(referenceTarget(parseReference("alpine"))); // latest
 * ```
 */
export function referenceTarget(ref: Reference): string {
  return ref.digest ?? ref.tag ?? "latest";
}

/**
 * Whether `digest` is a well-formed `sha256:` or `sha512:` digest.
 *
 * @example
 * ```ts
 * import { isDigest } from "./reference.ts";
 * console.log(isDigest("sha256:" + "0".repeat(64)), isDigest("latest")); // true false
 * ```
 */
export function isDigest(digest: string): boolean {
  return /^sha256:[a-f0-9]{64}$/.test(digest) || /^sha512:[a-f0-9]{128}$/.test(digest);
}
