/**
 * The command line: commands, their flags, and the help that teaches them.
 *
 * @module
 */

import { envName, parseTags, SETTINGS } from "../config.ts";
import { UsageError } from "../errors.ts";
import { VERSION } from "../version.ts";

/** Flags every command may take. */
export interface Flags {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly push: boolean;
  readonly force: boolean;
  /** `build --no-append`: build every layer with the engine, none through the registry. */
  readonly noAppend: boolean;
  readonly image: readonly string[];
  readonly platform: readonly string[];
  /** Extra tags (`build --tag`), checked; none when absent or empty. */
  readonly tag?: readonly string[];
  readonly builder?: string;
  readonly registry?: string;
  readonly out?: string;
  /** `build`/`uri`/`dockerfile --locked`: refuse a missing or out-of-date imgtool.lock. */
  readonly locked: boolean;
  /** `lock --update`: move every entry to the digest its tag names today. */
  readonly update: boolean;
  /** The image to compare with (`explain --against REF`). */
  readonly against?: string;
}

/** A parsed command line. */
export type Command =
  | { readonly kind: "help"; readonly topic?: string }
  | { readonly kind: "version" }
  | {
    readonly kind: SpecCommand;
    readonly spec: string;
    readonly flags: Flags;
  }
  | { readonly kind: "init"; readonly dir: string; readonly flags: Flags };

/** The commands that take a spec file. */
type SpecCommand =
  | "build"
  | "dockerfile"
  | "uri"
  | "validate"
  | "status"
  | "lock"
  | "explain";

interface FlagSpec {
  readonly type: "boolean" | "string";
  readonly short?: string;
  readonly multiple?: boolean;
  readonly help: string;
  readonly value?: string;
}

const FLAGS: Record<string, FlagSpec> = {
  push: { type: "boolean", help: "push to the registry (multi-platform images become one index)" },
  force: { type: "boolean", help: "build even if the image already exists" },
  "no-append": {
    type: "boolean",
    help: "build every layer with the engine (default with --push: the last layers that only " +
      "add files or settings are appended through the registry)",
  },
  image: {
    type: "string",
    multiple: true,
    value: "NAME",
    help: "only this export (default for the default export); repeatable",
  },
  platform: {
    type: "string",
    multiple: true,
    value: "P",
    help: "linux/amd64, linux/arm64, or both comma-separated",
  },
  tag: {
    type: "string",
    multiple: true,
    value: "NAME",
    help: "also point NAME at the pushed image (needs --push); repeatable",
  },
  builder: {
    type: "string",
    value: "NAME",
    help: "builder plugin (docker, buildah; default: detect), or a [[builders]] engine",
  },
  registry: { type: "string", value: "REG", help: "registry for images that name none" },
  out: {
    type: "string",
    value: "DIR",
    help: "write the Dockerfile and its build context into DIR",
  },
  locked: {
    type: "boolean",
    help: "fail (exit 2) unless imgtool.lock pins every base by tag and is up to date",
  },
  update: { type: "boolean", help: "move every entry to the digest its tag names today" },
  against: {
    type: "string",
    value: "REF",
    help: "the image to compare with (default: the one this spec's last pushed build checked)",
  },
  json: { type: "boolean", help: "machine-readable output on stdout" },
  quiet: { type: "boolean", short: "q", help: "print results and errors only" },
  help: { type: "boolean", short: "h", help: "show help" },
};

const COMMAND_FLAGS: Record<string, readonly string[]> = {
  build: [
    "push",
    "force",
    "no-append",
    "tag",
    "locked",
    "image",
    "platform",
    "builder",
    "registry",
    "json",
    "quiet",
  ],
  dockerfile: ["image", "platform", "registry", "out", "locked", "json"],
  uri: ["image", "platform", "registry", "locked", "json"],
  lock: ["update", "image", "platform", "registry", "json", "quiet"],
  validate: ["image", "platform", "registry", "json"],
  status: ["image", "platform", "registry", "json", "quiet"],
  explain: ["image", "against", "platform", "registry", "json", "quiet"],
  init: ["json"],
};

const SUMMARIES: Record<string, string> = {
  build: "build every image of the spec that is missing (and push it with --push)",
  dockerfile: "print the Dockerfile of an image, or write it with its context (--out DIR)",
  uri: "print the URI of each image, one a line",
  validate: "check the spec and report every problem at once",
  status: "say whether each image is in the registry; exit 0 only when all are (a deploy gate)",
  lock: "pin every base image the spec uses by tag to its digest, in imgtool.lock beside it",
  explain: "why this tag? say what differs between the spec now and an image built before",
  init: "write a starter spec.ts, imgtool.toml and editor typing into DIR (never overwrites)",
};

/** Parse the command line. Throws a {@link UsageError} for a mistake in it. */
export function parseCommandLine(argv: readonly string[]): Command {
  const [first, ...rest] = argv;
  if (first === undefined || first === "help" || first === "--help" || first === "-h") {
    return { kind: "help", topic: first === "help" ? rest[0] : undefined };
  }
  if (first === "--version" || first === "-V" || first === "version") return { kind: "version" };
  if (!(first in COMMAND_FLAGS)) {
    throw new UsageError(`unknown command ${JSON.stringify(first)}`, {
      hint: `commands: ${Object.keys(COMMAND_FLAGS).join(", ")}; see imgtool --help`,
    });
  }
  const parsed = parseFlags(first, rest, [...COMMAND_FLAGS[first], "help"]);
  const values = parsed.values as Record<string, unknown>;
  if (values.help) return { kind: "help", topic: first };
  if (parsed.positionals.length > 1) {
    throw new UsageError(
      `${first} takes one ${
        first === "init" ? "folder" : "spec file"
      }, got ${parsed.positionals.length}`,
      {
        hint: `see imgtool ${first} --help`,
      },
    );
  }
  const flags: Flags = {
    json: values.json === true,
    quiet: values.quiet === true,
    push: values.push === true,
    force: values.force === true,
    noAppend: values["no-append"] === true,
    image: (values.image as string[] | undefined) ?? [],
    platform: ((values.platform as string[] | undefined) ?? []).flatMap((p) => p.split(",")).map((
      p,
    ) => p.trim())
      .filter(Boolean),
    builder: values.builder as string | undefined,
    tag: parseTags((values.tag as string[] | undefined) ?? [], "--tag"),
    registry: values.registry as string | undefined,
    out: values.out as string | undefined,
    locked: values.locked === true,
    update: values.update === true,
    against: values.against as string | undefined,
  };
  // A tag lives in a registry: without --push there is nothing to point it at, and a
  // request that silently does nothing would let a CI job believe `latest` moved.
  const [firstTag] = flags.tag ?? [];
  if (firstTag !== undefined && !flags.push) {
    throw new UsageError(`${first}: --tag ${firstTag} needs --push`, {
      hint: "tags point at the image in the registry: add --push, or drop --tag",
    });
  }
  if (first === "init") return { kind: "init", dir: parsed.positionals[0] ?? ".", flags };
  return {
    kind: first as SpecCommand,
    spec: parsed.positionals[0] ?? "spec.ts",
    flags,
  };
}

interface ParsedFlags {
  readonly values: Record<string, boolean | string | string[]>;
  readonly positionals: string[];
}

/**
 * Split `args` into flags and positionals: `--name`, `--name value`, `--name=value`, `-q`,
 * and `--` before positionals that start with a dash. Only the `allowed` flags are taken.
 */
function parseFlags(command: string, args: readonly string[], allowed: readonly string[]) {
  const parsed: ParsedFlags = { values: {}, positionals: [] };
  const mistake = (message: string) =>
    new UsageError(`${command}: ${message}`, { hint: `see imgtool ${command} --help` });
  for (let index = 0; index < args.length; index++) {
    const arg = args[index];
    if (arg === "--") {
      parsed.positionals.push(...args.slice(index + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      parsed.positionals.push(arg);
      continue;
    }
    const equals = arg.indexOf("=");
    const written = equals === -1 ? arg : arg.slice(0, equals);
    const name = written.startsWith("--")
      ? written.slice(2)
      : allowed.find((candidate) => `-${FLAGS[candidate].short}` === written);
    if (name === undefined || !allowed.includes(name)) {
      throw mistake(`unknown flag ${written}`);
    }
    const spec = FLAGS[name];
    if (spec.type === "boolean") {
      if (equals !== -1) throw mistake(`--${name} takes no value`);
      parsed.values[name] = true;
      continue;
    }
    let value: string;
    if (equals !== -1) value = arg.slice(equals + 1);
    else if (index + 1 < args.length && !args[index + 1].startsWith("-")) value = args[++index];
    else throw mistake(`--${name} needs a value: --${name} ${spec.value ?? "VALUE"}`);
    const before = parsed.values[name];
    parsed.values[name] = spec.multiple ? [...(Array.isArray(before) ? before : []), value] : value;
  }
  return parsed;
}

/** The help text, for all commands or one. */
export function helpText(topic?: string): string {
  if (topic !== undefined && topic in COMMAND_FLAGS) {
    const flags = COMMAND_FLAGS[topic].map((name) => {
      const spec = FLAGS[name];
      const left = `${spec.short ? `-${spec.short}, ` : "    "}--${name}${
        spec.value ? ` ${spec.value}` : ""
      }`;
      return `  ${left.padEnd(26)} ${spec.help}`;
    });
    const usage = topic === "init" ? "imgtool init [DIR]" : `imgtool ${topic} [SPEC] [flags]`;
    return [
      `${usage}\n`,
      `${SUMMARIES[topic]}.`,
      topic === "init" ? "" : "SPEC defaults to spec.ts in the working directory.",
      "",
      "Flags:",
      ...flags,
      "",
      EXAMPLES[topic] ?? "",
    ].join("\n").replace(/\n{3,}/g, "\n\n").trimEnd();
  }
  const commands = Object.entries(SUMMARIES).map(([name, text]) => `  ${name.padEnd(11)} ${text}`);
  const settings = SETTINGS.map((s) =>
    `  ${s.key.padEnd(20)} ${envName(s.key).padEnd(28)} ${s.describe}`
  );
  return `imgtool ${VERSION}: container images described in typed code

Usage: imgtool <command> [SPEC] [flags]

A spec is a TypeScript file that imports { Image } from "imgtool" and exports images:

  import { Image } from "imgtool";
  export default Image.fromDebianBase({ name: "app", registry: "ghcr.io/acme" })
    .withPipPackages(["numpy==2.1.0"])
    .withSourceFolder("./src", "/app/src");

Commands:
${commands.join("\n")}

Run imgtool <command> --help for its flags.

Exit status: 0 done; 1 a build, push or registry failure; 2 a mistake in the
command line or the spec.

Configuration: imgtool.toml next to the spec (or above it), overridden by
environment variables, overridden by flags:
  setting              variable                     meaning
${settings.join("\n")}
  plugins.<name>       -                            a plugin's own table
  [[builders]]         -                            a pool of engines to build on (see README)

Examples:
  imgtool build spec.ts --push          build what is missing and push it
  imgtool dockerfile spec.ts --image default
  imgtool uri spec.ts                   print each image's URI (no build)
  imgtool status spec.ts                exit 0 only when every image is in the registry
  imgtool explain spec.ts               what changed since the last pushed build?`;
}

const EXAMPLES: Record<string, string> = {
  build: `Examples:
  imgtool build spec.ts                  build into the local engine
  imgtool build spec.ts --push           build what the registry lacks, push it
  imgtool build spec.ts --push --platform linux/amd64,linux/arm64
  imgtool build spec.ts --image trainer --force --json
  imgtool build spec.ts --push --tag latest --tag v1.4.0

With [[builders]] entries in imgtool.toml (a pool of engines), the images and
their platforms are built in parallel, each platform on an engine that builds
it natively; --builder NAME picks one engine of the pool, or a plugin (no pool).

--tag NAME (and the tags setting, which --tag replaces) points NAME at the
image's manifest or index once its content tag is in the registry, built or
found: the manifest is put under NAME in the same repository, nothing is
rebuilt or uploaded again. It needs --push; a tags setting without --push is
noted and left unapplied.

With --push, each image built gets its provenance record pushed beside it (an
in-toto statement, SLSA provenance v1: what its tag covers, file by file, and its
base images by digest), which imgtool explain reads; an image whose record cannot
be pushed is reported failed.

What it remembers between runs, in $XDG_CACHE_HOME/imgtool (else ~/.cache/imgtool):
the digests of files unchanged since they were hashed (digests/), the digest and
platforms of each tag it checked (tags/), the tags each spec's last pushed
build checked, asked for first next time (checked/), and the engine of a pool
that built each image and platform last (engines/). It only saves work: a build
checks every tag it computes, each folder stays bounded, and deleting it is safe.`,
  dockerfile: `Examples:
  imgtool dockerfile spec.ts             print the Dockerfile of the only image
  imgtool dockerfile spec.ts --image default --out build/
  docker build build/                    (then build it with any tool)`,
  status: `Use it as a deploy gate: before deploying the images of a spec, ask whether
the registry has every one of them, for every platform, under the tag imgtool
computes for the spec as it is now. It asks the registry each time (never a
cache, never the local engine) and builds nothing.

Each image and platform is one line: exists, missing, or unknown when the
registry could not be asked (unreachable, refused, failing), with the reason.
Unknown never counts as exists. An existing image used as is (fromBase with no
layers) is looked up by its own reference.

Exit status: 0 when everything exists; 1 when something is missing or unknown;
2 for a mistake in the command line or the spec.

Examples:
  imgtool status spec.ts                 is everything built and pushed?
  imgtool status spec.ts --image trainer --platform linux/arm64
  imgtool status spec.ts --json          { ok, images: [{ image, uri, platforms }] }
  imgtool status spec.ts -q || imgtool build spec.ts --push`,
  explain: `Why this tag? What changed since REF? explain computes the image's
identity as the spec is now (every layer's plugin and version, options, the
settings it reads, and the SHA-256 of every file it takes from disk) and
compares it with the provenance record that build --push pushed beside REF
(found through the registry: its referrers API, else the sha256-<digest> tag of
the OCI referrers tag schema). It prints only what differs, a line each, naming
the layer (its place, the method you called, the spec line) and the change:

  layer 2 withPipPackages (spec.ts:6): option extraArgs: "--no-deps" → "--pre"
  layer 3 withSourceFolder (spec.ts:7): file changed: src/app.py
  layer 3 withSourceFolder (spec.ts:7): file added: src/new.py

Also: layers added or removed, platforms, the Python version, plugin and tool
versions, settings that count (from imgtool.toml or the environment), a base
image whose digest moved, files whose executable bit changed.

REF defaults to the URI the last build --push of this spec checked for the
image on this machine; --against REF works anywhere the registry can be
reached, with no other state. A REF with this spec's tag prints
"no difference: REF is this spec's tag".

Exit status: 0 when it printed the comparison; 1 when there is nothing to
compare with (REF is not in the registry, has no record, or no build is
remembered); 2 for a mistake in the command line or the spec.

Examples:
  imgtool explain spec.ts                since the last pushed build
  imgtool explain spec.ts --image trainer --against ghcr.io/acme/trainer:4f1c...
  imgtool explain spec.ts --json         { ok, images: [{ image, uri, against, differences }] }`,
  uri: `Examples:
  imgtool uri spec.ts
  imgtool uri spec.ts --image trainer --json`,
  validate: `Examples:
  imgtool validate spec.ts
  imgtool validate spec.ts --json        every problem as data`,
  init: `Examples:
  imgtool init                           in the working directory
  imgtool init my-image`,
};
