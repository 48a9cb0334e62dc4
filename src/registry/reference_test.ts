import assert from "node:assert/strict";
import { InvalidReferenceError } from "./errors.ts";
import { formatReference, isDigest, parseReference, referenceTarget } from "./reference.ts";

const DIGEST = `sha256:${"ab".repeat(32)}`;

Deno.test("parseReference() normalizes a bare Docker Hub name to library/<name>:latest", () => {
  assert.deepEqual(parseReference("ubuntu"), {
    registry: "docker.io",
    host: "registry-1.docker.io",
    repository: "library/ubuntu",
    tag: "latest",
    digest: undefined,
  });
});

Deno.test("parseReference() keeps a Docker Hub user's repository and its tag", () => {
  const ref = parseReference("bitnami/redis:7.2");
  assert.equal(ref.registry, "docker.io");
  assert.equal(ref.repository, "bitnami/redis");
  assert.equal(ref.tag, "7.2");
});

Deno.test("parseReference() folds docker.io and index.docker.io into the same registry", () => {
  for (const input of ["docker.io/ubuntu:22.04", "index.docker.io/library/ubuntu:22.04"]) {
    const ref = parseReference(input);
    assert.equal(ref.registry, "docker.io");
    assert.equal(ref.host, "registry-1.docker.io");
    assert.equal(ref.repository, "library/ubuntu");
    assert.equal(ref.tag, "22.04");
  }
});

Deno.test("parseReference() reads a registry with a port, a nested path and a tag", () => {
  assert.deepEqual(parseReference("127.0.0.1:5000/a/b:t"), {
    registry: "127.0.0.1:5000",
    host: "127.0.0.1:5000",
    repository: "a/b",
    tag: "t",
    digest: undefined,
  });
});

Deno.test("parseReference() reads a digest and then has no default tag", () => {
  const ref = parseReference(`host.example/a@${DIGEST}`);
  assert.equal(ref.registry, "host.example");
  assert.equal(ref.repository, "a");
  assert.equal(ref.tag, undefined);
  assert.equal(ref.digest, DIGEST);
  assert.equal(referenceTarget(ref), DIGEST);
});

Deno.test("parseReference() keeps both tag and digest, and the digest is what is fetched", () => {
  const ref = parseReference(`ghcr.io/o/app:1.0@${DIGEST}`);
  assert.equal(ref.tag, "1.0");
  assert.equal(referenceTarget(ref), DIGEST);
  assert.equal(formatReference(ref), `ghcr.io/o/app:1.0@${DIGEST}`);
});

Deno.test("parseReference() treats localhost and IPv6 literals as registries", () => {
  assert.equal(parseReference("localhost/app").registry, "localhost");
  assert.equal(parseReference("localhost:5000/app").host, "localhost:5000");
  const v6 = parseReference("[::1]:5000/app:x");
  assert.equal(v6.registry, "[::1]:5000");
  assert.equal(v6.repository, "app");
});

Deno.test("parseReference() treats a first component without dot, colon or capitals as a path", () => {
  const ref = parseReference("team/app");
  assert.equal(ref.registry, "docker.io");
  assert.equal(ref.repository, "team/app");
});

Deno.test("parseReference() rejects what Docker rejects, saying why", () => {
  const cases: [string, RegExp][] = [
    ["", /empty/],
    ["Ubuntu", /must be lowercase/],
    ["ubuntu:", /tag "" is not valid/],
    ["ubuntu:-x", /tag "-x" is not valid/],
    ["a b", /whitespace/],
    ["a//b", /path component ""/],
    ["a/-b", /path component "-b"/],
    ["ubuntu@sha256:abc", /64 lowercase hex/],
    ["ubuntu@md5:" + "a".repeat(32), /algorithm "md5" is not supported/],
    ["host:99999/app", /port 99999 is out of range/],
    ["a".repeat(64), /image ID/],
    ["reg.example/" + "a".repeat(300), /longer than 255/],
    ["reg.example/", /repository name is empty/],
  ];
  for (const [input, reason] of cases) {
    assert.throws(
      () => parseReference(input),
      (error: unknown) => {
        assert.ok(error instanceof InvalidReferenceError, `${input}: ${error}`);
        assert.match(error.message, reason, input);
        assert.equal(error.exitCode, 2);
        assert.match(error.hint ?? "", /registry\[:port\]/);
        return true;
      },
    );
  }
});

Deno.test("formatReference() writes the full normalized form", () => {
  assert.equal(formatReference(parseReference("alpine")), "docker.io/library/alpine:latest");
});

Deno.test("isDigest() accepts sha256 and sha512 digests only", () => {
  assert.equal(isDigest(DIGEST), true);
  assert.equal(isDigest(`sha512:${"0".repeat(128)}`), true);
  assert.equal(isDigest("sha256:xyz"), false);
  assert.equal(isDigest("latest"), false);
});
