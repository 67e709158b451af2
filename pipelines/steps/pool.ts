import { Worker, type WorkerOptions } from 'node:worker_threads';
import { UserError } from '../../common/errors.ts';
import { spawnTsWorker } from '../../common/worker.ts';
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

interface Pending {
  resolve: (items: WorkItem[]) => void;
  reject: (err: Error) => void;
}

interface WorkerMessage {
  id: number;
  items?: WorkItem[];
  error?: string;
  ready?: boolean;
  startError?: string;
  userError?: boolean;
}

interface Queued {
  id: number;
  items: WorkItem[];
  heavy: boolean[];
  transfer: ArrayBuffer[];
}

/**
 * Batches a worker holds at once: the one it runs and the next, so it never waits for a round trip to
 * this thread, which may be busy writing a shard. More are a guess at who finishes first: with 4 per
 * worker (and 1 MB batches) the last worker ran alone for 150 ms of a 1.2 s build of 8 MB, on batches
 * the other could have taken. Holding 1 left the workers idle between batches: over 6 interleaved
 * rounds, 1.22 s against 1.09 s median with 2 workers, 1.80 s against 1.62 s with 1.
 */
const PER_WORKER = 2;

/**
 * A fixed set of worker threads fed from one queue: a batch goes to a worker only when that worker holds
 * fewer than PER_WORKER batches, so whoever frees up first takes the next one. The caller bounds how many
 * batches are in flight (run.ts), which bounds memory.
 */
class WorkerExecutor implements RecordExecutor {
  private readonly held: number[];
  private readonly pending = new Map<number, Pending>();
  private readonly queue: Queued[] = [];
  private nextId = 0;
  private failure: Error | undefined;
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
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        this.held[wi]--;
        // Hand over the next batch before anything else runs on this thread.
        this.dispatch();
        if (msg.error) p.reject(new Error(`data worker failed: ${msg.error}`));
        else p.resolve(msg.items!);
      });
      w.on('error', (err) => this.fail(err));
      w.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`data worker exited with code ${code}`));
      });
    });
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
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
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.queue.push({ id, items, heavy, transfer: transferInput ? inputBuffers(items) : [] });
      this.dispatch();
    });
  }

  /** Queued batches to the workers with room, the least loaded first. */
  private dispatch(): void {
    while (this.queue.length > 0) {
      let wi = 0;
      for (let i = 1; i < this.held.length; i++) if (this.held[i] < this.held[wi]) wi = i;
      if (this.held[wi] >= PER_WORKER) return;
      const b = this.queue.shift()!;
      this.held[wi]++;
      this.workers[wi].postMessage({ id: b.id, items: b.items, heavy: b.heavy }, b.transfer);
    }
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
