// SwiGLU on the GPU: gu [N, 2I] bf16 with gate in columns [0, I) and up in [I, 2I);
// h = silu(gate) * up, computed in fp32 and stored in bf16.
#pragma once

#include "types.cuh"

namespace sdt::cuda {

void swiglu_forward(const bf16* gu, int N, int I, bf16* h, Stream stream);
// dh: [N, I] bf16. Writes dgu [N, 2I] bf16.
void swiglu_backward(const bf16* gu, const bf16* dh, int N, int I, bf16* dgu, Stream stream);

}  // namespace sdt::cuda
