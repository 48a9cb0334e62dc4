import assert from "node:assert/strict";
import * as images from "./fixtures/project/images.ts";
import { asText, fixtureConfig, renderGolden } from "./helpers.ts";

const config = fixtureConfig();

Deno.test("commands plugin runs each command in its own RUN step, as written", async (t) => {
  const golden = await renderGolden(images.commands, config);
  assert.match(
    golden,
    /^RUN mkdir -p \/data\nRUN echo ready > \/data\/state && chmod 600 \/data\/state$/m,
  );
  await t.assertSnapshot(golden, asText);
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
