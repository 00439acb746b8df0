// gradNorm and clipByNorm on the CPU (native/ops/grad_norm.cpp checks and dispatches). The norm is
// summed in f64 over fixed-size blocks added in a fixed order, so it does not depend on the thread
// count.
#pragma once
#include <vector>

#include "native/runtime/tensor.h"

namespace seqtune::cpu {

// out (f32 [1]) = sqrt(Σ x²) over every element of every tensor.
void gradNorm(const std::vector<TensorPtr>& tensors, const Tensor& out);

// min(1, maxNorm / (norm + 1e-6)) from norm [1]; a NaN norm gives 1 (no scaling) rather than NaN
// everywhere. adamw clips by it too.
double clipFactor(const Tensor& norm, double maxNorm);

// Scales every tensor in place by clipFactor(norm, maxNorm).
void clipByNorm(const Tensor& norm, double maxNorm, const std::vector<TensorPtr>& tensors);

}  // namespace seqtune::cpu
