/**
 * A requirements file that names local code builds for real (pip, the local package index,
 * the Docker engine): `-e ./localpkg`, `../shared/lib`, a local wheel, `--find-links` to a
 * folder of build tools, and `-r` includes two deep (one outside the file's folder). The
 * image imports every local package after the step's mounts are gone, so none of them is an
 * editable install pointing into a mount.
 *
 * The local projects build with setuptools in pip's isolated build environment; the local
 * index has no setuptools, so the project carries Debian's setuptools and wheel wheels (from
 * the host's /usr/share/python-wheels) in a `--find-links` folder, as an offline site would.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { environmentWithoutImgtool, IMGTOOL_COMMAND, type Ran } from "../helpers.ts";
import {
  assertExit,
  e2eTest,
  inImage,
  makeProject,
  projectConfig,
  removeImages,
  run,
  RUN_ID,
  timing,
} from "./harness.ts";

/** How long the build may take before the test stops it (it takes about a minute). */
const BUILD_TIMEOUT_MS = 8 * 60_000;
const HOST_WHEELS = "/usr/share/python-wheels";

/** Run imgtool in `cwd`, stopping it (SIGTERM, then SIGKILL) if it outlives `timeoutMs`. */
async function boundedImgtool(cwd: string, args: readonly string[], timeoutMs: number) {
  const binary = Deno.env.get("IMGTOOL_E2E_BINARY");
  const [program, ...prefix] = binary ? [binary] : IMGTOOL_COMMAND;
  const child = new Deno.Command(program, {
    args: [...prefix, ...args],
    cwd,
    env: { ...environmentWithoutImgtool(), NO_COLOR: "1" },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const stop = setTimeout(() => {
    timedOut = true;
    child.kill("SIGTERM");
    setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // It ended.
      }
    }, 10_000);
  }, timeoutMs);
  const output = await child.output();
  clearTimeout(stop);
  const decoder = new TextDecoder();
  const ran: Ran = {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
  assert.ok(!timedOut, `imgtool ${args.join(" ")} took over ${timeoutMs} ms:\n${ran.stderr}`);
  return ran;
}

/** A wheel of the pure package `e2e_wheel`, written by the host's Python (a zip, as wheels are). */
async function makeWheel(path: string, marker: string): Promise<void> {
  const script = `
import base64, hashlib, sys, zipfile
path, marker = sys.argv[1], sys.argv[2]
files = {
    "e2e_wheel/__init__.py": f'NAME = "e2e-wheel {marker}"\\n',
    "e2e_wheel-1.0.dist-info/METADATA": "Metadata-Version: 2.1\\nName: e2e-wheel\\nVersion: 1.0\\n",
    "e2e_wheel-1.0.dist-info/WHEEL":
        "Wheel-Version: 1.0\\nGenerator: imgtool-e2e\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}
record = []
with zipfile.ZipFile(path, "w") as wheel:
    for name, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
        wheel.writestr(name, data)
    record.append("e2e_wheel-1.0.dist-info/RECORD,,")
    wheel.writestr("e2e_wheel-1.0.dist-info/RECORD", "\\n".join(record) + "\\n")
`;
  const made = await run("python3", ["-c", script, path, marker]);
  assert.equal(made.code, 0, `could not write the test wheel: ${made.stderr}`);
}

/** A setuptools project whose one module says its name and the run. */
function setuptoolsProject(name: string, module: string): Record<string, string> {
  return {
    "pyproject.toml": [
      "[build-system]",
      'requires = ["setuptools>=40.8.0", "wheel"]',
      'build-backend = "setuptools.build_meta"',
      "",
      "[project]",
      `name = "${name}"`,
      'version = "1.0"',
      "",
      "[tool.setuptools]",
      `packages = ["${module}"]`,
      "",
    ].join("\n"),
    [`${module}/__init__.py`]: `NAME = "${name} ${RUN_ID}"\n`,
  };
}

function prefixed(prefix: string, files: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(files).map(([path, text]) => [`${prefix}/${path}`, text]),
  );
}

e2eTest(
  "a requirements file with -e ./localpkg, ../shared/lib, a local wheel and nested -r builds, and the image imports every local package",
  async (_t, facts) => {
    const buildTools = [...Deno.readDirSync(HOST_WHEELS)]
      .map((entry) => entry.name)
      .filter((name) => /^(setuptools|wheel)-.*\.whl$/.test(name));
    assert.equal(
      buildTools.length,
      2,
      `${HOST_WHEELS} should hold Debian's setuptools and wheel wheels (python3-setuptools-whl, python3-wheel-whl)`,
    );
    const registry = `${facts.REGISTRY}/imgtool-e2e-${RUN_ID}-reqlocal`;
    const dir = await makeProject({
      "imgtool.toml": projectConfig(facts, registry),
      "spec.ts": `import { Image } from "imgtool";

export default Image.fromDebianBase({ name: "requirements-local" })
  // Unique per run: the install step below is built for real.
  .withEnvVars({ E2E_RUN: ${JSON.stringify(RUN_ID)} })
  .withRequirements("./app/requirements.txt");
`,
      "app/requirements.txt": [
        `--index-url ${facts.PACKAGE_INDEX}`,
        "-r nested/more.txt",
        "-e ./localpkg",
        "../shared/lib",
        "./wheels/e2e_wheel-1.0-py3-none-any.whl",
        "",
      ].join("\n"),
      // Includes are relative to the file that names them; --find-links too.
      "app/nested/more.txt": "--find-links ../buildtools\n-r ../../common/base.txt\n",
      "common/base.txt": "imgtool-demo-hello==0.1.0\n",
      ...prefixed("app/localpkg", setuptoolsProject("localpkg", "localpkg")),
      ...prefixed("shared/lib", setuptoolsProject("sharedlib", "sharedlib")),
    });
    let uri = "";
    try {
      await Deno.mkdir(join(dir, "app/wheels"));
      await makeWheel(join(dir, "app/wheels/e2e_wheel-1.0-py3-none-any.whl"), RUN_ID);
      await Deno.mkdir(join(dir, "app/buildtools"));
      for (const name of buildTools) {
        await Deno.copyFile(join(HOST_WHEELS, name), join(dir, "app/buildtools", name));
      }

      const started = performance.now();
      const built = await boundedImgtool(
        dir,
        ["build", "spec.ts", "--builder", "docker"],
        BUILD_TIMEOUT_MS,
      );
      timing("requirements with local references: build", started);
      assertExit(built, 0, "build");
      uri = built.stdout.trim().split("\n").pop() ?? "";
      assert.match(uri, new RegExp(`^${registry}/requirements-local:[0-9a-f]{32}$`));

      const script = [
        "import pathlib, e2e_wheel, imgtool_demo_hello, localpkg, sharedlib",
        "for module in (localpkg, sharedlib, e2e_wheel):",
        "    print(module.NAME, pathlib.Path(module.__file__).parent.parent.name)",
        // BuildKit leaves the mount point behind, empty.
        "mount = pathlib.Path('/tmp/imgtool-requirements')",
        "print(sorted(p.name for p in mount.iterdir()) if mount.exists() else [])",
      ].join("\n");
      const output = await inImage(facts, uri, ["/opt/venv/bin/python", "-c", script]);
      assert.deepEqual(output.trim().split("\n"), [
        // imgtool_demo_hello prints its own line when imported.
        "imgtool-demo-hello 0.1.0",
        // Installed into site-packages, not pointing into the step's mount.
        `localpkg ${RUN_ID} site-packages`,
        `sharedlib ${RUN_ID} site-packages`,
        `e2e-wheel ${RUN_ID} site-packages`,
        "[]",
      ]);
    } finally {
      if (uri) await removeImages(facts, [uri]);
      await Deno.remove(dir, { recursive: true });
    }
  },
);
