// The elementwise ops and tensor creation on the CPU (native/ops/elementwise.cpp checks and
// dispatches): f32 math (f64 for f64 tensors), stored in the output dtype.
#pragma once
#include <cstdint>

#include "native/runtime/tensor.h"

namespace seqtune::cpu {

// out = x * y when multiply, else alpha * x + beta * y.
void axpby(const Tensor& x, const Tensor& y, const Tensor& out, double alpha, double beta, bool multiply);
// out = alpha * x.
void scale(const Tensor& x, const Tensor& out, double alpha);
// x += alpha * y, in place (y may have another floating dtype).
void addInplace(const Tensor& x, const Tensor& y, double alpha);
// dst = src converted to dst's dtype (same element count).
void cast(const Tensor& src, const Tensor& dst);
void fill(const Tensor& out, double value);
// Element i is Philox(seed, offset, i): normal (mean a, std b) or uniform in [a, b).
void random(const Tensor& out, uint64_t seed, uint64_t offset, double a, double b, bool normal);
// out [1] = the sum of x in fixed-size blocks, in a fixed order.
void sum(const Tensor& x, const Tensor& out);

}  // namespace seqtune::cpu
