/**
 * End-to-end secret masking: with each builder, a real build step prints two multi-line
 * secrets (a PEM-like key with LF line ends, a .netrc-like file with CRLF) and the key's
 * base64, and no line of them shows in imgtool's output: not in the progress of a build that
 * works, not in the failure report of one that fails, in text or `--json`. Each printed line
 * shows as the mask mark instead.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  assertExit,
  e2eTest,
  imgtool,
  jsonImages,
  makeProject,
  projectConfig,
  type Ran,
  removeImages,
  run,
  RUN_ID,
  timing,
} from "./harness.ts";

const MARK = "***";
const PEM_VAR = "IMGTOOL_E2E_MASK_PEM";
const NETRC_VAR = "IMGTOOL_E2E_MASK_NETRC";

/** `count` random base64 characters. */
function randomBase64(count: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(count));
  return btoa(String.fromCharCode(...bytes)).slice(0, count);
}

/** The secrets of one run: made fresh, known only to the test. */
function makeSecrets(): Record<string, string> {
  const body = Array.from({ length: 6 }, () => randomBase64(64)).join("\n");
  return {
    [PEM_VAR]: `-----BEGIN E2E TEST KEY-----\n${body}\n${
      randomBase64(22)
    }==\n-----END E2E TEST KEY-----\n`,
    [NETRC_VAR]: [
      "machine registry.example.com",
      `  login e2e-${randomBase64(8)}`,
      `  password ${randomBase64(24)}`,
      "",
      `machine mirror.example.org login bot password ${randomBase64(20)}`,
      "",
    ].join("\r\n"),
  };
}

/** What must not show: each non-blank line of each secret, and each line `base64` prints of the key. */
function forbidden(secrets: Record<string, string>): string[] {
  const lines = Object.values(secrets).flatMap((value) =>
    value.split(/\r\n|\r|\n/).map((line) => line.trim()).filter((line) => line !== "")
  );
  const key = new TextEncoder().encode(secrets[PEM_VAR]);
  const encoded = btoa(String.fromCharCode(...key)).match(/.{1,76}/g) ?? [];
  return [...lines, ...encoded.filter((line) => line.length >= 4)];
}

/** How many lines a step printed from the secrets: what must show as masked lines. */
function printedLineCount(secrets: Record<string, string>): number {
  return forbidden(secrets).length;
}

function assertNothingShows(text: string, secrets: Record<string, string>, where: string) {
  for (const line of forbidden(secrets)) {
    assert.ok(!text.includes(line), `${where} shows the secret line ${JSON.stringify(line)}`);
  }
}

/** Lines of `text` that end in the mark: where the step's secret lines were. */
function maskedLines(text: string): number {
  return text.split(/\r\n|\r|\n/).filter((line) => line.trimEnd().endsWith(MARK)).length;
}

/** The spec: a step that prints the secrets (a computed marker first), and one that then fails. */
function spec(base: string, marker: string): string {
  // One command, so one RUN step: each command of withCommands is a step of its own.
  const show = [
    'echo "begin-$((6 * 7))-secrets"',
    `cat /run/secrets/${PEM_VAR}`,
    `cat /run/secrets/${NETRC_VAR}`,
    `base64 /run/secrets/${PEM_VAR}`,
  ].join(" && ");
  const secretMounts = JSON.stringify([PEM_VAR, NETRC_VAR]);
  return `import { Image } from "imgtool";

// Unique per run: the printing step runs for real, not from a builder's cache.
const base = Image.fromBase(${JSON.stringify(base)}).withEnvVars({ E2E_RUN: ${
    JSON.stringify(marker)
  } });
export const printed = base.clone({ name: "masking-printed" })
  .withCommands(${JSON.stringify(show)}, { secretMounts: ${secretMounts} });
export const failing = base.clone({ name: "masking-failing" })
  .withCommands(${JSON.stringify(`${show} && exit 3`)}, { secretMounts: ${secretMounts} });
`;
}

/** The step ran: its computed marker shows (the command text alone says `$((6 * 7))`). */
const RAN = "begin-42-secrets";

/** buildah working containers left by a build whose env holds `marker`. */
async function buildahContainers(marker: string): Promise<string[]> {
  const ids = await run("buildah", ["containers", "--all", "--quiet", "--notruncate"]);
  const found: string[] = [];
  for (const id of ids.stdout.split("\n").filter(Boolean)) {
    const env = await run("buildah", [
      "inspect",
      "--type",
      "container",
      "--format",
      "{{.OCIv1.Config.Env}}",
      id,
    ]);
    if (env.stdout.includes(marker)) found.push(id);
  }
  return found;
}

for (const builder of ["docker", "buildah"] as const) {
  e2eTest(
    `${builder}: no line of a multi-line secret a step prints shows in imgtool's output`,
    async (t, facts) => {
      const registry = `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-masking`;
      const marker = `${RUN_ID}-${builder}-masking`;
      const secrets = makeSecrets();
      const dir = await makeProject({
        "imgtool.toml": projectConfig(facts, registry),
        "spec.ts": spec(facts.PYTHON_BASE, marker),
      });
      const build = (image: string, extra: string[] = []): Promise<Ran> =>
        imgtool(
          dir,
          ["build", "spec.ts", "--image", image, "--push", "--builder", builder, ...extra],
          secrets,
        );
      let uri = "";
      try {
        const uris = await imgtool(dir, ["uri", "spec.ts", "--image", "printed"]);
        assertExit(uris, 0, "uri");
        uri = uris.stdout.trim();

        let started = performance.now();
        const printed = await build("printed");
        timing(`${builder}: masking build`, started);
        assertExit(printed, 0, "build of the printing step");

        await t.step("the progress of a build that works shows masked lines, no secret", () => {
          assert.ok(printed.stderr.includes(RAN), `the step did not run:\n${printed.stderr}`);
          assertNothingShows(printed.stdout + printed.stderr, secrets, "build output");
          assert.ok(
            maskedLines(printed.stderr) >= printedLineCount(secrets),
            `expected ${printedLineCount(secrets)} masked lines:\n${printed.stderr}`,
          );
        });

        started = performance.now();
        const failedJson = await build("failing", ["--json"]);
        const failedText = await build("failing");
        timing(`${builder}: masking failures (--json, text)`, started);
        assertExit(failedJson, 1, "build --json of the failing step");
        assertExit(failedText, 1, "build of the failing step");

        await t.step("a --json failure report shows masked lines, no secret", () => {
          const [report] = jsonImages(failedJson);
          assert.equal(report.status, "failed");
          const output = report.output ?? "";
          assert.ok(output.includes(RAN), `the report lacks the step's output:\n${output}`);
          assert.ok(maskedLines(output) > 0, `no masked line in the report:\n${output}`);
          assertNothingShows(failedJson.stdout + failedJson.stderr, secrets, "build --json");
        });

        await t.step("a text failure report shows masked lines, no secret", () => {
          const start = failedText.stderr.indexOf("--- output of the failing step ---");
          assert.ok(start >= 0, failedText.stderr);
          const report = failedText.stderr.slice(start);
          assert.ok(report.includes(RAN), `the report lacks the step's output:\n${report}`);
          assert.ok(maskedLines(report) > 0, `no masked line in the report:\n${report}`);
          assertNothingShows(failedText.stdout + failedText.stderr, secrets, "failed build");
        });
      } finally {
        if (uri) {
          await removeImages(facts, [uri]);
          if (builder === "buildah") await run("buildah", ["rmi", uri]);
        }
        if (builder === "buildah") {
          for (const id of await buildahContainers(marker)) await run("buildah", ["rm", id]);
        }
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}
