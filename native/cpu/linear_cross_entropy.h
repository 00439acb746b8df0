// linearCrossEntropy and its backward on the CPU (native/ops/linear_cross_entropy.cpp checks and
// dispatches): the LM head's GEMM and the loss fused over vocabulary chunks of `chunk` rows of the
// weight, never holding the [rows, vocab] logits.
#pragma once
#include <cstdint>

#include "native/cpu/loss.h"
#include "native/runtime/tensor.h"

namespace seqtune::cpu {

struct LinearCeDims {
  int64_t rows, features, vocab;
};

// Checks the labels (naming `op`), then loss, lse [rows] and count of h [rows, C] · weight [V, C]ᵀ.
void linearCrossEntropy(const char* op, const LinearCeDims& d, int64_t chunk, const loss::Options& o, const Tensor& h,
                        const Tensor& w, const Tensor& labels, const Tensor& lossOut, const Tensor& lse,
                        const Tensor& count);
// dh and, when dw is not null, dweight, from the forward's lse and count.
void linearCrossEntropyBackward(const char* op, const LinearCeDims& d, int64_t chunk, const loss::Options& o,
                                double scale, const Tensor& h, const Tensor& w, const Tensor& labels,
                                const Tensor& lse, const Tensor& count, const Tensor& dh, const Tensor* dw);

}  // namespace seqtune::cpu
