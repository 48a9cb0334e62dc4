/**
 * `Image.fromBase`: start from an image that exists. With no layers on top, the image is
 * that image: never built, its `uri` the reference itself. When `imgtool.lock` has an entry
 * for the reference, `FROM` (and the `uri` of an image used as is) names it by that digest.
 *
 * @module
 */

import { definePlugin, type Diagnostic, fromInstructions } from "../contract.ts";

/** The layer's options. */
export interface Options {
  /** The image reference, `[registry/]name[:tag][@digest]`. */
  readonly imageUri: string;
}

/** A Docker image reference, loosely: what `FROM` accepts without variables. */
export const IMAGE_REFERENCE = /^[A-Za-z0-9][A-Za-z0-9._\/:-]*(?:@sha256:[a-f0-9]{64})?$/;

/** Problems with a base image reference. */
export function referenceProblems(reference: string): Diagnostic[] {
  return IMAGE_REFERENCE.test(reference) ? [] : [{
    message: `${JSON.stringify(reference)} is not a valid image reference`,
    hint: "use [registry/]name[:tag][@sha256:digest], e.g. debian:bookworm-slim",
  }];
}

/** The base image plugin. */
export const baseImage = definePlugin<Options>({
  name: "base_image",
  version: 1,
  kind: "base",
  validate: (options, context) => referenceProblems(context.image.baseImage ?? options.imageUri),
  reference: (options, context) => context.pinned(options.imageUri),
  identify: (options, context) => ({ imageUri: context.image.baseImage ?? options.imageUri }),
  render: (options, context) => ({
    instructions: fromInstructions(context, context.image.baseImage ?? options.imageUri),
  }),
}, { module: import.meta.url });

export default baseImage;
