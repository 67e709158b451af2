// Token embedding on the GPU. The table is the bf16 copy of the weights; the output is the fp32
// residual stream; the gradient is accumulated into the fp32 master gradient.
#pragma once

#include "types.cuh"

namespace sdt::cuda {

// out[n, :] = table[ids[n], :] (fp32). An id outside [0, V) writes NaN into its row so a bad
// batch is caught by the loss instead of reading out of bounds.
void embedding_forward(const bf16* table, int V, int D, const int32_t* ids, int N, float* out, Stream stream);

// dtable[ids[n], :] += dout[n, :] (fp32 atomics; the summation order of repeated ids is not
// fixed, so results may differ in the last bits between runs). Out-of-range ids are skipped.
void embedding_backward(const int32_t* ids, int N, int V, int D, const float* dout, float* dtable, Stream stream);

}  // namespace sdt::cuda
