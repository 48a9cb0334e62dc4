/**
 * An example custom plugin that needs no build engine when pushing: it writes a small JSON
 * file describing the release into the image and labels the image with the version. Its
 * `render` hook gives the Dockerfile (a `COPY` of a generated file and a `LABEL`); its
 * `append` hook describes the same layer as a file and a configuration change, so that
 * `imgtool build --push` appends it through the registry (see docs/plugins.md, "Without the
 * engine: `append`").
 *
 * @example
 * ```ts
 * import { Image } from "imgtool";
 * import { releaseInfo } from "./release_info.ts";
 *
 * export default Image.fromDebianBase({ name: "service" })
 *   .withLayer(releaseInfo({ version: "1.4.2", channel: "stable" }));
 * ```
 *
 * @module
 */

import { copy, definePlugin, dockerfileQuote, type Layer } from "imgtool";

/**
 * The options of a `release_info` layer.
 *
 * @example
 * ```ts
 * import type { Options } from "./release_info.ts";
 * const options: Options = { version: "1.4.2", channel: "stable" };
 * console.log(options.channel); // stable
 * ```
 */
export interface Options {
  /** The release's version, e.g. `1.4.2`. */
  readonly version: string;
  /** Its channel, e.g. `stable` or `beta`. */
  readonly channel: string;
}

/** Where the file goes in the image. */
export const RELEASE_FILE = "/etc/release.json";
const LABEL = "org.opencontainers.image.version";
const VERSION = /^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/;

/**
 * The file's content: the same bytes for `render` and `append`.
 *
 * @example
 * ```ts
 * import { releaseJson } from "./release_info.ts";
 * console.log(releaseJson({ version: "1.0", channel: "beta" }));
 * // {"channel":"beta","version":"1.0"}
 * ```
 */
export function releaseJson(options: Options): string {
  return `${JSON.stringify({ channel: options.channel, version: options.version })}\n`;
}

/** The `release_info` plugin. */
export const releaseInfoPlugin = definePlugin<Options>({
  name: "release_info",
  validate(options) {
    return [options.version, options.channel].filter((value) => !VERSION.test(value)).map((
      value,
    ) => ({
      message: `${JSON.stringify(value)} is not a version or channel name`,
      hint: "use letters, digits, '.', '+', '_' and '-' (at most 64), e.g. 1.4.2",
    }));
  },
  render: (options, context) => {
    const target = `${context.contextDir}/release.json`;
    return {
      instructions: [
        // As the built-in file layers do: the image's user owns what it copies.
        copy([target], RELEASE_FILE, { chown: context.state.user }),
        `LABEL ${LABEL}=${dockerfileQuote(options.version)}`,
      ],
      context: [{ kind: "text", content: releaseJson(options), target }],
    };
  },
  // The same layer, without the engine: one file (0644, root's) and one label.
  append: (options) => ({
    files: [{ kind: "text", content: releaseJson(options), target: RELEASE_FILE }],
    config: { labels: { [LABEL]: options.version } },
  }),
}, { module: import.meta.url });

/**
 * A `release_info` layer, for `Image.withLayer`.
 *
 * @example
 * ```ts
 * import { Image } from "imgtool";
 * import { releaseInfo } from "./release_info.ts";
 * const image = Image.fromBase("debian:bookworm-slim").withLayer(releaseInfo({ version: "2.0.0", channel: "stable" }));
 * console.log(image.layers.length); // 2
 * ```
 */
export function releaseInfo(options: Options): Layer<Options> {
  return releaseInfoPlugin.layer(options, "releaseInfo");
}
