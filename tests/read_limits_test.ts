/**
 * Files imgtool reads whole are regular files of bounded size: a named pipe or a device
 * named as a spec's file is refused before it is opened (opening a pipe waits for a writer;
 * `/dev/zero` never ends), and a file larger than the limit is refused unread. Whatever could
 * hang runs in a child process that is killed after a deadline, so a regression fails the
 * test instead of hanging it.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  FileReadError,
  readWholeText,
  readWholeTextSync,
  WHOLE_FILE_LIMIT,
  wholeFileProblem,
} from "../src/fs.ts";
import { environmentWithoutImgtool, IMGTOOL_COMMAND, REPO_ROOT, withTempDir } from "./helpers.ts";

/** How long a child may take before it counts as hung (Deno's start-up included). */
const DEADLINE_MS = 30_000;

interface Ended {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly hung: boolean;
}

/** Run a program; kill it (and report it hung) if it outlives the deadline. */
async function runWithDeadline(
  program: string,
  args: readonly string[],
  cwd: string,
): Promise<Ended> {
  const child = new Deno.Command(program, {
    args: [...args],
    cwd,
    env: { ...environmentWithoutImgtool(), NO_COLOR: "1" },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill("SIGKILL");
  }, DEADLINE_MS);
  try {
    const output = await child.output();
    const decoder = new TextDecoder();
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
      hung,
    };
  } finally {
    clearTimeout(timer);
  }
}

async function mkfifo(path: string): Promise<void> {
  const made = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert.equal(made.code, 0, new TextDecoder().decode(made.stderr));
  assert.ok(Deno.statSync(path).isFifo);
}

Deno.test("reading a pipe or /dev/zero whole is refused at once, naming the file", async () => {
  await withTempDir(async (dir) => {
    const pipe = join(dir, "requirements.txt");
    await mkfifo(pipe);
    // Both readers, in a child: if one opened the pipe, it would wait for a writer forever.
    const script = `
      import { readWholeText, readWholeTextSync } from ${JSON.stringify(`${REPO_ROOT}/src/fs.ts`)};
      const outcome = async (read) => {
        try { await read(); return "read"; } catch (error) { return \`\${error.reason}: \${error.message}\`; }
      };
      const results = [];
      for (const path of ${JSON.stringify([pipe, "/dev/zero"])}) {
        results.push(await outcome(() => readWholeTextSync(path, { what: "requirements file" })));
        results.push(await outcome(() => readWholeText(path, { what: "requirements file" })));
      }
      console.log(JSON.stringify(results));
    `;
    const ended = await runWithDeadline(Deno.execPath(), ["eval", "--no-check", script], dir);
    assert.equal(ended.hung, false, "reading hung");
    assert.equal(ended.code, 0, ended.stderr);
    assert.deepEqual(JSON.parse(ended.stdout), [
      `not-a-file: ${pipe} is a named pipe, not a regular file`,
      `not-a-file: ${pipe} is a named pipe, not a regular file`,
      "not-a-file: /dev/zero is a character device, not a regular file",
      "not-a-file: /dev/zero is a character device, not a regular file",
    ]);
  });
});

Deno.test("a file over the limit is refused unread; one at the limit is read", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "pyproject.toml");
    await Deno.writeTextFile(file, "x".repeat(100));
    assert.equal(readWholeTextSync(file, { limit: 100 }).length, 100);
    assert.equal((await readWholeText(file, { limit: 100 })).length, 100);
    const refused = (error: unknown) => {
      assert.ok(error instanceof FileReadError);
      assert.equal(error.reason, "too-large");
      assert.equal(error.exitCode, 2);
      assert.equal(
        error.message,
        `${file} holds 100 bytes, more than the 99 bytes imgtool reads of a file`,
      );
      return true;
    };
    assert.throws(() => readWholeTextSync(file, { limit: 99 }), refused);
    await assert.rejects(readWholeText(file, { limit: 99 }), refused);

    // The default limit, on a sparse file one byte over it (no disk space used).
    const sparse = join(dir, "big.txt");
    Deno.writeFileSync(sparse, new Uint8Array());
    Deno.truncateSync(sparse, WHOLE_FILE_LIMIT + 1);
    assert.throws(
      () => readWholeTextSync(sparse, { what: "requirements file" }),
      (error: unknown) =>
        error instanceof FileReadError &&
        error.message === `${sparse} holds ${WHOLE_FILE_LIMIT + 1} bytes, more than the 16 MiB ` +
            "imgtool reads of a requirements file" &&
        /right requirements file, or make it smaller/.test(error.hint ?? ""),
    );
  });
});

Deno.test("a file whose size its stat does not tell is read to its end, within the limit", async () => {
  // Files under /proc say size 0 and hold text all the same.
  assert.equal(Deno.statSync("/proc/self/status").size, 0);
  const status = readWholeTextSync("/proc/self/status");
  assert.match(status, /^Name:/);
  assert.match(await readWholeText("/proc/self/status"), /^Name:/);
  assert.throws(
    () => readWholeTextSync("/proc/self/status", { limit: 10 }),
    (error: unknown) => error instanceof FileReadError && error.reason === "too-large",
  );
});

Deno.test("text is read as Deno reads it: UTF-8, a byte order mark kept", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, ".dockerignore");
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, 0x61, 0x0a, 0xff, 0xf0, 0x9f, 0x98, 0x80]);
    await Deno.writeFile(file, bytes);
    assert.equal(readWholeTextSync(file), Deno.readTextFileSync(file));
    assert.equal(await readWholeText(file), Deno.readTextFileSync(file));
    const link = join(dir, "link");
    await Deno.symlink(file, link);
    assert.equal(readWholeTextSync(link), Deno.readTextFileSync(file), "links are followed");
  });
});

Deno.test("a missing file or a folder is refused with what to check", async () => {
  await withTempDir(async (dir) => {
    const missing = join(dir, "nope.txt");
    assert.throws(
      () => readWholeTextSync(missing, { what: "requirements file" }),
      (error: unknown) =>
        error instanceof FileReadError && error.reason === "missing" &&
        error.message === `requirements file not found: ${missing}`,
    );
    await assert.rejects(
      readWholeText(dir),
      (error: unknown) =>
        error instanceof FileReadError && error.reason === "not-a-file" &&
        error.message === `${dir} is a folder, not a regular file`,
    );
  });
});

const SPEC = `import { Image } from "imgtool";

export const piped = Image.fromDebianBase({ name: "piped" })
  .withDockerignore("./ignore.fifo")
  .withRequirements("./requirements.fifo")
  .withUvProject("./pyproject.fifo");
export const device = Image.fromDebianBase({ name: "device" }).withRequirements("/dev/zero");
export const dockerfile = Image.fromDockerfile("./Dockerfile.fifo", { name: "dockerfile" });
`;

Deno.test("pipes and devices named by a spec: uri still answers, validate names each one", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "spec.ts"), SPEC);
    await Deno.writeTextFile(join(dir, "imgtool.toml"), "# test project\n");
    const pipes = ["ignore.fifo", "requirements.fifo", "pyproject.fifo", "Dockerfile.fifo"];
    for (const name of pipes) await mkfifo(join(dir, name));
    const [program, ...prefix] = IMGTOOL_COMMAND;

    const uri = await runWithDeadline(program, [...prefix, "uri", "spec.ts"], dir);
    assert.equal(uri.hung, false, "uri hung");
    assert.equal(uri.code, 0, uri.stderr);
    assert.deepEqual(
      uri.stdout.trim().split("\n").map((line) => line.split(":")[0]),
      ["piped", "device", "dockerfile"],
    );

    const validate = await runWithDeadline(program, [...prefix, "validate", "spec.ts"], dir);
    assert.equal(validate.hung, false, "validate hung");
    assert.equal(validate.code, 2, validate.stderr);
    for (const path of [...pipes.map((name) => join(dir, name)), "/dev/zero"]) {
      assert.ok(validate.stderr.includes(path), `${path} is named:\n${validate.stderr}`);
    }
  });
});

Deno.test("wholeFileProblem() says why a file would be refused, without opening it", async () => {
  await withTempDir(async (dir) => {
    const pipe = join(dir, "Dockerfile");
    await mkfifo(pipe);
    const file = join(dir, "requirements.txt");
    await Deno.writeTextFile(file, "numpy\n");
    assert.equal(wholeFileProblem(file), undefined);
    assert.equal(wholeFileProblem(pipe)?.message, `${pipe} is a named pipe, not a regular file`);
    assert.equal(wholeFileProblem(file, { limit: 5 })?.reason, "too-large");
    assert.equal(wholeFileProblem(join(dir, "nope"))?.reason, "missing");
  });
});

Deno.test("a spec that is a pipe, or imports one, is refused with exit 2", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "imgtool.toml"), "# test project\n");
    await mkfifo(join(dir, "piped.ts"));
    await mkfifo(join(dir, "helper.ts"));
    await Deno.writeTextFile(
      join(dir, "spec.ts"),
      'import { Image } from "imgtool";\nimport "./helper.ts";\n' +
        'export default Image.fromDebianBase({ name: "app" });\n',
    );
    const [program, ...prefix] = IMGTOOL_COMMAND;
    for (const [spec, pipe] of [["piped.ts", "piped.ts"], ["spec.ts", "helper.ts"]]) {
      const ended = await runWithDeadline(program, [...prefix, "uri", spec], dir);
      assert.equal(ended.hung, false, `uri ${spec} hung`);
      assert.equal(ended.code, 2, ended.stderr);
      assert.equal(
        ended.stderr.split("\n")[0],
        `error: ${join(dir, pipe)} is a named pipe, not a regular file`,
      );
      assert.doesNotMatch(ended.stderr, /\n\s+at /, "no stack trace");
    }
  });
});

Deno.test("a uv script that is a pipe does not hang loading the spec: uri answers, validate names it", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "spec.ts"),
      `import { Image } from "imgtool";\n` +
        `export default Image.fromUvScript("./script.py", { name: "script" });\n`,
    );
    await Deno.writeTextFile(join(dir, "imgtool.toml"), "# test project\n");
    await mkfifo(join(dir, "script.py"));
    const [program, ...prefix] = IMGTOOL_COMMAND;
    const uri = await runWithDeadline(program, [...prefix, "uri", "spec.ts"], dir);
    assert.equal(uri.hung, false, "uri hung");
    assert.equal(uri.code, 0, uri.stderr);
    const validate = await runWithDeadline(program, [...prefix, "validate", "spec.ts"], dir);
    assert.equal(validate.hung, false, "validate hung");
    assert.equal(validate.code, 2, validate.stderr);
    assert.ok(validate.stderr.includes(join(dir, "script.py")), validate.stderr);
  });
});
