/**
 * Parameter count and training FLOPs of the Llama-style model, computed exactly as the native model lays out
 * its parameters (native/src/model/config.h `num_parameters`: lm_head counted only when untied).
 */
import type { ModelShape } from './config.ts';

export interface ParamBreakdown {
  embedding: number;
  /** All decoder layers together. */
  layers: number;
  finalNorm: number;
  lmHead: number;
  total: number;
}

export function countParameters(m: ModelShape, vocabSize: number): ParamBreakdown {
  const h = m.hidden_size;
  const headDim = h / m.num_attention_heads;
  const kv = m.num_key_value_heads * headDim;
  const perLayer =
    2 * h + // input_layernorm, post_attention_layernorm
    h * h + // q_proj
    2 * h * kv + // k_proj, v_proj
    h * h + // o_proj
    3 * h * m.intermediate_size; // gate, up, down
  const embedding = vocabSize * h;
  const layers = m.num_hidden_layers * perLayer;
  const lmHead = m.tie_word_embeddings ? 0 : vocabSize * h;
  return { embedding, layers, finalNorm: h, lmHead, total: embedding + layers + h + lmHead };
}

/**
 * Training FLOPs per token (forward + backward = 3x forward):
 *   6 * (matmul parameters: layer weights + the output projection V*H, tied or not)
 *   + 12 * layers * seq_len * hidden  (QK^T and AV: 2 matmuls of 2*T*H FLOPs per token per layer, times 3)
 * The embedding lookup and the norms are not matmuls and are left out.
 */
export function trainFlopsPerToken(m: ModelShape, vocabSize: number, seqLen: number): number {
  const p = countParameters(m, vocabSize);
  const matmulParams = p.layers - m.num_hidden_layers * 2 * m.hidden_size + vocabSize * m.hidden_size;
  return 6 * matmulParams + 12 * m.num_hidden_layers * seqLen * m.hidden_size;
}
