/**
 * A micro-batch as the feed produces it: B sequences of T tokens, flattened row-major, ready to be framed
 * into the trainer stream. Segment ids follow the native convention: a negative id marks padding.
 */
export interface SequenceExample {
  input: Int32Array;
  target: Int32Array;
  weight: Float32Array;
  /** 1-based document ids of packed windows, 0 on padding (pipelines/corrupt convention). */
  segment?: Int32Array;
}

export interface MicroBatch {
  B: number;
  T: number;
  input: Int32Array;
  target: Int32Array;
  weight: Float32Array;
  /** Native convention: document id >= 0, -1 on padding. */
  segment: Int32Array;
}

/** Stack examples of equal length into one micro-batch, mapping padding segments (0) to -1. */
export function stackExamples(examples: SequenceExample[], T: number): MicroBatch {
  const B = examples.length;
  const input = new Int32Array(B * T);
  const target = new Int32Array(B * T);
  const weight = new Float32Array(B * T);
  const segment = new Int32Array(B * T);
  examples.forEach((ex, b) => {
    if (ex.input.length !== T || ex.target.length !== T || ex.weight.length !== T) {
      throw new Error(`example ${b} has length ${ex.input.length}, expected ${T}`);
    }
    input.set(ex.input, b * T);
    target.set(ex.target, b * T);
    weight.set(ex.weight, b * T);
    for (let t = 0; t < T; t++) {
      const s = ex.segment ? ex.segment[t] : 1;
      segment[b * T + t] = s === 0 ? -1 : s;
    }
  });
  return { B, T, input, target, weight, segment };
}

/**
 * The two-stream row of a corrupted example: [noisy | clean], the loss on the noisy half only, the document
 * ids repeated so each stream stays within its documents (native AttentionMode::BlockTwoStream).
 */
export function twoStreamExample(
  noisy: SequenceExample,
  clean: Int32Array,
  cleanSegment?: Int32Array,
): SequenceExample {
  const L = noisy.input.length;
  if (clean.length !== L)
    throw new Error(`two-stream: the clean sequence has ${clean.length} tokens, the noisy one ${L}`);
  const input = new Int32Array(2 * L);
  input.set(noisy.input);
  input.set(clean, L);
  const target = new Int32Array(2 * L).fill(-1);
  target.set(noisy.target);
  const weight = new Float32Array(2 * L);
  weight.set(noisy.weight);
  const out: SequenceExample = { input, target, weight };
  if (noisy.segment || cleanSegment) {
    const segment = new Int32Array(2 * L).fill(1);
    if (noisy.segment) segment.set(noisy.segment);
    if (cleanSegment) segment.set(cleanSegment, L);
    out.segment = segment;
  }
  return out;
}
