// The bundle (scripts/bundle.ts), which the binaries embed and the no-op benchmark runs,
// behaves as the sources do: the same answers, the same spec lines in errors, the hashing
// Workers found beside their chunk, `imgtool init` pointing editors at the API.
import assert from "node:assert/strict";
import { join } from "node:path";
import { bundleInto } from "../scripts/bundle.ts";
import { bundledImgtool, imgtool, REPO_ROOT, withTempDir, writeTree } from "./helpers.ts";

// Two levels below the repository, as dist/js is (scripts/bundle.ts says why).
const OUT = `dist/test-bundle-${Deno.pid}`;

function bundled(bundle: string, args: readonly string[], cwd: string) {
  return bundledImgtool(bundle, args, { cwd });
}

Deno.test("the bundle answers as the sources do", async (t) => {
  const bundle = await bundleInto(OUT);
  try {
    const names = [...Deno.readDirSync(bundle)].map((entry) => entry.name);
    for (const name of ["cli.js", "mod.js", "digest_worker.js", "deno.json"]) {
      assert.ok(names.includes(name), `${name} in ${names.join(" ")}`);
    }

    await t.step("uri, and the same spec line in a validation error", async () => {
      await withTempDir(async (dir) => {
        await writeTree(dir, {
          "spec.ts": [
            `import { Image } from "imgtool";`,
            `export default Image.fromDebianBase({ name: "app", registry: "127.0.0.1:5000" })`,
            `  .withSourceFolder("./src", "/app")`,
            `  .withEnvVars({ MODE: "bundle" });`,
            `export const broken = Image.fromDebianBase({ name: "broken" })`,
            `  .withSourceFile("./missing.txt", "/app/missing.txt");`,
            "",
          ].join("\n"),
          "src/main.py": "print('hi')\n",
        });
        const fromBundle = await bundled(bundle, ["uri", "spec.ts"], dir);
        const fromSources = await imgtool(["uri", "spec.ts"], { cwd: dir });
        assert.equal(fromBundle.code, 0, fromBundle.stderr);
        assert.match(fromBundle.stdout, /^127\.0\.0\.1:5000\/app:[0-9a-f]{32}$/m);
        assert.equal(fromBundle.stdout, fromSources.stdout);

        const bundleError = await bundled(
          bundle,
          ["validate", "spec.ts", "--image", "broken"],
          dir,
        );
        const sourcesError = await imgtool(["validate", "spec.ts", "--image", "broken"], {
          cwd: dir,
        });
        assert.equal(bundleError.code, 2, bundleError.stderr);
        assert.match(bundleError.stderr, new RegExp(`at ${join(dir, "spec.ts")}:6\\b`));
        assert.equal(bundleError.stderr, sourcesError.stderr);
      });
    });

    await t.step("a tree large enough for the hashing Workers gets the same identity", async () => {
      await withTempDir(async (dir) => {
        // Above WORKER_THRESHOLD_BYTES (64 MiB), so the Workers hash it.
        const block = new Uint8Array(1 << 20);
        await Deno.mkdir(join(dir, "data"));
        for (let i = 0; i < 66; i++) {
          block[0] = i;
          await Deno.writeFile(join(dir, "data", `part${i}.bin`), block);
        }
        await writeTree(dir, {
          "spec.ts": [
            `import { Image } from "imgtool";`,
            `export default Image.fromDebianBase({ name: "big" }).withSourceFolder("./data", "/data");`,
            "",
          ].join("\n"),
        });
        const fromBundle = await bundled(bundle, ["uri", "spec.ts"], dir);
        const fromSources = await imgtool(["uri", "spec.ts"], { cwd: dir });
        assert.equal(fromBundle.code, 0, fromBundle.stderr);
        assert.match(fromBundle.stdout, /^big:[0-9a-f]{32}$/m);
        assert.equal(fromBundle.stdout, fromSources.stdout);
      });
    });

    await t.step("init points an editor at the API's sources", async () => {
      await withTempDir(async (dir) => {
        const result = await bundled(bundle, ["init", "."], dir);
        assert.equal(result.code, 0, result.stderr);
        const config = JSON.parse(await Deno.readTextFile(join(dir, "deno.json")));
        assert.equal(
          await Deno.realPath(join(dir, config.imports.imgtool)),
          join(REPO_ROOT, "mod.ts"),
        );
      });
    });
  } finally {
    await Deno.remove(bundle, { recursive: true });
  }
});
