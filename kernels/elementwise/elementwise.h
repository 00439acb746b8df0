// GPU launchers of the elementwise ops (lib/ops.ts): flat arrays of n elements, enqueued on `stream`
// from the device thread. Floating-point math is f32 (f64 for f64 tensors) with one rounding into
// the output dtype, done exactly as the CPU backend does it, so results are bit-identical to the
// CPU's (randomNormal: see philox.h). Pointers may be any element-aligned tensor views; 16-byte
// aligned ones get 128-bit loads and stores.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/common/cuda_stream.h"
#include "kernels/common/dtype.h"

namespace seqtune::gpu {

// out = a + alpha·b; a, b, out: `dtype` (floating) [n].
void add(void* out, const void* a, const void* b, double alpha, DType dtype, int64_t n, cudaStream_t stream);
// out = a·b.
void mul(void* out, const void* a, const void* b, DType dtype, int64_t n, cudaStream_t stream);
// out = alpha·a.
void scale(void* out, const void* a, double alpha, DType dtype, int64_t n, cudaStream_t stream);
// a += alpha·b in place; b may have another floating dtype (converted to a's compute type first).
void addInplace(void* a, DType aType, const void* b, DType bType, double alpha, int64_t n, cudaStream_t stream);
// out (`to`) = in (`from`): bf16/f16 round to nearest even, to i32 truncates toward zero.
void cast(void* out, DType to, const void* in, DType from, int64_t n, cudaStream_t stream);
// out[i] = value converted to dtype (any dtype).
void fill(void* out, DType dtype, int64_t n, double value, cudaStream_t stream);
// out[i] = mean + std·N(i) and low + (high - low)·U(i) with N, U Philox draws of (seed, offset, i).
void randomNormal(void* out, DType dtype, int64_t n, uint64_t seed, uint64_t offset, double mean, double std,
                  cudaStream_t stream);
void randomUniform(void* out, DType dtype, int64_t n, uint64_t seed, uint64_t offset, double low, double high,
                   cudaStream_t stream);

// sum: out [1] (f32, or f64 when `in` is f64) = Σ in[i], accumulated in f64 in two passes (a
// fixed number of block partials, then one block), so the result depends only on n and the data.
// `workspace` holds sumWorkspaceBytes(n) bytes of device memory.
size_t sumWorkspaceBytes(int64_t n);
void sum(void* out, const void* in, DType dtype, int64_t n, void* workspace, cudaStream_t stream);

}  // namespace seqtune::gpu
