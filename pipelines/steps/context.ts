import { loadTokenizer } from '../tokenizer/index.ts';
import type { SizeLimits } from './filters.ts';
import type { MinHashOptions } from './minhash.ts';
import type { StepContext } from './record.ts';
import { nativeEncoder, tsAddon, useTsAddon } from './ts-addon.ts';

/** What a worker needs to rebuild the step context on its side (plain data: it crosses threads). */
export interface StepContextSpec {
  limits: SizeLimits;
  minhash: MinHashOptions;
  tokenizerPath: string;
  /** The tree-sitter addon to parse with (ts-addon.ts); undefined: node-tree-sitter. */
  tsAddon: string | undefined;
}

export async function makeStepContext(spec: StepContextSpec): Promise<StepContext> {
  useTsAddon(spec.tsAddon);
  const tokenizer = await loadTokenizer(spec.tokenizerPath);
  const addon = tsAddon();
  const { numPerm, shingle } = spec.minhash;
  return {
    limits: spec.limits,
    minhash: spec.minhash,
    tokenizer,
    encodeUtf8: nativeEncoder(tokenizer),
    minhashUtf8: addon && ((utf8) => addon.minhash(utf8, numPerm, shingle)),
    textStats: addon && ((utf8, probe) => addon.textStats(utf8, probe)),
    tokenSpans: addon && ((nodes, byteOffsets) => addon.tokenSpans(nodes, byteOffsets)),
  };
}
