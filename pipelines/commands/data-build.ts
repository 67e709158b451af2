import { readFile, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { bool, type CommandSpec, list, num, type OptionValues, optStr, str } from '../../common/cli.ts';
import { UserError } from '../../common/errors.ts';
import { runDistributed } from '../../jobs/executor.ts';
import { EXECUTOR_FLAGS, executorOptions, isDistributed } from '../../jobs/flags.ts';
import type { DatasetManifest } from '../../schemas/dataset.ts';
import { readManifest } from '../dataset/manifest.ts';
import { type BuildOptions, buildDataset, checkBuildOptions, checkOutputDir } from '../run.ts';
import { sourceKindOfPath } from '../sources/index.ts';
import type { SourceSpec } from '../sources/types.ts';
import { DEFAULT_SIZE_LIMITS } from '../steps/filters.ts';

/** --shard "i/N" -> { index, count }. */
export function parseShardFlag(value: string | undefined): { index: number; count: number } | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(value.trim());
  const index = m ? Number(m[1]) : Number.NaN;
  const count = m ? Number(m[2]) : Number.NaN;
  if (!m || count < 1 || index >= count) {
    throw new UserError(`--shard expects i/N with 0 <= i < N (e.g. 0/4); got ${JSON.stringify(value)}.`);
  }
  return { index, count };
}

async function sourceSpec(opts: OptionValues): Promise<SourceSpec> {
  // Absolute paths, so a rerun from another folder is recognised as the same source.
  const given = optStr(opts, 'source');
  const source = given === undefined ? undefined : resolve(given);
  if (!source) return { kind: 'stdlib', maxValidationFiles: num(opts, 'max-validation-files') };
  let isDir: boolean;
  try {
    isDir = (await stat(source)).isDirectory();
  } catch {
    throw new UserError(
      `--source ${source} does not exist; pass a directory or a .jsonl/.parquet/.arrow file.`,
    );
  }
  const type = str(opts, 'source-type');
  const kind = type === 'auto' ? sourceKindOfPath(source, isDir) : (type as SourceSpec['kind']);
  if (!kind) {
    throw new UserError(
      `--source ${source}: cannot tell the format from the name; pass --source-type jsonl, parquet or arrow.`,
    );
  }
  if (kind === 'dir') {
    const include = list(opts, 'include');
    return {
      kind,
      root: source,
      include: include.length ? include : ['*.py'],
      exclude: list(opts, 'exclude'),
    };
  }
  if (kind === 'stdlib') throw new UserError('--source-type stdlib takes no --source.');
  return {
    kind,
    path: source,
    textField: str(opts, 'text-field'),
    splitField: optStr(opts, 'split-field'),
    idField: optStr(opts, 'id-field'),
    language: str(opts, 'language'),
  };
}

/**
 * SDT_DATA_KILL_AFTER_CHUNKS=n makes the process SIGKILL itself once n chunks are written: the resume
 * test uses it to die at a known point without cleanup, like a machine that loses power.
 */
function crashHook(): ((index: number) => void) | undefined {
  const n = Number(process.env.SDT_DATA_KILL_AFTER_CHUNKS);
  if (!Number.isInteger(n) || n <= 0) return undefined;
  let written = 0;
  return () => {
    if (++written >= n) process.kill(process.pid, 'SIGKILL');
  };
}

export const command: CommandSpec = {
  name: 'data build',
  summary: 'build a tokenized dataset (Arrow shards + manifest) from code, with dedup and tree-sitter spans',
  description: `
Steps, per record: decode (reject invalid UTF-8 and binary), size and line-length filters, fingerprint
(sha256 and MinHash), tree-sitter parse, tokenize, spans as token ranges; then in input order: exact dedup,
near dedup, parse-error filter, split (the source's, or a stable hash of the id). Input records are cut into
chunks of --shard-records; each chunk becomes train/shard-K.arrow and validation/shard-K.arrow. Rerunning
the same command skips complete chunks (a killed build resumes) and gives byte-identical files, whatever
--workers is. See docs/data.md.`,
  options: {
    source: {
      type: 'string',
      arg: 'PATH',
      description:
        'a directory, or a .jsonl/.parquet/.arrow file; without it the python3 stdlib (test folders held out as validation)',
    },
    'source-type': {
      type: 'string',
      description: 'format of --source when its name does not say',
      choices: ['auto', 'dir', 'jsonl', 'parquet', 'arrow'],
      default: 'auto',
    },
    out: {
      type: 'string',
      output: 'dir',
      arg: 'DIR',
      description: 'dataset directory',
      default: 'runs/data',
    },
    tokenizer: {
      type: 'string',
      arg: 'FILE',
      description: 'tokenizer.json (train one with `sdt tokenizer train`)',
      default: 'runs/tokenizer/tokenizer.json',
    },
    include: {
      type: 'list',
      arg: 'GLOB',
      description:
        'directory source: files to take (repeatable; "*.py" matches at any depth) [default: "*.py"]',
    },
    exclude: { type: 'list', arg: 'GLOB', description: 'directory source: files to skip (repeatable)' },
    'text-field': {
      type: 'string',
      arg: 'NAME',
      description: 'tabular source: the text column',
      default: 'content',
    },
    'split-field': {
      type: 'string',
      arg: 'NAME',
      description: 'tabular source: column with train/validation (valid, val, dev, test)',
    },
    'id-field': {
      type: 'string',
      arg: 'NAME',
      description: 'tabular source: column with a stable id [default: file:row]',
    },
    language: { type: 'string', description: 'tabular source: language of the texts', default: 'python' },
    'max-validation-files': {
      type: 'number',
      min: 0,
      integer: true,
      arg: 'N',
      description: 'default corpus: held-out test files kept for validation',
      default: 200,
    },
    'validation-fraction': {
      type: 'number',
      min: 0,
      max: 1,
      arg: 'F',
      description: 'share of records sent to validation by stable hash when the source gives no split',
      default: 0.02,
    },
    'min-bytes': {
      type: 'number',
      min: 0,
      integer: true,
      arg: 'N',
      description: 'drop smaller files',
      default: DEFAULT_SIZE_LIMITS.minBytes,
    },
    'max-bytes': {
      type: 'number',
      min: 1,
      integer: true,
      arg: 'N',
      description: 'drop larger files',
      default: DEFAULT_SIZE_LIMITS.maxBytes,
    },
    'max-line-length': {
      type: 'number',
      min: 1,
      integer: true,
      arg: 'N',
      description: 'drop files with a longer line (minified or generated)',
      default: DEFAULT_SIZE_LIMITS.maxLineLength,
    },
    'near-dup-threshold': {
      type: 'number',
      min: 0,
      max: 1,
      arg: 'J',
      description: 'MinHash Jaccard at which a later file is dropped as a near-copy (0 disables)',
      default: 0.85,
    },
    'keep-parse-errors': {
      type: 'boolean',
      description: 'keep files tree-sitter parses with ERROR/MISSING nodes',
    },
    'shard-records': {
      type: 'number',
      min: 1,
      integer: true,
      arg: 'N',
      description: 'input records per chunk (one shard per split)',
      default: 1000,
    },
    'shard-mb': {
      type: 'number',
      min: 0,
      minExclusive: true,
      arg: 'MB',
      description:
        'input megabytes per chunk at most (bounds memory: a chunk takes ~15-40x this while written)',
      default: 8,
    },
    shard: { type: 'string', arg: 'i/N', description: 'take only records whose stable id hash mod N is i' },
    workers: {
      type: 'number',
      min: 0,
      integer: true,
      arg: 'N',
      description: 'worker threads for the per-record steps (0: in the main thread; each costs ~100 MB)',
      default: Math.min(4, availableParallelism()),
    },
    'rejects-out': {
      type: 'string',
      output: 'file',
      arg: 'FILE',
      description: 'also write every dropped record with its reason (JSONL)',
    },
    overwrite: { type: 'boolean', description: 'replace a dataset in --out built with other settings' },
    'allow-empty': {
      type: 'boolean',
      description: 'succeed when no row is kept (otherwise that is an error quoting the first reject)',
    },
    quiet: { type: 'boolean', description: 'no progress output' },
    ...EXECUTOR_FLAGS,
  },
  examples: [
    'sdt data build --tokenizer runs/tok/tokenizer.json --out runs/data',
    'sdt data build --source ~/src/repo --include "**/*.py" --exclude "**/vendor/**" --out runs/repo-data',
    'sdt data build --source the-stack.parquet --text-field content --shard 0/4 --out runs/data-0',
    'sdt data build --executor slurm --tasks 64 --cpus-per-task 8 --partition cpu --time 2:00:00 --retries 2 --out runs/data',
  ],
  async run(opts) {
    const workers = num(opts, 'workers');
    if (!Number.isInteger(workers) || workers < 0) {
      throw new UserError(`--workers must be a whole number >= 0; got ${workers}.`);
    }
    const out = str(opts, 'out');
    const tokenizerPath = resolve(str(opts, 'tokenizer'));
    if (!(await stat(tokenizerPath).catch(() => undefined))) {
      throw new UserError(
        `--tokenizer ${tokenizerPath} not found; train one with \`sdt tokenizer train --out ${tokenizerPath}\` or pass --tokenizer.`,
      );
    }
    const o: BuildOptions = {
      source: await sourceSpec(opts),
      out,
      tokenizerPath,
      limits: {
        ...DEFAULT_SIZE_LIMITS,
        minBytes: num(opts, 'min-bytes'),
        maxBytes: num(opts, 'max-bytes'),
        maxLineLength: num(opts, 'max-line-length'),
      },
      nearDupThreshold: num(opts, 'near-dup-threshold'),
      keepParseErrors: bool(opts, 'keep-parse-errors'),
      validationFraction: num(opts, 'validation-fraction'),
      shardRecords: num(opts, 'shard-records'),
      shardBytes: Math.round(num(opts, 'shard-mb') * 1e6),
      shard: parseShardFlag(optStr(opts, 'shard')),
      workers,
      rejectsOut: optStr(opts, 'rejects-out'),
      overwrite: bool(opts, 'overwrite'),
      quiet: bool(opts, 'quiet'),
    };
    const started = performance.now();
    const ex = executorOptions(opts, `${out}.run`);
    if (isDistributed(ex, optStr(opts, 'run-dir') !== undefined)) {
      checkBuildOptions(o);
      await checkOutputDir(o);
      const { workers: _w, quiet: _q, ...settings } = { ...o, out: resolve(out) };
      const say = (line: string) => process.stderr.write(`data build: ${line}\n`);
      const outcome = await runDistributed(
        { kind: 'data build', tasks: ex.tasks, settings: settings as Record<string, unknown> },
        ex,
        say,
      );
      if (outcome === 'detached') return 0;
      const manifest = await readManifest(out);
      if (!manifest) throw new UserError(`the merge finished but ${out}/manifest.json is missing.`);
      printSummary(out, manifest, `${ex.tasks} tasks (${ex.executor})`, started);
      return refuseEmpty(out, manifest, bool(opts, 'allow-empty'));
    }
    const result = await buildDataset({ ...o, onChunkWritten: crashHook() });
    printSummary(
      out,
      result.manifest,
      `${result.writtenChunks} chunks written, ${result.skippedChunks} already complete`,
      started,
    );
    return refuseEmpty(out, result.manifest, bool(opts, 'allow-empty'));
  },
};

function printSummary(out: string, m: DatasetManifest, how: string, started: number): void {
  const seconds = (performance.now() - started) / 1000;
  const rejects = Object.entries(m.rejects).map(([k, v]) => `${k} ${v}`);
  const mb = (m.counts.train.bytes + m.counts.validation.bytes) / 1e6;
  process.stdout.write(
    [
      `wrote ${out}/manifest.json: ${how}`,
      `  train:      ${m.counts.train.rows} rows, ${m.counts.train.tokens} tokens, ${(m.counts.train.bytes / 1e6).toFixed(2)} MB`,
      `  validation: ${m.counts.validation.rows} rows, ${m.counts.validation.tokens} tokens, ${(m.counts.validation.bytes / 1e6).toFixed(2)} MB`,
      `  rejected:   ${rejects.length ? rejects.join(', ') : 'none'}`,
      `  time: ${seconds.toFixed(1)} s (${(mb / seconds).toFixed(2)} MB/s kept text)`,
      '',
    ].join('\n'),
  );
}

/**
 * A build that kept no rows is an error unless --allow-empty: nothing downstream can use it. The message
 * quotes the first reject (for a tabular source without the text field it lists the fields there are).
 */
async function refuseEmpty(out: string, m: DatasetManifest, allowEmpty: boolean): Promise<number> {
  if (m.counts.train.rows + m.counts.validation.rows > 0 || allowEmpty) return 0;
  let first = '';
  for (const file of m.chunks.flatMap((c) => c.files).filter((f) => f.endsWith('.jsonl'))) {
    const line = (await readFile(join(out, file), 'utf8').catch(() => '')).split('\n')[0];
    if (line) {
      const r = JSON.parse(line) as { origin?: string; reason?: string; detail?: string };
      first = ` The first: ${r.origin ?? ''} ${r.reason}: ${r.detail}.`;
      break;
    }
  }
  const rejects = Object.entries(m.rejects).map(([k, v]) => `${k} ${v}`);
  throw new UserError(
    `data build kept no rows (rejected: ${rejects.length ? rejects.join(', ') : 'none; the source is empty'}).${first} Fix the source or its flags; pass --allow-empty to accept an empty dataset.`,
  );
}
