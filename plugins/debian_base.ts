/**
 * `Image.fromDebianBase`: the default Python recipe. Starts from the configured Python base
 * image (a Debian image with Python; mirrorable through `[images] python`), checks its
 * Python version, installs the configured Debian packages, and makes a virtual environment
 * at `/opt/venv` that is first on `PATH`. With the uv installer, uv comes from the
 * configured uv image; with the pip installer, only `python3` and its `venv` module are
 * needed. Both images are pinned by `imgtool.lock` when it has entries for them.
 *
 * @module
 */

import {
  copy,
  definePlugin,
  type Diagnostic,
  env,
  fromInstructions,
  type PluginContext,
  run,
  shellQuote,
} from "../contract.ts";
import { aptCacheMounts, aptInstallCommands, normalizePackages } from "./apt.ts";
import { installerCache, pipInstall } from "./shared/python.ts";

/** The layer's options. */
export interface Options {
  /** Install the `flyte` package. */
  readonly installFlyte: boolean;
  /** The `flyte` version to install. */
  readonly flyteVersion?: string;
}

/** The options when none are given. */
export const defaults = { installFlyte: false } satisfies Options;

/** Where the virtual environment is. */
export const VENV = "/opt/venv";

/** The Python base image for the image's Python version. */
export function pythonImage(context: PluginContext): string {
  if (context.image.baseImage) return context.image.baseImage;
  const [major, minor] = context.image.pythonVersion;
  return context.config.images.python.replaceAll("{major}", String(major)).replaceAll(
    "{minor}",
    String(minor),
  );
}

/** The Debian base plugin. */
export const debianBase = definePlugin<Options>({
  name: "debian_base",
  kind: "base",
  // 2: apt's docker-clean hook stays in the image (version 1 removed it).
  // 3: apt's steps mount one cache (the apt plugin's version 3).
  version: 3,
  validate(options, context) {
    const problems: Diagnostic[] = [];
    if (options.flyteVersion !== undefined && !/^[A-Za-z0-9.+!*-]+$/.test(options.flyteVersion)) {
      problems.push({
        message: `flyte version ${JSON.stringify(options.flyteVersion)} is not a version`,
      });
    }
    const image = pythonImage(context);
    if (!/^[A-Za-z0-9][A-Za-z0-9._\/:@-]*$/.test(image)) {
      problems.push({
        message: `Python base image ${JSON.stringify(image)} is not a valid image reference`,
        hint: "fix [images] python in imgtool.toml (or IMGTOOL_IMAGES_PYTHON)",
      });
    }
    return problems;
  },
  nextState: (_options, context) => ({
    python: { version: context.image.pythonVersion, venv: VENV, python: `${VENV}/bin/python` },
    hasUv: context.config.installer === "uv",
    workdir: "/root",
  }),
  identify: (options, context) => ({
    ...options,
    pythonImage: pythonImage(context),
    installer: context.config.installer,
    uvImage: context.config.installer === "uv" ? context.config.images.uv : null,
    debianPackages: normalizePackages(context.config.debianPackages),
    cacheMounts: context.config.cacheMounts,
  }),
  render(options, context) {
    const { config } = context;
    const [major, minor] = context.image.pythonVersion;
    const uv = config.installer === "uv";
    // Both images as `imgtool.lock` pins them (by digest when it has an entry).
    const instructions = fromInstructions(context, pythonImage(context));
    if (uv) {
      instructions.push(
        copy(["/uv", "/uvx"], "/usr/local/bin/", { from: context.pinned(config.images.uv) }),
      );
    }
    // A mirror that serves the wrong Python fails here, not in a later layer.
    const check = `python3 -c ${
      shellQuote(
        `import sys; v = sys.version_info[:2]; sys.exit(0 if v == (${major}, ${minor}) else ` +
          `"the base image has Python %d.%d, the spec asks for ${major}.${minor}" % v)`,
      )
    }`;
    instructions.push(run(check));
    const packages = normalizePackages(config.debianPackages);
    if (packages.length > 0) {
      instructions.push(
        run(aptInstallCommands(packages, config.cacheMounts), {
          mounts: aptCacheMounts(config.cacheMounts),
        }),
      );
    }
    const makeVenv = uv
      ? `uv venv ${VENV} --python "$(command -v python3)"`
      : `python3 -m venv ${VENV}`;
    instructions.push(
      run(makeVenv, {
        mounts: installerCache(context),
        env: uv ? { UV_PYTHON_DOWNLOADS: "never" } : {},
      }),
    );
    instructions.push(env({ VIRTUAL_ENV: VENV }), `ENV PATH="${VENV}/bin:\${PATH}"`);
    if (options.installFlyte) {
      const flyte = options.flyteVersion ? `flyte==${options.flyteVersion}` : "flyte";
      const after = {
        ...context,
        state: {
          ...context.state,
          python: {
            version: context.image.pythonVersion,
            venv: VENV,
            python: `${VENV}/bin/python`,
          },
          hasUv: uv,
        },
      };
      const step = pipInstall(after, [shellQuote(flyte)], {
        extraIndexUrls: [],
        pre: false,
        secretMounts: [],
      });
      instructions.push(run(step.command, { mounts: step.mounts, env: step.env }));
    }
    instructions.push("WORKDIR /root");
    return { instructions };
  },
}, { module: import.meta.url });

export default debianBase;
