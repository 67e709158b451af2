/**
 * The batcher between HTTP requests and the one engine of `sdt serve`. The engine answers one request at a
 * time and decodes a request's prompts in lockstep groups of up to 16 rows, so the scheduler keeps exactly
 * one engine request in flight: while it decodes, new jobs wait in a bounded queue, and when it returns the
 * next group is formed from the head of the queue plus every queued job with the same settings that still
 * fits in 16 rows. Each row decodes as it would alone (docs/sample.md, Batching), with one exception the
 * scheduler avoids: a sampled row's random stream depends on its index in the request, so jobs with
 * temperature > 0 are decoded as groups of their own and their seed reproduces.
 *
 * A job cancelled (client gone, timeout) while its group decodes is cancelled in the engine too (a cancel
 * message naming its rows): those rows stop at the engine's next model call and the rest of the group decodes
 * on unchanged; a queued one never reaches the engine.
 */
import { EngineClient, type EngineOptions } from '../engine/client.ts';
import type { Tokenizer } from '../pipelines/tokenizer/types.ts';
import {
  type ReadyInfo,
  type SampleSettings,
  settingsToWire,
  type WireResult,
  type WireStepEvent,
} from '../schemas/engine.ts';

/** Rows one model call decodes together (the engine's lockstep group). */
export const GROUP_ROWS = 16;

export interface Job {
  /** Token prompts, one row each (a request's prompts times n). */
  rows: Int32Array[];
  settings: SampleSettings;
  /** Sees each step of each of this job's rows (row = index into `rows`). */
  onStep?: (row: number, e: WireStepEvent) => void;
}

/** Why a job did not get an answer; `status` is the HTTP status the server sends. */
export class JobError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

interface Entry {
  job: Job;
  key: string;
  solo: boolean;
  cancelled: boolean;
  /** While its group decodes: the engine request and this job's first row in it. */
  decoding?: { engine: EngineClient; id: string; first: number };
  resolve: (r: WireResult[]) => void;
  reject: (e: JobError) => void;
}

export interface SchedulerStats {
  queued: number;
  runningRows: number;
  engineUp: boolean;
  engineRestarts: number;
  groups: number;
}

export interface SchedulerOptions {
  engine: EngineOptions;
  /** Jobs that may wait (not counting the group decoding); one more is refused with 429. */
  maxQueue: number;
  /** Called with every engine request decoded: its rows and its groups' model calls. */
  onGroup?: (rows: number, forwardPasses: number) => void;
}

export class Scheduler {
  private engine: EngineClient | null = null;
  // The first engine: its ready line and tokenizer describe every later one.
  private ready!: EngineClient;
  private readonly queue: Entry[] = [];
  private running: Entry[] = [];
  private restarting: Promise<void> | null = null;
  private closed = false;
  private restarts = 0;
  private groups = 0;

  private constructor(private readonly opts: SchedulerOptions) {}

  static async start(opts: SchedulerOptions): Promise<Scheduler> {
    const s = new Scheduler(opts);
    s.attach(await EngineClient.start(opts.engine));
    return s;
  }

  /** The checkpoint's engine info (kept while the engine restarts: the new one loads the same checkpoint). */
  get info(): ReadyInfo {
    return this.ready.info;
  }

  get tokenizer(): Tokenizer | null {
    return this.ready.tokenizer;
  }

  /** The engine's process id (undefined while it restarts). */
  get enginePid(): number | undefined {
    return this.engine?.alive ? this.engine.pid : undefined;
  }

  stats(): SchedulerStats {
    return {
      queued: this.queue.length,
      runningRows: this.running.reduce((n, e) => n + (e.cancelled ? 0 : e.job.rows.length), 0),
      engineUp: this.engine?.alive ?? false,
      engineRestarts: this.restarts,
      groups: this.groups,
    };
  }

  private attach(engine: EngineClient): void {
    this.ready ??= engine;
    this.engine = engine;
    engine.onExit(() => {
      if (this.engine !== engine) return;
      this.engine = null;
      if (!this.closed) this.restart();
    });
  }

  /** Starts a new engine; until it is ready new jobs get 503 and queued jobs wait (their timeouts run). */
  private restart(): void {
    if (this.restarting || this.closed) return;
    this.restarts++;
    this.restarting = (async () => {
      for (let attempt = 0; !this.closed; attempt++) {
        try {
          const e = await EngineClient.start(this.opts.engine);
          if (this.closed) {
            await e.close();
            return;
          }
          this.attach(e);
          return;
        } catch {
          await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** attempt)));
        }
      }
    })().finally(() => {
      this.restarting = null;
      this.pump();
    });
  }

  /**
   * Queues a job; resolves with one result per row. `signal` cancels it (a client that went away or a
   * timeout): the promise then rejects and the job's rows are not decoded, or not answered if already decoding.
   */
  submit(job: Job, signal?: AbortSignal): Promise<WireResult[]> {
    if (this.closed) return Promise.reject(new JobError(503, 'unavailable', 'the server is shutting down'));
    if (!this.engine?.alive) {
      return Promise.reject(
        new JobError(
          503,
          'engine_unavailable',
          'the engine is restarting after it exited; retry in a moment',
        ),
      );
    }
    if (this.queue.length >= this.opts.maxQueue) {
      return Promise.reject(
        new JobError(
          429,
          'queue_full',
          `${this.queue.length} requests are waiting (--max-queue); retry later`,
        ),
      );
    }
    const { seed, ...rest } = job.settings;
    const solo = (job.settings.temperature ?? 0) > 0;
    // Greedy rows ignore the seed, so it does not split groups.
    const key = JSON.stringify([settingsToWire(solo ? job.settings : rest), this.lengthClasses(job)]);
    return new Promise((resolve, reject) => {
      const entry: Entry = { job, key, solo, cancelled: false, resolve, reject };
      const abort = () => this.cancel(entry, signal?.reason);
      if (signal?.aborted) {
        reject(asJobError(signal.reason));
        return;
      }
      signal?.addEventListener('abort', abort, { once: true });
      const done = () => signal?.removeEventListener('abort', abort);
      entry.resolve = (r) => {
        done();
        resolve(r);
      };
      entry.reject = (e) => {
        done();
        reject(e);
      };
      this.queue.push(entry);
      this.pump();
    });
  }

  private cancel(entry: Entry, reason: unknown): void {
    if (entry.cancelled) return;
    entry.cancelled = true;
    const i = this.queue.indexOf(entry);
    if (i >= 0) this.queue.splice(i, 1);
    entry.reject(asJobError(reason));
    // Decoding: its rows stop in the engine (a cancel that arrives after the answer changes nothing).
    const d = entry.decoding;
    if (d) {
      const rows = entry.job.rows.map((_, i) => d.first + i);
      d.engine.cancel(d.id, rows).catch(() => undefined);
    }
  }

  /**
   * A block checkpoint with aligned blocks decodes prompts of different lengths in one lockstep group only
   * when the engine has mixed_length_groups and the prompt leaves max_new + block - 1 positions of the
   * context, else only prompts of equal length modulo its block size (docs/sample.md, Batching); the engine
   * runs a request's other classes as further groups one after another. Jobs of other classes therefore
   * wait for a group of their own, so each engine request is one group, answered when that group is done.
   */
  private lengthClasses(job: Job): number[] {
    const info = this.ready.info;
    if (info.attention_mode !== 'block' || job.settings.alignBlocks === false || job.settings.mode === 'ar')
      return [];
    const b = job.settings.block ?? info.block_size;
    const maxNew = job.settings.maxNew;
    const mixed = (len: number) =>
      info.mixed_length_groups &&
      maxNew !== undefined &&
      len + maxNew + b - 1 <= info.max_position_embeddings;
    return [...new Set(job.rows.map((r) => (mixed(r.length) ? -1 : r.length % b)))].sort((x, y) => x - y);
  }

  /** The head of the queue and every later job of the same settings that fits beside it. */
  private takeGroup(): Entry[] {
    const head = this.queue.shift();
    if (!head) return [];
    const group = [head];
    if (head.solo) return group;
    let rows = head.job.rows.length;
    for (let i = 0; i < this.queue.length && rows < GROUP_ROWS; ) {
      const e = this.queue[i];
      if (!e.solo && e.key === head.key && rows + e.job.rows.length <= GROUP_ROWS) {
        group.push(e);
        rows += e.job.rows.length;
        this.queue.splice(i, 1);
      } else i++;
    }
    return group;
  }

  private pump(): void {
    if (this.running.length > 0 || this.closed || !this.engine?.alive) return;
    const group = this.takeGroup();
    if (group.length === 0) return;
    this.running = group;
    void this.decode(this.engine, group).finally(() => {
      this.running = [];
      this.pump();
    });
  }

  private async decode(engine: EngineClient, group: Entry[]): Promise<void> {
    // Row r of the engine request belongs to owner[r] = [entry, its own row].
    const owner: [Entry, number][] = group.flatMap((e) =>
      e.job.rows.map((_, i) => [e, i] as [Entry, number]),
    );
    const prompts = owner.map(([e, i]) => e.job.rows[i]);
    const streaming = group.some((e) => e.job.onStep);
    const onStep = streaming
      ? (ev: WireStepEvent) => {
          const [e, i] = owner[ev.sequence];
          if (e.cancelled) return;
          try {
            e.job.onStep?.(i, ev);
          } catch {
            // A listener that failed (its client is gone) must not stop the other rows' events.
          }
        }
      : undefined;
    try {
      const req = engine.startRequest(
        { prompts: prompts.map((p) => Array.from(p)), ...settingsToWire(group[0].job.settings) },
        onStep,
      );
      let first = 0;
      for (const e of group) {
        e.decoding = { engine, id: req.id, first };
        first += e.job.rows.length;
      }
      const res = await req.response;
      for (const e of group) e.decoding = undefined;
      if (!res.ok && res.code === 'cancelled') return; // every job of the group was cancelled (and rejected)
      if (!res.ok) {
        if (group.length === 1) {
          group[0].reject(new JobError(400, 'invalid_request_error', `engine: ${res.error}`));
          return;
        }
        // One job's settings or tokens were refused: decode each alone so only that one fails.
        for (const e of group.reverse()) {
          e.solo = true;
          if (!e.cancelled) this.queue.unshift(e);
        }
        return;
      }
      this.groups++;
      this.opts.onGroup?.(prompts.length, groupPasses(res.results));
      let at = 0;
      for (const e of group) {
        const mine = res.results.slice(at, at + e.job.rows.length);
        at += e.job.rows.length;
        if (!e.cancelled) e.resolve(mine);
      }
    } catch (err) {
      const restarting = !engine.alive;
      for (const e of group) {
        e.decoding = undefined;
        if (e.cancelled) continue;
        e.reject(
          restarting
            ? new JobError(503, 'engine_unavailable', 'the engine exited while decoding this request; retry')
            : new JobError(500, 'server_error', (err as Error).message),
        );
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const e of this.queue.splice(0))
      e.reject(new JobError(503, 'unavailable', 'the server is shutting down'));
    await this.restarting;
    await this.engine?.close();
  }
}

/**
 * The model calls the engine made for these rows: the calls of each lockstep group they decoded in, counted
 * once per group (rows that share a group share its calls).
 */
export function groupPasses(rows: WireResult[]): number {
  const groups = new Map<number, number>();
  for (const r of rows) if (r.group >= 0) groups.set(r.group, r.group_forward_passes);
  return [...groups.values()].reduce((n, x) => n + x, 0);
}

function asJobError(reason: unknown): JobError {
  if (reason instanceof JobError) return reason;
  return new JobError(
    499,
    'cancelled',
    reason instanceof Error ? reason.message : 'the request was cancelled',
  );
}
