// Reference GEMM (to be replaced by the blocked AVX2 kernel): straightforward loops, parallel over rows.
#include "native/cpu/gemm.h"

#include "native/runtime/thread_pool.h"

namespace seqtune::cpu {

namespace {
template <typename T>
void gemmNaive(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
               const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  parallelFor(M, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      for (int64_t j = 0; j < N; ++j) {
        T acc = 0;
        for (int64_t k = 0; k < K; ++k) {
          T a = transA ? A[k * lda + i] : A[i * lda + k];
          T b = transB ? B[j * ldb + k] : B[k * ldb + j];
          acc += a * b;
        }
        C[i * ldc + j] = alpha * acc + (beta == T(0) ? T(0) : beta * C[i * ldc + j]);
      }
    }
  });
}
}  // namespace

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemmNaive(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  gemmNaive(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace seqtune::cpu
