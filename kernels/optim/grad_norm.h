// Global gradient norm over many tensors, and clipping by it (gradNorm / clipByNorm in lib/ops.ts,
// as native/cpu/grad_norm.cpp), each in one launch over a device table of tensors.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/common/cuda_stream.h"
#include "kernels/common/dtype.h"
#ifdef __CUDACC__
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace seqtune::gpu {

// One tensor. The caller fills data, n and dtype, calls normPrepare on the host array, then copies
// it to device memory (Device::copyFromHost into a scratch tensor, on the device thread).
struct NormTensor {
  void* data;  // [n] of dtype (floating); written only by clipByNorm
  int64_t n;
  DType dtype;
  int64_t firstChunk;  // set by normPrepare
  bool vec;            // set by normPrepare: data is 16-byte aligned
};

// Assigns each tensor its chunks (16384 elements, the CPU's partial-sum block); returns the total.
int64_t normPrepare(NormTensor* table, int count);

// Device memory gradNorm needs: one f64 partial per chunk.
size_t gradNormWorkspaceBytes(int64_t chunks);

// out: f32 [1] = sqrt(Σ x²) over every element of every tensor, in f64. Deterministic: one
// partial per chunk (a fixed set of elements, fixed tree), then one block adds the partials.
void gradNorm(float* out, const NormTensor* table, int count, int64_t chunks, void* workspace, cudaStream_t stream);

// Scales every tensor in place by clipFactor(norm, maxNorm) (norm: [1] of normType in device
// memory, read on the GPU); does nothing when the factor is 1.
void clipByNorm(const NormTensor* table, int count, int64_t chunks, const void* norm, DType normType, double maxNorm,
                cudaStream_t stream);

#ifdef __CUDACC__
// A floating [1] tensor's value in device memory.
__device__ __forceinline__ double readScalar(const void* x, DType type) {
  switch (type) {
    case DType::F64: return *static_cast<const double*>(x);
    case DType::BF16: return __bfloat162float(*static_cast<const __nv_bfloat16*>(x));
    case DType::F16: return __half2float(*static_cast<const __half*>(x));
    default: return *static_cast<const float*>(x);
  }
}

// min(1, maxNorm / (norm + 1e-6)) as torch's clip_grad_norm_; a NaN norm gives 1 (no scaling).
__device__ __forceinline__ double clipFactor(const void* norm, DType normType, double maxNorm) {
  const double coef = maxNorm / (readScalar(norm, normType) + 1e-6);
  return coef < 1 ? coef : 1.0;
}
#endif

}  // namespace seqtune::gpu
