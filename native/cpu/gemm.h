// Row-major GEMM for the CPU backend: C = alpha · op(A) · op(B) + beta · C, op(A) [M, K],
// op(B) [K, N]. transA: A is stored [K, M]; transB: B is stored [N, K]. Leading dimensions are
// row strides in elements. Threads split the output only (never K), so every element's sum runs
// in one fixed order: results do not depend on the thread count. Uses the thread pool itself:
// do not call from inside parallelFor.
#pragma once
#include <cstdint>

namespace seqtune::cpu {

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

}  // namespace seqtune::cpu
