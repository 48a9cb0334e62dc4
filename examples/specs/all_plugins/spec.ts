/**
 * Every example plugin on one image: Node.js with a global npm package, a downloaded and
 * checked file, and a non-root user that owns the copied app.
 *
 * The plugins are local files, imported by relative paths (as a spec may; remote imports
 * are not available to the imgtool binary). Build it with:
 *
 *     imgtool build examples/specs/all_plugins/spec.ts
 *
 * What the build needs, and how a test points it at local servers:
 * - `IMGTOOL_EXAMPLE_DOWNLOAD_URL`: where `files/greeting.txt` (beside this spec) is
 *   served; `IMGTOOL_EXAMPLE_DOWNLOAD_SHA256` overrides its digest (default: that file's).
 * - `IMGTOOL_EXAMPLE_NPM_PACKAGES`: the npm packages to install, space-separated
 *   (default `semver@7.6.3`). The registry comes from imgtool.toml:
 *   `[plugins.node_packages] registry = "http://127.0.0.1:4873/"`, else npm's default.
 * - `IMGTOOL_EXAMPLE_NPM_TOKEN`: when set, it is the registry's auth token, passed as a
 *   build secret (it then needs the registry setting above).
 * - The base image's apt sources must serve Debian's `nodejs` and `npm` packages.
 *
 * In the image: `node hello.js` (in `/home/app`, run as `app`) prints the greeting.
 *
 * @module
 */

import { Image } from "imgtool";
import { downloadFile } from "../../plugins/download_file.ts";
import { nodePackages } from "../../plugins/node_packages.ts";
import { nonRootUser } from "../../plugins/non_root_user.ts";

// The SHA-256 of files/greeting.txt, the file a test serves for the download.
const GREETING_SHA256 = "a3667b98e6051e776f57f91fb7388e8d132ce73c0777faaf9874ce6b57437776";

const downloadUrl = Deno.env.get("IMGTOOL_EXAMPLE_DOWNLOAD_URL") ?? "https://example.com/file";
const downloadSha256 = Deno.env.get("IMGTOOL_EXAMPLE_DOWNLOAD_SHA256") ?? GREETING_SHA256;
const npmPackages = (Deno.env.get("IMGTOOL_EXAMPLE_NPM_PACKAGES") ?? "semver@7.6.3")
  .split(" ").filter((name) => name !== "");
// The token's value never enters the spec: the secret names the variable that holds it.
const npmToken = Deno.env.get("IMGTOOL_EXAMPLE_NPM_TOKEN") !== undefined
  ? "IMGTOOL_EXAMPLE_NPM_TOKEN"
  : undefined;

export default Image.fromDebianBase({ name: "imgtool-example-all-plugins" })
  // Root's work first: installing packages and writing to /opt need root.
  .withLayer(nodePackages(npmPackages, { authToken: npmToken }))
  .withLayer(downloadFile({
    url: downloadUrl,
    sha256: downloadSha256,
    dest: "/opt/example/greeting.txt",
    mode: "0644",
  }))
  // From here on, steps run as `app`, and copied files belong to it.
  .withLayer(nonRootUser("app", { uid: 10001, workdir: true }))
  .withSourceFile("./app/hello.js");
