/**
 * The images a user's Dockerfile starts from or copies from, found as BuildKit reads the
 * file, and the same file with them pinned by `imgtool.lock`: the image of each `FROM`, of
 * each `COPY --from=` and of each `RUN --mount=...,from=`, where the value is
 * an image, not a stage (by name or number), `scratch`, or anything holding a variable
 * (`$BASE`, which only the build knows). Instructions are joined across line continuations
 * (the escape character at the end of a line; comment and empty lines inside are skipped), and
 * here-documents (`RUN <<EOF` ... `EOF`) are skipped whole, so that a `FROM` line inside one is
 * not taken for an instruction. `ONBUILD` instructions run in another build and are left alone.
 *
 * @module
 */

import { lockedComment } from "../../contract.ts";
import { IMAGE_REFERENCE } from "../base_image.ts";

/**
 * An image a Dockerfile names, and where.
 *
 * @example
 * ```ts
 * import { imageMentions, type ImageMention } from "./dockerfile_images.ts";
 * const [mention]: ImageMention[] = imageMentions("FROM debian:bookworm AS build\n");
 * console.log(mention.reference, mention.instruction, mention.start, mention.end); // debian:bookworm FROM 5 20
 * ```
 */
export interface ImageMention {
  /** The reference, as written. */
  readonly reference: string;
  /** The instruction that names it: `FROM`, `COPY` or `RUN`. */
  readonly instruction: string;
  /** Where its text starts in the Dockerfile text. */
  readonly start: number;
  /** Where its text ends (exclusive). */
  readonly end: number;
  /** Where the line that starts the instruction starts. */
  readonly lineStart: number;
}

/**
 * The images the Dockerfile text `body` (its parser directives already taken off) names, in
 * order. `escape` is the file's escape character (`# escape=`).
 *
 * @example
 * ```ts
 * import { imageMentions } from "./dockerfile_images.ts";
 * const body = [
 *   "FROM golang:1.22 AS build",
 *   "FROM build AS test",
 *   "FROM debian:bookworm-slim",
 *   "COPY --from=build /out/app /app",
 *   "COPY --from=ghcr.io/acme/assets:3 /srv /srv",
 *   "RUN --mount=type=bind,from=busybox:1.36,source=/bin/busybox,target=/bb /bb true",
 * ].join("\n");
 * console.log(imageMentions(body).map((m) => m.reference));
 * // [ "golang:1.22", "debian:bookworm-slim", "ghcr.io/acme/assets:3", "busybox:1.36" ]
 * ```
 */
export function imageMentions(body: string, escape = "\\"): ImageMention[] {
  const instructions = [...parseInstructions(body, escape)];
  // `--from` may name any stage; `FROM` only one defined before it.
  const allStages = new Set(instructions.flatMap((i) => (i.stage ? [i.stage] : [])));
  const stagesBefore = new Set<string>();
  const mentions: ImageMention[] = [];
  for (const instruction of instructions) {
    const found = instruction.keyword === "FROM"
      ? fromImage(instruction, stagesBefore)
      : instruction.keyword === "COPY"
      ? copyFromImage(instruction, allStages)
      : instruction.keyword === "RUN"
      ? mountFromImages(instruction, allStages)
      : [];
    for (const { start, end } of found) {
      const textStart = instruction.toText(start);
      const textEnd = instruction.toText(end - 1) + 1;
      // A reference split by a line continuation is left as it is.
      if (textEnd - textStart !== end - start) continue;
      mentions.push({
        reference: instruction.logical.slice(start, end),
        instruction: instruction.keyword,
        start: textStart,
        end: textEnd,
        lineStart: instruction.lineStart,
      });
    }
    if (instruction.stage) stagesBefore.add(instruction.stage);
  }
  return mentions;
}

/**
 * `body` with every image it names ({@link imageMentions}) written as `pinned` returns it,
 * and above each `FROM` whose image that changed, a comment naming the reference and the
 * digest (`# debian:bookworm locked at sha256:…`). `pinned` is asked about every image, even
 * where it changes nothing. Without a change the text is returned as it is.
 *
 * @example
 * ```ts
 * import { pinImages } from "./dockerfile_images.ts";
 * const digest = `sha256:${"e".repeat(64)}`;
 * const pinned = (reference: string) => reference === "debian:bookworm" ? `${reference}@${digest}` : reference;
 * const text = pinImages("FROM debian:bookworm\nCOPY --from=alpine:3 /etc/motd /motd", "\\", pinned);
 * console.log(text.split("\n")[1] === `FROM debian:bookworm@${digest}`); // true
 * console.log(text.split("\n")[0] === `# debian:bookworm locked at ${digest}`); // true
 * ```
 */
export function pinImages(
  body: string,
  escape: string,
  pinned: (reference: string) => string,
): string {
  const edits: { at: number; remove: number; insert: string }[] = [];
  for (const mention of imageMentions(body, escape)) {
    const written = pinned(mention.reference);
    if (written === mention.reference) continue;
    edits.push({ at: mention.start, remove: mention.end - mention.start, insert: written });
    const comment = lockedComment(mention.reference, written);
    if (mention.instruction === "FROM" && comment !== undefined) {
      edits.push({ at: mention.lineStart, remove: 0, insert: `${comment}\n` });
    }
  }
  // From the end, so that each edit's offsets still hold.
  edits.sort((a, b) => b.at - a.at);
  let text = body;
  for (const edit of edits) {
    text = text.slice(0, edit.at) + edit.insert + text.slice(edit.at + edit.remove);
  }
  return text;
}

/** One instruction, joined across its continuation lines. */
interface Instruction {
  /** The keyword, upper case. */
  readonly keyword: string;
  /** The instruction as one line, continuations removed. */
  readonly logical: string;
  /** The stage a `FROM ... AS name` names, lower case. */
  readonly stage?: string;
  /** Where its first line starts in the text. */
  readonly lineStart: number;
  /** Where a character of `logical` is in the text. */
  toText(index: number): number;
}

/** A part of an instruction's `logical` text, `[start, end)`. */
interface Span {
  readonly start: number;
  readonly end: number;
}

const BLANK = /^[ \t]*$/;
const COMMENT = /^[ \t]*#/;
const HEREDOC_KEYWORDS = new Set(["RUN", "COPY", "ADD"]);

function* parseInstructions(body: string, escape: string): Generator<Instruction> {
  const lines = body.split("\n");
  const offsets: number[] = [];
  lines.reduce((offset, line) => (offsets.push(offset), offset + line.length + 1), 0);
  let index = 0;
  while (index < lines.length) {
    if (BLANK.test(lines[index]) || COMMENT.test(lines[index])) {
      index++;
      continue;
    }
    const lineStart = offsets[index];
    const pieces: { logical: number; text: number; length: number }[] = [];
    let logical = "";
    for (let first = true; index < lines.length; first = false) {
      const line = lines[index];
      index++;
      // Inside a continuation, comment and empty lines are dropped.
      if (!first && (BLANK.test(line) || COMMENT.test(line))) continue;
      const trimmed = line.replace(/[ \t]+$/, "");
      const continued = trimmed.endsWith(escape);
      const content = continued ? trimmed.slice(0, -escape.length) : line;
      pieces.push({ logical: logical.length, text: offsets[index - 1], length: content.length });
      logical += content;
      if (!continued) break;
    }
    const words = wordsOf(logical);
    const keyword = words[0]?.text.toUpperCase() ?? "";
    if (HEREDOC_KEYWORDS.has(keyword)) index = skipHeredocs(words, lines, index);
    const as = keyword === "FROM"
      ? words.findIndex((word, at) => at > 1 && word.text.toUpperCase() === "AS")
      : -1;
    yield {
      keyword,
      logical,
      stage: as === -1 ? undefined : words[as + 1]?.text.toLowerCase(),
      lineStart,
      toText(at: number): number {
        const piece = pieces.findLast((p) => p.logical <= at) ?? pieces[0];
        return piece.text + (at - piece.logical);
      },
    };
  }
}

/** The index of the line after the here-documents the instruction's words open. */
function skipHeredocs(words: readonly Word[], lines: readonly string[], index: number): number {
  // BuildKit's rule: a word `<<NAME`, `<<-NAME` or `<<"NAME"` (optionally after a file
  // descriptor number) opens a here-document that ends at a line holding NAME alone.
  for (const word of words.slice(1)) {
    const match = /^\d*<<(-?)(["']?)([^<"']+)\2$/.exec(word.text);
    if (!match) continue;
    const stripTabs = match[1] === "-";
    while (index < lines.length) {
      const line = stripTabs ? lines[index].replace(/^\t+/, "") : lines[index];
      index++;
      if (line === match[3]) break;
    }
  }
  return index;
}

interface Word extends Span {
  readonly text: string;
}

function wordsOf(logical: string): Word[] {
  return [...logical.matchAll(/\S+/g)].map((match) => ({
    text: match[0],
    start: match.index,
    end: match.index + match[0].length,
  }));
}

/** The flag words right after the keyword (`--name=value`), up to the first other word. */
function flagsOf(instruction: Instruction): Word[] {
  const words = wordsOf(instruction.logical).slice(1);
  const end = words.findIndex((word) => !word.text.startsWith("--"));
  return end === -1 ? words : words.slice(0, end);
}

/** Is `value` an image, not a stage, a stage's number, `scratch` or a variable? */
function isImage(value: string, stages: ReadonlySet<string>): boolean {
  return IMAGE_REFERENCE.test(value) && !/^\d+$/.test(value) &&
    value.toLowerCase() !== "scratch" && !stages.has(value.toLowerCase());
}

function fromImage(instruction: Instruction, stagesBefore: ReadonlySet<string>): Span[] {
  const words = wordsOf(instruction.logical).slice(1);
  const image = words.find((word) => !word.text.startsWith("--"));
  return image && isImage(image.text, stagesBefore) ? [image] : [];
}

function copyFromImage(instruction: Instruction, stages: ReadonlySet<string>): Span[] {
  return flagsOf(instruction).flatMap((flag) => {
    if (!flag.text.startsWith("--from=")) return [];
    const start = flag.start + "--from=".length;
    return isImage(instruction.logical.slice(start, flag.end), stages)
      ? [{ start, end: flag.end }]
      : [];
  });
}

function mountFromImages(instruction: Instruction, stages: ReadonlySet<string>): Span[] {
  return flagsOf(instruction).flatMap((flag) => {
    if (!flag.text.startsWith("--mount=")) return [];
    // The mount's fields, comma-separated; a quoted field is never an image reference.
    const spans: Span[] = [];
    let at = flag.start + "--mount=".length;
    for (const field of flag.text.slice("--mount=".length).split(",")) {
      if (field.startsWith("from=")) {
        const start = at + "from=".length;
        const end = at + field.length;
        if (isImage(instruction.logical.slice(start, end), stages)) spans.push({ start, end });
      }
      at += field.length + 1;
    }
    return spans;
  });
}
