import assert from "node:assert/strict";
import { Image } from "imgtool";
import * as images from "./fixtures/project/images.ts";
import { asText, dockerfileOf, fixtureConfig, renderGolden } from "./helpers.ts";

const config = fixtureConfig();

/** Shell text that any quoting, escaping or trimming by imgtool would change. */
const SHELL_TEXT = [
  `echo "$HOME" '$HOME' \${PATH} $(id -u) \`date\``,
  "test -d /tmp && cd /tmp || exit 1; ls *.txt | wc -l > count 2>&1",
  "printf 'tab\\there %s\\n' \"a  b\" # two spaces kept",
  "grep -E '^(a|b)\\s+c$' /etc/hosts & wait",
];

Deno.test("commands plugin runs each command in its own RUN step, as written", async (t) => {
  const golden = await renderGolden(images.commands, config);
  assert.match(
    golden,
    /^RUN mkdir -p \/data\nRUN echo ready > \/data\/state && chmod 600 \/data\/state$/m,
  );
  await t.assertSnapshot(golden, asText);
  // Each command is its RUN line's whole text, character for character, in the given order.
  const dockerfile = await dockerfileOf(
    Image.fromBase("debian:bookworm-slim").withCommands(SHELL_TEXT),
    config,
  );
  const runs = dockerfile.split("\n").filter((line) => line.startsWith("RUN "));
  assert.deepEqual(runs, SHELL_TEXT.map((command) => `RUN ${command}`));
});

Deno.test("commands plugin exports env-var secrets and mounts file secrets", async (t) => {
  const golden = await renderGolden(images.commandsWithSecrets, config);
  assert.match(
    golden,
    /--mount=type=secret,id=API_TOKEN,target=\/run\/secrets\/API_TOKEN,required=true/,
  );
  assert.match(
    golden,
    /--mount=type=secret,id=HTTP_HEADER,target=\/run\/secrets\/header,required=true/,
  );
  assert.match(golden, /API_TOKEN="\$\(cat \/run\/secrets\/API_TOKEN\)" && export API_TOKEN/);
  assert.doesNotMatch(golden, /export HTTP_HEADER/);
  await t.assertSnapshot(golden, asText);
});
