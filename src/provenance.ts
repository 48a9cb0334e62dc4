/**
 * The provenance record that travels with every image `imgtool build --push` pushes: an
 * in-toto statement (v1) whose subject is the pushed image (its repository and the digest of
 * its manifest or index) and whose predicate is SLSA provenance v1. The build's parameters
 * are the image's identity tree (`./identity_tree.ts`), the resolved dependencies its base
 * images, by the digest their registry named when the record was started (as the build
 * began, or right after it).
 *
 * It is pushed beside the image, in the same repository, as an OCI artifact that refers to
 * it: a manifest whose config is the empty descriptor (`{}`), whose one layer is the
 * statement (`application/vnd.in-toto+json`, also its `artifactType`), and whose `subject` is
 * the image. It is found through the registry's referrers API where the registry has one;
 * where it has not (Distribution 2.8, on this project's machines), the artifact is added to
 * the index under the referrers tag schema's tag (`sha256-<hex of the image's digest>`), as
 * the OCI distribution spec has clients do.
 *
 * The record holds no secret value (secrets count by name), no absolute path, no user or host
 * name of the machine, and no time: the same image and tree make the same record, byte for
 * byte, so pushing it again changes nothing.
 *
 * What does not need the image (the tree, the dependencies, the predicate's bytes) is made
 * while the image is built ({@link startProvenance}); once it is pushed, only the check that
 * its files did not change, the statement's subject and the pushes are left.
 *
 * @module
 */

import { ImgtoolError, systemError } from "./errors.ts";
import { writeAllSync } from "./fs.ts";
import { fastSha256 } from "./libcrypto.ts";
import { identify, type ImageIdentity, imagesUsed } from "./identify.ts";
import {
  type IdentityTree,
  type JsonPiece,
  type ListedTree,
  listedTree,
  textPiece,
  TREE_FORMAT,
  treePieces,
  writeJson,
  writeJsonTo,
} from "./identity_tree.ts";
import type { ImagePlan } from "./plan.ts";
import type { RegistryClient } from "./registry/client.ts";
import {
  type Descriptor,
  IN_TOTO,
  OCI_EMPTY,
  OCI_EMPTY_DIGEST,
  OCI_MANIFEST,
  referrersTag,
} from "./registry/manifest.ts";
import { concatBytes, sha256Digest } from "./registry/bytes.ts";
import { parseReference } from "./registry/reference.ts";
import { VERSION } from "./version.ts";
import { collectGarbage, madeGarbage } from "./garbage.ts";

/** The in-toto statement type. */
export const STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
/** The SLSA provenance predicate type. */
export const SLSA_PROVENANCE = "https://slsa.dev/provenance/v1";
/**
 * The build type of imgtool's records: what `externalParameters` hold (`tag` and `identity`,
 * an identity tree). Bump the version when that changes meaning.
 *
 * @example
 * ```ts
 * import { BUILD_TYPE } from "./provenance.ts";
 * console.log(BUILD_TYPE); // urn:imgtool:build-type:image:v1
 * ```
 */
export const BUILD_TYPE = "urn:imgtool:build-type:image:v1";
/** The builder of imgtool's records (its version goes beside it). */
export const BUILDER_ID = "urn:imgtool:builder:imgtool";

/** The annotation that names a record's predicate type, on the artifact and its layer. */
const PREDICATE_ANNOTATION = "in-toto.io/predicate-type";
const EMPTY_JSON = new TextEncoder().encode("{}");
const encoder = new TextEncoder();
/** The largest statement read back (a tree of 20,000 files takes some 3 MB). */
const MAX_STATEMENT_BYTES = 64 * 1024 * 1024;

/**
 * An image the build started from or copied from, with the digest its registry named.
 *
 * @example
 * ```ts
 * import type { Dependency } from "./provenance.ts";
 * const base: Dependency = { reference: "python:3.12-slim-bookworm", digest: `sha256:${"0".repeat(64)}` };
 * console.log(base.reference); // python:3.12-slim-bookworm
 * ```
 */
export interface Dependency {
  /** The reference, as the spec (or the lock) names it. */
  readonly reference: string;
  /** `sha256:...`, when known. */
  readonly digest?: string;
}

/**
 * A provenance record: an in-toto statement with a SLSA provenance v1 predicate.
 *
 * @example
 * ```ts
 * import type { ProvenanceStatement } from "./provenance.ts";
 * function tagOf(statement: ProvenanceStatement): string {
 *   return statement.predicate.buildDefinition.externalParameters.tag;
 * }
 * console.log(typeof tagOf); // function
 * ```
 */
export interface ProvenanceStatement {
  readonly _type: string;
  readonly subject: readonly { readonly name: string; readonly digest: Record<string, string> }[];
  readonly predicateType: string;
  readonly predicate: {
    readonly buildDefinition: {
      readonly buildType: string;
      readonly externalParameters: { readonly tag: string; readonly identity: IdentityTree };
      readonly resolvedDependencies: readonly {
        readonly name: string;
        readonly uri: string;
        readonly digest?: Record<string, string>;
      }[];
    };
    readonly runDetails: {
      readonly builder: { readonly id: string; readonly version: Record<string, string> };
    };
  };
}

/**
 * The record of an image: `repository` (its name without a tag) and `digest` (of its
 * manifest or index), the `tag` imgtool computed, its identity tree and its dependencies.
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage } from "imgtool";
 * import { identityTree } from "./identity_tree.ts";
 * import { provenanceStatement } from "./provenance.ts";
 * const plan = planImage(Image.fromBase("debian:bookworm").withWorkdir("/app"), "default", defaultConfig());
 * const statement = provenanceStatement({
 *   repository: "127.0.0.1:5000/team/app",
 *   digest: `sha256:${"a".repeat(64)}`,
 *   tag: "0123abcd",
 *   tree: await identityTree(plan, "/work/app/spec.ts"),
 *   dependencies: [{ reference: "debian:bookworm" }],
 * });
 * console.log(statement.subject[0].name, statement.predicateType); // 127.0.0.1:5000/team/app https://slsa.dev/provenance/v1
 * console.log(statement.subject[0].digest.sha256 === "a".repeat(64)); // true
 * ```
 */
export function provenanceStatement(input: {
  readonly repository: string;
  readonly digest: string;
  readonly tag: string;
  readonly tree: IdentityTree;
  readonly dependencies: readonly Dependency[];
}): ProvenanceStatement {
  return { ...statementHead(input.repository, input.digest), predicate: predicateOf(input) };
}

/** A statement but its predicate, which comes last: its keys in the statement's order. */
function statementHead(
  repository: string,
  digest: string,
): Omit<ProvenanceStatement, "predicate"> {
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: repository, digest: digestSet(digest) }],
    predicateType: SLSA_PROVENANCE,
  };
}

/** The predicate of the record of an image of tag `tag`: nothing of the image pushed. */
function predicateOf(input: {
  readonly tag: string;
  readonly tree: IdentityTree;
  readonly dependencies: readonly Dependency[];
}): ProvenanceStatement["predicate"] {
  return {
    buildDefinition: {
      buildType: BUILD_TYPE,
      externalParameters: { tag: input.tag, identity: input.tree },
      resolvedDependencies: input.dependencies.map((dependency) => ({
        name: dependency.reference,
        uri: `oci://${dependency.reference}`,
        ...(dependency.digest ? { digest: digestSet(dependency.digest) } : {}),
      })),
    },
    runDetails: { builder: { id: BUILDER_ID, version: { imgtool: VERSION } } },
  };
}

/**
 * The statement's bytes before its predicate: its head, as `JSON.stringify` of the whole
 * would write it.
 */
function headBytes(repository: string, digest: string): Uint8Array {
  const head = JSON.stringify(statementHead(repository, digest));
  return encoder.encode(`${head.slice(0, -1)},"predicate":`);
}

/** A digest of the length an image's digest has: its head takes as many bytes as the image's. */
const SHA256_SHAPED = `sha256:${"0".repeat(64)}`;

/**
 * A statement but its head, which needs the image's digest ({@link predicateBytes}). A small
 * one is written at once, into bytes with room for its head before the predicate: the head
 * is written into that room once the digest is known, and the statement is never copied. A
 * large one (a tree of thousands of files) stays as the pieces of its JSON, written at push
 * time into a temporary file, from which it is uploaded ({@link writeStatementFile}): it is
 * never whole in memory.
 */
type StatementDraft =
  | {
    /** The bytes: `room` bytes for the head, then the predicate and the statement's `}`. */
    readonly bytes: Uint8Array;
    readonly room: number;
    readonly end: number;
  }
  | {
    /** The predicate's JSON and the statement's `}`, to be written after the head. */
    readonly pieces: readonly JsonPiece[];
  };

/** From this size (at most) on, a predicate is written at push time, into a file. */
const STATEMENT_IN_MEMORY_BYTES = 1 << 20;

/**
 * The statement of `draft` for the image of `digest`, as `JSON.stringify` of the whole would
 * write it: its head written into the room left for it (a head of another length, from a
 * digest that is not SHA-256, is copied in front instead).
 */
function statementBytes(
  repository: string,
  digest: string,
  draft: Extract<StatementDraft, { bytes: Uint8Array }>,
): Uint8Array {
  const head = headBytes(repository, digest);
  const body = draft.bytes.subarray(draft.room, draft.end);
  if (head.length !== draft.room) return concatBytes([head, body]);
  draft.bytes.set(head, 0);
  return draft.bytes.subarray(0, draft.end);
}

/**
 * Write the statement of `draft` for the image of `digest` into a new temporary file, hashing
 * it as it goes; its path, digest and size. The caller removes the file.
 */
async function writeStatementFile(
  repository: string,
  digest: string,
  draft: Extract<StatementDraft, { pieces: readonly JsonPiece[] }>,
): Promise<{ path: string; digest: string; size: number }> {
  const hash = (await fastSha256())();
  const doing = "writing the provenance record to a temporary file";
  let path: string;
  try {
    path = await Deno.makeTempFile({ prefix: "imgtool-statement-", suffix: ".json" });
  } catch (error) {
    throw systemError(error, { doing }) ?? error;
  }
  let size = 0;
  try {
    using file = Deno.openSync(path, { write: true });
    const sink = (bytes: Uint8Array) => {
      hash.update(bytes);
      writeAllSync(file, bytes);
      size += bytes.length;
    };
    sink(headBytes(repository, digest));
    writeJsonTo(draft.pieces, sink);
  } catch (error) {
    await Deno.remove(path).catch(() => {});
    throw systemError(error, { doing }) ?? error;
  }
  return { path, digest: `sha256:${hash.digest("hex")}`, size };
}

/** `sha256:hex` as an in-toto digest set, `{ sha256: hex }`. */
function digestSet(digest: string): Record<string, string> {
  const colon = digest.indexOf(":");
  return { [digest.slice(0, colon)]: digest.slice(colon + 1) };
}

/**
 * Where a record went: the artifact's digest, and how it is found (`api`: the registry's
 * referrers API lists it; `tag`: the referrers tag schema's index does).
 *
 * @example
 * ```ts
 * import type { PushedRecord } from "./provenance.ts";
 * const pushed: PushedRecord = { digest: `sha256:${"b".repeat(64)}`, via: "tag" };
 * console.log(pushed.via); // tag
 * ```
 */
export interface PushedRecord {
  /** The digest of the artifact manifest. */
  readonly digest: string;
  /** How the artifact is found. */
  readonly via: "api" | "tag";
}

/**
 * Push `statement` beside the image `subject` describes, in `repository` (the image's name
 * without a tag), as an OCI artifact that refers to it, and make it findable (see the
 * module's documentation).
 *
 * @example
 * ```ts
 * import { RegistryClient } from "./registry/client.ts";
 * import { pushProvenance, type ProvenanceStatement } from "./provenance.ts";
 * import type { Descriptor } from "./registry/manifest.ts";
 * async function attach(client: RegistryClient, image: Descriptor, statement: ProvenanceStatement) {
 *   return (await pushProvenance(client, "127.0.0.1:5000/team/app", image, statement)).via;
 * }
 * console.log(typeof attach); // function
 * ```
 */
export async function pushProvenance(
  registry: RegistryClient,
  repository: string,
  subject: Descriptor,
  statement: ProvenanceStatement,
): Promise<PushedRecord> {
  return await pushStatement(
    registry,
    repository,
    subject,
    encoder.encode(JSON.stringify(statement)),
  );
}

/** {@link pushProvenance}, of a statement's bytes. */
async function pushStatement(
  registry: RegistryClient,
  repository: string,
  subject: Descriptor,
  statement: Uint8Array | { path: string; digest: string; size: number },
): Promise<PushedRecord> {
  // The two blobs and the look at the referrers wait on nothing of each other. The referrers
  // tag schema's index is not touched by the artifact's manifest, so it may be read before.
  const [, layer, { via, manifests }] = await Promise.all([
    registry.pushBlob(repository, EMPTY_JSON),
    statement instanceof Uint8Array
      ? registry.pushBlob(repository, statement)
      : registry.pushBlobFile(repository, statement),
    registry.referrers(repository, subject.digest),
  ]);
  const annotations = { [PREDICATE_ANNOTATION]: SLSA_PROVENANCE };
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: IN_TOTO,
    config: { mediaType: OCI_EMPTY, digest: OCI_EMPTY_DIGEST, size: EMPTY_JSON.length },
    layers: [{ mediaType: IN_TOTO, digest: layer.digest, size: layer.size, annotations }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations,
  };
  const body = encoder.encode(JSON.stringify(manifest));
  const digest = await sha256Digest(body);
  await registry.putManifest(`${repository}@${digest}`, body, OCI_MANIFEST);
  // A registry with the referrers API lists the artifact by its subject: nothing more to do.
  if (via === "api") return { digest, via };
  if (!manifests.some((listed) => listed.digest === digest)) {
    await registry.addReferrer(repository, subject.digest, {
      mediaType: OCI_MANIFEST,
      digest,
      size: body.length,
      artifactType: IN_TOTO,
      annotations,
    });
  }
  return { digest, via };
}

/**
 * A record found in the registry: the statement, the artifact that holds it, and how it was
 * found.
 *
 * @example
 * ```ts
 * import type { FoundRecord } from "./provenance.ts";
 * function treeOf(found: FoundRecord) {
 *   return found.statement.predicate.buildDefinition.externalParameters.identity;
 * }
 * console.log(typeof treeOf); // function
 * ```
 */
export interface FoundRecord {
  /** The statement. */
  readonly statement: ProvenanceStatement;
  /** The digest of the image it is about. */
  readonly subject: string;
  /** The digest of the artifact manifest. */
  readonly digest: string;
  /** How it was found. */
  readonly via: "api" | "tag";
}

/**
 * The provenance record imgtool pushed for the image `reference` names, read through the
 * registry (its referrers API, else the referrers tag schema); the newest when there are
 * several. `undefined` when the image has none; an {@link ImgtoolError} (exit 1) when the
 * registry does not have the image.
 *
 * @example
 * ```ts
 * import { RegistryClient } from "./registry/client.ts";
 * import { fetchProvenance } from "./provenance.ts";
 * async function tagOf(client: RegistryClient, uri: string) {
 *   const found = await fetchProvenance(client, uri);
 *   return found?.statement.predicate.buildDefinition.externalParameters.tag ?? "no record";
 * }
 * console.log(typeof tagOf); // function
 * ```
 */
export async function fetchProvenance(
  registry: RegistryClient,
  reference: string,
): Promise<FoundRecord | undefined> {
  const image = await registry.getManifest(reference);
  if (!image) {
    throw new ImgtoolError(`${reference} is not in the registry`, {
      hint: "check the reference (the URI a build printed, or `imgtool uri`), and that it " +
        "was pushed to this registry",
    });
  }
  const ref = parseReference(reference);
  const repository = `${ref.registry}/${ref.repository}`;
  const { via, manifests } = await registry.referrers(repository, image.digest);
  const records = manifests.filter((listed) =>
    listed.artifactType === IN_TOTO &&
    (listed.annotations?.[PREDICATE_ANNOTATION] ?? SLSA_PROVENANCE) === SLSA_PROVENANCE
  );
  // The newest first: the tag schema's index lists them in the order they were pushed.
  for (const listed of records.reverse()) {
    const statement = await readStatement(registry, repository, listed.digest);
    if (statement && isRecordOf(statement, image.digest)) {
      return { statement, subject: image.digest, digest: listed.digest, via };
    }
  }
  return undefined;
}

/** The statement an artifact holds; `undefined` when it holds none imgtool can read. */
async function readStatement(
  registry: RegistryClient,
  repository: string,
  digest: string,
): Promise<ProvenanceStatement | undefined> {
  const artifact = await registry.getManifest(`${repository}@${digest}`);
  const layers = (artifact?.json as { layers?: unknown })?.layers;
  if (!Array.isArray(layers)) return undefined;
  const layer = layers.find((entry) => entry?.mediaType === IN_TOTO);
  if (typeof layer?.digest !== "string") return undefined;
  const bytes = await registry.getBlob(repository, layer.digest, {
    maxBytes: MAX_STATEMENT_BYTES,
  });
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return undefined;
  }
}

/** Is `statement` one of imgtool's records, about the image `digest`? */
function isRecordOf(statement: ProvenanceStatement, digest: string): boolean {
  const subject = statement?.subject?.[0]?.digest;
  const [algorithm, hex] = digest.split(":");
  const definition = statement?.predicate?.buildDefinition;
  return statement._type === STATEMENT_TYPE && statement.predicateType === SLSA_PROVENANCE &&
    typeof definition?.buildType === "string" &&
    definition.buildType.startsWith(BUILD_TYPE.slice(0, BUILD_TYPE.lastIndexOf(":") + 1)) &&
    subject?.[algorithm] === hex &&
    definition.externalParameters?.identity?.format === TREE_FORMAT;
}

/**
 * The record of an image being built, started by {@link startProvenance}: {@link push} it
 * once the image is pushed.
 *
 * @example
 * ```ts
 * import type { ProvenanceRecording } from "./provenance.ts";
 * async function afterPush(recording: ProvenanceRecording) {
 *   return (await recording.push()).digest;
 * }
 * console.log(typeof afterPush); // function
 * ```
 */
export interface ProvenanceRecording {
  /**
   * Once the image is pushed: check that the files it takes from disk did not change while
   * it was built, and push its record beside it (see {@link recordProvenance}, which fails
   * alike). `image` is the image's descriptor when the caller knows it (else the registry
   * is asked for it). Asked again, it gives the same answer: the record is pushed once.
   */
  push(image?: Descriptor, options?: RecordPushOptions): Promise<PushedRecord>;
}

/**
 * How {@link ProvenanceRecording.push} may finish a record.
 *
 * @example
 * ```ts
 * import type { ProvenanceRecording, RecordPushOptions } from "./provenance.ts";
 * // An image appended onto a prefix found in the registry, its files checked as they went in.
 * const checked: RecordPushOptions = { filesChecked: true };
 * async function afterAppend(recording: ProvenanceRecording) {
 *   return await recording.push(undefined, checked);
 * }
 * console.log(typeof afterAppend); // function
 * ```
 */
export interface RecordPushOptions {
  /**
   * Every file the image took from disk went in checked against the digest its tag was
   * computed from (an image appended through the registry onto a prefix that was found
   * there, not built: `./append.ts` checks each file as it reads it, and copies only groups
   * keyed by those digests). Its content is then what its tag says whatever happened to the
   * files since, so the walk that looks for changes after the build is not made.
   */
  readonly filesChecked?: boolean;
}

/**
 * Before `build --push` builds an image: start its record (see the module's documentation)
 * with what does not need the image, to be finished by {@link ProvenanceRecording.push} once
 * the image is pushed. The tree is listed from the walks the identity made (the tree its tag
 * was computed over; the check after the build tells that the files are still those); the
 * base images' digests are asked for, and the predicate is written. A build that fails
 * leaves it unfinished, and what failed in it unheard. `specFile` is the spec's absolute path
 * (the tree's paths are relative to its folder); `progress` hears a line about it.
 *
 * @example
 * ```ts
 * import type { ImageIdentity } from "./identify.ts";
 * import type { ImagePlan } from "./plan.ts";
 * import { RegistryClient } from "./registry/client.ts";
 * import { startProvenance } from "./provenance.ts";
 * async function buildAndPush(
 *   client: RegistryClient,
 *   plan: ImagePlan,
 *   identity: ImageIdentity,
 *   build: () => Promise<void>,
 * ) {
 *   const recording = startProvenance(client, plan, identity, "/work/app/spec.ts", console.error);
 *   await build();
 *   return await recording.push();
 * }
 * console.log(typeof buildAndPush); // function
 * ```
 */
export function startProvenance(
  registry: RegistryClient,
  plan: ImagePlan,
  identity: ImageIdentity,
  specFile: string,
  progress: (line: string) => void = () => {},
): ProvenanceRecording {
  const predicate = predicateBytes(
    repositoryOf(identity),
    identity.tag,
    listedTree(plan, specFile, { afterIdentify: true }),
    resolveDependencies(registry, plan),
  );
  // Heard by `push`; a build that fails never asks for it.
  predicate.catch(() => {});
  let pushed: Promise<PushedRecord> | undefined;
  return {
    push: (image, options) =>
      pushed ??= finishRecord(registry, plan, identity, {
        predicate: () => predicate,
        image,
        filesChecked: options?.filesChecked ?? false,
        progress,
      }),
  };
}

/**
 * After `build --push` built and pushed an image: make its record and push it beside it
 * (see the module's documentation). `specFile` is the spec's absolute path (the tree's
 * paths are relative to its folder); `progress` hears a line about it. A build that can
 * start the record before the image is built does so ({@link startProvenance}).
 *
 * A record that cannot be pushed fails the image (exit 1): the record is what `imgtool
 * explain` reads on any machine, and a build that ends well without it would leave the image
 * without one for good (a later build finds the image and skips it). So does a file that
 * changed while the image was built: the tag and the image's content may then disagree, and
 * the record would describe neither.
 *
 * @example
 * ```ts
 * import type { ImageIdentity } from "./identify.ts";
 * import type { ImagePlan } from "./plan.ts";
 * import { RegistryClient } from "./registry/client.ts";
 * import { recordProvenance } from "./provenance.ts";
 * async function afterPush(client: RegistryClient, plan: ImagePlan, identity: ImageIdentity) {
 *   await recordProvenance(client, plan, identity, "/work/app/spec.ts", console.error);
 * }
 * console.log(typeof afterPush); // function
 * ```
 */
export async function recordProvenance(
  registry: RegistryClient,
  plan: ImagePlan,
  identity: ImageIdentity,
  specFile: string,
  progress: (line: string) => void = () => {},
): Promise<PushedRecord> {
  const dependencies = resolveDependencies(registry, plan);
  dependencies.catch(() => {});
  return await finishRecord(registry, plan, identity, {
    // Listed from the walks the check has just made: the tree the check found.
    predicate: () =>
      predicateBytes(
        repositoryOf(identity),
        identity.tag,
        listedTree(plan, specFile, { afterIdentify: true }),
        dependencies,
      ),
    progress,
  });
}

/**
 * The JSON of the predicate of a record, as `JSON.stringify` writes it with the tree
 * `identityTree` makes of the same listing (`./identity_tree.ts`), written with the tree's
 * pieces ({@link treePieces}: no object per file) into one array, after room for the
 * statement's head, and followed by the statement's closing `}` ({@link StatementDraft}).
 */
async function predicateBytes(
  repository: string,
  tag: string,
  listed: Promise<ListedTree>,
  resolving: Promise<Dependency[]>,
): Promise<StatementDraft> {
  // Heard below, once the tree is listed.
  resolving.catch(() => {});
  const tree = await listed;
  // The tree stands as a string nothing else in the predicate can hold (a fresh random
  // name) while the rest is written; then its JSON goes in its place.
  const marker = `imgtool-tree-${crypto.randomUUID()}`;
  const dependencies = await resolving;
  const [before, after] = JSON.stringify(
    predicateOf({ tag, tree: marker as unknown as IdentityTree, dependencies }),
  ).split(`"${marker}"`);
  const pieces = [textPiece(before), ...treePieces(tree), textPiece(`${after}}`)];
  madeGarbage(tree.layers.reduce((sum, layer) => sum + layer.files.size, 0));
  if (pieces.reduce((sum, piece) => sum + piece.room, 0) >= STATEMENT_IN_MEMORY_BYTES) {
    return { pieces };
  }
  const room = headBytes(repository, SHA256_SHAPED).length;
  const out = writeJson(pieces, room);
  // What writing it left behind goes before the statement is pushed.
  collectGarbage();
  return { bytes: out.bytes, room, end: out.at };
}

/** The repository of an image: its URI without the tag. */
function repositoryOf(identity: ImageIdentity): string {
  return identity.uri.slice(0, identity.uri.lastIndexOf(":"));
}

/**
 * The rest of a record once its image is pushed: the check that the files did not change
 * (after the build, unless `record.filesChecked` says the image went in checked), then the image's descriptor (asked for while the files are
 * looked at, unless `record.image` gives it), the statement, and the pushes.
 */
async function finishRecord(
  registry: RegistryClient,
  plan: ImagePlan,
  identity: ImageIdentity,
  record: {
    readonly predicate: () => Promise<StatementDraft>;
    readonly image?: Descriptor;
    readonly filesChecked?: boolean;
    readonly progress: (line: string) => void;
  },
): Promise<PushedRecord> {
  const repository = repositoryOf(identity);
  const failed = (reason: string, hint: string, cause?: unknown) =>
    new ImgtoolError(
      `${identity.uri} was pushed, but its provenance record was not: ${reason}`,
      { hint, cause },
    );
  const subject: Promise<Descriptor | undefined> = record.image
    ? Promise.resolve(record.image)
    : registry.getManifest(identity.uri);
  // Heard below, unless the check fails first.
  subject.catch(() => {});
  if (!record.filesChecked && (await identify(plan)).tag !== identity.tag) {
    throw failed(
      "files it takes from disk changed while it was built, so its content may not be what " +
        "its tag says",
      "leave the spec's files alone during the build, then build again with --force",
    );
  }
  const predicate = await record.predicate();
  try {
    const image = await subject;
    if (!image) throw new ImgtoolError("the registry does not have the image it just pushed");
    let pushed: PushedRecord;
    if ("bytes" in predicate) {
      const bytes = statementBytes(repository, image.digest, predicate);
      pushed = await pushStatement(registry, repository, image, bytes);
    } else {
      const file = await writeStatementFile(repository, image.digest, predicate);
      try {
        pushed = await pushStatement(registry, repository, image, file);
      } finally {
        await Deno.remove(file.path).catch(() => {});
      }
    }
    record.progress(
      `provenance record ${pushed.digest.slice(0, 19)} pushed (found through the ${
        pushed.via === "api" ? "referrers API" : `tag ${referrersTag(image.digest).slice(0, 19)}…`
      })`,
    );
    return pushed;
  } catch (error) {
    if (!(error instanceof ImgtoolError)) throw error;
    throw failed(
      error.message,
      `${error.hint ? `${error.hint}; then ` : ""}push it again with its record: imgtool ` +
        `build --push --force --image ${plan.exportName}`,
      error,
    );
  }
}

/**
 * The images `plan` starts from or copies from, each with the digest its registry names now
 * (or the lock pinned); a registry that cannot say leaves the digest out. `wanted` picks the
 * references to ask about (default: all).
 *
 * @example
 * ```ts
 * import { defaultConfig, Image, planImage } from "imgtool";
 * import { RegistryClient } from "./registry/client.ts";
 * import { resolveDependencies } from "./provenance.ts";
 * const digest = `sha256:${"c".repeat(64)}`;
 * const plan = planImage(Image.fromBase(`127.0.0.1:9/base@${digest}`).withWorkdir("/app"), "default", defaultConfig());
 * // Pinned by digest: no registry is asked.
 * const [base] = await resolveDependencies(new RegistryClient(), plan);
 * console.log(base.digest === digest); // true
 * ```
 */
export async function resolveDependencies(
  registry: RegistryClient,
  plan: ImagePlan,
  wanted: (reference: string) => boolean = () => true,
): Promise<Dependency[]> {
  // As the build used them: pinned by the lock's digest where it has one.
  const pinned = plan.layers[0]?.context.pinned ?? ((reference: string) => reference);
  const references = [
    ...new Set([
      ...(plan.baseReference ? [plan.baseReference] : []),
      ...imagesUsed(plan).map(pinned),
    ]),
  ].filter(wanted);
  return await Promise.all(references.map(async (reference): Promise<Dependency> => {
    const pinned = reference.match(/@(sha256:[0-9a-f]{64})$/)?.[1];
    if (pinned) return { reference, digest: pinned };
    try {
      const manifest = await registry.getManifest(reference);
      return manifest ? { reference, digest: manifest.digest } : { reference };
    } catch {
      // Not known: the record says so by leaving the digest out.
      return { reference };
    }
  }));
}
