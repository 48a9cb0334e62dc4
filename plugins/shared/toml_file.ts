/**
 * Reading the TOML files Python projects keep (`pyproject.toml`, `uv.lock`, `uv.toml`)
 * through a plugin context, parsed once per content: `identify`, `validate` and `render` all
 * read the same files, and a workspace's lock can be large.
 *
 * @module
 */

import { parse as parseToml } from "smol-toml";
import type { IdentifyContext } from "../../contract.ts";

/** A parsed TOML table. */
export type TomlTable = Readonly<Record<string, unknown>>;

const parsed = new Map<string, { readonly text: string; readonly table: TomlTable | Error }>();

/**
 * The file's TOML as a table; `undefined` when it cannot be read, an `Error` saying why when
 * it is not valid TOML.
 *
 * @example
 * ```ts
 * import type { IdentifyContext } from "../../contract.ts";
 * import { readToml } from "./toml_file.ts";
 * const context = { readText: () => 'name = "demo"\n' } as unknown as IdentifyContext;
 * console.log(readToml(context, "/work/app/pyproject.toml")); // [Object: null prototype] { name: "demo" }
 * ```
 */
export function readToml(context: IdentifyContext, path: string): TomlTable | Error | undefined {
  const text = context.readText(path);
  if (text === undefined) return undefined;
  const cached = parsed.get(path);
  if (cached?.text === text) return cached.table;
  let table: TomlTable | Error;
  try {
    table = parseToml(text) as TomlTable;
  } catch (error) {
    table = error instanceof Error ? error : new Error(String(error));
  }
  // A few files per layer are re-read by every hook; keep the cache small.
  if (parsed.size >= 64) parsed.delete(parsed.keys().next().value!);
  parsed.set(path, { text, table });
  return table;
}

/**
 * The table at `keys` inside `table` (`["tool", "uv"]`), or `{}` when any step is missing or
 * is not a table.
 *
 * @example
 * ```ts
 * import { tableAt } from "./toml_file.ts";
 * console.log(tableAt({ tool: { uv: { package: false } } }, "tool", "uv")); // { package: false }
 * ```
 */
export function tableAt(table: unknown, ...keys: string[]): TomlTable {
  let current = table;
  for (const key of keys) {
    if (!isTable(current)) return {};
    current = current[key];
  }
  return isTable(current) ? current : {};
}

/**
 * Is `value` a TOML table (a plain object)?
 *
 * @example
 * ```ts
 * import { isTable } from "./toml_file.ts";
 * console.log(isTable({}), isTable([]), isTable("x")); // true false false
 * ```
 */
export function isTable(value: unknown): value is TomlTable {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !(value instanceof Date);
}

/**
 * The strings of a TOML array (other items dropped), or `[]`.
 *
 * @example
 * ```ts
 * import { stringsOf } from "./toml_file.ts";
 * console.log(stringsOf(["a", 1, "b"]), stringsOf("a")); // [ "a", "b" ] []
 * ```
 */
export function stringsOf(value: unknown): string[] {
  return Array.isArray(value)
    ? value.filter((item): item is string => typeof item === "string")
    : [];
}
