/**
 * An example custom plugin: install Node.js and npm packages globally.
 *
 * Node.js and npm come from the image's Debian packages (`nodejs`, `npm`), installed with
 * apt-get on the same cache mounts as the built-in `withAptPackages`; the packages come
 * from the npm registry, or from `registry` (or `[plugins.node_packages] registry` in
 * imgtool.toml), with npm's cache on a cache mount. A registry token is a build secret:
 * the step reads it from the environment through a generated `.npmrc` that holds only a
 * `${NAME}` reference, so the token lands in no layer, no Dockerfile and no log.
 *
 * @example
 * ```ts
 * import { Image } from "imgtool";
 * import { nodePackages } from "./node_packages.ts";
 *
 * export default Image.fromDebianBase({ name: "tools" })
 *   .withLayer(nodePackages(["typescript@5.6.3", "@biomejs/biome@1.9.4"]));
 * ```
 *
 * @module
 */

import {
  type ContextEntry,
  definePlugin,
  type Diagnostic,
  type Layer,
  type Mount,
  type PluginContext,
  run,
  type Secret,
  secretPath,
  type SecretRequest,
  shellQuote,
  toSecrets,
} from "imgtool";

/**
 * The options of a `node_packages` layer.
 *
 * @example
 * ```ts
 * import type { Options } from "./node_packages.ts";
 * const options: Options = { packages: ["typescript@5.6.3"], installNode: true, secretMounts: [] };
 * ```
 */
export interface Options {
  /** npm package specs: `name`, `name@1.2.3`, `name@^1.2`, `@scope/name@tag`. */
  readonly packages: readonly string[];
  /** Install Node.js and npm from Debian's packages first; turn off when the base has them. */
  readonly installNode: boolean;
  /**
   * The registry to install from (an http(s) URL). Default: `[plugins.node_packages]
   * registry` in imgtool.toml, else npm's own default.
   */
  readonly registry?: string;
  /** The secret that holds an auth token for `registry`; needs a registry. */
  readonly authToken?: string | Secret;
  /** More secrets the install step mounts. */
  readonly secretMounts: SecretRequest;
}

/**
 * The options when none are given.
 *
 * @example
 * ```ts
 * import { defaults } from "./node_packages.ts";
 * console.log(defaults.installNode); // true
 * ```
 */
export const defaults = {
  packages: [],
  installNode: true,
  secretMounts: [],
} satisfies Options;

// A package name (optionally @scope/), then an optional @version, range or tag. No leading
// `-` anywhere, so that no spec is read as an npm option; quoting handles the rest.
const NAME = /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/;
const VERSION = /^[A-Za-z0-9.^~<>=|*+_-]+(?: +[A-Za-z0-9.^~<>=|*+_-]+)*$/;
// Where the generated .npmrc is mounted in the install step.
const NPMRC_DIR = "/tmp/imgtool-npmrc";

/** The specs, sorted and without repeats: npm installs them alike in any order. */
function normalizePackages(packages: readonly string[]): string[] {
  return [...new Set(packages)].sort();
}

function isPackageSpec(spec: string): boolean {
  // The version separator is the first `@` after the name's own (scoped names start with @).
  const at = spec.indexOf("@", 1);
  const name = at === -1 ? spec : spec.slice(0, at);
  const version = at === -1 ? undefined : spec.slice(at + 1);
  return name.length <= 214 && NAME.test(name) && (version === undefined || VERSION.test(version));
}

/** The registry in effect: the layer's own, else the plugin's setting in imgtool.toml. */
function registryOf(options: Options, context: PluginContext): unknown {
  return options.registry ?? context.settings.registry;
}

/** The registry URL with a trailing slash, as npm writes it. */
function normalizeRegistry(registry: string): string {
  return registry.endsWith("/") ? registry : `${registry}/`;
}

// "https://npm.example" and "https://npm.example/" render alike, so they count alike.
function identityRegistry(registry: unknown): unknown {
  return typeof registry === "string" ? normalizeRegistry(registry) : registry ?? null;
}

function tokenSecret(options: Options): Secret | undefined {
  return options.authToken === undefined ? undefined : toSecrets(options.authToken)[0];
}

function allSecrets(options: Options): Secret[] {
  const secrets = [...toSecrets(options.authToken), ...toSecrets(options.secretMounts)];
  return [...new Map(secrets.map((secret) => [secret.id, secret])).values()];
}

function registryProblems(registry: unknown, where: string): Diagnostic[] {
  if (registry === undefined) return [];
  if (typeof registry !== "string") {
    return [{
      message: `${where} must be a string, not ${JSON.stringify(registry)}`,
      hint: 'give an http(s) URL, e.g. "https://npm.example/"',
    }];
  }
  let url: URL | undefined;
  try {
    url = new URL(registry);
  } catch {
    url = undefined;
  }
  // Whitespace, quotes, `$` and `\` would change meaning in the .npmrc npm reads.
  if (!url || !["http:", "https:"].includes(url.protocol) || /[\s"'$\\]/.test(registry)) {
    return [{
      message: `${where} ${JSON.stringify(registry)} is not a plain http(s) URL`,
      hint: 'give a URL such as "https://npm.example/"',
    }];
  }
  if (url.username || url.password) {
    return [{
      message: `${where} ${
        JSON.stringify(registry)
      } has a user name or password, which would be written into the Dockerfile`,
      hint: "remove them and give the token as a secret with authToken",
    }];
  }
  return [];
}

/** The .npmrc for the install step: the registry, and the token as a `${NAME}` reference. */
function npmrc(registry: string, token: Secret | undefined): string {
  const lines = [`registry=${registry}`];
  if (token) {
    const url = new URL(registry);
    // npm matches credentials to a registry by this "nerf dart": //host[:port]/path/.
    lines.push(`//${url.host}${url.pathname}:_authToken=\${${token.id}}`);
  }
  return `${lines.join("\n")}\n`;
}

/**
 * The `node_packages` plugin. Use it through {@link nodePackages}, or directly with
 * `nodePackagesPlugin.layer(options)` when you have all the options at hand.
 *
 * @example
 * ```ts
 * import { Image } from "imgtool";
 * import { defaults, nodePackagesPlugin } from "./node_packages.ts";
 *
 * const image = Image.fromDebianBase()
 *   .withLayer(nodePackagesPlugin.layer({ ...defaults, packages: ["typescript@5.6.3"] }));
 * ```
 */
export const nodePackagesPlugin = definePlugin<Options>({
  name: "node_packages",
  // apt-get and a global npm install need root, even after a layer switched the user.
  needsRoot: true,
  version: 1,
  validate(options, context) {
    const problems: Diagnostic[] = [];
    if (options.packages.length === 0) {
      problems.push({
        message: "no packages given",
        hint: 'name at least one npm package, e.g. "typescript@5.6.3"',
      });
    }
    for (const spec of options.packages) {
      if (!isPackageSpec(spec)) {
        problems.push({
          message: `${JSON.stringify(spec)} is not a valid npm package spec`,
          hint: 'use "name", "name@1.2.3", "name@^1.2" or "@scope/name@tag" (lowercase names)',
        });
      }
    }
    problems.push(
      ...(options.registry !== undefined
        ? registryProblems(options.registry, "registry")
        : registryProblems(context.settings.registry, "[plugins.node_packages] registry")),
    );
    if (options.authToken !== undefined && registryOf(options, context) === undefined) {
      problems.push({
        message: "authToken needs a registry",
        hint:
          "set registry (or [plugins.node_packages] registry in imgtool.toml): a token is sent " +
          "only to the registry it is for",
      });
    }
    return problems;
  },
  secrets: (options) => allSecrets(options),
  // The registry from imgtool.toml changes what is installed, so it counts; the user the
  // steps switch back to comes from earlier layers, which the parent digest covers.
  identify: (options, context) => ({
    packages: normalizePackages(options.packages),
    installNode: options.installNode,
    registry: identityRegistry(registryOf(options, context)),
    authToken: tokenSecret(options) ?? null,
    secrets: toSecrets(options.secretMounts),
    cacheMounts: context.config.cacheMounts,
  }),
  render(options, context) {
    const { cacheMounts } = context.config;
    const registry = registryOf(options, context) as string | undefined;
    const token = tokenSecret(options);
    const instructions: string[] = [];

    if (options.installNode) {
      // With cache mounts, downloads go to a folder of the apt cache mount that Debian's
      // docker-clean hook does not empty; the hook itself stays, for the user's own steps.
      const downloads = "/var/cache/apt/imgtool-archives/";
      const aptGet = cacheMounts ? `apt-get -o Dir::Cache::Archives=${downloads}` : "apt-get";
      const install = `DEBIAN_FRONTEND=noninteractive ${aptGet} install -y ` +
        "--no-install-recommends nodejs npm";
      const aptMounts: Mount[] = cacheMounts
        ? [
          { type: "cache", target: "/var/cache/apt", id: "imgtool-apt-cache" },
          { type: "cache", target: "/var/lib/apt/lists", id: "imgtool-apt-lists" },
        ]
        : [];
      instructions.push(
        run(
          cacheMounts
            ? [`mkdir -p ${downloads}partial`, `${aptGet} update`, install]
            : ["apt-get update", install, "apt-get clean", "rm -rf /var/lib/apt/lists/*"],
          { mounts: aptMounts },
        ),
      );
    }

    const mounts: Mount[] = [];
    const files: ContextEntry[] = [];
    const npmArgs = ["--global", "--no-audit", "--no-fund", "--no-update-notifier"];
    if (registry !== undefined) {
      const target = `${context.contextDir}/npmrc`;
      files.push({ kind: "text", target, content: npmrc(normalizeRegistry(registry), token) });
      mounts.push({ type: "bind", source: target, target: `${NPMRC_DIR}/npmrc` });
      npmArgs.push("--userconfig", `${NPMRC_DIR}/npmrc`);
    }
    if (cacheMounts) mounts.push({ type: "cache", target: "/root/.npm", id: "imgtool-npm" });
    const commands = [
      // A token given as a file secret: npm reads `${ID}` from the environment.
      ...(token && !token.asEnvVar
        ? [`${token.id}="$(cat ${shellQuote(secretPath(token))})" && export ${token.id}`]
        : []),
      `npm install ${npmArgs.join(" ")} ${
        normalizePackages(options.packages).map(shellQuote).join(" ")
      }`,
      ...(cacheMounts ? [] : ["rm -rf /root/.npm"]),
    ];
    instructions.push(run(commands, { mounts, secrets: allSecrets(options) }));

    return { instructions, context: files };
  },
});

/**
 * Install Node.js (Debian's `nodejs` and `npm`) and npm packages globally.
 *
 * @example
 * ```ts
 * import { Image, Secret } from "imgtool";
 * import { nodePackages } from "./node_packages.ts";
 *
 * const image = Image.fromDebianBase({ name: "web-tools" })
 *   .withLayer(nodePackages("prettier@3.3.3"))
 *   .withLayer(nodePackages(["@acme/cli@2.0.0"], {
 *     installNode: false,
 *     registry: "https://npm.acme.example/",
 *     authToken: new Secret({ key: "ACME_NPM_TOKEN" }),
 *   }));
 * ```
 */
export function nodePackages(
  packages: string | readonly string[],
  options: Partial<Omit<Options, "packages">> = {},
): Layer<Options> {
  return nodePackagesPlugin.layer({
    packages: typeof packages === "string" ? [packages] : [...packages],
    installNode: options.installNode ?? defaults.installNode,
    registry: options.registry,
    authToken: options.authToken,
    secretMounts: options.secretMounts ?? defaults.secretMounts,
  }, "nodePackages");
}

export default nodePackages;
