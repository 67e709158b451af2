/**
 * Produces training frames in stream order from worker threads (or the main thread when workers = 0).
 * A bounded number of frames is in flight, so a slow consumer (the pipe into sdt-native) holds memory
 * steady: the pool only asks for frame f + ahead once frame f has been taken.
 */
import type { Worker } from 'node:worker_threads';
import { spawnTsWorker } from '../common/worker.ts';
import { EpochOrder, type FeedContext, type TrainFrame, trainFrame } from './feed.ts';

interface Pending {
  resolve: (f: TrainFrame) => void;
  reject: (e: Error) => void;
  promise: Promise<TrainFrame>;
}

export class FeedPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly order: EpochOrder;
  private closed = false;

  constructor(
    private readonly ctx: FeedContext,
    workerCount: number,
  ) {
    this.order = new EpochOrder(ctx.cfg.seed, ctx.train.count);
    for (let i = 0; i < workerCount; i++) {
      const w = spawnTsWorker(new URL('./feed-worker.ts', import.meta.url), ctx);
      w.on('message', (msg: { ok: boolean; frame: TrainFrame | number; error?: string }) => {
        const index = msg.ok ? (msg.frame as TrainFrame).frame : (msg.frame as number);
        const p = this.pending.get(index);
        if (!p) return;
        if (msg.ok) p.resolve(msg.frame as TrainFrame);
        else p.reject(new Error(`feed worker failed on frame ${index}: ${msg.error}`));
      });
      w.on('error', (err) => {
        for (const p of this.pending.values()) p.reject(err);
      });
      this.workers.push(w);
    }
  }

  private request(frame: number): void {
    let resolve!: (f: TrainFrame) => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<TrainFrame>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => undefined); // rejections surface when the frame is awaited
    this.pending.set(frame, { resolve, reject, promise });
    this.workers[frame % this.workers.length].postMessage({ frame });
  }

  /** Frames [start, end) in order. */
  async *frames(start: number, end: number): AsyncGenerator<TrainFrame> {
    if (this.workers.length === 0) {
      for (let f = start; f < end && !this.closed; f++) yield trainFrame(this.ctx, this.order, f);
      return;
    }
    const ahead = 2 * this.workers.length + 2;
    let next = start;
    for (let f = start; f < end && !this.closed; f++) {
      while (next < end && next < f + ahead) this.request(next++);
      const p = this.pending.get(f)!;
      const frame = await p.promise;
      this.pending.delete(f);
      yield frame;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
