/**
 * The canonical encoding of identity contributions: JSON with object keys sorted, no
 * whitespace, `undefined` members dropped. JSON's string quoting makes it unambiguous:
 * `["ab","c"]` and `["a","bc"]` never encode alike. File and tree references are replaced
 * by their digests; secrets by their description, never their value.
 *
 * @module
 */

import type { FileRef, TreeRef } from "./plugin.ts";
import { isSecret } from "./secret.ts";

/** A file or tree reference inside a contribution. */
export type Ref = FileRef | TreeRef;

/** Is this value a file or tree reference? */
export function isRef(value: unknown): value is Ref {
  return typeof value === "object" && value !== null &&
    ((value as Ref).$ref === "file" || (value as Ref).$ref === "tree") &&
    typeof (value as Ref).path === "string";
}

/** Every reference inside a contribution, in encoding order. */
export function collectRefs(value: unknown, into: Ref[] = []): Ref[] {
  if (isRef(value)) {
    into.push(value);
  } else if (Array.isArray(value)) {
    for (const item of value) collectRefs(item, into);
  } else if (typeof value === "object" && value !== null && !isSecret(value)) {
    for (const key of Object.keys(value).sort()) {
      collectRefs((value as Record<string, unknown>)[key], into);
    }
  }
  return into;
}

/**
 * Encode a contribution canonically. `resolve` gives the encoded form of each reference
 * (its digest). Throws a `TypeError` naming the path of a value JSON cannot carry.
 */
export function canonicalJson(value: unknown, resolve: (ref: Ref) => unknown, path = "$"): string {
  if (value === null || typeof value === "boolean" || typeof value === "string") {
    return JSON.stringify(value);
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError(`${path}: ${value} has no canonical encoding`);
    return JSON.stringify(value);
  }
  if (isRef(value)) return canonicalJson(resolve(value), resolve, path);
  if (isSecret(value)) {
    return canonicalJson(
      // A named variable counts by its name; `true` stays `true`, as tags made before it have.
      { $secret: value.id, mount: value.mount ?? null, asEnvVar: value.envVar ?? value.asEnvVar },
      resolve,
      path,
    );
  }
  if (Array.isArray(value)) {
    return `[${
      value.map((item, index) => canonicalJson(item, resolve, `${path}[${index}]`)).join(",")
    }]`;
  }
  if (typeof value === "object" && isPlainObject(value)) {
    const members = Object.keys(value).sort()
      .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
      .map((key) =>
        `${JSON.stringify(key)}:${
          canonicalJson((value as Record<string, unknown>)[key], resolve, `${path}.${key}`)
        }`
      );
    return `{${members.join(",")}}`;
  }
  throw new TypeError(`${path}: a ${typeof value} has no canonical encoding`);
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
