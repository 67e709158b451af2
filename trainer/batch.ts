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
