// The kernel parity checks of `sdt-native gpu-check`, one function per kernel family. Each draws
// fresh inputs from `rng`, runs the CPU reference (native/src/ops, train/optimizer, sampler) and
// the kernel, and adds one table row per output.
#pragma once

#include "cuda/parity.h"

namespace sdt::cuda::parity {

void check_embedding(Random& rng, Table& table);
void check_rmsnorm(Random& rng, Table& table);
void check_rope(Random& rng, Table& table);
void check_swiglu(Random& rng, Table& table);
void check_attention(Random& rng, Table& table);
// The same cases on the tensor-core kernels (attention_forward_tc / attention_backward_tc).
void check_attention_tc(Random& rng, Table& table);
void check_attention_chunk(Random& rng, Table& table);
void check_cross_entropy(Random& rng, Table& table);
void check_adamw(Random& rng, Table& table);
void check_sampler(Random& rng, Table& table);

}  // namespace sdt::cuda::parity

namespace sdt::cuda::parity {

// The whole training step: CudaModel against sdt::Model (loss, every gradient, the AdamW update)
// for three attention setups, tied and untied embeddings, GQA and packed sequences.
void check_model_step(Random& rng, Table& table);
// The inference path: full-sequence logits and cached block-by-block decoding (CudaModel against
// sdt::Model), and a greedy generation through the shared sampler on both backends.
void check_decode(Random& rng, Table& table);
// CudaModel's step graphs: a replayed step against the eager one.
void check_step_graphs(Random& rng, Table& table);
// 200 AdamW steps of a small model on the GPU over four fixed batches: the loss must fall.
void check_training_run(Random& rng, Table& table);

}  // namespace sdt::cuda::parity
