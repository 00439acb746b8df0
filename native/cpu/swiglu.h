// swiglu and its backward on the CPU (native/ops/swiglu.cpp checks and dispatches).
#pragma once
#include "native/runtime/tensor.h"

namespace seqtune::cpu {

// out = silu(gate) · up.
void swiglu(const Tensor& gate, const Tensor& up, const Tensor& out);
// d silu(g)/dg = σ(g)·(1 + g·(1 - σ(g))).
void swigluBackward(const Tensor& dout, const Tensor& gate, const Tensor& up, const Tensor& dgate, const Tensor& dup);

}  // namespace seqtune::cpu
