/**
 * Worker thread of the feed: builds training frames on request. The windows arrive on SharedArrayBuffers,
 * so every worker reads the same memory; frames go back with their buffers transferred, not copied.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EpochOrder, type FeedContext, trainFrame } from './feed.ts';

const ctx = (workerData as { data: FeedContext }).data;
const order = new EpochOrder(ctx.cfg.seed, ctx.train.count);

parentPort!.on('message', (msg: { frame: number }) => {
  try {
    const f = trainFrame(ctx, order, msg.frame);
    const b = f.batch;
    parentPort!.postMessage({ ok: true, frame: f }, [
      b.input.buffer,
      b.target.buffer,
      b.weight.buffer,
      b.segment.buffer,
    ] as ArrayBuffer[]);
  } catch (err) {
    parentPort!.postMessage({ ok: false, frame: msg.frame, error: (err as Error).stack ?? String(err) });
  }
});
