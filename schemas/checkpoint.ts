/**
 * The checkpoint layout (spec: schemas/checkpoint.md; C++ side: native/src/train/checkpoint.h) and
 * the train config of `sdt-native train` (docs/native.md), for the TypeScript side.
 */
import { existsSync, readdirSync } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../common/errors.ts';
import { IntegrityError, type RecordedFile, sha256File, verifyFile } from '../common/integrity.ts';

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
  /** "two-stream": rows are [noisy | clean] under AttentionMode::BlockTwoStream (block models). Default "single". */
  layout?: 'single' | 'two-stream';
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

/** COMPLETE, written last by sdt-native; older checkpoints hold only step and time. */
export interface CompleteMarker {
  step: number;
  written_at_unix: number;
  /** Size and sha256 of every file of the checkpoint. */
  files?: Record<string, RecordedFile>;
  /** sha256 of tokenizer.json: the one tokenizer that belongs to the model. */
  tokenizer_sha256?: string;
}

/**
 * Check a checkpoint against its COMPLETE marker before anything reads it: every recorded file's size and
 * sha256 (once per file per process, common/integrity.ts). Older checkpoints without recorded hashes get
 * the check their safetensors header allows: the file must be as long as the header says.
 */
export async function verifyCheckpoint(dir: string): Promise<CompleteMarker> {
  const markerPath = join(dir, CHECKPOINT_FILES.complete);
  if (!existsSync(markerPath)) {
    throw new UserError(
      `${dir}: no COMPLETE marker (an interrupted write?); point at a complete checkpoint (RUN/checkpoints/step-* holding COMPLETE).`,
    );
  }
  let marker: CompleteMarker;
  try {
    marker = JSON.parse(await readFile(markerPath, 'utf8')) as CompleteMarker;
  } catch (err) {
    throw new IntegrityError(
      `${markerPath} is not JSON (${(err as Error).message}); pick another checkpoint.`,
    );
  }
  const fix = `pick another checkpoint (the run's previous step-*) or retrain.`;
  if (marker.files) {
    for (const [name, f] of Object.entries(marker.files)) await verifyFile(join(dir, name), f, fix);
    return marker;
  }
  const model = join(dir, CHECKPOINT_FILES.model);
  if (existsSync(model)) {
    const h = await readSafetensorsHeader(model);
    const end = Math.max(0, ...Object.values(h.tensors).map((t) => t.data_offsets[1]));
    const { size } = await stat(model);
    if (size !== h.dataStart + end)
      throw new IntegrityError(
        `${model} has ${size} bytes where its header promises ${h.dataStart + end} (truncated or damaged); ${fix}`,
      );
  }
  return marker;
}

/**
 * Refuse a tokenizer that does not belong to a checkpoint: its sha256 must be the one COMPLETE records (or,
 * for older checkpoints, that of CKPT/tokenizer.json when there is one).
 */
export async function checkTokenizerMatches(
  ckpt: string,
  marker: CompleteMarker,
  tokenizerPath: string,
  tokenizerSha256: string,
): Promise<void> {
  const own = join(ckpt, CHECKPOINT_FILES.tokenizer);
  const recorded = marker.tokenizer_sha256 ?? (existsSync(own) ? await sha256File(own) : undefined);
  if (recorded !== undefined && recorded !== tokenizerSha256) {
    throw new UserError(
      `tokenizer ${tokenizerPath} (sha256 ${tokenizerSha256.slice(0, 12)}) is not the one checkpoint ${ckpt} was trained with (${recorded.slice(0, 12)}); drop --tokenizer to use ${own}, or pass the tokenizer the model was trained with.`,
    );
  }
}

/** CKPT/config.json of a complete checkpoint (the one way the TypeScript side reads it), verified first. */
export async function readCheckpointConfig(dir: string): Promise<CheckpointConfig> {
  if (!existsSync(join(dir, CHECKPOINT_FILES.config))) {
    throw new UserError(
      `${dir}: no config.json; point at a checkpoint written by sdt train (RUN/checkpoints/step-*).`,
    );
  }
  await verifyCheckpoint(dir);
  return readModelConfigFile(join(dir, CHECKPOINT_FILES.config));
}

/** A config.json outside a checkpoint (e.g. for --random-init). */
export function readModelConfigFile(path: string): Promise<CheckpointConfig> {
  return readJson<CheckpointConfig>(path, 'config.json');
}

/** The special ids a checkpoint names; absent ones take the tokenizer's (pad 0, bos 1, eos 2, del 4). */
export function checkpointSpecials(c: CheckpointConfig): {
  pad: number;
  bos: number;
  eos: number;
  mask: number;
  del: number;
} {
  return {
    pad: c.pad_token_id ?? 0,
    bos: c.bos_token_id ?? 1,
    eos: c.eos_token_id ?? 2,
    mask: c.mask_token_id,
    del: c.del_token_id ?? 4,
  };
}

// ---- TRAIN.json of `sdt-native train --config` (C++: native/src/train/train_config.cpp) ----

export const TRAIN_CONFIG_FIELDS = [
  'model',
  'tokenizer',
  'total_steps',
  'micro_batches',
  'optimizer',
  'schedule',
  'checkpoint_every',
  'keep_checkpoints',
  'seed',
  'threads',
  'max_nonfinite_steps',
  'layout',
] as const;
export const OPTIMIZER_FIELDS = ['beta1', 'beta2', 'eps', 'weight_decay', 'grad_clip'] as const;
export const SCHEDULE_FIELDS = ['lr', 'min_lr', 'warmup_steps'] as const;
const MODEL_REQUIRED = [
  'vocab_size',
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'max_position_embeddings',
  'mask_token_id',
] as const;
const MODEL_INTS = [
  ...MODEL_REQUIRED,
  'num_key_value_heads',
  'block_size',
  'pad_token_id',
  'bos_token_id',
  'eos_token_id',
  'del_token_id',
] as const;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function unknownField(o: Record<string, unknown>, known: readonly string[], where: string): string | null {
  for (const k of Object.keys(o)) if (!known.includes(k)) return `${where}: unknown field "${k}"`;
  return null;
}

/** What is wrong with a model config (the checks of ModelConfig::validate), or null. */
export function modelConfigProblem(m: unknown): string | null {
  if (!isObject(m)) return 'model: must be a JSON object';
  for (const k of MODEL_REQUIRED) if (m[k] === undefined || m[k] === null) return `model: missing "${k}"`;
  for (const k of MODEL_INTS) {
    const v = m[k];
    if (v !== undefined && v !== null && !Number.isInteger(v)) return `model: "${k}" must be an integer`;
  }
  const n = (k: string, d: number) => (m[k] === undefined || m[k] === null ? d : (m[k] as number));
  const heads = n('num_attention_heads', 0);
  const kv = n('num_key_value_heads', heads);
  const hidden = n('hidden_size', 0);
  const vocab = n('vocab_size', 0);
  for (const k of [
    'vocab_size',
    'hidden_size',
    'intermediate_size',
    'num_hidden_layers',
    'max_position_embeddings',
  ])
    if (n(k, 0) <= 0) return `model: "${k}" must be > 0`;
  if (heads <= 0 || kv <= 0) return 'model: head counts must be > 0';
  if (hidden % heads !== 0) return 'model: hidden_size must be divisible by num_attention_heads';
  if ((hidden / heads) % 2 !== 0) return 'model: head_dim must be even';
  if (heads % kv !== 0) return 'model: num_attention_heads must be divisible by num_key_value_heads';
  const mask = n('mask_token_id', -1);
  if (mask < 0 || mask >= vocab) return 'model: mask_token_id must be in [0, vocab_size)';
  for (const k of ['pad_token_id', 'bos_token_id', 'eos_token_id']) {
    const v = n(k, -1);
    if (v !== -1 && (v < 0 || v >= vocab)) return `model: ${k} must be -1 or in [0, vocab_size)`;
  }
  if (n('block_size', 32) <= 0) return 'model: block_size must be > 0';
  for (const k of ['rms_norm_eps', 'rope_theta']) {
    const v = m[k];
    if (v !== undefined && v !== null && typeof v !== 'number') return `model: "${k}" must be a number`;
    if (typeof v === 'number' && !(v > 0)) return `model: "${k}" must be > 0`;
  }
  const tie = m.tie_word_embeddings;
  if (tie !== undefined && tie !== null && typeof tie !== 'boolean')
    return 'model: tie_word_embeddings must be a boolean';
  const mode = m.attention_mode;
  if (mode !== undefined && mode !== null && !['bidirectional', 'causal', 'block'].includes(mode as string))
    return 'model: attention_mode must be bidirectional, causal or block';
  return null;
}

/** `doc` when sdt-native would accept it; otherwise a UserError naming the field at fault. */
export function checkedTrainConfig(doc: NativeTrainConfig): NativeTrainConfig {
  const problem = trainConfigProblem(doc);
  if (problem) throw new UserError(`the native train config is invalid: ${problem}`);
  return doc;
}

/**
 * What is wrong with a TRAIN.json (the checks of train_config_from_json: field lists, required fields, types
 * and ranges), or null. test/train-config-schema.test.ts shows that sdt-native accepts and rejects the same
 * documents.
 */
export function trainConfigProblem(doc: unknown): string | null {
  if (!isObject(doc)) return 'TRAIN.json must be a JSON object';
  const unknown = unknownField(doc, TRAIN_CONFIG_FIELDS, 'TRAIN.json');
  if (unknown) return unknown;
  if (doc.model === undefined) return 'missing required field "model"';
  const model = modelConfigProblem(doc.model);
  if (model) return model;
  if (doc.tokenizer !== undefined && doc.tokenizer !== null && typeof doc.tokenizer !== 'string')
    return '"tokenizer" must be a path string';
  if (doc.total_steps === undefined) return 'missing required field "total_steps"';
  if (doc.layout !== undefined && doc.layout !== 'single' && doc.layout !== 'two-stream')
    return '"layout" must be "single" or "two-stream"';
  if (doc.layout === 'two-stream' && isObject(doc.model) && doc.model.attention_mode !== 'block')
    return 'layout "two-stream" trains block models: model.attention_mode must be "block"';
  const ints: [string, number][] = [
    ['total_steps', 1],
    ['micro_batches', 1],
    ['checkpoint_every', 0],
    ['keep_checkpoints', 1],
    ['seed', 0],
    ['threads', 0],
    ['max_nonfinite_steps', 1],
  ];
  for (const [k, lo] of ints) {
    const v = doc[k];
    if (v === undefined) continue;
    if (!Number.isInteger(v)) return `"${k}" must be an integer`;
    if ((v as number) < lo) return `"${k}" must be >= ${lo}`;
  }
  if (doc.optimizer !== undefined) {
    const o = doc.optimizer;
    if (!isObject(o)) return 'optimizer must be a JSON object';
    const u = unknownField(o, OPTIMIZER_FIELDS, 'optimizer');
    if (u) return u;
    for (const k of OPTIMIZER_FIELDS)
      if (o[k] !== undefined && typeof o[k] !== 'number') return `optimizer.${k} must be a number`;
    const num = (k: string, d: number) => (o[k] === undefined ? d : (o[k] as number));
    if (!(num('beta1', 0.9) >= 0 && num('beta1', 0.9) < 1)) return 'optimizer: beta1 must be in [0, 1)';
    if (!(num('beta2', 0.95) >= 0 && num('beta2', 0.95) < 1)) return 'optimizer: beta2 must be in [0, 1)';
    if (!(num('eps', 1e-8) > 0)) return 'optimizer: eps must be > 0';
    if (!(num('weight_decay', 0) >= 0)) return 'optimizer: weight_decay must be >= 0';
  }
  if (doc.schedule !== undefined) {
    const s = doc.schedule;
    if (!isObject(s)) return 'schedule must be a JSON object';
    const u = unknownField(s, SCHEDULE_FIELDS, 'schedule');
    if (u) return u;
    for (const k of ['lr', 'min_lr'])
      if (s[k] !== undefined && typeof s[k] !== 'number') return `schedule.${k} must be a number`;
    if (
      s.warmup_steps !== undefined &&
      !(Number.isInteger(s.warmup_steps) && (s.warmup_steps as number) >= 0)
    )
      return 'schedule.warmup_steps must be an integer >= 0';
    const lr = s.lr === undefined ? 3e-4 : (s.lr as number);
    const minLr = s.min_lr === undefined ? 3e-5 : (s.min_lr as number);
    if (!(lr > 0)) return 'schedule: lr must be > 0';
    if (!(minLr >= 0 && minLr <= lr)) return 'schedule: min_lr must be in [0, lr]';
  }
  return null;
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
