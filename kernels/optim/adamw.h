// AdamW over many tensors in one launch (adamw in lib/ops.ts; torch.optim.AdamW semantics, as
// native/cpu/adamw.cpp).
#pragma once
#include <cstdint>

#include "kernels/common/cuda_stream.h"
#include "kernels/common/dtype.h"

namespace seqtune::gpu {

// One parameter tensor. The caller fills the pointers, n and dtypes, calls adamwPrepare on the
// host array, then copies it to device memory (Device::copyFromHost into a scratch tensor, on the
// device thread) and passes that copy to adamw.
struct AdamwTensor {
  void* param;       // [n] of paramType: f32 master weights (f64 for gradient checks)
  void* m;           // [n] of paramType
  void* v;           // [n] of paramType
  const void* grad;  // [n] of gradType: any floating dtype
  int64_t n;
  DType paramType;
  DType gradType;
  int64_t firstChunk;  // set by adamwPrepare
  bool vec;            // set by adamwPrepare: all four pointers 16-byte aligned
};

struct AdamwHyper {
  double lr, beta1, beta2, eps, weightDecay;
  int64_t step;        // 1-based, for bias correction
  double maxGradNorm;  // > 0: scale grads by min(1, maxGradNorm / (gradNorm + 1e-6))
};

// Assigns each tensor its chunks of work; returns the total number of chunks.
int64_t adamwPrepare(AdamwTensor* table, int count);

// For each element, with c the clip factor (from *gradNorm, f32 or f64 [1] in device memory, read
// on the GPU so no sync is needed; 1 when maxGradNorm is 0 or the norm is NaN):
//   g = grad·c; p ·= 1 − lr·wd; m = β1·m + (1 − β1)·g; v = β2·v + (1 − β2)·g²;
//   p −= lr/(1 − β1^t) · m / (sqrt(v)/sqrt(1 − β2^t) + eps)
// `table`: device copy of `count` prepared entries; `chunks`: adamwPrepare's result.
// guard (optional, [1] of guardType in device memory): when its value is not finite the launch
// changes nothing — the trainer's skip of a non-finite step without reading the norm back first.
void adamw(const AdamwTensor* table, int count, int64_t chunks, const AdamwHyper& hp, const void* gradNorm,
           DType normType, const void* guard, DType guardType, cudaStream_t stream);

}  // namespace seqtune::gpu
