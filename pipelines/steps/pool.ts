import { Worker, type WorkerOptions } from 'node:worker_threads';
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

/**
 * A fixed set of worker threads; each batch goes to the worker with the fewest batches in flight. The
 * caller bounds how many batches are in flight (run.ts), which bounds memory.
 */
class WorkerExecutor implements RecordExecutor {
  private readonly busy: number[];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private failure: Error | undefined;
  private readonly started: Promise<void>;

  private constructor(private readonly workers: Worker[]) {
    this.busy = workers.map(() => 0);
    let waiting = workers.length;
    let allStarted = (): void => {};
    this.started = new Promise((resolve) => {
      allStarted = resolve;
    });
    workers.forEach((w, wi) => {
      w.on('message', (msg: { id: number; items?: WorkItem[]; error?: string; ready?: boolean }) => {
        if (msg.ready) {
          if (--waiting === 0) allStarted();
          return;
        }
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        this.busy[wi]--;
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
  }

  /**
   * Workers load their modules and tokenizer (~0.1 s of CPU each) while the caller already reads input
   * and sends batches: they queue in the worker until it listens.
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
    let wi = 0;
    for (let i = 1; i < this.busy.length; i++) if (this.busy[i] < this.busy[wi]) wi = i;
    const id = this.nextId++;
    this.busy[wi]++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.workers[wi].postMessage({ id, items, heavy }, transferInput ? inputBuffers(items) : []);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/**
 * Node options for a worker that runs the plain-JS bundle: the process's own, less the tsx loader (which
 * `tsx script.ts` passes): it would load in each worker for nothing, measured 90 ms of CPU per worker.
 */
/**
 * A worker on the bundle, without the tsx loader when the process has it. Node refuses process-wide flags
 * (`--trace-gc`, ...) in an explicit execArgv, though it lets workers inherit them: then the worker
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
