// embedding and its backward on the CPU (native/ops/embedding.cpp checks the ids and dispatches).
#pragma once
#include <cstdint>

#include "native/runtime/tensor.h"

namespace seqtune::cpu {

// out[t] = table[ids[t]], rows copied as raw bytes (exact in every dtype). ids already checked.
void embedding(const Tensor& ids, const Tensor& table, const Tensor& out);
// dtable = the scatter-add of dout's rows at ids, in token order. ids already checked.
void embeddingBackward(const Tensor& dout, const Tensor& ids, const Tensor& dtable);

}  // namespace seqtune::cpu
