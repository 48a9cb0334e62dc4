/**
 * The README's quick start, run as written: the mirror command of its "Quick start" section,
 * read from README.md (its `IMGTOOL_*` variables and its `deno task imgtool build ...`), run
 * from the repository's root with only the variable the README says the suite adds. It prints
 * `quickstart:<tag>`, as the README says; the image holds what the example spec makes; and run
 * again, it skips the image because it exists.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  assertExit,
  docker,
  e2eTest,
  inImage,
  pythonImagePattern,
  removeImages,
  REPO_ROOT,
  run,
} from "./harness.ts";
import { environmentWithoutImgtool } from "../helpers.ts";

/** A README command: its leading `NAME=value` words, then the program and its arguments. */
interface Command {
  readonly env: Record<string, string>;
  readonly program: string;
  readonly args: string[];
}

/** The README's quick-start command for a mirror, and the variable the suite adds to it. */
function readmeCommand(): { command: Command; suiteAdds: Record<string, string> } {
  const readme = Deno.readTextFileSync(join(REPO_ROOT, "README.md"));
  const block = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)]
    .map((match) => match[1])
    .find((text) => text.includes("IMGTOOL_IMAGES_PYTHON="));
  assert.ok(block, "README.md has no quick-start command with IMGTOOL_IMAGES_PYTHON");
  // One shell command over lines joined by `\`; values are single-quoted or bare words.
  const words = block.replaceAll("\\\n", " ").trim().split(/\s+/)
    .map((word) => word.replace(/^([A-Z_]+=)'(.*)'$/, "$1$2"));
  const env: Record<string, string> = {};
  while (/^[A-Z_]+=/.test(words[0] ?? "")) {
    const [name, ...value] = words.shift()!.split("=");
    env[name] = value.join("=");
  }
  const [program, ...args] = words;
  const added = /the end-to-end suite runs this command, with `([A-Z_]+)=([^`]+)`/
    .exec(readme.replace(/\s+/g, " "));
  assert.ok(added, "README.md no longer says which variable the suite adds to the command");
  return { command: { env, program, args }, suiteAdds: { [added[1]]: added[2] } };
}

e2eTest(
  "the README's quick-start command, as written, prints quickstart:<tag> and skips the image the second time",
  async (_t, facts) => {
    const { command, suiteAdds } = readmeCommand();
    assert.equal(command.program, "deno");
    assert.deepEqual(command.args.slice(0, 3), ["task", "imgtool", "build"]);
    // The README names the addresses env.sh sets up; this environment must have them.
    assert.equal(command.env.IMGTOOL_IMAGES_PYTHON, pythonImagePattern(facts));
    assert.equal(command.env.IMGTOOL_DOCKER_CLIENT, facts.DOCKER);
    const env = { ...environmentWithoutImgtool(), NO_COLOR: "1", ...command.env, ...suiteAdds };
    const deno = (args: string[]) =>
      run(Deno.execPath(), args, { cwd: REPO_ROOT, env, clearEnv: true });

    // The URI the command will print; an image left there by an earlier run goes first, so
    // that the first build builds.
    const uriArgs = command.args.map((arg) => arg === "build" ? "uri" : arg);
    const uris = await deno(uriArgs);
    assertExit(uris, 0, uriArgs.join(" "));
    const uri = uris.stdout.trim();
    assert.match(uri, /^quickstart:[0-9a-f]{32}$/, "the README says it prints quickstart:<tag>");
    await removeImages(facts, [uri]);
    assert.notEqual((await docker(facts, ["image", "inspect", uri])).code, 0, "rmi failed");
    try {
      const first = await deno(command.args);
      assertExit(first, 0, command.args.join(" "));
      assert.equal(first.stdout.trim().split("\n").pop(), uri);
      assert.match(first.stderr, /1 built, 0 skipped, 0 failed/);
      assert.equal(
        (await inImage(facts, uri, ["cat", "/app/greeting.txt"])).trim(),
        "hello from imgtool",
      );
      const second = await deno(command.args);
      assertExit(second, 0, `${command.args.join(" ")}, again`);
      assert.match(second.stderr, /exists \(local\), skipped/);
      assert.equal(second.stdout.trim().split("\n").pop(), uri);
    } finally {
      await removeImages(facts, [uri]);
    }
  },
);
