import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  defaultConfig,
  type Diagnostic,
  identifySync,
  Image,
  planImage,
  renderImage,
  validateImages,
} from "imgtool";
import { downloadFile, type Options } from "./download_file.ts";
import { nonRootUser } from "./non_root_user.ts";

const SHA = "a".repeat(64);
const GOOD = { url: "https://files.example/data.txt", sha256: SHA, dest: "/opt/data/data.txt" };
const base = () => Image.fromBase("debian:bookworm-slim");

async function problems(layer: Parameters<typeof downloadFile>[0]): Promise<Diagnostic[]> {
  const plan = planImage(base().withLayer(downloadFile(layer)), "default", defaultConfig());
  return await validateImages([plan]);
}

async function messages(layer: Parameters<typeof downloadFile>[0]): Promise<string[]> {
  return (await problems(layer)).map((problem) => problem.message);
}

async function section(image: Image): Promise<readonly string[]> {
  const rendered = await renderImage(planImage(image, "default", defaultConfig()));
  const found = rendered.sections.find((part) => part.plugin === "download_file");
  assert.ok(found, "no download_file section");
  return found.instructions;
}

function tag(image: Image): string {
  return identifySync(planImage(image, "default", defaultConfig())).tag;
}

Deno.test("downloadFile() accepts an http(s) URL, a digest, an absolute path and a mode", async () => {
  assert.deepEqual(await messages(GOOD), []);
  assert.deepEqual(await messages({ ...GOOD, url: "http://127.0.0.1:8000/x", mode: 0o755 }), []);
  assert.deepEqual(
    await messages({ ...GOOD, sha256: "ABCDEF".repeat(10) + "abcd", mode: "755" }),
    [],
  );
});

Deno.test("downloadFile() reports a URL that is not http(s)", async () => {
  for (
    const url of ["ftp://files.example/x", "files.example/x", "", "https://files.example/a\nb"]
  ) {
    assert.deepEqual(await messages({ ...GOOD, url }), [
      ...lineBreakProblem("url", url),
      `url ${JSON.stringify(url)} is not an http(s) URL`,
    ]);
  }
});

// imgtool itself reports a line break in any option of any plugin, before the plugin's checks.
function lineBreakProblem(option: string, value: string): string[] {
  const at = value.indexOf("\n");
  return at < 0 ? [] : [
    `option ${option} holds a line break (U+000A) at character ${
      at + 1
    }, which Dockerfile text cannot carry`,
  ];
}

Deno.test("downloadFile() reports credentials in the URL", async () => {
  const url = "https://user:pw@files.example/x";
  assert.deepEqual(await messages({ ...GOOD, url }), [
    `url ${
      JSON.stringify(url)
    } has a user name or password, which would be written into the Dockerfile`,
  ]);
});

Deno.test("downloadFile() reports a digest that is not 64 hex digits", async () => {
  for (const sha256 of ["", "a".repeat(63), "g".repeat(64), `sha256:${SHA}`]) {
    assert.deepEqual(await messages({ ...GOOD, sha256 }), [
      `sha256 ${JSON.stringify(sha256)} is not a SHA-256 digest (64 hex digits)`,
    ]);
  }
});

Deno.test("downloadFile() reports a destination that is not an absolute file path", async () => {
  for (const dest of ["data.txt", "/opt/data/", "/opt/$HOME/x", "/opt/a\\b", "", "/opt/a\nb"]) {
    assert.deepEqual(await messages({ ...GOOD, dest }), [
      ...lineBreakProblem("dest", dest),
      `dest ${JSON.stringify(dest)} is not an absolute file path`,
    ]);
  }
});

Deno.test("downloadFile() reports a mode that is not an octal file mode", async () => {
  for (const mode of ["999", "rwx", "07777x", "75", 0o10000, -1, 1.5]) {
    assert.deepEqual(await messages({ ...GOOD, mode }), [
      `mode ${JSON.stringify(mode)} is not an octal file mode`,
    ]);
  }
});

Deno.test("downloadFile() reports every problem at once, naming the plugin", async () => {
  const found = await problems({ url: "nope", sha256: "x", dest: "rel", mode: "9" });
  assert.equal(found.length, 4);
  for (const problem of found) {
    assert.equal(problem.layer?.plugin, "download_file");
    assert.equal(problem.layer?.method, "downloadFile");
  }
});

Deno.test("downloadFile() renders a checked download into a temporary file, then moves it", async () => {
  const image = base().withLayer(downloadFile({ ...GOOD, url: "https://files.example/it's here" }));
  assert.deepEqual(await section(image), [[
    "RUN export DOWNLOAD_URL='https://files.example/it'\\''s here' \\",
    `    && export DOWNLOAD_SHA256=${SHA} \\`,
    '    && tmp="$(mktemp)" \\',
    "    && if ! python3 -c 'import socket, sys, urllib.request; socket.setdefaulttimeout(300); " +
    'urllib.request.urlretrieve(sys.argv[1], sys.argv[2])\' "$DOWNLOAD_URL" "$tmp"; then ' +
    "printf 'download_file: could not download %s\\n' \"$DOWNLOAD_URL\" >&2; exit 1; fi \\",
    '    && if ! printf \'%s  %s\\n\' "$DOWNLOAD_SHA256" "$tmp" | sha256sum --check --status; ' +
    "then printf 'download_file: %s has SHA-256 %s, expected %s\\n' \"$DOWNLOAD_URL\" " +
    '"$(sha256sum < "$tmp" | cut -d \' \' -f 1)" "$DOWNLOAD_SHA256" >&2; exit 1; fi \\',
    "    && mkdir -p /opt/data \\",
    '    && mv "$tmp" /opt/data/data.txt \\',
    "    && chmod 0644 /opt/data/data.txt",
  ].join("\n")]);
});

Deno.test("downloadFile() uses the base's Python and writes the mode in four digits", async () => {
  const image = Image.fromDebianBase().withLayer(downloadFile({ ...GOOD, mode: "755" }));
  const [step] = await section(image);
  assert.match(step, /&& if ! \/opt\/venv\/bin\/python -c /);
  assert.match(step, /&& chmod 0755 \/opt\/data\/data\.txt$/);
});

Deno.test("downloadFile() after a user switch downloads as root and gives the file to the user", async () => {
  const image = base().withLayer(nonRootUser("app")).withLayer(downloadFile(GOOD));
  const instructions = await section(image);
  assert.equal(instructions.length, 3);
  assert.equal(instructions[0], "USER root");
  assert.match(instructions[1], /&& chown app:app \/opt\/data\/data\.txt$/);
  assert.equal(instructions[2], "USER app:app");
});

Deno.test("downloadFile() identity changes with url, digest, dest and mode", () => {
  const reference = tag(base().withLayer(downloadFile(GOOD)));
  const tags = [
    { ...GOOD, url: "https://files.example/other.txt" },
    { ...GOOD, sha256: "b".repeat(64) },
    { ...GOOD, dest: "/opt/data/other.txt" },
    { ...GOOD, mode: "0755" },
  ].map((options) => tag(base().withLayer(downloadFile(options))));
  assert.equal(new Set([reference, ...tags]).size, 5);
});

Deno.test("downloadFile() identity is the same for equal modes and digests in any case", () => {
  const forms: Partial<Options>[] = [
    { mode: "755" },
    { mode: "0755" },
    { mode: 0o755 },
    { mode: "0755", sha256: "A".repeat(64) },
  ];
  const tags = forms.map((form) => tag(base().withLayer(downloadFile({ ...GOOD, ...form }))));
  assert.equal(new Set(tags).size, 1);
});

Deno.test("Image.uri works on an image with a downloadFile layer", () => {
  const image = Image.fromDebianBase({ name: "data" }).withLayer(downloadFile(GOOD));
  assert.match(image.uri, /^data:[0-9a-f]{32}$/);
});

// The rendered step, run by the local shell against a server on 127.0.0.1: the digest
// check really passes for the right file and really fails the step for a wrong one.
const tools = ["sh", "python3", "sha256sum", "mktemp"].every((tool) =>
  new Deno.Command("sh", { args: ["-c", `command -v ${tool}`], stdout: "null" }).outputSync()
    .success
);

Deno.test({
  name: "downloadFile()'s step downloads, checks and places the file, and fails on a mismatch",
  ignore: !tools,
  async fn() {
    const body = "hello from the test server\n";
    const digest = Array.from(
      new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body))),
      (byte) => byte.toString(16).padStart(2, "0"),
    ).join("");
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (request) =>
        new URL(request.url).pathname === "/file.txt"
          ? new Response(body)
          : new Response("missing", { status: 404 }),
    );
    const dir = await mkdtemp(join(tmpdir(), "download-file-test-"));
    try {
      const url = `http://127.0.0.1:${server.addr.port}/file.txt`;
      const runStep = async (options: Parameters<typeof downloadFile>[0]) => {
        const [step] = await section(base().withLayer(downloadFile(options)));
        const script = step.replace(/^RUN /, "");
        return await new Deno.Command("sh", { args: ["-c", script], stderr: "piped" }).output();
      };

      const dest = join(dir, "sub", "file.txt");
      const ok = await runStep({ url, sha256: digest, dest, mode: "0640" });
      assert.ok(ok.success, new TextDecoder().decode(ok.stderr));
      assert.equal(await readFile(dest, "utf8"), body);
      assert.equal((await stat(dest)).mode & 0o777, 0o640);

      const wrong = join(dir, "wrong.txt");
      const mismatch = await runStep({ url, sha256: "0".repeat(64), dest: wrong, mode: "0644" });
      assert.equal(mismatch.success, false);
      assert.equal(
        new TextDecoder().decode(mismatch.stderr),
        `download_file: ${url} has SHA-256 ${digest}, expected ${"0".repeat(64)}\n`,
      );
      await assert.rejects(stat(wrong));

      const missingUrl = `http://127.0.0.1:${server.addr.port}/missing`;
      const missing = await runStep({ url: missingUrl, sha256: digest, dest: wrong, mode: "0644" });
      assert.equal(missing.success, false);
      assert.match(
        new TextDecoder().decode(missing.stderr),
        new RegExp(`download_file: could not download ${missingUrl.replaceAll(".", "\\.")}\n$`),
      );
      await assert.rejects(stat(wrong));
    } finally {
      await server.shutdown();
      await rm(dir, { recursive: true, force: true });
    }
  },
});
