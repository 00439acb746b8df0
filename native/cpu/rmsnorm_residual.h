// rmsnormResidual and its backward on the CPU (native/ops/rmsnorm_residual.cpp checks and dispatches).
#pragma once
#include <cstdint>

#include "native/runtime/tensor.h"

namespace seqtune::cpu {

// out = sum·rstd·weight with sum = x + residual (residual may be null); rstd f32/f64 [rows].
void rmsnormResidualForward(const Tensor& x, const Tensor* residual, const Tensor& weight, double eps, const Tensor& out,
                            const Tensor& sum, const Tensor& rstd);
// dx (plus dsum when given) and, when dweight is not null, dweight.
void rmsnormResidualBackward(const Tensor& dout, const Tensor& sum, const Tensor& weight, const Tensor& rstd,
                             const Tensor* dsum, const Tensor& dx, const Tensor* dweight);

}  // namespace seqtune::cpu
