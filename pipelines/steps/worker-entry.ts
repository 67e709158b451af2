// Worker thread: runs the per-record steps on batches the main thread sends (see pool.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { makeStepContext, type StepContextSpec } from './context.ts';
import { processRecord, type WorkItem } from './record.ts';

const ctx = await makeStepContext((workerData as { data: StepContextSpec }).data);
parentPort!.on('message', (msg: { id: number; items: WorkItem[]; heavy: boolean[] }) => {
  try {
    const out = msg.items.map((w, i) => processRecord(w, ctx, msg.heavy[i]));
    parentPort!.postMessage({ id: msg.id, items: out });
  } catch (err) {
    parentPort!.postMessage({ id: msg.id, error: (err as Error).stack ?? String(err) });
  }
});
parentPort!.postMessage({ ready: true });
