// Every failure is a sentence (issue 11, item 7): whatever goes wrong, the command line says
// what, where and how to fix it, exits 2 for a mistake in the spec or the command line and
// 1 for the environment (a full disk), and never prints a stack trace or "internal error";
// with --json the same failure is a JSON object with `ok: false` and the message.
//
// The CLI runs as a child process, as users run it. The permission cases need a user that
// cannot read everything: as root, the files are given to nobody (mode 0600, folders 0700)
// and the CLI runs as root without the capabilities that let root read anything
// (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, dropped with setpriv), so file modes bind it as
// they bind any user, and it still runs the sources from root's Deno cache. The full-disk
// cases write onto a 64 KiB tmpfs, which only root can mount. Where that is impossible, the
// case is ignored, saying why.

import assert from "node:assert/strict";
import { join } from "node:path";
import { ImgtoolError, SystemError, systemError } from "../mod.ts";
import {
  environmentWithoutImgtool,
  IMGTOOL_COMMAND,
  type Ran,
  runProcess,
  withTempDir,
  writeTree,
} from "./helpers.ts";

const IS_ROOT = Deno.uid() === 0;
const SETPRIV = "/usr/bin/setpriv";
const DROP_READ_ALL = [SETPRIV, "--bounding-set=-dac_override,-dac_read_search"];
const NOBODY = 65534;

/** Can this machine run a command that file modes bind (root without its read-anything)? */
const CAN_DROP_READ_ALL: string | undefined = (() => {
  if (!IS_ROOT) return "needs root, to give files to nobody";
  try {
    const probe = new Deno.Command(DROP_READ_ALL[0], {
      args: [...DROP_READ_ALL.slice(1), "true"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return probe.success ? undefined : "setpriv cannot drop capabilities here";
  } catch {
    return "needs /usr/bin/setpriv (util-linux), to drop root's read-anything capabilities";
  }
})();

/** Can this machine mount a tiny tmpfs (a disk that fills up)? */
const CAN_MOUNT_TMPFS: string | undefined = (() => {
  if (!IS_ROOT) return "needs root, to mount a tiny tmpfs";
  const dir = Deno.makeTempDirSync({ prefix: "imgtool-test-mount-" });
  try {
    const mounted = new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    if (!mounted.success) return "mount -t tmpfs failed (no CAP_SYS_ADMIN here?)";
    new Deno.Command("umount", { args: [dir] }).outputSync();
    return undefined;
  } catch {
    return "no mount command";
  } finally {
    Deno.removeSync(dir);
  }
})();

/** A 64 KiB file system at `dir` (made here) for the time of `body`, unmounted after. */
async function withTinyDisk<T>(dir: string, body: () => Promise<T>): Promise<T> {
  await Deno.mkdir(dir);
  const mounted = await runProcess("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir]);
  assert.equal(mounted.code, 0, mounted.stderr);
  try {
    return await body();
  } finally {
    const unmounted = await runProcess("umount", [dir]);
    assert.equal(unmounted.code, 0, unmounted.stderr);
  }
}

/** Run the CLI in `cwd`; `unprivileged` runs it where file modes bind it. */
function run(
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string>; unprivileged?: boolean },
): Promise<Ran> {
  const command = [...(options.unprivileged ? DROP_READ_ALL : []), ...IMGTOOL_COMMAND];
  return runProcess(command[0], [...command.slice(1), ...args], {
    cwd: options.cwd,
    env: { ...environmentWithoutImgtool(), NO_COLOR: "1", ...options.env },
    clearEnv: true,
  });
}

/** A line of a JavaScript stack trace (a frame with a URL, `<anonymous>` or `(file:l:c)`). */
const STACK_FRAME = /^\s+at .*(?:file:\/\/|ext:|node:|<anonymous>|\(.*:\d+:\d+\))/m;

/** How a failure must read. */
interface Expected {
  /** The exit status. */
  readonly code: 1 | 2;
  /** The message: it names the thing that is wrong (a path, an export, a secret). */
  readonly message: RegExp;
  /** The hint: how to fix it. */
  readonly hint: RegExp;
}

/**
 * Check a plain run: its exit status, the message on standard error, a hint (`hint:` after
 * an error, `fix:` under a problem) saying how to fix it, and no stack trace.
 */
function assertSentence(result: Ran, expected: Expected, label: string): void {
  const context = `${label}\n--- stderr ---\n${result.stderr}\n--- stdout ---\n${result.stdout}`;
  assert.equal(result.code, expected.code, context);
  assert.match(result.stderr, /^error: /m, context);
  assert.match(result.stderr, expected.message, context);
  const hints = result.stderr.split("\n").filter((line) => /^(?:hint: |\s+fix: )/.test(line));
  assert.match(hints.join("\n"), expected.hint, `the hint, in ${context}`);
  assert.doesNotMatch(result.stderr, STACK_FRAME, `no stack trace, in ${context}`);
  assert.doesNotMatch(result.stderr, /internal error|a bug in (?:imgtool|the plugin)/, context);
}

/** Check a `--json` run: the same failure, as `{ ok: false, error: {...} }` on stdout. */
function assertJsonSentence(result: Ran, expected: Expected, label: string): void {
  const context =
    `${label} --json\n--- stderr ---\n${result.stderr}\n--- stdout ---\n${result.stdout}`;
  assert.equal(result.code, expected.code, context);
  let parsed: {
    ok: boolean;
    error: {
      kind: string;
      message: string;
      hint?: string;
      diagnostics?: {
        message: string;
        hint?: string;
        layer?: { plugin: string; method: string; index: number };
      }[];
    };
  };
  try {
    parsed = JSON.parse(result.stdout);
  } catch {
    assert.fail(`standard output is not one JSON value: ${context}`);
  }
  assert.equal(parsed.ok, false, context);
  const { error } = parsed;
  // A problem's layer, said as the plain output says it.
  const messages = [
    error.message,
    ...(error.diagnostics ?? []).map((d) =>
      d.layer ? `(${d.layer.method}, plugin ${d.layer.plugin}): ${d.message}` : d.message
    ),
  ];
  const hints = [error.hint, ...(error.diagnostics ?? []).map((d) => d.hint)];
  assert.match(messages.join("\n"), expected.message, context);
  assert.match(hints.filter(Boolean).join("\n"), expected.hint, context);
  assert.notEqual(error.kind, "InternalError", context);
  assert.doesNotMatch(result.stderr, STACK_FRAME, `no stack trace, in ${context}`);
}

/** `text` as a pattern that matches it literally. */
function literally(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

const HEADER = 'import { Image } from "imgtool";\n';

/** One row of the table: a project, a command, and how its failure must read. */
interface Case {
  readonly name: string;
  /** Files of the project, besides an imgtool.toml that keeps the search for one inside. */
  readonly files: Record<string, string>;
  /** The command line, after `imgtool`; `--json` is added for the JSON run. */
  readonly args: (dir: string) => string[];
  /** Make it fail: take permissions away, put files in the way. */
  readonly setup?: (dir: string) => void | Promise<void>;
  /** Run where file modes bind the CLI. */
  readonly unprivileged?: boolean;
  readonly env?: Record<string, string>;
  readonly expect: (dir: string) => Expected;
  /** Why this case cannot run here, if it cannot. */
  readonly skip?: string;
}

/** Give `path` to nobody, readable by nobody else. */
function hideFromOthers(path: string, mode: number): void {
  Deno.chownSync(path, NOBODY, NOBODY);
  Deno.chmodSync(path, mode);
}

const LONG_NAME = "n".repeat(300); // More than the 255 bytes a file name may have.
const SIMPLE = `${HEADER}export default Image.fromDebianBase({ name: "app" })
  .withRequirements("./requirements.txt")
  .withSourceFolder("./src", "/app/src");
`;
const SIMPLE_FILES = {
  "spec.ts": SIMPLE,
  "requirements.txt": "numpy\n",
  "src/app/main.py": "print('hi')\n",
  "src/data/table.csv": "a,b\n",
};

const CASES: Case[] = [
  {
    name: "a spec the user cannot read",
    files: SIMPLE_FILES,
    args: () => ["validate", "spec.ts"],
    setup: (dir) => hideFromOthers(join(dir, "spec.ts"), 0o600),
    unprivileged: true,
    skip: CAN_DROP_READ_ALL,
    expect: (dir) => ({
      code: 2,
      message: new RegExp(`cannot open ${literally(join(dir, "spec.ts"))}: permission denied`),
      hint: new RegExp(`read ${literally(join(dir, "spec.ts"))}`),
    }),
  },
  {
    name: "a requirements file the user cannot read, named by validate",
    files: SIMPLE_FILES,
    args: () => ["validate", "spec.ts"],
    setup: (dir) => hideFromOthers(join(dir, "requirements.txt"), 0o600),
    unprivileged: true,
    skip: CAN_DROP_READ_ALL,
    expect: (dir) => ({
      code: 2,
      message: new RegExp(
        `withRequirements, plugin requirements\\): cannot read ${
          literally(join(dir, "requirements.txt"))
        }: permission denied`,
      ),
      hint: /chmod a\+r /,
    }),
  },
  {
    name: "a folder inside a source tree the user cannot list, named by validate",
    files: SIMPLE_FILES,
    args: () => ["validate", "spec.ts"],
    setup: (dir) => hideFromOthers(join(dir, "src", "data"), 0o700),
    unprivileged: true,
    skip: CAN_DROP_READ_ALL,
    expect: (dir) => ({
      code: 2,
      message: new RegExp(
        `withSourceFolder, plugin source_folder\\): cannot read the folder ${
          literally(join(dir, "src", "data"))
        } \\(in ${literally(join(dir, "src"))}\\): permission denied`,
      ),
      hint: /chmod a\+rx .*or leave it out of the image with a \.dockerignore rule/,
    }),
  },
  {
    // The folder is checked once per set of ignore rules: image a leaving it out does not
    // let image b, which takes it, pass.
    name: "an unreadable folder one image leaves out is still named for the image that takes it",
    files: {
      ...SIMPLE_FILES,
      "spec.ts": `${HEADER}const app = Image.fromDebianBase({ name: "app" })
  .withSourceFolder("./src", "/app/src");
export const a = app.withDockerignore("./.dockerignore");
export const b = app;
`,
      ".dockerignore": "src/data\n",
    },
    args: () => ["validate", "spec.ts"],
    setup: (dir) => hideFromOthers(join(dir, "src", "data"), 0o700),
    unprivileged: true,
    skip: CAN_DROP_READ_ALL,
    expect: (dir) => ({
      code: 2,
      message: new RegExp(
        `withSourceFolder, plugin source_folder\\): cannot read the folder ${
          literally(join(dir, "src", "data"))
        }`,
      ),
      hint: /chmod a\+rx/,
    }),
  },
  {
    name: "the same unreadable folder stops dockerfile --out before anything is written",
    files: SIMPLE_FILES,
    args: (dir) => ["dockerfile", "spec.ts", "--out", join(dir, "out")],
    setup: (dir) => hideFromOthers(join(dir, "src", "data"), 0o700),
    unprivileged: true,
    skip: CAN_DROP_READ_ALL,
    expect: (dir) => ({
      code: 2,
      message: new RegExp(`cannot read the folder ${literally(join(dir, "src", "data"))}`),
      hint: /chmod a\+rx/,
    }),
  },
  {
    name: "a spec path longer than a file name may be",
    files: SIMPLE_FILES,
    args: () => ["uri", `${LONG_NAME}.ts`],
    expect: (dir) => ({
      code: 2,
      message: new RegExp(`${literally(join(dir, LONG_NAME))}\\.ts: file name too long`),
      hint: /shorten the path: a file or folder name may have at most 255 bytes/,
    }),
  },
  {
    name: "a layer path longer than a file name may be",
    files: {
      "spec.ts": `${HEADER}export default Image.fromDebianBase({ name: "app" })
  .withSourceFile("./${LONG_NAME}.py", "/app/main.py");
`,
    },
    args: () => ["validate", "spec.ts"],
    expect: (dir) => ({
      code: 2,
      message: new RegExp(literally(join(dir, `${LONG_NAME}.py`))),
      hint: /check the path/,
    }),
  },
  {
    name: "dockerfile --out with a path longer than a file name may be",
    files: SIMPLE_FILES,
    args: () => ["dockerfile", "spec.ts", "--out", LONG_NAME],
    expect: (dir) => ({
      code: 2,
      message: new RegExp(
        `--out ${LONG_NAME} \\(${literally(join(dir, LONG_NAME))}\\).*: file name too long`,
      ),
      hint: /shorten the path/,
    }),
  },
  {
    name: "dockerfile --out pointing at a file",
    files: SIMPLE_FILES,
    args: () => ["dockerfile", "spec.ts", "--out", "requirements.txt"],
    expect: (dir) => ({
      code: 2,
      message: new RegExp(
        `--out requirements\\.txt \\(${literally(join(dir, "requirements.txt"))}\\) is a file, ` +
          "not a folder",
      ),
      hint: /give --out a new or empty folder/,
    }),
  },
  {
    name: "dockerfile --out pointing at a folder that is not empty",
    files: SIMPLE_FILES,
    args: (dir) => ["dockerfile", "spec.ts", "--out", join(dir, "src")],
    expect: (dir) => ({
      code: 2,
      message: new RegExp(`${literally(join(dir, "src"))} exists and is not empty`),
      hint: /give a new or empty folder to --out/,
    }),
  },
  {
    name: "dockerfile --out in a folder that does not exist",
    files: SIMPLE_FILES,
    args: () => ["dockerfile", "spec.ts", "--out", "missing/out"],
    expect: (dir) => ({
      code: 2,
      message: new RegExp(
        `--out missing/out .*cannot be made: its folder ${
          literally(join(dir, "missing"))
        } does not exist`,
      ),
      hint: new RegExp(`mkdir -p ${literally(join(dir, "missing"))}`),
    }),
  },
  {
    name: "dockerfile --out under a file",
    files: SIMPLE_FILES,
    args: () => ["dockerfile", "spec.ts", "--out", "requirements.txt/out"],
    expect: (dir) => ({
      code: 2,
      message: new RegExp(`${literally(join(dir, "requirements.txt"))} is a file, not a folder`),
      hint: /give --out a path in a folder that exists/,
    }),
  },
  {
    name: "a NUL in an environment value",
    files: {
      "spec.ts": `${HEADER}export default Image.fromDebianBase({ name: "app" })
  .withEnvVars({ GREETING: "hello\\0world" });
`,
    },
    args: () => ["validate", "spec.ts"],
    expect: () => ({
      code: 2,
      message: /withEnvVars, plugin env_vars\): the value of GREETING holds a NUL character/,
      hint: /remove it/,
    }),
  },
  {
    name: "a NUL in an environment value stops build before it builds",
    files: {
      "spec.ts": `${HEADER}export default Image.fromDebianBase({ name: "app" })
  .withEnvVars({ GREETING: "hello\\0world" });
`,
    },
    args: () => ["build", "spec.ts"],
    expect: () => ({
      code: 2,
      message: /withEnvVars, plugin env_vars\): the value of GREETING holds a NUL character/,
      hint: /remove it/,
    }),
  },
  {
    name: "a non-image in the default export's array",
    files: {
      "spec.ts": `${HEADER}export default [Image.fromDebianBase({ name: "app" }), "numpy"];\n`,
    },
    args: () => ["uri", "spec.ts"],
    expect: (dir) => ({
      code: 2,
      message: new RegExp(
        `${literally(join(dir, "spec.ts"))}: element \\[1\\] of the default export is a string ` +
          '\\("numpy"\\), not an Image',
      ),
      hint: /an exported array holds only Images/,
    }),
  },
  {
    name: "a function as the default export (an Image method not called)",
    files: { "spec.ts": `${HEADER}export default Image.fromDebianBase;\n` },
    args: () => ["uri", "spec.ts"],
    expect: () => ({
      code: 2,
      message: /the default export is a function \(fromDebianBase\), not an Image/,
      hint: /call it/,
    }),
  },
  {
    name: "an empty secret name",
    files: {
      "spec.ts": `${HEADER}export default Image.fromDebianBase({ name: "app" })
  .withPipPackages("numpy", { secretMounts: "" });
`,
    },
    args: () => ["validate", "spec.ts"],
    expect: () => ({
      code: 2,
      message: /withPipPackages, plugin pip\): secret key "" gives the id ""/,
      hint: /secret/,
    }),
  },
  {
    name: "a secret with no value",
    files: {
      "spec.ts": `${HEADER}export default Image.fromDebianBase({ name: "app" })
  .withPipPackages("numpy", { secretMounts: "IMGTOOL_TEST_UNSET_TOKEN" });
`,
    },
    args: () => ["validate", "spec.ts"],
    expect: () => ({
      code: 2,
      message: /secret IMGTOOL_TEST_UNSET_TOKEN has no value/,
      hint: /set the environment variable IMGTOOL_TEST_UNSET_TOKEN/,
    }),
  },
  {
    name: "a spec that throws while it is imported",
    files: {
      "spec.ts": `${HEADER}\nthrow new Error("no registry configured");\n` +
        'export default Image.fromBase("debian");\n',
    },
    args: () => ["uri", "spec.ts"],
    expect: (dir) => ({
      code: 2,
      message: new RegExp(
        `failed to load: no registry configured\\n  at ${literally(join(dir, "spec.ts"))}:3:\\d+`,
      ),
      hint: /fix the error in the spec/,
    }),
  },
  {
    name: "a spec importing a local file that does not exist",
    files: {
      "spec.ts": `${HEADER}import "./helpers/gone.ts";\nexport default Image.fromBase("x");\n`,
    },
    args: () => ["uri", "spec.ts"],
    expect: (dir) => ({
      code: 2,
      message: new RegExp(
        `${literally(join(dir, "spec.ts"))}:2:8 imports ${
          literally(join(dir, "helpers", "gone.ts"))
        }, which does not exist`,
      ),
      hint: /fix the import's path/,
    }),
  },
  {
    name: "a local module the spec imports that the user cannot read",
    files: {
      ...SIMPLE_FILES,
      "spec.ts": `${HEADER}import { NAME } from "./names.ts";\n` +
        "export default Image.fromDebianBase({ name: NAME });\n",
      "names.ts": 'export const NAME = "app";\n',
    },
    args: () => ["uri", "spec.ts"],
    setup: (dir) => hideFromOthers(join(dir, "names.ts"), 0o600),
    unprivileged: true,
    skip: CAN_DROP_READ_ALL,
    expect: (dir) => ({
      code: 2,
      message: new RegExp(
        `${literally(join(dir, "spec.ts"))}:2:\\d+ imports ${
          literally(join(dir, "names.ts"))
        }, which cannot be read: permission denied`,
      ),
      hint: new RegExp(`read ${literally(join(dir, "names.ts"))}`),
    }),
  },
  {
    name: "a spec exporting nothing",
    files: { "spec.ts": `${HEADER}const unused = Image.fromBase("debian");\n` },
    args: () => ["uri", "spec.ts"],
    expect: (dir) => ({
      code: 2,
      message: new RegExp(`${literally(join(dir, "spec.ts"))} exports no Image`),
      hint: /export an image, e\.g\. export default Image\./,
    }),
  },
  {
    name: "an unknown --image",
    files: SIMPLE_FILES,
    args: () => ["uri", "spec.ts", "--image", "trainer"],
    expect: (dir) => ({
      code: 2,
      message: new RegExp(`${literally(join(dir, "spec.ts"))} has no image export "trainer"`),
      hint: /its images: default/,
    }),
  },
  {
    name: "init into a path that is a file",
    files: SIMPLE_FILES,
    args: () => ["init", "requirements.txt"],
    expect: (dir) => ({
      code: 2,
      message: new RegExp(`${literally(join(dir, "requirements.txt"))} is a file, not a folder`),
      hint: /give imgtool init a folder/,
    }),
  },
];

for (const row of CASES) {
  const name = `${row.name}: exit status, what, where and how to fix, plain and --json`;
  Deno.test({
    name: row.skip === undefined ? name : `${name} (ignored: ${row.skip})`,
    ignore: row.skip !== undefined,
    fn: () =>
      withTempDir(async (dir) => {
        await writeTree(dir, { "imgtool.toml": "# a test project\n", ...row.files });
        await row.setup?.(dir);
        const expected = row.expect(dir);
        const options = { cwd: dir, env: row.env, unprivileged: row.unprivileged };
        const plain = await run(row.args(dir), options);
        assertSentence(plain, expected, row.name);
        const json = await run([...row.args(dir), "--json"], options);
        assertJsonSentence(json, expected, row.name);
      }),
  });
}

Deno.test({
  name: "uri counts an unreadable file as it counts a missing one, and does not fail" +
    (CAN_DROP_READ_ALL ? ` (ignored: ${CAN_DROP_READ_ALL})` : ""),
  ignore: CAN_DROP_READ_ALL !== undefined,
  fn: () =>
    withTempDir(async (dir) => {
      await writeTree(dir, { "imgtool.toml": "# a test project\n", ...SIMPLE_FILES });
      const requirements = join(dir, "requirements.txt");
      hideFromOthers(requirements, 0o600);
      const unreadable = await run(["uri", "spec.ts"], { cwd: dir, unprivileged: true });
      assert.equal(unreadable.code, 0, unreadable.stderr);
      Deno.renameSync(requirements, join(dir, "elsewhere.txt"));
      const missing = await run(["uri", "spec.ts"], { cwd: dir, unprivileged: true });
      assert.equal(missing.code, 0, missing.stderr);
      assert.equal(unreadable.stdout, missing.stdout);
      Deno.renameSync(join(dir, "elsewhere.txt"), requirements);
      Deno.chownSync(requirements, 0, 0);
      const readable = await run(["uri", "spec.ts"], { cwd: dir, unprivileged: true });
      assert.notEqual(readable.stdout, unreadable.stdout, "a readable file counts its content");
    }),
});

Deno.test({
  name: "uri counts a source tree with a folder it cannot list as a missing tree, and does " +
    "not fail" + (CAN_DROP_READ_ALL ? ` (ignored: ${CAN_DROP_READ_ALL})` : ""),
  ignore: CAN_DROP_READ_ALL !== undefined,
  fn: () =>
    withTempDir(async (dir) => {
      await writeTree(dir, { "imgtool.toml": "# a test project\n", ...SIMPLE_FILES });
      hideFromOthers(join(dir, "src", "data"), 0o700);
      const unreadable = await run(["uri", "spec.ts"], { cwd: dir, unprivileged: true });
      assert.equal(unreadable.code, 0, unreadable.stderr);
      Deno.renameSync(join(dir, "src"), join(dir, "elsewhere"));
      const missing = await run(["uri", "spec.ts"], { cwd: dir, unprivileged: true });
      assert.equal(missing.code, 0, missing.stderr);
      assert.equal(unreadable.stdout, missing.stdout);
    }),
});

const BIG_SOURCE = `${HEADER}export default Image.fromBase("debian:bookworm")
  .withSourceFile("./big.bin", "/data/big.bin");
`;

/** Files for the full-disk cases: a source file larger than the 64 KiB disk. */
function bigProject(dir: string): Promise<void> {
  return writeTree(dir, {
    "imgtool.toml": "# a test project\n",
    "spec.ts": BIG_SOURCE,
    "big.bin": "x".repeat(256 * 1024),
  });
}

Deno.test({
  name: "a full disk under dockerfile --out exits 1, naming the folder, and leaves nothing" +
    (CAN_MOUNT_TMPFS ? ` (ignored: ${CAN_MOUNT_TMPFS})` : ""),
  ignore: CAN_MOUNT_TMPFS !== undefined,
  fn: () =>
    withTempDir(async (dir) => {
      await bigProject(dir);
      const disk = join(dir, "disk");
      await withTinyDisk(disk, async () => {
        const out = join(disk, "context");
        for (const json of [false, true]) {
          const result = await run(
            ["dockerfile", "spec.ts", "--out", out, ...(json ? ["--json"] : [])],
            { cwd: dir },
          );
          const expected: Expected = {
            code: 1,
            message: new RegExp(
              `writing the build context to ${literally(out)}: cannot copy ${
                literally(join(dir, "big.bin"))
              } to ${literally(out)}/\\S+: no space left on device`,
            ),
            // The disk is not where temporary files go: TMPDIR would not help.
            hint: new RegExp(
              `free some space on the file system of ${literally(disk)} \\(df -h ` +
                `${literally(disk)}\\), or write elsewhere$`,
              "m",
            ),
          };
          if (json) assertJsonSentence(result, expected, "full --out disk");
          else assertSentence(result, expected, "full --out disk");
          // The context was written beside --out and is gone: nothing half-written stays.
          assert.deepEqual([...Deno.readDirSync(disk)], []);
        }
      });
    }),
});

/** A docker client that answers the builder's probe and nothing else. */
const FAKE_DOCKER = `#!/bin/sh
case "$1" in
  version) echo "27.0.0 27.0.0" ;;
  buildx) echo "github.com/docker/buildx v0.16.0" ;;
  *) echo "fake docker: $*" >&2; exit 1 ;;
esac
`;

Deno.test({
  name: "a full disk while build writes its context exits 1, naming where and TMPDIR" +
    (CAN_MOUNT_TMPFS ? ` (ignored: ${CAN_MOUNT_TMPFS})` : ""),
  ignore: CAN_MOUNT_TMPFS !== undefined,
  fn: () =>
    withTempDir(async (dir) => {
      await bigProject(dir);
      const docker = join(dir, "docker");
      await Deno.writeTextFile(docker, FAKE_DOCKER);
      await Deno.chmod(docker, 0o755);
      const disk = join(dir, "tmp");
      await withTinyDisk(disk, async () => {
        const env = { TMPDIR: disk, IMGTOOL_DOCKER_CLIENT: docker };
        for (const json of [false, true]) {
          const result = await run(
            ["build", "spec.ts", "--force", "--builder", "docker", ...(json ? ["--json"] : [])],
            { cwd: dir, env },
          );
          const expected: Expected = {
            code: 1,
            message: new RegExp(`${literally(disk)}/imgtool-context-\\S+: no space left on device`),
            hint: new RegExp(
              `free some space on the file system of ${literally(disk)} .*, or point TMPDIR ` +
                "at a file system with room",
            ),
          };
          if (json) assertJsonSentence(result, expected, "full build disk");
          else assertSentence(result, expected, "full build disk");
          assert.doesNotMatch(result.stderr, /fake docker: build/, "the builder never ran");
          assert.deepEqual([...Deno.readDirSync(disk)], [], "the context folder was removed");
        }
      });
    }),
});

/** What `body` throws (it must throw). */
function thrownBy(body: () => unknown): unknown {
  try {
    body();
  } catch (error) {
    return error;
  }
  assert.fail("expected a throw");
}

Deno.test("systemError() says real file-system errors with their path, and leaves others alone", () =>
  withTempDir((dir) => {
    const file = join(dir, "file.txt");
    Deno.writeTextFileSync(file, "x");
    const cases = [
      { error: thrownBy(() => Deno.readDirSync(file)), code: "ENOTDIR", path: file, exit: 2 },
      {
        error: thrownBy(() => Deno.statSync(join(dir, LONG_NAME))),
        code: "ENAMETOOLONG",
        path: join(dir, LONG_NAME),
        exit: 2,
      },
      {
        error: thrownBy(() => Deno.readTextFileSync(join(dir, "gone.txt"))),
        code: "ENOENT",
        path: join(dir, "gone.txt"),
        exit: 2,
      },
      {
        error: thrownBy(() => Deno.mkdirSync(dir)),
        code: "EEXIST",
        path: dir,
        exit: 2,
      },
    ];
    for (const { error, code, path, exit } of cases) {
      const said = systemError(error, { doing: "testing" });
      assert.ok(said instanceof SystemError, String(error));
      assert.equal(said.code, code);
      assert.equal(said.path, path);
      assert.equal(said.exitCode, exit);
      assert.ok(said.message.startsWith(`testing: cannot `), said.message);
      assert.ok(said.message.includes(path), said.message);
      assert.ok((said.hint ?? "").length > 0);
      assert.doesNotMatch(said.message, /os error/, "the system's wording is made a sentence");
    }
    // Not file-system errors: left to be reported as they are.
    assert.equal(systemError(new TypeError("x is undefined")), undefined);
    assert.equal(systemError("a string"), undefined);
    assert.equal(systemError(new ImgtoolError("already a sentence")), undefined);
    const network = Object.assign(new Error("Connection refused (os error 111)"), {
      code: "ECONNREFUSED",
    });
    assert.equal(systemError(network), undefined);
  }));
