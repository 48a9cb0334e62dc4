// Secret masking: multi-line secrets (PEM keys, .netrc files, JSON keys; LF, CRLF or CR) are
// masked line by line and in their base64 forms, by the redactor itself, through exec's line
// splitter when output arrives in pieces, through buildImage with the docker builder whose
// client is a stand-in script, and in the CLI's text and --json output and failure reports.
import assert from "node:assert/strict";
import { join } from "node:path";
import { type BuilderContext, BuildError, defaultConfig, exec, Image, planImage } from "../mod.ts";
import { docker } from "../plugins/docker.ts";
import { buildImage } from "../src/build.ts";
import { identify } from "../src/identify.ts";
import { redactor } from "../src/secrets.ts";
import { imgtool, withTempDir, writeTree } from "./helpers.ts";

const MARK = "***";

/** `count` random base64 characters (a PEM body line is 64 of them). */
function randomBase64(count: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(count));
  return btoa(String.fromCharCode(...bytes)).slice(0, count);
}

/** A PEM-like key: marker lines around random base64 lines, the last one shorter. */
function pemLike(): string {
  const body = Array.from({ length: 8 }, () => randomBase64(64));
  return `-----BEGIN TEST PRIVATE KEY-----\n${body.join("\n")}\n${
    randomBase64(10)
  }==\n-----END TEST PRIVATE KEY-----\n`;
}

/** A .netrc-like file: indented lines, a blank line and a whitespace-only line. */
function netrcLike(): string {
  return `machine registry.example.com\n  login ci-bot-${randomBase64(6)}\n  password ${
    randomBase64(20)
  }\n\n   \nmachine mirror.example.org login bot password ${randomBase64(16)}\n`;
}

/** A JSON key: its lines `{` and `}` are shorter than four characters. */
function jsonLike(): string {
  return `{\n  "type": "service_account",\n  "private_key_id": "${randomBase64(24)}"\n}\n`;
}

const withLineBreaks = (value: string, lineBreak: string) => value.replaceAll("\n", lineBreak);

/** The non-blank lines of a value, trimmed: what must never appear in output. */
const secretLines = (value: string) =>
  value.split(/\r\n|\r|\n/).map((line) => line.trim()).filter((line) => line !== "");

/**
 * Assert that no line of `value` shows in `text`: a line of four or more characters nowhere,
 * a shorter one not as the last word of any line of `text` (where a step prints it).
 */
function assertNoSecretLine(text: string, value: string, where: string): void {
  for (const line of secretLines(value)) {
    if (line.length >= 4) {
      assert.ok(!text.includes(line), `${where} shows the secret line ${JSON.stringify(line)}`);
    } else {
      const shown = text.split(/\r\n|\r|\n/).find((out) => out.trimEnd().endsWith(` ${line}`));
      assert.equal(shown, undefined, `${where} shows the secret line ${JSON.stringify(line)}`);
    }
  }
}

/** Standard base64 of a text's UTF-8 bytes, and `base64`'s 76-column lines of it. */
function base64Lines(text: string): { whole: string; wrapped: string[] } {
  const whole = btoa(String.fromCharCode(...new TextEncoder().encode(text)));
  return { whole, wrapped: whole.match(/.{1,76}/g) ?? [] };
}

// --- the redactor -------------------------------------------------------------------------

for (const [name, lineBreak] of [["LF", "\n"], ["CRLF", "\r\n"], ["CR", "\r"]] as const) {
  Deno.test(`every line of a multi-line secret (${name}) is masked behind a builder's prefix`, () => {
    for (
      const value of [pemLike(), netrcLike(), jsonLike()].map((v) => withLineBreaks(v, lineBreak))
    ) {
      const mask = redactor([value]);
      const lines = value.split(/\r\n|\r|\n/);
      for (const [index, line] of lines.entries()) {
        const printed = `#7 0.${String(index).padStart(3, "0")} ${line}`;
        const masked = mask(printed);
        if (line.trim() === "") {
          assert.equal(masked, printed, "a blank line of a secret is left alone");
        } else {
          assert.equal(masked, printed.replace(line.trim(), MARK), `line ${index} of ${name}`);
        }
      }
    }
  });
}

Deno.test("a multi-line secret printed whole, with text around it, becomes one mark", () => {
  for (const value of [pemLike(), withLineBreaks(netrcLike(), "\r\n")]) {
    const mask = redactor([value]);
    assert.equal(mask(`before ${value} after`), `before ${MARK} after`);
    assert.equal(mask(`before ${value.trim()} after`), `before ${MARK} after`);
  }
});

Deno.test("text that only shares blanks or braces with a secret is left alone", () => {
  const mask = redactor([netrcLike(), jsonLike()]);
  for (const text of ["a  b", "   ", "", "{x} and }{ stay", "if (ok) { go(); } else", "\n\n"]) {
    assert.equal(mask(text), text);
  }
  // Where a step prints a short line of the secret on its own, it is masked.
  assert.equal(mask("#5 0.201 }"), `#5 0.201 ${MARK}`);
  assert.equal(mask("{"), MARK);
});

Deno.test("a secret's base64 is masked: whole, as base64 wraps it, and line by line", async () => {
  const value = pemLike();
  const mask = redactor([value]);
  const run = async (script: string) => {
    const result = await exec("sh", { args: ["-c", script], stdin: value });
    assert.equal(result.code, 0, result.stderr);
    return result.stdout;
  };
  // coreutils' base64 is the independent encoder here.
  const wrapped = await run("base64");
  const whole = await run("base64 -w0");
  const perLine = await run('while IFS= read -r l; do printf %s "$l" | base64 -w0; echo; done');
  for (const text of [wrapped, whole, perLine]) {
    const lines = text.trimEnd().split("\n");
    assert.ok(lines.length > 1 || text === whole);
    for (const line of lines) assert.equal(mask(`#9 1.5 ${line}`), `#9 1.5 ${MARK}`, line);
    assert.equal(mask(text).replaceAll(MARK, "").trim(), "", "nothing but marks is left");
  }
  assert.equal(base64Lines(value).whole, whole.trim(), "the test's encoder agrees with base64");
});

Deno.test("overlapping and adjacent secrets leave no character of either", () => {
  const first = `${randomBase64(8)}-${randomBase64(8)}`;
  const second = `${first.slice(9)}-${randomBase64(8)}`;
  const mask = redactor([first, second]);
  assert.equal(mask(`[${first.slice(0, 9)}${second}]`), `[${MARK}]`);
  assert.equal(mask(`${first}${second}`), MARK);
});

Deno.test("a single-line secret is masked wherever it occurs, however short", () => {
  assert.equal(redactor(["ab"])("xaby ab"), `x${MARK}y ${MARK}`);
  assert.equal(redactor([" hunter2\n"])("pw=hunter2;"), `pw=${MARK};`);
});

Deno.test("empty and blank secrets mask nothing", () => {
  const mask = redactor(["", "  \n \r\n\t"]);
  for (const text of ["a b", " \t ", "line\nline"]) assert.equal(mask(text), text);
});

Deno.test("a large secret file (4000 lines) is masked line by line", () => {
  const value = Array.from({ length: 4000 }, () => randomBase64(64)).join("\n");
  const mask = redactor([value]);
  const lines = value.split("\n");
  const printed = lines.map((line, index) => `#7 ${index}.000 ${line}`).join("\n");
  assert.equal(
    mask(printed),
    lines.map((_, index) => `#7 ${index}.000 ${MARK}`).join("\n"),
  );
});

// --- the streaming path -------------------------------------------------------------------

Deno.test("exec hands over a line cut across chunks whole, and a CRLF cut after its CR as one break", async () => {
  const got: string[] = [];
  const result = await exec("sh", {
    args: ["-c", "printf '#7 0.1 abc'; sleep 0.2; printf 'def\\r'; sleep 0.2; printf '\\nnext\\r'"],
    onLine: (line) => got.push(line),
  });
  assert.equal(result.code, 0);
  assert.deepEqual(got, ["#7 0.1 abcdef", "next"]);
  assert.equal(result.stdout, "#7 0.1 abcdef\nnext\n");
});

/**
 * A stand-in for the docker client: it answers the version probes like a 20.10 client
 * without buildx, and for `build` prints BuildKit's plain progress in which a step prints
 * every `--secret` file, each line written in two pieces a moment apart, then the file's
 * base64; `fail` makes that step fail.
 */
function fakeDocker(fail: boolean): string {
  return `#!/bin/sh
case "$1" in
  version) echo "20.10.24 20.10.24"; exit 0 ;;
  build) ;;
  *) echo "fake docker: $1 is not supported" >&2; exit 1 ;;
esac
echo "#1 [internal] load build definition from Dockerfile" >&2
echo "#1 DONE 0.0s" >&2
echo "#5 [2/2] RUN cat /run/secrets/*" >&2
n=0
for arg in "$@"; do
  case "$arg" in
    id=*,src=*)
      src="\${arg#*,src=}"
      while IFS= read -r line || [ -n "$line" ]; do
        head=$(printf '%s' "$line" | cut -c1-5)
        rest=$(printf '%s' "$line" | cut -c6-)
        printf '#5 0.%03d %s' "$n" "$head" >&2
        sleep 0.01
        printf '%s\\n' "$rest" >&2
        n=$((n + 1))
      done < "$src"
      base64 "$src" | sed 's/^/#5 0.900 /' >&2 ;;
  esac
done
${
    fail
      ? `echo "#5 ERROR: process \\"/bin/sh -c cat /run/secrets/*\\" did not complete successfully: exit code: 1" >&2
exit 1`
      : `echo "#5 DONE 0.9s" >&2
exit 0`
  }
`;
}

/** Fake docker clients (working and failing) in a temporary folder. */
async function withFakeDocker<T>(
  body: (clients: { working: string; failing: string }) => Promise<T>,
): Promise<T> {
  return await withTempDir(async (dir) => {
    const working = join(dir, "docker-working");
    const failing = join(dir, "docker-failing");
    await Deno.writeTextFile(working, fakeDocker(false), { mode: 0o755 });
    await Deno.writeTextFile(failing, fakeDocker(true), { mode: 0o755 });
    return await body({ working, failing });
  });
}

/** The secrets of the pipeline tests: a PEM key (LF) and a .netrc (CRLF), by variable. */
function pipelineSecrets(): Record<string, string> {
  return {
    MASK_TEST_PEM: pemLike(),
    MASK_TEST_NETRC: withLineBreaks(netrcLike(), "\r\n"),
  };
}

/** Assert no line of any secret, nor any line of its base64, shows in `text`. */
function assertMasked(text: string, secrets: Record<string, string>, where: string): void {
  for (const value of Object.values(secrets)) {
    assertNoSecretLine(text, value, where);
    for (const line of base64Lines(value).wrapped) {
      if (line.length >= 4) assert.ok(!text.includes(line), `${where} shows base64 ${line}`);
    }
  }
  assert.ok(text.includes(MARK), `${where} shows the mask mark:\n${text}`);
}

async function buildWithFakeDocker(client: string, secrets: Record<string, string>) {
  for (const [name, value] of Object.entries(secrets)) Deno.env.set(name, value);
  try {
    const image = Image.fromBase("debian:bookworm").withCommands("cat /run/secrets/*", {
      secretMounts: Object.keys(secrets),
    });
    const config = { ...defaultConfig(), dockerClient: client };
    const plan = planImage(image, "default", config);
    const context: BuilderContext = {
      config,
      registry: { putIndex: () => Promise.reject(new Error("not used")) },
      exec,
    };
    const output: string[] = [];
    const error = await buildImage(plan, await identify(plan), docker, context, {
      push: false,
      insecureRegistry: false,
      signal: new AbortController().signal,
      output: (line) => output.push(line),
    }).then(() => undefined, (error) => error);
    return { output, error };
  } finally {
    for (const name of Object.keys(secrets)) Deno.env.delete(name);
  }
}

Deno.test("buildImage with the docker builder masks every line of a multi-line secret a step prints", async () => {
  await withFakeDocker(async ({ working }) => {
    const secrets = pipelineSecrets();
    const { output, error } = await buildWithFakeDocker(working, secrets);
    assert.equal(error, undefined);
    const lineCount = Object.values(secrets).map((v) => v.split(/\r\n|\n/).length - 1);
    assert.ok(
      output.filter((line) => line.startsWith("#5 0.")).length >=
        lineCount.reduce((a, b) => a + b),
      `the step's lines came through:\n${output.join("\n")}`,
    );
    assertMasked(output.join("\n"), secrets, "the build output");
  });
});

Deno.test("a failing step's report masks every line of a multi-line secret", async () => {
  await withFakeDocker(async ({ failing }) => {
    const secrets = pipelineSecrets();
    const { output, error } = await buildWithFakeDocker(failing, secrets);
    assert.ok(error instanceof BuildError, String(error));
    assert.ok(error.output, "the report has the step's output");
    assertMasked(error.output, secrets, "the failure report's output");
    assertNoSecretLine(error.message, Object.values(secrets).join("\n"), "the error message");
    assert.equal(error.cause, undefined, "the unmasked builder error is not kept");
    assertMasked(output.join("\n"), secrets, "the build output");
  });
});

Deno.test("imgtool build masks a multi-line secret in its progress, its --json and its failure reports", async () => {
  await withFakeDocker(async ({ working, failing }) => {
    await withTempDir(async (dir) => {
      const secrets = pipelineSecrets();
      await writeTree(dir, {
        "imgtool.toml": "# test project\n",
        "spec.ts": `import { Image } from "imgtool";
export default Image.fromBase("debian:bookworm").withCommands("cat /run/secrets/*", {
  secretMounts: ${JSON.stringify(Object.keys(secrets))},
});
`,
      });
      const run = (client: string, extra: string[]) =>
        imgtool(["build", "spec.ts", "--builder", "docker", "--force", ...extra], {
          cwd: dir,
          env: { ...secrets, IMGTOOL_DOCKER_CLIENT: client },
        });
      const [built, failedText, failedJson] = await Promise.all([
        run(working, []),
        run(failing, []),
        run(failing, ["--json"]),
      ]);

      assert.equal(built.code, 0, built.stderr);
      assert.match(built.stderr, /\| #5 0\.\d+ \*\*\*/, "progress shows masked step lines");
      assertMasked(built.stderr, secrets, "build progress");
      assertNoSecretLine(built.stdout, Object.values(secrets).join("\n"), "build's stdout");

      assert.equal(failedText.code, 1, failedText.stderr);
      assert.match(failedText.stderr, /--- output of the failing step ---/);
      assertMasked(failedText.stderr, secrets, "the failure report");

      assert.equal(failedJson.code, 1, failedJson.stderr);
      const report = JSON.parse(failedJson.stdout);
      assert.equal(report.images[0].status, "failed");
      assertMasked(report.images[0].output, secrets, "--json output");
      assertMasked(failedJson.stdout, secrets, "--json stdout");
      assertNoSecretLine(failedJson.stderr, Object.values(secrets).join("\n"), "--json stderr");
    });
  });
});
