/**
 * Where a no-op `imgtool build --push` spends its time: the stages of
 * `src/commands/build.ts`, called one by one and timed, in a fresh process run from the
 * spec's folder with the project's config (`deno run -A --config deno.json
 * bench/noop_profile.ts spec.ts`). Prints one JSON line of milliseconds per stage.
 *
 * @module
 */

/** Milliseconds per stage, in order. */
export type Profile = Record<string, number>;

async function main(specPath: string): Promise<Profile> {
  const profile: Profile = {};
  // Runtime start to the first statement (this module has no static imports).
  let last = performance.now();
  profile["runtime start"] = last;
  const lap = (stage: string) => {
    const now = performance.now();
    profile[stage] = now - last;
    last = now;
  };
  await import("../cli.ts");
  const { prepare, ensureValid } = await import("../src/commands/prepare.ts");
  const { identify } = await import("../src/identify.ts");
  const { checkImage } = await import("../src/check.ts");
  const { RegistryClient } = await import("../src/registry/client.ts");
  const { exec } = await import("../src/exec.ts");
  const { defaultTagCacheDir, FileTagCache } = await import("../src/registry/tag_cache.ts");
  lap("import cli.ts graph");
  const flags = {
    json: false,
    quiet: false,
    push: true,
    force: false,
    noAppend: false,
    locked: false,
    update: false,
    image: [],
    platform: [],
  };
  const { config, plans } = await prepare(specPath, flags);
  lap("config + load spec + plan");
  await ensureValid(plans);
  lap("validate");
  const identity = await identify(plans[0]);
  lap("identify");
  // As `imgtool build --push` does: the registry is asked first, and an image it has needs
  // no builder, so none is probed.
  const cacheDir = defaultTagCacheDir();
  const registry = new RegistryClient({
    insecureRegistries: [...config.insecureRegistries],
    tagCache: cacheDir === undefined ? undefined : new FileTagCache(cacheDir),
  });
  const context = { config, registry, exec };
  const found = await checkImage(plans[0], identity, {
    push: true,
    registry,
    builder: undefined,
    builderContext: context,
  });
  lap("check registry");
  if (!found.exists) throw new Error(`${identity.uri} is not in the registry`);
  return profile;
}

if (import.meta.main) {
  console.log(JSON.stringify(await main(Deno.args[0] ?? "spec.ts")));
}
