import assert from "node:assert/strict";
import {
  type Config,
  defaultConfig,
  type Diagnostic,
  identifySync,
  Image,
  planImage,
  renderImage,
  Secret,
  validateImages,
} from "imgtool";
import { nodePackages } from "./node_packages.ts";
import { nonRootUser } from "./non_root_user.ts";

const base = () => Image.fromBase("debian:bookworm-slim");

function configWith(changes: Partial<Config> = {}): Config {
  return { ...defaultConfig(), ...changes };
}

async function problems(image: Image, config = configWith()): Promise<Diagnostic[]> {
  return await validateImages([planImage(image, "default", config)], { secretValues: false });
}

async function messages(image: Image, config = configWith()): Promise<string[]> {
  return (await problems(image, config)).map((problem) => problem.message);
}

async function render(image: Image, config = configWith()) {
  return await renderImage(planImage(image, "default", config));
}

/** The instructions of the first node_packages layer. */
async function section(image: Image, config = configWith()): Promise<readonly string[]> {
  const rendered = await render(image, config);
  const found = rendered.sections.find((part) => part.plugin === "node_packages");
  assert.ok(found, "no node_packages section");
  return found.instructions;
}

function tag(image: Image, config = configWith()): string {
  return identifySync(planImage(image, "default", config)).tag;
}

const APT_STEP = [
  "RUN --mount=type=cache,target=/var/cache/apt,id=imgtool-apt-cache,sharing=locked \\",
  "    --mount=type=cache,target=/var/lib/apt/lists,id=imgtool-apt-lists,sharing=locked \\",
  "    mkdir -p /var/cache/apt/imgtool-archives/partial \\",
  "    && apt-get -o Dir::Cache::Archives=/var/cache/apt/imgtool-archives/ update \\",
  "    && DEBIAN_FRONTEND=noninteractive apt-get -o Dir::Cache::Archives=/var/cache/apt/imgtool-archives/ install -y --no-install-recommends nodejs npm",
].join("\n");

Deno.test("nodePackages() accepts names, versions, ranges, tags and scoped names", async () => {
  const image = base().withLayer(
    nodePackages(["typescript", "semver@7.6.3", "@scope/pkg@^1.2 || 2.x", "pnpm@latest"]),
  );
  assert.deepEqual(await messages(image), []);
});

Deno.test("nodePackages() reports an empty package list", async () => {
  assert.deepEqual(await messages(base().withLayer(nodePackages([]))), ["no packages given"]);
});

Deno.test("nodePackages() reports every spec that is not a package spec", async () => {
  const bad = ["Bad", "-g", "x; rm -rf /", "$(id)", "@scope", "name@", "a@1 ", "..", "a b"];
  assert.deepEqual(
    await messages(base().withLayer(nodePackages(["ok", ...bad]))),
    bad.map((spec) => `${JSON.stringify(spec)} is not a valid npm package spec`),
  );
});

Deno.test("nodePackages() problems name the plugin, the method and the spec line", async () => {
  const [problem] = await problems(base().withLayer(nodePackages([])));
  assert.equal(problem.layer?.plugin, "node_packages");
  assert.equal(problem.layer?.method, "nodePackages");
  assert.match(problem.callSite ?? "", /node_packages_test\.ts:\d+$/);
});

Deno.test("nodePackages() reports a registry that is not a plain http(s) URL", async () => {
  for (const registry of ["ftp://npm.example/", "not a url", "https://npm.example/$X"]) {
    assert.deepEqual(await messages(base().withLayer(nodePackages("a", { registry }))), [
      `registry ${JSON.stringify(registry)} is not a plain http(s) URL`,
    ]);
  }
});

Deno.test("nodePackages() reports credentials in the registry URL", async () => {
  const registry = "https://user:pw@npm.example/";
  assert.deepEqual(await messages(base().withLayer(nodePackages("a", { registry }))), [
    `registry ${
      JSON.stringify(registry)
    } has a user name or password, which would be written into the Dockerfile`,
  ]);
});

Deno.test("nodePackages() checks the registry setting of imgtool.toml", async () => {
  const image = base().withLayer(nodePackages("a"));
  assert.deepEqual(
    await messages(image, configWith({ plugins: { node_packages: { registry: 42 } } })),
    [
      "[plugins.node_packages] registry must be a string, not 42",
    ],
  );
  assert.deepEqual(
    await messages(image, configWith({ plugins: { node_packages: { registry: "nope" } } })),
    ['[plugins.node_packages] registry "nope" is not a plain http(s) URL'],
  );
});

Deno.test("nodePackages() reports an authToken without a registry", async () => {
  assert.deepEqual(await messages(base().withLayer(nodePackages("a", { authToken: "TOKEN" }))), [
    "authToken needs a registry",
  ]);
});

Deno.test("nodePackages() declares its secrets, so a missing value is reported", async () => {
  const image = base().withLayer(nodePackages("a", {
    registry: "https://npm.example/",
    authToken: "IMGTOOL_TEST_SURELY_UNSET_TOKEN",
    secretMounts: [new Secret({ key: "IMGTOOL_TEST_SURELY_UNSET_NETRC", mount: "/root/.netrc" })],
  }));
  const found = await validateImages([planImage(image, "default", configWith())]);
  assert.deepEqual(found.map((problem) => problem.message), [
    "secret IMGTOOL_TEST_SURELY_UNSET_TOKEN has no value",
    "secret IMGTOOL_TEST_SURELY_UNSET_NETRC has no value",
  ]);
});

Deno.test("nodePackages() renders apt, then npm with a cache mount, packages sorted", async () => {
  const image = base().withLayer(
    nodePackages(["semver@7.6.3", "@scope/a@^1 || 2", "semver@7.6.3"]),
  );
  assert.deepEqual(await section(image), [
    APT_STEP,
    [
      "RUN --mount=type=cache,target=/root/.npm,id=imgtool-npm,sharing=locked \\",
      "    npm install --global --no-audit --no-fund --no-update-notifier '@scope/a@^1 || 2' " +
      "semver@7.6.3",
    ].join("\n"),
  ]);
});

Deno.test("nodePackages() without cache mounts cleans apt downloads, lists and npm's cache", async () => {
  const image = base().withLayer(nodePackages("semver"));
  assert.deepEqual(await section(image, configWith({ cacheMounts: false })), [
    [
      "RUN apt-get update \\",
      "    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm \\",
      "    && apt-get clean \\",
      "    && rm -rf /var/lib/apt/lists/*",
    ].join("\n"),
    [
      "RUN npm install --global --no-audit --no-fund --no-update-notifier semver \\",
      "    && rm -rf /root/.npm",
    ].join("\n"),
  ]);
});

Deno.test("nodePackages() with installNode: false leaves Node.js alone", async () => {
  const instructions = await section(
    base().withLayer(nodePackages("semver", { installNode: false })),
  );
  assert.equal(instructions.length, 1);
  assert.doesNotMatch(instructions[0], /apt-get/);
});

Deno.test("nodePackages() writes the registry and token reference into a mounted .npmrc", async () => {
  const image = base().withLayer(nodePackages("semver", {
    installNode: false,
    registry: "http://127.0.0.1:4873/npm",
    authToken: new Secret({ key: "NPM_TOKEN" }),
  }));
  const rendered = await render(image);
  assert.deepEqual(rendered.sections[1].instructions, [
    [
      "RUN --mount=type=bind,source=.imgtool/01-node_packages/npmrc,target=/tmp/imgtool-npmrc/npmrc \\",
      "    --mount=type=cache,target=/root/.npm,id=imgtool-npm,sharing=locked \\",
      "    --mount=type=secret,id=NPM_TOKEN,target=/run/secrets/NPM_TOKEN,required=true,mode=0444 \\",
      '    NPM_TOKEN="$(cat /run/secrets/NPM_TOKEN)" && export NPM_TOKEN \\',
      "    && npm install --global --no-audit --no-fund --no-update-notifier " +
      "--userconfig /tmp/imgtool-npmrc/npmrc semver",
    ].join("\n"),
  ]);
  assert.deepEqual(rendered.context, [{
    kind: "text",
    target: ".imgtool/01-node_packages/npmrc",
    content: "registry=http://127.0.0.1:4873/npm/\n//127.0.0.1:4873/npm/:_authToken=${NPM_TOKEN}\n",
  }]);
  assert.deepEqual(rendered.secrets.map((secret) => secret.id), ["NPM_TOKEN"]);
});

Deno.test("nodePackages() exports a file secret token for the .npmrc to read", async () => {
  const token = new Secret({ key: "NPM_TOKEN", mount: "/run/npm-token" });
  const image = base().withLayer(
    nodePackages("semver", {
      installNode: false,
      registry: "https://npm.example/",
      authToken: token,
    }),
  );
  const [step] = await section(image);
  assert.match(step, /--mount=type=secret,id=NPM_TOKEN,target=\/run\/npm-token,required=true/);
  assert.match(step, /NPM_TOKEN="\$\(cat \/run\/npm-token\)" && export NPM_TOKEN \\\n/);
});

Deno.test("nodePackages() takes the registry from imgtool.toml unless the layer names one", async () => {
  const config = configWith({ plugins: { node_packages: { registry: "http://127.0.0.1:4873/" } } });
  const fromSetting = await render(base().withLayer(nodePackages("semver")), config);
  assert.equal(
    fromSetting.context[0].kind === "text" && fromSetting.context[0].content,
    "registry=http://127.0.0.1:4873/\n",
  );
  const own = await render(
    base().withLayer(nodePackages("semver", { registry: "https://npm.example/" })),
    config,
  );
  assert.equal(
    own.context[0].kind === "text" && own.context[0].content,
    "registry=https://npm.example/\n",
  );
});

Deno.test("nodePackages() runs as root after a user switch, then switches back", async () => {
  const image = base().withLayer(nonRootUser("app")).withLayer(nodePackages("semver"));
  const instructions = await section(image);
  assert.equal(instructions[0], "USER root");
  assert.equal(instructions.at(-1), "USER app:app");
  assert.equal(instructions.length, 4);
});

Deno.test("nodePackages() never puts a secret's value in the Dockerfile or the context", async () => {
  const value = "s3cr3t-npm-token-value-do-not-leak";
  Deno.env.set("IMGTOOL_TEST_NPM_TOKEN", value);
  try {
    const image = base().withLayer(nodePackages("semver", {
      registry: "https://npm.example/",
      authToken: "IMGTOOL_TEST_NPM_TOKEN",
    }));
    const plan = planImage(image, "default", configWith());
    assert.deepEqual(await validateImages([plan]), []);
    const rendered = await renderImage(plan);
    const everything = [
      rendered.dockerfile,
      JSON.stringify(rendered.context),
      JSON.stringify(rendered.buildArgs),
      image.uri,
    ].join("\n");
    assert.ok(rendered.dockerfile.includes("IMGTOOL_TEST_NPM_TOKEN"), "the secret is not mounted");
    assert.ok(!everything.includes(value), "the secret's value leaked");
  } finally {
    Deno.env.delete("IMGTOOL_TEST_NPM_TOKEN");
  }
});

Deno.test("nodePackages() identity changes with packages, registry, token and installNode", () => {
  const config = configWith();
  const reference = tag(base().withLayer(nodePackages("semver@7.6.3")), config);
  const variants = [
    nodePackages("semver@7.6.2"),
    nodePackages(["semver@7.6.3", "typescript"]),
    nodePackages("semver@7.6.3", { installNode: false }),
    nodePackages("semver@7.6.3", { registry: "https://npm.example/" }),
    nodePackages("semver@7.6.3", { registry: "https://npm.example/", authToken: "T" }),
    nodePackages("semver@7.6.3", { secretMounts: "NETRC" }),
  ];
  const tags = variants.map((layer) => tag(base().withLayer(layer), config));
  assert.equal(new Set([reference, ...tags]).size, variants.length + 1);
});

Deno.test("nodePackages() identity ignores package order and repeats", () => {
  assert.equal(
    tag(base().withLayer(nodePackages(["a", "b", "a"]))),
    tag(base().withLayer(nodePackages(["b", "a"]))),
  );
});

Deno.test("nodePackages() identity ignores a registry's trailing slash", () => {
  assert.equal(
    tag(base().withLayer(nodePackages("a", { registry: "https://npm.example/r" }))),
    tag(base().withLayer(nodePackages("a", { registry: "https://npm.example/r/" }))),
  );
});

Deno.test("nodePackages() identity counts the registry setting and the cache setting", () => {
  const image = base().withLayer(nodePackages("a"));
  const plain = tag(image);
  const mirrored = tag(
    image,
    configWith({ plugins: { node_packages: { registry: "http://127.0.0.1:4873/" } } }),
  );
  const uncached = tag(image, configWith({ cacheMounts: false }));
  assert.equal(new Set([plain, mirrored, uncached]).size, 3);
});

Deno.test("Image.uri works on an image with a nodePackages layer", () => {
  const image = Image.fromDebianBase({ name: "tools", registry: "127.0.0.1:5000/team" })
    .withLayer(nodePackages("semver"));
  assert.match(image.uri, /^127\.0\.0\.1:5000\/team\/tools:[0-9a-f]{32}$/);
});
