// What the crossEntropy and linearCrossEntropy builders share: attribute parsing and input checks
// (the per-row softmax arithmetic both CPU paths use is native/cpu/loss.h).
#pragma once
#include <cmath>
#include <string>

#include "native/cpu/loss.h"
#include "native/ops/op_util.h"

namespace seqtune::loss {

inline Options options(const OpCall& call) {
  std::string reduction = call.attrs.text("reduction");
  if (reduction != "mean" && reduction != "sum") {
    fail(code::kArgument, call.op, ": reduction must be 'mean' or 'sum', got '", reduction, "'");
  }
  return {call.attrs.integer("ignoreIndex"), reduction == "mean"};
}

inline double gradScale(const OpCall& call) {
  double s = call.attrs.number("gradScale");
  if (!std::isfinite(s)) fail(code::kArgument, call.op, ": gradScale must be finite, got ", s);
  return s;
}

inline int64_t chunkSize(const OpCall& call) {
  int64_t c = call.attrs.integer("chunkSize");
  if (c < 1) fail(code::kArgument, call.op, ": chunkSize must be >= 1, got ", c);
  return c;
}

inline void expectLabels(const OpCall& call, const Tensor& labels, int64_t rows) {
  expectDtype(call, labels, "labels", {DType::I32});
  expectShape(call, labels, "labels", {rows});
}

// lse [rows] and count [1] as returned by the forward (f32, or f64 on the gradient-check path).
inline void expectStats(const OpCall& call, const Tensor& lse, const Tensor& count, int64_t rows) {
  expectFloat(call, lse, "lse");
  expectShape(call, lse, "lse", {rows});
  expectFloat(call, count, "count");
  expectShape(call, count, "count", {1});
}

// Loss statistics are f32, except for f64 inputs: a gradient check differentiates the loss itself.
inline DType statsDtype(DType input) { return input == DType::F64 ? DType::F64 : DType::F32; }


}  // namespace seqtune::loss
