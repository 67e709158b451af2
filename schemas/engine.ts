/**
 * The engine protocol of `sdt-native serve` (spec: schemas/engine.md; C++ side: native/src/engine/engine.cpp
 * and native/src/sampler/protocol.cpp). Requests, results and events are JSON lines; the batch of a score,
 * loss or logits request and the tensor of a result are binary messages framed like the trainer stream
 * (schemas/stream.md). Field names on the wire are snake_case; the TS API uses camelCase settings.
 */
import { crc32 } from 'node:zlib';
import {
  encodeBatchPayload,
  encodeFrame,
  encodeStreamHeader,
  FRAME_HEADER_BYTES,
  STREAM_HEADER_BYTES,
  STREAM_MAGIC,
  type StreamBatch,
} from './stream.ts';
import type { StepKind } from './trajectory.ts';

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
  /** Threshold rule: stop a step before its summed error (1 - confidence) exceeds this; 0 = off. */
  errorBudget?: number;
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
  errorBudget: 'error_budget',
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
  /** Where the model runs (`--device`). */
  device: 'cpu' | 'cuda';
  /** The binary-message version this engine reads and writes (ENGINE_VERSION). */
  engine_version: number;
  /**
   * Prompts of any length share a lockstep group under aligned blocks (when prompt + max_new + block - 1 fits
   * the context); false: only prompts of equal length modulo the block do (the CUDA engine).
   */
  mixed_length_groups: boolean;
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
  /** This row's model calls (the calls of its group while it was decoding). */
  forward_passes: number;
  /** Its lockstep group, numbered within the request (-1: cancelled before its group started). */
  group: number;
  /** Every model call of that group, whichever rows it served. */
  group_forward_passes: number;
  /** Stopped by a cancel message: tokens, steps and passes are what it had then (whole blocks). */
  cancelled: boolean;
  blocks: WireBlock[];
  trajectory?: WireStep[];
  timings: { prefill_ms: number; decode_ms: number };
}

export type WireResponse =
  | { id: string | number | null; ok: true; results: WireResult[]; timings: { total_ms: number } }
  | WireError;

// ---- batch ops: score, loss, logits ----

/** The binary-message version the engine speaks: the trainer stream's version (same framing). */
export const ENGINE_VERSION = 1;
export const ENGINE_OPS = ['generate', 'cancel', 'score', 'loss', 'logits'] as const;
export type EngineOp = (typeof ENGINE_OPS)[number];
export type BatchOp = Exclude<EngineOp, 'generate' | 'cancel'>;

/** Request fields of a generate request (native/src/sampler/protocol.cpp parse_request). */
export const GENERATE_FIELDS = [
  'id',
  'op',
  'device',
  'prompt',
  'prompts',
  'stream',
  ...Object.values(WIRE_NAMES),
] as const;
/** Request fields of score, loss and logits (native/src/engine/engine.cpp batch_request_fields). */
export const BATCH_FIELDS = ['id', 'op', 'attention', 'device', 'threads'] as const;
/**
 * Fields of a cancel message (native/src/engine/engine.cpp cancel_fields): `request` is the id of a generate
 * request, `sequences` the indices of its prompts to stop (default all of them).
 */
export const CANCEL_FIELDS = ['id', 'op', 'request', 'sequences'] as const;

/** The engine's answer to a cancel message; `decoding`: the request was decoding when it arrived. */
export interface CancelResponse {
  id: string | number | null;
  ok: true;
  op: 'cancel';
  request: string | number;
  decoding: boolean;
}

/** The "code" of an error response. */
export const ENGINE_ERROR_CODES = [
  'bad_json',
  'bad_request',
  'device',
  'bad_frame',
  'missing_frame',
  'stray_frame',
  'bad_batch',
  'cancelled',
] as const;
export type EngineErrorCode = (typeof ENGINE_ERROR_CODES)[number];

export interface WireError {
  id: string | number | null;
  ok: false;
  code: EngineErrorCode;
  error: string;
}

export type BatchResponse =
  | {
      id: string | number | null;
      ok: true;
      op: 'score';
      rows: number;
      T: number;
      attention: string;
      targets: number;
      total_logprob: number;
      frames: 1;
    }
  | {
      id: string | number | null;
      ok: true;
      op: 'loss';
      rows: number;
      T: number;
      attention: string;
      loss: number;
      weight_sum: number;
      targets: number;
    }
  | {
      id: string | number | null;
      ok: true;
      op: 'logits';
      rows: number;
      T: number;
      attention: string;
      vocab_size: number;
      frames: 1;
    }
  | WireError;

const ATTENTION = ['bidirectional', 'causal', 'block'];
const DEVICES = ['cpu', 'cuda'];

/**
 * What is wrong with a request line's field names and kinds (null when nothing): the checks the engine makes
 * before it looks at the model (unknown op, unknown field, the type of id, op, attention, device, stream, a
 * generate request's prompt, a cancel's request and sequences). The engine also checks values against the model (ids in the vocabulary, settings
 * ranges); test/engine.test.ts shows that both sides accept and reject the same documents.
 */
export function requestProblem(doc: unknown): string | null {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return 'a request must be a JSON object';
  const r = doc as Record<string, unknown>;
  if (r.op !== undefined && typeof r.op !== 'string') return 'field "op" must be a string';
  const op = (r.op ?? 'generate') as string;
  if (!(ENGINE_OPS as readonly string[]).includes(op)) return `unknown op "${op}"`;
  const fields: readonly string[] =
    op === 'generate' ? GENERATE_FIELDS : op === 'cancel' ? CANCEL_FIELDS : BATCH_FIELDS;
  for (const k of Object.keys(r)) if (!fields.includes(k)) return `unknown field "${k}" for op "${op}"`;
  if (r.id !== undefined && typeof r.id !== 'string' && typeof r.id !== 'number')
    return 'field "id" must be a string or a number';
  if (r.device !== undefined && !DEVICES.includes(r.device as string))
    return 'field "device" must be "cpu" or "cuda"';
  if (op === 'cancel') {
    const isId = (x: unknown) => typeof x === 'string' || typeof x === 'number';
    if (r.request !== undefined && !isId(r.request)) return 'field "request" must be a string or a number';
    if (r.request === undefined) return 'op "cancel" needs field "request"';
    const s = r.sequences;
    if (
      s !== undefined &&
      !(
        Array.isArray(s) &&
        s.length > 0 &&
        s.every((x) => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 2 ** 30)
      )
    )
      return 'field "sequences" must be a non-empty array of prompt indices';
    return null;
  }
  if (op !== 'generate') {
    if (r.attention !== undefined && !ATTENTION.includes(r.attention as string))
      return 'field "attention" must be "bidirectional", "causal" or "block"';
    const t = r.threads;
    if (t !== undefined && !(Number.isInteger(t) && (t as number) >= 0 && (t as number) <= 4096))
      return 'field "threads" must be an integer in [0, 4096]';
    return null;
  }
  if (r.stream !== undefined && typeof r.stream !== 'boolean') return 'field "stream" must be true or false';
  if (r.prompt !== undefined && r.prompts !== undefined) return 'give either "prompt" or "prompts", not both';
  if (r.prompt === undefined && r.prompts === undefined) return 'missing field "prompt" or "prompts"';
  return null;
}

/** A batch request's binary message: the stream header, then one `request` frame holding the batch. */
export function encodeBatchMessage(b: StreamBatch): Uint8Array {
  const header = encodeStreamHeader();
  const frame = encodeFrame(FRAME_KIND_REQUEST, encodeBatchPayload(b));
  const out = new Uint8Array(header.length + frame.length);
  out.set(header, 0);
  out.set(frame, header.length);
  return out;
}

export const FRAME_KIND_REQUEST = 5;
export const FRAME_KIND_TENSOR = 6;
/** Bytes of a binary message before its payload: stream header and frame header. */
export const MESSAGE_HEADER_BYTES = STREAM_HEADER_BYTES + FRAME_HEADER_BYTES;

export interface Tensor {
  dims: number[];
  data: Float32Array;
}

/** Payload length of the binary message at the start of `bytes` (its 36 header bytes must be there). */
export function messagePayloadLength(bytes: Uint8Array): number {
  for (let i = 0; i < 8; i++) {
    if (bytes[i] !== STREAM_MAGIC[i])
      throw new Error('engine output: expected a binary message (SDTSTRM magic)');
  }
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.length).getUint32(STREAM_HEADER_BYTES + 4, true);
}

/** Decodes a complete result message (header + tensor frame), checking version, kind and CRC. */
export function decodeTensorMessage(bytes: Uint8Array): Tensor {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const version = view.getUint32(8, true);
  if (version !== ENGINE_VERSION)
    throw new Error(`engine output: message version ${version}, this client reads ${ENGINE_VERSION}`);
  const kind = view.getUint32(STREAM_HEADER_BYTES, true);
  const len = view.getUint32(STREAM_HEADER_BYTES + 4, true);
  if (kind !== FRAME_KIND_TENSOR)
    throw new Error(`engine output: frame kind ${kind} where a tensor (6) was expected`);
  const payload = bytes.subarray(MESSAGE_HEADER_BYTES, MESSAGE_HEADER_BYTES + len);
  const crc = crc32(payload, crc32(bytes.subarray(STREAM_HEADER_BYTES, STREAM_HEADER_BYTES + 8)));
  if (crc !== view.getUint32(STREAM_HEADER_BYTES + 8, true))
    throw new Error('engine output: CRC-32 mismatch');
  const p = new DataView(payload.buffer, payload.byteOffset, payload.length);
  if (p.getUint32(0, true) !== 1) throw new Error('engine output: tensor dtype is not float32');
  const ndim = p.getUint32(4, true);
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(p.getUint32(8 + 4 * i, true));
  const start = 8 + 4 * ndim;
  const n = dims.reduce((a, b) => a * b, 1);
  if (payload.length !== start + 4 * n)
    throw new Error('engine output: tensor payload does not match its dims');
  // Copied out: aligned, and independent of the client's read buffer.
  const copy = new Uint8Array(payload.length - start);
  copy.set(payload.subarray(start));
  const data = new Float32Array(copy.buffer);
  return { dims, data };
}
