import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { REPO_ROOT } from "./helpers.ts";
import { definePlugin, Image } from "../mod.ts";

// Every module under plugins/, with the specifiers it imports (doc examples aside).
function pluginImports(): { file: string; specifier: string }[] {
  const found: { file: string; specifier: string }[] = [];
  const walk = (dir: string) => {
    for (const entry of Deno.readDirSync(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) walk(path);
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) {
        const code = Deno.readTextFileSync(path).split("\n")
          .filter((line) => !/^\s*\*/.test(line)).join("\n");
        for (const match of code.matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g)) {
          found.push({ file: relative(REPO_ROOT, path), specifier: match[1] });
        }
      }
    }
  };
  walk(join(REPO_ROOT, "plugins"));
  return found;
}

Deno.test("built-in plugins import the plugin contract and each other, never the core's modules or mod.ts", () => {
  const imports = pluginImports();
  assert.ok(imports.length > 20, "the plugins' imports were found");
  const outside = imports.filter(({ file, specifier }) => {
    if (!specifier.startsWith(".")) return !["smol-toml"].includes(specifier);
    const target = relative(REPO_ROOT, join(REPO_ROOT, file, "..", specifier));
    return target !== "contract.ts" && !target.startsWith("plugins/");
  });
  assert.deepEqual(outside, [], "plugins reach past the contract");
});

Deno.test("the contract's module graph does not reach Image: mod.ts → image → plugins → contract has no cycle", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", join(REPO_ROOT, "contract.ts")],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  const graph = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    modules: { specifier: string }[];
  };
  const files = graph.modules.map((module) => module.specifier)
    .filter((specifier) => specifier.startsWith("file:"))
    .map((specifier) => relative(REPO_ROOT, new URL(specifier).pathname));
  assert.ok(files.includes("src/plugin.ts"), files.join("\n"));
  for (const file of files) {
    assert.ok(
      file !== "src/image.ts" && !file.startsWith("plugins/") && file !== "mod.ts",
      `the contract reaches ${file}`,
    );
  }
});

Deno.test("a plugin's version is an integer from 1, and bumping it changes the tags of its layers", () => {
  const make = (version?: number) =>
    definePlugin<Record<string, never>>({
      name: "versioned",
      version,
      render: () => ({ instructions: ["RUN true"] }),
    });
  for (const bad of [0, -1, 1.5, Number.NaN, "2" as unknown as number]) {
    assert.throws(() => make(bad), /version .* is not|a version is an integer from 1/, String(bad));
  }
  const uri = (version?: number) =>
    Image.fromBase("debian:bookworm").withLayer(make(version).layer({})).uri;
  assert.equal(uri(undefined), uri(1), "a plugin without a version is version 1");
  assert.notEqual(uri(1), uri(2));
});
