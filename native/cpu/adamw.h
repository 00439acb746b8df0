// adamw on the CPU (native/ops/adamw.cpp checks and dispatches): torch.optim.AdamW semantics over
// many tensors in one call, elementwise work split freely across threads.
#pragma once
#include <cstdint>
#include <vector>

#include "native/runtime/tensor.h"

namespace seqtune::cpu {

struct AdamwHyper {
  double lr, beta1, beta2, eps, weightDecay, maxGradNorm;
  int64_t step;
};

// One step over params[i] with grads[i] and moments m[i], v[i], all updated in place; each tensor
// steps in its parameter's precision (f32 or f64) and m, v may each be f32 or f64 (the trainer
// keeps f32 moments whatever the parameters). maxGradNorm > 0 clips by `norm` (clipFactor); a
// non-finite guard value (when guard is not null) leaves everything unchanged.
void adamw(const AdamwHyper& hp, const Tensor* norm, const Tensor* guard, const std::vector<TensorPtr>& params,
           const std::vector<TensorPtr>& grads, const std::vector<TensorPtr>& m, const std::vector<TensorPtr>& v);

}  // namespace seqtune::cpu
