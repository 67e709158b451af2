import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { open, readdir, rm, stat, writeFile } from 'node:fs/promises';
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
 * A part file is a sequence of frames: a little-endian u32 body length and u32 chunk index, then the
 * body, processed records of that chunk serialized with v8.serialize (the structured clone a worker
 * thread already sends them as). It is written
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
      // One frame per chunk of the batch: the merge reads a frame's chunk from its header alone.
      for (let i = 0; i < items.length; ) {
        let j = i;
        while (j < items.length && items[j].chunk === items[i].chunk) j++;
        const frame = encodeFrame(items[i].chunk, items.slice(i, j));
        hash.update(frame);
        await out.write(frame);
        summary.bytes += frame.length;
        i = j;
      }
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

const FRAME_HEAD = 8;

function encodeFrame(chunk: number, items: WorkItem[]): Buffer {
  const body = serialize(items);
  const head = Buffer.alloc(FRAME_HEAD);
  head.writeUInt32LE(body.length, 0);
  head.writeUInt32LE(chunk, 4);
  return Buffer.concat([head, body]);
}

/**
 * Reads one part file frame by frame with positioned reads, opening it only for each read: the merge
 * keeps thousands of parts in step without holding a file handle or a buffer for any of them. Checks
 * the length and digest against the task's completion marker.
 */
class PartReader {
  private offset = 0;
  private readonly hash = createHash('sha256');
  private size: number | undefined;
  constructor(
    readonly path: string,
    private readonly expected: PartSummary,
  ) {}

  private async read(at: number, n: number): Promise<Buffer> {
    const fh = await open(this.path, 'r');
    try {
      const buf = Buffer.alloc(n);
      const { bytesRead } = await fh.read(buf, 0, n, at);
      if (bytesRead !== n)
        throw new UserError(`${this.path} ends inside a frame; delete its completion marker and rerun.`);
      return buf;
    } finally {
      await fh.close();
    }
  }

  /** The chunk of the next frame, or undefined at the end of the part. */
  async nextChunk(): Promise<number | undefined> {
    if (this.size === undefined) {
      this.size = (await stat(this.path).catch(() => undefined))?.size;
      if (this.size !== this.expected.bytes) {
        throw new UserError(
          `${this.path} has ${this.size ?? 'no'} bytes, its completion marker says ${this.expected.bytes}; delete the marker and rerun to rebuild the part.`,
        );
      }
    }
    if (this.offset >= this.size) return undefined;
    return (await this.read(this.offset, FRAME_HEAD)).readUInt32LE(4);
  }

  async nextFrame(): Promise<WorkItem[]> {
    const n = (await this.read(this.offset, FRAME_HEAD)).readUInt32LE(0);
    const frame = await this.read(this.offset, FRAME_HEAD + n);
    this.hash.update(frame);
    this.offset += frame.length;
    if (this.offset === this.size && this.hash.digest('hex') !== this.expected.sha256) {
      throw new UserError(
        `${this.path} does not match the digest in its completion marker; delete the marker and rerun to rebuild the part.`,
      );
    }
    return deserialize(frame.subarray(FRAME_HEAD)) as WorkItem[];
  }
}

/** The parts' records in input order: chunk k comes from part k mod tasks. */
export function partsFeed(dir: string, parts: PartSummary[]): RecordFeed {
  return async function* (_source, reusable) {
    const readers = parts.map((p) => new PartReader(partPath(dir, p.rank), p));
    for (let k = 0; ; k++) {
      const reader = readers[k % readers.length];
      if ((await reader.nextChunk()) !== k) {
        // Chunks are numbered without gaps, so the input ends where a chunk is missing.
        for (const r of readers) {
          const left = await r.nextChunk();
          if (left !== undefined)
            throw new Error(`${r.path}: chunk ${left} found after the input ended at chunk ${k}`);
        }
        return;
      }
      let first = true;
      while ((await reader.nextChunk()) === k) {
        const items = await reader.nextFrame();
        if (first && items.length) keepReusable(reusable, k, items[0].id, true);
        first = false;
        yield items;
      }
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
