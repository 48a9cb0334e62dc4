import assert from "node:assert/strict";
import {
  defaultConfig,
  type Image,
  isImage,
  planImage,
  renderImage,
  validateImages,
} from "imgtool";

const SPEC = new URL("./spec.ts", import.meta.url);

async function loadSpec(query: string): Promise<Image> {
  // A query makes a fresh module instance, so the spec reads the environment again.
  const module = await import(`${SPEC.href}?${query}`);
  assert.ok(isImage(module.default), "the spec's default export is not an Image");
  return module.default;
}

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

Deno.test("the all_plugins spec validates and uses every example plugin", async () => {
  const image = await loadSpec("defaults");
  const plan = planImage(image, "default", defaultConfig());
  assert.deepEqual(await validateImages([plan]), []);
  const rendered = await renderImage(plan);
  assert.deepEqual(rendered.sections.map((section) => section.plugin), [
    "debian_base",
    "node_packages",
    "download_file",
    "non_root_user",
    "source_file",
  ]);
  assert.match(rendered.dockerfile, /npm install --global .* semver@7\.6\.3\n/);
  assert.match(rendered.dockerfile, /\nUSER app\nWORKDIR "\/home\/app"\n/);
  assert.match(
    rendered.dockerfile,
    /\nCOPY --chown=app:app \["\.imgtool\/\d+-source_file\/file\/", "\.\/"\]\n/,
  );
});

Deno.test("the all_plugins spec's default digest is that of files/greeting.txt", async () => {
  const image = await loadSpec("digest");
  const rendered = await renderImage(planImage(image, "default", defaultConfig()));
  const greeting = await Deno.readFile(new URL("./files/greeting.txt", import.meta.url));
  const expected = await sha256Hex(greeting);
  assert.match(rendered.dockerfile, new RegExp(`export DOWNLOAD_SHA256=${expected} \\\\\n`));
});

Deno.test("the all_plugins spec reads its download, npm and token settings from the environment", async () => {
  const variables = {
    IMGTOOL_EXAMPLE_DOWNLOAD_URL: "http://127.0.0.1:8999/greeting.txt",
    IMGTOOL_EXAMPLE_DOWNLOAD_SHA256: "b".repeat(64),
    IMGTOOL_EXAMPLE_NPM_PACKAGES: "imgtool-demo@1.0.0  left-pad",
    IMGTOOL_EXAMPLE_NPM_TOKEN: "token-value-that-must-not-leak",
  };
  for (const [name, value] of Object.entries(variables)) Deno.env.set(name, value);
  try {
    const image = await loadSpec("environment");
    const config = {
      ...defaultConfig(),
      plugins: { node_packages: { registry: "http://127.0.0.1:4873/" } },
    };
    const plan = planImage(image, "default", config);
    assert.deepEqual(await validateImages([plan]), []);
    const rendered = await renderImage(plan);
    assert.match(
      rendered.dockerfile,
      /export DOWNLOAD_URL=http:\/\/127\.0\.0\.1:8999\/greeting\.txt/,
    );
    assert.match(rendered.dockerfile, new RegExp(`export DOWNLOAD_SHA256=${"b".repeat(64)}`));
    assert.match(rendered.dockerfile, / imgtool-demo@1\.0\.0 left-pad\n/);
    assert.match(rendered.dockerfile, /--mount=type=secret,id=IMGTOOL_EXAMPLE_NPM_TOKEN,/);
    assert.deepEqual(rendered.secrets.map((secret) => secret.id), ["IMGTOOL_EXAMPLE_NPM_TOKEN"]);
    const everything = `${rendered.dockerfile}${JSON.stringify(rendered.context)}`;
    assert.ok(!everything.includes(variables.IMGTOOL_EXAMPLE_NPM_TOKEN), "the token leaked");
  } finally {
    for (const name of Object.keys(variables)) Deno.env.delete(name);
  }
});
