/**
 * Running a tool (docker, buildah, a credential helper) as a child process: output streamed
 * line by line to a callback, the tail kept for error messages, and the process (with its
 * children) stopped when the signal aborts.
 *
 * @module
 */

/**
 * Options for {@link exec}.
 *
 * @example
 * ```ts
 * import { exec, type ExecOptions } from "imgtool";
 * const options: ExecOptions = {
 *   args: ["a-z", "A-Z"],
 *   stdin: "hello\n",
 *   env: { LC_ALL: "C" },
 *   onLine: (line) => console.log(`| ${line}`),
 * };
 * await exec("tr", options); // | HELLO
 * ```
 */
export interface ExecOptions {
  /** Arguments. */
  readonly args: readonly string[];
  /** Working directory. */
  readonly cwd?: string;
  /** Extra environment variables. */
  readonly env?: Readonly<Record<string, string>>;
  /** Text to write to the process's standard input. */
  readonly stdin?: string;
  /** Called with each line of output (standard output and error), as it comes. */
  readonly onLine?: (line: string) => void;
  /** Stops the process when aborted. */
  readonly signal?: AbortSignal;
}

/**
 * How a process ended.
 *
 * @example
 * ```ts
 * import { exec, type ExecResult } from "imgtool";
 * const result: ExecResult = await exec("sh", {
 *   args: ["-c", "echo building; echo 'step 2 failed' >&2; exit 3"],
 * });
 * if (result.code !== 0) console.log(`exit ${result.code}; last output:\n${result.tail}`);
 * ```
 */
export interface ExecResult {
  /** Exit code (-1 if it could not start or was killed). */
  readonly code: number;
  /** Standard output. */
  readonly stdout: string;
  /** Standard error. */
  readonly stderr: string;
  /** The last lines of combined output, for error messages. */
  readonly tail: string;
}

const TAIL_LINES = 40;
const MAX_CAPTURE = 4 << 20;

/**
 * Run `command` to completion. Throws `Deno.errors.NotFound` if the command does not exist.
 *
 * @example
 * ```ts
 * import { exec } from "imgtool";
 * const result = await exec("echo", { args: ["hello"] });
 * console.log(result.stdout.trim()); // hello
 * ```
 */
export async function exec(command: string, options: ExecOptions): Promise<ExecResult> {
  const child = new Deno.Command(command, {
    args: [...options.args],
    cwd: options.cwd,
    env: options.env ? { ...options.env } : undefined,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const tail: string[] = [];
  const onAbort = () => stop(child);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) stop(child);
  try {
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(options.stdin));
      await writer.close();
    }
    const collect = async (stream: ReadableStream<Uint8Array>) => {
      let captured = "";
      for await (const line of lines(stream)) {
        if (captured.length < MAX_CAPTURE) captured += `${line}\n`;
        tail.push(line);
        if (tail.length > TAIL_LINES) tail.shift();
        options.onLine?.(line);
      }
      return captured;
    };
    const [stdout, stderr, status] = await Promise.all([
      collect(child.stdout),
      collect(child.stderr),
      child.status,
    ]);
    return { code: status.signal ? -1 : status.code, stdout, stderr, tail: tail.join("\n") };
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
  }
}

function stop(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGTERM");
  } catch {
    return; // already gone
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, 5000);
  child.status.finally(() => clearTimeout(timer));
}

/**
 * The lines of a stream (ending in LF, CRLF or CR), each whole however the stream was cut
 * into chunks: the part of a line a chunk ends with waits for the rest, so a line is never
 * split in two (which would also split a secret in it past the redactor's reach). A chunk
 * that ends in CR keeps it back too, in case the next one starts with the LF of a CRLF.
 */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  // The unended line, in pieces: joined only when a line break comes, so that a line of
  // many chunks costs its length once, not once per chunk.
  const pieces: string[] = [];
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    if (!/[\r\n]/.test(chunk) && !pieces.at(-1)?.endsWith("\r")) {
      pieces.push(chunk);
      continue;
    }
    const pending = pieces.join("") + chunk;
    const cut = pending.endsWith("\r") ? pending.length - 1 : pending.length;
    const parts = pending.slice(0, cut).split(/\r\n|\n|\r/);
    pieces.length = 0;
    pieces.push((parts.pop() ?? "") + pending.slice(cut));
    yield* parts;
  }
  const pending = pieces.join("");
  if (pending.endsWith("\r")) yield pending.slice(0, -1);
  else if (pending) yield pending;
}
