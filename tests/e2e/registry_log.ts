/**
 * What a registry of the end-to-end environment was asked, read from its access log
 * (`logs/registry.log` and `logs/auth-registry.log` in env.sh's work folder): the registry's
 * own account of a run, for what neither imgtool's output nor a builder's can show (that a
 * pull carried credentials, that a check cost one request).
 *
 * @module
 */

import { dirname, join } from "node:path";
import { ENV_FILE, type Facts } from "./facts.ts";

/**
 * One request as the registry logged it.
 *
 * @example
 * ```ts
 * import type { LoggedRequest } from "./registry_log.ts";
 * const head: LoggedRequest = {
 *   method: "HEAD",
 *   path: "/v2/team/app/manifests/1.0",
 *   status: 200,
 *   userAgent: "imgtool",
 * };
 * console.log(head.status); // 200
 * ```
 */
export interface LoggedRequest {
  /** The HTTP method. */
  readonly method: string;
  /** The path, with its query. */
  readonly path: string;
  /** The status the registry answered. */
  readonly status: number;
  /** The client's User-Agent. */
  readonly userAgent: string;
}

// Distribution's access log: `127.0.0.1 - - [date] "HEAD /v2/... HTTP/1.1" 200 491 "" "agent"`.
const ACCESS_LINE =
  /^\S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+) HTTP\/[\d.]+" (\d{3}) \S+ "[^"]*" "(.*)"$/;

/**
 * The requests of the access log lines in `text`, other log lines left out.
 *
 * @example
 * ```ts
 * import { parseAccessLog } from "./registry_log.ts";
 * const log = 'time="2026-12-03T11:01:49Z" level=info msg="response completed"\n' +
 *   '127.0.0.1 - - [03/Dec/2026:11:01:49 +0000] ' +
 *   '"HEAD /v2/team/app/manifests/1.0 HTTP/1.1" 200 491 "" "imgtool"\n';
 * const [request] = parseAccessLog(log);
 * console.log(request.method, request.path); // HEAD /v2/team/app/manifests/1.0
 * ```
 */
export function parseAccessLog(text: string): LoggedRequest[] {
  return text.split("\n").flatMap((line) => {
    const match = ACCESS_LINE.exec(line);
    if (!match) return [];
    const [, method, path, status, userAgent] = match;
    return [{ method, path, status: Number(status), userAgent }];
  });
}

/**
 * The log of one of env.sh's registries, read from a point on.
 *
 * @example
 * ```ts
 * import type { Facts } from "./facts.ts";
 * import { RegistryLog } from "./registry_log.ts";
 * // Did `run` cost the registry exactly one request, a HEAD?
 * async function oneHead(facts: Facts, run: () => Promise<void>): Promise<boolean> {
 *   const log = await RegistryLog.from(facts, "registry");
 *   await run();
 *   const asked = await log.since();
 *   return asked.length === 1 && asked[0].method === "HEAD";
 * }
 * ```
 */
export class RegistryLog {
  readonly #file: string;
  readonly #offset: number;

  private constructor(file: string, offset: number) {
    this.#file = file;
    this.#offset = offset;
  }

  /**
   * Start reading the log of the registry env.sh calls `name` (`registry` on
   * `facts.REGISTRY`, `auth-registry` on `facts.AUTH_REGISTRY`) from its present end.
   */
  static async from(facts: Facts, name: "registry" | "auth-registry"): Promise<RegistryLog> {
    const work = (facts as unknown as Record<string, string | undefined>).E2E_WORK ||
      dirname(ENV_FILE);
    const file = join(work, "logs", `${name}.log`);
    return new RegistryLog(file, (await Deno.stat(file)).size);
  }

  /** The requests logged since {@link RegistryLog.from}. */
  async since(): Promise<LoggedRequest[]> {
    // The registry logs a request once it has answered it: give the last line time to land.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const bytes = await Deno.readFile(this.#file);
    return parseAccessLog(new TextDecoder().decode(bytes.subarray(this.#offset)));
  }
}
