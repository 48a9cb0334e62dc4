// Before rendering a build, the base image's config says which user it runs as (issue 10
// item 4): read from the builder's store, else from the registry (a real HTTP stand-in here),
// checked before it reaches Dockerfile text, and used to start the chain's state.
import assert from "node:assert/strict";
import {
  type BuilderContext,
  type BuilderPlugin,
  defaultConfig,
  Image,
  type ImageRunConfig,
  planImage,
  renderImage,
  Secret,
} from "../mod.ts";
import { baseUser, planForBase, readBaseConfig } from "../src/base_config.ts";
import { RegistryClient } from "../src/registry/client.ts";
import { startFakeRegistry } from "./fake_registry.ts";
import { recordingExec } from "./recording_exec.ts";
import docker from "../plugins/docker.ts";
import buildah from "../plugins/buildah.ts";

/** A builder whose local store answers `local` (or throws it, when it is an Error). */
function storeBuilder(local?: ImageRunConfig | Error): BuilderPlugin {
  return {
    name: "store",
    description: "a builder with a local store",
    local: true,
    probe: () => Promise.resolve({ ok: true, detail: "" }),
    build: () => Promise.resolve(),
    imageConfig: () => local instanceof Error ? Promise.reject(local) : Promise.resolve(local),
  };
}

function contextWith(registry: RegistryClient | Record<string, never>): BuilderContext {
  return {
    config: defaultConfig(),
    registry: registry as RegistryClient,
    exec: () => Promise.reject(new Error("no process in this test")),
  };
}

Deno.test("baseUser: root in any spelling is no user; names and ids with a group are kept", () => {
  const read = (user?: string) => baseUser({ user, env: [] }, "base:1");
  for (const root of [undefined, "", "root", "0", "0:0", "root:staff", " root "]) {
    assert.equal(read(root), undefined, JSON.stringify(root));
  }
  for (const user of ["app", "1000", "1000:1000", "app:app", "svc.user-1", "_apt"]) {
    assert.equal(read(user), user);
  }
});

Deno.test("baseUser: a user a registry sends that could become Dockerfile syntax is refused", () => {
  for (const hostile of ["app\nRUN rm -rf /", "app root", "$(id)", "app:", "-u", "a:b:c", "'x'"]) {
    assert.throws(
      () => baseUser({ user: hostile, env: [] }, "example.com/base:1"),
      (error: Error) =>
        error.message.includes("example.com/base:1") && error.message.includes("not a user"),
      JSON.stringify(hostile),
    );
  }
});

Deno.test("the registry client reads the user, workdir and env of an index's platform entry", async () => {
  const registry = await startFakeRegistry();
  const client = new RegistryClient({ insecureRegistries: [registry.host] });
  try {
    await registry.addIndex("team/base", "1", ["linux/amd64", "linux/arm64"], {
      User: "app",
      WorkingDir: "/home/app",
      Env: ["PATH=/home/app/venv/bin:/usr/bin", "VIRTUAL_ENV=/home/app/venv"],
    });
    const config = await client.imageConfig(`${registry.host}/team/base:1`, "linux/arm64");
    assert.deepEqual(config, {
      user: "app",
      workdir: "/home/app",
      env: ["PATH=/home/app/venv/bin:/usr/bin", "VIRTUAL_ENV=/home/app/venv"],
    });
    // The arm64 entry was read, not the first one.
    const arm64 = registry.manifest("team/base", "1")!.json.manifests as {
      digest: string;
      platform: { architecture: string };
    }[];
    const wanted = arm64.find((entry) => entry.platform.architecture === "arm64")!.digest;
    assert.ok(
      registry.requests.some((line) => line.startsWith(`GET /v2/team/base/manifests/${wanted}`)),
    );

    assert.equal(
      await client.imageConfig(`${registry.host}/team/absent:1`, "linux/amd64"),
      undefined,
    );
    await assert.rejects(
      client.imageConfig(`${registry.host}/team/base:1`, "linux/s390x"),
      /has no image for linux\/s390x \(it has: linux\/amd64, linux\/arm64\)/,
    );
  } finally {
    await client.close();
    await registry.close();
  }
});

Deno.test("a single-platform base is read whatever the platform; no user reads as absent", async () => {
  const registry = await startFakeRegistry();
  const client = new RegistryClient({ insecureRegistries: [registry.host] });
  try {
    await registry.addImage("team/plain", "1", "linux/amd64");
    assert.deepEqual(await client.imageConfig(`${registry.host}/team/plain:1`, "linux/arm64"), {
      user: undefined,
      workdir: undefined,
      env: [],
    });
  } finally {
    await client.close();
    await registry.close();
  }
});

Deno.test("readBaseConfig asks the builder's store first, then the registry, and says why neither answered", async () => {
  const registry = await startFakeRegistry();
  const client = new RegistryClient({ insecureRegistries: [registry.host] });
  try {
    await registry.addImage("team/base", "1", "linux/amd64", { User: "registry-user" });
    const reference = `${registry.host}/team/base:1`;
    const plan = planImage(Image.fromBase(reference).withAptPackages("curl"), "x", defaultConfig());
    const context = contextWith(client);

    const local = await readBaseConfig(
      reference,
      plan,
      storeBuilder({ user: "local", env: [] }),
      context,
    );
    assert.equal(local.config?.user, "local");
    assert.match(local.source, /local store of store/);

    const remote = await readBaseConfig(reference, plan, storeBuilder(undefined), context);
    assert.equal(remote.config?.user, "registry-user");
    assert.equal(remote.source, "the registry");

    const missing = `${registry.host}/team/absent:1`;
    const neither = await readBaseConfig(
      missing,
      plan,
      storeBuilder(new Error("store broke")),
      context,
    );
    assert.equal(neither.config, undefined);
    assert.match(neither.source, /store: store broke; the registry does not have it/);
  } finally {
    await client.close();
    await registry.close();
  }
});

Deno.test("a plan for a non-root base renders root steps as root, copies as the user, secrets readable", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/note.txt`, "note\n");
    const image = Image.fromBase("example.com/runs-as-app:1")
      .withAptPackages("curl")
      .withSourceFile(`${dir}/note.txt`, "/home/app/note.txt")
      .withCommands("cat /run/secrets/TOKEN > /dev/null", {
        secretMounts: [new Secret({ key: "TOKEN" })],
      });
    const plan = planImage(image, "default", defaultConfig());
    const lines: string[] = [];
    const planned = await planForBase(
      plan,
      storeBuilder({ user: "app", env: [] }),
      contextWith({}),
      (line) => lines.push(line),
    );
    assert.match(lines.join("\n"), /base image example\.com\/runs-as-app:1 runs as user app/);
    const text = (await renderImage(planned)).dockerfile;
    const apt = text.slice(text.indexOf("withAptPackages"), text.indexOf("withSourceFile"));
    assert.match(apt, /\nUSER root\nRUN [\s\S]*apt-get[\s\S]*\nUSER app\n/);
    assert.match(text, /COPY --chown=app /);
    const commands = text.slice(text.indexOf("withCommands"));
    assert.doesNotMatch(commands, /USER/);
    assert.match(commands, /type=secret,id=TOKEN,[^\n]*mode=0444/);

    // The same plan rendered without the facts (as `dockerfile` and the tag see it) has no USER.
    assert.doesNotMatch((await renderImage(plan)).dockerfile, /^USER /m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a base that runs as root, or that cannot be read, leaves the plan as it is and says why", async () => {
  const plan = planImage(
    Image.fromBase("example.com/b:1").withAptPackages("curl"),
    "x",
    defaultConfig(),
  );
  const root = await planForBase(
    plan,
    storeBuilder({ user: "0", env: [] }),
    contextWith({}),
    () => {},
  );
  assert.equal(root, plan);
  const lines: string[] = [];
  const unread = await planForBase(
    plan,
    storeBuilder(undefined),
    contextWith({}),
    (line) => lines.push(line),
  );
  assert.equal(unread, plan);
  assert.match(lines.join("\n"), /could not read how base image example\.com\/b:1 runs/);
});

Deno.test("bases imgtool makes itself (fromDebianBase) are not read", async () => {
  const plan = planImage(
    Image.fromDebianBase({ name: "app" }).withAptPackages("curl"),
    "x",
    defaultConfig(),
  );
  let asked = false;
  const builder = {
    ...storeBuilder({ user: "app", env: [] }),
    imageConfig: () => {
      asked = true;
      return Promise.resolve(undefined);
    },
  };
  assert.equal(await planForBase(plan, builder, contextWith({}), () => {}), plan);
  assert.equal(asked, false);
});

Deno.test("fromDockerfile whose last stage switches to a user: later root steps run as root", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/Dockerfile`,
      "FROM debian AS build\nUSER builder\nFROM debian\nRUN useradd app\nUSER app:app\n",
    );
    const image = Image.fromDockerfile(`${dir}/Dockerfile`, { name: "app" })
      .withAptPackages("curl").withCommands("id -un > /tmp/who");
    const text = (await renderImage(planImage(image, "default", defaultConfig()))).dockerfile;
    const apt = text.slice(text.indexOf("withAptPackages"), text.indexOf("withCommands"));
    assert.match(apt, /\nUSER root\nRUN [\s\S]*apt-get[\s\S]*\nUSER app:app\n/);
    assert.doesNotMatch(text.slice(text.indexOf("withCommands")), /USER/);

    // A last stage that goes back to root, or names its user through a variable: nothing added.
    for (const last of ["USER app\nUSER root", "ARG U=app\nUSER $U"]) {
      await Deno.writeTextFile(`${dir}/Dockerfile`, `FROM debian\n${last}\n`);
      const plain = (await renderImage(planImage(image, "default", defaultConfig()))).dockerfile;
      assert.doesNotMatch(plain.slice(plain.indexOf("withAptPackages")), /USER/, last);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("docker and buildah read a base's config from their stores; an image they lack is undefined", async () => {
  const inspected = JSON.stringify({
    User: "app",
    WorkingDir: "/home/app",
    Env: ["A=1"],
    Cmd: null,
  });
  for (const builder of [docker, buildah]) {
    const runner = recordingExec((call) =>
      call.args.includes("example.com/has:1") ? { stdout: `${inspected}\n` } : { code: 1 }
    );
    const context: BuilderContext = { ...contextWith({}), exec: runner.exec };
    assert.deepEqual(await builder.imageConfig!("example.com/has:1", "linux/amd64", context), {
      user: "app",
      workdir: "/home/app",
      env: ["A=1"],
    });
    assert.equal(
      await builder.imageConfig!("example.com/lacks:1", "linux/amd64", context),
      undefined,
    );
    assert.match(
      runner.calls[0].args.join(" "),
      /inspect .*--format \{\{json \.(OCIv1\.)?Config\}\}/,
    );
  }
});
