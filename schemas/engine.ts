/**
 * The JSON-line protocol of `sdt-native serve` (native/src/sampler/protocol.cpp), TS side.
 * Field names on the wire are snake_case; the TS API uses camelCase settings.
 */
import type { StepKind } from '../../schemas/trajectory.ts';

export const COMMIT_ORDERS = ['confidence', 'margin', 'entropy', 'random', 'left-to-right'] as const;
export type CommitOrder = (typeof COMMIT_ORDERS)[number];

export interface SampleSettings {
  /** 'diffusion' (block-wise, default) or 'ar' (token by token, for causal checkpoints). */
  mode?: 'diffusion' | 'ar';
  maxNew?: number;
  block?: number;
  rule?: 'threshold' | 'fixed' | 'remask';
  /** Which masked positions a step prefers (native/src/sampler/decode.h CommitOrder). */
  order?: CommitOrder;
  threshold?: number;
  maxPerStep?: number;
  tokensPerStep?: number;
  stepsPerBlock?: number;
  /** 0 = greedy. */
  temperature?: number;
  topP?: number;
  seed?: number;
  refreshEvery?: number;
  alignBlocks?: boolean;
  revisePasses?: number;
  reviseThreshold?: number;
  /** Return every step (positions, tokens, confidences). */
  trajectory?: boolean;
  /** End-of-text id; -1 never stops early; default the checkpoint's eos_token_id. */
  eos?: number;
}

const WIRE_NAMES: Record<keyof SampleSettings, string> = {
  mode: 'mode',
  maxNew: 'max_new',
  block: 'block',
  rule: 'rule',
  order: 'order',
  threshold: 'threshold',
  maxPerStep: 'max_per_step',
  tokensPerStep: 'tokens_per_step',
  stepsPerBlock: 'steps_per_block',
  temperature: 'temperature',
  topP: 'top_p',
  seed: 'seed',
  refreshEvery: 'refresh_every',
  alignBlocks: 'align_blocks',
  revisePasses: 'revise_passes',
  reviseThreshold: 'revise_threshold',
  trajectory: 'trajectory',
  eos: 'eos',
};

/** Settings as request fields (undefined ones left out so the native defaults apply). */
export function settingsToWire(s: SampleSettings): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, wire] of Object.entries(WIRE_NAMES)) {
    const v = s[k as keyof SampleSettings];
    if (v !== undefined) out[wire] = v;
  }
  return out;
}

export interface ReadyInfo {
  event: 'ready';
  source: string;
  vocab_size: number;
  max_position_embeddings: number;
  attention_mode: 'bidirectional' | 'causal' | 'block';
  block_size: number;
  mask_token_id: number;
  eos_token_id: number;
  bos_token_id: number;
  pad_token_id: number;
}

export interface WireBlock {
  start: number;
  size: number;
  steps: number;
  forward_passes: number;
  revised: number;
}

export interface WireStep {
  block: number;
  step: number;
  kind: StepKind;
  positions: number[];
  tokens: number[];
  confidences: number[];
}

/** Sent while a request with "stream": true decodes, one per step, before its response. */
export interface WireStepEvent extends WireStep {
  id: string | number | null;
  event: 'step';
  /** Index of the prompt in the request. */
  sequence: number;
}

export interface WireResult {
  tokens: number[];
  eos: boolean;
  context_clipped: number;
  steps: number;
  forward_passes: number;
  blocks: WireBlock[];
  trajectory?: WireStep[];
  timings: { prefill_ms: number; decode_ms: number };
}

export type WireResponse =
  | { id: string | number | null; ok: true; results: WireResult[]; timings: { total_ms: number } }
  | { id: string | number | null; ok: false; error: string };
