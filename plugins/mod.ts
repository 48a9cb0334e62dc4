/**
 * The built-in plugins. Layer plugins enter images through the `Image` methods; builder
 * plugins are handed to the core by the CLI, in the order detection tries them.
 *
 * @module
 */

import type { BuilderPlugin } from "../contract.ts";
import buildah from "./buildah.ts";
import docker from "./docker.ts";

/** Builders, in the order `--builder auto` tries them. */
export const builtinBuilders: readonly BuilderPlugin[] = [docker, buildah];
