import assert from "node:assert/strict";
import {
  defaultConfig,
  type Diagnostic,
  identifySync,
  Image,
  type Layer,
  planImage,
  renderImage,
  validateImages,
} from "imgtool";
import { nonRootUser, type Options } from "./non_root_user.ts";

const base = () => Image.fromBase("debian:bookworm-slim");

async function problems(layer: Layer): Promise<Diagnostic[]> {
  return await validateImages([planImage(base().withLayer(layer), "default", defaultConfig())]);
}

async function messages(layer: Layer): Promise<string[]> {
  return (await problems(layer)).map((problem) => problem.message);
}

async function render(image: Image) {
  return await renderImage(planImage(image, "default", defaultConfig()));
}

async function section(image: Image, plugin: string): Promise<readonly string[]> {
  const found = (await render(image)).sections.find((part) => part.plugin === plugin);
  assert.ok(found, `no ${plugin} section`);
  return found.instructions;
}

function tag(image: Image): string {
  return identifySync(planImage(image, "default", defaultConfig())).tag;
}

Deno.test("nonRootUser() accepts plain names, ids and paths", async () => {
  assert.deepEqual(await messages(nonRootUser("app")), []);
  assert.deepEqual(
    await messages(nonRootUser("_svc-1", {
      uid: 2 ** 31 - 1,
      gid: 1,
      group: "staff_2",
      home: "/srv/svc",
      shell: "/usr/sbin/nologin",
    })),
    [],
  );
});

Deno.test("nonRootUser() reports user and group names that are not valid", async () => {
  for (const name of ["App", "1app", "app;id", "", "a".repeat(33), "app user"]) {
    assert.deepEqual(await messages(nonRootUser(name, { group: "app" })), [
      `user name ${JSON.stringify(name)} is not a valid name`,
    ]);
    assert.deepEqual(await messages(nonRootUser("app", { group: name })), [
      `group name ${JSON.stringify(name)} is not a valid name`,
    ]);
  }
});

Deno.test("nonRootUser() reports uid 0 as root's", async () => {
  assert.deepEqual(await messages(nonRootUser("app", { uid: 0, gid: 1000 })), [
    "uid 0 is root's; a non-root user needs another id",
  ]);
  assert.deepEqual(await messages(nonRootUser("app", { gid: 0 })), [
    "gid 0 is root's; a non-root user needs another id",
  ]);
});

const shown = (id: unknown) => typeof id === "number" ? String(id) : JSON.stringify(id);

Deno.test("nonRootUser() reports ids that are not whole numbers in range", async () => {
  for (const id of [-1, 1.5, 2 ** 31, Number.NaN, "1000" as unknown as number]) {
    assert.deepEqual(await messages(nonRootUser("app", { uid: id, gid: 1000 })), [
      `uid ${shown(id)} is not a whole number from 1 to ${2 ** 31 - 1}`,
    ]);
    assert.deepEqual(await messages(nonRootUser("app", { gid: id })), [
      `gid ${shown(id)} is not a whole number from 1 to ${2 ** 31 - 1}`,
    ]);
  }
});

Deno.test("nonRootUser() reports a home or shell that is not an absolute path", async () => {
  for (const path of ["home/app", "/home/$USER", "/home/a\\b", ""]) {
    assert.deepEqual(await messages(nonRootUser("app", { home: path })), [
      `home ${JSON.stringify(path)} is not an absolute path`,
    ]);
    assert.deepEqual(await messages(nonRootUser("app", { shell: path })), [
      `shell ${JSON.stringify(path)} is not an absolute path`,
    ]);
  }
});

Deno.test("nonRootUser() reports every problem at once, naming the plugin", async () => {
  const found = await problems(nonRootUser("Bad", { uid: 0, home: "rel", shell: "sh" }));
  // user name, group name (defaults to the user name), uid, gid (defaults to uid), home, shell
  assert.equal(found.length, 6);
  for (const problem of found) {
    assert.equal(problem.layer?.plugin, "non_root_user");
    assert.equal(problem.layer?.method, "nonRootUser");
  }
});

Deno.test("nonRootUser() renders groupadd, useradd and USER", async () => {
  assert.deepEqual(await section(base().withLayer(nonRootUser("app")), "non_root_user"), [
    [
      "RUN groupadd --gid 1000 app \\",
      "    && useradd --no-log-init --uid 1000 --gid 1000 --create-home --home-dir /home/app " +
      "--shell /bin/bash app",
    ].join("\n"),
    "USER app",
  ]);
});

Deno.test("nonRootUser() renders the group, home, shell and working directory it is given", async () => {
  const layer = nonRootUser("svc", {
    uid: 10001,
    gid: 20002,
    group: "services",
    home: "/srv/svc home",
    shell: "/usr/sbin/nologin",
    workdir: true,
  });
  assert.deepEqual(await section(base().withLayer(layer), "non_root_user"), [
    [
      "RUN groupadd --gid 20002 services \\",
      "    && useradd --no-log-init --uid 10001 --gid 20002 --create-home " +
      "--home-dir '/srv/svc home' --shell /usr/sbin/nologin svc",
    ].join("\n"),
    "USER svc",
    'WORKDIR "/srv/svc home"',
  ]);
});

Deno.test("nonRootUser() sets the user (and the working directory) for later layers", () => {
  const image = base().withLayer(nonRootUser("app", { uid: 1500, workdir: true })).withWorkdir(
    "data",
  );
  const plan = planImage(image, "default", defaultConfig());
  const state = plan.layers[2].context.state;
  assert.equal(state.user, "app:app");
  assert.equal(state.workdir, "/home/app");
  assert.deepEqual(state.extra.non_root_user, {
    name: "app",
    uid: 1500,
    gid: 1500,
    home: "/home/app",
  });
  assert.equal(plan.layers[1].context.state.user, undefined);
});

Deno.test("a withSourceFile after nonRootUser() copies with --chown to the user", async () => {
  const image = base()
    .withLayer(nonRootUser("app", { group: "staff", gid: 50 }))
    .withSourceFile("./non_root_user.ts", "/home/app/plugin.ts");
  assert.deepEqual(await section(image, "source_file"), [
    'COPY --chown=app:staff [".imgtool/02-source_file/file/non_root_user.ts", "/home/app/plugin.ts"]',
  ]);
});

Deno.test("a withSourceFile before nonRootUser() copies without --chown", async () => {
  const image = base().withSourceFile("./non_root_user.ts").withLayer(nonRootUser("app"));
  const [copy] = await section(image, "source_file");
  assert.doesNotMatch(copy, /--chown/);
});

Deno.test("nonRootUser() identity changes with each option", () => {
  const reference = tag(base().withLayer(nonRootUser("app")));
  const variants: Partial<Options>[] = [
    { uid: 1001 },
    { gid: 1001 },
    { group: "staff" },
    { home: "/srv/app" },
    { shell: "/bin/sh" },
    { workdir: true },
  ];
  const tags = variants.map((options) => tag(base().withLayer(nonRootUser("app", options))));
  tags.push(tag(base().withLayer(nonRootUser("web"))));
  assert.equal(new Set([reference, ...tags]).size, variants.length + 2);
});

Deno.test("nonRootUser() identity is the same with defaults spelled out", () => {
  assert.equal(
    tag(base().withLayer(nonRootUser("app"))),
    tag(
      base().withLayer(
        nonRootUser("app", { uid: 1000, gid: 1000, group: "app", home: "/home/app" }),
      ),
    ),
  );
});

Deno.test("Image.uri works on an image with a nonRootUser layer, even an invalid one", () => {
  const image = Image.fromDebianBase({ name: "service" }).withLayer(nonRootUser("app"));
  assert.match(image.uri, /^service:[0-9a-f]{32}$/);
  const invalid = Image.fromDebianBase({ name: "service" })
    .withLayer(nonRootUser("app", { uid: Number.NaN }));
  assert.match(invalid.uri, /^service:[0-9a-f]{32}$/);
});
