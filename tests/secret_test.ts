import assert from "node:assert/strict";
import { defaultConfig, Image, planImage, renderImage, Secret, validateImages } from "../mod.ts";

const debian = Image.fromBase("debian:bookworm");

async function render(image: Image): Promise<string> {
  return (await renderImage(planImage(image, "default", defaultConfig()))).dockerfile;
}

Deno.test("Secret: the seed's own example works: apt-secret takes its value from APT_SECRET", async () => {
  const secret = new Secret({ key: "apt-secret", mount: "/etc/apt/apt-secret" });
  assert.equal(secret.id, "APT_SECRET");
  assert.deepEqual(secret.problems(), []);
  const dockerfile = await render(debian.withAptPackages("git", { secretMounts: secret }));
  assert.match(dockerfile, /--mount=type=secret,id=APT_SECRET,target=\/etc\/apt\/apt-secret/);
  const grouped = new Secret({ key: "pypi-token", group: "ci-tokens" });
  assert.equal(grouped.id, "CI_TOKENS_PYPI_TOKEN");
});

Deno.test("Secret: asEnvVar may name the variable the step sees, as the original's as_env_var", async () => {
  const secret = new Secret({ key: "github-pat", asEnvVar: "GH_TOKEN" });
  assert.equal(secret.id, "GITHUB_PAT");
  assert.equal(secret.variable, "GH_TOKEN");
  const dockerfile = await render(debian.withCommands("gh auth status", { secretMounts: secret }));
  // The value comes in under the secret's id and is exported under the chosen name.
  assert.match(dockerfile, /id=GITHUB_PAT,target=\/run\/secrets\/GITHUB_PAT/);
  assert.match(dockerfile, /GH_TOKEN="\$\(cat \/run\/secrets\/GITHUB_PAT\)" && export GH_TOKEN/);
  assert.doesNotMatch(dockerfile, /export GITHUB_PAT/);
});

Deno.test("Secret: a named variable changes the tag; asEnvVar true keeps the tag it had", () => {
  const tag = (secret: Secret) => debian.withCommands("true", { secretMounts: secret }).identifier;
  const plain = tag(new Secret({ key: "TOKEN" }));
  assert.equal(tag(new Secret({ key: "TOKEN", asEnvVar: true })), plain);
  assert.notEqual(tag(new Secret({ key: "TOKEN", asEnvVar: "OTHER" })), plain);
});

Deno.test("Secret: an invalid asEnvVar name and an empty key are validation problems", async () => {
  const image = debian
    .withCommands("true", { secretMounts: new Secret({ key: "T", asEnvVar: "1BAD" }) })
    .withCommands("true", { secretMounts: new Secret({ key: "" }) });
  const problems = await validateImages([planImage(image, "default", defaultConfig())], {
    secretValues: false,
  });
  const messages = problems.map((problem) => problem.message);
  assert.ok(
    messages.some((m) => m.includes('asEnvVar "1BAD" is not a valid')),
    messages.join("\n"),
  );
  assert.ok(messages.some((m) => m.includes('secret key "" gives the id ""')), messages.join("\n"));
});
