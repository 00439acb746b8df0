#include "native/ops/op_util.h"

#include <cmath>

namespace seqtune {

const TensorPtr& input(const OpCall& call, size_t index, const char* name) {
  if (index >= call.inputs.size() || !call.inputs[index]) fail(code::kArgument, call.op, ": missing input '", name, "'");
  return call.inputs[index];
}

TensorPtr optionalInput(const OpCall& call, size_t index) {
  return index < call.inputs.size() ? call.inputs[index] : nullptr;
}

void expectDtype(const OpCall& call, const Tensor& t, const char* name, std::initializer_list<DType> allowed) {
  for (DType d : allowed) {
    if (t.dtype() == d) return;
  }
  std::string names;
  for (DType d : allowed) names += (names.empty() ? "" : "|") + std::string(dtypeName(d));
  fail(code::kDtype, call.op, ": ", name, " must be ", names, ", got ", t.describe());
}

void expectFloat(const OpCall& call, const Tensor& t, const char* name) {
  if (!isFloating(t.dtype())) fail(code::kDtype, call.op, ": ", name, " must be a floating-point tensor, got ", t.describe());
}

void expectRank(const OpCall& call, const Tensor& t, const char* name, int rank) {
  if (t.rank() != rank) fail(code::kShape, call.op, ": ", name, " must have rank ", rank, ", got ", t.describe());
}

void expectShape(const OpCall& call, const Tensor& t, const char* name, const Shape& shape) {
  if (t.shape() != shape) {
    fail(code::kShape, call.op, ": ", name, " must have shape ", shapeString(shape), ", got ", t.describe());
  }
}

void expectFloatScalar(const OpCall& call, const Tensor& t, const char* name) {
  expectFloat(call, t, name);
  expectShape(call, t, name, {1});
}

void expectSameDtype(const OpCall& call, const Tensor& a, const char* nameA, const Tensor& b, const char* nameB) {
  if (a.dtype() != b.dtype()) {
    fail(code::kDtype, call.op, ": ", nameA, " (", a.describe(), ") and ", nameB, " (", b.describe(),
         ") must have the same dtype");
  }
}

void expectSameShape(const OpCall& call, const Tensor& a, const char* nameA, const Tensor& b, const char* nameB) {
  if (a.shape() != b.shape()) {
    fail(code::kShape, call.op, ": ", nameA, " (", a.describe(), ") and ", nameB, " (", b.describe(),
         ") must have the same shape");
  }
}

double finiteAttr(const OpCall& call, const char* name, double low, double high, bool highOpen) {
  double v = call.attrs.number(name);
  if (!std::isfinite(v) || v < low || v > high || (highOpen && v == high)) {
    fail(code::kArgument, call.op, ": ", name, " must be in [", low, ", ", high, highOpen ? ")" : "]", ", got ", v);
  }
  return v;
}

void expectLike(const OpCall& call, const Tensor& a, const char* nameA, const Tensor& b, const char* nameB) {
  expectSameDtype(call, a, nameA, b, nameB);
  expectSameShape(call, a, nameA, b, nameB);
}

void expectCpu(const OpCall& call) {
  if (call.device->isCuda()) {
    fail(code::kNotImplemented, call.op, " is not implemented on cuda yet (", call.device->name(), ")");
  }
}

void failShape(const OpCall& call, const std::string& detail) { fail(code::kShape, call.op, ": ", detail); }

}  // namespace seqtune
