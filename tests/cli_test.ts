// The command line as users run it: `deno run -A --config <repo>/deno.json <repo>/cli.ts`,
// in a temporary folder outside the repository, on specs that import "imgtool". Nothing here
// needs Docker: `build` is only run where it must stop before building.
import assert from "node:assert/strict";
import { join } from "node:path";
import { VERSION } from "../mod.ts";
import { imgtool, REPO_ROOT, withTempDir, writeTree } from "./helpers.ts";

const SPEC = `import { Image } from "imgtool";

export const second = Image.fromBase("debian:bookworm-slim").withWorkdir("/second");
export default Image.fromDebianBase({ name: "app" })
  .withAptPackages(["git"])
  .withSourceFolder("./src", "/app/src")
  .withSourceFile("./main.py")
  .withDockerignore("./.dockerignore");
export const first = Image.fromBase("debian:bookworm-slim").withWorkdir("/first");
`;

/** A project: spec.ts, its files, and an imgtool.toml (which stops the search upwards). */
const PROJECT_FILES: Record<string, string> = {
  "spec.ts": SPEC,
  "imgtool.toml": "# test project\n",
  "main.py": 'print("hi")\n',
  "src/pkg/__init__.py": "",
  "src/pkg/util.py": "X = 1\n",
  "src/notes.tmp": "scratch\n",
  ".dockerignore": "**/*.tmp\n",
};

async function inProject<T>(body: (dir: string) => Promise<T>, extra: Record<string, string> = {}) {
  return await withTempDir(async (dir) => {
    await writeTree(dir, { ...PROJECT_FILES, ...extra });
    return await body(dir);
  });
}

const URI = /^[a-z0-9./:-]+:[0-9a-f]{32}$/;

Deno.test("imgtool --help and <command> --help print usage and exit 0", async () => {
  await withTempDir(async (dir) => {
    const help = await imgtool(["--help"], { cwd: dir });
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^imgtool .*: container images described in typed code/);
    assert.match(help.stdout, /Usage: imgtool <command> \[SPEC\] \[flags\]/);
    for (const command of ["build", "dockerfile", "uri", "validate", "init"]) {
      assert.match(help.stdout, new RegExp(`^  ${command} `, "m"));
    }
    assert.match(help.stdout, /IMGTOOL_REGISTRY/);
    const [bare, uri, init] = await Promise.all([
      imgtool([], { cwd: dir }),
      imgtool(["uri", "--help"], { cwd: dir }),
      imgtool(["init", "-h"], { cwd: dir }),
    ]);
    assert.equal(bare.code, 0);
    assert.equal(bare.stdout, help.stdout);
    assert.equal(uri.code, 0);
    assert.match(uri.stdout, /^imgtool uri \[SPEC\] \[flags\]/);
    assert.match(uri.stdout, /--image NAME/);
    assert.doesNotMatch(uri.stdout, /--push/, "only the command's own flags");
    assert.equal(init.code, 0);
    assert.match(init.stdout, /^imgtool init \[DIR\]/);
  });
});

Deno.test("imgtool --version prints the version and exits 0", async () => {
  await withTempDir(async (dir) => {
    const result = await imgtool(["--version"], { cwd: dir });
    assert.equal(result.code, 0);
    assert.equal(result.stdout, `imgtool ${VERSION}\n`);
  });
});

Deno.test("an unknown command or flag exits 2 and says what to do", async () => {
  await inProject(async (dir) => {
    const [command, flag, extra] = await Promise.all([
      imgtool(["frobnicate"], { cwd: dir }),
      imgtool(["uri", "spec.ts", "--fast"], { cwd: dir }),
      imgtool(["uri", "a.ts", "b.ts"], { cwd: dir }),
    ]);
    assert.equal(command.code, 2);
    assert.match(command.stderr, /^error: unknown command "frobnicate"\nhint: commands: build, /);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /^error: uri: .*--fast.*\nhint: see imgtool uri --help\n$/);
    assert.equal(extra.code, 2);
    assert.match(extra.stderr, /uri takes one spec file, got 2/);
    for (const result of [command, flag, extra]) assert.equal(result.stdout, "");
  });
});

Deno.test("a spec that is not there exits 2", async () => {
  await withTempDir(async (dir) => {
    const result = await imgtool(["uri", "nope.ts"], { cwd: dir });
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      new RegExp(`^error: spec file not found: ${join(dir, "nope.ts")}\n`),
    );
    assert.match(result.stderr, /hint: .*imgtool init writes one/);
    const missingDefault = await imgtool(["validate"], { cwd: dir });
    assert.equal(missingDefault.code, 2, "SPEC defaults to spec.ts");
    assert.match(missingDefault.stderr, /spec file not found: .*\/spec\.ts/);
  });
});

Deno.test("a spec with a syntax error exits 2, names the file, and prints no stack trace", async () => {
  await inProject(async (dir) => {
    const result = await imgtool(["uri", "spec.ts"], { cwd: dir });
    assert.equal(result.code, 2);
    assert.match(result.stderr, new RegExp(`^error: ${join(dir, "spec.ts")}`));
    assert.doesNotMatch(result.stderr, /internal error| {4}at .*\((?:file|ext):/);
    assert.doesNotMatch(result.stderr, /cli\.ts|src\/load\.ts/, "no frames of imgtool itself");
    assert.equal(result.stdout, "");
  }, { "spec.ts": 'import { Image } from "imgtool";\nexport default Image.fromBase(\n' });
});

Deno.test("a spec that throws while imported exits 2 and says where", async () => {
  await inProject(async (dir) => {
    const result = await imgtool(["uri", "spec.ts"], { cwd: dir });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /failed to load: .*the registry table is empty/);
    assert.match(result.stderr, new RegExp(`at ${join(dir, "spec.ts")}:3:\\d+`));
    assert.doesNotMatch(result.stderr, /internal error/);
  }, {
    "spec.ts":
      'import { Image } from "imgtool";\n\nthrow new Error("the registry table is empty");\n' +
      'export default Image.fromBase("debian");\n',
  });
});

Deno.test("a misspelt Image method is named with the method meant", async () => {
  await inProject(async (dir) => {
    const result = await imgtool(["uri", "spec.ts"], { cwd: dir });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /withDockerIgnore is not a function/);
    assert.match(
      result.stderr,
      /hint: Image has no method withDockerIgnore: did you mean withDockerignore\?/,
    );
  }, {
    "spec.ts": 'import { Image } from "imgtool";\n\nexport default Image.fromBase("debian")\n' +
      '  .withDockerIgnore(".dockerignore");\n',
  });
});

Deno.test("a spec that exports no image exits 2", async () => {
  await inProject(async (dir) => {
    const result = await imgtool(["uri", "spec.ts"], { cwd: dir });
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      /spec\.ts exports no Image\nhint: its exports \(name\) are not images/,
    );
  }, { "spec.ts": 'export const name = "not an image";\n' });
});

Deno.test("validate exits 0 for a clean spec and 2 listing every problem", async () => {
  await inProject(async (dir) => {
    const clean = await imgtool(["validate", "spec.ts"], { cwd: dir });
    assert.equal(clean.code, 0, clean.stderr);
    assert.equal(clean.stdout, "ok: 3 images valid (default, second, first)\n");
    await Deno.writeTextFile(
      join(dir, "bad.ts"),
      'import { Image } from "imgtool";\nexport default Image.fromBase("debian")\n' +
        '  .withAptPackages(["Bad"])\n  .withSourceFile("./missing.py");\n',
    );
    const bad = await imgtool(["validate", "bad.ts"], { cwd: dir });
    assert.equal(bad.code, 2);
    assert.equal(bad.stdout, "");
    assert.match(bad.stderr, /^error: 2 problems found\n/);
    assert.match(
      bad.stderr,
      new RegExp(
        `  - image "default", layer 1 \\(withAptPackages, plugin apt\\): "Bad" is not a valid Debian package name\n` +
          `    at ${join(dir, "bad.ts")}:3\n    fix: use lowercase letters`,
      ),
    );
    assert.match(
      bad.stderr,
      new RegExp(`file not found: ${join(dir, "missing.py")}\n    at ${join(dir, "bad.ts")}:4\n`),
    );
    const json = await imgtool(["validate", "bad.ts", "--json"], { cwd: dir });
    assert.equal(json.code, 2);
    const report = JSON.parse(json.stdout);
    assert.equal(report.ok, false);
    assert.equal(report.error.kind, "ValidationError");
    assert.deepEqual(
      report.error.diagnostics.map((d: { layer: { method: string } }) => d.layer.method),
      [
        "withAptPackages",
        "withSourceFile",
      ],
    );
  });
});

Deno.test("uri prints one line per image: the default export first, then named exports in source order", async () => {
  await inProject(async (dir) => {
    const result = await imgtool(["uri", "spec.ts"], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 3);
    assert.match(lines[0], /^app:[0-9a-f]{32}$/);
    for (const line of lines) assert.match(line, URI);
    // second before first: the order of the source, not of the names.
    const [second, first] = await Promise.all([
      imgtool(["uri", "spec.ts", "--image", "second"], { cwd: dir }),
      imgtool(["uri", "spec.ts", "--image", "first"], { cwd: dir }),
    ]);
    assert.deepEqual([second.stdout, first.stdout], [`${lines[1]}\n`, `${lines[2]}\n`]);
    assert.equal(result.stderr, "");
  });
});

Deno.test("uri of a default export that is an array prints each image", async () => {
  await inProject(async (dir) => {
    const result = await imgtool(["uri", "spec.ts"], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 3);
    assert.match(lines[0], /^one:/);
    assert.match(lines[1], /^two:/);
    assert.equal(lines[2], "debian:bookworm-slim", "an unbuilt base is itself");
    const json = JSON.parse((await imgtool(["uri", "spec.ts", "--json"], { cwd: dir })).stdout);
    assert.deepEqual(json.map((i: { image: string }) => i.image), [
      "default[0]",
      "default[1]",
      "base",
    ]);
    assert.deepEqual(json[2], {
      image: "base",
      uri: "debian:bookworm-slim",
      tag: "bookworm-slim",
      platforms: ["linux/amd64"],
      prebuilt: true,
    });
    const picked = await imgtool(["uri", "spec.ts", "--image", "default"], { cwd: dir });
    assert.equal(picked.stdout, `${lines[0]}\n${lines[1]}\n`);
  }, {
    "spec.ts": 'import { Image } from "imgtool";\n' +
      'export const base = Image.fromBase("debian:bookworm-slim");\n' +
      "export default [\n" +
      '  Image.fromBase("debian").clone({ name: "one" }).withWorkdir("/1"),\n' +
      '  Image.fromBase("debian").clone({ name: "two" }).withWorkdir("/2"),\n' +
      "];\n",
  });
});

Deno.test("--image picks exports; an unknown name exits 2 naming the exports", async () => {
  await inProject(async (dir) => {
    const both = await imgtool(["uri", "spec.ts", "--image", "first", "--image", "default"], {
      cwd: dir,
    });
    assert.equal(both.code, 0);
    assert.equal(both.stdout.trimEnd().split("\n").length, 2);
    assert.match(both.stdout, /^app:/, "in spec order, whatever the flag order");
    const unknown = await imgtool(["uri", "spec.ts", "--image", "third"], { cwd: dir });
    assert.equal(unknown.code, 2);
    assert.match(
      unknown.stderr,
      /has no image export "third"\nhint: its images: default, second, first\n$/,
    );
    const json = await imgtool(["uri", "spec.ts", "--image", "third", "--json"], { cwd: dir });
    assert.equal(json.code, 2);
    assert.deepEqual(JSON.parse(json.stdout).error.kind, "SpecError");
  });
});

Deno.test("dockerfile prints the Dockerfile of one image", async () => {
  await inProject(async (dir) => {
    const result = await imgtool(["dockerfile", "spec.ts", "--image", "default"], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^# Generated by imgtool .* for image "default" \(app\)\./);
    assert.match(
      result.stdout,
      /# \[2\] withSourceFolder at spec\.ts:6\nCOPY \["\.imgtool\/02-source_folder\/tree\/", "\/app\/src\/"\]\n/,
    );
    assert.ok(!result.stdout.includes(dir), "no absolute path of the machine");
    const several = await imgtool(["dockerfile", "spec.ts"], { cwd: dir });
    assert.equal(several.code, 2);
    assert.match(
      several.stderr,
      /the spec has 3 images; dockerfile prints one\nhint: pick one with --image \(default, second, first\)/,
    );
    const json = JSON.parse(
      (await imgtool(["dockerfile", "spec.ts", "--image", "first", "--json"], { cwd: dir })).stdout,
    );
    assert.equal(json.image, "first");
    assert.match(json.dockerfile, /WORKDIR "\/first"/);
    assert.deepEqual(json.buildArgs, {});
  });
});

Deno.test("dockerfile --out writes the Dockerfile and its build context, and refuses a non-empty folder", async () => {
  await inProject(async (dir) => {
    await Deno.chmod(join(dir, "main.py"), 0o755);
    const result = await imgtool(["dockerfile", "spec.ts", "--image", "default", "--out", "ctx"], {
      cwd: dir,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      new RegExp(`^wrote ${join(dir, "ctx")}/Dockerfile and its build context\n`),
    );
    const printed = await imgtool(["dockerfile", "spec.ts", "--image", "default"], { cwd: dir });
    assert.equal(await Deno.readTextFile(join(dir, "ctx", "Dockerfile")), printed.stdout);
    const context = join(dir, "ctx", ".imgtool");
    assert.equal(
      await Deno.readTextFile(join(context, "02-source_folder/tree/pkg/util.py")),
      "X = 1\n",
    );
    await assert.rejects(
      Deno.stat(join(context, "02-source_folder/tree/notes.tmp")),
      Deno.errors.NotFound,
    );
    const copied = await Deno.stat(join(context, "03-source_file/file/main.py"));
    assert.equal((copied.mode ?? 0) & 0o777, 0o755, "modes are kept");
    const again = await imgtool(["dockerfile", "spec.ts", "--image", "default", "--out", "ctx"], {
      cwd: dir,
    });
    assert.equal(again.code, 2);
    assert.match(
      again.stderr,
      /ctx exists and is not empty\nhint: give a new or empty folder to --out/,
    );
    await Deno.mkdir(join(dir, "empty"));
    const empty = await imgtool(["dockerfile", "spec.ts", "--image", "first", "--out", "empty"], {
      cwd: dir,
    });
    assert.equal(empty.code, 0, empty.stderr);
    assert.match(await Deno.readTextFile(join(dir, "empty", "Dockerfile")), /WORKDIR "\/first"/);
  });
});

Deno.test("init writes spec.ts, imgtool.toml and deno.json, and never overwrites them", async () => {
  await withTempDir(async (dir) => {
    const first = await imgtool(["init", "project"], { cwd: dir });
    assert.equal(first.code, 0, first.stderr);
    const project = join(dir, "project");
    for (const name of ["spec.ts", "imgtool.toml", "deno.json"]) {
      assert.match(first.stdout, new RegExp(`wrote ${join(project, name)}\n`));
    }
    const denoJson = JSON.parse(await Deno.readTextFile(join(project, "deno.json")));
    assert.equal(join(project, denoJson.imports.imgtool), join(REPO_ROOT, "mod.ts"));
    // The starter spec works as written.
    const uri = await imgtool(["uri"], { cwd: project });
    assert.equal(uri.code, 0, uri.stderr);
    assert.match(uri.stdout, /^my-app:[0-9a-f]{32}\n$/);
    await Deno.writeTextFile(join(project, "spec.ts"), "// mine\n");
    const second = await imgtool(["init", "project", "--json"], { cwd: dir });
    assert.equal(second.code, 0);
    assert.deepEqual(JSON.parse(second.stdout), {
      written: [],
      kept: ["spec.ts", "imgtool.toml", "deno.json"].map((name) => join(project, name)),
    });
    assert.equal(await Deno.readTextFile(join(project, "spec.ts")), "// mine\n");
    const here = await imgtool(["init"], { cwd: project });
    assert.equal(here.code, 0);
    assert.match(here.stdout, /kept .*spec\.ts \(it exists\)/);
  });
});

Deno.test("--platform changes the URI; an unknown platform exits 2", async () => {
  await inProject(async (dir) => {
    const run = (...flags: string[]) =>
      imgtool(["uri", "spec.ts", "--image", "default", ...flags], { cwd: dir });
    const [plain, amd, arm, both, bothReversed, bad] = await Promise.all([
      run(),
      run("--platform", "linux/amd64"),
      run("--platform", "linux/arm64"),
      run("--platform", "linux/amd64,linux/arm64"),
      run("--platform", "linux/arm64", "--platform", "linux/amd64"),
      run("--platform", "linux/s390x"),
    ]);
    assert.equal(amd.stdout, plain.stdout, "linux/amd64 is the default");
    assert.notEqual(arm.stdout, amd.stdout);
    assert.notEqual(both.stdout, amd.stdout);
    assert.notEqual(both.stdout, arm.stdout);
    assert.equal(bothReversed.stdout, both.stdout);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--platform: unknown platform "linux\/s390x"/);
  });
});

Deno.test("the registry comes from imgtool.toml, then IMGTOOL_REGISTRY, then --registry", async () => {
  await inProject(async (dir) => {
    const run = (env: Record<string, string>, ...flags: string[]) =>
      imgtool(["uri", "spec.ts", "--image", "default", ...flags], { cwd: dir, env });
    const [file, env, flag] = await Promise.all([
      run({}),
      run({ IMGTOOL_REGISTRY: "env.example:5000" }),
      run({ IMGTOOL_REGISTRY: "env.example:5000" }, "--registry", "flag.example/team"),
    ]);
    const tag = file.stdout.trim().split(":").pop();
    assert.equal(file.stdout, `file.example/app:${tag}\n`);
    assert.equal(env.stdout, `env.example:5000/app:${tag}\n`);
    assert.equal(flag.stdout, `flag.example/team/app:${tag}\n`);
  }, { "imgtool.toml": 'registry = "file.example"\n' });
});

Deno.test("a bad imgtool.toml exits 2 naming the file and the setting", async () => {
  await inProject(async (dir) => {
    const result = await imgtool(["uri", "spec.ts"], { cwd: dir });
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      new RegExp(`^error: ${join(dir, "imgtool.toml")}: unknown setting registery\n`),
    );
  }, { "imgtool.toml": 'registery = "typo.example"\n' });
});

Deno.test("a spec gives the same URIs from any working directory", async () => {
  await withTempDir(async (dir) => {
    await writeTree(join(dir, "project"), PROJECT_FILES);
    const [inside, outside, deeper] = await Promise.all([
      imgtool(["uri", "spec.ts"], { cwd: join(dir, "project") }),
      imgtool(["uri", "project/spec.ts"], { cwd: dir }),
      imgtool(["uri", join(dir, "project", "spec.ts")], {
        cwd: join(dir, "project", "src", "pkg"),
      }),
    ]);
    assert.equal(inside.code, 0, inside.stderr);
    assert.equal(outside.stdout, inside.stdout);
    assert.equal(deeper.stdout, inside.stdout);
    // And the files are read from the spec's folder: a change there shows.
    await Deno.writeTextFile(join(dir, "project", "src", "pkg", "util.py"), "X = 2\n");
    const changed = await imgtool(["uri", "project/spec.ts", "--image", "default"], { cwd: dir });
    assert.notEqual(changed.stdout.trim(), inside.stdout.split("\n")[0]);
  });
});

Deno.test("build stops with exit 2 on validation errors and on --push without a registry", async () => {
  await inProject(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "bad.ts"),
      'import { Image } from "imgtool";\nexport default Image.fromBase("debian").withAptPackages("Bad");\n',
    );
    const invalid = await imgtool(["build", "bad.ts"], { cwd: dir });
    assert.equal(invalid.code, 2);
    assert.match(invalid.stderr, /^error: 1 problem found\n/);
    const push = await imgtool(["build", "spec.ts", "--image", "first", "--push"], { cwd: dir });
    assert.equal(push.code, 2);
    assert.match(
      push.stderr,
      /image "first" has no registry to push to\nhint: set registry in the image/,
    );
    const base = await imgtool(["build", "spec.ts", "--image", "nope"], { cwd: dir });
    assert.equal(base.code, 2);
  });
});

Deno.test("status --help teaches it as a deploy gate: its flags, its exit status, examples", async () => {
  await withTempDir(async (dir) => {
    const [help, status, build] = await Promise.all([
      imgtool(["--help"], { cwd: dir }),
      imgtool(["status", "--help"], { cwd: dir }),
      imgtool(["build", "--help"], { cwd: dir }),
    ]);
    assert.match(help.stdout, /^ {2}status {6}say whether each image is in the registry/m);
    assert.match(help.stdout, /^ {2}tags {17}IMGTOOL_TAGS {16}/m, "the setting is listed");
    assert.equal(status.code, 0);
    assert.match(status.stdout, /^imgtool status \[SPEC\] \[flags\]\n/);
    assert.match(status.stdout, /deploy gate/);
    const flags = status.stdout.split("Flags:\n")[1].split("\n\n")[0];
    for (const flag of ["--image NAME", "--platform P", "--registry REG", "--json"]) {
      assert.ok(flags.includes(flag), `status --help lists ${flag}`);
    }
    assert.doesNotMatch(flags, /--push|--force|--tag|--builder/, "only its own flags");
    assert.match(status.stdout, /Exit status: 0 when everything exists; 1 when something is/);
    assert.match(status.stdout, /imgtool status spec.ts --json/);
    assert.equal(build.code, 0);
    assert.match(build.stdout, /--tag NAME +also point NAME at the pushed image \(needs --push\)/);
  });
});
