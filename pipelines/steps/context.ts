import { loadTokenizer } from '../tokenizer/index.ts';
import type { SizeLimits } from './filters.ts';
import type { MinHashOptions } from './minhash.ts';
import type { StepContext } from './record.ts';

/** What a worker needs to rebuild the step context on its side (plain data: it crosses threads). */
export interface StepContextSpec {
  limits: SizeLimits;
  minhash: MinHashOptions;
  tokenizerPath: string;
}

export async function makeStepContext(spec: StepContextSpec): Promise<StepContext> {
  return { limits: spec.limits, minhash: spec.minhash, tokenizer: await loadTokenizer(spec.tokenizerPath) };
}
