/**
 * Everything the feed needs from a dataset directory: the windows of both splits (rows cut and packed into
 * fixed-length sequences, in the dataset's stable row order), the tokenizer's vocabulary size and special
 * ids, and the vocabulary knowledge edit corruptions use.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { UserError } from '../common/errors.ts';
import type { CorruptSpecials } from '../pipelines/corrupt/types.ts';
import { type EditVocabulary, vocabularyFromTokenizer } from '../pipelines/corrupt/vocab.ts';
import { WindowPacker } from '../pipelines/corrupt/windows.ts';
import { openDataset } from '../pipelines/dataset/read.ts';
import { loadTokenizer, tokenizerFileHash } from '../pipelines/tokenizer/index.ts';
import type { Split } from '../schemas/dataset.ts';
import { buildWindowStore, type WindowStore } from './window-store.ts';

export interface TrainData {
  dataset: string;
  tokenizerPath: string;
  vocabSize: number;
  specials: CorruptSpecials;
  editVocab: EditVocabulary;
  train: WindowStore;
  validation: WindowStore;
  rows: Record<Split, number>;
}

/** The tokenizer the manifest names: absolute, relative to the dataset, or relative to the working dir. */
function resolveTokenizer(dataset: string, recorded: string): string {
  if (isAbsolute(recorded)) return recorded;
  const beside = join(dataset, recorded);
  return existsSync(beside) ? beside : resolve(recorded);
}

export async function loadTrainData(dataset: string, seqLen: number): Promise<TrainData> {
  if (!existsSync(join(dataset, 'manifest.json'))) {
    throw new UserError(
      `${dataset}: no dataset here (manifest.json missing). Build one with \`sdt data build --out ${dataset}\` or pass --dataset DIR.`,
    );
  }
  const ds = await openDataset(dataset);
  const tokenizerPath = resolveTokenizer(dataset, ds.manifest.tokenizerPath);
  if (!existsSync(tokenizerPath)) {
    throw new UserError(
      `${dataset}/manifest.json names tokenizer ${ds.manifest.tokenizerPath}, which does not exist; rebuild the dataset or restore the tokenizer.`,
    );
  }
  // The tokenizer file the manifest names must still be the one the dataset was tokenized with.
  const tokHash = await tokenizerFileHash(tokenizerPath);
  if (tokHash !== ds.manifest.tokenizerHash) {
    throw new UserError(
      `${tokenizerPath} (sha256 ${tokHash.slice(0, 12)}) is not the tokenizer ${dataset} was built with (${ds.manifest.tokenizerHash.slice(0, 12)}): it was replaced or edited; restore it or rebuild the dataset.`,
    );
  }
  const tok = await loadTokenizer(tokenizerPath);
  const specials: CorruptSpecials = {
    pad: tok.special.pad,
    bos: tok.special.bos,
    eos: tok.special.eos,
    mask: tok.special.mask,
    del: tok.special.del,
  };
  const rows: Record<Split, number> = { train: 0, validation: 0 };
  const stores: Partial<Record<Split, WindowStore>> = {};
  for (const split of ['train', 'validation'] as const) {
    const packer = new WindowPacker({ seqLen, specials });
    const windows = [];
    for await (const row of ds.rows(split)) {
      rows[split]++;
      windows.push(...packer.push({ id: row.id, tokens: row.tokens, spans: row.spans }));
    }
    windows.push(...packer.flush());
    if (windows.length === 0) {
      throw new UserError(
        `${dataset}: the ${split} split is empty; the trainer needs rows in both train and validation. Rebuild with more files.`,
      );
    }
    stores[split] = buildWindowStore(windows, seqLen);
  }
  return {
    dataset,
    tokenizerPath,
    vocabSize: tok.vocabSize,
    specials,
    editVocab: vocabularyFromTokenizer(tok),
    train: stores.train!,
    validation: stores.validation!,
    rows,
  };
}
