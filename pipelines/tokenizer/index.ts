import { readFile } from 'node:fs/promises';
import { UserError } from '../../common/errors.ts';
import { atomicWriteFile } from '../../common/fs.ts';
import type { BpeTokenizer } from './bpe-model.ts';
import { learnMerges, MAX_VOCAB_SIZE, WordCounter } from './bpe-train.ts';
import { SPLIT_PATTERN } from './pretokenize.ts';
import { serializeTokenizerJson, sha256, TokenizerFormatError, tokenizerFromJson } from './tokenizer-json.ts';
import { SPECIAL_TOKENS } from './types.ts';

export type { BpeTokenizer } from './bpe-model.ts';
export { WordCounter } from './bpe-train.ts';
export { pretokenize, SPLIT_PATTERN } from './pretokenize.ts';
export { sha256, tokenizerFromJson } from './tokenizer-json.ts';
export type { Encoding, SpecialIds, Tokenizer } from './types.ts';
export { SPECIAL_TOKENS } from './types.ts';

export const DEFAULT_VOCAB_SIZE = 8192;
export const DEFAULT_MIN_FREQUENCY = 2;
/** Special tokens plus the 256 byte tokens: the smallest vocabulary that can encode anything. */
export const MIN_VOCAB_SIZE = SPECIAL_TOKENS.length + 256;

export interface TrainBpeOptions {
  vocabSize?: number;
  minFrequency?: number;
  /** Called after each merge with the vocabulary size reached so far. */
  onMerge?: (vocabLength: number) => void;
}

export interface TrainedTokenizer {
  /** The tokenizer.json text (write it as is: its sha256 is the tokenizer hash). */
  json: string;
  tokenizer: BpeTokenizer;
  /** Number of merges learned; fewer than asked when --min-frequency stopped training early. */
  merges: number;
}

/**
 * Train a byte-level BPE tokenizer. `source` is either texts (any iterable, sync or async) or a WordCounter
 * that has already seen the corpus (the CLI uses that to show progress while reading).
 */
export async function trainBpe(
  source: Iterable<string> | AsyncIterable<string> | WordCounter,
  opts: TrainBpeOptions = {},
): Promise<TrainedTokenizer> {
  const vocabSize = opts.vocabSize ?? DEFAULT_VOCAB_SIZE;
  const minFrequency = opts.minFrequency ?? DEFAULT_MIN_FREQUENCY;
  if (!Number.isInteger(vocabSize) || vocabSize < MIN_VOCAB_SIZE || vocabSize > MAX_VOCAB_SIZE) {
    throw new UserError(
      `vocabulary size must be an integer >= ${MIN_VOCAB_SIZE} (8 special + 256 byte tokens) and <= ${MAX_VOCAB_SIZE}; got ${vocabSize}.`,
    );
  }
  if (!Number.isInteger(minFrequency) || minFrequency < 1) {
    throw new UserError(`minimum frequency must be an integer >= 1; got ${minFrequency}.`);
  }
  let counter: WordCounter;
  if (source instanceof WordCounter) {
    counter = source;
  } else {
    counter = new WordCounter(SPLIT_PATTERN);
    for await (const text of source) counter.add(text);
  }
  const { tokens, merges } = learnMerges(counter.counts, {
    vocabSize,
    minFrequency,
    specialCount: SPECIAL_TOKENS.length,
    onMerge: opts.onMerge,
  });
  const json = serializeTokenizerJson({ pattern: counter.pattern, specials: SPECIAL_TOKENS, tokens, merges });
  return { json, tokenizer: tokenizerFromJson(json), merges: merges.length };
}

/** Write a trained tokenizer atomically. */
export async function saveTokenizer(path: string, trained: TrainedTokenizer): Promise<void> {
  await atomicWriteFile(path, trained.json);
}

async function readTokenizerFile(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new UserError(
      `cannot read tokenizer ${path} (${(err as Error).message}); run \`sdt tokenizer train --out ${path}\` first.`,
    );
  }
}

/**
 * The tokenizer hash (the sha256 of the file) without building the tokenizer: for a thread that only
 * records which tokenizer was used while other threads load it (and report a malformed file).
 */
export async function tokenizerFileHash(path: string): Promise<string> {
  return sha256(await readTokenizerFile(path));
}

/** Load a tokenizer.json written by `sdt tokenizer train` (or any file of the same shape). */
export async function loadTokenizer(path: string): Promise<BpeTokenizer> {
  const raw = await readTokenizerFile(path);
  try {
    return tokenizerFromJson(raw.toString('utf8'), sha256(raw));
  } catch (err) {
    if (err instanceof TokenizerFormatError) {
      throw new UserError(
        `${path}: ${err.message}. Train a new one with \`sdt tokenizer train --out ${path}\`.`,
      );
    }
    throw err;
  }
}
