// LM head and cross-entropy fused over vocabulary chunks on CUDA devices (linearCrossEntropy and
// its backward in lib/ops.ts; semantics of native/ops/linear_cross_entropy.cpp and
// native/ops/loss_common.h), h [T, C], W [V, C], int32 labels [T]:
//   lse[t] = log Σ_v exp(h[t]·W[v]),  loss = Σ_t (lse[t] − h[t]·W[label[t]]) over rows whose label
//   is not ignoreIndex, / count for `mean` (0 when count is 0);
//   backward: dlogits = coef·(softmax − onehot) (coef = gradScale / count for mean, gradScale for
//   sum; 0 on ignored rows), dh = dlogits·W, dW = dlogitsᵀ·h.
// The [T, V] logits are never stored. bf16/f16 h: each chunk's logits come from the tensor-core
// GEMM, whose epilogue folds them into per-row (max, Σexp) partials and picks up the label's logit
// (forward), or writes the chunk's dlogits in h's dtype (backward), which then feed two GEMMs
// (dh accumulated in f32 over chunks in vocabulary order, dW rows written per chunk). W may be h's
// dtype or f32 (converted chunk by chunk). All-f32 and all-f64 run the SIMT GEMM over an f32/f64
// logits chunk. Every reduction runs in a fixed order: results are deterministic.
// A label outside [0, V) that is not ignoreIndex is flagged in errorFlag (kernels/common/index_check.h)
// and the row counted as ignored; the caller reads the flag back as for crossEntropy.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/gemm/gemm.h"

namespace seqtune::gpu {

struct LinearCeArgs {
  int64_t rows = 0, features = 0, vocab = 0;  // T, C, V
  DType hDtype = DType::BF16;
  DType weightDtype = DType::BF16;
  const void* h = nullptr;        // [T, C], contiguous
  const void* weight = nullptr;   // [V, C], contiguous
  const int32_t* labels = nullptr;
  int64_t ignoreIndex = -100;
  bool mean = true;
  int64_t chunk = 4096;
  int* errorFlag = nullptr;       // optional
  void* workspace = nullptr;
  size_t workspaceBytes = 0;      // at least linearCrossEntropyWorkspaceBytes(args, backward)
};

size_t linearCrossEntropyWorkspaceBytes(const LinearCeArgs& args, bool backward);

// loss [1], lse [T], count [1]: f32, or f64 for f64 h (loss::statsDtype).
void linearCrossEntropyForward(const LinearCeArgs& args, void* loss, void* lse, void* count, cudaStream_t stream);

// lse and count as the forward returned them; dh [T, C] in h's dtype; dweight [V, C] in W's dtype,
// or null for a frozen head.
void linearCrossEntropyBackward(const LinearCeArgs& args, const void* lse, const void* count, double gradScale, void* dh,
                                void* dweight, cudaStream_t stream);

}  // namespace seqtune::gpu
