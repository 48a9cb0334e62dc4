import assert from "node:assert/strict";
import { parseCommandLine } from "../src/cli/args.ts";
import { UsageError } from "../src/errors.ts";

const flagsOf = (...argv: string[]) => {
  const command = parseCommandLine(argv);
  assert.ok("flags" in command);
  return command.flags;
};

Deno.test("flags take values as --name VALUE and --name=VALUE, and repeat where allowed", () => {
  const flags = flagsOf(
    "build",
    "--image",
    "a",
    "--image=b",
    "--platform",
    "linux/amd64, linux/arm64",
    "--registry=127.0.0.1:5000/x",
    "-q",
    "--push",
  );
  assert.deepEqual(flags.image, ["a", "b"]);
  assert.deepEqual(flags.platform, ["linux/amd64", "linux/arm64"]);
  assert.equal(flags.registry, "127.0.0.1:5000/x");
  assert.equal(flags.quiet, true);
  assert.equal(flags.push, true);
  assert.equal(flags.force, false);
});

Deno.test("the spec is the one positional, spec.ts by default; -- ends the flags", () => {
  assert.deepEqual(parseCommandLine(["uri"]), {
    kind: "uri",
    spec: "spec.ts",
    flags: flagsOf("uri"),
  });
  const command = parseCommandLine(["uri", "--json", "--", "-odd-name.ts"]);
  assert.ok(command.kind === "uri");
  assert.equal(command.spec, "-odd-name.ts");
  assert.equal(command.flags.json, true);
  assert.deepEqual(parseCommandLine(["build", "-h"]), { kind: "help", topic: "build" });
});

Deno.test("command-line mistakes are usage errors that say what is wrong and where to look", () => {
  const cases: [string[], RegExp][] = [
    [["build", "--bogus"], /build: unknown flag --bogus/],
    [["build", "-x"], /unknown flag -x/],
    [["uri", "--push"], /uri: unknown flag --push/],
    [["build", "--push=yes"], /--push takes no value/],
    [["dockerfile", "--out"], /--out needs a value: --out DIR/],
    [["build", "--image", "--push"], /--image needs a value/],
    [["build", "a.ts", "b.ts"], /build takes one spec file, got 2/],
  ];
  for (const [argv, message] of cases) {
    assert.throws(() => parseCommandLine(argv), (error: unknown) => {
      assert.ok(error instanceof UsageError, argv.join(" "));
      assert.match(error.message, message);
      assert.match(error.hint ?? "", /imgtool \w+ --help/);
      return true;
    });
  }
});
