import assert from "node:assert/strict";
import { UsageError } from "../errors.ts";
import { formatPlatform, normalizePlatform, parsePlatform } from "./platform.ts";

Deno.test("parsePlatform() reads os/architecture and an optional variant", () => {
  assert.deepEqual(parsePlatform("linux/amd64"), { os: "linux", architecture: "amd64" });
  assert.deepEqual(parsePlatform("linux/arm/v7"), {
    os: "linux",
    architecture: "arm",
    variant: "v7",
  });
});

Deno.test("parsePlatform() rejects other shapes with a usage error", () => {
  for (const bad of ["linux", "linux/", "linux/amd64/v1/x", "Linux/AMD64", ""]) {
    assert.throws(() => parsePlatform(bad), UsageError, bad);
  }
});

Deno.test("normalizePlatform() folds aliases and default variants like containerd", () => {
  assert.equal(normalizePlatform("linux/x86_64"), "linux/amd64");
  assert.equal(normalizePlatform("linux/amd64/v1"), "linux/amd64");
  assert.equal(normalizePlatform("linux/aarch64"), "linux/arm64");
  assert.equal(normalizePlatform("linux/arm64/v8"), "linux/arm64");
  assert.equal(normalizePlatform("linux/arm"), "linux/arm/v7");
  assert.equal(normalizePlatform("linux/armhf"), "linux/arm/v7");
  assert.equal(
    normalizePlatform({ os: "Linux", architecture: "arm", variant: "6" }),
    "linux/arm/v6",
  );
  assert.equal(normalizePlatform("linux/amd64/v3"), "linux/amd64/v3");
});

Deno.test("formatPlatform() leaves out an absent variant", () => {
  assert.equal(formatPlatform({ os: "linux", architecture: "amd64" }), "linux/amd64");
});
