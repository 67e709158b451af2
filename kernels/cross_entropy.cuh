// Fused softmax cross-entropy on the GPU with per-token weights and the <|mask|> logit excluded
// (as sdt::cross_entropy). Logits arrive in bf16 from the lm_head GEMM; sums are fp32 per row
// and the total is summed in double by one block in a fixed order (reproducible).
#pragma once

#include "types.cuh"

namespace sdt::cuda {

// logits: [N, V] bf16. For rows with target >= 0:
//   CE_n = logsumexp(logits[n, v != mask_id]) - logits[n, target]   (ce_out[n], fp32, required)
// rows without target get CE 0. loss_sum (device, one double): sum_n w_n CE_n (w nullptr: 1).
// dlogits (nullable, [N, V] bf16, may alias logits): grad_scale * w_n * (softmax - onehot), 0 in the
// mask column and in rows without target. A target outside [0, V) or equal to mask_id gives NaN.
// workspace: device, N floats (the weighted per-row losses before the fixed-order sum); the
// caller owns it, so a step allocates nothing.
void cross_entropy(const bf16* logits, int N, int V, const int32_t* targets, const float* w, int mask_id,
                   float grad_scale, float* ce_out, double* loss_sum, bf16* dlogits, float* workspace,
                   Stream stream);

}  // namespace sdt::cuda
