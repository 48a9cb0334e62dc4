/**
 * `Image.fromRefName`: start from an image named in the configuration (`[refs]` in
 * imgtool.toml maps names to URIs). With no layers on top, the image is that image. The URI
 * is pinned by `imgtool.lock` like any base (keyed by the URI, not the name).
 *
 * @module
 */

import {
  definePlugin,
  type Diagnostic,
  fromInstructions,
  type PluginContext,
} from "../contract.ts";
import { referenceProblems } from "./base_image.ts";

/** The layer's options. */
export interface Options {
  /** The reference name. */
  readonly name: string;
}

function resolveRef(options: Options, context: PluginContext): string | undefined {
  return context.image.baseImage ?? context.config.refs[options.name];
}

/** The reference name plugin. */
export const refName = definePlugin<Options>({
  name: "ref_name",
  version: 1,
  kind: "base",
  validate(options, context) {
    const uri = resolveRef(options, context);
    if (uri === undefined) {
      const known = Object.keys(context.config.refs);
      return [{
        message: `unknown reference name ${JSON.stringify(options.name)}`,
        hint: `add it under [refs] in imgtool.toml (${options.name} = "registry/image:tag")` +
          (known.length > 0 ? `; known names: ${known.join(", ")}` : ""),
      }] satisfies Diagnostic[];
    }
    // Say where the bad reference came from: the configuration, not the spec.
    const fromConfig = context.image.baseImage === undefined;
    return referenceProblems(uri).map((problem) =>
      fromConfig
        ? {
          ...problem,
          message: `[refs] ${options.name} = ${JSON.stringify(uri)} is not a valid image reference`,
          hint: `fix it in imgtool.toml or IMGTOOL_REFS: ${problem.hint}`,
        }
        : problem
    );
  },
  reference: (options, context) => context.pinned(resolveRef(options, context) ?? options.name),
  identify: (options, context) => ({
    name: options.name,
    uri: resolveRef(options, context) ?? null,
  }),
  render: (options, context) => ({
    instructions: fromInstructions(context, resolveRef(options, context) ?? options.name),
  }),
}, { module: import.meta.url });

export default refName;
