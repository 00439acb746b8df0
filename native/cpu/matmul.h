// matmul and matmulBackward on the CPU (native/ops/matmul.cpp checks and dispatches): batched
// products over the blocked GEMM (gemm.h), computed in f32 (f64 for f64 tensors) and stored in the
// input dtype.
#pragma once
#include <cstdint>

#include "native/runtime/tensor.h"

namespace seqtune::cpu {

// One call's shapes, checked by the builder: op(a) is [M, K] and op(b) [K, N] in each of `batch`
// products. The CUDA path maps its products from the same fields.
struct MatmulGeometry {
  bool transA;
  bool transB;
  int64_t batch;  // product of a's leading dims
  int64_t M, N, K;
  bool sharedB;  // b is 2-D and multiplies every batch
  Shape out;     // a's leading dims + [M, N]

  int64_t lda() const { return transA ? M : K; }
  int64_t ldb() const { return transB ? K : N; }
  int64_t aStride() const { return M * K; }
  int64_t bStride() const { return sharedB ? 0 : K * N; }
  int64_t cStride() const { return M * N; }
};

// c = alpha · op(a) · op(b) + bias (bias may be null).
void matmul(const MatmulGeometry& g, const Tensor& a, const Tensor& b, const Tensor* bias, double alpha, const Tensor& c);

// The gradients whose tensor is not null: da, db (a shared b sums over the batches) and dbias.
void matmulBackward(const MatmulGeometry& g, const Tensor& dc, const Tensor& a, const Tensor& b, double alpha,
                    const Tensor* da, const Tensor* db, const Tensor* dbias);

}  // namespace seqtune::cpu
