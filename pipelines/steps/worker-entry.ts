// Worker thread: runs the per-record steps on batches the main thread sends (see pool.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { UserError } from '../../common/errors.ts';
import { type BatchClaims, claimGroup } from './claims.ts';
import { makeStepContext, type StepContextSpec } from './context.ts';
import { processBatch, type StepContext, transferables, type WorkItem } from './record.ts';

interface Batch {
  id: number;
  items: WorkItem[];
  heavy: boolean[];
  /** Shared record claims (claims.ts); without them the batch is this worker's alone. */
  claims?: BatchClaims;
  /** Sent to help another worker: take records from the back. */
  backwards?: boolean;
}

let ctx: Awaited<ReturnType<typeof makeStepContext>>;
try {
  ctx = await makeStepContext((workerData as { data: StepContextSpec }).data);
} catch (err) {
  // A bad tokenizer file is the user's to fix: say so plainly instead of as a crashed thread.
  parentPort!.postMessage({ startError: (err as Error).message, userError: err instanceof UserError });
  process.exit(0);
}
const queue: Batch[] = [];
let scheduled = false;

function runOne(): void {
  scheduled = false;
  const msg = queue.shift();
  if (!msg) return;
  try {
    const { from, out } = runBatch(msg, ctx);
    // Texts that came as bytes go back as those bytes (transferred): copying strings back would cost
    // both threads, and a second UTF-8 encode when the shard is written.
    for (const w of out) if (w.utf8) w.text = undefined;
    // Transferred, not copied: the tokens and spans of a 1 MB batch are a few MB of typed arrays.
    parentPort!.postMessage({ id: msg.id, from, items: out }, transferables(out));
  } catch (err) {
    parentPort!.postMessage({ id: msg.id, error: (err as Error).stack ?? String(err) });
  }
  schedule();
}

/** The records of the batch this worker claimed, processed: they start at index `from`. */
function runBatch(msg: Batch, stepCtx: StepContext): { from: number; out: WorkItem[] } {
  const { items, heavy, claims, backwards = false } = msg;
  if (!claims) return { from: 0, out: processBatch(items, stepCtx, heavy) };
  const sizes = items.map((w) => w.nBytes);
  // Done so far: [lo, hi), grown at the front (helper) or the back (owner).
  let lo = backwards ? items.length : 0;
  let hi = lo;
  const groups: WorkItem[][] = [];
  for (;;) {
    const g = claimGroup(claims, sizes, backwards ? lo - 1 : hi, backwards);
    if (g.hi > g.lo) {
      const done = processBatch(items.slice(g.lo, g.hi), stepCtx, heavy.slice(g.lo, g.hi));
      if (backwards) groups.unshift(done);
      else groups.push(done);
      lo = Math.min(lo, g.lo);
      hi = Math.max(hi, g.hi);
    }
    if (g.lost || (backwards ? lo === 0 : hi === items.length)) break;
  }
  return { from: lo, out: groups.flat() };
}

/**
 * One batch per event-loop turn, via setImmediate: tree-sitter trees are freed by finalisers that run
 * between turns, and a port that always has messages queued would otherwise never let them run.
 */
function schedule(): void {
  if (scheduled || queue.length === 0) return;
  scheduled = true;
  setImmediate(runOne);
}

parentPort!.on('message', (msg: Batch) => {
  queue.push(msg);
  schedule();
});
parentPort!.postMessage({ ready: true });
