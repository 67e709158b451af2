import { type CommandSpec, num, str } from '../../common/cli.ts';
import { Progress } from '../../common/progress.ts';
import {
  assertCorpusNotEmpty,
  type CorpusReport,
  corpusOptions,
  describeRejects,
  readCorpus,
  sourceSpecFromOptions,
} from '../tokenizer/corpus.ts';
import { loadTokenizer } from '../tokenizer/index.ts';

export const command: CommandSpec = {
  name: 'tokenizer stats',
  summary:
    'bytes per token of a tokenizer on a corpus split (held-out validation by default), with a round-trip check',
  options: {
    tokenizer: { type: 'string', arg: 'PATH', description: 'tokenizer.json to measure', required: true },
    ...corpusOptions('validation'),
    quiet: { type: 'boolean', description: 'no progress output' },
  },
  examples: [
    'sdt tokenizer stats --tokenizer tok.json',
    'sdt tokenizer stats --tokenizer tok.json --source data.jsonl --split all',
  ],
  async run(opts) {
    const tok = await loadTokenizer(str(opts, 'tokenizer'));
    const split = str(opts, 'split') as 'train' | 'validation' | 'all';
    const { spec, name } = await sourceSpecFromOptions(opts);
    const report: CorpusReport = { name, used: 0, rejects: new Map() };
    const progress = new Progress({
      label: 'encode',
      unit: 'records',
      bytes: true,
      quiet: Boolean(opts.quiet),
    });
    let bytes = 0;
    let chars = 0;
    let tokens = 0;
    let seconds = 0;
    const mismatches: string[] = [];
    const used = new Uint8Array(tok.vocabSize);
    for await (const rec of readCorpus(spec, split, num(opts, 'max-bytes'), report)) {
      const t = performance.now();
      const ids = tok.encode(rec.text);
      seconds += (performance.now() - t) / 1000;
      for (let i = 0; i < ids.length; i++) used[ids[i]] = 1;
      if (tok.decode(ids) !== rec.text) mismatches.push(rec.origin);
      bytes += rec.bytes;
      chars += rec.text.length;
      tokens += ids.length;
      progress.tick(1, rec.bytes);
    }
    progress.done();
    assertCorpusNotEmpty(report, split);
    const usedCount = used.reduce((a, b) => a + b, 0);
    process.stdout.write(
      [
        `tokenizer ${str(opts, 'tokenizer')} (vocabulary ${tok.vocabSize}, sha256:${tok.hash.slice(0, 16)}...)`,
        `  corpus: ${name}, split ${split}: ${report.used} records, ${bytes} bytes, ${chars} UTF-16 chars; rejected: ${describeRejects(report)}`,
        `  tokens: ${tokens}`,
        `  bytes/token: ${(bytes / Math.max(1, tokens)).toFixed(3)}   chars/token: ${(chars / Math.max(1, tokens)).toFixed(3)}`,
        `  vocabulary used: ${usedCount} of ${tok.vocabSize} ids (${((100 * usedCount) / tok.vocabSize).toFixed(1)}%)`,
        `  encode speed: ${(bytes / 1e6 / Math.max(seconds, 1e-9)).toFixed(2)} MB/s (one thread)`,
        `  round trip: ${mismatches.length === 0 ? `exact on all ${report.used} records` : `${mismatches.length} records differ, e.g. ${mismatches.slice(0, 3).join(', ')}`}`,
        '',
      ].join('\n'),
    );
    return mismatches.length === 0 ? 0 : 1;
  },
};
