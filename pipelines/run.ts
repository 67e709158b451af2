import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../common/errors.ts';
import { AtomicChunkFile, AtomicWriteStream, atomicWriteJson } from '../common/fs.ts';
import { Progress } from '../common/progress.ts';
import {
  type ChunkInfo,
  DATASET_SCHEMA_VERSION,
  type DatasetManifest,
  type ShardInfo,
  type Split,
} from '../schemas/dataset.ts';
import { ShardBuilder } from './dataset/columns.ts';
import { addCounts, MANIFEST_FILE, readManifest } from './dataset/manifest.ts';
import { type RejectLine, shardFile, sortKeys, writeChunk } from './dataset/writer.ts';
import { estimateSource } from './sources/estimate.ts';
import { openSource } from './sources/index.ts';
import type { SourceRecord, SourceSpec } from './sources/types.ts';
import { ExactDedup } from './steps/dedup.ts';
import type { SizeLimits } from './steps/filters.ts';
import { sha256Hex } from './steps/hash.ts';
import { DEFAULT_MINHASH, NearDupIndex } from './steps/minhash.ts';
import { type RecordExecutor, startExecutor } from './steps/pool.ts';
import { recordBytes, toWorkItem, type WorkItem } from './steps/record.ts';
import { assignSplit, inShard } from './steps/split.ts';
import { tsAddonPath } from './steps/ts-addon.ts';
import { loadTokenizer, tokenizerFileHash } from './tokenizer/index.ts';

export interface BuildOptions {
  source: SourceSpec;
  out: string;
  tokenizerPath: string;
  limits: SizeLimits;
  /** Estimated Jaccard at or above which a later file is a near-copy of an earlier one; 0 disables. */
  nearDupThreshold: number;
  keepParseErrors: boolean;
  /** Share of records sent to validation by stable hash, when the source gives no split. */
  validationFraction: number;
  /** Input records per chunk (one shard per split per chunk). */
  shardRecords: number;
  /** Input bytes per chunk: a chunk also closes here, so memory stays bounded with large files. */
  shardBytes?: number;
  shard?: { index: number; count: number };
  workers: number;
  rejectsOut?: string;
  /** Replace a dataset built with other settings instead of refusing. */
  overwrite?: boolean;
  quiet?: boolean;
  /** Called after each chunk is written and listed in the manifest (tests use it to simulate a crash). */
  onChunkWritten?: (index: number) => void;
}

export interface BuildResult {
  manifest: DatasetManifest;
  writtenChunks: number;
  skippedChunks: number;
  /** Seconds the first batch waited for the workers to start (module loading) after the build's own
   * set-up, for benchmarks that report steady-state rates. */
  startSeconds: number;
}

const BATCH_RECORDS = 16;
/** Input bytes per chunk: a chunk's rows, with tokens and spans, take ~15x its input in memory. */
export const DEFAULT_SHARD_BYTES = 8_000_000;
/**
 * Input bytes per batch of records sent to a worker. Chosen when it bounded the end of a build (1 MB
 * batches left 60 ms of one worker alone at the end of an 8 MB build, 256 KB batches 20-30 ms); workers
 * now also take records from each other's batches at the end (claims.ts), so it mainly sets how much input
 * is in flight.
 */
const BATCH_BYTES = 1 << 18;

interface ChunkState {
  index: number;
  records: number;
  firstId: string;
  lastId: string;
  done: boolean;
  /** The chunk's kept rows, per split, as they arrive. */
  shards: Record<Split, ShardBuilder>;
  rejects: RejectLine[];
}

/** The settings that decide the output; a rerun must match them to resume (workers do not matter). */
function outputSettings(o: BuildOptions, tokenizerHash: string): Record<string, unknown> {
  return {
    limits: o.limits,
    nearDupThreshold: o.nearDupThreshold,
    minhash: DEFAULT_MINHASH,
    keepParseErrors: o.keepParseErrors,
    validationFraction: o.validationFraction,
    shardRecords: o.shardRecords,
    shardBytes: o.shardBytes ?? DEFAULT_SHARD_BYTES,
    tokenizerHash,
  };
}

/** Chunks of an earlier run whose files are all present and intact: a rerun keeps them. */
async function reusableChunks(dir: string, m: DatasetManifest): Promise<Map<number, ChunkInfo>> {
  const ok = new Map<number, ChunkInfo>();
  for (const c of m.chunks) {
    const shards = m.shards.filter((s) => s.chunk === c.index);
    let intact = true;
    for (const s of shards) {
      try {
        if (sha256Hex(await readFile(join(dir, s.file))) !== s.sha256) intact = false;
      } catch {
        intact = false;
      }
    }
    for (const f of c.files) {
      if (!(await stat(join(dir, f)).catch(() => undefined))) intact = false;
    }
    if (intact) ok.set(c.index, c);
  }
  return ok;
}

/** Records of the source, each with the chunk it falls in and whether it opens that chunk. */
export interface ChunkedRecord {
  rec: SourceRecord;
  chunk: number;
  first: boolean;
}

/**
 * The source's records (after --shard) with their chunks. Chunks close after shardRecords records or
 * shardBytes input bytes, whichever comes first: a function of the input order and sizes only, so every
 * run (and every task of a distributed build) cuts the same chunks. Files are listed, not read.
 */
export async function* chunkedRecords(
  source: SourceSpec,
  o: Pick<BuildOptions, 'shard' | 'shardRecords' | 'shardBytes'>,
): AsyncGenerator<ChunkedRecord> {
  const shardBytes = o.shardBytes ?? DEFAULT_SHARD_BYTES;
  let chunk = 0;
  let chunkRecords = 0;
  let chunkBytes = 0;
  for await (const rec of openSource(source, { deferFileReads: true })) {
    if (!inShard(rec.id, o.shard)) continue;
    const size = recordBytes(rec);
    if (chunkRecords > 0 && (chunkRecords >= o.shardRecords || chunkBytes + size > shardBytes)) {
      chunk++;
      chunkRecords = 0;
      chunkBytes = 0;
    }
    const first = chunkRecords === 0;
    chunkRecords++;
    chunkBytes += size;
    yield { rec, chunk, first };
  }
}

/** Timings of a feed, for benchmarks that report steady-state rates. */
interface FeedTimes {
  firstBatchAt?: number;
  readyAt?: number;
}

/**
 * The per-record steps over `records`, as batches of processed items in input order. `heavy(r)` false
 * runs only what dedup needs (chunks already written). At most max(2, 4 x workers) batches are in flight:
 * the next is sent only once the consumer took the oldest.
 */
export async function* processedBatches(
  executor: RecordExecutor,
  records: AsyncIterable<ChunkedRecord>,
  workers: number,
  heavy: (r: ChunkedRecord) => boolean,
  times: FeedTimes = {},
): AsyncGenerator<WorkItem[]> {
  executor.ready().then(
    () => {
      times.readyAt = performance.now();
    },
    () => undefined,
  );
  const maxInFlight = Math.max(2, workers * 4);
  const inFlight: Promise<WorkItem[]>[] = [];
  let seq = 0;
  let batch: WorkItem[] = [];
  let heavyFlags: boolean[] = [];
  let batchBytes = 0;
  const send = (): void => {
    times.firstBatchAt ??= performance.now();
    inFlight.push(executor.run(batch, heavyFlags, true));
    batch = [];
    heavyFlags = [];
    batchBytes = 0;
  };
  try {
    // Workers read the files: this thread only lists them, and stays free for what must be serial.
    for await (const r of records) {
      const w = toWorkItem(seq++, r.rec, r.chunk);
      batch.push(w);
      heavyFlags.push(heavy(r));
      batchBytes += w.nBytes;
      if (batch.length >= BATCH_RECORDS || batchBytes >= BATCH_BYTES) {
        send();
        while (inFlight.length >= maxInFlight) yield await inFlight.shift()!;
      }
    }
    if (batch.length) send();
    while (inFlight.length) yield await inFlight.shift()!;
  } finally {
    await Promise.allSettled(inFlight);
  }
}

/** Starts the worker pool for the per-record steps (workers load while the caller lists the source). */
export function startRecordExecutor(o: Pick<BuildOptions, 'workers' | 'limits' | 'tokenizerPath'>) {
  const executor = startExecutor(o.workers, {
    limits: o.limits,
    minhash: DEFAULT_MINHASH,
    tokenizerPath: o.tokenizerPath,
    tsAddon: tsAddonPath(),
  });
  // A setup error before the build awaits it must surface, not a rejection nobody listens to.
  executor.catch(() => undefined);
  return executor;
}

export async function closeRecordExecutor(executor: Promise<RecordExecutor>): Promise<void> {
  await executor.then(
    (e) => e.close(),
    () => undefined,
  );
}

/** The source as the build records it in the manifest (directory sources carry the size limit). */
export function resolvedSource(o: Pick<BuildOptions, 'source' | 'limits'>): SourceSpec {
  return o.source.kind === 'dir' || o.source.kind === 'stdlib'
    ? { ...o.source, maxBytes: o.limits.maxBytes }
    : o.source;
}

export function checkBuildOptions(o: BuildOptions): void {
  if (!Number.isInteger(o.shardRecords) || o.shardRecords < 1) {
    throw new UserError(`--shard-records must be a positive integer; got ${o.shardRecords}.`);
  }
  if (o.shardBytes !== undefined && !(o.shardBytes > 0)) {
    throw new UserError(`--shard-mb must be positive; got ${o.shardBytes / 1e6}.`);
  }
  if (o.nearDupThreshold < 0 || o.nearDupThreshold > 1) {
    throw new UserError(`--near-dup-threshold must be in [0, 1] (0 disables); got ${o.nearDupThreshold}.`);
  }
  if (o.limits.minBytes > o.limits.maxBytes) {
    throw new UserError(
      `--min-bytes ${o.limits.minBytes} is above --max-bytes ${o.limits.maxBytes}: every file would be dropped.`,
    );
  }
  if (o.validationFraction < 0 || o.validationFraction > 1) {
    throw new UserError(`--validation-fraction must be in [0, 1]; got ${o.validationFraction}.`);
  }
}

/**
 * Where a build's processed records come from, in input order: the per-record steps run here (a local
 * build), or the parts a distributed build's tasks wrote (dataset/parts.ts). `reusable` holds the chunks
 * an earlier run left intact; a feed drops a chunk from it when the chunk no longer starts where it did.
 */
export type RecordFeed = (
  source: SourceSpec,
  reusable: Map<number, ChunkInfo>,
  times: FeedTimes,
) => AsyncIterable<WorkItem[]>;

/** A reused chunk is only trusted when it starts at the same record as before. */
export function keepReusable(reusable: Map<number, ChunkInfo>, chunk: number, id: string, first: boolean) {
  const prev = reusable.get(chunk);
  const ok = !!prev && (!first || prev.firstId === id);
  if (!ok) reusable.delete(chunk);
  return ok;
}

/**
 * Build a tokenized dataset: source -> per-record steps (workers) -> in-order dedup and split -> Arrow
 * shards + manifest. Deterministic: the same input and settings give byte-identical files whatever the
 * number of workers, and a killed build resumes from its last complete chunk.
 */
export async function buildDataset(o: BuildOptions): Promise<BuildResult> {
  checkBuildOptions(o);
  // Workers load their modules and the tokenizer while this thread reads the manifest and lists the source.
  const executor = startRecordExecutor(o);
  const feed: RecordFeed = async function* (source, reusable, times) {
    const records = chunkedRecords(source, o);
    const marked = (async function* () {
      for await (const r of records) {
        keepReusable(reusable, r.chunk, r.rec.id, r.first);
        yield r;
      }
    })();
    yield* processedBatches(await executor, marked, o.workers, (r) => !reusable.has(r.chunk), times);
  };
  try {
    return await build(o, feed);
  } finally {
    await closeRecordExecutor(executor);
  }
}

function sameBuild(
  previous: DatasetManifest,
  o: BuildOptions,
  settings: Record<string, unknown>,
  sourceKey: string,
): boolean {
  return (
    JSON.stringify(previous.settings) === JSON.stringify(settings) &&
    JSON.stringify(previous.source) === sourceKey &&
    JSON.stringify(previous.shard ?? null) === JSON.stringify(o.shard ?? null)
  );
}

const otherBuild = (out: string): UserError =>
  new UserError(
    `${join(out, MANIFEST_FILE)} was built from another source or with other settings; pass --overwrite to replace it or choose another --out.`,
  );

/** Refuses --out when it holds a dataset built with other settings (without --overwrite); writes nothing. */
export async function checkOutputDir(o: BuildOptions): Promise<void> {
  const previous = await readManifest(o.out);
  if (!previous || o.overwrite) return;
  const settings = outputSettings(o, await tokenizerFileHash(o.tokenizerPath));
  if (!sameBuild(previous, o, settings, JSON.stringify(resolvedSource(o)))) throw otherBuild(o.out);
}

/** Dedup, split and write what `feed` yields; the manifest and resume logic of every build. */
export async function build(o: BuildOptions, feed: RecordFeed): Promise<BuildResult> {
  // The executor loads the tokenizer (and reports a malformed file); this thread only needs its hash.
  const tokenizerHash = await tokenizerFileHash(o.tokenizerPath);
  const settings = outputSettings(o, tokenizerHash);
  const source = resolvedSource(o);
  const sourceKey = JSON.stringify(source);

  const previous = await readManifest(o.out);
  let reusable = new Map<number, ChunkInfo>();
  let previousShards: ShardInfo[] = [];
  if (previous) {
    if (sameBuild(previous, o, settings, sourceKey)) {
      reusable = await reusableChunks(o.out, previous);
      previousShards = previous.shards;
    } else if (o.overwrite) {
      // A tokenizer that cannot be loaded must fail the build before it deletes the old dataset.
      await loadTokenizer(o.tokenizerPath);
      for (const p of [MANIFEST_FILE, 'train', 'validation', 'rejects'])
        await rm(join(o.out, p), { recursive: true, force: true });
    } else {
      throw otherBuild(o.out);
    }
  }

  await removeTemporaryShards(o.out);

  // Totals only feed the progress line's ETA: a quiet build does not walk the source twice for them.
  const estimate = o.quiet ? {} : await estimateSource(source);
  const parts = o.shard?.count ?? 1;
  const progress = new Progress({
    label: 'data build',
    unit: 'files',
    bytes: true,
    total: estimate.items ? Math.ceil(estimate.items / parts) : undefined,
    // The stdlib's capped validation files are never read, so its byte total would mislead the ETA.
    totalBytes: estimate.bytes && source.kind !== 'stdlib' ? Math.ceil(estimate.bytes / parts) : undefined,
    quiet: o.quiet,
  });

  const chunks = new Map<number, ChunkInfo>();
  const shards = new Map<number, ShardInfo[]>();
  let written = 0;
  let skipped = 0;

  const manifestNow = (complete: boolean): DatasetManifest => {
    // While running, intact chunks of an earlier run not reached yet stay listed, so a kill now does not
    // throw their work away; the final manifest lists exactly the chunks this input produced.
    if (!complete) {
      for (const [i, c] of reusable) {
        if (chunks.has(i)) continue;
        chunks.set(i, c);
        shards.set(
          i,
          previousShards.filter((x) => x.chunk === i),
        );
      }
    }
    const order = [...chunks.keys()].sort((a, b) => a - b);
    const allShards = order.flatMap((i) => shards.get(i) ?? []);
    const counts: DatasetManifest['counts'] = {
      train: { rows: 0, tokens: 0, bytes: 0 },
      validation: { rows: 0, tokens: 0, bytes: 0 },
    };
    for (const s of allShards) {
      counts[s.split].rows += s.rows;
      counts[s.split].tokens += s.tokens;
      counts[s.split].bytes += s.bytes;
    }
    const rejects: Record<string, number> = {};
    for (const i of order) addCounts(rejects, chunks.get(i)!.rejects);
    return {
      schemaVersion: DATASET_SCHEMA_VERSION,
      createdBy: 'sdt data build',
      tokenizerHash,
      tokenizerPath: o.tokenizerPath,
      source,
      settings,
      ...(o.shard ? { shard: o.shard } : {}),
      counts,
      rejects: sortKeys(rejects),
      shards: allShards,
      chunks: order.map((i) => chunks.get(i)!),
      complete,
    };
  };

  const visited = new Set<number>();
  const finishChunk = async (c: ChunkState): Promise<void> => {
    visited.add(c.index);
    if (c.done) {
      const prev = reusable.get(c.index)!;
      if (prev.records !== c.records || prev.lastId !== c.lastId) {
        throw new UserError(
          `the source changed since the interrupted build in ${o.out} (chunk ${c.index} now ends at ${c.lastId}, was ${prev.lastId}); pass --overwrite to rebuild from scratch.`,
        );
      }
      chunks.set(c.index, prev);
      shards.set(
        c.index,
        previousShards.filter((s) => s.chunk === c.index),
      );
      skipped++;
      return;
    }
    const records = { count: c.records, firstId: c.firstId, lastId: c.lastId };
    const result = await writeChunk(o.out, c.index, records, c.shards, c.rejects);
    chunks.set(c.index, result.chunk);
    shards.set(c.index, result.shards);
    written++;
    await atomicWriteJson(join(o.out, MANIFEST_FILE), manifestNow(false));
    o.onChunkWritten?.(c.index);
  };

  const exact = new ExactDedup();
  const near =
    o.nearDupThreshold > 0 ? new NearDupIndex(o.nearDupThreshold, DEFAULT_MINHASH.numPerm) : undefined;
  let current: ChunkState | undefined;

  const consume = async (w: WorkItem): Promise<void> => {
    const index = w.chunk;
    if (!current || current.index !== index) {
      if (current) await finishChunk(current);
      current = {
        index,
        records: 0,
        firstId: w.id,
        lastId: w.id,
        done: reusable.has(index),
        // Shards are written as their record batches are encoded, under temporary names until complete.
        shards: {
          train: new ShardBuilder(new AtomicChunkFile(join(o.out, shardFile('train', index)))),
          validation: new ShardBuilder(new AtomicChunkFile(join(o.out, shardFile('validation', index)))),
        },
        rejects: [],
      };
    }
    const c = current;
    c.records++;
    c.lastId = w.id;
    progress.tick(1, w.nBytes);
    const drop = (reason: string, detail: string): void => {
      c.rejects.push({ id: w.id, origin: w.origin, reason, detail });
    };
    if (w.reject) return drop(w.reject.reason, w.reject.detail);
    // Dedup runs for every chunk, written or not, so the index is the same as in an uninterrupted run.
    const twin = exact.checkAndAdd(w.id, w.contentHash!);
    if (twin !== undefined) return drop('exact-duplicate', `same content as ${twin}`);
    const similar = near?.checkAndAdd(w.id, w.signature!);
    if (similar)
      return drop(
        'near-duplicate',
        `near-copy of ${similar.id} (similarity ${similar.similarity.toFixed(2)})`,
      );
    if (w.parseErrors > 0 && !o.keepParseErrors) {
      return drop(
        'parse-error',
        `${w.parseErrors} ERROR/MISSING nodes; --keep-parse-errors keeps such files`,
      );
    }
    if (!w.tokens) return; // chunk already written: nothing more to do with this record
    const split: Split = assignSplit(w.id, w.split, o.validationFraction);
    c.shards[split].add({
      id: w.id,
      origin: w.origin,
      language: w.language,
      split,
      text: w.utf8 ?? w.text!,
      tokens: w.tokens,
      spanKind: w.spanKind!,
      spanStart: w.spanStart!,
      spanEnd: w.spanEnd!,
      parseErrors: w.parseErrors,
      nBytes: w.nBytes,
    });
  };

  const times: FeedTimes = {};
  try {
    for await (const items of feed(source, reusable, times)) for (const w of items) await consume(w);
    if (current) await finishChunk(current);
  } catch (err) {
    // The chunk being built never becomes a shard: drop what was written of it.
    if (current && !current.done)
      await Promise.allSettled([current.shards.train.abort(), current.shards.validation.abort()]);
    throw err;
  } finally {
    progress.done();
  }
  // Chunks listed only to protect them during the run are dropped if this input did not reach them.
  for (const i of [...chunks.keys()]) if (!visited.has(i)) chunks.delete(i);
  const manifest = manifestNow(true);
  await atomicWriteJson(join(o.out, MANIFEST_FILE), manifest);
  await removeStaleFiles(o.out, previous, manifest);
  if (o.rejectsOut) await concatRejects(o.out, manifest, o.rejectsOut);
  const startSeconds =
    times.firstBatchAt !== undefined && times.readyAt !== undefined
      ? Math.max(0, (times.readyAt - times.firstBatchAt) / 1000)
      : 0;
  return { manifest, writtenChunks: written, skippedChunks: skipped, startSeconds };
}

/**
 * Shards a killed build was still writing (temporary names, see AtomicChunkFile): a rerun writes them
 * again under new names, so these would only pile up.
 */
async function removeTemporaryShards(dir: string): Promise<void> {
  for (const split of ['train', 'validation']) {
    const names = await readdir(join(dir, split)).catch(() => [] as string[]);
    for (const n of names)
      if (n.startsWith('.shard-') && n.includes('.tmp-')) await rm(join(dir, split, n), { force: true });
  }
}

/** Files an earlier run wrote that the new manifest no longer lists (the source shrank, a split emptied). */
async function removeStaleFiles(dir: string, previous: DatasetManifest | undefined, now: DatasetManifest) {
  if (!previous) return;
  const keep = new Set(now.chunks.flatMap((c) => c.files));
  for (const f of previous.chunks.flatMap((c) => c.files)) {
    if (!keep.has(f)) await rm(join(dir, f), { force: true });
  }
}

async function concatRejects(dir: string, m: DatasetManifest, outPath: string): Promise<void> {
  const out = await AtomicWriteStream.open(outPath);
  try {
    for (const c of m.chunks) {
      for (const f of c.files.filter((x) => x.startsWith('rejects/')))
        await out.write(await readFile(join(dir, f)));
    }
    await out.commit();
  } catch (err) {
    await out.abort();
    throw err;
  }
}
