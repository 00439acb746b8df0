// Argument checks shared by the op builders (the CPU backend's typed views of tensors are in
// native/cpu/host_view.h).
#pragma once
#include <initializer_list>

#include "kernels/common/errors.h"
#include "native/cpu/host_view.h"
#include "native/runtime/op_registry.h"

namespace seqtune {

// The i-th input, which must be present.
const TensorPtr& input(const OpCall& call, size_t index, const char* name);
// The i-th input or null when omitted.
TensorPtr optionalInput(const OpCall& call, size_t index);

void expectDtype(const OpCall& call, const Tensor& t, const char* name, std::initializer_list<DType> allowed);
void expectFloat(const OpCall& call, const Tensor& t, const char* name);
void expectRank(const OpCall& call, const Tensor& t, const char* name, int rank);
void expectShape(const OpCall& call, const Tensor& t, const char* name, const Shape& shape);
// A floating-point [1] tensor (a norm, a guard value).
void expectFloatScalar(const OpCall& call, const Tensor& t, const char* name);
void expectSameDtype(const OpCall& call, const Tensor& a, const char* nameA, const Tensor& b, const char* nameB);
void expectSameShape(const OpCall& call, const Tensor& a, const char* nameA, const Tensor& b, const char* nameB);
// b has a's dtype and shape (expectSameDtype, then expectSameShape).
void expectLike(const OpCall& call, const Tensor& a, const char* nameA, const Tensor& b, const char* nameB);
// A number attribute in [low, high] (high excluded when highOpen), finite.
double finiteAttr(const OpCall& call, const char* name, double low, double high, bool highOpen);
// Fails with ERR_NOT_IMPLEMENTED naming the op when the call targets a CUDA device.
void expectCpu(const OpCall& call);
[[noreturn]] void failShape(const OpCall& call, const std::string& detail);

}  // namespace seqtune
