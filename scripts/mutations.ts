/**
 * The deliberate mutations `deno run -A scripts/mutate.ts` makes, one at a time, to check
 * that the unit tests notice when a guarantee breaks. Each is one text replacement in one
 * file, naming the guarantee it breaks; the replacement must apply exactly once, so a
 * mutation that no longer matches the source is reported as an error, never as "caught".
 *
 * When a change to the sources makes a mutation stale, rewrite its `find`/`replace` to break
 * the same guarantee in the new code (tests/mutate_test.ts fails until then). A mutation
 * must still type-check: one that does not is reported as an error, not as caught.
 *
 * @module
 */

/**
 * One deliberate mistake.
 *
 * @example
 * ```ts
 * import type { Mutation } from "./mutations.ts";
 * const mutation: Mutation = {
 *   name: "never-retry",
 *   file: "src/retry.ts",
 *   breaks: "failed requests are retried",
 *   find: "const attempts = 3;",
 *   replace: "const attempts = 1;",
 * };
 * console.log(mutation.name); // never-retry
 * ```
 */
export interface Mutation {
  /** A short kebab-case name, for `--only`. */
  readonly name: string;
  /** The file it changes, relative to the repository root. */
  readonly file: string;
  /** The guarantee it breaks, which some unit test should hold. */
  readonly breaks: string;
  /** The exact text to replace; it must occur exactly once in the file. */
  readonly find: string;
  /** What replaces it. */
  readonly replace: string;
}

/**
 * Why a mutation cannot be applied to a source text.
 *
 * @example
 * ```ts
 * import { applyMutation, StaleMutationError } from "./mutations.ts";
 * const mutation = { name: "m", file: "a.ts", breaks: "a holds", find: "x", replace: "y" };
 * try {
 *   applyMutation("nothing here", mutation);
 * } catch (error) {
 *   console.log(error instanceof StaleMutationError && error.count); // 0
 * }
 * ```
 */
export class StaleMutationError extends Error {
  /** Make the error for `mutation`, whose text occurs `count` times (not once). */
  constructor(readonly mutation: Mutation, readonly count: number) {
    super(
      `mutation ${mutation.name} no longer applies: its text occurs ${count} times in ` +
        `${mutation.file}, not once; rewrite it in scripts/mutations.ts to break the same ` +
        `guarantee (${mutation.breaks})`,
    );
    this.name = "StaleMutationError";
  }
}

/** How many times `needle` occurs in `text`, without overlaps. */
function occurrences(text: string, needle: string): number {
  if (needle === "") return 0;
  return text.split(needle).length - 1;
}

/**
 * The source `text` with `mutation` applied. Throws a {@link StaleMutationError} unless its
 * `find` text occurs exactly once.
 *
 * @example
 * ```ts
 * import { applyMutation, type Mutation } from "./mutations.ts";
 * const mutation: Mutation = {
 *   name: "off-by-one",
 *   file: "count.ts",
 *   breaks: "counts start at zero",
 *   find: "let count = 0;",
 *   replace: "let count = 1;",
 * };
 * console.log(applyMutation("let count = 0;\ncount++;\n", mutation));
 * // let count = 1;
 * // count++;
 * ```
 */
export function applyMutation(text: string, mutation: Mutation): string {
  const count = occurrences(text, mutation.find);
  if (count !== 1) throw new StaleMutationError(mutation, count);
  const at = text.indexOf(mutation.find);
  return text.slice(0, at) + mutation.replace + text.slice(at + mutation.find.length);
}

/**
 * imgtool's mutations, each breaking one guarantee of DESIGN.md or the README.
 *
 * @example
 * ```ts
 * import { MUTATIONS } from "./mutations.ts";
 * console.log(MUTATIONS.some((m) => m.name === "canonical-key-order")); // true
 * ```
 */
export const MUTATIONS: readonly Mutation[] = [
  {
    name: "docker-no-secret-flags",
    file: "plugins/docker.ts",
    breaks: "the docker builder passes every secret to BuildKit as a --secret mount",
    find:
      '    ...request.secrets.flatMap((secret) => ["--secret", `id=${secret.id},src=${secret.file}`]),\n',
    replace: "",
  },
  {
    name: "registry-always-exists",
    file: "src/registry/client.ts",
    breaks: "a tag the registry lacks (or lacks a platform of) does not exist, so it is built",
    find: "  async check(reference: string, platforms: Platform[]): Promise<TagStatus> {\n",
    replace: "  async check(reference: string, platforms: Platform[]): Promise<TagStatus> {\n" +
      "    return { ...(await this.checkAsFound(reference, platforms)), exists: true };\n" +
      "  }\n\n" +
      "  async checkAsFound(reference: string, platforms: Platform[]): Promise<TagStatus> {\n",
  },
  {
    name: "keep-temp-dirs-on-abort",
    file: "src/build.ts",
    breaks: "an interrupted build (Ctrl-C) removes its build context and secrets folders",
    find: "    await Deno.remove(contextDir, { recursive: true }).catch(() => {});\n" +
      "    await Deno.remove(secretsDir, { recursive: true }).catch(() => {});\n",
    replace: "    if (!options.signal.aborted) {\n" +
      "      await Deno.remove(contextDir, { recursive: true }).catch(() => {});\n" +
      "      await Deno.remove(secretsDir, { recursive: true }).catch(() => {});\n" +
      "    }\n",
  },
  {
    name: "canonical-key-order",
    file: "src/canonical.ts",
    breaks: "tags are stable: the canonical encoding (sorted keys) of every release is the same",
    find: "const members = Object.keys(value).sort()\n",
    replace: "const members = Object.keys(value).sort().reverse()\n",
  },
  {
    name: "digest-no-workers",
    file: "src/digest.ts",
    breaks: "large trees are hashed in Workers, one per core",
    find: "if (workers.none || recall.unhashedBytes < workerThreshold) return;",
    replace: "if (true || workers.none || recall.unhashedBytes < workerThreshold) return;",
  },
  {
    name: "retry-no-jitter",
    file: "src/registry/retry.ts",
    breaks: "retry delays are jittered, so clients retrying one registry spread out",
    find: "let delay = step / 2 + random * (step / 2);",
    replace: "let delay = step / 2 + 0.5 * (step / 2);",
  },
  {
    name: "build-output-unmasked",
    file: "src/build.ts",
    breaks: "secret values are masked in everything the builder prints",
    find: "const mask = redactor([...secrets.values, ...(auth?.values ?? [])]);",
    replace: "const mask = redactor([]);",
  },
  {
    name: "shell-quote-nothing",
    file: "src/dockerfile.ts",
    breaks: "shellQuote makes any value one shell word, never shell syntax",
    find: "if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;",
    replace: "if (value.length >= 0) return value;",
  },
  {
    name: "dockerfile-quote-dollar",
    file: "src/dockerfile.ts",
    breaks: "environment values are literal: `$` in a value is not expanded",
    find: 'return `"${value.replace(/[\\\\"$]/g, (char) => `\\\\${char}`)}"`;',
    replace: 'return `"${value.replace(/[\\\\"]/g, (char) => `\\\\${char}`)}"`;',
  },
  {
    name: "identity-ignores-dockerignore",
    file: "src/identify.ts",
    breaks: ".dockerignore rules are applied before hashing: an ignored file changes no tag",
    // Both identities: `image.uri` (synchronous) and `imgtool uri`/`build` (asynchronous).
    find: "    : { $tree: treeDigestSync(ref.path, ignore) };\n}\n\n" +
      "async function digestRef(ref: Ref, ignore: IgnoreRules): Promise<unknown> {\n" +
      '  return ref.$ref === "file"\n' +
      "    ? { $file: await fileDigest(ref.path) }\n" +
      "    : { $tree: await treeDigest(ref.path, ignore) };\n",
    replace: "    : { $tree: treeDigestSync(ref.path) };\n}\n\n" +
      "async function digestRef(ref: Ref, ignore: IgnoreRules): Promise<unknown> {\n" +
      '  return ref.$ref === "file"\n' +
      "    ? { $file: await fileDigest(ref.path) }\n" +
      "    : { $tree: await treeDigest(ref.path) };\n",
  },
  {
    name: "redirect-keeps-authorization",
    file: "src/registry/http.ts",
    breaks: "credentials go only to the registry's own origin, never to a redirect target",
    find: '        currentHeaders.delete("authorization");\n',
    replace: "",
  },
  {
    name: "tag-cache-trusts-moved-tag",
    file: "src/registry/client.ts",
    breaks: "a remembered tag counts only while the registry serves the same digest",
    find: "if (direct === remembered.digest) return status(remembered);",
    replace: "if (direct !== undefined) return status(remembered);",
  },
];
