/**
 * Requirements files' local references: every way a requirements file names local code
 * reaches the build, points where the original line points, counts in the tag, and stays
 * inside the project. Each test reads what the install step would read (the Dockerfile's
 * `-r` file in the build context, following `-r`/`-c` lines from there) and maps the paths it
 * names back to the files on disk, so no expectation depends on how imgtool lays things out.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { identify, planImage } from "../mod.ts";
import { withTempDir, writeTree } from "./helpers.ts";
import { logicalLines, scanLine } from "../plugins/shared/requirements_file.ts";
import {
  MOUNT,
  pip,
  problemsOf,
  readAll,
  specImage,
  stepView,
  uv,
} from "./requirements_step_view.ts";

/** The project every reference-form case uses. */
function layout(dir: string): Record<string, string> {
  return {
    "app/pyproject.toml": '[project]\nname = "app"\nversion = "1.0"\n',
    "app/app/__init__.py": "",
    "app/localpkg/pyproject.toml": '[project]\nname = "localpkg"\nversion = "1.0"\n',
    "app/my pkg/setup.py": "from setuptools import setup\nsetup(name='my-pkg')\n",
    "app/wheels/demo-1.0-py3-none-any.whl": "wheel bytes\n",
    "app/bare-1.0-py3-none-any.whl": "bare wheel bytes\n",
    "app/index/simple/index.html": "<html></html>\n",
    "shared/lib/pyproject.toml": '[project]\nname = "lib"\nversion = "1.0"\n',
    "shared/mono/pkg/pyproject.toml": '[project]\nname = "mono-pkg"\nversion = "1.0"\n',
    "shared/mono/README.md": `the monorepo in ${dir}\n`,
  };
}

interface FormCase {
  /** The line as the user wrote it in app/requirements.txt. */
  readonly line: (dir: string) => string;
  /** The host path it names, relative to the project. */
  readonly names: string;
  /** What the step must read instead: one group captures the location. */
  readonly reads: RegExp;
}

const FORMS: readonly FormCase[] = [
  { line: () => "-e .", names: "app", reads: /^(\/\S+)$/ },
  { line: () => "-e file:.", names: "app", reads: /^(file:\/\/\S+)$/ },
  { line: () => "-e file:.#egg=app", names: "app", reads: /^(file:\/\/[^#]+)#egg=app$/ },
  { line: () => "-e ./localpkg[dev]", names: "app/localpkg", reads: /^(\/\S+)\[dev\]$/ },
  { line: () => "--editable=./localpkg", names: "app/localpkg", reads: /^(\/\S+)$/ },
  { line: () => '-e "./my pkg"', names: "app/my pkg", reads: /^(\/\S+)$/ },
  { line: () => "-e ../shared/lib", names: "shared/lib", reads: /^(\/\S+)$/ },
  { line: () => "./localpkg", names: "app/localpkg", reads: /^(\/\S+)$/ },
  {
    line: () => "../shared/lib ; python_version >= '3.8'",
    names: "shared/lib",
    reads: /^(\/\S+) ; python_version >= '3\.8'$/,
  },
  {
    line: () => "./wheels/demo-1.0-py3-none-any.whl",
    names: "app/wheels/demo-1.0-py3-none-any.whl",
    reads: /^(\/\S+\/demo-1\.0-py3-none-any\.whl)$/,
  },
  {
    line: () => "bare-1.0-py3-none-any.whl",
    names: "app/bare-1.0-py3-none-any.whl",
    reads: /^(\/\S+\/bare-1\.0-py3-none-any\.whl)$/,
  },
  { line: () => "file:./localpkg", names: "app/localpkg", reads: /^(file:\/\/\S+)$/ },
  { line: (dir) => `file://${dir}/shared/lib`, names: "shared/lib", reads: /^(file:\/\/\S+)$/ },
  {
    line: (dir) => `file://localhost${dir}/shared/lib`,
    names: "shared/lib",
    reads: /^(file:\/\/\S+)$/,
  },
  {
    line: (dir) => `lib @ file://${dir}/shared/lib`,
    names: "shared/lib",
    reads: /^lib @ (file:\/\/\S+)$/,
  },
  { line: () => "lib @ ../shared/lib", names: "shared/lib", reads: /^lib @ (file:\/\/\S+)$/ },
  {
    line: () => "file:../shared/mono#egg=mono-pkg&subdirectory=pkg",
    names: "shared/mono",
    reads: /^(file:\/\/[^#]+)#egg=mono-pkg&subdirectory=pkg$/,
  },
  { line: (dir) => `${dir}/shared/lib`, names: "shared/lib", reads: /^(\/\S+)$/ },
  { line: () => "--find-links ./wheels", names: "app/wheels", reads: /^--find-links (\/\S+)$/ },
  { line: () => "-f wheels", names: "app/wheels", reads: /^-f (\/\S+)$/ },
  {
    line: () => "--extra-index-url file:./index/simple",
    names: "app/index/simple",
    reads: /^--extra-index-url (file:\/\/\S+)$/,
  },
];

for (const [installer, config] of [["pip", pip], ["uv", uv]] as const) {
  Deno.test(
    `every form of local reference reaches the ${installer} install step and points where the line points` +
      (installer === "uv"
        ? " (uv docs: `uv pip install -r requirements.txt` reads pip's format, and " +
          '`uv pip install "ruff @ ./projects/ruff"` installs from disk)'
        : ""),
    async () => {
      await withTempDir(async (dir) => {
        await writeTree(dir, layout(dir));
        for (const form of FORMS) {
          const written = form.line(dir);
          await Deno.writeTextFile(join(dir, "app/requirements.txt"), `rich==13.9.4\n${written}\n`);
          const view = await stepView(await specImage(dir, "app/requirements.txt"), config);
          const lines = readAll(view).map((entry) => entry.line);
          assert.equal(lines[0], "rich==13.9.4", `${written}: untouched lines stay as written`);
          const match = form.reads.exec(lines[1]);
          assert.ok(match, `${written}: the step reads ${JSON.stringify(lines[1])}`);
          const location = match[1].replace(/^file:\/\//, "");
          const found = view.where(location);
          assert.ok(found, `${written}: ${location} is not in the build context`);
          assert.equal(found.source, join(dir, form.names), `${written}: points elsewhere`);
          const isFile = (await Deno.stat(join(dir, form.names))).isFile;
          assert.equal(found.kind, isFile ? "file" : "tree", written);
        }
      });
    },
  );
}

Deno.test("an editable local project is installed as an ordinary package: the step never reads -e for it", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      ...layout(dir),
      "app/requirements.txt": "-e ./localpkg\n-e git+https://example.com/repo.git#egg=remote\n",
    });
    const lines = readAll(await stepView(await specImage(dir, "app/requirements.txt")))
      .map((entry) => entry.line);
    assert.ok(!lines[0].startsWith("-e"), lines[0]);
    // An editable VCS requirement is cloned inside the image, so it stays editable.
    assert.equal(lines[1], "-e git+https://example.com/repo.git#egg=remote");
  });
});

Deno.test("-r and -c includes at any depth reach the step, each relative to the file that names it", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "reqs/requirements.txt": "-r dev/dev.txt\n-c ../pins/constraints.txt\ntop==1\n",
      "reqs/dev/dev.txt": "--requirement=../../common/base.txt\ndev==1\n",
      "common/base.txt": "-r deeper/more.txt\nbase==1\n",
      "common/deeper/more.txt": "-r ../base.txt\nmore==1\n",
      "pins/constraints.txt": "pinned<2\n",
    });
    const view = await stepView(await specImage(dir, "reqs/requirements.txt"));
    const read = readAll(view);
    assert.deepEqual(
      read.map((entry) => entry.line).sort(),
      ["base==1", "dev==1", "more==1", "pinned<2", "top==1"],
    );
    // Each file the step reads is the file on disk, byte for byte, except for rewritten includes.
    for (const { file } of read) {
      const found = view.where(file);
      assert.ok(found, `${file} is not in the build context`);
    }
  });
});

Deno.test("a remote -r include is left to the installer and never looked for on disk", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "requirements.txt": "-r https://example.com/requirements.txt\nrich\n",
    });
    const image = await specImage(dir, "requirements.txt");
    assert.deepEqual(await problemsOf(image), []);
    const view = await stepView(image);
    assert.equal(
      view.read(`${MOUNT}/requirements.txt`),
      "-r https://example.com/requirements.txt\nrich\n",
    );
  });
});

Deno.test("requirement paths resolve from the requirements file's folder, or the spec's when only that works (pip and uv resolve them against the folder they run in)", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "pyproject.toml": '[project]\nname = "root"\nversion = "1"\n',
      // Run from the project root, as `pip install -r requirements/dev.txt`.
      "requirements/dev.txt": "-e .\n",
      // Run from its own folder, as `cd services/api && pip install -r requirements.txt`.
      "services/api/requirements.txt": "-e ../../libs/common\n",
      "libs/common/pyproject.toml": '[project]\nname = "common"\nversion = "1"\n',
    });
    const fromSpec = await stepView(await specImage(dir, "requirements/dev.txt"));
    const [rootLine] = readAll(fromSpec);
    assert.equal(fromSpec.where(rootLine.line)?.source, dir);
    const fromFile = await stepView(await specImage(dir, "services/api/requirements.txt"));
    const [libLine] = readAll(fromFile);
    assert.equal(fromFile.where(libLine.line)?.source, join(dir, "libs/common"));
  });
});

Deno.test("a local project that resolves from neither folder is a validation error naming the file, line and both folders", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "reqs/requirements.txt": "rich\n-e ./nowhere\n",
      "reqs/empty/README.md": "no pyproject here\n",
      "reqs/other.txt": "-e ./empty\n",
    });
    const file = join(dir, "reqs/requirements.txt");
    const problems = await problemsOf(await specImage(dir, "reqs/requirements.txt"));
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.equal(
      problems[0].message,
      `${file} line 2: ./nowhere names ${join(dir, "reqs/nowhere")}, which does not exist`,
    );
    assert.match(problems[0].hint ?? "", new RegExp(`runs it in ${join(dir, "reqs")} \\(when`));
    assert.match(problems[0].hint ?? "", new RegExp(`resolves from ${dir} instead`));
    const empty = await problemsOf(await specImage(dir, "reqs/other.txt"));
    assert.match(empty[0].message, /empty, which has no pyproject\.toml or setup\.py$/);
  });
});

Deno.test("a path a requirements file names outside the project is a validation error naming file, line and path; allowed-paths lets it in", async () => {
  await withTempDir(async (dir) => {
    const project = join(dir, "project");
    await writeTree(dir, {
      "project/requirements.txt": "rich\n-e ../outside/lib\n-r ../outside/more.txt\n",
      "outside/lib/pyproject.toml": '[project]\nname = "lib"\nversion = "1"\n',
      "outside/more.txt": "numpy\n",
    });
    const image = await specImage(project, "requirements.txt");
    const file = join(project, "requirements.txt");
    const problems = await problemsOf(image);
    assert.deepEqual(problems.map((problem) => problem.message), [
      `${file} line 2 names ${join(dir, "outside/lib")}, which is outside the project ${project}`,
      `${file} line 3 names ${
        join(dir, "outside/more.txt")
      }, which is outside the project ${project}`,
    ]);
    assert.match(problems[0].hint ?? "", /allowed-paths/);
    const allowed = { ...pip, allowedPaths: [join(dir, "outside")] };
    assert.deepEqual(await problemsOf(image, allowed), []);
  });
});

Deno.test("the file the spec names may lie outside the project; what it names may not", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "shared/requirements.txt": "rich\n",
      "shared/bad.txt": "-e ./lib\n",
      "shared/lib/setup.py": "from setuptools import setup\nsetup()\n",
      "project/keep.txt": "",
    });
    const project = join(dir, "project");
    assert.deepEqual(await problemsOf(await specImage(project, "../shared/requirements.txt")), []);
    const problems = await problemsOf(await specImage(project, "../shared/bad.txt"));
    assert.match(
      problems[0]?.message ?? "",
      /line 1 names .*shared\/lib, which is outside the project/,
    );
  });
});

Deno.test("editable and folder requirements with --hash are a validation error, as pip's hash-checking mode refuses them", async () => {
  await withTempDir(async (dir) => {
    const hash = `--hash=sha256:${"a".repeat(64)}`;
    await writeTree(dir, {
      ...layout(dir),
      "app/requirements.txt": "-r hashed.txt\n-e ./localpkg\n../shared/lib\n",
      "app/hashed.txt": `numpy==2.1.0 \\\n    ${hash}\n`,
      "app/ok.txt": `./wheels/demo-1.0-py3-none-any.whl ${hash}\nnumpy==2.1.0 ${hash}\n`,
      "app/require.txt": "--require-hashes\n./localpkg\n",
    });
    const file = join(dir, "app/requirements.txt");
    const problems = await problemsOf(await specImage(dir, "app/requirements.txt"));
    assert.deepEqual(problems.map((problem) => problem.message), [
      `${file} line 2: the editable requirement ./localpkg cannot be installed with hash checking, ` +
      `which ${join(dir, "app/hashed.txt")} line 1 turns on`,
      `${file} line 3: the folder ../shared/lib cannot be installed with hash checking, which ` +
      `${join(dir, "app/hashed.txt")} line 1 turns on`,
    ]);
    assert.match(problems[0].hint ?? "", /build a wheel of it and list the wheel with its --hash/);
    const required = await problemsOf(await specImage(dir, "app/require.txt"));
    assert.match(required[0]?.message ?? "", /require\.txt line 1 turns on$/);
    // A local wheel with its hash is what hash-checking mode accepts; the hash stays on its line.
    const ok = await specImage(dir, "app/ok.txt");
    assert.deepEqual(await problemsOf(ok), []);
    const [wheel] = readAll(await stepView(ok));
    assert.match(wheel.line, new RegExp(`^/\\S+/demo-1\\.0-py3-none-any\\.whl ${hash}$`));
  });
});

Deno.test("a requirements file without local references is mounted as it is, hashes, continuations and comments included", async () => {
  await withTempDir(async (dir) => {
    const text = "# pip-compile output\nnumpy==2.1.0 \\\n" +
      `    --hash=sha256:${"b".repeat(64)}\n    # via -r requirements.in\n`;
    await writeTree(dir, { "requirements.txt": text });
    const view = await stepView(await specImage(dir, "requirements.txt"));
    const entry = view.entries.find((e) => e.target.endsWith("/requirements.txt"));
    assert.equal(entry?.kind, "file");
    assert.equal(view.read(`${MOUNT}/requirements.txt`), text);
    assert.doesNotMatch(view.command, /,rw/, "nothing to build: the mount stays read-only");
  });
});

Deno.test("local project folders are mounted writable, because building them writes into them", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, { ...layout(dir), "app/requirements.txt": "./localpkg\n" });
    const view = await stepView(await specImage(dir, "app/requirements.txt"));
    assert.match(view.command, new RegExp(`target=${MOUNT},rw`));
  });
});

Deno.test("references imgtool cannot bring into a build are validation errors that say why", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      "requirements.txt": [
        "git+file:///srv/repos/lib.git#egg=lib",
        "${LIB_DIR}/lib",
        "-e file://fileserver/share/lib",
        "-r missing.txt",
        "--find-links ./no-wheels-here",
      ].join("\n") + "\n",
    });
    const file = join(dir, "requirements.txt");
    const messages = (await problemsOf(await specImage(dir, "requirements.txt")))
      .map((problem) => problem.message);
    assert.deepEqual(messages, [
      `requirements file not found: ${join(dir, "missing.txt")}`,
      `${file} line 1: git+file:///srv/repos/lib.git#egg=lib is a local git repository, which a ` +
      "build step cannot reach",
      `${file} line 2: the local path \${LIB_DIR}/lib uses \${LIB_DIR}, which imgtool cannot ` +
      "resolve before the build",
      `${file} line 3: file://fileserver/share/lib names a file on the host fileserver, which a ` +
      "build step cannot reach",
      `${file} line 5: ./no-wheels-here names ${join(dir, "no-wheels-here")}, which does not exist`,
    ]);
  });
});

Deno.test("local projects and wheels count in the tag by content; files they do not name do not", async () => {
  await withTempDir(async (dir) => {
    await writeTree(dir, {
      ...layout(dir),
      "app/requirements.txt": "-e ./localpkg\n../shared/lib\n./wheels/demo-1.0-py3-none-any.whl\n",
      "app/.dockerignore": "**/*.log\n",
      "unrelated/notes.txt": "not named by any line\n",
    });
    const image = await specImage(
      dir,
      "app/requirements.txt",
      '.withDockerignore("app/.dockerignore")',
    );
    const tag = async () => (await identify(planImage(image, "default", pip))).tag;
    const edits: [string, string, boolean][] = [
      ["unrelated/notes.txt", "edited\n", false],
      ["app/localpkg/debug.log", "ignored by .dockerignore\n", false],
      ["app/localpkg/localpkg/__init__.py", "VERSION = 2\n", true],
      ["shared/lib/pyproject.toml", '[project]\nname = "lib"\nversion = "2.0"\n', true],
      ["app/wheels/demo-1.0-py3-none-any.whl", "other wheel bytes\n", true],
    ];
    for (const [path, content, changes] of edits) {
      const before = await tag();
      await writeTree(dir, { [path]: content });
      const after = await tag();
      if (changes) assert.notEqual(after, before, `editing ${path} must change the tag`);
      else assert.equal(after, before, `editing ${path} must not change the tag`);
    }
  });
});

Deno.test("requirements lines are read by pip's rules: continuations, comments, and # inside a URL", () => {
  const text = [
    "numpy==2.1.0 \\",
    "    --hash=sha256:aa  # pinned",
    "-e ./a \\",
    "# a comment line ends a continuation",
    "file:./b#egg=b",
    "./c ; python_version >= '3.8'  # trailing comment",
    "",
  ].join("\r\n");
  const lines = logicalLines(text).filter((line) => line.text !== "").map(scanLine);
  assert.deepEqual(lines.map((line) => [line.number, line.text]), [
    [1, "numpy==2.1.0     --hash=sha256:aa"],
    [3, "-e ./a"],
    [5, "file:./b#egg=b"],
    [6, "./c ; python_version >= '3.8'"],
  ]);
  assert.deepEqual(lines.map((line) => line.hashes), [true, false, false, false]);
  assert.deepEqual(
    lines.map((line) => line.references.map((ref) => [ref.role, ref.path])),
    [[], [["editable", "./a"]], [["requirement", "./b"]], [["requirement", "./c"]]],
  );
});
