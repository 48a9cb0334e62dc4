import assert from "node:assert/strict";
import { Image } from "imgtool";
import * as images from "./fixtures/project/images.ts";
import { asText, dockerUnquote, fixtureConfig, renderGolden } from "./helpers.ts";
import { identify, planImage, type RenderedImage, renderImage, validateImages } from "../mod.ts";

const config = fixtureConfig();

Deno.test("env_vars plugin writes every value quoted, with quotes, $ and backslashes escaped", async (t) => {
  const golden = await renderGolden(images.envVars, config);
  assert.match(golden, /ENV MODE="prod" \\\n/);
  assert.match(golden, / GREETING="say \\"hi\\" to everyone" \\\n/);
  assert.match(golden, / PRICE="costs \\\$5 or \\\$\{PRICE\}" \\\n/);
  assert.match(golden, / WINDOWS_PATH="C:\\\\temp\\\\new" \\\n/);
  assert.match(golden, / EMPTY=""\n/);
  await t.assertSnapshot(golden, asText);
});

Deno.test("env_vars plugin values read back exactly as Docker parses them", async () => {
  const values: Record<string, string> = {
    A: 'say "hi"',
    B: "$HOME ${PATH} $$ $",
    C: "back\\slash\\",
    D: "'single' and `tick`",
    E: "trailing space ",
    F: "ünïcödé ✓",
  };
  const rendered = await renderImage(
    planImage(Image.fromBase("debian:bookworm").withEnvVars(values), "default", config),
  );
  const line = rendered.sections[1].instructions.join("\n");
  const pairs = [...line.matchAll(/([A-Z])=("(?:[^"\\]|\\.)*")/g)];
  assert.equal(pairs.length, Object.keys(values).length);
  for (const [, name, word] of pairs) assert.equal(dockerUnquote(word), values[name], name);
});

Deno.test("env_vars plugin passes values with line breaks or control characters as build arguments", async (t) => {
  const golden = await renderGolden(images.envVarsMultiline, config);
  assert.match(golden, /^ARG IMGTOOL_ENV_1_BANNER$/m);
  assert.match(golden, /^ENV MODE="prod" \\\n {4}BANNER="\$\{IMGTOOL_ENV_1_BANNER\}" \\\n/m);
  const rendered = await renderImage(planImage(images.envVarsMultiline, "default", config));
  assert.deepEqual(rendered.buildArgs, {
    IMGTOOL_ENV_1_BANNER: "line one\nline 'two' with $HOME\n",
    IMGTOOL_ENV_1_TABBED: "a\tb",
  });
  await t.assertSnapshot(golden, asText);
});

/**
 * What the `ENV` instructions of a rendered image set, as BuildKit evaluates them: each
 * instruction's double-quoted values, `\` escaping `"`, `$` and `\`, and `${NAME}` / `$NAME`
 * replaced by the build arguments or the variables set before that instruction (`before`
 * holds the base image's). A `$` that starts no reference fails: BuildKit would read it
 * some other way.
 */
function evaluateEnv(rendered: RenderedImage, before: Record<string, string> = {}) {
  const env: Record<string, string> = { ...before };
  const args: Record<string, string> = {};
  for (const instruction of rendered.sections.flatMap((section) => section.instructions)) {
    const arg = /^ARG (\w+)$/.exec(instruction);
    if (arg) args[arg[1]] = rendered.buildArgs[arg[1]];
    if (!instruction.startsWith("ENV ")) continue;
    const scope = { ...env, ...args };
    for (const [, name, word] of instruction.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      let value = "";
      for (let i = 0; i < word.length; i++) {
        if (word[i] === "\\" && '"$\\'.includes(word[i + 1])) value += word[++i];
        else if (word[i] !== "$") value += word[i];
        else {
          const ref = /^\$(?:\{(\w+)\}|([A-Za-z_]\w*))/.exec(word.slice(i));
          assert.ok(ref, `a $ that starts no reference in ${word}`);
          value += scope[ref[1] ?? ref[2]] ?? "";
          i += ref[0].length - 1;
        }
      }
      env[name] = value;
    }
  }
  return env;
}

const BASE_ENV = { PATH: "/usr/local/bin:/usr/bin:/bin", LANG: "C.UTF-8" };

Deno.test("env_vars plugin with expand replaces $NAME and ${NAME} by the image's variables and keeps everything else literal", async (t) => {
  const image = Image.fromBase("debian:bookworm-slim").withEnvVars({
    PATH: "/opt/tool/bin:$PATH",
    DATA: "${LANG}/data",
    UNSET: "[$NOT_SET_ANYWHERE]",
    GLUED: "$LANGx${LANG}y",
    LITERAL: 'costs $5, ${A:-b}, $$, $1, ${}, ${9}, \\ and "q" $',
    MULTI: "line1\n$LANG\tend\n",
  }, { expand: true });
  const rendered = await renderImage(planImage(image, "default", config));
  const env = evaluateEnv(rendered, BASE_ENV);
  assert.equal(env.PATH, "/opt/tool/bin:/usr/local/bin:/usr/bin:/bin");
  assert.equal(env.DATA, "C.UTF-8/data");
  assert.equal(env.UNSET, "[]");
  // As a shell reads it: `$LANGx` names LANGx, which is unset.
  assert.equal(env.GLUED, "C.UTF-8y");
  assert.equal(env.LITERAL, 'costs $5, ${A:-b}, $$, $1, ${}, ${9}, \\ and "q" $');
  // Line breaks and tabs travel as build arguments; the reference between them expands.
  assert.equal(env.MULTI, "line1\nC.UTF-8\tend\n");
  assert.deepEqual(Object.values(rendered.buildArgs).sort(), ["\tend\n", "line1\n"]);
  await t.assertSnapshot(await renderGolden(image, config), asText);
});

Deno.test("env_vars plugin with expand sets a layer's variables in one ENV, so references see the values from before the layer (Dockerfile ENV rule)", async () => {
  const image = Image.fromBase("debian:bookworm-slim")
    .withEnvVars({ A: "old" })
    .withEnvVars({ A: "new", B: "$A", C: "${B}" }, { expand: true });
  const rendered = await renderImage(planImage(image, "default", config));
  assert.equal(rendered.sections[2].instructions.filter((i) => i.startsWith("ENV ")).length, 1);
  const env = evaluateEnv(rendered);
  assert.deepEqual([env.A, env.B, env.C], ["new", "old", ""]);
});

Deno.test("env_vars plugin without expand keeps $NAME literal, also through build arguments", async () => {
  const values = { P: "/opt/bin:$PATH", M: "a\n${LANG}" };
  const image = Image.fromBase("debian:bookworm-slim").withEnvVars(values);
  const env = evaluateEnv(await renderImage(planImage(image, "default", config)), BASE_ENV);
  assert.deepEqual([env.P, env.M], [values.P, values.M]);
});

Deno.test("env_vars plugin gives each layer its own build arguments: two layers that set one variable keep their values", async () => {
  const image = Image.fromBase("debian:bookworm-slim")
    .withEnvVars({ BANNER: "first\nbanner" })
    .withEnvVars({ SNAPSHOT: "$BANNER" }, { expand: true })
    .withEnvVars({ BANNER: "second\nbanner" });
  const env = evaluateEnv(await renderImage(planImage(image, "default", config)));
  assert.deepEqual([env.SNAPSHOT, env.BANNER], ["first\nbanner", "second\nbanner"]);
});

Deno.test("env_vars plugin counts expand in the identity; expand: false is the default", async () => {
  const base = Image.fromBase("debian:bookworm-slim");
  const tag = async (image: Image) => (await identify(planImage(image, "default", config))).tag;
  const vars = { PATH: "/opt/tool/bin:$PATH" };
  const literal = await tag(base.withEnvVars(vars));
  assert.equal(await tag(base.withEnvVars(vars, { expand: false })), literal);
  assert.notEqual(await tag(base.withEnvVars(vars, { expand: true })), literal);
});

/** The warnings validation gives for an image. */
async function warningsOf(image: Image) {
  const found = await validateImages([planImage(image, "default", config)], { warnings: true });
  return found.filter((d) => d.severity === "warning");
}

const LITERAL_HINT = (names: string) =>
  `pass { expand: true } to withEnvVars to refer to the image's ${names}, ` +
  "or ignore this if the text is meant literally";

Deno.test("env_vars plugin without expand warns once per variable whose value holds $NAME or ${NAME}, naming the variable and each reference as written", async () => {
  const image = Image.fromBase("debian:bookworm-slim").withEnvVars({
    PATH: "/opt/tool/bin:$PATH",
    PLAIN: "no references here",
    DATA: "${HOME}/data:$HOME:${HOME}:$LANG",
  });
  const found = await warningsOf(image);
  assert.deepEqual(found.map((d) => [d.message, d.hint, d.layer?.method, d.layer?.plugin]), [
    [
      'ENV PATH holds "$PATH", which stays literal',
      LITERAL_HINT("PATH"),
      "withEnvVars",
      "env_vars",
    ],
    [
      'ENV DATA holds "${HOME}", "$HOME" and "$LANG", which stay literal',
      LITERAL_HINT("HOME and LANG"),
      "withEnvVars",
      "env_vars",
    ],
  ]);
  // A warning leaves the layer valid.
  assert.deepEqual(await validateImages([planImage(image, "default", config)]), []);
});

Deno.test("env_vars plugin warns exactly for the values expand would change: `$5`, `$$`, `${A:-b}`, `${}` and a lone `$` are not references", async () => {
  const values: Record<string, string> = {
    REF: "/x:$PATH",
    BRACED: "${LANG}",
    GLUED: "$LANGx",
    AFTER_DOLLARS: "$$PATH",
    BACKSLASHED: "\\$PATH",
    MULTILINE: "line\n$LANG",
    UNSET: "$NOT_SET_ANYWHERE",
    PRICE: "costs $5",
    PID: "$$",
    DEFAULTED: "${A:-b}",
    EMPTY_BRACES: "${}",
    DIGIT: "${9}",
    LONE: "100$",
    SPACED: "$ PATH",
  };
  const base = Image.fromBase("debian:bookworm-slim");
  // What expand would do, as BuildKit evaluates the rendered ENV: an independent account of
  // which values hold references.
  const expanded = evaluateEnv(
    await renderImage(planImage(base.withEnvVars(values, { expand: true }), "default", config)),
    BASE_ENV,
  );
  const changed = Object.keys(values).filter((name) => expanded[name] !== values[name]).sort();
  const warned = (await warningsOf(base.withEnvVars(values)))
    .map((d) => /^ENV (\w+) holds /.exec(d.message)?.[1]).sort();
  assert.ok(changed.includes("REF") && !changed.includes("PRICE"), changed.join(", "));
  assert.deepEqual(warned, changed);
});

Deno.test("env_vars plugin with expand gives no warning", async () => {
  const image = Image.fromBase("debian:bookworm-slim")
    .withEnvVars({ PATH: "/opt/tool/bin:$PATH", DATA: "${HOME}/data" }, { expand: true });
  assert.deepEqual(await warningsOf(image), []);
});
