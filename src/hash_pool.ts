/**
 * Hashing Workers for a large tree (`./digest_worker.ts`), fed while the tree is still being
 * walked: the walk (a `stat` per entry) and the hashing overlap instead of following each
 * other. Once the walk is done, the thread that walked hashes too.
 *
 * The walk is synchronous, so a Worker cannot ask for more work while it runs: each batch
 * goes, as soon as it is full, to the Worker with the least work handed out so far, counted
 * in bytes plus a fixed cost per file (opening and closing a file costs about what reading
 * 16 KiB does). Batches are small enough (4 MB of work) that the Workers finish close
 * together. A Worker starts when a batch finds every other one busy (starting one blocks
 * the walk for some 20 ms), so a small tree gets one.
 *
 * Why the walking thread joins in, and there is one Worker fewer than cores: a Worker costs
 * some 20 ms of the walking thread to start and tens of ms of a core to be ready to hash, and
 * while the walk runs, two Workers on two cores only take the walk's core from it. So the
 * walking thread, its walk done, takes batches from the end of what was handed out, while
 * the Workers go on from the start: each batch is claimed in memory the threads share
 * (`Atomics.compareExchange` on a `SharedArrayBuffer`) by whichever thread comes to it first,
 * and hashed once. On two cores this took a cold identity of the benchmark's tree from 1.32 s
 * to 1.23 s (medians of three interleaved runs, `bench/README.md`).
 *
 * @module
 */

import type { DigestAnswer, DigestJob } from "./digest_worker.ts";

/** What a file costs to hash, besides its bytes: opening, closing, a hasher. */
const FILE_COST = 16 << 10;
/** The work in one batch. */
const BATCH_COST = 4 << 20;
/** Batches that can be claimed (the rest go to their Worker unclaimed): 16 GB of work. */
const CLAIM_SLOTS = 4096;
/** A batch's claim: not taken yet, taken by its Worker, taken by the walking thread. */
const OPEN = 0, BY_HERE = 2;

/**
 * Where the hashing Worker's module is: `digest_worker.ts` beside this module among the
 * sources, `digest_worker.js` in the bundle (scripts/bundle.ts), beside the chunk that
 * holds this code.
 *
 * @example
 * ```ts
 * import { digestWorkerUrl } from "./hash_pool.ts";
 * console.log(digestWorkerUrl().pathname.endsWith("/digest_worker.ts")); // true
 * ```
 */
export function digestWorkerUrl(): URL {
  const extension = import.meta.url.endsWith(".js") ? "js" : "ts";
  return new URL(`./digest_worker.${extension}`, import.meta.url);
}

/** Called with each file's SHA-256 (lowercase hex), or `null` when it could not be read. */
export type OnDigest = (id: number, digest: string | null) => void;

/** Hash the file `path` (`size` bytes by its `stat`) in this thread, known as `id`. */
export type HashHere = (id: number, path: string, size: number) => void;

/**
 * A pool of hashing Workers.
 *
 * @example
 * ```ts
 * import { digestWorkerUrl, HashPool } from "./hash_pool.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "abc");
 * const start = () => new Worker(digestWorkerUrl(), { type: "module" });
 * let first = "";
 * const pool = HashPool.start(2, start, (id, digest) => {
 *   first = digest!.slice(0, 8);
 * })!;
 * pool.add(0, path, 3);
 * await pool.finish();
 * console.log(first); // ba7816bf
 * ```
 */
export class HashPool {
  readonly #workers: Worker[] = [];
  readonly #handedOut: number[] = [];
  readonly #waiting: number[] = [];
  readonly #max: number;
  readonly #newWorker: () => Worker;
  readonly #onDigest: OnDigest;
  #failure: Error | undefined;
  #ids: number[] = [];
  #paths: string[] = [];
  #sizes: number[] = [];
  #cost = 0;
  // What was handed out, in order: the walking thread takes batches from the end.
  readonly #sent: DigestJob[] = [];
  readonly #sentTo: number[] = [];
  readonly #claims = new Int32Array(new SharedArrayBuffer(CLAIM_SLOTS * 4));
  #resolve: (() => void) | undefined;
  #reject: ((error: Error) => void) | undefined;

  private constructor(max: number, newWorker: () => Worker, onDigest: OnDigest) {
    this.#max = max;
    this.#newWorker = newWorker;
    this.#onDigest = onDigest;
  }

  /**
   * A pool of up to `max` Workers started with `newWorker`: one now, the others as there is
   * work for them (no more Workers than batches). `undefined` when no Worker can be started
   * here.
   */
  static start(max: number, newWorker: () => Worker, onDigest: OnDigest): HashPool | undefined {
    const pool = new HashPool(Math.max(1, max), newWorker, onDigest);
    return pool.#grow() ? pool : undefined;
  }

  /** Start one more Worker; false when it cannot be started. */
  #grow(): boolean {
    let worker: Worker;
    try {
      worker = this.#newWorker();
    } catch {
      return false;
    }
    const n = this.#workers.length;
    this.#workers.push(worker);
    this.#handedOut.push(0);
    this.#waiting.push(0);
    worker.onmessage = (event: MessageEvent<DigestAnswer>) => {
      const { ids, digests, taken } = event.data;
      // Hashed here, and no longer waited for since (`#takeBack`).
      if (taken) return;
      for (let i = 0; i < ids.length; i++) this.#onDigest(ids[i], digests[i]);
      this.#waiting[n]--;
      this.#settle();
    };
    worker.onerror = (event) => {
      event.preventDefault();
      this.#failure ??= new Error(`hashing worker failed: ${event.message}`);
      this.#settle();
    };
    return true;
  }

  /** Hash the file `path` (`size` bytes by its `stat`), known to the caller as `id`. */
  add(id: number, path: string, size: number): void {
    this.#ids.push(id);
    this.#paths.push(path);
    this.#sizes.push(size);
    this.#cost += size + FILE_COST;
    if (this.#cost >= BATCH_COST) this.#send();
  }

  /**
   * Wait until every file added has its digest; then the Workers end. With `hashHere`, this
   * thread hashes too: the batches no Worker has come to yet, from the last one back.
   */
  async finish(hashHere?: HashHere): Promise<void> {
    if (this.#ids.length > 0) this.#send();
    if (hashHere !== undefined) this.#takeBack(hashHere);
    try {
      await new Promise<void>((resolve, reject) => {
        this.#resolve = resolve;
        this.#reject = reject;
        this.#settle();
      });
    } finally {
      for (const worker of this.#workers) worker.terminate();
    }
  }

  /** Stop every Worker; digests not answered yet never come. */
  cancel(): void {
    for (const worker of this.#workers) worker.terminate();
  }

  /** Hash here every batch no Worker has claimed yet, from the last one handed out back. */
  #takeBack(hashHere: HashHere): void {
    for (let at = this.#sent.length - 1; at >= 0; at--) {
      const job = this.#sent[at];
      if (job.slot === undefined) continue;
      if (Atomics.compareExchange(this.#claims, job.slot, OPEN, BY_HERE) !== OPEN) continue;
      // Its Worker answers only that it was taken: not waited for.
      this.#waiting[this.#sentTo[at]]--;
      for (let i = 0; i < job.ids.length; i++) hashHere(job.ids[i], job.paths[i], job.sizes[i]);
    }
  }

  #settle(): void {
    if (this.#failure) return this.#reject?.(this.#failure);
    if (this.#resolve && this.#waiting.every((count) => count === 0)) this.#resolve();
  }

  #send(): void {
    // Every Worker busy: one more, while there may be.
    if (this.#workers.length < this.#max && this.#waiting.every((count) => count > 0)) {
      this.#grow();
    }
    let least = 0;
    for (let n = 1; n < this.#workers.length; n++) {
      if (this.#handedOut[n] < this.#handedOut[least]) least = n;
    }
    const slot = this.#sent.length < CLAIM_SLOTS ? this.#sent.length : undefined;
    const job: DigestJob = {
      ids: this.#ids,
      paths: this.#paths,
      sizes: this.#sizes,
      ...(slot === undefined ? {} : { claims: this.#claims, slot }),
    };
    this.#sent.push(job);
    this.#sentTo.push(least);
    this.#workers[least].postMessage(job);
    this.#handedOut[least] += this.#cost;
    this.#waiting[least]++;
    this.#ids = [];
    this.#paths = [];
    this.#sizes = [];
    this.#cost = 0;
  }
}
