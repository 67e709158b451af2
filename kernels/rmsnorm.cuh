// RMSNorm (Hugging Face LlamaRMSNorm) on the GPU: y = w * x / sqrt(mean(x^2) + eps).
// x is the fp32 residual stream, w the fp32 weight (a few thousand values: no bf16 copy), y the
// bf16 input of the next GEMM. Sums are fp32 like the CPU backend's.
#pragma once

#include "types.cuh"

namespace sdt::cuda {

// x: [N, D] fp32; y: [N, D] bf16; inv_rms: [N] fp32 (1 / sqrt(mean(x^2) + eps), for the backward).
void rmsnorm_forward(const float* x, const float* w, int N, int D, float eps, bf16* y, float* inv_rms, Stream stream);

// dy: [N, D] fp32 (the GEMM writes it in fp32). dx += d/dx (fp32, [N, D]); dw += d/dw (fp32, [D];
// partial sums over 64-row chunks are added with atomics, so dw's last bits may vary between runs).
void rmsnorm_backward(const float* x, const float* w, const float* inv_rms, const float* dy, int N, int D, float* dx,
                      float* dw, Stream stream);

}  // namespace sdt::cuda
