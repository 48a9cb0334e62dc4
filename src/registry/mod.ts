/**
 * imgtool's OCI distribution (registry) client: references, credentials from Docker's
 * config.json and credential helpers, the Basic and Bearer token auth flows, and a
 * {@link RegistryClient} that checks tags and platforms, reads and writes manifests, pushes
 * blobs and writes multi-platform indexes.
 *
 * @example
 * ```ts
 * import { parseReference, RegistryClient } from "./mod.ts";
 * console.log(parseReference("ubuntu").repository); // library/ubuntu
 * const client = new RegistryClient({ insecureRegistries: ["lab.internal:5000"] });
 * console.log(client instanceof RegistryClient); // true
 * ```
 *
 * @module
 */

export {
  type BasicCredentials,
  DEFAULT_MAX_BLOB_BYTES,
  type FetchedManifest,
  MAX_CONFIG_BYTES,
  MAX_MANIFEST_BYTES,
  RegistryClient,
  type RegistryClientOptions,
  type TagStatus,
} from "./client.ts";
export {
  DEFAULT_SLOW_REQUEST_MS,
  describeProgress,
  type ProgressListener,
  type RequestProgress,
} from "./progress.ts";
export { retryDelayMs } from "./retry.ts";
export { defaultTagCacheDir, FileTagCache, type SeenTag, type TagCache } from "./tag_cache.ts";
export {
  CredentialsError,
  InvalidReferenceError,
  RegistryError,
  type RegistryErrorKind,
} from "./errors.ts";
export {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  MANIFEST_ACCEPT,
  OCI_INDEX,
  OCI_MANIFEST,
} from "./manifest.ts";
export {
  formatPlatform,
  normalizePlatform,
  parsePlatform,
  type Platform,
  type PlatformObject,
} from "./platform.ts";
export {
  DOCKER_HUB,
  DOCKER_HUB_API_HOST,
  formatReference,
  isDigest,
  parseReference,
  type Reference,
} from "./reference.ts";
export {
  type Credential,
  dockerConfigDir,
  lookupCredential,
  readDockerConfig,
} from "./credentials.ts";
