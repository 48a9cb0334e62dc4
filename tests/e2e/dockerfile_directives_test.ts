/**
 * `fromDockerfile` keeps the user's Dockerfile meaning, built for real:
 *
 * - the engine reads instructions the helpers wrote, rewritten for `# escape=\``, as the same
 *   instructions written for `\`: ENV values, RUN text, COPY destinations and WORKDIR paths
 *   with backticks, backslashes, quotes, `$` and blanks arrive exactly (a Dockerfile made
 *   directly from the helpers, exported with `--output`);
 * - `imgtool build` of a spec whose Dockerfile has `# escape=\`` and a `.dockerignore` of `*`
 *   with `!app.txt` (and `!.dockerignore`, so that the rules file reaches the context and its
 *   `*` would drop what later layers stage), with `withEnvVars`, `withSourceFile`,
 *   `withCommands` (with a secret, so its RUN spans lines) and `withWorkdir` on top, with the
 *   Docker builder and with buildah; the image is pulled back from the registry and looked
 *   into. The engine cannot pull a `# syntax=` frontend here (no network), so there is none.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import {
  assertExit,
  e2eTest,
  type Facts,
  imgtool,
  inImage,
  makeProject,
  mustDocker,
  projectConfig,
  removeImages,
  run as runProgram,
  RUN_ID,
  timing,
} from "./harness.ts";
import { copy, dockerfileQuote, env, run, shellQuote } from "../../mod.ts";
import { rewriteForEscape } from "../../src/dockerfile_escape.ts";

/** Values that mean something to one escape character or the other, or to the lexer. */
const KNOWN = [
  "C:\\Users\\me\\",
  "back`tick",
  "``",
  'say "hi" to $USER',
  '`"$HOME\\`',
  "\\$PATH and ${HOME}",
  "it's a `test`",
  "trailing backslash \\",
  "= spaces  and  more =",
  "é → 😀",
];

/** More of them, the same every run (a fixed seed), from characters that matter. */
const SAMPLED = fc.sample(
  fc.string({
    unit: fc.constantFrom("\\", "`", '"', "'", "$", "{", "}", " ", "=", "a", "é"),
    minLength: 1,
    maxLength: 10,
  }),
  { seed: 20260105, numRuns: 30 },
);

const VALUES = [...KNOWN, ...SAMPLED];
// COPY destinations and WORKDIR paths are checked by plugins (no $ or \), and BuildKit reads
// quotes in them as shell quotes whatever the escape character: those stay out.
const PATH_VALUES = VALUES.filter((value) => !/[$\\"']/.test(value) && value.trim() !== "")
  .slice(0, 10);

/** The instructions, written as plugins write them (for `\`), then for `escape`. */
function instructions(escape: "\\" | "`"): string[] {
  const written = [
    env(Object.fromEntries(VALUES.map((value, index) => [`V${index}`, value]))),
    run([
      "mkdir -p /out",
      ...VALUES.map((value, index) => `printf '%s' ${shellQuote(value)} > /out/run-${index}`),
      ...VALUES.map((_, index) => `printenv V${index} > /out/env-${index}`),
      // A backtick in the middle of a continued line, and at the end of a command's text.
      "echo `printf sub` > /out/sub",
    ]),
    ...PATH_VALUES.map((value, index) => copy(["app.txt"], `/out/copy-${index}-${value}`)),
    ...PATH_VALUES.flatMap((value, index) => [
      `WORKDIR ${dockerfileQuote(`/wd/${index}-${value}`)}`,
      run(`pwd > /out/pwd-${index}`),
    ]),
  ];
  return written.map((instruction) => {
    const result = rewriteForEscape(instruction, escape);
    if (!("text" in result)) throw new Error(`refused: ${result.problem}\n${instruction}`);
    return result.text;
  });
}

/** What the build must write into /out, file by file. */
function expectedFiles(): Record<string, string> {
  const files: Record<string, string> = { sub: "sub\n" };
  VALUES.forEach((value, index) => {
    files[`run-${index}`] = value;
    files[`env-${index}`] = `${value}\n`;
  });
  PATH_VALUES.forEach((value, index) => {
    files[`copy-${index}-${value}`] = "application data\n";
    files[`pwd-${index}`] = `/wd/${index}-${value}\n`;
  });
  return files;
}

async function readFiles(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for await (const entry of Deno.readDir(dir)) {
    files[entry.name] = await Deno.readTextFile(join(dir, entry.name));
  }
  return files;
}

e2eTest(
  "docker: instructions rewritten for # escape=` mean what they mean under \\ (ENV, RUN, COPY, WORKDIR)",
  async (t, facts) => {
    const made: string[] = [];
    try {
      for (const escape of ["\\", "`"] as const) {
        await t.step(`escape ${escape}`, async () => {
          const dockerfile = [
            ...(escape === "`" ? ["# escape=`"] : []),
            `FROM ${facts.PYTHON_BASE} AS work`,
            // Unique per run and escape character: every later step runs for real, not from
            // the builder's cache (which would take the other escape's equal steps).
            `ENV E2E_RUN=${RUN_ID}-${escape === "`" ? "backtick" : "backslash"}`,
            ...instructions(escape),
            // Only /out is exported.
            "FROM scratch",
            copy(["/out/"], "/", { from: "work" }),
          ].join("\n");
          const context = await makeProject({
            Dockerfile: `${dockerfile}\n`,
            "app.txt": "application data\n",
          });
          const output = await Deno.makeTempDir({ prefix: "imgtool-e2e-out-" });
          made.push(context, output);
          const started = performance.now();
          await mustDocker(facts, [
            "build",
            "--network=host",
            "--output",
            `type=local,dest=${output}`,
            context,
          ]);
          timing(`docker: escape ${escape} values build`, started);
          assert.deepEqual(await readFiles(output), expectedFiles());
        });
      }
    } finally {
      for (const dir of made) await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);

/** The env values of the spec: each must arrive byte for byte. */
const SPEC_ENV: Record<string, string> = {
  E2E_RUN: RUN_ID,
  E2E_WINDOWS: "C:\\Users\\me\\",
  E2E_BACKTICK: 'say "hi" `now` to $USER',
  E2E_LINES: "line 1\nline 2 with ` and \\",
};

/** The user's own Dockerfile: a backtick escape, a Windows-style value, a continued RUN. */
function userDockerfile(facts: Facts): string {
  return [
    "# escape=`",
    `FROM ${facts.PYTHON_BASE}`,
    // Under the backtick escape, \ is an ordinary character.
    'ENV FROM_USER="C:\\Users\\me"',
    "COPY . /ctx/",
    "RUN mkdir -p /srv `",
    "    && cp /ctx/app.txt /srv/app.txt",
    "",
  ].join("\n");
}

function spec(): string {
  return `import { Image } from "imgtool";

export default Image.fromDockerfile("./docker/Dockerfile", { name: "directives" })
  .withEnvVars(${JSON.stringify(SPEC_ENV)})
  .withSourceFile("./extra.txt", "/srv/a\`b.txt")
  .withCommands(
    [
      "test -s /run/secrets/E2E_DIRECTIVES_TOKEN",
      "echo \`printf sub\` > /srv/sub.txt && cat '/srv/a\`b.txt' /srv/app.txt > /srv/joined.txt",
    ],
    { secretMounts: "E2E_DIRECTIVES_TOKEN" },
  )
  .withWorkdir("/srv/w\`dir");
`;
}

async function directivesSuite(t: Deno.TestContext, facts: Facts, builder: string) {
  const registry = `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-directives-${builder}`;
  const dir = await makeProject({
    "imgtool.toml": projectConfig(facts, registry),
    "spec.ts": spec(),
    "docker/Dockerfile": userDockerfile(facts),
    "docker/.dockerignore": "*\n!app.txt\n!.dockerignore\n",
    "docker/app.txt": "application data\n",
    "docker/other.txt": "excluded by the user's .dockerignore\n",
    "extra.txt": "extra file\n",
  });
  const environment = { E2E_DIRECTIVES_TOKEN: `token-${crypto.randomUUID()}` };
  let uri = "";
  try {
    await t.step("the generated Dockerfile starts with the user's escape directive", async () => {
      const printed = await imgtool(dir, ["dockerfile", "spec.ts"], environment);
      assertExit(printed, 0, "dockerfile");
      assert.match(printed.stdout, /^# escape=`\n# Generated by imgtool/);
    });

    const started = performance.now();
    const built = await imgtool(
      dir,
      ["build", "spec.ts", "--push", "--builder", builder],
      environment,
    );
    timing(`${builder}: escape directive image build and push`, started);
    assertExit(built, 0, "build --push");
    uri = built.stdout.trim().split("\n").pop() ?? "";
    assert.match(uri, new RegExp(`^${registry}/directives:[0-9a-f]{32}$`));
    // Look inside what the registry serves.
    await removeImages(facts, [uri]);
    await mustDocker(facts, ["pull", "-q", uri]);

    await t.step("env values arrive byte for byte, the user's and the layer's", async () => {
      const config = JSON.parse(
        await mustDocker(facts, ["inspect", "--format", "{{json .Config.Env}}", uri]),
      ) as string[];
      const values = Object.fromEntries(config.map((entry) => {
        const at = entry.indexOf("=");
        return [entry.slice(0, at), entry.slice(at + 1)];
      }));
      assert.equal(values.FROM_USER, "C:\\Users\\me");
      for (const [name, value] of Object.entries(SPEC_ENV)) {
        assert.equal(values[name], value, name);
      }
    });

    await t.step("the files of every layer are there, and the commands ran", async () => {
      const read = (path: string) => inImage(facts, uri, ["cat", path]);
      assert.equal(await read("/srv/app.txt"), "application data\n");
      assert.equal(await read("/srv/a`b.txt"), "extra file\n");
      assert.equal(await read("/srv/sub.txt"), "sub\n");
      assert.equal(await read("/srv/joined.txt"), "extra file\napplication data\n");
      assert.equal(await inImage(facts, uri, ["pwd"]), "/srv/w`dir\n");
    });

    await t.step("the user's COPY . saw their context as their rules made it", async () => {
      const listing = (await inImage(facts, uri, ["ls", "-A", "/ctx"])).trim().split("\n");
      assert.ok(listing.includes("app.txt"), listing.join(" "));
      assert.ok(!listing.includes("other.txt"), "other.txt reached the context");
      assert.ok(!listing.includes("Dockerfile"), "imgtool's Dockerfile reached the user's COPY");
      const rules = await inImage(facts, uri, ["cat", "/ctx/.dockerignore"]);
      assert.ok(rules.startsWith("*\n!app.txt\n!.dockerignore\n"), rules);
    });
  } finally {
    if (uri) await removeImages(facts, [uri]);
    // buildah keeps what it built in its own store.
    if (uri && builder === "buildah") await runProgram("buildah", ["rmi", uri]);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

e2eTest(
  "docker: a Dockerfile with # escape=` and a .dockerignore of * takes env, file, command and workdir layers",
  (t, facts) => directivesSuite(t, facts, "docker"),
);

e2eTest(
  "buildah: a Dockerfile with # escape=` and a .dockerignore of * takes env, file, command and workdir layers",
  (t, facts) => directivesSuite(t, facts, "buildah"),
);
