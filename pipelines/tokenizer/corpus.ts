import { stat } from 'node:fs/promises';
import { list, type OptionSpec, type OptionValues, optStr, str } from '../../common/cli.ts';
import { UserError } from '../../common/errors.ts';
import { openSource, type SourceSpec, sourceKindOfPath } from '../sources/index.ts';
import { decodeText } from '../steps/decode.ts';
import { isReject } from '../steps/types.ts';

/** The corpus flags shared by `tokenizer train` and `tokenizer stats`. */
export function corpusOptions(defaultSplit: 'train' | 'validation'): Record<string, OptionSpec> {
  return {
    source: {
      type: 'string',
      arg: 'PATH',
      description:
        'a directory of files, or a .jsonl/.parquet/.arrow file; without it, the default corpus (python3 stdlib, test folders held out as validation)',
    },
    include: {
      type: 'list',
      arg: 'GLOB',
      description: 'with a directory source: only files matching these globs (e.g. "**/*.py"); repeatable',
      default: [],
    },
    exclude: {
      type: 'list',
      arg: 'GLOB',
      description: 'with a directory source: skip files matching these globs',
      default: [],
    },
    'text-field': {
      type: 'string',
      arg: 'NAME',
      description: 'with a tabular source: the field holding the text',
      default: 'content',
    },
    'split-field': {
      type: 'string',
      arg: 'NAME',
      description: 'with a tabular source: the field holding the split label',
    },
    split: {
      type: 'string',
      description: 'which records to use; records without a split label count as train',
      choices: ['train', 'validation', 'all'],
      default: defaultSplit,
    },
    'max-bytes': {
      type: 'number',
      min: 0,
      integer: true,
      arg: 'N',
      description: 'stop after reading this many bytes of text (0: no limit)',
      default: 0,
    },
  };
}

export interface CorpusText {
  origin: string;
  text: string;
  bytes: number;
}

export interface CorpusReport {
  /** Human name of the source, for messages. */
  name: string;
  used: number;
  /** Rejected records by reason, with one example detail each. */
  rejects: Map<string, { count: number; example: string }>;
}

/** Turn the corpus flags into a source spec for pipelines/sources. */
export async function sourceSpecFromOptions(opts: OptionValues): Promise<{ spec: SourceSpec; name: string }> {
  const source = optStr(opts, 'source');
  if (!source) {
    // Validation files are only read when asked for; otherwise the source skips them unread.
    const maxValidationFiles = str(opts, 'split') === 'train' ? 0 : Number.MAX_SAFE_INTEGER;
    return { spec: { kind: 'stdlib', maxValidationFiles }, name: 'the default corpus (python3 stdlib)' };
  }
  let isDir: boolean;
  try {
    isDir = (await stat(source)).isDirectory();
  } catch {
    throw new UserError(
      `--source ${source} does not exist; pass a directory or a .jsonl/.parquet/.arrow file.`,
    );
  }
  const kind = sourceKindOfPath(source, isDir);
  if (kind === undefined) {
    throw new UserError(
      `--source ${source}: unknown file type; use a directory or a .jsonl, .parquet or .arrow file.`,
    );
  }
  if (kind === 'dir')
    return {
      spec: { kind, root: source, include: list(opts, 'include'), exclude: list(opts, 'exclude') },
      name: source,
    };
  if (kind === 'stdlib') throw new UserError('internal: stdlib is not a path source');
  return {
    spec: {
      kind,
      path: source,
      textField: str(opts, 'text-field'),
      splitField: optStr(opts, 'split-field'),
      language: 'unknown',
    },
    name: source,
  };
}

/**
 * Stream the texts of a corpus split. Records the source or the decoder rejects (binary files, invalid
 * UTF-8, a missing text field) are counted in `report` and skipped.
 */
export async function* readCorpus(
  spec: SourceSpec,
  split: 'train' | 'validation' | 'all',
  maxBytes: number,
  report: CorpusReport,
): AsyncGenerator<CorpusText> {
  let total = 0;
  const addReject = (reason: string, detail: string, origin: string): void => {
    const r = report.rejects.get(reason);
    if (r) r.count++;
    else report.rejects.set(reason, { count: 1, example: `${origin}: ${detail}` });
  };
  for await (const rec of openSource(spec)) {
    const recSplit = rec.split ?? 'train';
    if (split !== 'all' && recSplit !== split) continue;
    if (rec.reject) {
      addReject(rec.reject.reason, rec.reject.detail, rec.origin);
      continue;
    }
    const input = rec.bytes ?? rec.text;
    if (input === undefined) continue;
    const decoded = decodeText(input);
    if (isReject(decoded)) {
      addReject(decoded.reason, decoded.detail, rec.origin);
      continue;
    }
    report.used++;
    total += decoded.nBytes;
    yield { origin: rec.origin, text: decoded.text, bytes: decoded.nBytes };
    if (maxBytes > 0 && total >= maxBytes) return;
  }
}

/** A UserError when a corpus gave no text at all, naming the reasons records were dropped. */
export function assertCorpusNotEmpty(report: CorpusReport, split: string): void {
  if (report.used > 0) return;
  const reasons = [...report.rejects].map(([reason, r]) => `${reason} x${r.count} (e.g. ${r.example})`);
  throw new UserError(
    `no ${split} text read from ${report.name}` +
      (reasons.length
        ? `; rejected: ${reasons.join('; ')}`
        : '; the source is empty or has no records of that split (see --split)') +
      '.',
  );
}

export function describeRejects(report: CorpusReport): string {
  if (report.rejects.size === 0) return 'none';
  return [...report.rejects].map(([reason, r]) => `${reason} ${r.count}`).join(', ');
}
