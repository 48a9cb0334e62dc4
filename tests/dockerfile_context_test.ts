/**
 * The build context of a `fromDockerfile` image: the user's rules files govern the user's
 * files (imgtool applies them when it writes the context, as the identity does), and never
 * the files later layers stage under `.imgtool/`, whatever rules file the builder reads.
 *
 * What a builder excludes is judged with `IgnoreRules`, whose matching
 * `tests/e2e/dockerignore_engine_test.ts` checks against the Docker engine itself;
 * `tests/e2e/dockerfile_directives_test.ts` builds such a context with the engine.
 */

import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { Image, planImage, renderImage, validateImages } from "../mod.ts";
import { BUILDER_RULES_FILES, writeContext } from "../src/context.ts";
import { IgnoreRules } from "../src/ignore.ts";
import { fixtureConfig, withTempDir, writeTree } from "./helpers.ts";

const config = fixtureConfig();

/** Every file (not folder) under `root`, relative, links included. */
async function filesUnder(root: string): Promise<string[]> {
  const files: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) await walk(path);
      else files.push(relative(root, path));
    }
  };
  await walk(root);
  return files.sort();
}

/** Plan, validate and render `image`, then write its context into `out`. */
async function writtenContext(image: Image, out: string) {
  const plan = planImage(image, "default", config);
  assert.deepEqual(await validateImages([plan], { secretValues: false }), []);
  const rendered = await renderImage(plan);
  await writeContext(rendered, out, plan.ignore);
  return rendered;
}

/** What the builder excludes of the written context, reading the rules file it would read. */
async function excludedByBuilder(out: string, rulesFile: string): Promise<string[]> {
  const text = await Deno.readTextFile(join(out, rulesFile));
  const rules = new IgnoreRules([{ root: out, patterns: text.split("\n") }]);
  return (await filesUnder(out)).filter((file) => rules.ignores(join(out, file)));
}

// The rules keep only app.txt and themselves: BuildKit would drop everything imgtool stages.
const KEEP_ONLY_APP = "*\n!app.txt\n!.dockerignore\n";

Deno.test("the context's .dockerignore keeps the user's rules first and excludes nothing later layers staged", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "docker/Dockerfile": "FROM debian:bookworm-slim\nCOPY . /ctx/\n",
      "docker/.dockerignore": KEEP_ONLY_APP,
      "docker/app.txt": "app\n",
      "docker/other.txt": "excluded by the user's rules\n",
      "extra.txt": "staged by withSourceFile\n",
      "more.txt": "staged by withSourceFile too\n",
    });
    const out = join(dir, "out");
    const rendered = await writtenContext(
      Image.fromDockerfile(join(dir, "docker/Dockerfile"), { name: "rules" })
        .withSourceFile(join(dir, "extra.txt"), "/srv/extra.txt")
        .withSourceFile(join(dir, "more.txt"), "/srv/more.txt"),
      out,
    );
    const files = await filesUnder(out);
    const staged = files.filter((file) => file.startsWith(".imgtool/"));
    // Both layers staged their file (a vacuous pass otherwise).
    assert.equal(staged.length, 2, files.join(", "));
    // imgtool applied the user's rules to the user's files...
    assert.ok(!files.includes("other.txt") && files.includes("app.txt"), files.join(", "));
    // ...so the builder, reading the context's rules file, excludes nothing imgtool wrote but
    // the generated Dockerfile, which the user's rules exclude as they did their own.
    assert.deepEqual(await excludedByBuilder(out, ".dockerignore"), ["Dockerfile"]);
    const written = await Deno.readTextFile(join(out, ".dockerignore"));
    assert.ok(written.startsWith(KEEP_ONLY_APP), written);
    // The user's own file is untouched, and the Dockerfile is imgtool's.
    assert.equal(await Deno.readTextFile(join(dir, "docker/.dockerignore")), KEEP_ONLY_APP);
    assert.equal(await Deno.readTextFile(join(out, "Dockerfile")), rendered.dockerfile);
  });
});

Deno.test("every rules file a builder may read at the context's root excludes nothing staged", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      // BuildKit reads Dockerfile.dockerignore for a Dockerfile named Dockerfile, buildah
      // .containerignore, before .dockerignore.
      "docker/Dockerfile": "FROM debian:bookworm-slim\nCOPY . /ctx/\n",
      "docker/Dockerfile.dockerignore": "*\n!app.txt\n!*ignore\n",
      "docker/.dockerignore": "**\n",
      "docker/.containerignore": "**/*.txt\n!app.txt\n",
      "docker/app.txt": "app\n",
      "extra.txt": "staged\n",
    });
    const out = join(dir, "out");
    await writtenContext(
      Image.fromDockerfile(join(dir, "docker/Dockerfile"), { name: "rules" })
        .withSourceFile(join(dir, "extra.txt"), "/srv/extra.txt"),
      out,
    );
    const files = await filesUnder(out);
    assert.ok(files.includes(".imgtool/01-source_file/file/extra.txt"), files.join(", "));
    for (const name of BUILDER_RULES_FILES) {
      assert.ok(files.includes(name), `${name} was not staged: ${files.join(", ")}`);
      // Only the generated Dockerfile, since the user's rules excluded theirs.
      assert.deepEqual(await excludedByBuilder(out, name), ["Dockerfile"], name);
    }
  });
});

Deno.test("fromDockerfile takes the Dockerfile's own <name>.dockerignore in place of .dockerignore, as BuildKit does", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "app.Dockerfile": "FROM debian:bookworm-slim\nCOPY . /ctx/\n",
      "app.Dockerfile.dockerignore": "secret.txt\n",
      ".dockerignore": "app.txt\n",
      "app.txt": "app\n",
      "secret.txt": "secret\n",
    });
    const withOwnRules = planImage(
      Image.fromDockerfile(join(dir, "app.Dockerfile"), { name: "own" }),
      "default",
      config,
    );
    assert.ok(withOwnRules.ignore.ignores(join(dir, "secret.txt")));
    assert.ok(!withOwnRules.ignore.ignores(join(dir, "app.txt")));
    await Deno.remove(join(dir, "app.Dockerfile.dockerignore"));
    const withContextRules = planImage(
      Image.fromDockerfile(join(dir, "app.Dockerfile"), { name: "own" }),
      "default",
      config,
    );
    assert.ok(withContextRules.ignore.ignores(join(dir, "app.txt")));
    assert.ok(!withContextRules.ignore.ignores(join(dir, "secret.txt")));
  });
});

Deno.test("links at the context's Dockerfile and rules file are replaced, never written through", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "real/Dockerfile": "FROM debian:bookworm-slim\n",
      "real/rules": "nothing.txt\n",
      "docker/app.txt": "app\n",
      "extra.txt": "staged\n",
    });
    await Deno.symlink("../real/Dockerfile", join(dir, "docker/Dockerfile"));
    await Deno.symlink("../real/rules", join(dir, "docker/.dockerignore"));
    // The links' targets, taken relative to the written context, name files beside it.
    const out = join(dir, "ctx", "out");
    const rendered = await writtenContext(
      Image.fromDockerfile(join(dir, "docker/Dockerfile"), { name: "links" })
        .withSourceFile(join(dir, "extra.txt"), "/srv/extra.txt"),
      out,
    );
    for (const name of ["Dockerfile", ".dockerignore"]) {
      const info = await Deno.lstat(join(out, name));
      assert.ok(info.isFile && !info.isSymlink, `${name} is still a link`);
    }
    assert.equal(await Deno.readTextFile(join(out, "Dockerfile")), rendered.dockerfile);
    assert.deepEqual(
      await filesUnder(join(dir, "ctx")),
      (await filesUnder(out)).map((file) => join("out", file)),
    );
    assert.equal(await Deno.readTextFile(join(dir, "real/rules")), "nothing.txt\n");
    assert.deepEqual(await excludedByBuilder(out, ".dockerignore"), []);
  });
});

Deno.test("no rules file is written when the user's rules exclude their own", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "docker/Dockerfile": "FROM debian:bookworm-slim\nCOPY app.txt /srv/\n",
      "docker/.dockerignore": "*\n!app.txt\n",
      "docker/app.txt": "app\n",
    });
    const out = join(dir, "out");
    await writtenContext(
      Image.fromDockerfile(join(dir, "docker/Dockerfile"), { name: "none" }).withEnvVars({
        A: "1",
      }),
      out,
    );
    assert.deepEqual(await filesUnder(out), ["Dockerfile", "app.txt"]);
  });
});
