// Softmax cross-entropy over materialised logits (crossEntropy / crossEntropyBackward in
// lib/ops.ts), with the semantics of native/ops/loss_common.h.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/common/cuda_stream.h"
#include "kernels/common/dtype.h"

namespace seqtune::gpu {

// Device memory crossEntropyForward needs: one f64 loss per row.
size_t crossEntropyWorkspaceBytes(int64_t rows);

// logits: [rows, vocab] of `dtype` (floating); labels: int32 [rows]. The statistics loss [1],
// lse [rows] and count [1] are f32, or f64 for f64 logits (loss::statsDtype).
//   lse[r]  = log Σ_j exp(logits[r, j])   (one pass: online max and rescaled sum)
//   count   = number of rows whose label is not ignoreIndex
//   loss    = Σ_r (lse[r] − logits[r, label[r]]) over those rows, divided by count for `mean`
//             (0 when count is 0), summed in row order in f64.
// A label outside [0, vocab) that is not ignoreIndex is flagged in `errorFlag` (index_check.h;
// the caller checks it with firstBadIndex) and counted as ignored. One block per row.
void crossEntropyForward(void* loss, void* lse, void* count, const void* logits, const int32_t* labels, DType dtype,
                         int64_t rows, int64_t vocab, int64_t ignoreIndex, bool mean, void* workspace, int* errorFlag,
                         cudaStream_t stream);

// dlogits[r, j] = coef·(exp(logits[r, j] − lse[r]) − [j = label[r]]), 0 on ignored rows, with
// coef = gradScale / count for `mean` (0 when count is 0), gradScale for `sum`; count and lse as
// the forward returned them (same stats dtype). dlogits may be logits (the gradient overwrites
// the logits in place). Bad labels are flagged as in the forward.
void crossEntropyBackward(void* dlogits, const void* logits, const int32_t* labels, const void* lse, const void* count,
                          DType dtype, int64_t rows, int64_t vocab, int64_t ignoreIndex, bool mean, double gradScale,
                          int* errorFlag, cudaStream_t stream);

}  // namespace seqtune::gpu
