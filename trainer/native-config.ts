/**
 * The train config of `sdt-native train` (docs/native.md) derived from the resolved `sdt train` config and
 * the dataset's tokenizer. The model part is a Hugging Face Llama config.json plus the diffusion fields.
 */
import type { CorruptSpecials } from '../pipelines/corrupt/types.ts';
import { type CheckpointConfig, checkedTrainConfig, type NativeTrainConfig } from '../schemas/checkpoint.ts';
import { type TrainConfig, totalSteps } from './config.ts';

export interface NativeTokenizerInfo {
  vocabSize: number;
  specials: CorruptSpecials;
  tokenizerPath: string;
}

export function nativeModelConfig(
  cfg: TrainConfig,
  tok: NativeTokenizerInfo,
): Partial<CheckpointConfig> & NativeTrainConfig['model'] {
  const m = cfg.model;
  return {
    vocab_size: tok.vocabSize,
    hidden_size: m.hidden_size,
    intermediate_size: m.intermediate_size,
    num_hidden_layers: m.num_hidden_layers,
    num_attention_heads: m.num_attention_heads,
    num_key_value_heads: m.num_key_value_heads,
    max_position_embeddings: cfg.data.seq_len,
    rms_norm_eps: m.rms_norm_eps,
    rope_theta: m.rope_theta,
    tie_word_embeddings: m.tie_word_embeddings,
    // The AR baseline trains the same weights causally; diffusion attends both ways, or block-causally.
    attention_mode: cfg.objective === 'ar' ? 'causal' : m.attention_mode,
    block_size: m.block_size,
    mask_token_id: tok.specials.mask,
    del_token_id: tok.specials.del,
    pad_token_id: tok.specials.pad,
    bos_token_id: tok.specials.bos,
    eos_token_id: tok.specials.eos,
  };
}

/**
 * The TRAIN.json, checked against the contract sdt-native applies (schemas/checkpoint.ts). `framesPerStep`:
 * the stream frames of one step that this rank reads (trainer/feed-part.ts); cfg's micro_batches by default.
 */
export function nativeTrainConfig(
  cfg: TrainConfig,
  tok: NativeTokenizerInfo,
  framesPerStep = cfg.batch.micro_batches,
): NativeTrainConfig {
  return checkedTrainConfig({
    model: nativeModelConfig(cfg, tok),
    tokenizer: tok.tokenizerPath,
    total_steps: totalSteps(cfg),
    micro_batches: framesPerStep,
    optimizer: {
      beta1: cfg.schedule.beta1,
      beta2: cfg.schedule.beta2,
      weight_decay: cfg.schedule.weight_decay,
      grad_clip: cfg.schedule.clip,
    },
    schedule: { lr: cfg.schedule.lr, min_lr: cfg.schedule.min_lr, warmup_steps: cfg.schedule.warmup_steps },
    checkpoint_every: cfg.checkpoint.every,
    keep_checkpoints: cfg.checkpoint.keep,
    seed: cfg.seed,
    threads: cfg.threads,
    ...(cfg.curriculum.two_stream ? { layout: 'two-stream' as const } : {}),
  });
}
