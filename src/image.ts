/**
 * The `Image` API: an immutable description of a container image, made of a base layer and
 * further layers. It is the fluent face of the built-in layer plugins (each `with*` method
 * makes a layer of one plugin); the pipeline behind it only ever sees plugins and layers.
 *
 * Constructing an image never reads a missing file or reaches a registry, and neither does
 * reading its `uri`: problems surface in {@link Image.validate} and in every build.
 *
 * @module
 */

import { basename, resolve } from "./path.ts";
import { readWholeTextSync } from "./fs.ts";
import { activeConfig } from "./config.ts";
import { isLayer, type Layer, type Platform, type PythonVersion } from "./plugin.ts";
import { isSecret, Secret, type SecretRequest, toSecrets } from "./secret.ts";
import { callerOutside } from "./callsite.ts";
import { identifySync } from "./identify.ts";
import { planImage } from "./plan.ts";
import { validateImages } from "./validate.ts";
import { ValidationError } from "./errors.ts";

import aptPlugin from "../plugins/apt.ts";
import baseImagePlugin from "../plugins/base_image.ts";
import commandsPlugin from "../plugins/commands.ts";
import debianBasePlugin from "../plugins/debian_base.ts";
import dockerfilePlugin from "../plugins/dockerfile.ts";
import dockerignorePlugin from "../plugins/dockerignore.ts";
import envVarsPlugin from "../plugins/env_vars.ts";
import pipPlugin from "../plugins/pip.ts";
import poetryProjectPlugin from "../plugins/poetry_project.ts";
import refNamePlugin from "../plugins/ref_name.ts";
import requirementsPlugin from "../plugins/requirements.ts";
import sourceFilePlugin from "../plugins/source_file.ts";
import sourceFolderPlugin from "../plugins/source_folder.ts";
import uvProjectPlugin from "../plugins/uv_project.ts";
import uvScriptPlugin, { parseScriptHeader, pythonVersionFor } from "../plugins/uv_script.ts";
import workdirPlugin from "../plugins/workdir.ts";

/**
 * One platform or several.
 *
 * @example
 * ```ts
 * import { Image, type PlatformRequest } from "imgtool";
 * const platform: PlatformRequest = ["linux/amd64", "linux/arm64"];
 * const image = Image.fromDebianBase({ name: "multiarch", platform });
 * console.log(image.spec.platforms); // [ "linux/amd64", "linux/arm64" ]
 * ```
 */
export type PlatformRequest = Platform | readonly Platform[];

/**
 * What an image is, apart from its layers.
 *
 * @example
 * ```ts
 * import { Image, type ImageSpec } from "imgtool";
 * const spec: ImageSpec = Image.fromDebianBase({ name: "trainer" }).withWorkdir("/app").spec;
 * console.log(spec.name, spec.layers.map((layer) => layer.origin.method));
 * // trainer [ "Image.fromDebianBase", "withWorkdir" ]
 * ```
 */
export interface ImageSpec {
  /** The base layer first, then every other layer in order. */
  readonly layers: readonly Layer[];
  /** The image name. */
  readonly name?: string;
  /** The registry. */
  readonly registry?: string;
  /** The secret that grants access to the registry (`user:password`, or a token). */
  readonly registrySecret?: Secret;
  /** Platforms, when the user named them. */
  readonly platforms?: readonly Platform[];
  /** The Python version, when the user named it. */
  readonly pythonVersion?: PythonVersion;
  /** A base image that replaces the base layer's own. */
  readonly baseImage?: string;
  /** Build with the local builder whatever else is configured (`withLocalV2`). */
  readonly localBuilder: boolean;
}

/**
 * Options of {@link Image.fromDebianBase}.
 *
 * @example
 * ```ts
 * import { type FromDebianBaseOptions, Image } from "imgtool";
 * const options: FromDebianBaseOptions = {
 *   pythonVersion: [3, 11],
 *   flyteVersion: "2.0.0",
 *   registry: "ghcr.io/acme",
 *   name: "workflows",
 *   platform: ["linux/amd64", "linux/arm64"],
 * };
 * console.log(Image.fromDebianBase(options).name); // workflows
 * ```
 */
export interface FromDebianBaseOptions {
  /** Python version; default from configuration (3.12). */
  pythonVersion?: PythonVersion;
  /** The `flyte` package version to install (implies `installFlyte`). */
  flyteVersion?: string;
  /** Install the `flyte` package; default false. */
  installFlyte?: boolean;
  /** Registry to push to. */
  registry?: string;
  /** Secret to pull from and push to the registry. */
  registrySecret?: string | Secret;
  /** Image name; default `imgtool-python`. */
  name?: string;
  /** Platform or platforms; default from configuration, else `linux/amd64`. */
  platform?: PlatformRequest;
}

/**
 * Options of {@link Image.fromDockerfile}.
 *
 * @example
 * ```ts
 * import { type FromDockerfileOptions, Image } from "imgtool";
 * const options: FromDockerfileOptions = {
 *   name: "tool",
 *   registry: "ghcr.io/acme",
 *   platform: "linux/arm64",
 * };
 * const image = Image.fromDockerfile("./docker/Dockerfile", options);
 * console.log(image.registry, image.name); // ghcr.io/acme tool
 * ```
 */
export interface FromDockerfileOptions {
  /** Registry to push to. */
  registry?: string;
  /** Image name. */
  name: string;
  /** Platform or platforms. */
  platform?: PlatformRequest;
}

/**
 * Options for installing Python packages from an index.
 *
 * @example
 * ```ts
 * import { Image, type IndexOptions } from "imgtool";
 * const index: IndexOptions = {
 *   indexUrl: "https://pypi.internal.example/simple",
 *   extraIndexUrls: ["https://download.pytorch.org/whl/cpu"],
 *   extraArgs: "--no-deps",
 *   secretMounts: "PIP_INDEX_TOKEN",
 * };
 * const image = Image.fromDebianBase({ name: "ml" }).withPipPackages(["torch", "numpy"], index);
 * ```
 */
export interface IndexOptions {
  /** The index to install from instead of PyPI. */
  indexUrl?: string;
  /** More indexes to look in. */
  extraIndexUrls?: string | readonly string[];
  /** Allow pre-release versions. */
  pre?: boolean;
  /** More arguments for the installer, as shell words. */
  extraArgs?: string;
  /** Secrets the install step needs (private indexes, git credentials). */
  secretMounts?: SecretRequest;
}

/**
 * Options of {@link Image.fromUvScript}.
 *
 * @example
 * ```ts
 * import { type FromUvScriptOptions, Image } from "imgtool";
 * const options: FromUvScriptOptions = {
 *   name: "nightly-report",
 *   registry: "ghcr.io/acme",
 *   pythonVersion: [3, 12],
 *   indexUrl: "https://pypi.internal.example/simple",
 * };
 * const image = Image.fromUvScript("./report.py", options);
 * console.log(image.name); // nightly-report
 * ```
 */
export interface FromUvScriptOptions extends IndexOptions {
  /** Image name. */
  name: string;
  /** Registry to push to. */
  registry?: string;
  /** Secret to pull from and push to the registry. */
  registrySecret?: string | Secret;
  /**
   * Python version; default: the configured one when the script's `requires-python` allows
   * it, else the lowest version it allows.
   */
  pythonVersion?: PythonVersion;
  /** Platform or platforms. */
  platform?: PlatformRequest;
}

/**
 * Options of {@link Image.clone}.
 *
 * @example
 * ```ts
 * import { type CloneOptions, Image } from "imgtool";
 * const base = Image.fromDebianBase({ name: "base" }).withAptPackages("git");
 * const options: CloneOptions = {
 *   registry: "ghcr.io/acme",
 *   name: "base-py311",
 *   pythonVersion: [3, 11],
 * };
 * const variant = base.clone(options);
 * console.log(variant.name, variant.spec.pythonVersion?.join(".")); // base-py311 3.11
 * ```
 */
export interface CloneOptions {
  /** A new registry. */
  registry?: string;
  /** A new registry secret. */
  registrySecret?: string | Secret;
  /** A new name. */
  name?: string;
  /** A base image to use instead of the base layer's own. */
  baseImage?: string;
  /** A new Python version. */
  pythonVersion?: PythonVersion;
  /** A layer to add at the end. */
  addlLayer?: Layer;
}

/**
 * Options that take only secrets.
 *
 * @example
 * ```ts
 * import { Image, Secret, type SecretMountOptions } from "imgtool";
 * const options: SecretMountOptions = {
 *   secretMounts: new Secret({ key: "netrc", mount: "/root/.netrc" }),
 * };
 * const image = Image.fromDebianBase()
 *   .withCommands("git clone https://git.example/acme/tools /opt/tools", options);
 * ```
 */
export interface SecretMountOptions {
  /** Secrets the step needs. */
  secretMounts?: SecretRequest;
}

/**
 * How a project is installed.
 *
 * @example
 * ```ts
 * import { Image, type ProjectInstallMode } from "imgtool";
 * // "dependencies_only" (the default) keeps the dependency layer cached while the code changes.
 * const mode: ProjectInstallMode = "install_project";
 * const image = Image.fromDebianBase()
 *   .withUvProject("./pyproject.toml", { projectInstallMode: mode });
 * ```
 */
export type ProjectInstallMode = "dependencies_only" | "install_project";

/**
 * Options of {@link Image.withUvProject}.
 *
 * @example
 * ```ts
 * import { Image, type UvProjectOptions } from "imgtool";
 * const options: UvProjectOptions = {
 *   uvlock: "./uv.lock",
 *   projectInstallMode: "install_project",
 *   extraIndexUrls: "https://download.pytorch.org/whl/cpu",
 * };
 * const image = Image.fromDebianBase({ name: "service" })
 *   .withUvProject("./pyproject.toml", options);
 * ```
 */
export interface UvProjectOptions extends IndexOptions {
  /** The lock file; default `uv.lock` beside the pyproject, when there is one. */
  uvlock?: string;
  /** Install only the dependencies (default), or the project too. */
  projectInstallMode?: ProjectInstallMode;
}

/**
 * Options of {@link Image.withPoetryProject}.
 *
 * @example
 * ```ts
 * import { Image, type PoetryProjectOptions } from "imgtool";
 * const options: PoetryProjectOptions = {
 *   poetryLock: "./poetry.lock",
 *   extraArgs: "--only main",
 *   secretMounts: "POETRY_HTTP_BASIC_PRIVATE_PASSWORD",
 * };
 * const image = Image.fromDebianBase({ name: "api" })
 *   .withPoetryProject("./pyproject.toml", options);
 * ```
 */
export interface PoetryProjectOptions extends SecretMountOptions {
  /** The lock file; default `poetry.lock` beside the pyproject. */
  poetryLock?: string;
  /** More arguments for `poetry install`, as shell words. */
  extraArgs?: string;
  /** Install only the dependencies (default), or the project too. */
  projectInstallMode?: ProjectInstallMode;
}

/**
 * Options of {@link Image.withSourceFolder}.
 *
 * @example
 * ```ts
 * import { Image, type SourceFolderOptions } from "imgtool";
 * // ./src/app.py lands at /app/app.py instead of /app/src/app.py.
 * const options: SourceFolderOptions = { copyContentsOnly: true };
 * const image = Image.fromDebianBase().withSourceFolder("./src", "/app", options);
 * ```
 */
export interface SourceFolderOptions {
  /** Copy the folder's contents into `dst` instead of the folder itself. */
  copyContentsOnly?: boolean;
}

/**
 * Options of {@link Image.withEnvVars}.
 *
 * @example
 * ```ts
 * import { Image } from "imgtool";
 * // PATH becomes /opt/tool/bin followed by the PATH the image had.
 * const image = Image.fromDebianBase()
 *   .withEnvVars({ APP_HOME: "/opt/app" })
 *   .withEnvVars({ PATH: "/opt/tool/bin:$PATH", DATA: "${APP_HOME}/data" }, { expand: true });
 * ```
 */
export interface EnvVarsOptions {
  /**
   * Replace `$NAME` and `${NAME}` in the values by the image's variables (its `ENV`) as they
   * are before this layer; unset ones (`HOME` among them: containers get it when they start)
   * are empty. Nothing else is interpreted. Without it (the default), values are literal.
   */
  expand?: boolean;
}

const IMAGE_SPEC = Symbol.for("imgtool.image.spec");

/**
 * A container image, described in code. Start from a constructor (`fromDebianBase`,
 * `fromBase`, `fromDockerfile`, `fromRefName`, `fromUvScript`), add layers with `with*`
 * methods (each returns a new image), and export it from a spec for `imgtool build`.
 *
 * @example
 * ```ts
 * import { Image } from "imgtool";
 *
 * export default Image.fromDebianBase({ pythonVersion: [3, 12], name: "trainer", registry: "ghcr.io/acme" })
 *   .withAptPackages(["git", "curl"])
 *   .withPipPackages(["numpy==2.1.0", "pandas"])
 *   .withEnvVars({ MODE: "prod" })
 *   .withWorkdir("/app");
 * ```
 */
export class Image {
  declare private readonly [IMAGE_SPEC]: ImageSpec;

  private constructor(spec: ImageSpec) {
    const frozen = Object.freeze({
      ...spec,
      layers: frozenList(spec.layers),
      platforms: spec.platforms && frozenList(spec.platforms),
    });
    Object.defineProperty(this, IMAGE_SPEC, { value: frozen });
    Object.freeze(this);
  }

  /**
   * Start from an image that already exists. With no layers added, it is never built:
   * its `uri` is `imageUri` itself.
   *
   * @example
   * ```ts
   * import { Image } from "imgtool";
   * console.log(Image.fromBase("debian:bookworm-slim").uri); // debian:bookworm-slim
   * ```
   */
  static fromBase(imageUri: string): Image {
    return new Image({
      layers: [baseImagePlugin.layer({ imageUri }, "Image.fromBase")],
      localBuilder: false,
    });
  }

  /**
   * Start from the Debian-based Python recipe: a Python base image, a virtual environment at
   * `/opt/venv` on `PATH`, `build-essential` and `ca-certificates`, and optionally the
   * `flyte` package. The base images it names come from configuration (mirrorable).
   *
   * @example
   * ```ts
   * import { Image } from "imgtool";
   * const image = Image.fromDebianBase({ pythonVersion: [3, 12], name: "trainer" });
   * console.log(image.uri.startsWith("trainer:")); // true
   * ```
   */
  static fromDebianBase(options: FromDebianBaseOptions = {}): Image {
    const layer = debianBasePlugin.layer({
      installFlyte: options.installFlyte ?? options.flyteVersion !== undefined,
      flyteVersion: options.flyteVersion,
    }, "Image.fromDebianBase");
    return new Image({
      layers: [layer],
      name: options.name ?? "imgtool-python",
      registry: options.registry,
      registrySecret: optionalSecret(options.registrySecret),
      platforms: toPlatforms(options.platform),
      pythonVersion: options.pythonVersion,
      localBuilder: false,
    });
  }

  /**
   * Build from your own Dockerfile; its folder is the build context (its `.dockerignore`
   * applies). Everything the context holds counts in the tag, so editing a copied file
   * rebuilds the image.
   *
   * @example
   * ```ts
   * import { Image } from "imgtool";
   * const image = Image.fromDockerfile("./docker/Dockerfile", { name: "tool", registry: "ghcr.io/acme" });
   * ```
   */
  static fromDockerfile(file: string, options: FromDockerfileOptions): Image {
    return new Image({
      layers: [dockerfilePlugin.layer({ file }, "Image.fromDockerfile")],
      name: options.name,
      registry: options.registry,
      platforms: toPlatforms(options.platform),
      localBuilder: false,
    });
  }

  /**
   * An image whose URI the configuration supplies: `[refs]` in imgtool.toml maps names to
   * URIs. An unknown name is a validation error.
   *
   * @example
   * ```ts
   * import { Image } from "imgtool";
   * const base = Image.fromRefName("company-base").withAptPackages("git");
   * ```
   */
  static fromRefName(name: string): Image {
    return new Image({
      layers: [refNamePlugin.layer({ name }, "Image.fromRefName")],
      localBuilder: false,
    });
  }

  /**
   * An image for a uv script: the Debian Python recipe plus the dependencies its PEP 723
   * header (`# /// script`) declares. Unless given, the Python version is the configured one
   * when the script's `requires-python` allows it, else the lowest version it allows.
   *
   * @example
   * ```ts
   * import { Image } from "imgtool";
   * const image = Image.fromUvScript("./job.py", { name: "job", registry: "ghcr.io/acme" });
   * ```
   */
  static fromUvScript(script: string, options: FromUvScriptOptions): Image {
    const site = callerOutside();
    const path = resolve(site?.dir ?? Deno.cwd(), script);
    const base = Image.fromDebianBase({
      name: options.name,
      registry: options.registry,
      registrySecret: options.registrySecret,
      platform: options.platform,
      pythonVersion: options.pythonVersion ?? scriptPythonVersion(path),
    });
    return base.#with(uvScriptPlugin.layer({
      script,
      ...indexOptions(options),
    }, "Image.fromUvScript"));
  }

  /** The image's description: its layers and image-level settings. */
  get spec(): ImageSpec {
    return this[IMAGE_SPEC];
  }

  /** The image name, if set. */
  get name(): string | undefined {
    return this.spec.name;
  }

  /** The registry, if set. */
  get registry(): string | undefined {
    return this.spec.registry;
  }

  /** The layers, base first. */
  get layers(): readonly Layer[] {
    return this.spec.layers;
  }

  /**
   * `<registry>/<name>:<tag>`, or `<name>:<tag>` without a registry; for an unbuilt base,
   * the base itself. Computed from the spec's content; never reaches a registry.
   *
   * @example
   * ```ts
   * import { Image } from "imgtool";
   * const image = Image.fromDebianBase({ name: "app", registry: "ghcr.io/acme" });
   * console.log(image.uri); // ghcr.io/acme/app:<32 hex digits>
   * ```
   */
  get uri(): string {
    return identifySync(planImage(this, "image", activeConfig())).uri;
  }

  /**
   * The tag: a digest of everything that goes into the image.
   *
   * @example
   * ```ts
   * import { Image } from "imgtool";
   * console.log(Image.fromDebianBase().identifier.length); // 32
   * ```
   */
  get identifier(): string {
    return identifySync(planImage(this, "image", activeConfig())).tag;
  }

  /**
   * A copy with a new registry, name, base image or Python version, and optionally one more
   * layer.
   *
   * @example
   * ```ts
   * import { Image } from "imgtool";
   * const base = Image.fromDebianBase({ name: "base" });
   * const mirrored = base.clone({ registry: "registry.internal:5000/team", name: "base-copy" });
   * ```
   */
  clone(options: CloneOptions = {}): Image {
    const spec = this.spec;
    const next = new Image({
      ...spec,
      registry: options.registry ?? spec.registry,
      registrySecret: optionalSecret(options.registrySecret) ?? spec.registrySecret,
      name: options.name ?? spec.name,
      baseImage: options.baseImage ?? spec.baseImage,
      pythonVersion: options.pythonVersion ?? spec.pythonVersion,
    });
    return options.addlLayer ? next.withLayer(options.addlLayer) : next;
  }

  /**
   * Check every layer (files exist, names are valid, secrets have values) and report every
   * problem at once, as a {@link ValidationError}.
   *
   * @example
   * ```ts
   * import { Image } from "imgtool";
   * await Image.fromBase("debian:bookworm").withEnvVars({ MODE: "prod" }).validate();
   * ```
   */
  async validate(): Promise<void> {
    const config = activeConfig();
    const diagnostics = await validateImages([planImage(this, "image", config)]);
    if (diagnostics.length > 0) throw new ValidationError(diagnostics);
  }

  /**
   * Install Debian packages with apt (`--no-install-recommends`, apt caches on cache mounts).
   *
   * @example
   * ```ts
   * import { Image } from "imgtool";
   * const image = Image.fromDebianBase().withAptPackages(["git", "curl"]);
   * ```
   */
  withAptPackages(packages: string | readonly string[], options: SecretMountOptions = {}): Image {
    return this.#with(aptPlugin.layer({
      packages: toList(packages),
      secretMounts: toSecrets(options.secretMounts),
    }, "withAptPackages"));
  }

  /**
   * Run shell commands, one `RUN` step each. Do not start them with `RUN`.
   *
   * @example
   * ```ts
   * import { Image } from "imgtool";
   * const image = Image.fromDebianBase().withCommands(["mkdir -p /data", "echo ready > /data/state"]);
   * ```
   */
  withCommands(commands: string | readonly string[], options: SecretMountOptions = {}): Image {
    return this.#with(commandsPlugin.layer({
      commands: toList(commands),
      secretMounts: toSecrets(options.secretMounts),
    }, "withCommands"));
  }

  /**
   * Apply a `.dockerignore` file to every file the image takes from disk, in every layer.
   *
   * @example
   * ```ts
   * import { Image } from "imgtool";
   * const image = Image.fromDebianBase().withSourceFolder("./src").withDockerignore("./.dockerignore");
   * ```
   */
  withDockerignore(path: string): Image {
    return this.#with(dockerignorePlugin.layer({ path }, "withDockerignore"));
  }

  /**
   * Set environment variables in the image. Any value arrives exactly, quotes, `$`,
   * backslashes and line breaks included. With `{ expand: true }`, `$NAME` and `${NAME}` in
   * the values are replaced by the image's variables (its `ENV`) as they are before this
   * layer, empty when unset; nothing else is interpreted.
   *
   * @example
   * ```ts
   * import { Image } from "imgtool";
   * const image = Image.fromDebianBase()
   *   .withEnvVars({ MODE: "prod", GREETING: 'say "hi" to $USER' }) // $USER stays as written
   *   .withEnvVars({ PATH: "/opt/tool/bin:$PATH" }, { expand: true });
   * ```
   */
  withEnvVars(envVars: Readonly<Record<string, string>>, options: EnvVarsOptions = {}): Image {
    return this.#with(envVarsPlugin.layer({
      envVars: { ...envVars },
      expand: options.expand ?? false,
    }, "withEnvVars"));
  }

  /**
   * Build this image with the local builder, whatever builder the configuration or the
   * command line names.
   *
   * @example
   * ```ts
   * import { Image } from "imgtool";
   * const image = Image.fromDebianBase().withLocalV2();
   * ```
   */
  withLocalV2(): Image {
    return new Image({ ...this.spec, localBuilder: true });
  }

  /**
   * Install Python packages (pip requirement syntax) into the image's Python environment.
   *
   * @example
   * ```ts
   * import { Image } from "imgtool";
   * const image = Image.fromDebianBase()
   *   .withPipPackages(["numpy==2.1.0", "pandas"], { indexUrl: "https://pypi.example/simple" });
   * ```
   */
  withPipPackages(packages: string | readonly string[], options: IndexOptions = {}): Image {
    return this.#with(pipPlugin.layer({
      packages: toList(packages),
      ...indexOptions(options),
    }, "withPipPackages"));
  }

  /**
   * Install a Poetry project's locked dependencies (and, with `install_project`, the
   * project itself).
   *
   * @example
   * ```ts
   * import { Image } from "imgtool";
   * const image = Image.fromDebianBase().withPoetryProject("./pyproject.toml");
   * ```
   */
  withPoetryProject(pyprojectFile: string, options: PoetryProjectOptions = {}): Image {
    return this.#with(poetryProjectPlugin.layer({
      pyprojectFile,
      poetryLock: options.poetryLock,
      extraArgs: options.extraArgs,
      secretMounts: toSecrets(options.secretMounts),
      projectInstallMode: options.projectInstallMode ?? "dependencies_only",
    }, "withPoetryProject"));
  }

  /**
   * Install the packages of a requirements file. The file is mounted into the step, not
   * copied into a layer.
   *
   * @example
   * ```ts
   * import { Image } from "imgtool";
   * const image = Image.fromDebianBase().withRequirements("./requirements.txt");
   * ```
   */
  withRequirements(file: string, options: SecretMountOptions = {}): Image {
    return this.#with(requirementsPlugin.layer({
      file,
      secretMounts: toSecrets(options.secretMounts),
    }, "withRequirements"));
  }

  /**
   * Copy a file into the image; without `dst`, into the working directory under its own
   * name. A relative `dst` is relative to the working directory.
   *
   * @example
   * ```ts
   * import { Image } from "imgtool";
   * const image = Image.fromDebianBase().withSourceFile("./main.py", "/app/main.py");
   * ```
   */
  withSourceFile(src: string, dst?: string): Image {
    return this.#with(sourceFilePlugin.layer({ src, dst }, "withSourceFile"));
  }

  /**
   * Copy a folder into the image; without `dst`, into the working directory under its own
   * name. With `copyContentsOnly`, its contents land directly in `dst`.
   *
   * @example
   * ```ts
   * import { Image } from "imgtool";
   * const image = Image.fromDebianBase().withSourceFolder("./src", "/app", { copyContentsOnly: true });
   * ```
   */
  withSourceFolder(src: string, dst?: string, options: SourceFolderOptions = {}): Image {
    return this.#with(sourceFolderPlugin.layer({
      src,
      dst,
      copyContentsOnly: options.copyContentsOnly ?? false,
    }, "withSourceFolder"));
  }

  /**
   * Install a uv project's locked dependencies (and, with `install_project`, the project).
   *
   * @example
   * ```ts
   * import { Image } from "imgtool";
   * const image = Image.fromDebianBase().withUvProject("./pyproject.toml");
   * ```
   */
  withUvProject(pyprojectFile: string, options: UvProjectOptions = {}): Image {
    return this.#with(uvProjectPlugin.layer({
      pyprojectFile,
      uvlock: options.uvlock,
      ...indexOptions(options),
      projectInstallMode: options.projectInstallMode ?? "dependencies_only",
    }, "withUvProject"));
  }

  /**
   * Set the working directory for later layers and for the running container.
   *
   * @example
   * ```ts
   * import { Image } from "imgtool";
   * const image = Image.fromDebianBase().withWorkdir("/app");
   * ```
   */
  withWorkdir(workdir: string): Image {
    return this.#with(workdirPlugin.layer({ workdir }, "withWorkdir"));
  }

  /**
   * Add a layer made by a plugin, built-in or your own.
   *
   * @example
   * ```ts
   * import { definePlugin, Image } from "imgtool";
   * const banner = definePlugin<{ readonly text: string }>({
   *   name: "banner",
   *   render: (options) => ({ instructions: [`LABEL banner=${JSON.stringify(options.text)}`] }),
   * });
   * const image = Image.fromDebianBase().withLayer(banner.layer({ text: "hello" }));
   * ```
   */
  withLayer(layer: Layer): Image {
    if (!isLayer(layer)) {
      throw new TypeError("withLayer: expected a layer made by a plugin's layer() function");
    }
    return this.#with(layer);
  }

  #with(layer: Layer): Image {
    return new Image({ ...this.spec, layers: [...this.spec.layers, layer] });
  }

  /** A readable form for logs. */
  toString(): string {
    return `Image(${this.spec.layers.map((layer) => layer.origin.method).join(" → ")})`;
  }
}

/**
 * Is this value an `Image` (made by any copy of imgtool, as inside a compiled binary)?
 *
 * @example
 * ```ts
 * import { Image, isImage } from "imgtool";
 * console.log(isImage(Image.fromBase("debian:bookworm")), isImage({})); // true false
 * ```
 */
export function isImage(value: unknown): value is Image {
  return typeof value === "object" && value !== null &&
    typeof (value as Record<symbol, unknown>)[IMAGE_SPEC] === "object";
}

/** The spec of an image made by any copy of imgtool. */
export function specOf(image: Image): ImageSpec {
  return (image as unknown as Record<symbol, ImageSpec>)[IMAGE_SPEC];
}

/** The default name of an image without one: the base image's repository name. */
export function defaultName(reference: string): string {
  const withoutDigest = reference.split("@")[0];
  const lastPart = withoutDigest.split("/").pop() ?? withoutDigest;
  const name = basename(lastPart.split(":")[0]);
  // A name we make must be valid even when the reference is not (validation reports that).
  return /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/.test(name) ? name : "image";
}

// Lists an image keeps: frozen copies, shared between images once frozen.
function frozenList<T>(list: readonly T[]): readonly T[] {
  return Object.isFrozen(list) ? list : Object.freeze([...list]);
}

function toList(value: string | readonly string[]): string[] {
  return typeof value === "string" ? [value] : [...value];
}

function toPlatforms(platform: PlatformRequest | undefined): Platform[] | undefined {
  if (platform === undefined) return undefined;
  return typeof platform === "string" ? [platform] : [...platform];
}

function optionalSecret(secret: string | Secret | undefined): Secret | undefined {
  if (secret === undefined) return undefined;
  return isSecret(secret) ? secret : new Secret({ key: secret });
}

function indexOptions(options: IndexOptions) {
  return {
    indexUrl: options.indexUrl,
    extraIndexUrls: options.extraIndexUrls === undefined ? [] : toList(options.extraIndexUrls),
    pre: options.pre ?? false,
    extraArgs: options.extraArgs,
    secretMounts: toSecrets(options.secretMounts),
  };
}

// The script's `requires-python`, read at construction as a harmless probe. When it allows
// the configured Python version, the version is left to configuration (so it is the one the
// build uses); else the lowest version it allows. A missing or unreadable script leaves the
// version to configuration (validation reports the file).
function scriptPythonVersion(path: string): PythonVersion | undefined {
  try {
    const header = parseScriptHeader(readWholeTextSync(path, { what: "uv script" }));
    if (!header.requiresPython) return undefined;
    let configured: PythonVersion | undefined;
    try {
      configured = activeConfig().pythonVersion;
    } catch {
      configured = undefined; // a configuration that cannot load: validation says why
    }
    const version = pythonVersionFor(header.requiresPython, configured);
    return version && configured && version.join(".") === configured.join(".")
      ? undefined
      : version;
  } catch {
    return undefined;
  }
}
