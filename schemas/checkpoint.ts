/**
 * The checkpoint layout (spec: schemas/checkpoint.md; C++ side: native/src/train/checkpoint.h) and
 * the train config of `sdt-native train` (docs/native.md), for the TypeScript side.
 */
import { existsSync, readdirSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../common/errors.ts';

/** config.json: Hugging Face Llama fields plus the diffusion fields. */
export interface CheckpointConfig {
  architectures: ['LlamaForCausalLM'];
  model_type: 'llama';
  torch_dtype: 'float32';
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  hidden_act: 'silu';
  tie_word_embeddings: boolean;
  bos_token_id: number | null;
  eos_token_id: number | null;
  pad_token_id: number | null;
  mask_token_id: number;
  del_token_id: number | null;
  attention_mode: 'bidirectional' | 'causal' | 'block';
  block_size: number;
}

/** The model part of a train config: what config.json holds (only the sizes and mask_token_id are required). */
export type ModelConfigInput = Partial<CheckpointConfig> &
  Pick<
    CheckpointConfig,
    | 'vocab_size'
    | 'hidden_size'
    | 'intermediate_size'
    | 'num_hidden_layers'
    | 'num_attention_heads'
    | 'max_position_embeddings'
    | 'mask_token_id'
  >;

/** TRAIN.json of `sdt-native train --config` (defaults in docs/native.md). Unknown keys are rejected. */
export interface NativeTrainConfig {
  model: ModelConfigInput;
  /** tokenizer.json copied into every checkpoint. */
  tokenizer?: string;
  total_steps: number;
  /** Train frames (micro-batches) per optimizer step. Default 1. */
  micro_batches?: number;
  optimizer?: { beta1?: number; beta2?: number; eps?: number; weight_decay?: number; grad_clip?: number };
  /** Linear warm-up to lr, cosine to min_lr at the last step. */
  schedule?: { lr?: number; min_lr?: number; warmup_steps?: number };
  /** 0: only the final checkpoint. */
  checkpoint_every?: number;
  keep_checkpoints?: number;
  seed?: number;
  /** OpenMP threads; 0: default. */
  threads?: number;
  max_nonfinite_steps?: number;
}

/** trainer_state.json. */
export interface TrainerState {
  format: 'sdt-trainer-state';
  version: 1;
  step: number;
  updates: number;
  tokens_seen: number;
  /** Train frames consumed: a resumed feeder starts at this frame (StreamHeader.firstTrainFrame). */
  stream_position: number;
  nonfinite_in_a_row: number;
  seed: string;
  rng: { algorithm: 'splitmix64'; state: string };
  last_loss: number;
  last_lr: number;
  train_config?: NativeTrainConfig;
}

export const CHECKPOINT_FILES = {
  config: 'config.json',
  model: 'model.safetensors',
  tokenizer: 'tokenizer.json',
  optimizer: 'optimizer.safetensors',
  state: 'trainer_state.json',
  complete: 'COMPLETE',
} as const;

export function checkpointDirName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

export interface CheckpointEntry {
  step: number;
  path: string;
}

/** Complete checkpoints of a run (RUN/checkpoints/step-* holding COMPLETE), ascending by step. */
export function listCheckpoints(runDir: string): CheckpointEntry[] {
  const dir = join(runDir, 'checkpoints');
  if (!existsSync(dir)) return [];
  const out: CheckpointEntry[] = [];
  for (const name of readdirSync(dir)) {
    const m = /^step-(\d+)$/.exec(name);
    if (!m) continue;
    const path = join(dir, name);
    if (existsSync(join(path, CHECKPOINT_FILES.complete))) out.push({ step: Number(m[1]), path });
  }
  return out.sort((a, b) => a.step - b.step);
}

export function latestCheckpoint(runDir: string): CheckpointEntry | undefined {
  return listCheckpoints(runDir).at(-1);
}

async function readJson<T>(path: string, what: string): Promise<T> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new UserError(
      `${path}: cannot read ${what}; is this a checkpoint directory (written by sdt-native)?`,
    );
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new UserError(`${path}: invalid JSON (${(err as Error).message}); pick another checkpoint.`);
  }
}

export async function readCheckpointConfig(dir: string): Promise<CheckpointConfig> {
  if (!existsSync(join(dir, CHECKPOINT_FILES.complete))) {
    throw new UserError(
      `${dir}: no COMPLETE marker (an interrupted write?); use latestCheckpoint(runDir) to pick one.`,
    );
  }
  return readJson<CheckpointConfig>(join(dir, CHECKPOINT_FILES.config), 'config.json');
}

export async function readTrainerState(dir: string): Promise<TrainerState> {
  const s = await readJson<TrainerState>(join(dir, CHECKPOINT_FILES.state), 'trainer_state.json');
  if (s.format !== 'sdt-trainer-state' || s.version !== 1) {
    throw new UserError(
      `${join(dir, CHECKPOINT_FILES.state)}: not a version-1 sdt trainer state; rebuild sdt-native.`,
    );
  }
  return s;
}

export interface SafetensorsTensor {
  dtype: string;
  shape: number[];
  /** [begin, end) byte offsets into the data section. */
  data_offsets: [number, number];
}

export interface SafetensorsHeader {
  /** N, the JSON header's byte length (the file's first 8 bytes). */
  headerLength: number;
  /** 8 + N: where the data section starts. */
  dataStart: number;
  tensors: Record<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

/** Reads only the header of a .safetensors file (8-byte length, then JSON). */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const lenBuf = Buffer.alloc(8);
    await fh.read(lenBuf, 0, 8, 0);
    const n = Number(lenBuf.readBigUInt64LE(0));
    if (size < 8 || n > size - 8) {
      throw new UserError(
        `${path}: not a safetensors file (header length ${n} exceeds the file size ${size}).`,
      );
    }
    const text = Buffer.alloc(n);
    await fh.read(text, 0, n, 8);
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(text.toString('utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new UserError(`${path}: safetensors header is not JSON (${(err as Error).message}).`);
    }
    const { __metadata__: metadata = {}, ...tensors } = json;
    return {
      headerLength: n,
      dataStart: 8 + n,
      tensors: tensors as Record<string, SafetensorsTensor>,
      metadata: metadata as Record<string, string>,
    };
  } finally {
    await fh.close();
  }
}
