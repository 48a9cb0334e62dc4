// Diagnostics with `severity: "warning"`: reported like errors (image, layer, method, spec
// line), marked `warning:`, and never failing `validate` or stopping a build. The plugin here
// warns about a privileged port and refuses one out of range, so that a spec can hold a
// warning, an error, or both.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  defaultConfig,
  definePlugin,
  type Diagnostic,
  formatWarnings,
  Image,
  planImage,
  validateImages,
  ValidationError,
} from "../mod.ts";
import { ensureValid } from "../src/commands/prepare.ts";
import { imgtool, lineOf, withTempDir, writeTree } from "./helpers.ts";

const exposePort = definePlugin<{ readonly port: number; readonly severity?: string }>({
  name: "expose_port",
  validate(options): Diagnostic[] {
    if (options.port > 65535) {
      return [{ message: `port ${options.port} is out of range`, hint: "use 1 to 65535" }];
    }
    if (options.port < 1024) {
      return [{
        severity: (options.severity ?? "warning") as Diagnostic["severity"],
        message: `port ${options.port} needs root to listen on`,
        hint: "use a port from 1024 up",
      }];
    }
    return [];
  },
  render: (options) => ({ instructions: [`EXPOSE ${options.port}`] }),
});

const THIS_FILE = import.meta.filename!;
const base = Image.fromBase("debian:bookworm-slim");
const plan = (image: Image) => planImage(image, "default", defaultConfig());

Deno.test("a plugin's warning keeps its severity and gets the image, layer, method and spec line, like an error", async () => {
  const image = base.withLayer(exposePort.layer({ port: 80 })); // @warned
  const [warning, ...rest] = await validateImages([plan(image)], { warnings: true });
  assert.deepEqual(rest, []);
  assert.deepEqual(warning, {
    message: "port 80 needs root to listen on",
    hint: "use a port from 1024 up",
    severity: "warning",
    image: "default",
    layer: { plugin: "expose_port", method: "withLayer(expose_port)", index: 1 },
    callSite: `${THIS_FILE}:${lineOf(THIS_FILE, "// @" + "warned")}`,
  });
});

Deno.test("validateImages leaves warnings out unless asked: none means valid", async () => {
  const image = base.withLayer(exposePort.layer({ port: 80 }));
  assert.deepEqual(await validateImages([plan(image)]), []);
  const both = base.withLayer(exposePort.layer({ port: 80 }))
    .withLayer(exposePort.layer({ port: 70000 }));
  assert.deepEqual((await validateImages([plan(both)])).map((d) => d.message), [
    "port 70000 is out of range",
  ]);
});

Deno.test("a severity other than warning that a plugin writes is an error, reported without it", async () => {
  const image = base.withLayer(exposePort.layer({ port: 80, severity: "warn" }));
  const found = await validateImages([plan(image)]);
  assert.deepEqual(found.map((d) => [d.message, "severity" in d]), [
    ["port 80 needs root to listen on", false],
  ]);
});

Deno.test("ensureValid returns the warnings of a valid spec instead of throwing", async () => {
  const image = base.withLayer(exposePort.layer({ port: 80 }));
  const warnings = await ensureValid([plan(image)]);
  assert.deepEqual(warnings.map((d) => [d.severity, d.message]), [
    ["warning", "port 80 needs root to listen on"],
  ]);
  assert.deepEqual(await ensureValid([plan(image)], { warnings: false }), []);
});

Deno.test("ensureValid throws for an error beside a warning; the error counts, the warning is listed after it", async () => {
  const image = base.withLayer(exposePort.layer({ port: 80 }))
    .withLayer(exposePort.layer({ port: 70000 }));
  const error = await ensureValid([plan(image)]).then(
    () => assert.fail("an error must fail validation"),
    (thrown) => thrown,
  );
  assert.ok(error instanceof ValidationError);
  assert.equal(error.exitCode, 2);
  assert.deepEqual(error.diagnostics.map((d) => [d.severity ?? "error", d.layer?.index]), [
    ["warning", 1],
    ["error", 2],
  ]);
  const lines = error.message.split("\n");
  assert.equal(lines[0], "1 problem found:");
  assert.match(lines[1], /^ {2}- image "default", layer 2 .*: port 70000 is out of range$/);
  const warningLine = lines.findIndex((line) => line.startsWith("warning: "));
  assert.ok(warningLine > 1, error.message);
  assert.match(lines[warningLine], /layer 1 .*: port 80 needs root to listen on$/);
});

Deno.test("formatWarnings writes one warning: block per warning, with its spec line and hint, and leaves errors out", () => {
  const text = formatWarnings([
    { message: "an error", hint: "not shown" },
    {
      severity: "warning",
      message: "port 80 needs root to listen on",
      hint: "use a port from 1024 up",
      image: "api",
      layer: { plugin: "expose_port", method: "withLayer(expose_port)", index: 2 },
      callSite: "/p/spec.ts:7",
    },
  ]);
  assert.equal(
    text,
    'warning: image "api", layer 2 (withLayer(expose_port), plugin expose_port): ' +
      "port 80 needs root to listen on\n  at /p/spec.ts:7\n  hint: use a port from 1024 up",
  );
});

// The command line, on a project with the plugin above as a file of its own.
const PLUGIN_FILE = `import { definePlugin } from "imgtool";

export const exposePort = definePlugin<{ readonly port: number }>({
  name: "expose_port",
  validate: (options) =>
    options.port > 65535
      ? [{ message: \`port \${options.port} is out of range\`, hint: "use 1 to 65535" }]
      : options.port < 1024
      ? [{ severity: "warning", message: \`port \${options.port} needs root to listen on\` }]
      : [],
  render: (options) => ({ instructions: [\`EXPOSE \${options.port}\`] }),
});
`;

const WARNED_SPEC = `import { Image } from "imgtool";
import { exposePort } from "./port_plugin.ts";

export default Image.fromBase("debian:bookworm-slim")
  .withLayer(exposePort.layer({ port: 80 })); // @port80
`;

const BROKEN_SPEC = `import { Image } from "imgtool";
import { exposePort } from "./port_plugin.ts";

export default Image.fromBase("debian:bookworm-slim")
  .withLayer(exposePort.layer({ port: 80 })) // @port80
  .withLayer(exposePort.layer({ port: 70000 })); // @port70000
`;

const PATH_SPEC = `import { Image } from "imgtool";

export default Image.fromBase("debian:bookworm-slim")
  .withWorkdir("/app")
  .withEnvVars({ PATH: "/x:$PATH" }); // @path
`;

function inProject<T>(body: (dir: string) => Promise<T>): Promise<T> {
  return withTempDir(async (dir) => {
    await writeTree(dir, {
      "imgtool.toml": "# test project\n",
      "port_plugin.ts": PLUGIN_FILE,
      "warned.ts": WARNED_SPEC,
      "broken.ts": BROKEN_SPEC,
      "path.ts": PATH_SPEC,
    });
    return await body(dir);
  });
}

const at = (dir: string, spec: string, marker: string) =>
  `${join(dir, spec)}:${lineOf(join(dir, spec), `// @${marker}`)}`;

Deno.test("imgtool validate: a custom plugin's warning does not fail it (exit 0); it is printed as warning: with the spec line", async () => {
  await inProject(async (dir) => {
    const result = await imgtool(["validate", "warned.ts"], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "ok: 1 image valid (default)\n");
    assert.equal(
      result.stderr,
      'warning: image "default", layer 1 (withLayer(expose_port), plugin expose_port): ' +
        `port 80 needs root to listen on\n  at ${at(dir, "warned.ts", "port80")}\n`,
    );
    assert.doesNotMatch(result.stderr, /^error/m);
  });
});

Deno.test("imgtool validate --json lists a valid spec's warnings with their severity", async () => {
  await inProject(async (dir) => {
    const result = await imgtool(["validate", "warned.ts", "--json"], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), {
      ok: true,
      images: ["default"],
      warnings: [{
        severity: "warning",
        message: "port 80 needs root to listen on",
        image: "default",
        layer: { plugin: "expose_port", method: "withLayer(expose_port)", index: 1 },
        callSite: at(dir, "warned.ts", "port80"),
      }],
    });
  });
});

Deno.test("imgtool validate: an error still fails (exit 2); the warning beside it is printed after the errors and not counted", async () => {
  await inProject(async (dir) => {
    const result = await imgtool(["validate", "broken.ts"], { cwd: dir });
    assert.equal(result.code, 2, result.stderr);
    assert.equal(result.stdout, "");
    assert.equal(
      result.stderr,
      "error: 1 problem found\n" +
        '  - image "default", layer 2 (withLayer(expose_port), plugin expose_port): ' +
        `port 70000 is out of range\n    at ${at(dir, "broken.ts", "port70000")}\n` +
        "    fix: use 1 to 65535\n" +
        'warning: image "default", layer 1 (withLayer(expose_port), plugin expose_port): ' +
        `port 80 needs root to listen on\n  at ${at(dir, "broken.ts", "port80")}\n`,
    );
  });
});

Deno.test("imgtool validate --json on a failing spec gives every diagnostic its severity", async () => {
  await inProject(async (dir) => {
    const result = await imgtool(["validate", "broken.ts", "--json"], { cwd: dir });
    assert.equal(result.code, 2, result.stderr);
    const report = JSON.parse(result.stdout);
    assert.equal(report.ok, false);
    assert.equal(report.error.kind, "ValidationError");
    assert.equal(report.error.message, "1 problem(s) found");
    assert.deepEqual(
      report.error.diagnostics.map((d: Diagnostic) => [d.severity, d.layer?.index, d.message]),
      [
        ["warning", 1, "port 80 needs root to listen on"],
        ["error", 2, "port 70000 is out of range"],
      ],
    );
  });
});

Deno.test('imgtool validate on { PATH: "/x:$PATH" } exits 0 and prints the warning with the spec line and the expand hint', async () => {
  await inProject(async (dir) => {
    const result = await imgtool(["validate", "path.ts"], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "ok: 1 image valid (default)\n");
    assert.equal(
      result.stderr,
      'warning: image "default", layer 2 (withEnvVars, plugin env_vars): ' +
        'ENV PATH holds "$PATH", which stays literal\n' +
        `  at ${at(dir, "path.ts", "path")}\n` +
        "  hint: pass { expand: true } to withEnvVars to refer to the image's PATH, " +
        "or ignore this if the text is meant literally\n",
    );
  });
});

// No builder can run with an empty PATH and no Docker client: the build goes past
// validation to the builder and fails there (exit 1), without building anything.
const NO_BUILDER = { PATH: "/nonexistent", IMGTOOL_DOCKER_CLIENT: "/nonexistent" };

Deno.test("imgtool build prints the warnings and goes on to build; --quiet hides them; --json lists them", async () => {
  await inProject(async (dir) => {
    const warning =
      /^warning: image "default", layer 2 \(withEnvVars, plugin env_vars\): ENV PATH holds "\$PATH", which stays literal$/m;
    const loud = await imgtool(["build", "path.ts"], { cwd: dir, env: NO_BUILDER });
    assert.equal(loud.code, 1, loud.stderr);
    assert.match(loud.stderr, warning);
    assert.match(loud.stderr, /no builder can run here/);
    // The warnings come before the build starts.
    assert.ok(loud.stderr.search(warning) < loud.stderr.indexOf("config: "), loud.stderr);

    const quiet = await imgtool(["build", "path.ts", "--quiet"], { cwd: dir, env: NO_BUILDER });
    assert.equal(quiet.code, 1, quiet.stderr);
    assert.match(quiet.stderr, /no builder can run here/);
    assert.doesNotMatch(quiet.stderr, /warning/);

    const json = await imgtool(["build", "path.ts", "--json"], { cwd: dir, env: NO_BUILDER });
    assert.equal(json.code, 1, json.stderr);
    const report = JSON.parse(json.stdout);
    assert.equal(report.images[0].status, "failed");
    assert.deepEqual(
      report.warnings.map((d: Diagnostic) => [d.severity, d.message, d.callSite]),
      [["warning", 'ENV PATH holds "$PATH", which stays literal', at(dir, "path.ts", "path")]],
    );
  });
});
