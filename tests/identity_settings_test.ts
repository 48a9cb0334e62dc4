// Different meaning, different tag (DESIGN.md section 5): every setting that changes the
// rendered Dockerfile or the build context changes the tag. Each setting is changed in turn
// and every image is rendered both ways: where the rendering differs, the tags must differ.
// The facts are the renderings themselves, not a list of which plugin reads what.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type Config,
  definePlugin,
  identify,
  identifySync,
  Image,
  isImage,
  planImage,
  type RenderedImage,
  renderImage,
  setActiveConfig,
} from "../mod.ts";
import { useDigestCache } from "../src/digest.ts";
import { fixtureConfig, PROJECT } from "./helpers.ts";

const BASE = fixtureConfig();
setActiveConfig(BASE);
// Hash every file every time; nothing goes to the machine's cache.
useDigestCache({ dir: undefined });

const at = (path: string) => join(PROJECT, path);
const plain = Image.fromBase("debian:bookworm-slim");

/** Every golden image (each layer type on imgtool's Python base), and each Python layer on a plain base. */
async function images(): Promise<[string, Image][]> {
  const golden = await import(at("images.ts"));
  const found = Object.entries(golden).filter(([, value]) => isImage(value)) as [string, Image][];
  assert.ok(found.length > 30, "the golden images are found");
  return [
    ...found,
    ["aptOnPlainBase", plain.withAptPackages("git")],
    ["requirementsOnPlainBase", plain.withRequirements(at("requirements/requirements.txt"))],
    ["uvLockedOnPlainBase", plain.withUvProject(at("uvproj/pyproject.toml"))],
    ["uvNoLockOnPlainBase", plain.withUvProject(at("uvproj_nolock/pyproject.toml"))],
    [
      "poetryOnPlainBase",
      plain.withPoetryProject(at("poetryproj/pyproject.toml"), {
        projectInstallMode: "install_project",
      }),
    ],
    [
      "uvScriptOnRefName",
      Image.fromRefName("company-base").withLayer(
        Image.fromUvScript(at("scripts/job.py"), { name: "job" }).layers[1],
      ),
    ],
  ];
}

/** What a build gets from a rendering: the Dockerfile, the context's entries, the build arguments. */
function built(rendered: RenderedImage): string {
  const context = rendered.context.map((entry) =>
    entry.kind === "text"
      ? {
        ...entry,
        content: typeof entry.content === "string" ? entry.content : [...entry.content],
      }
      : entry
  );
  return JSON.stringify([rendered.dockerfile, context, rendered.buildArgs]);
}

interface Outcome {
  /** Images that build differently but keep their tag: the tag hides a difference. */
  readonly hidden: string[];
  /** Images that build differently and get another tag. */
  readonly told: string[];
  /** Images that build the same but get another tag (a rebuild for nothing). */
  readonly overcounted: string[];
}

async function compare(changed: Config): Promise<Outcome> {
  const outcome: Outcome = { hidden: [], told: [], overcounted: [] };
  for (const [name, image] of await images()) {
    const [before, after] = [planImage(image, name, BASE), planImage(image, name, changed)];
    const differs = built(await renderImage(before)) !== built(await renderImage(after));
    const [tagBefore, tagAfter] = [(await identify(before)).tag, (await identify(after)).tag];
    // The synchronous identity (`Image.uri`) sees the same settings.
    assert.equal(identifySync(after).tag, tagAfter, `${name}: uri and identify agree`);
    if (differs && tagBefore === tagAfter) outcome.hidden.push(name);
    if (differs && tagBefore !== tagAfter) outcome.told.push(name);
    if (!differs && tagBefore !== tagAfter) outcome.overcounted.push(name);
  }
  return outcome;
}

const plugins = BASE.plugins;

/** Settings that change recipes, each changed from the fixture configuration. */
const RECIPE_SETTINGS: [string, Config][] = [
  ["cache.mounts", { ...BASE, cacheMounts: false }],
  ["dockerfile.syntax", { ...BASE, dockerfileSyntax: "mirror.example/docker/dockerfile:1.7" }],
  ["images.uv", { ...BASE, images: { ...BASE.images, uv: "mirror.example/uv:9.9.9" } }],
  [
    "images.python",
    { ...BASE, images: { ...BASE.images, python: "mirror.example/python:{major}.{minor}" } },
  ],
  ["python.installer", { ...BASE, installer: BASE.installer === "uv" ? "pip" : "uv" }],
  ["debian-packages", { ...BASE, debianPackages: ["ca-certificates", "git"] }],
  ["python-version", { ...BASE, pythonVersion: [3, 11] }],
  ["refs", { ...BASE, refs: { "company-base": "mirror.example/platform/python-base:3.12" } }],
  [
    "[plugins.poetry_project] version",
    { ...BASE, plugins: { ...plugins, poetry_project: { version: "1.8.5" } } },
  ],
  [
    "[plugins.poetry_project] command",
    { ...BASE, plugins: { ...plugins, poetry_project: { command: "/usr/local/bin/poetry" } } },
  ],
];

/**
 * Images whose tag a setting changes though their rendering stays: the plugin reads the
 * setting without using it (allowed: a rebuild for nothing, never a wrong image). Listed so
 * that a new case is noticed.
 */
const KNOWN_OVERCOUNTS: Readonly<Record<string, readonly string[]>> = {
  // uv_project copies the whole configuration to set the installer for its `uv sync`.
  "python.installer": ["uvLockedOnPlainBase"],
  "debian-packages": ["uvLockedOnPlainBase"],
  // poetry_project reads the version to describe the environment it installs Poetry into.
  "python-version": ["poetryOnPlainBase"],
};

for (const [setting, changed] of RECIPE_SETTINGS) {
  Deno.test(`${setting}: every image it builds differently gets another tag`, async () => {
    const outcome = await compare(changed);
    assert.ok(outcome.told.length > 0, `${setting} changes what some image builds`);
    assert.deepEqual(outcome.hidden, [], `${setting}: these images' tags hide a difference`);
    const unexpected = outcome.overcounted.filter((name) =>
      !(KNOWN_OVERCOUNTS[setting] ?? []).includes(name)
    );
    assert.deepEqual(unexpected, [], `${setting}: same Dockerfile and context, another tag`);
  });
}

/** Settings that say how or where an image is built, not what it holds. */
const BUILD_SETTINGS: [string, Config][] = [
  ["network", { ...BASE, network: "none" }],
  ["builder", { ...BASE, builder: "buildah" }],
  ["registry", { ...BASE, registry: "ghcr.io/acme" }],
  ["registry-timeout", { ...BASE, registryTimeout: 5 }],
  ["insecure-registries", { ...BASE, insecureRegistries: ["registry.local:5000"] }],
  ["docker client and host", { ...BASE, dockerClient: "podman", dockerHost: "tcp://b:2376" }],
  ["secrets", { ...BASE, secretsDir: "/run/secrets", secretFiles: { TOKEN: "/tmp/t" } }],
  ["allowed-paths", { ...BASE, allowedPaths: ["/opt/shared"] }],
  ["tags", { ...BASE, tags: ["latest"] }],
];

for (const [setting, changed] of BUILD_SETTINGS) {
  Deno.test(`${setting}: builds nothing differently and changes no tag`, async () => {
    const outcome = await compare(changed);
    assert.deepEqual(outcome.hidden, []);
    assert.deepEqual(outcome.told, [], `${setting} changes no Dockerfile or context`);
    assert.deepEqual(outcome.overcounted, [], `${setting} changes no tag`);
  });
}

// Users' plugins are held to the rule without naming their settings in `identify`: what
// their hooks read counts.
const flavored = definePlugin<{ readonly path: string }>({
  name: "flavored",
  // The contribution names only the option; the settings come from what render reads.
  identify: (options) => ({ path: options.path }),
  render(options, context) {
    const flavor = String(context.settings.flavor ?? "plain");
    const cache = context.config.cacheMounts ? " --mount=type=cache,target=/var/cache/x" : "";
    const [major, minor] = context.image.pythonVersion;
    return {
      instructions: [`RUN${cache} echo ${flavor} py${major}.${minor} > ${options.path}`],
    };
  },
});

Deno.test("a plugin's render reading a setting makes the setting count, with no identify entry", async () => {
  const image = plain.withLayer(flavored.layer({ path: "/flavor" }));
  const tag = async (config: Config) => (await identify(planImage(image, "x", config))).tag;
  const base = await tag(BASE);
  const variants: [string, Config][] = [
    ["[plugins.flavored] flavor", { ...BASE, plugins: { ...plugins, flavored: { flavor: "x" } } }],
    ["cache.mounts", { ...BASE, cacheMounts: !BASE.cacheMounts }],
    ["python-version", { ...BASE, pythonVersion: [3, 9] }],
  ];
  for (const [what, config] of variants) {
    assert.notEqual(
      built(await renderImage(planImage(image, "x", config))),
      built(await renderImage(planImage(image, "x", BASE))),
      `${what} changes the Dockerfile`,
    );
    assert.notEqual(await tag(config), base, `${what} changes the tag`);
  }
  // A setting it does not read changes nothing.
  assert.equal(await tag({ ...BASE, images: { ...BASE.images, uv: "other/uv:1" } }), base);
});

Deno.test("copying the whole configuration counts recipe settings, not build settings", async () => {
  const copier = definePlugin<Record<string, never>>({
    name: "copier",
    render(_options, context) {
      const copy = { ...context.config };
      return { instructions: [`LABEL copied=${copy.installer}`] };
    },
  });
  const named = definePlugin<Record<string, never>>({
    name: "named",
    render: (_options, context) => ({ instructions: [`LABEL network=${context.config.network}`] }),
  });
  const tag = async (image: Image, config: Config) =>
    (await identify(planImage(image, "x", config))).tag;
  const copying = plain.withLayer(copier.layer({}));
  assert.notEqual(await tag(copying, { ...BASE, cacheMounts: false }), await tag(copying, BASE));
  assert.equal(await tag(copying, { ...BASE, network: "none" }), await tag(copying, BASE));
  // A build setting read by name, to render with it, counts.
  const naming = plain.withLayer(named.layer({}));
  assert.notEqual(await tag(naming, { ...BASE, network: "none" }), await tag(naming, BASE));
});

Deno.test("paths of this machine in the configuration count in no tag, even read by name", async () => {
  // As uv projects do: the allowed folders decide which local packages may be staged; the
  // files staged count as files, and the paths themselves differ from machine to machine.
  const local = definePlugin<{ readonly dir: string }>({
    name: "local",
    identify: (options, context) => ({ tree: context.tree(options.dir) }),
    render(options, context) {
      const allowed = [context.projectRoot, ...context.config.allowedPaths];
      const staged = allowed.some((root) => options.dir.startsWith(root)) ? options.dir : "/empty";
      return {
        instructions: [`COPY ${context.contextDir}/dir /opt/local`],
        context: [{ kind: "tree", source: staged, target: `${context.contextDir}/dir` }],
      };
    },
  });
  const image = plain.withLayer(local.layer({ dir: at("src") }));
  const tag = async (config: Config) => (await identify(planImage(image, "x", config))).tag;
  const base = await tag(BASE);
  for (
    const config of [
      { ...BASE, allowedPaths: ["/home/alice/shared"] },
      { ...BASE, dockerClient: "/opt/bin/docker", dockerHost: "ssh://builder" },
      { ...BASE, secretsDir: "/home/alice/.secrets", secretFiles: { A: "/home/alice/a" } },
    ]
  ) {
    assert.equal(
      built(await renderImage(planImage(image, "x", config))),
      built(await renderImage(planImage(image, "x", BASE))),
    );
    assert.equal(await tag(config), base);
  }
});

Deno.test("an async render counts what it reads before its first await; uri and identify agree", async () => {
  const late = definePlugin<Record<string, never>>({
    name: "late",
    async render(_options, context) {
      const early = context.settings.early;
      await Promise.resolve();
      return { instructions: [`LABEL early=${early} late=${context.settings.late}`] };
    },
  });
  const image = plain.withLayer(late.layer({}));
  const withSettings = (settings: Record<string, unknown>): Config => ({
    ...BASE,
    plugins: { ...plugins, late: settings },
  });
  const tags = async (config: Config) => {
    const plan = planImage(image, "x", config);
    const tag = (await identify(plan)).tag;
    assert.equal(identifySync(plan).tag, tag, "Image.uri and identify agree");
    return tag;
  };
  const base = await tags(withSettings({ early: 1, late: 1 }));
  assert.notEqual(await tags(withSettings({ early: 2, late: 1 })), base);
  // What it reads after the await cannot be seen by `Image.uri`, which cannot wait: both
  // identities leave it out alike (src/setting_reads.ts), so they never disagree.
  await tags(withSettings({ early: 1, late: 2 }));
});
