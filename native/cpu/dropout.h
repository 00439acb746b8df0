// dropout on the CPU (native/ops/dropout.cpp checks and dispatches).
#pragma once
#include <cstdint>

#include "native/runtime/tensor.h"

namespace seqtune::cpu {

// out[i] = x[i] / (1 - p) where Philox(seed, offset, i) keeps element i, else 0.
void dropout(const Tensor& x, double p, uint64_t seed, uint64_t offset, const Tensor& out);

// The same over n values of the compute type T (float or double); dst may be src. LoRA's adapter
// input and its gradient take this mask.
template <typename T>
void dropoutValues(int64_t n, const T* src, double p, uint64_t seed, uint64_t offset, T* dst);

}  // namespace seqtune::cpu
