/** Sampler CLI options shared by `sdt sample` and `sdt bench sample`, and their mapping to settings. */
import { bool, num, type OptionSpec, type OptionValues, str } from '../common/cli.ts';
import { COMMIT_ORDERS, type SampleSettings } from '../schemas/engine.ts';

export const SAMPLER_OPTIONS: Record<string, OptionSpec> = {
  device: {
    type: 'string',
    description: 'where the engine (sdt-native serve) runs the model; cuda needs a CUDA build and a GPU',
    default: 'cpu',
    choices: ['cpu', 'cuda'],
  },
  'max-new': {
    type: 'number',
    min: 1,
    integer: true,
    description: 'tokens to generate at most',
    default: 128,
    arg: 'N',
  },
  block: {
    type: 'number',
    min: 1,
    integer: true,
    description: 'block size of diffusion decoding',
    default: 32,
    arg: 'B',
  },
  rule: {
    type: 'string',
    description: 'commit rule inside a block',
    default: 'threshold',
    choices: ['threshold', 'fixed', 'remask'],
  },
  order: {
    type: 'string',
    description:
      'which masked positions a step prefers; threshold rule: confidence, margin and entropy compare their own score with T, random takes as many as have confidence >= T, left-to-right the leftmost masked positions up to the first below T',
    default: 'confidence',
    choices: [...COMMIT_ORDERS],
  },
  threshold: {
    type: 'number',
    min: 0,
    max: 1,
    description: 'threshold rule: commit every masked position with confidence >= T (at least one)',
    default: 0.9,
    arg: 'T',
  },
  'max-per-step': {
    type: 'number',
    min: 0,
    integer: true,
    description: 'threshold rule: commit at most this many per step (0 = no cap)',
    default: 0,
    arg: 'K',
  },
  'error-budget': {
    type: 'number',
    min: 0,
    description:
      "threshold rule: stop a step before its commits' summed error, the sum of (1 - confidence), would exceed E (at least one commit; 0 = off)",
    default: 0,
    arg: 'E',
  },
  'tokens-per-step': {
    type: 'number',
    min: 1,
    integer: true,
    description: 'fixed rule: tokens committed per step',
    default: 1,
    arg: 'K',
  },
  'steps-per-block': {
    type: 'number',
    min: 0,
    integer: true,
    description: 'remask rule: steps per block (0 = one per position)',
    default: 0,
    arg: 'S',
  },
  temperature: { type: 'number', min: 0, description: 'sampling temperature (0 = greedy)', default: 0 },
  'top-p': { type: 'number', min: 0, max: 1, description: 'nucleus sampling mass', default: 1, arg: 'P' },
  seed: {
    type: 'number',
    min: 0,
    integer: true,
    description: 'seed of the sampling RNG (deterministic for a seed)',
    default: 0,
  },
  ar: { type: 'boolean', description: 'autoregressive decoding with the KV cache (causal checkpoints)' },
  'refresh-every': {
    type: 'number',
    min: 0,
    integer: true,
    description: 'bidirectional checkpoints: recompute the approximate KV cache every N blocks (0 = never)',
    default: 0,
    arg: 'N',
  },
  'revise-passes': {
    type: 'number',
    min: 0,
    integer: true,
    description:
      'edit-trained models: passes that re-score a filled block and replace confident disagreements',
    default: 0,
    arg: 'N',
  },
  'revise-threshold': {
    type: 'number',
    min: 0,
    max: 1,
    description: 'confidence a revision needs',
    default: 0.9,
    arg: 'T',
  },
};

/** --device of the engine. */
export function deviceFromOptions(o: OptionValues): 'cpu' | 'cuda' {
  return str(o, 'device') === 'cuda' ? 'cuda' : 'cpu';
}

export function settingsFromOptions(o: OptionValues): SampleSettings {
  return {
    mode: bool(o, 'ar') ? 'ar' : 'diffusion',
    maxNew: num(o, 'max-new'),
    block: num(o, 'block'),
    rule: str(o, 'rule') as SampleSettings['rule'],
    order: str(o, 'order') as SampleSettings['order'],
    threshold: num(o, 'threshold'),
    maxPerStep: num(o, 'max-per-step'),
    errorBudget: num(o, 'error-budget'),
    tokensPerStep: num(o, 'tokens-per-step'),
    stepsPerBlock: num(o, 'steps-per-block'),
    temperature: num(o, 'temperature'),
    topP: num(o, 'top-p'),
    seed: num(o, 'seed'),
    refreshEvery: num(o, 'refresh-every'),
    revisePasses: num(o, 'revise-passes'),
    reviseThreshold: num(o, 'revise-threshold'),
  };
}
