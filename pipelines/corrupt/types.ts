/**
 * The data types corruptions produce and consume. `TrainingExample` is what the trainer feed turns into
 * batches (schemas/stream.md): one fixed-length sequence with its targets and per-token loss weights.
 */
import type { Span } from '../../schemas/dataset.ts';

export type CorruptionKind = 'mask' | 'edit';

/**
 * One training sequence.
 * - `input`: token ids the model sees (mask process: x0 with some tokens replaced by <|mask|>; edit
 *   process: the edited sequence, padded/truncated to the canvas).
 * - `target`: the id to predict at each position. Mask: x0 everywhere (weight 0 where not masked, since
 *   unmasked inputs are not copied through). Edit: the positional or aligned target (see edit targets).
 * - `weight`: per-token loss weight. Mask: 1/p_mask on masked positions, 0 elsewhere. Edit: 1 on every
 *   real position, 0 on padding.
 * - `t`: the diffusion time drawn for the sequence (block mode: mean over blocks); edit: alpha_t.
 * - `segment`: document id per position for packed sequences (1, 2, ... in order; 0 = padding).
 *   Attention must not cross segments.
 * All arrays have the same length.
 */
export interface TrainingExample {
  input: Int32Array;
  target: Int32Array;
  weight: Float32Array;
  t?: number;
  kind: CorruptionKind;
  segment?: Int32Array;
}

/** The special token ids corruptions need (a subset of the tokenizer's SpecialIds). */
export interface CorruptSpecials {
  pad: number;
  bos: number;
  eos: number;
  mask: number;
  del: number;
}

/** A fixed-length window cut from one or more dataset rows (see windows.ts). */
export interface Window {
  /** Length L: content then <|pad|>. */
  tokens: Int32Array;
  /** 1-based document index inside the window, 0 on padding. */
  segment: Int32Array;
  /** Number of non-padding positions (content occupies [0, length)). */
  length: number;
  /** Spans shifted into window coordinates and clipped to the piece of the row the window holds. */
  spans: Span[];
  /** The pieces of rows packed here, in order. */
  pieces: WindowPiece[];
}

export interface WindowPiece {
  rowId: string;
  segment: number;
  /** Window positions [start, end) this piece occupies, BOS/EOS included when present. */
  start: number;
  end: number;
  /** Row token index of the first row token in the piece (after the BOS if any). */
  rowOffset: number;
}
