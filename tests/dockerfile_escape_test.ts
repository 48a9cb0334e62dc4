/**
 * Layers on top of a Dockerfile whose `# escape=\`` directive makes the backtick its escape
 * character. Plugins write their instructions for `\`; the core rewrites them. The checks read
 * the result with what decides its meaning, not with imgtool's own code:
 *
 * - ENV, WORKDIR and LABEL values: the independent parser `dockerfile-ast`, told the escape
 *   character by the directive, reads back the values the helpers were given;
 * - RUN text: joined at its line continuations by BuildKit's own rule (the regular expression
 *   of `frontend/dockerfile/parser/parser.go`, `setEscapeToken`), it is the same shell text.
 *   (`dockerfile-ast` reads "escape, blank, escape, line break" unlike BuildKit, so it cannot
 *   judge RUN text that holds a backtick.)
 *
 * `tests/e2e/dockerfile_directives_test.ts` builds such instructions with the Docker engine.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { DockerfileParser, Env, type Instruction } from "dockerfile-ast";
import {
  definePlugin,
  dockerfileQuote,
  env,
  Image,
  instructionTextProblem,
  type Mount,
  planImage,
  renderImage,
  run,
  Secret,
  SpecError,
  validateImages,
} from "../mod.ts";
import { rewriteForEscape } from "../src/dockerfile_escape.ts";
import { fixtureConfig } from "./helpers.ts";

const config = fixtureConfig();
const BACKTICK_DOCKERFILE = "./fixtures/dockerfile_escape/docker/Dockerfile";
const BACKSLASH_DOCKERFILE = "./fixtures/dockerfile_escape/docker_backslash/Dockerfile";
const RUNS = 300;

// Characters that mean something to one escape character or the other, to quotes, to
// expansion, to word splitting, and some that mean nothing.
const nasty = fc.string({
  unit: fc.constantFrom(
    "\\",
    "`",
    '"',
    "'",
    "$",
    "{",
    "}",
    " ",
    "=",
    "a",
    "Z",
    "é",
    "→",
    "😀",
    "#",
  ),
  maxLength: 12,
});

/** Rewrite for the backtick, failing the test if it cannot. */
function backtick(instruction: string): string {
  const result = rewriteForEscape(instruction, "`");
  assert.ok("text" in result, `refused: ${JSON.stringify(result)}\n${instruction}`);
  return result.text;
}

function parse(escape: "\\" | "`", instructions: readonly string[]): Instruction[] {
  const head = escape === "`" ? "# escape=`\n" : "";
  const text = `${head}FROM debian:bookworm-slim\n${instructions.join("\n")}\n`;
  return DockerfileParser.parse(text).getInstructions().slice(1);
}

// dockerfile-ast keeps an escaped $ as escape + $; BuildKit reads it as $.
const unescapeDollar = (escape: string, value: string) => value.replaceAll(`${escape}$`, "$");

/** ENV values as dockerfile-ast reads them. */
function envValues(escape: "\\" | "`", instruction: string): Record<string, string> {
  const [parsed, ...more] = parse(escape, [instruction]);
  assert.equal(more.length, 0, `more than one instruction:\n${instruction}`);
  assert.ok(parsed instanceof Env, instruction);
  return Object.fromEntries(
    parsed.getProperties().map((p) => [p.getName(), unescapeDollar(escape, p.getValue() ?? "")]),
  );
}

/**
 * The logical line of an instruction, its continuations joined as BuildKit joins them: inside
 * a continuation, comment lines and empty lines are skipped.
 */
function joined(escape: "\\" | "`", instruction: string): string {
  const e = escape === "`" ? "`" : "\\\\";
  const continuation = new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
  const lines = instruction.split("\n");
  return lines.map((line, index) => {
    if (index > 0 && /^\s*(#.*)?$/.test(line)) return "";
    if (index === lines.length - 1) {
      assert.ok(!continuation.test(line), `the last line continues: ${instruction}`);
      return line;
    }
    assert.ok(continuation.test(line), `line ${index + 1} does not continue: ${instruction}`);
    return line.replace(continuation, "$1");
  }).join("");
}

/**
 * The words a POSIX shell reads from `text`. The rewritten arguments use only single quotes,
 * and `'` in double quotes, which BuildKit's lexer (and buildah's) read as the shell does.
 */
async function shellWords(text: string): Promise<string[]> {
  const output = await new Deno.Command("sh", {
    args: ["-c", `printf '%s\\0' ${text}`],
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin" },
  }).output();
  assert.ok(output.success, `sh failed on ${JSON.stringify(text)}`);
  return new TextDecoder().decode(output.stdout).split("\0").slice(0, -1);
}

/** The arguments of a rewritten instruction, its continuations joined. */
function argumentsOf(instruction: string): string {
  return joined("`", instruction).replace(/^[A-Z]+ /, "");
}

Deno.test("ENV values written by env() arrive intact under # escape=` (sh)", async () => {
  const name = fc.constantFrom("A", "MODE", "PATH_2", "_x");
  await fc.assert(
    fc.asyncProperty(fc.dictionary(name, nasty, { minKeys: 1, maxKeys: 3 }), async (values) => {
      const original = env(values);
      // The control: dockerfile-ast reads the values back with the default escape character.
      assert.deepEqual(envValues("\\", original), { ...values });
      const rewritten = backtick(original);
      // One instruction (BuildKit's continuation rule joins every line of it, see argumentsOf)
      // whose words are exactly name=value. (dockerfile-ast takes ` before a closing ' for an
      // escape, which BuildKit does not inside single quotes, so it cannot judge these.)
      assert.deepEqual(
        await shellWords(argumentsOf(rewritten)),
        Object.entries(values).map(([key, value]) => `${key}=${value}`),
      );
    }),
    { numRuns: RUNS, examples: [[{ A: "C:\\dir\\" }], [{ A: '`"$HOME\\`' }], [{ A: "'\\" }]] },
  );
});

Deno.test("quoted WORKDIR and LABEL values arrive intact under # escape=` (sh)", async () => {
  await fc.assert(
    fc.asyncProperty(nasty, async (value) => {
      const workdir = backtick(`WORKDIR ${dockerfileQuote(`/srv/${value}`)}`);
      const label = backtick(`LABEL note=${dockerfileQuote(value)}`);
      assert.deepEqual(
        parse("`", [workdir, label]).map((instruction) => instruction.getKeyword()),
        ["WORKDIR", "LABEL"],
      );
      assert.deepEqual(await shellWords(argumentsOf(workdir)), [`/srv/${value}`]);
      assert.deepEqual(await shellWords(argumentsOf(label)), [`note=${value}`]);
    }),
    { numRuns: RUNS },
  );
});

Deno.test("RUN text written by run() is the same shell text under # escape=` (BuildKit's continuation rule)", () => {
  // A command may hold anything but a line break; it must not start with - (run() refuses)
  // nor end in \ (it would continue the instruction: withCommands refuses it).
  const command = nasty.filter((text) =>
    text.trim() !== "" && !/^\s*-/.test(text) && !/\\\s*$/.test(text)
  );
  const mount: fc.Arbitrary<Mount> = fc.constantFrom(
    { type: "cache", target: "/root/.cache/pip" },
    { type: "bind", source: ".imgtool/03-x/file/a", target: "/tmp/a", readwrite: true },
  );
  fc.assert(
    fc.property(
      fc.array(command, { minLength: 1, maxLength: 3 }),
      fc.array(mount, { maxLength: 2 }),
      fc.boolean(),
      (commands, mounts, secret) => {
        const original = run(commands, {
          mounts,
          secrets: secret ? [new Secret({ key: "TOKEN" })] : [],
        });
        const result = rewriteForEscape(original, "`");
        if (instructionTextProblem(original) !== undefined) {
          // Not one instruction to begin with (a last command that is a comment, say): the
          // core refuses it whatever the escape character, and so does the rewrite.
          assert.ok("problem" in result, `rewritten: ${original}`);
          return;
        }
        if (/`[ \t]*$/.test(commands.at(-1)!)) {
          // Under the backtick a last line ending in one would continue into what follows.
          assert.ok("problem" in result, `not refused: ${original}`);
          assert.match(result.problem, /ends in `/);
          assert.match(result.hint, /;/);
          return;
        }
        assert.ok("text" in result, JSON.stringify(result));
        assert.equal(joined("`", result.text), joined("\\", original));
        // Each line is the line it was, but for its continuation: the step reads as it did.
        const ends = (escape: string, text: string) =>
          text.split("\n").map((line) => line.replace(new RegExp(`\\${escape}$`), ""));
        assert.deepEqual(ends("`", result.text), ends("\\", original));
      },
    ),
    { numRuns: RUNS, examples: [[["echo `date` > /d", "cat /d"], [], true]] },
  );
});

Deno.test("a flag that holds ` or \\ is refused under # escape=`, not rewritten", () => {
  // A literal backtick, and an escaped backslash (\\ in the flag text: BuildKit reads one \).
  for (const target of ["/cache/a`b", "/cache/a\\\\b"]) {
    const instruction = run("true", { mounts: [{ type: "cache", target }] });
    const result = rewriteForEscape(instruction, "`");
    assert.ok("problem" in result, `${instruction} was rewritten`);
    assert.match(result.problem, /flag/);
  }
  // The same flag without either character is left as it is.
  const plain = run("true", { mounts: [{ type: "cache", target: "/cache/a b" }] });
  assert.equal(backtick(plain), plain.replaceAll(" \\\n", " `\n"));
});

Deno.test("a flag whose value held an escape keeps that value, in single quotes (sh)", async () => {
  const rewritten = backtick("COPY --chown=app\\ user --from=stage x y");
  const [flag, next] = argumentsOf(rewritten).split(" --");
  // extractBuilderFlags, like the shell, drops the quotes and keeps what they hold.
  assert.deepEqual(await shellWords(flag), ["--chown=app user"]);
  assert.equal(next, "from=stage x y");
});

Deno.test("every layer on a # escape=` Dockerfile renders the instructions it renders on a \\ one (dockerfile-ast)", async () => {
  const chain = (file: string) =>
    Image.fromDockerfile(file, { name: "escape" })
      .withAptPackages(["git", "curl"])
      .withEnvVars({ A: 'x"y\\z`$q', B: "C:\\dir\\", C: "line1\nline2" })
      .withPipPackages(["requests==2.32.3"], { indexUrl: "https://pypi.example/simple" })
      .withSourceFile("./fixtures/dockerfile_escape/extra.txt", "/srv/a`b.txt")
      .withSourceFolder("./fixtures/dockerfile_escape/src", "/srv/src")
      .withCommands(["echo `printf sub` > /srv/sub.txt && true"], {
        secretMounts: ["TOKEN", new Secret({ key: "apt-secret", mount: "/etc/apt/apt-secret" })],
      })
      .withWorkdir("/srv/w`dir");
  const render = async (file: string) => {
    const plan = planImage(chain(file), "default", config);
    assert.deepEqual(await validateImages([plan], { secretValues: false }), []);
    return await renderImage(plan);
  };
  const backslash = await render(BACKSLASH_DOCKERFILE);
  const backtickImage = await render(BACKTICK_DOCKERFILE);
  assert.match(backtickImage.dockerfile, /^# escape=`\n/);
  const read = (dockerfile: string) =>
    DockerfileParser.parse(dockerfile).getInstructions().map((instruction) => {
      const flags = "getFlags" in instruction && typeof instruction.getFlags === "function"
        ? (instruction.getFlags() as { getName(): string; getValue(): string | null }[])
          .map((flag) => ` --${flag.getName()}=${flag.getValue()}`)
        : [];
      const names = instruction instanceof Env
        ? instruction.getProperties().map((property) => ` ${property.getName()}`)
        : [];
      return `${instruction.getKeyword()}${flags.join("")}${names.join("")}`;
    });
  assert.deepEqual(read(backtickImage.dockerfile), read(backslash.dockerfile));
  // The layers' RUN steps hold the same shell text.
  const runs = (escape: "\\" | "`", sections: typeof backslash.sections) =>
    sections.slice(1).flatMap((section) => section.instructions)
      .filter((instruction) => instruction.startsWith("RUN "))
      .map((instruction) => joined(escape, instruction));
  assert.deepEqual(runs("`", backtickImage.sections), runs("\\", backslash.sections));
  assert.deepEqual(
    backtickImage.context,
    backslash.context.map((entry) =>
      // Only the Dockerfile's own folder differs.
      entry.target === "." && entry.kind === "tree"
        ? { ...entry, source: entry.source.replace("docker_backslash", "docker") }
        : entry
    ),
  );
});

Deno.test("a command ending in ` on a # escape=` Dockerfile is refused, naming the layer and the fix", async () => {
  const image = Image.fromDockerfile(BACKTICK_DOCKERFILE, { name: "escape" })
    .withCommands(["echo start", "echo `date`"]);
  const plan = planImage(image, "default", config);
  assert.deepEqual(await validateImages([plan], { secretValues: false }), []);
  const error = await renderImage(plan).then(() => undefined, (error) => error);
  assert.ok(error instanceof SpecError, String(error));
  assert.equal(error.exitCode, 2);
  assert.match(error.message, /^layer 1 \(withCommands at dockerfile_escape_test\.ts:\d+/);
  assert.match(error.message, /# escape=`/);
  assert.match(error.message, /echo `date`/);
  assert.match(error.hint ?? "", /end it with another character \(a shell command can end in ;\)/);
  // The same command renders on a Dockerfile with the default escape character, and with a
  // `;` after it on the backtick one.
  await renderImage(planImage(
    Image.fromDockerfile(BACKSLASH_DOCKERFILE, { name: "escape" }).withCommands("echo `date`"),
    "default",
    config,
  ));
  await renderImage(planImage(
    Image.fromDockerfile(BACKTICK_DOCKERFILE, { name: "escape" }).withCommands("echo `date`;"),
    "default",
    config,
  ));
});

Deno.test("a custom plugin's instructions are rewritten too, or refused with its name: never passed on unread", async () => {
  const label = definePlugin<{ readonly text: string }>({
    name: "escape_test_label",
    render: (options) => ({ instructions: [`LABEL note=${dockerfileQuote(options.text)}`] }),
  });
  const onbuild = definePlugin<Record<string, never>>({
    name: "escape_test_onbuild",
    render: () => ({ instructions: ["ONBUILD RUN echo a\\ b"] }),
  });
  const value = 'C:\\x "y" `z` $HOME';
  const rendered = await renderImage(planImage(
    Image.fromDockerfile(BACKTICK_DOCKERFILE, { name: "escape" }).withLayer(
      label.layer({ text: value }),
    ),
    "default",
    config,
  ));
  const [labelInstruction] = rendered.sections[1].instructions;
  assert.match(labelInstruction, /^LABEL /);
  assert.deepEqual(await shellWords(argumentsOf(labelInstruction)), [`note=${value}`]);

  const error = await renderImage(planImage(
    Image.fromDockerfile(BACKTICK_DOCKERFILE, { name: "escape" }).withLayer(onbuild.layer({})),
    "default",
    config,
  )).then(() => undefined, (error) => error);
  assert.ok(error instanceof SpecError, String(error));
  assert.match(error.message, /plugin "escape_test_onbuild"/);
  assert.match(error.message, /cannot rewrite the arguments of ONBUILD/);
  assert.match(error.hint ?? "", /remove the escape directive/);
  // With the default escape character nothing is rewritten.
  const plain = await renderImage(planImage(
    Image.fromDockerfile(BACKSLASH_DOCKERFILE, { name: "escape" }).withLayer(onbuild.layer({})),
    "default",
    config,
  ));
  assert.match(plain.dockerfile, /^ONBUILD RUN echo a\\ b$/m);
});

Deno.test("an instruction that is not one instruction is still refused before any rewriting", () => {
  for (const text of ["RUN a\nRUN b", "RUN a \\", "ENV A=1 \\\n"]) {
    assert.ok("problem" in rewriteForEscape(text, "`"), JSON.stringify(text));
  }
  // With the default escape character the text is the plugin's, checked by the core.
  assert.deepEqual(rewriteForEscape("RUN a\nRUN b", "\\"), { text: "RUN a\nRUN b" });
});
