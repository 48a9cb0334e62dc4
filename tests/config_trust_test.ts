// Which configuration files imgtool believes (src/config.ts): only one the user (or root)
// could have written, that group and others cannot change or replace, and that is a regular
// file of bounded size. Anything else is refused, saying why and how to fix it, never
// skipped silently. And `build` says which file it used.
//
// The ownership cases give files to nobody (uid 65534) as root, and run the loader as
// nobody (setpriv) from a bundle of it, which needs nothing from root's Deno cache.

import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig, UsageError } from "../mod.ts";
import { imgtool, REPO_ROOT, runProcess, withTempDir, writeTree } from "./helpers.ts";

const IS_ROOT = Deno.uid() === 0;
const NOBODY = 65534;
/** Another user that is neither root nor nobody. */
const STRANGER = 65533;
const HAS_SETPRIV = (() => {
  try {
    return Deno.statSync("/usr/bin/setpriv").isFile;
  } catch {
    return false;
  }
})();

/** A test that gives files to other users: ignored, saying why, unless run as root. */
function asRoot(name: string, fn: () => Promise<void>, needsSetpriv = false): Deno.TestDefinition {
  const why = !IS_ROOT
    ? "needs root, to give files to other users"
    : needsSetpriv && !HAS_SETPRIV
    ? "needs /usr/bin/setpriv (util-linux), to run as nobody"
    : undefined;
  return why === undefined ? { name, fn } : { name: `${name} (ignored: ${why})`, ignore: true, fn };
}

/** Expect a refusal of `file`, with `why` in the message and `fix` in the hint. */
function refused(file: string, why: RegExp, fix: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof UsageError, `a UsageError, got ${error}`);
    assert.equal(error.exitCode, 2);
    assert.ok(
      error.message.startsWith(`refusing the configuration file ${file}: `),
      error.message,
    );
    assert.match(error.message, why);
    assert.match(error.hint ?? "", fix);
    assert.doesNotMatch(`${error.message}\n${error.hint}`, /\n\s+at /, "no stack trace");
    return true;
  };
}

/** A project folder holding `spec.ts` and the given imgtool.toml. */
async function project(dir: string, toml = 'registry = "mine.example"\n'): Promise<string> {
  const folder = join(dir, "project");
  await writeTree(folder, { "imgtool.toml": toml, "spec.ts": "" });
  Deno.chmodSync(join(folder, "imgtool.toml"), 0o644);
  Deno.chmodSync(folder, 0o755);
  return folder;
}

Deno.test("a file that group or others may write is refused, whichever bit it is", () =>
  withTempDir(async (dir) => {
    const folder = await project(dir);
    const file = join(folder, "imgtool.toml");
    for (let mode = 0o400; mode <= 0o777; mode++) {
      if ((mode & 0o400) === 0) continue; // The owner reads it.
      Deno.chmodSync(file, mode);
      const load = () => loadConfig({ startDir: folder, env: {} });
      const group = (mode & 0o020) !== 0;
      const others = (mode & 0o002) !== 0;
      if (!group && !others) {
        assert.equal(load().registry, "mine.example", mode.toString(8));
        continue;
      }
      const writers = group && others ? "group and others" : group ? "its group" : "others";
      assert.throws(
        load,
        refused(
          file,
          new RegExp(`writable by ${writers} \\(mode 0${mode.toString(8)}\\)$`),
          new RegExp(`^chmod go-w ${file}$`),
        ),
        mode.toString(8),
      );
      // Named by IMGTOOL_CONFIG, the same file is refused the same way: no fallback.
      assert.throws(
        () => loadConfig({ startDir: dir, env: { IMGTOOL_CONFIG: file } }),
        refused(file, /writable by/, /chmod go-w/),
      );
    }
  }));

Deno.test("a folder that lets group or others replace the file is refused, unless sticky", () =>
  withTempDir(async (dir) => {
    const folder = await project(dir);
    const file = join(folder, "imgtool.toml");
    const cases: [mode: number, writers?: string][] = [
      [0o755],
      [0o700],
      [0o775, "its group"],
      [0o757, "others"],
      [0o777, "group and others"],
      // Sticky, as /tmp: others may add files, but not rename or remove the user's.
      [0o1777],
      [0o1775],
    ];
    for (const [mode, writers] of cases) {
      Deno.chmodSync(folder, mode);
      const load = () => loadConfig({ startDir: folder, env: {} });
      if (writers === undefined) {
        assert.equal(load().file, file, mode.toString(8));
        continue;
      }
      assert.throws(
        load,
        refused(
          file,
          new RegExp(
            `its folder ${folder} is writable by ${writers} \\(mode 0${mode.toString(8)}\\)`,
          ),
          new RegExp(`^chmod go-w ${folder}, or move it away`),
        ),
        mode.toString(8),
      );
    }
  }));

Deno.test("a link is judged by where it leads, and by the folder holding it", () =>
  withTempDir(async (dir) => {
    const folder = await project(dir);
    const target = join(folder, "imgtool.toml");
    const open = join(dir, "open");
    await writeTree(open, { "settings.toml": 'registry = "open.example"\n' });
    Deno.chmodSync(join(open, "settings.toml"), 0o644);
    const linked = join(dir, "linked");
    Deno.mkdirSync(linked, { mode: 0o755 });
    Deno.chmodSync(linked, 0o755);
    const link = join(linked, "imgtool.toml");
    Deno.symlinkSync(target, link);
    assert.equal(loadConfig({ startDir: linked, env: {} }).registry, "mine.example");
    // Leading into a folder others may write in.
    Deno.removeSync(link);
    Deno.symlinkSync(join(open, "settings.toml"), link);
    Deno.chmodSync(open, 0o777);
    assert.throws(
      () => loadConfig({ startDir: linked, env: {} }),
      refused(link, new RegExp(`its folder ${open} is writable by group and others`), /go-w/),
    );
    Deno.chmodSync(open, 0o755);
    assert.equal(loadConfig({ startDir: linked, env: {} }).registry, "open.example");
    // Leading nowhere: said so, not skipped.
    Deno.removeSync(link);
    Deno.symlinkSync(join(dir, "gone.toml"), link);
    assert.throws(
      () => loadConfig({ startDir: linked, env: {} }),
      refused(link, /a link that leads nowhere/, /fix the link/),
    );
  }));

Deno.test("a configuration file larger than 1 MiB is refused, one of 1 MiB is read", () =>
  withTempDir(async (dir) => {
    const folder = await project(dir);
    const file = join(folder, "imgtool.toml");
    const line = `# ${"x".repeat(1021)}\n`; // 1 KiB a line
    Deno.writeTextFileSync(
      file,
      `registry = "big.example"\n`.padEnd(1024, " ") + line.repeat(1023),
    );
    assert.equal(Deno.statSync(file).size, 1024 * 1024);
    assert.equal(loadConfig({ startDir: folder, env: {} }).registry, "big.example");
    Deno.writeTextFileSync(file, "#", { append: true });
    assert.throws(
      () => loadConfig({ startDir: folder, env: {} }),
      refused(file, /larger than 1 MiB/, /move it away/),
    );
  }));

// --- The loader in a process of its own: it may be run as another user, and stopped if it
// hangs (a FIFO opened for reading waits for a writer; /dev/zero never ends).

/** What the child printed: the configuration's file and docker client, or the error. */
interface ChildResult {
  readonly file?: string | null;
  readonly dockerClient?: string;
  readonly error?: string;
  readonly hint?: string;
  readonly exitCode?: number;
}

const CHILD = `
import { loadConfig } from "${REPO_ROOT}/src/config.ts";
import { ImgtoolError } from "${REPO_ROOT}/src/errors.ts";
try {
  const config = loadConfig({ startDir: Deno.args[0], env: Deno.env.toObject() });
  console.log(JSON.stringify({ file: config.file ?? null, dockerClient: config.dockerClient }));
} catch (error) {
  if (!(error instanceof ImgtoolError)) throw error;
  console.log(JSON.stringify({ error: error.message, hint: error.hint, exitCode: error.exitCode }));
}
`;

/**
 * Bundle the child into `dir` (one plain JavaScript file: it needs no Deno cache, so any user
 * can run it), and return a runner: the child loads the configuration for `startDir`, as
 * root or as `uid`, with `env` as its whole environment, stopped after 30 seconds.
 */
async function childLoader(dir: string) {
  const entry = join(dir, "child_entry.ts");
  const script = join(dir, "child.js");
  Deno.writeTextFileSync(entry, CHILD);
  const bundled = await runProcess(Deno.execPath(), [
    "bundle",
    "--quiet",
    "--config",
    join(REPO_ROOT, "deno.json"),
    "--platform",
    "deno",
    "--output",
    script,
    entry,
  ]);
  assert.equal(bundled.code, 0, bundled.stderr);
  Deno.chmodSync(script, 0o644);
  return async (
    startDir: string,
    options: { uid?: number; env?: Record<string, string> } = {},
  ): Promise<ChildResult> => {
    const run = ["run", "-A", "--no-config", "--no-lock", script, startDir];
    const user = options.uid === undefined
      ? []
      : ["/usr/bin/setpriv", `--reuid=${options.uid}`, `--regid=${options.uid}`, "--clear-groups"];
    const [program, ...args] = [...user, Deno.execPath(), ...run];
    const output = await new Deno.Command(program, {
      args,
      cwd: "/",
      env: { PATH: "/usr/bin:/bin", DENO_DIR: join(dir, "deno"), NO_COLOR: "1", ...options.env },
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(30_000),
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, `the child failed (killed after 30 s if it hung):\n${stderr}`);
    return JSON.parse(new TextDecoder().decode(output.stdout));
  };
}

Deno.test("a FIFO or a device is refused at once, never opened", () =>
  withTempDir(async (dir) => {
    const load = await childLoader(dir);
    const folder = await project(dir);
    const fifo = join(dir, "fifo.toml");
    const made = await runProcess("mkfifo", ["-m", "0600", fifo]);
    assert.equal(made.code, 0, made.stderr);
    for (const file of [fifo, "/dev/zero"]) {
      const result = await load(folder, { env: { IMGTOOL_CONFIG: file } });
      assert.equal(result.exitCode, 2, JSON.stringify(result));
      assert.equal(
        result.error,
        `refusing the configuration file ${file}: it is not a regular file`,
      );
      assert.match(result.hint ?? "", /or point IMGTOOL_CONFIG at another file/);
    }
    // Found as imgtool.toml next to the spec, a FIFO is refused too (not skipped).
    Deno.removeSync(join(folder, "imgtool.toml"));
    Deno.renameSync(fifo, join(folder, "imgtool.toml"));
    const found = await load(folder);
    assert.match(found.error ?? "", /: it is not a regular file$/);
    assert.match(found.hint ?? "", /or move it away/);
  }));

Deno.test(
  asRoot(
    "a file or folder of another user is refused, naming the owner and the fix",
    () =>
      withTempDir(async (dir) => {
        const folder = await project(dir, '[docker]\nclient = "/tmp/evil"\n');
        const file = join(folder, "imgtool.toml");
        Deno.chownSync(file, NOBODY, NOBODY);
        const belongs = new RegExp(`it belongs to another user \\(uid ${NOBODY}; you are uid 0\\)`);
        assert.throws(
          () => loadConfig({ startDir: folder, env: {} }),
          refused(file, belongs, new RegExp(`take it over \\(chown 0 ${file}\\), or move it away`)),
        );
        assert.throws(
          () => loadConfig({ startDir: dir, env: { IMGTOOL_CONFIG: file } }),
          refused(file, belongs, /or point IMGTOOL_CONFIG at another file/),
        );
        // The user's own file in a folder of another user's, who could replace it.
        Deno.chownSync(file, 0, 0);
        assert.equal(loadConfig({ startDir: folder, env: {} }).dockerClient, "/tmp/evil");
        Deno.chownSync(folder, NOBODY, NOBODY);
        assert.throws(
          () => loadConfig({ startDir: folder, env: {} }),
          refused(
            file,
            new RegExp(
              `its folder ${folder} belongs to another user \\(uid ${NOBODY}; you are uid 0\\)`,
            ),
            /keep the configuration in a folder of yours/,
          ),
        );
      }),
  ),
);

Deno.test(
  asRoot(
    "run as another user, root's files and the user's own are read, a third user's refused",
    () =>
      withTempDir(async (dir) => {
        Deno.chmodSync(dir, 0o755);
        const load = await childLoader(dir);
        Deno.mkdirSync(join(dir, "deno"));
        Deno.chownSync(join(dir, "deno"), NOBODY, NOBODY);
        const folder = await project(dir, '[docker]\nclient = "podman"\n');
        const file = join(folder, "imgtool.toml");
        const asNobody = { uid: NOBODY, env: { HOME: join(dir, "deno") } };
        // Root's file, in root's folder: accepted, as ssh and git accept them.
        assert.deepEqual(await load(folder, asNobody), { file, dockerClient: "podman" });
        // Nobody's own file: accepted.
        Deno.chownSync(file, NOBODY, NOBODY);
        assert.deepEqual(await load(folder, asNobody), { file, dockerClient: "podman" });
        // A third user's: refused, for nobody as for root.
        Deno.chownSync(file, STRANGER, STRANGER);
        const refusal = await load(folder, asNobody);
        assert.equal(refusal.exitCode, 2);
        assert.equal(
          refusal.error,
          `refusing the configuration file ${file}: it belongs to another user (uid ${STRANGER}; ` +
            `you are uid ${NOBODY}), who could make imgtool run what they like`,
        );
        assert.match(refusal.hint ?? "", new RegExp(`chown ${NOBODY} ${file}`));
        assert.match((await load(folder)).error ?? "", /uid 65533; you are uid 0/);
      }),
    true,
  ),
);

Deno.test(
  asRoot(
    "another user's imgtool.toml in a shared folder such as /tmp never reaches a build",
    () =>
      withTempDir(async (dir) => {
        Deno.chmodSync(dir, 0o755);
        const load = await childLoader(dir);
        Deno.mkdirSync(join(dir, "deno"));
        Deno.chownSync(join(dir, "deno"), NOBODY, NOBODY);
        // The attack: /tmp/imgtool.toml, planted by someone else, names the docker client.
        const shared = join(dir, "shared");
        await writeTree(shared, { "imgtool.toml": '[docker]\nclient = "/tmp/evil"\n' });
        Deno.chmodSync(shared, 0o1777);
        Deno.chownSync(join(shared, "imgtool.toml"), STRANGER, STRANGER);
        const mine = join(shared, "mine");
        Deno.mkdirSync(mine, { mode: 0o755 });
        for (const uid of [0, NOBODY]) {
          if (uid === NOBODY) Deno.chownSync(mine, NOBODY, NOBODY);
          const env = { HOME: join(dir, "deno") };
          // Found by the search: not even looked at, it is above the spec's folder.
          assert.deepEqual(await load(mine, { uid, env }), { file: null, dockerClient: "docker" });
          // Named outright: refused for its owner.
          const named = await load(mine, {
            uid,
            env: { ...env, IMGTOOL_CONFIG: join(shared, "imgtool.toml") },
          });
          assert.match(named.error ?? "", new RegExp(`uid ${STRANGER}; you are uid ${uid}`));
        }
      }),
    true,
  ),
);

// --- `build` names the file it used.

const PREBUILT_SPEC = 'import { Image } from "imgtool";\n' +
  'export default Image.fromBase("debian:bookworm-slim");\n';

Deno.test("build says which configuration file it used, or that it used none", () =>
  withTempDir(async (dir) => {
    // An image with no layers is never built: no engine is needed to report on it.
    await writeTree(dir, { "with/spec.ts": PREBUILT_SPEC, "without/spec.ts": PREBUILT_SPEC });
    const file = join(dir, "with", "imgtool.toml");
    Deno.writeTextFileSync(file, 'builder = "docker"\n', { mode: 0o644 });
    const env = { HOME: join(dir, "home") };
    const text = await imgtool(["build", "spec.ts"], { cwd: join(dir, "with"), env });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stderr, new RegExp(`^config: ${file}$`, "m"));
    const none = await imgtool(["build", "spec.ts"], { cwd: join(dir, "without"), env });
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stderr, /^config: none \(defaults\)$/m);
    const json = await imgtool(["build", "spec.ts", "--json"], { cwd: join(dir, "with"), env });
    assert.equal(json.code, 0, json.stderr);
    assert.equal(JSON.parse(json.stdout).config, file);
    assert.doesNotMatch(json.stderr, /config:/);
    const noneJson = await imgtool(["build", "--json"], { cwd: join(dir, "without"), env });
    assert.equal(JSON.parse(noneJson.stdout).config, null);
    // --quiet prints results and errors only.
    const quiet = await imgtool(["build", "spec.ts", "-q"], { cwd: join(dir, "with"), env });
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.equal(quiet.stderr, "");
  }));

Deno.test("build refuses a configuration file it cannot trust with exit 2 and the fix", () =>
  withTempDir(async (dir) => {
    await writeTree(dir, { "spec.ts": PREBUILT_SPEC, "imgtool.toml": 'builder = "docker"\n' });
    const file = join(dir, "imgtool.toml");
    Deno.chmodSync(file, 0o666);
    const result = await imgtool(["build", "spec.ts"], { cwd: dir });
    assert.equal(result.code, 2);
    assert.equal(
      result.stderr,
      `error: refusing the configuration file ${file}: it is writable by group and others ` +
        `(mode 0666)\nhint: chmod go-w ${file}\n`,
    );
  }));
