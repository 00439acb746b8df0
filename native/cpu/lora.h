// loraLinear and loraLinearBackward on the CPU (native/ops/lora.cpp checks and dispatches). Inputs
// may mix floating dtypes: the math runs in f32 (f64 when x is f64) over the blocked GEMM (gemm.h);
// out and dx take x's dtype, xa a's, and da, db their parameter's.
#pragma once
#include <cstdint>

#include "native/runtime/tensor.h"

namespace seqtune::cpu {

struct LoraDims {
  int64_t tokens, in, out, rank;
};

// The adapter's scale and the inverted dropout on its input: element i of the draw (seed, offset)
// is x's flat index i, as the dropout op draws it.
struct LoraAttrs {
  double scale;
  double p;
  uint64_t seed, offset;
};

// y = x·Wᵀ + bias + scale·(drop(x)·Aᵀ)·Bᵀ and xa = drop(x)·Aᵀ; bias may be null.
void loraLinear(const LoraDims& d, const LoraAttrs& at, const Tensor& x, const Tensor& w, const Tensor& a,
                const Tensor& b, const Tensor* bias, const Tensor& y, const Tensor& xa);

// da, db and, when dx is not null, dx; the dropout mask is regenerated from (seed, offset).
void loraLinearBackward(const LoraDims& d, const LoraAttrs& at, const Tensor& dy, const Tensor& x, const Tensor& w,
                        const Tensor& a, const Tensor& b, const Tensor& xa, const Tensor* dx, const Tensor& da,
                        const Tensor& db);

}  // namespace seqtune::cpu
