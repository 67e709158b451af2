import { type CommandSpec, num, type OptionValues, str } from '../../common/cli.ts';
import { UserError } from '../../common/errors.ts';
import { Progress } from '../../common/progress.ts';
import { MAX_VOCAB_SIZE, WordCounter } from '../tokenizer/bpe-train.ts';
import {
  assertCorpusNotEmpty,
  type CorpusReport,
  corpusOptions,
  describeRejects,
  readCorpus,
  sourceSpecFromOptions,
} from '../tokenizer/corpus.ts';
import {
  type BpeTokenizer,
  DEFAULT_MIN_FREQUENCY,
  DEFAULT_VOCAB_SIZE,
  MIN_VOCAB_SIZE,
  saveTokenizer,
  trainBpe,
} from '../tokenizer/index.ts';

export const command: CommandSpec = {
  name: 'tokenizer train',
  summary: 'train a byte-level BPE tokenizer and write it as a Hugging Face tokenizer.json',
  description: `
Pre-tokenizes the corpus with a code-aware split (words, short numbers, punctuation runs, newline plus
indentation), then learns merges: always the most frequent pair, ties to the smaller (left id, right id).
Ids 0-7 are <|pad|> <|bos|> <|eos|> <|mask|> <|del|> <|fim_prefix|> <|fim_middle|> <|fim_suffix|>, then the
256 byte tokens, then merges in the order learned. The same corpus and flags give the same file, byte for
byte; its sha256 is the tokenizer hash that datasets record.`,
  options: {
    out: {
      type: 'string',
      output: 'file',
      arg: 'PATH',
      description: 'where to write tokenizer.json',
      required: true,
    },
    'vocab-size': {
      type: 'number',
      min: 1,
      integer: true,
      arg: 'N',
      description: 'vocabulary size, special and byte tokens included',
      default: DEFAULT_VOCAB_SIZE,
    },
    'min-frequency': {
      type: 'number',
      min: 1,
      integer: true,
      arg: 'N',
      description: 'never merge a pair seen fewer times; training stops early when no pair is left',
      default: DEFAULT_MIN_FREQUENCY,
    },
    ...corpusOptions('train'),
    'skip-eval': {
      type: 'boolean',
      description: 'do not measure bytes/token on the validation split after training',
    },
    quiet: { type: 'boolean', description: 'no progress output' },
  },
  examples: [
    'sdt tokenizer train --out runs/tokenizer/tokenizer.json',
    'sdt tokenizer train --source ~/src/myrepo --include "**/*.py" --vocab-size 16384 --out tok.json',
    'sdt tokenizer train --source data.jsonl --text-field content --out tok.json',
  ],
  async run(opts) {
    const out = str(opts, 'out');
    const vocabSize = num(opts, 'vocab-size');
    const minFrequency = num(opts, 'min-frequency');
    if (!Number.isInteger(vocabSize) || vocabSize < MIN_VOCAB_SIZE || vocabSize > MAX_VOCAB_SIZE) {
      throw new UserError(
        `--vocab-size must be an integer from ${MIN_VOCAB_SIZE} (8 special + 256 byte tokens) to ${MAX_VOCAB_SIZE}; got ${vocabSize}.`,
      );
    }
    if (!Number.isInteger(minFrequency) || minFrequency < 1) {
      throw new UserError(`--min-frequency must be an integer >= 1; got ${minFrequency}.`);
    }
    const quiet = Boolean(opts.quiet);
    const split = str(opts, 'split') as 'train' | 'validation' | 'all';
    const { spec, name } = await sourceSpecFromOptions(opts);
    const report: CorpusReport = { name, used: 0, rejects: new Map() };
    const started = performance.now();

    const counter = new WordCounter();
    const reading = new Progress({ label: 'read corpus', unit: 'records', bytes: true, quiet });
    let bytes = 0;
    for await (const rec of readCorpus(spec, split, num(opts, 'max-bytes'), report)) {
      counter.add(rec.text);
      bytes += rec.bytes;
      reading.note(`${counter.counts.size} distinct words`);
      reading.tick(1, rec.bytes);
    }
    reading.done();
    assertCorpusNotEmpty(report, split);

    const merging = new Progress({ label: 'learn merges', unit: 'tokens', total: vocabSize, quiet });
    const trained = await trainBpe(counter, {
      vocabSize,
      minFrequency,
      onMerge: (size) => merging.tick(size - merging.count),
    });
    merging.done();
    await saveTokenizer(out, trained);
    const seconds = (performance.now() - started) / 1000;
    const heldOut =
      opts['skip-eval'] || split !== 'train'
        ? undefined
        : await heldOutBytesPerToken(opts, trained.tokenizer, quiet);
    const v = trained.tokenizer.vocabSize;
    process.stdout.write(
      [
        `wrote ${out}`,
        `  source: ${name}, split ${split}: ${report.used} records, ${(bytes / 1e6).toFixed(2)} MB, ${counter.counts.size} distinct words; rejected: ${describeRejects(report)}`,
        `  vocabulary: ${v} tokens (${trained.merges} merges)${v < vocabSize ? `; stopped early: no pair seen >= ${minFrequency} times` : ''}`,
        `  hash: sha256:${trained.tokenizer.hash}`,
        ...(heldOut
          ? [
              `  held-out validation split: ${heldOut.records} records, ${heldOut.bytes} bytes, ${heldOut.tokens} tokens, ${(heldOut.bytes / heldOut.tokens).toFixed(3)} bytes/token`,
            ]
          : []),
        `  training time: ${seconds.toFixed(1)} s`,
        '',
      ].join('\n'),
    );
    return 0;
  },
};

/** Bytes per token on the source's validation records; undefined when the source has none. */
async function heldOutBytesPerToken(
  opts: OptionValues,
  tok: BpeTokenizer,
  quiet: boolean,
): Promise<{ records: number; bytes: number; tokens: number } | undefined> {
  const { spec, name } = await sourceSpecFromOptions({ ...opts, split: 'validation' });
  const report: CorpusReport = { name, used: 0, rejects: new Map() };
  const progress = new Progress({ label: 'held-out bytes/token', unit: 'records', bytes: true, quiet });
  let bytes = 0;
  let tokens = 0;
  for await (const rec of readCorpus(spec, 'validation', 0, report)) {
    bytes += rec.bytes;
    tokens += tok.encode(rec.text).length;
    progress.tick(1, rec.bytes);
  }
  progress.done();
  return tokens > 0 ? { records: report.used, bytes, tokens } : undefined;
}
