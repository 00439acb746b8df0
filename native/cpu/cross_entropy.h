// crossEntropy and its backward on the CPU (native/ops/cross_entropy.cpp checks and dispatches).
#pragma once
#include "native/cpu/loss.h"
#include "native/runtime/tensor.h"

namespace seqtune::cpu {

// Checks the labels (naming `op`), then loss, lse [rows] and count over logits [rows, vocab].
void crossEntropy(const char* op, const Tensor& logits, const Tensor& labels, const loss::Options& o, const Tensor& lossOut,
                  const Tensor& lse, const Tensor& count);
// dlogits = scale·coef·(softmax − onehot) per non-ignored row, 0 for ignored rows.
void crossEntropyBackward(const char* op, const Tensor& logits, const Tensor& labels, const Tensor& lse,
                          const Tensor& count, const loss::Options& o, double scale, const Tensor& dlogits);

}  // namespace seqtune::cpu
