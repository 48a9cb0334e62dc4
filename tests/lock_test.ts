// `imgtool.lock` (issue 12, item 1): the file format, how planning pins references with it, how
// the locked digests count in tags, what the built-in plugins render for them, the check of
// `--locked`, and the `imgtool lock` command against a stand-in registry.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { DockerfileParser } from "dockerfile-ast";
import { parse as parseToml } from "smol-toml";
import * as images from "./fixtures/project/images.ts";
import { startFakeRegistry } from "./fake_registry.ts";
import {
  asText,
  dockerfileOf,
  fixtureConfig,
  renderGolden,
  REPO_ROOT,
  runProcess,
  withTempDir,
  writeTree,
} from "./helpers.ts";
import {
  defaultConfig,
  identify,
  identifySync,
  Image,
  ImgtoolError,
  loadConfig,
  planImage,
  setActiveLock,
  UsageError,
  VERSION,
} from "../mod.ts";
import { imagesUsed } from "../src/identify.ts";
import {
  formatLock,
  type LockFile,
  mergeLock,
  parseLock,
  readLockSync,
  writeLock,
} from "../src/lock.ts";
import { ensureLocked, lockableImages } from "../src/lock_check.ts";
import { isPinnedByDigest, pinReference } from "../src/pinning.ts";
import { imageMentions, pinImages } from "../plugins/shared/dockerfile_images.ts";
import { lockCommand } from "../src/commands/lock.ts";
import type { LoadedSpec } from "../src/load.ts";
import { type Flags, parseCommandLine } from "../src/cli/args.ts";
import { IMGTOOL_RUNTIME_FLAGS } from "../scripts/runtime_flags.ts";

const config = fixtureConfig();

/** A digest made from a label: distinct labels, distinct digests, none written by hand. */
function digestOf(label: string): string {
  return `sha256:${createHash("sha256").update(label).digest("hex")}`;
}

/** Run `body` with a lock file holding `entries` in effect for planning; none afterwards. */
async function withLock<T>(
  entries: Record<string, string>,
  body: () => Promise<T> | T,
): Promise<T> {
  return await withTempDir(async (dir) => {
    const file = join(dir, "imgtool.lock");
    await writeLock(file, { images: entries, specs: { "spec.ts": Object.keys(entries) } });
    setActiveLock(file);
    try {
      return await body();
    } finally {
      setActiveLock(undefined);
    }
  });
}

/** The image each `FROM` of a Dockerfile names, as dockerfile-ast reads it. */
function fromImages(dockerfile: string): string[] {
  return DockerfileParser.parse(dockerfile).getFROMs().map((from) => from.getImage() ?? "");
}

/** The values of every `--<name>=` flag of the Dockerfile's instructions, as dockerfile-ast reads them. */
function flagValues(dockerfile: string, name: string): string[] {
  return DockerfileParser.parse(dockerfile).getInstructions().flatMap((instruction) => {
    if (!("getFlags" in instruction) || typeof instruction.getFlags !== "function") return [];
    return (instruction.getFlags() as { getName(): string; getValue(): string | null }[])
      .filter((flag) => flag.getName() === name).map((flag) => flag.getValue() ?? "");
  });
}

/** The `from=` field of each `--mount` flag value. */
function mountFroms(dockerfile: string): string[] {
  return flagValues(dockerfile, "mount").flatMap((value) =>
    value.split(",").filter((field) => field.startsWith("from=")).map((field) => field.slice(5))
  );
}

// --- the file --------------------------------------------------------------------------

Deno.test("formatLock writes equal locks as equal bytes, entries and records sorted, and TOML reads it back", () => {
  const [a, b, c] = ["a", "b", "c"].map(digestOf);
  const one: LockFile = {
    images: { "python:3.12-slim": a, "127.0.0.1:5000/team/base:1": b, "ghcr.io/x/uv:0.8": c },
    specs: {
      "spec.ts": ["python:3.12-slim", "ghcr.io/x/uv:0.8"],
      "api.ts": ["127.0.0.1:5000/team/base:1"],
    },
  };
  const other: LockFile = {
    images: { "ghcr.io/x/uv:0.8": c, "python:3.12-slim": a, "127.0.0.1:5000/team/base:1": b },
    specs: {
      "api.ts": ["127.0.0.1:5000/team/base:1"],
      "spec.ts": ["ghcr.io/x/uv:0.8", "python:3.12-slim"],
    },
  };
  const text = formatLock(one);
  assert.equal(formatLock(other), text);
  // Another TOML reader finds the same data, in sorted order.
  const parsed = parseToml(text) as {
    version: number;
    images: Record<string, string>;
    specs: Record<string, string[]>;
  };
  assert.equal(parsed.version, 1);
  assert.deepEqual(Object.keys(parsed.images), Object.keys(one.images).sort());
  assert.deepEqual({ ...parsed.images }, { ...one.images });
  assert.deepEqual(Object.keys(parsed.specs), ["api.ts", "spec.ts"]);
  assert.deepEqual([...parsed.specs["spec.ts"]], [...one.specs["spec.ts"]].sort());
  assert.match(text, /^# imgtool\.lock: /);
  assert.deepEqual(parseLock(text, "imgtool.lock"), {
    images: { ...parsed.images },
    specs: { ...parsed.specs },
  });
});

Deno.test("formatLock: adding one image changes only the lines that name it (small diffs)", () => {
  const before: LockFile = {
    images: { "debian:bookworm": digestOf("1"), "python:3.12": digestOf("2") },
    specs: { "spec.ts": ["debian:bookworm", "python:3.12"] },
  };
  const after: LockFile = {
    images: { ...before.images, "alpine:3.20": digestOf("3") },
    specs: { "spec.ts": [...before.specs["spec.ts"], "alpine:3.20"] },
  };
  const old = formatLock(before).split("\n");
  const now = formatLock(after).split("\n");
  const added = now.filter((line) => !old.includes(line));
  const removed = old.filter((line) => !now.includes(line));
  assert.deepEqual(removed, []);
  assert.deepEqual(added, [`"alpine:3.20" = "${digestOf("3")}"`, `  "alpine:3.20",`]);
});

Deno.test("writeLock puts a new file in place by rename: a reader of the old file sees it whole, and no temporary file stays", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "imgtool.lock");
    const first: LockFile = {
      images: { "debian:12": digestOf("old") },
      specs: { "spec.ts": ["debian:12"] },
    };
    const second: LockFile = {
      images: { "debian:12": digestOf("new") },
      specs: { "spec.ts": ["debian:12"] },
    };
    await writeLock(file, first);
    const reader = await Deno.open(file);
    const inode = (await Deno.stat(file)).ino;
    await writeLock(file, second);
    // The old file was replaced, not written over: the open reader still reads all of it.
    assert.notEqual((await Deno.stat(file)).ino, inode);
    const held = new TextDecoder().decode(await new Response(reader.readable).arrayBuffer());
    assert.equal(held, formatLock(first));
    assert.deepEqual(readLockSync(file), second);
    const names = [...Deno.readDirSync(dir)].map((entry) => entry.name);
    assert.deepEqual(names, ["imgtool.lock"]);
  });
});

Deno.test("writeLock that cannot put the file in place says what and where (a folder in its place: exit 2), and leaves no temporary file", async () => {
  await withTempDir(async (dir) => {
    // A folder that holds a file stands where the lock file should go: rename cannot replace it.
    const file = join(dir, "imgtool.lock");
    await writeTree(dir, { "imgtool.lock/keep": "x" });
    const error = await writeLock(file, { images: {}, specs: {} }).then(() => undefined, (e) => e);
    assert.ok(error instanceof ImgtoolError, String(error));
    assert.equal(error.exitCode, 2);
    assert.match(error.message, new RegExp(`^writing ${file}: cannot .* to ${file}: `));
    assert.deepEqual([...Deno.readDirSync(dir)].map((entry) => entry.name), ["imgtool.lock"]);
    assert.equal(Deno.readTextFileSync(join(file, "keep")), "x");
  });
});

Deno.test("a malformed lock file is an exit-2 error that names the file and the line", () => {
  const file = "/work/app/imgtool.lock";
  const good = formatLock({
    images: { "debian:12": digestOf("d") },
    specs: { "spec.ts": ["debian:12"] },
  });
  const cases: { text: string; marker: string; says: RegExp }[] = [
    {
      text: good.replace(`"debian:12" = "`, `"debian:12" = "sha256:short`),
      marker: "sha256:short",
      says: /not a digest/,
    },
    {
      text: good.replace(`"debian:12" = "sha256:`, `"debian:12" = sha256:`),
      marker: `= sha256:`,
      says: /not valid TOML/,
    },
    {
      text: good.replace("version = 1", "version = 1\nsurprise = true"),
      marker: "surprise",
      says: /unknown key "surprise"/,
    },
    {
      text: good.replace("version = 1", "version = 7"),
      marker: "version = 7",
      says: /version 7 is not 1/,
    },
    {
      text: good.replace(`"spec.ts" = [`, `"spec.ts" = "debian:12"\n"x" = [`),
      marker: `"spec.ts" = "debian`,
      says: /spec record "spec\.ts" is not a list/,
    },
    {
      text: good.replace(`"debian:12" = "`, `"debian:12@${digestOf("p")}" = "`),
      marker: `"debian:12@`,
      says: /is not an image reference by tag/,
    },
  ];
  for (const { text, marker, says } of cases) {
    const line = text.split("\n").findIndex((l) => l.includes(marker)) + 1;
    assert.ok(line > 0, `the case has its marker ${marker}`);
    const error = (() => {
      try {
        parseLock(text, file);
      } catch (e) {
        return e;
      }
    })();
    assert.ok(error instanceof UsageError, `${marker}: ${error}`);
    assert.equal(error.exitCode, 2);
    assert.ok(error.message.startsWith(`${file}:${line}: `), `${marker}: ${error.message}`);
    assert.match(error.message, says);
    assert.match(error.hint ?? "", /imgtool lock/);
  }
});

Deno.test("readLockSync: no file is no lock; a folder in its place is an error naming it", async () => {
  await withTempDir(async (dir) => {
    assert.equal(readLockSync(join(dir, "imgtool.lock")), undefined);
    await Deno.mkdir(join(dir, "imgtool.lock"));
    assert.throws(
      () => readLockSync(join(dir, "imgtool.lock")),
      (error: Error) =>
        error instanceof UsageError && error.message.includes(join(dir, "imgtool.lock")),
    );
  });
});

// --- merging ---------------------------------------------------------------------------

Deno.test("mergeLock adds what was resolved, keeps other entries, moves changed digests and removes what no spec uses", () => {
  const [d1, d2, d3, d4] = ["1", "2", "3", "4"].map(digestOf);
  const lock: LockFile = {
    images: { "python:3.11": d1, "python:3.12": d2, "redis:7": d3 },
    specs: { "spec.ts": ["python:3.11", "python:3.12"], "cache.ts": ["redis:7"] },
  };
  const merged = mergeLock(lock, {
    spec: "spec.ts",
    uses: ["python:3.12", "ghcr.io/x/uv:1"],
    resolved: { "python:3.12": d4, "ghcr.io/x/uv:1": d1 },
    specExists: () => true,
  });
  assert.deepEqual(merged.added, [{ reference: "ghcr.io/x/uv:1", digest: d1 }]);
  assert.deepEqual(merged.moved, [{ reference: "python:3.12", from: d2, to: d4 }]);
  assert.deepEqual(merged.removed, [{ reference: "python:3.11", digest: d1 }]);
  assert.deepEqual(merged.lock.images, { "ghcr.io/x/uv:1": d1, "python:3.12": d4, "redis:7": d3 });
  assert.deepEqual(merged.lock.specs, {
    "cache.ts": ["redis:7"],
    "spec.ts": ["ghcr.io/x/uv:1", "python:3.12"],
  });
});

Deno.test("mergeLock forgets the record of a spec whose file is gone, and the entries only it used", () => {
  const [d1, d2] = ["1", "2"].map(digestOf);
  const lock: LockFile = {
    images: { "debian:12": d1, "redis:7": d2 },
    specs: { "spec.ts": ["debian:12"], "gone.ts": ["debian:12", "redis:7"] },
  };
  const merged = mergeLock(lock, {
    spec: "spec.ts",
    uses: ["debian:12"],
    resolved: {},
    specExists: (name) => name !== "gone.ts",
  });
  assert.deepEqual(merged.forgotten, ["gone.ts"]);
  assert.deepEqual(merged.removed, [{ reference: "redis:7", digest: d2 }]);
  assert.deepEqual(merged.lock, {
    images: { "debian:12": d1 },
    specs: { "spec.ts": ["debian:12"] },
  });
});

Deno.test("pinReference pins a reference with an entry as name:tag@digest, and nothing else", () => {
  const digest = digestOf("x");
  const entries = { "python:3.12-slim": digest, "debian": digestOf("y") };
  assert.equal(pinReference("python:3.12-slim", entries), `python:3.12-slim@${digest}`);
  assert.equal(pinReference("python:3.12", entries), "python:3.12");
  const pinned = `python:3.12-slim@${digestOf("z")}`;
  assert.equal(pinReference(pinned, { ...entries, [pinned]: digest }), pinned);
  assert.equal(pinReference("constructor", entries), "constructor");
  assert.ok(isPinnedByDigest(pinned) && isPinnedByDigest(`debian@${digest}`));
  assert.ok(!isPinnedByDigest("debian:sha256") && !isPinnedByDigest("127.0.0.1:5000/a:b"));
});

// --- identity --------------------------------------------------------------------------

const fromBase = Image.fromBase("registry.example.com/team/base:1.4").withWorkdir("/srv");
const debianBase = Image.fromDebianBase({ name: "app" }).withWorkdir("/app");

function uriOf(image: Image): string {
  return identifySync(planImage(image, "default", config)).uri;
}

Deno.test("with no entry for an image's bases, its tag is the tag without a lock file", async () => {
  setActiveLock(undefined);
  const without = [fromBase, debianBase, images.dockerfile, images.refName].map(uriOf);
  const unrelated = {
    "alpine:3.20": digestOf("a"),
    "registry.example.com/team/base:1.5": digestOf("b"),
  };
  const withOthers = await withLock(
    unrelated,
    () => [fromBase, debianBase, images.dockerfile, images.refName].map(uriOf),
  );
  assert.deepEqual(withOthers, without);
});

Deno.test("an entry for the base changes the tag, a moved digest changes it again, and another image keeps its tag", async () => {
  setActiveLock(undefined);
  const before = { fromBase: uriOf(fromBase), debian: uriOf(debianBase) };
  const base = "registry.example.com/team/base:1.4";
  const locked = await withLock({ [base]: digestOf("first") }, () => ({
    fromBase: uriOf(fromBase),
    debian: uriOf(debianBase),
  }));
  const moved = await withLock({ [base]: digestOf("second") }, () => ({
    fromBase: uriOf(fromBase),
    debian: uriOf(debianBase),
  }));
  assert.notEqual(locked.fromBase, before.fromBase);
  assert.notEqual(moved.fromBase, locked.fromBase);
  assert.notEqual(moved.fromBase, before.fromBase);
  assert.equal(locked.debian, before.debian);
  assert.equal(moved.debian, before.debian);
});

Deno.test("the Debian base recipe's tag covers the locked digests of its Python and uv images", async () => {
  setActiveLock(undefined);
  const defaults = defaultConfig();
  const python = defaults.images.python.replace("{major}", "3").replace("{minor}", "12");
  const plain = identifySync(planImage(debianBase, "default", defaults)).uri;
  const uvLocked = await withLock(
    { [defaults.images.uv]: digestOf("uv") },
    () => identifySync(planImage(debianBase, "default", defaults)).uri,
  );
  const pythonLocked = await withLock(
    { [python]: digestOf("py") },
    () => identifySync(planImage(debianBase, "default", defaults)).uri,
  );
  assert.equal(new Set([plain, uvLocked, pythonLocked]).size, 3);
  // With the pip installer the uv image is not used, so its entry does not count.
  const pip = loadConfig({ startDir: REPO_ROOT, env: { IMGTOOL_PYTHON_INSTALLER: "pip" } });
  const pipPlain = identifySync(planImage(debianBase, "default", pip)).uri;
  const pipUvLocked = await withLock(
    { [pip.images.uv]: digestOf("uv") },
    () => identifySync(planImage(debianBase, "default", pip)).uri,
  );
  assert.equal(pipUvLocked, pipPlain);
});

Deno.test("with a lock, the synchronous and asynchronous identities agree, and an image used as is is its pinned reference", async () => {
  const base = "registry.example.com/team/base:1.4";
  const digest = digestOf("base");
  await withLock({ [base]: digest }, async () => {
    const plan = planImage(fromBase, "default", config);
    assert.equal((await identify(plan)).uri, identifySync(plan).uri);
    assert.equal(fromBase.uri, identifySync(plan).uri);
    const asIs = await identify(planImage(Image.fromBase(base), "default", config));
    assert.deepEqual({ uri: asIs.uri, tag: asIs.tag, prebuilt: asIs.prebuilt }, {
      uri: `${base}@${digest}`,
      tag: "1.4",
      prebuilt: true,
    });
    assert.equal(Image.fromBase(base).uri, `${base}@${digest}`);
  });
});

// --- rendering -------------------------------------------------------------------------

Deno.test("base_image and ref_name render FROM name:tag@digest, with the readable reference in a comment above", async (t) => {
  const base = "registry.example.com/team/base:1.4";
  const company = "registry.example.com/platform/python-base:3.12";
  const [baseDigest, companyDigest] = [digestOf("base"), digestOf("company")];
  await withLock({ [base]: baseDigest, [company]: companyDigest }, async () => {
    const golden = await renderGolden(images.baseImage, config);
    assert.deepEqual(fromImages(golden), [`${base}@${baseDigest}`]);
    assert.match(golden, new RegExp(`^# ${base} locked at ${baseDigest}\nFROM `, "m"));
    await t.assertSnapshot(golden, asText);
    const ref = await renderGolden(images.refName, config);
    assert.deepEqual(fromImages(ref), [`${company}@${companyDigest}`]);
    assert.match(ref, new RegExp(`^# ${company} locked at ${companyDigest}\nFROM `, "m"));
    // A reference pinned by digest in the spec stays as it is.
    const pinned = await renderGolden(images.baseImagePinned, config);
    assert.deepEqual(fromImages(pinned), [`debian@sha256:${"0".repeat(64)}`]);
    assert.doesNotMatch(pinned, /locked at/);
  });
});

Deno.test("a clone's base image is pinned as the base it replaces would be", async () => {
  const cloneBase = "registry.example.com/mirror/python:3.12";
  const digest = digestOf("clone");
  const cloned = Image.fromBase("debian:bookworm").withWorkdir("/app").clone({
    baseImage: cloneBase,
  });
  await withLock({ [cloneBase]: digest }, async () => {
    const plan = planImage(cloned, "default", config);
    assert.equal(plan.baseReference, `${cloneBase}@${digest}`);
    assert.deepEqual(fromImages(await dockerfileOf(cloned, config)), [`${cloneBase}@${digest}`]);
  });
});

Deno.test("debian_base renders FROM the locked Python image and copies uv from the locked uv image", async (t) => {
  const defaults = defaultConfig();
  const python = defaults.images.python.replace("{major}", "3").replace("{minor}", "12");
  const [pythonDigest, uvDigest] = [digestOf("python"), digestOf("uv")];
  await withLock({ [python]: pythonDigest, [defaults.images.uv]: uvDigest }, async () => {
    const golden = await renderGolden(images.debianBase, config);
    assert.deepEqual(fromImages(golden), [`${python}@${pythonDigest}`]);
    assert.deepEqual(flagValues(golden, "from"), [`${defaults.images.uv}@${uvDigest}`]);
    assert.match(golden, new RegExp(`^# ${python} locked at ${pythonDigest}\nFROM `, "m"));
    await t.assertSnapshot(golden, asText);
  });
});

Deno.test("pip, requirements, uv project, uv script and poetry layers mount uv from the locked uv image", async () => {
  const uv = defaultConfig().images.uv;
  const digest = digestOf("uv");
  const base = Image.fromBase("debian:bookworm");
  const layers = {
    pip: base.withPipPackages("requests"),
    requirements: base.withRequirements("./fixtures/project/requirements/requirements.txt"),
    uvProject: base.withUvProject("./fixtures/project/uvproj/pyproject.toml"),
    poetry: base.withPoetryProject("./fixtures/project/poetryproj/pyproject.toml"),
  };
  const uvScript = Image.fromUvScript("./fixtures/project/scripts/job.py", { name: "job" })
    .clone({ baseImage: "debian:bookworm" });
  const without: Record<string, string[]> = {};
  for (const [name, image] of Object.entries(layers)) {
    without[name] = mountFroms(await dockerfileOf(image, config));
    assert.ok(without[name].includes(uv), `${name} mounts uv from ${uv}: ${without[name]}`);
  }
  await withLock({ [uv]: digest }, async () => {
    for (const [name, image] of Object.entries(layers)) {
      const froms = mountFroms(await dockerfileOf(image, config));
      assert.deepEqual(
        froms,
        without[name].map((from) => (from === uv ? `${uv}@${digest}` : from)),
        name,
      );
    }
    // Over the Debian base recipe, uv is in the image: it is copied, not mounted.
    const script = await dockerfileOf(uvScript, config);
    assert.deepEqual(flagValues(script, "from"), [`${uv}@${digest}`]);
  });
});

Deno.test("fromDockerfile pins the images of FROM, COPY --from and RUN --mount from=, and leaves stages, scratch, variables and here-documents alone", async (t) => {
  const dockerfileText = [
    "# syntax=docker/dockerfile:1",
    "ARG BASE=debian:bookworm",
    "FROM --platform=$BUILDPLATFORM golang:1.22 AS Build",
    "RUN <<EOF",
    "FROM alpine:3.20",
    "EOF",
    "FROM build AS test",
    "FROM ${BASE} AS configured",
    "FROM scratch AS empty",
    "FROM debian:bookworm-slim",
    "COPY --from=build /out/app /app",
    "COPY --from=0 /out/app /app0",
    "COPY \\",
    "  --from=ghcr.io/acme/assets:3 \\",
    "  /srv /srv",
    "COPY --from=ghcr.io/acme/assets:3 /a /a",
    "RUN --mount=type=bind,from=busybox:1.36,source=/bin/busybox,target=/bb /bb true",
    "RUN --mount=type=cache,target=/c,from=empty true",
    "",
  ].join("\n");
  const digests = {
    "golang:1.22": digestOf("go"),
    "debian:bookworm-slim": digestOf("debian"),
    "ghcr.io/acme/assets:3": digestOf("assets"),
    "busybox:1.36": digestOf("busybox"),
    // Named only inside a here-document and a variable's default: never pinned.
    "alpine:3.20": digestOf("alpine"),
    "debian:bookworm": digestOf("bookworm"),
  };
  await withTempDir(async (dir) => {
    await writeTree(dir, { "Dockerfile": dockerfileText });
    const image = Image.fromDockerfile(join(dir, "Dockerfile"), { name: "custom" });
    setActiveLock(undefined);
    const unlocked = await dockerfileOf(image, config);
    assert.ok(unlocked.includes(dockerfileText.split("\n").slice(1).join("\n").trimEnd()));
    assert.deepEqual(imagesUsed(planImage(image, "default", config)), [
      "busybox:1.36",
      "debian:bookworm-slim",
      "ghcr.io/acme/assets:3",
      "golang:1.22",
    ]);
    await withLock(digests, async () => {
      const locked = await dockerfileOf(image, config);
      const pin = (reference: string) =>
        `${reference}@${digests[reference as keyof typeof digests]}`;
      assert.deepEqual(fromImages(locked), [
        pin("golang:1.22"),
        "build",
        "${BASE}",
        "scratch",
        pin("debian:bookworm-slim"),
      ]);
      assert.deepEqual(flagValues(locked, "from"), [
        "build",
        "0",
        pin("ghcr.io/acme/assets:3"),
        pin("ghcr.io/acme/assets:3"),
      ]);
      assert.deepEqual(mountFroms(locked), [pin("busybox:1.36"), "empty"]);
      assert.match(locked, /^RUN <<EOF\nFROM alpine:3\.20\nEOF$/m);
      assert.match(locked, /^ARG BASE=debian:bookworm$/m);
      const comments = locked.split("\n").filter((line) => line.includes(" locked at "));
      assert.deepEqual(comments, [
        `# golang:1.22 locked at ${digests["golang:1.22"]}`,
        `# debian:bookworm-slim locked at ${digests["debian:bookworm-slim"]}`,
      ]);
      const stable = locked.replace(`imgtool ${VERSION} `, "imgtool <version> ")
        .replace(/lock_test\.ts:\d+/, "lock_test.ts:<line>");
      await t.assertSnapshot(stable, asText);
    });
  });
});

Deno.test("imageMentions joins continuation lines for the file's escape character", () => {
  const body = "COPY `\n  --from=ghcr.io/acme/assets:3 `\n  /srv /srv\nRUN echo \\\nFROM x:1";
  const mentions = imageMentions(body, "`");
  assert.deepEqual(mentions.map((m) => [m.reference, body.slice(m.start, m.end)]), [
    ["ghcr.io/acme/assets:3", "ghcr.io/acme/assets:3"],
    ["x:1", "x:1"],
  ]);
  // Under the default escape character the backslash continues the RUN into the FROM line.
  assert.deepEqual(imageMentions(body.replaceAll("`", "\\"), "\\").map((m) => m.reference), [
    "ghcr.io/acme/assets:3",
  ]);
  assert.equal(pinImages(body, "`", (reference) => reference), body);
});

// --- the images a spec uses, and --locked ----------------------------------------------

/** A loaded spec made of images, as `loadSpec` would give it for `dir/spec.ts`. */
function specOf(dir: string, exports: Record<string, Image>, file = "spec.ts"): LoadedSpec {
  return {
    file: join(dir, file),
    images: Object.entries(exports).map(([exportName, image]) => ({
      exportName,
      exportKey: exportName,
      image,
    })),
  };
}

/** The error `body` throws, or undefined. */
function thrown(body: () => void): unknown {
  try {
    body();
  } catch (error) {
    return error;
  }
  return undefined;
}

Deno.test("lockableImages: every base by tag, not those pinned by digest nor the spec's own images", () => {
  setActiveLock(undefined);
  const base = Image.fromDebianBase({ name: "base", registry: "127.0.0.1:5000/team" });
  const app = Image.fromBase(uriOf(base)).withWorkdir("/app");
  const tool = Image.fromBase(`debian@${digestOf("d")}`).withWorkdir("/tool");
  const plans = [base, app, tool].map((image, index) => planImage(image, `i${index}`, config));
  const defaults = defaultConfig();
  assert.deepEqual(
    lockableImages(plans),
    [
      defaults.images.uv,
      defaults.images.python.replace("{major}", "3").replace("{minor}", "12"),
    ].sort(),
  );
});

Deno.test("--locked passes with no lock file for a spec whose bases are all pinned by digest", async () => {
  await withTempDir((dir) => {
    const pinned = Image.fromBase(`debian@${digestOf("d")}`).withWorkdir("/app");
    assert.equal(thrown(() => ensureLocked(specOf(dir, { default: pinned }), [])), undefined);
  });
});

Deno.test("--locked fails (exit 2) before anything when a base has no entry, naming it and `imgtool lock`", async () => {
  await withTempDir(async (dir) => {
    const spec = specOf(dir, { default: fromBase });
    const missing = thrown(() => ensureLocked(spec, []));
    assert.ok(missing instanceof UsageError, String(missing));
    assert.equal(missing.exitCode, 2);
    assert.match(missing.message, new RegExp(`there is no ${join(dir, "imgtool.lock")}`));
    assert.match(missing.message, /registry\.example\.com\/team\/base:1\.4 has no entry/);
    assert.match(missing.hint ?? "", /run imgtool lock .*spec\.ts/);
    // A lock for another image does not help.
    await writeLock(join(dir, "imgtool.lock"), {
      images: { "debian:12": digestOf("d") },
      specs: { "other.ts": ["debian:12"] },
    });
    await writeTree(dir, { "other.ts": "" });
    const stillMissing = thrown(() => ensureLocked(spec, []));
    assert.match((stillMissing as Error).message, /is out of date: .*base:1\.4 has no entry/);
  });
});

Deno.test("--locked fails when the file is out of date: an entry no spec uses, a record of a spec that is gone, a base the record lacks", async () => {
  await withTempDir(async (dir) => {
    const base = "registry.example.com/team/base:1.4";
    const spec = specOf(dir, { default: fromBase });
    const file = join(dir, "imgtool.lock");
    await writeTree(dir, { "spec.ts": "", "api.ts": "" });
    const exact: LockFile = { images: { [base]: digestOf("b") }, specs: { "spec.ts": [base] } };
    await writeLock(file, exact);
    assert.equal(thrown(() => ensureLocked(spec, [])), undefined);
    const cases: [LockFile, RegExp][] = [
      [
        { ...exact, images: { ...exact.images, "redis:7": digestOf("r") } },
        /no spec uses its entry redis:7/,
      ],
      [
        { ...exact, specs: { ...exact.specs, "gone.ts": [base] } },
        /records the spec gone\.ts, which is gone/,
      ],
      [{ ...exact, specs: { "api.ts": [base] } }, /does not record that spec\.ts uses .*base:1\.4/],
      [
        { ...exact, specs: { "spec.ts": [base, "debian:12"] } },
        /spec\.ts no longer uses debian:12/,
      ],
    ];
    for (const [lock, says] of cases) {
      await writeLock(file, lock);
      const error = thrown(() => ensureLocked(spec, []));
      assert.ok(error instanceof UsageError, `${says}: ${error}`);
      assert.match(error.message, new RegExp(`${file} is out of date: `));
      assert.match(error.message, says);
    }
    // Another spec's entries and records in the same file are fine.
    await writeLock(file, {
      images: { ...exact.images, "redis:7": digestOf("r") },
      specs: { ...exact.specs, "api.ts": ["redis:7"] },
    });
    assert.equal(thrown(() => ensureLocked(spec, [])), undefined);
  });
});

// --- imgtool lock ----------------------------------------------------------------------

/** A spec folder whose images start from the stand-in registry `host`. */
async function writeLockProject(dir: string, host: string): Promise<void> {
  await writeTree(dir, {
    "imgtool.toml": [
      "[images]",
      `python = "${host}/library/python:{major}.{minor}-slim"`,
      `uv = "${host}/astral/uv:0.8.13"`,
      "",
    ].join("\n"),
    "spec.ts": [
      'import { Image } from "imgtool";',
      'export const base = Image.fromDebianBase({ name: "base", pythonVersion: [3, 12] });',
      `export const tool = Image.fromBase("${host}/team/tool:1").withWorkdir("/tool");`,
      "",
    ].join("\n"),
  });
}

const noSignal = new AbortController().signal;

/** The flags `imgtool lock SPEC --json ...args` gets, read as the command line reads them. */
function lockFlags(spec: string, args: readonly string[] = []): Flags & { update: boolean } {
  const command = parseCommandLine(["lock", spec, "--json", ...args]);
  assert.ok(command.kind === "lock");
  return command.flags;
}

/** Run `imgtool lock ...args` in `cwd`. */
function lockCli(cwd: string, args: readonly string[]) {
  return runProcess(Deno.execPath(), [
    "run",
    ...IMGTOOL_RUNTIME_FLAGS,
    "--config",
    join(REPO_ROOT, "deno.json"),
    join(REPO_ROOT, "cli.ts"),
    "lock",
    ...args,
  ], { cwd, env: { NO_COLOR: "1" } });
}

Deno.test("imgtool lock adds the digest the registry serves for each base: the index digest for a multi-platform image", async () => {
  const registry = await startFakeRegistry();
  try {
    await withTempDir(async (dir) => {
      const { host } = registry;
      await writeLockProject(dir, host);
      const python = await registry.addIndex("library/python", "3.12-slim", [
        "linux/amd64",
        "linux/arm64",
      ]);
      const uv = await registry.addImage("astral/uv", "0.8.13", "linux/amd64");
      const tool = await registry.addIndex("team/tool", "1", ["linux/amd64"]);
      setActiveLock(undefined);
      const spec = join(dir, "spec.ts");
      const code = await lockCommand(spec, lockFlags(spec), noSignal);
      assert.equal(code, 0);
      const written = parseToml(await Deno.readTextFile(join(dir, "imgtool.lock"))) as {
        images: Record<string, string>;
        specs: Record<string, string[]>;
      };
      const expected = {
        [`${host}/library/python:3.12-slim`]: python,
        [`${host}/astral/uv:0.8.13`]: uv,
        [`${host}/team/tool:1`]: tool,
      };
      assert.deepEqual({ ...written.images }, Object.fromEntries(Object.entries(expected).sort()));
      assert.deepEqual({ ...written.specs }, { "spec.ts": Object.keys(expected).sort() });
      // The spec is locked now: --locked passes, and the tool image's tag covers its digest.
      const config = loadConfig({ startDir: dir, env: {} });
      const loaded = specOf(dir, {
        base: Image.fromDebianBase({ name: "base", pythonVersion: [3, 12] }),
        tool: Image.fromBase(`${host}/team/tool:1`).withWorkdir("/tool"),
      });
      const plansOf = () => loaded.images.map((e) => planImage(e.image, e.exportName, config));
      setActiveLock(undefined);
      const unlocked = plansOf().map((plan) => identifySync(plan).uri);
      setActiveLock(join(dir, "imgtool.lock"));
      const locked = plansOf().map((plan) => identifySync(plan).uri);
      assert.notEqual(locked[0], unlocked[0]);
      assert.notEqual(locked[1], unlocked[1]);
      assert.equal(thrown(() => ensureLocked(loaded, plansOf())), undefined);
    });
  } finally {
    setActiveLock(undefined);
    await registry.close();
  }
});

Deno.test("imgtool lock keeps entries whose tag moved; lock --update moves them and says what moved", async () => {
  const registry = await startFakeRegistry();
  try {
    await withTempDir(async (dir) => {
      const { host } = registry;
      await writeLockProject(dir, host);
      const python = await registry.addIndex("library/python", "3.12-slim", ["linux/amd64"]);
      const uv = await registry.addImage("astral/uv", "0.8.13", "linux/amd64");
      const tool = await registry.addIndex("team/tool", "1", ["linux/amd64"]);
      const first = await lockCli(dir, ["spec.ts"]);
      assert.equal(first.code, 0, first.stderr);
      const short = (digest: string) => `${digest.slice(0, "sha256:".length + 12)}…`;
      assert.match(first.stdout, new RegExp(`^added ${host}/team/tool:1 ${short(tool)}$`, "m"));
      assert.match(first.stdout, /^wrote .*imgtool\.lock \(3 images\)$/m);
      // The tag moves in the registry: a plain lock keeps the entry.
      const moved = await registry.addIndex("team/tool", "1", ["linux/amd64"], { User: "app" });
      assert.notEqual(moved, tool);
      const again = await lockCli(dir, ["spec.ts"]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /imgtool\.lock is up to date \(3 images\)$/m);
      const kept = readLockSync(join(dir, "imgtool.lock"));
      assert.equal(kept?.images[`${host}/team/tool:1`], tool);
      const update = await lockCli(dir, ["spec.ts", "--update"]);
      assert.equal(update.code, 0, update.stderr);
      assert.equal(
        update.stdout.split("\n").filter((line) => line.startsWith("moved ")).join("\n"),
        `moved ${host}/team/tool:1 ${short(tool)} → ${short(moved)}`,
      );
      assert.deepEqual(readLockSync(join(dir, "imgtool.lock"))?.images, {
        [`${host}/astral/uv:0.8.13`]: uv,
        [`${host}/library/python:3.12-slim`]: python,
        [`${host}/team/tool:1`]: moved,
      });
      // The spec stops using the tool image: the next lock removes its entry and says so.
      await writeTree(dir, {
        "spec.ts":
          'import { Image } from "imgtool";\nexport default Image.fromDebianBase({ name: "base" });\n',
      });
      const dropped = await lockCli(dir, ["spec.ts", "--json"]);
      assert.equal(dropped.code, 0, dropped.stderr);
      const report = JSON.parse(dropped.stdout);
      assert.deepEqual(report.removed, [{ reference: `${host}/team/tool:1`, digest: moved }]);
      assert.deepEqual(Object.keys(readLockSync(join(dir, "imgtool.lock"))?.images ?? {}).sort(), [
        `${host}/astral/uv:0.8.13`,
        `${host}/library/python:3.12-slim`,
      ]);
    });
  } finally {
    await registry.close();
  }
});

Deno.test("imgtool lock --image adds only that image's entries, and the record still covers every image", async () => {
  const registry = await startFakeRegistry();
  try {
    await withTempDir(async (dir) => {
      const { host } = registry;
      await writeLockProject(dir, host);
      const tool = await registry.addIndex("team/tool", "1", ["linux/amd64"]);
      setActiveLock(undefined);
      const spec = join(dir, "spec.ts");
      await lockCommand(spec, lockFlags(spec, ["--image", "tool"]), noSignal);
      const lock = readLockSync(join(dir, "imgtool.lock"));
      assert.deepEqual(lock?.images, { [`${host}/team/tool:1`]: tool });
      assert.deepEqual(lock?.specs["spec.ts"], [
        `${host}/astral/uv:0.8.13`,
        `${host}/library/python:3.12-slim`,
        `${host}/team/tool:1`,
      ]);
    });
  } finally {
    setActiveLock(undefined);
    await registry.close();
  }
});

Deno.test("imgtool lock exits 1 naming the reference when the registry has no such image or cannot be asked, and leaves the file as it was", async () => {
  const registry = await startFakeRegistry();
  try {
    await withTempDir(async (dir) => {
      const { host } = registry;
      await writeLockProject(dir, host);
      await registry.addIndex("library/python", "3.12-slim", ["linux/amd64"]);
      await registry.addImage("astral/uv", "0.8.13", "linux/amd64");
      // team/tool:1 is not in the registry.
      setActiveLock(undefined);
      const spec = join(dir, "spec.ts");
      const absent = await lockCommand(spec, lockFlags(spec), noSignal)
        .then(() => undefined, (error) => error);
      assert.ok(absent instanceof ImgtoolError, String(absent));
      assert.equal(absent.exitCode, 1);
      assert.equal(
        absent.message,
        `cannot lock ${host}/team/tool:1: its registry has no such image`,
      );
      assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
        "imgtool.toml",
        "spec.ts",
      ]);
      // The registry stops answering: the command fails the same way, through the CLI.
      await registry.close();
      const down = await lockCli(dir, ["spec.ts"]);
      assert.equal(down.code, 1, down.stdout + down.stderr);
      assert.match(down.stderr, new RegExp(`cannot lock ${host}/`));
      assert.doesNotMatch(down.stderr, /\n\s+at /, "no stack trace");
      assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
        "imgtool.toml",
        "spec.ts",
      ]);
    });
  } finally {
    setActiveLock(undefined);
    await registry.close().catch(() => {});
  }
});
