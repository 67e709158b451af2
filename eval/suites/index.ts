import { fix } from './fix.ts';
import { humaneval } from './humaneval.ts';
import { infill } from './infill.ts';
import { mbpp } from './mbpp.ts';
import { synth } from './synth.ts';
import type { Suite } from './types.ts';

export const SUITES: Record<string, Suite> = { humaneval, mbpp, infill, fix, synth };
