import { Worker, type WorkerOptions } from 'node:worker_threads';
import { UserError } from '../../common/errors.ts';
import { spawnTsWorker } from '../../common/worker.ts';
import { type BatchClaims, ClaimPages, unclaimedTail } from './claims.ts';
import type { StepContextSpec } from './context.ts';
import { makeStepContext } from './context.ts';
import { processBatch, type StepContext, type WorkItem } from './record.ts';
import { bundledWorkerEntry } from './worker-bundle.ts';

/** Runs the per-record steps on batches: in worker threads, or inline when workers is 0. */
export interface RecordExecutor {
  /**
   * `transferInput`: hand the input bytes to the worker instead of copying them (the caller's items lose
   * them); only for callers that do not use them again. Bytes that share a buffer are copied anyway.
   */
  run(items: WorkItem[], heavy: boolean[], transferInput?: boolean): Promise<WorkItem[]>;
  /** Resolves once every worker has started (batches sent before that wait in the worker's queue). */
  ready(): Promise<void>;
  /** Records a worker took from the back of a batch another worker held (see WorkerExecutor). */
  readonly recordsHelped?: number;
  close(): Promise<void>;
}

class InlineExecutor implements RecordExecutor {
  constructor(private readonly ctx: StepContext) {}
  async run(items: WorkItem[], heavy: boolean[], _transferInput = false): Promise<WorkItem[]> {
    // Yield a turn first so tree-sitter finalisers run (see worker-entry.ts).
    await new Promise((resolve) => setImmediate(resolve));
    return processBatch(items, this.ctx, heavy);
  }
  ready(): Promise<void> {
    return Promise.resolve();
  }
  async close(): Promise<void> {}
}

/** Input buffers that belong to one record each (a view of a shared buffer would take the rest along). */
function inputBuffers(items: WorkItem[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const w of items) {
    const a = w.input;
    if (
      a instanceof Uint8Array &&
      a.buffer instanceof ArrayBuffer &&
      a.byteOffset === 0 &&
      a.byteLength === a.buffer.byteLength
    )
      out.add(a.buffer);
  }
  return [...out];
}

interface WorkerMessage {
  id: number;
  /** Index in the batch of the first record in items (a worker may have done only part of it). */
  from?: number;
  items?: WorkItem[];
  error?: string;
  ready?: boolean;
  startError?: string;
  userError?: boolean;
}

/** A batch from run() until all its records are back. */
interface Batch {
  id: number;
  items: WorkItem[];
  heavy: boolean[];
  transfer: ArrayBuffer[];
  resolve: (items: WorkItem[]) => void;
  reject: (err: Error) => void;
  /** Set once sent: its record claims and the worker that owns it. */
  claims?: BatchClaims;
  owner?: number;
  /** The second worker sent the batch to take records from its back, if any. */
  helper?: number;
  results: WorkItem[];
  received: number;
}

/**
 * Batches a worker holds at once: the one it runs and the next, so it never waits for a round trip to
 * this thread, which may be busy writing a shard. Holding 1 left the workers idle between batches: over 6
 * interleaved rounds, 1.22 s against 1.09 s median with 2 workers, 1.80 s against 1.62 s with 1.
 */
const PER_WORKER = 2;

/**
 * A fixed set of worker threads fed from one queue: a batch goes to a worker only when that worker holds
 * fewer than PER_WORKER batches, so whoever frees up first takes the next one. When the queue runs dry
 * (the end of a build), a worker with room is also sent a batch another worker holds, and takes records
 * from its back while the owner takes them from the front (claims.ts): before, the worker left with two
 * batches ran alone for up to 50 ms at the end of an 8 MB build. The caller bounds how many batches are in
 * flight (run.ts), which bounds memory.
 */
class WorkerExecutor implements RecordExecutor {
  private readonly held: number[];
  /** Batches sent and not yet complete, by id. */
  private readonly sent = new Map<number, Batch>();
  private readonly queue: Batch[] = [];
  private readonly claimPages = new ClaimPages();
  private nextId = 0;
  private failure: Error | undefined;
  /** Records a worker took from the back of a batch another worker held (tests and tuning). */
  recordsHelped = 0;
  private readonly started: Promise<void>;

  private constructor(private readonly workers: Worker[]) {
    this.held = workers.map(() => 0);
    let waiting = workers.length;
    let allStarted = (): void => {};
    this.started = new Promise((resolve) => {
      allStarted = resolve;
    });
    workers.forEach((w, wi) => {
      w.on('message', (msg: WorkerMessage) => {
        if (msg.startError !== undefined) {
          this.fail(
            msg.userError
              ? new UserError(msg.startError)
              : new Error(`data worker failed to start: ${msg.startError}`),
          );
          return;
        }
        if (msg.ready) {
          if (--waiting === 0) allStarted();
          return;
        }
        this.held[wi]--;
        // Hand over the next batch before anything else runs on this thread.
        this.dispatch();
        const b = this.sent.get(msg.id);
        if (!b) return;
        if (msg.error) {
          this.sent.delete(msg.id);
          b.reject(new Error(`data worker failed: ${msg.error}`));
          return;
        }
        const from = msg.from ?? 0;
        const items = msg.items!;
        if (wi === b.helper) this.recordsHelped += items.length;
        for (let i = 0; i < items.length; i++) b.results[from + i] = items[i];
        b.received += items.length;
        if (b.received === b.items.length) {
          this.sent.delete(msg.id);
          b.resolve(b.results);
        }
      });
      w.on('error', (err) => this.fail(err));
      w.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`data worker exited with code ${code}`));
      });
    });
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const b of [...this.sent.values(), ...this.queue]) b.reject(err);
    this.sent.clear();
    this.queue.length = 0;
  }

  /**
   * Workers load their modules and encoder tables (0.03-0.05 s of CPU each) while the caller already
   * lists input and queues batches.
   */
  static async start(count: number, spec: StepContextSpec): Promise<WorkerExecutor> {
    const entry = new URL('./worker-entry.ts', import.meta.url);
    const bundle = await bundledWorkerEntry();
    // A heap cap makes V8 collect early instead of growing to its default limit; one batch is at most
    // about 1 MB of input, whose transient objects stay far below it.
    const options = { resourceLimits: { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 16 } };
    const workers = Array.from({ length: count }, () =>
      bundle
        ? bundledWorker(bundle, { ...options, workerData: { data: spec } })
        : spawnTsWorker(entry, spec, options),
    );
    return new WorkerExecutor(workers);
  }

  ready(): Promise<void> {
    return this.started;
  }

  run(items: WorkItem[], heavy: boolean[], transferInput = false): Promise<WorkItem[]> {
    if (this.failure) return Promise.reject(this.failure);
    if (items.length === 0) return Promise.resolve([]);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const transfer = transferInput ? inputBuffers(items) : [];
      this.queue.push({
        id,
        items,
        heavy,
        transfer,
        resolve,
        reject,
        results: [],
        received: 0,
      });
      this.dispatch();
    });
  }

  /** Queued batches to the workers with room, the least loaded first; then help with what others hold. */
  private dispatch(): void {
    while (this.queue.length > 0) {
      let wi = 0;
      for (let i = 1; i < this.held.length; i++) if (this.held[i] < this.held[wi]) wi = i;
      if (this.held[wi] >= PER_WORKER) return;
      const b = this.queue.shift()!;
      this.held[wi]++;
      b.owner = wi;
      // Batches whose input bytes move to the owner cannot be sent twice: they get no claims.
      if (b.transfer.length === 0) b.claims = this.claimPages.take(b.items.length);
      this.workers[wi].postMessage(
        { id: b.id, items: b.items, heavy: b.heavy, claims: b.claims },
        b.transfer,
      );
      this.sent.set(b.id, b);
    }
    for (let wi = 0; wi < this.workers.length; wi++) {
      if (this.held[wi] >= PER_WORKER) continue;
      const b = this.batchToHelp(wi);
      if (!b) continue;
      b.helper = wi;
      this.held[wi]++;
      this.workers[wi].postMessage({
        id: b.id,
        items: b.items,
        heavy: b.heavy,
        claims: b.claims,
        backwards: true,
      });
    }
  }

  /** The batch of another worker with the most records left to claim at its back (two at least). */
  private batchToHelp(wi: number): Batch | undefined {
    let best: Batch | undefined;
    let bestTail = 1;
    for (const b of this.sent.values()) {
      if (b.helper !== undefined || !b.claims || b.owner === wi) continue;
      const tail = unclaimedTail(b.claims, b.items.length);
      if (tail > bestTail) {
        best = b;
        bestTail = tail;
      }
    }
    return best;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/**
 * A worker on the bundle, without the tsx loader when the process has it (`tsx script.ts` passes it; it
 * would load in each worker for nothing, measured 90 ms of CPU per worker). Node refuses process-wide
 * flags (`--trace-gc`, ...) in an explicit execArgv, though it lets workers inherit them: then the worker
 * inherits everything, loader included.
 */
function bundledWorker(bundle: URL, options: WorkerOptions): Worker {
  const execArgv = withoutTsx(process.execArgv);
  if (execArgv.length !== process.execArgv.length) {
    try {
      return new Worker(bundle, { ...options, execArgv });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw err;
    }
  }
  return new Worker(bundle, options);
}

const isTsx = (module: string): boolean =>
  module === 'tsx' || module.startsWith('tsx/') || module.includes('/tsx/');

export function withoutTsx(execArgv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i];
    if ((a === '--require' || a === '--import' || a === '-r') && isTsx(execArgv[i + 1] ?? '')) i++;
    else if (!/^--(require|import)=/.test(a) || !isTsx(a.slice(a.indexOf('=') + 1))) out.push(a);
  }
  return out;
}

export async function startExecutor(workers: number, spec: StepContextSpec): Promise<RecordExecutor> {
  if (workers <= 0) return new InlineExecutor(await makeStepContext(spec));
  return WorkerExecutor.start(workers, spec);
}
