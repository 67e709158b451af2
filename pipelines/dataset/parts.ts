import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readdir, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { deserialize, serialize } from 'node:v8';
import { UserError } from '../../common/errors.ts';
import { AtomicWriteStream } from '../../common/fs.ts';
import type { JobKind } from '../../jobs/kinds.ts';
import {
  type BuildOptions,
  type BuildResult,
  build,
  type ChunkedRecord,
  checkBuildOptions,
  chunkedRecords,
  closeRecordExecutor,
  keepReusable,
  processedBatches,
  type RecordFeed,
  resolvedSource,
  startRecordExecutor,
} from '../run.ts';
import type { WorkItem } from '../steps/record.ts';
import { readManifest } from './manifest.ts';

/**
 * A distributed build's parts. Task `rank` of `tasks` runs the per-record steps on the chunks k with
 * k mod tasks = rank (every task lists the source and cuts the same chunks, see chunkedRecords) and writes
 * the processed records to one part file; the merge reads the parts back chunk by chunk, in input order,
 * and hands them to the same dedup/split/write code as a local build, so its output is the local build's
 * byte for byte. Dedup is the one step that needs every earlier record, which is why it waits for the merge.
 *
 * A part file is a sequence of frames: a little-endian u32 length, then a batch of processed records
 * serialized with v8.serialize (the structured clone a worker thread already sends them as). It is written
 * under a temporary name and renamed when complete, so a task killed mid-write leaves no part behind.
 */

export interface PartSummary {
  rank: number;
  tasks: number;
  records: number;
  chunks: number;
  bytes: number;
  sha256: string;
  /** Input bytes of the records (as listed), for per-task rates. */
  inputBytes: number;
}

export const partPath = (dir: string, rank: number): string =>
  join(dir, `part-${String(rank).padStart(5, '0')}.bin`);

export const planPath = (dir: string, rank: number): string =>
  join(dir, `plan-${String(rank).padStart(5, '0')}.jsonl`);

/**
 * For sources of files (a directory, the default corpus): lists the source once and writes, per task, the
 * records of its chunks (paths and sizes, never contents) to `dir`, so a task reads its own list instead
 * of listing the whole source again. Tabular sources hold their texts inline and get no plan: each task
 * streams the source and keeps its chunks. Returns the number of records listed, or undefined.
 */
export async function writePlan(o: BuildOptions, tasks: number, dir: string): Promise<number | undefined> {
  const source = resolvedSource(o);
  if (source.kind !== 'dir' && source.kind !== 'stdlib') return undefined;
  const outs = await Promise.all(
    Array.from({ length: tasks }, (_, r) => AtomicWriteStream.open(planPath(dir, r))),
  );
  let n = 0;
  try {
    for await (const r of chunkedRecords(source, o)) {
      await outs[r.chunk % tasks].write(`${JSON.stringify(r)}\n`);
      n++;
    }
    for (const out of outs) await out.commit();
  } catch (err) {
    await Promise.allSettled(outs.map((out) => out.abort()));
    throw err;
  }
  return n;
}

async function* plannedRecords(path: string): AsyncGenerator<ChunkedRecord> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) if (line) yield JSON.parse(line) as ChunkedRecord;
}

/** What a killed attempt of this rank was writing (AtomicWriteStream's temporary names). */
async function removeTemporaryPart(path: string): Promise<void> {
  const prefix = `.${basename(path)}.tmp-`;
  const names = await readdir(dirname(path)).catch(() => [] as string[]);
  for (const n of names) if (n.startsWith(prefix)) await rm(join(dirname(path), n), { force: true });
}

/**
 * SDT_PART_STALL=RANK:FILE makes task RANK, when FILE does not exist yet, create it after its first frame
 * and then wait forever: the Slurm tests cancel it there, mid-write, the way a lost node stops a task.
 */
async function stallHook(rank: number): Promise<void> {
  const spec = process.env.SDT_PART_STALL;
  if (!spec) return;
  const [r, file] = [spec.slice(0, spec.indexOf(':')), spec.slice(spec.indexOf(':') + 1)];
  if (Number(r) !== rank || existsSync(file)) return;
  await writeFile(file, `${process.pid}\n`);
  await new Promise(() => undefined);
}

/** Runs task `rank` of `tasks` of a distributed build and writes its part to `path`. */
export async function buildPart(
  o: BuildOptions,
  rank: number,
  tasks: number,
  path: string,
  /** The task's records as writePlan listed them; without one the task lists the source itself. */
  planFile?: string,
): Promise<PartSummary> {
  checkBuildOptions(o);
  const executor = startRecordExecutor(o);
  await removeTemporaryPart(path);
  const out = await AtomicWriteStream.open(path);
  const hash = createHash('sha256');
  const summary: PartSummary = { rank, tasks, records: 0, chunks: 0, bytes: 0, sha256: '', inputBytes: 0 };
  let lastChunk = -1;
  try {
    const plan = planFile && existsSync(planFile) ? planFile : undefined;
    const records = plan
      ? plannedRecords(plan)
      : (async function* (): AsyncGenerator<ChunkedRecord> {
          for await (const r of chunkedRecords(resolvedSource(o), o)) if (r.chunk % tasks === rank) yield r;
        })();
    for await (const items of processedBatches(await executor, records, o.workers, () => true)) {
      const body = serialize(items);
      const head = Buffer.alloc(4);
      head.writeUInt32LE(body.length);
      for (const b of [head, body]) {
        hash.update(b);
        await out.write(b);
      }
      summary.bytes += 4 + body.length;
      summary.records += items.length;
      for (const w of items) {
        summary.inputBytes += w.nBytes;
        if (w.chunk !== lastChunk) summary.chunks++;
        lastChunk = w.chunk;
      }
      await stallHook(rank);
    }
    await out.commit();
  } catch (err) {
    await out.abort();
    throw err;
  } finally {
    await closeRecordExecutor(executor);
  }
  summary.sha256 = hash.digest('hex');
  return summary;
}

/** The record batches of one part file, checking its length and digest against the task's summary. */
async function* partBatches(path: string, expected: PartSummary): AsyncGenerator<WorkItem[]> {
  const size = (await stat(path).catch(() => undefined))?.size;
  if (size !== expected.bytes) {
    throw new UserError(
      `${path} has ${size ?? 'no'} bytes, its completion marker says ${expected.bytes}; delete the marker and rerun to rebuild the part.`,
    );
  }
  const hash = createHash('sha256');
  let pending: Buffer = Buffer.alloc(0);
  for await (const piece of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    hash.update(piece);
    pending = pending.length ? Buffer.concat([pending, piece]) : piece;
    while (pending.length >= 4) {
      const n = pending.readUInt32LE(0);
      if (pending.length < 4 + n) break;
      yield deserialize(pending.subarray(4, 4 + n)) as WorkItem[];
      pending = pending.subarray(4 + n);
    }
  }
  if (pending.length)
    throw new UserError(`${path} ends inside a frame; delete its completion marker and rerun.`);
  if (hash.digest('hex') !== expected.sha256) {
    throw new UserError(
      `${path} does not match the digest in its completion marker; delete the marker and rerun to rebuild the part.`,
    );
  }
}

/** Reads a part's records one at a time, with a look at the next. */
class PartCursor {
  private batch: WorkItem[] = [];
  private at = 0;
  private done = false;
  constructor(private readonly batches: AsyncGenerator<WorkItem[]>) {}
  async peek(): Promise<WorkItem | undefined> {
    while (this.at >= this.batch.length && !this.done) {
      const next = await this.batches.next();
      if (next.done) this.done = true;
      else {
        this.batch = next.value;
        this.at = 0;
      }
    }
    return this.done ? undefined : this.batch[this.at];
  }
  take(): WorkItem {
    return this.batch[this.at++];
  }
  async close(): Promise<void> {
    await this.batches.return(undefined);
  }
}

/** The parts' records in input order: chunk k comes from part k mod tasks. */
export function partsFeed(dir: string, parts: PartSummary[]): RecordFeed {
  return async function* (_source, reusable) {
    const cursors = parts.map((p) => new PartCursor(partBatches(partPath(dir, p.rank), p)));
    try {
      for (let k = 0; ; k++) {
        const cursor = cursors[k % cursors.length];
        const first = await cursor.peek();
        if (!first || first.chunk !== k) {
          // Chunks are numbered without gaps, so the input ends where a chunk is missing.
          for (const [r, c] of cursors.entries()) {
            const left = await c.peek();
            if (left)
              throw new Error(
                `${partPath(dir, r)}: chunk ${left.chunk} found after the input ended at chunk ${k}`,
              );
          }
          return;
        }
        keepReusable(reusable, k, first.id, true);
        let batch: WorkItem[] = [];
        while ((await cursor.peek())?.chunk === k) {
          batch.push(cursor.take());
          if (batch.length >= 64) {
            yield batch;
            batch = [];
          }
        }
        if (batch.length) yield batch;
      }
    } finally {
      await Promise.allSettled(cursors.map((c) => c.close()));
    }
  };
}

/** The merge: global dedup, split, shards and manifest from the parts, as a local build would write them. */
export function mergeParts(o: BuildOptions, dir: string, parts: PartSummary[]): Promise<BuildResult> {
  checkBuildOptions(o);
  return build(o, partsFeed(dir, parts));
}

/** The distributed data build (`sdt data build --executor ...`): tasks write parts, the merge the dataset. */
export const dataBuildJob: JobKind = {
  async task(record, run, rank, cpus) {
    const o = { ...(record.settings as unknown as BuildOptions), workers: cpus, quiet: true };
    return buildPart(o, rank, record.tasks, partPath(run.partsDir, rank), planPath(run.path('plan'), rank));
  },
  async prepare(record, run) {
    const o = { ...(record.settings as unknown as BuildOptions), workers: 0, quiet: true };
    const n = await writePlan(o, record.tasks, run.path('plan'));
    return n === undefined
      ? 'no plan (a tabular source: each task streams it)'
      : `${n} records listed into plan/`;
  },
  async merge(record, run, summaries) {
    const o = { ...(record.settings as unknown as BuildOptions), workers: 0, quiet: true };
    const started = performance.now();
    const r = await mergeParts(o, run.partsDir, summaries as PartSummary[]);
    return {
      seconds: (performance.now() - started) / 1000,
      writtenChunks: r.writtenChunks,
      counts: r.manifest.counts,
    };
  },
  async outputDone(record) {
    const m = await readManifest((record.settings as unknown as BuildOptions).out).catch(() => undefined);
    return !!m?.complete;
  },
};
