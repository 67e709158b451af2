// Rotary position embedding (Hugging Face rotate-half) on the GPU, in place on bf16 head vectors.
// For pair i < hd/2 at position p: x'[i] = x[i] cos - x[i+hd/2] sin, x'[i+hd/2] = x[i+hd/2] cos + x[i] sin.
#pragma once

#include "types.cuh"

namespace sdt::cuda {

// cos_table, sin_table: device fp32 [max_pos][hd/2], uploaded once from the CPU RopeTable so
// both backends rotate by bit-identical angles. x: `heads` consecutive head vectors at the
// start of each row (row n at x + n * stride). pos (device, nullable): row n's position; nullptr:
// n % T. Positions outside [0, max_pos) leave the row unrotated and set it to NaN.
void rope_forward(const float* cos_table, const float* sin_table, int max_pos, int hd, bf16* x, int N, int stride,
                  int heads, const int32_t* pos, int T, Stream stream);
// The transpose rotation (the gradient), in place on dx.
void rope_backward(const float* cos_table, const float* sin_table, int max_pos, int hd, bf16* dx, int N, int stride,
                   int heads, const int32_t* pos, int T, Stream stream);

}  // namespace sdt::cuda
