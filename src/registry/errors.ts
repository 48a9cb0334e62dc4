/**
 * Errors the registry client reports, and the redaction that keeps secrets out of them.
 *
 * @module
 */

import { ImgtoolError, UsageError } from "../errors.ts";

/**
 * What kind of registry failure happened, so callers can react without parsing messages:
 * - `unauthorized`: the registry or its token server rejected us (no or wrong credentials);
 * - `denied`: we are authenticated but not allowed (HTTP 403);
 * - `unreachable`: no usable answer (connection refused, DNS, TLS, timeout, or 5xx after retries);
 * - `not-found`: a manifest, blob or repository that must exist does not;
 * - `protocol`: the registry answered something this client cannot use.
 */
export type RegistryErrorKind =
  | "unauthorized"
  | "unreachable"
  | "not-found"
  | "protocol"
  | "denied";

/**
 * A registry failure (exit status 1). Its message names the registry and what was tried;
 * its hint says what to check. It never carries a credential, token or Authorization value.
 *
 * @example
 * ```ts
 * import { RegistryError } from "./errors.ts";
 * const error = new RegistryError("unreachable", "registry 127.0.0.1:5000 is unreachable", {
 *   registry: "127.0.0.1:5000",
 *   hint: "start the registry",
 * });
 * console.log(error.kind, error.exitCode); // unreachable 1
 * ```
 */
export class RegistryError extends ImgtoolError {
  /** What kind of failure this is. */
  readonly kind: RegistryErrorKind;
  /** The registry involved (`docker.io`, `127.0.0.1:5000`), when known. */
  readonly registry?: string;
  /** The HTTP status of the answer that caused the error, when there was one. */
  readonly status?: number;

  /** Make a registry error. */
  constructor(
    kind: RegistryErrorKind,
    message: string,
    options: { registry?: string; status?: number; hint?: string; cause?: unknown } = {},
  ) {
    super(message, { hint: options.hint, exitCode: 1, cause: options.cause });
    this.name = "RegistryError";
    this.kind = kind;
    this.registry = options.registry;
    this.status = options.status;
  }
}

/**
 * An image reference that does not parse (exit status 2: it is the user's mistake).
 *
 * @example
 * ```ts
 * import { InvalidReferenceError } from "./errors.ts";
 * const error = new InvalidReferenceError("Ubuntu", "repository name must be lowercase");
 * console.log(error.message); // invalid image reference "Ubuntu": repository name must be lowercase
 * ```
 */
export class InvalidReferenceError extends UsageError {
  /** The reference as the user wrote it. */
  readonly reference: string;

  /** Make an invalid-reference error; `reason` says what is wrong with it. */
  constructor(reference: string, reason: string, options: { hint?: string } = {}) {
    super(`invalid image reference ${JSON.stringify(reference)}: ${reason}`, {
      hint: options.hint ??
        "write it as [registry[:port]/]repository[:tag][@sha256:digest], " +
          "e.g. ubuntu:24.04 or 127.0.0.1:5000/team/app:1.0",
    });
    this.name = "InvalidReferenceError";
    this.reference = reference;
  }
}

/**
 * Credentials that could not be read: a malformed `config.json`, or a credential helper that
 * is missing or failed (exit status 1). Never carries the secret itself.
 *
 * @example
 * ```ts
 * import { CredentialsError } from "./errors.ts";
 * const error = new CredentialsError("credential helper docker-credential-pass is not installed", {
 *   hint: "install it, or remove it from credHelpers",
 * });
 * console.log(error.exitCode); // 1
 * ```
 */
export class CredentialsError extends ImgtoolError {
  /** Make a credentials error. */
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, { hint: options.hint, exitCode: 1, cause: options.cause });
    this.name = "CredentialsError";
  }
}

/**
 * Remembers every secret the client handled (passwords, tokens, encoded Authorization
 * values) and blanks them out of any text before it reaches an error or a log line, so that
 * a registry echoing our headers back cannot leak them.
 *
 * @example
 * ```ts
 * import { Redactor } from "./errors.ts";
 * const redactor = new Redactor();
 * redactor.add("s3cret");
 * console.log(redactor.redact("bad password s3cret")); // bad password ***
 * ```
 */
export class Redactor {
  #secrets = new Set<string>();

  /** Remember a secret; also its base64 form, which is how Basic auth carries it. */
  add(secret: string | undefined): void {
    // Very short values would blank ordinary words; a credential is never that short.
    if (secret === undefined || secret.length < 4) return;
    this.#secrets.add(secret);
    this.#secrets.add(encodeBase64(secret));
  }

  /** `text` with every remembered secret replaced by `***`. */
  redact(text: string): string {
    let out = text;
    // Longest first, so a secret containing another is blanked whole.
    const secrets = [...this.#secrets].sort((a, b) => b.length - a.length);
    for (const secret of secrets) out = out.replaceAll(secret, "***");
    return out;
  }
}

/**
 * Base64 of a UTF-8 string (what `Authorization: Basic` carries).
 *
 * @example
 * ```ts
 * import { encodeBase64 } from "./errors.ts";
 * console.log(encodeBase64("user:pass")); // dXNlcjpwYXNz
 * ```
 */
export function encodeBase64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}
