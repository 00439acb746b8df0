// SwiGLU activation (swiglu / swigluBackward in lib/ops.ts): silu(gate)·up, elementwise over n
// elements of `dtype` (floating), computed in f32 (f64 for f64) as the CPU backend.
#pragma once
#include <cstdint>

#include "kernels/common/cuda_stream.h"
#include "kernels/common/dtype.h"

namespace seqtune::gpu {

// out = gate·σ(gate)·up; out, gate, up: [n].
void swigluForward(void* out, const void* gate, const void* up, DType dtype, int64_t n, cudaStream_t stream);

// With s = σ(gate): dgate = dout·up·s·(1 + gate·(1 − s)), dup = dout·gate·s; all [n].
void swigluBackward(void* dgate, void* dup, const void* dout, const void* gate, const void* up, DType dtype, int64_t n,
                    cudaStream_t stream);

}  // namespace seqtune::gpu
