/**
 * The end-to-end groups with the Docker engine builder (`--builder docker`): every layer
 * type in one image, skip and `--force`, and a two-platform index. See `suites.ts`.
 *
 * @module
 */

import { e2eTest } from "./harness.ts";
import { everyLayerSuite, twoPlatformSuite } from "./suites.ts";

e2eTest(
  "docker: an image with every layer type builds, pushes, and holds what the spec says",
  (t, facts) => everyLayerSuite(t, facts, "docker"),
);

e2eTest(
  "docker: a two-platform image is pushed as one OCI index and each platform runs",
  (t, facts) => twoPlatformSuite(t, facts, "docker"),
);
