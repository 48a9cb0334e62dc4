/**
 * The facts of the end-to-end environment (`tests/e2e/env.sh up` writes them as KEY=value
 * lines) and the imgtool.toml of a project built in it. Loading this module does nothing:
 * the tests (through `harness.ts`, which also probes the environment) and the benchmarks
 * share it.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The facts file env.sh writes: `$IMGTOOL_E2E_ENV_FILE`, else `env` in its work folder. */
export const ENV_FILE: string = Deno.env.get("IMGTOOL_E2E_ENV_FILE") ??
  join(
    Deno.env.get("IMGTOOL_E2E_WORK") || fileURLToPath(new URL("./.work", import.meta.url)),
    "env",
  );

/** The facts of the environment (the KEY=value lines of the facts file). */
export interface Facts {
  readonly REGISTRY: string;
  readonly AUTH_REGISTRY: string;
  readonly AUTH_USER: string;
  readonly AUTH_PASSWORD: string;
  readonly PYTHON_BASE: string;
  readonly AUTH_PYTHON_BASE: string;
  /** Debian without Python (index amd64 + arm64). */
  readonly DEBIAN_BASE: string;
  /** The Python base with a user `app` that it runs as, owning a venv on PATH (amd64). */
  readonly NONROOT_BASE: string;
  readonly PACKAGE_INDEX: string;
  readonly POETRY_FIXTURE: string;
  readonly DOCKER: string;
}

const REQUIRED_FACTS: readonly (keyof Facts)[] = [
  "REGISTRY",
  "AUTH_REGISTRY",
  "AUTH_USER",
  "AUTH_PASSWORD",
  "PYTHON_BASE",
  "AUTH_PYTHON_BASE",
  "DEBIAN_BASE",
  "NONROOT_BASE",
  "PACKAGE_INDEX",
  "POETRY_FIXTURE",
  "DOCKER",
];

/** Read the facts file; a text saying what is wrong when it is missing or incomplete. */
export async function readFacts(): Promise<Facts | string> {
  let text;
  try {
    text = await Deno.readTextFile(ENV_FILE);
  } catch {
    return `${ENV_FILE} is missing`;
  }
  const facts: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (match) facts[match[1]] = match[2];
  }
  const missing = REQUIRED_FACTS.filter((key) => !facts[key]);
  if (missing.length > 0) return `${ENV_FILE} lacks ${missing.join(", ")}`;
  return facts as unknown as Facts;
}

/** The Python base pattern of imgtool.toml (`[images] python`) for the environment's base. */
export function pythonImagePattern(facts: Facts): string {
  const pattern = facts.PYTHON_BASE.replace(/:3\.11-/, ":{major}.{minor}-");
  if (pattern === facts.PYTHON_BASE) throw new Error(`unexpected PYTHON_BASE ${facts.PYTHON_BASE}`);
  return pattern;
}

/** The imgtool.toml of a project: the local registry and mirrors, pip, no extra packages. */
export function projectConfig(facts: Facts, registry: string, extra = ""): string {
  return [
    `registry = ${JSON.stringify(registry)}`,
    `python-version = "3.11"`,
    "",
    "[images]",
    `python = ${JSON.stringify(pythonImagePattern(facts))}`,
    "",
    "[python]",
    `installer = "pip"`,
    "",
    "[debian]",
    "packages = []",
    "",
    "[docker]",
    `client = ${JSON.stringify(facts.DOCKER)}`,
    "",
    extra,
  ].join("\n");
}
