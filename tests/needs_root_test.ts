// Layers whose steps need root run as root after a layer switched the user, and switch back.
import assert from "node:assert/strict";
import { defaultConfig, definePlugin, Image, planImage, renderImage } from "../mod.ts";

const switchUser = definePlugin<{ readonly name: string }>({
  name: "switch_user",
  nextState: (options) => ({ user: options.name }),
  render: (options) => ({ instructions: [`USER ${options.name}`] }),
});

async function dockerfile(image: Image): Promise<string> {
  return (await renderImage(planImage(image, "default", defaultConfig()))).dockerfile;
}

Deno.test("an apt layer after a user switch runs as root and switches back to the user", async () => {
  const text = await dockerfile(
    Image.fromBase("debian:bookworm").withLayer(switchUser.layer({ name: "app" }))
      .withAptPackages("git").withCommands("whoami > /tmp/who"),
  );
  const apt = text.slice(text.indexOf("withAptPackages"));
  assert.match(apt, /^withAptPackages[^\n]*\nUSER root\nRUN [\s\S]*?\nUSER app\n/);
  // Commands are the user's own steps: they run as the user.
  const commands = text.slice(text.indexOf("withCommands"));
  assert.doesNotMatch(commands, /USER root/);
});

Deno.test("without a user switch, install layers add no USER instructions", async () => {
  const text = await dockerfile(Image.fromBase("debian:bookworm").withAptPackages("git"));
  assert.doesNotMatch(text, /USER/);
});
