import assert from "node:assert/strict";
import { Image } from "imgtool";
import * as images from "./fixtures/project/images.ts";
import { asText, dockerfileOf, fixtureConfig, renderGolden } from "./helpers.ts";
import { identify, planImage } from "../mod.ts";

const config = fixtureConfig();
const noCache = fixtureConfig({}, { "cache.mounts": "false" });

Deno.test("apt plugin installs sorted, de-duplicated, quoted packages with apt caches on cache mounts", async (t) => {
  const golden = await renderGolden(images.aptPackages, config);
  assert.match(golden, /--no-install-recommends ca-certificates curl git\n/);
  assert.match(golden, /--mount=type=cache,target=\/var\/lib\/apt\/lists,id=imgtool-apt-lists/);
  assert.match(golden, /rm -f \/etc\/apt\/apt.conf.d\/docker-clean/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("apt plugin without cache mounts cleans apt lists in the same step", async (t) => {
  const golden = await renderGolden(images.aptPackages, noCache);
  assert.doesNotMatch(golden, /--mount=type=cache/);
  assert.match(golden, /&& rm -rf \/var\/lib\/apt\/lists\/\*\n/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("apt plugin mounts its secrets as files where asked", async (t) => {
  const golden = await renderGolden(images.aptWithSecret, config);
  assert.match(
    golden,
    /--mount=type=secret,id=APT_AUTH,target=\/etc\/apt\/auth.conf.d\/private.conf,required=true/,
  );
  // A secret with a mount is a file only: it is not exported as a variable.
  assert.doesNotMatch(golden, /export APT_AUTH/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("apt plugin quotes what the shell would otherwise read", async () => {
  // Invalid names are validation errors; should one get through, the shell still sees one word.
  const dockerfile = await dockerfileOf(
    Image.fromBase("debian:bookworm").withAptPackages(["pkg;reboot"]),
    config,
  );
  assert.match(dockerfile, /--no-install-recommends 'pkg;reboot'/);
});

Deno.test("apt plugin identity ignores package order and repeats", async () => {
  const base = Image.fromBase("debian:bookworm");
  const tag = async (image: Image) => (await identify(planImage(image, "default", config))).tag;
  const a = await tag(base.withAptPackages(["git", "curl"]));
  assert.equal(await tag(base.withAptPackages(["curl", "git", "git"])), a);
  assert.notEqual(await tag(base.withAptPackages(["curl", "git", "make"])), a);
});
