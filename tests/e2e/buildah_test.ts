/**
 * The end-to-end groups with the buildah builder (`--builder buildah`): the same image with
 * every layer type, skip and `--force`, and the two-platform index. buildah builds into its
 * own store, so the tests look inside what docker pulls back from the registry. See
 * `suites.ts`.
 *
 * @module
 */

import { e2eTest } from "./harness.ts";
import { everyLayerSuite, twoPlatformSuite } from "./suites.ts";

e2eTest(
  "buildah: an image with every layer type builds, pushes, and holds what the spec says",
  (t, facts) => everyLayerSuite(t, facts, "buildah"),
);

e2eTest(
  "buildah: a two-platform image is pushed as one OCI index and each platform runs",
  (t, facts) => twoPlatformSuite(t, facts, "buildah"),
);
