import assert from "node:assert/strict";
import { Image } from "imgtool";
import * as images from "./fixtures/project/images.ts";
import { asText, dockerUnquote, fixtureConfig, renderGolden } from "./helpers.ts";
import { planImage, renderImage } from "../mod.ts";

const config = fixtureConfig();

Deno.test("env_vars plugin writes every value quoted, with quotes, $ and backslashes escaped", async (t) => {
  const golden = await renderGolden(images.envVars, config);
  assert.match(golden, /ENV MODE="prod" \\\n/);
  assert.match(golden, / GREETING="say \\"hi\\" to everyone" \\\n/);
  assert.match(golden, / PRICE="costs \\\$5 or \\\$\{PRICE\}" \\\n/);
  assert.match(golden, / WINDOWS_PATH="C:\\\\temp\\\\new" \\\n/);
  assert.match(golden, / EMPTY=""\n/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("env_vars plugin values read back exactly as Docker parses them", async () => {
  const values: Record<string, string> = {
    A: 'say "hi"',
    B: "$HOME ${PATH} $$ $",
    C: "back\\slash\\",
    D: "'single' and `tick`",
    E: "trailing space ",
    F: "ünïcödé ✓",
  };
  const rendered = await renderImage(
    planImage(Image.fromBase("debian:bookworm").withEnvVars(values), "default", config),
  );
  const line = rendered.sections[1].instructions.join("\n");
  const pairs = [...line.matchAll(/([A-Z])=("(?:[^"\\]|\\.)*")/g)];
  assert.equal(pairs.length, Object.keys(values).length);
  for (const [, name, word] of pairs) assert.equal(dockerUnquote(word), values[name], name);
});

Deno.test("env_vars plugin passes values with line breaks or control characters as build arguments", async (t) => {
  const golden = await renderGolden(images.envVarsMultiline, config);
  assert.match(golden, /^ARG IMGTOOL_ENV_BANNER$/m);
  assert.match(golden, /^ENV BANNER="\$\{IMGTOOL_ENV_BANNER\}"$/m);
  assert.match(golden, /^ENV MODE="prod"$/m);
  const rendered = await renderImage(planImage(images.envVarsMultiline, "default", config));
  assert.deepEqual(rendered.buildArgs, {
    IMGTOOL_ENV_BANNER: "line one\nline 'two' with $HOME\n",
    IMGTOOL_ENV_TABBED: "a\tb",
  });
  await t.assertSnapshot(golden, asText);
});
