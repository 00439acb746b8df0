// The f32/f64 GEMM (no tensor cores): C = alpha·op(A)·op(B) + bias + beta·Cin, with the two
// dropout hooks LoRA's f32 path needs. Used by gemm() for f32/f64 and by lora.cu.
// It favours simplicity over speed: the training hot path is bf16 on the tensor cores, and f32/f64
// on the GPU serve full-precision runs and the gradient checks.
#pragma once
#include <cstdint>

#include "kernels/gemm/gemm.h"

namespace seqtune::gpu {

template <typename T>
struct SimtGemm {
  bool transA = false, transB = false;
  int64_t M = 0, N = 0, K = 0, batch = 1;
  const T* a = nullptr;
  int64_t lda = 0, strideA = 0;
  const T* b = nullptr;
  int64_t ldb = 0, strideB = 0;
  T* c = nullptr;
  int64_t ldc = 0, strideC = 0;
  T alpha = 1;
  const T* bias = nullptr;  // [N]
  T beta = 0;
  const T* cin = nullptr;  // may alias c
  int64_t ldcin = 0, strideCin = 0;
  // Inverted dropout's mask (philox.h's dropoutKeep over row·ld + col): on the stored A (1) or B (2)
  // operand as it is read, and/or on the product before bias and Cin (maskOut). The 1/(1 - p)
  // goes into alpha.
  int dropOperand = 0;
  int64_t dropLd = 0;
  bool maskOut = false;
  int64_t maskLd = 0;
  uint64_t seed = 0, offset = 0;
  float p = 0;
};

template <typename T>
void simtGemm(const SimtGemm<T>& g, cudaStream_t stream);

}  // namespace seqtune::gpu
