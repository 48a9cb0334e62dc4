/**
 * The registry client of every command that asks a registry about the spec's images
 * (`build`, `status`, `lock`, `explain`): the configuration's insecure registries and
 * timeout, credentials from the images' registry secrets (then Docker's config), and a
 * line on standard error when a registry is slow or retried, unless the output is quiet or
 * JSON. A CI log that stops for a minute without a word looks like a hang.
 *
 * @module
 */

import type { Flags } from "../cli/args.ts";
import { err } from "../cli/output.ts";
import type { Config } from "../config.ts";
import type { ImagePlan } from "../plan.ts";
import { type BasicCredentials, RegistryClient } from "../registry/client.ts";
import { describeProgress } from "../registry/progress.ts";
import { parseReference } from "../registry/reference.ts";
import type { TagCache } from "../registry/tag_cache.ts";
import { registryCredentials } from "../secrets.ts";

/**
 * A registry client for a command. `plans` gives the spec's plans once they are known (the
 * client may be made before the spec is loaded, so that connections overlap loading it).
 * `tagCache` only for `build`: a cache saves it a request, where `status` must rest on what
 * the registry answers now.
 *
 * @example
 * ```ts
 * import { defaultConfig } from "imgtool";
 * import { commandRegistryClient } from "./registry_client.ts";
 * const flags = { json: true, quiet: false, push: false, force: false, image: [], platform: [] };
 * const client = commandRegistryClient(defaultConfig(), flags, () => []);
 * await client.close();
 * ```
 */
export function commandRegistryClient(
  config: Config,
  flags: Pick<Flags, "quiet" | "json">,
  plans: () => readonly ImagePlan[],
  options: { readonly tagCache?: TagCache } = {},
): RegistryClient {
  return new RegistryClient({
    insecureRegistries: [...config.insecureRegistries],
    credentials: (host) => registrySecretCredentials(plans(), host),
    tagCache: options.tagCache,
    timeoutMs: config.registryTimeout * 1000,
    onProgress: (event) => {
      if (!flags.quiet && !flags.json) err(describeProgress(event));
    },
  });
}

/**
 * Credentials from the registry secret of an image pushed to `host`, if one has it.
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage } from "imgtool";
 * import { registrySecretCredentials } from "./registry_client.ts";
 * const plan = planImage(Image.fromBase("127.0.0.1:5000/base:1"), "default", defaultConfig());
 * console.log(await registrySecretCredentials([plan], "127.0.0.1:5000")); // undefined
 * ```
 */
export function registrySecretCredentials(
  plans: readonly ImagePlan[],
  host: string,
): Promise<BasicCredentials | undefined> {
  const plan = plans.find((plan) =>
    plan.spec.registrySecret && plan.info.registry &&
    parseReference(`${plan.info.registry}/x`).registry === host
  );
  const secret = plan?.spec.registrySecret;
  return Promise.resolve(plan && secret ? registryCredentials(secret, plan.config) : undefined);
}
