#include "native/cpu/matmul.h"

#include <algorithm>
#include <optional>

#include "native/cpu/gemm.h"
#include "native/cpu/host_view.h"
#include "native/runtime/thread_pool.h"

namespace seqtune::cpu {

namespace {

using Geometry = MatmulGeometry;

// c = alpha · op(a) · op(b) + bias over every batch.
template <typename T>
void forward(const Geometry& g, const T* a, const T* b, const T* bias, T alpha, T* c) {
  const int64_t rows = g.batch * g.M;
  if (bias) {
    for (int64_t r = 0; r < rows; ++r) std::copy(bias, bias + g.N, c + r * g.N);
  }
  const T beta = bias ? T(1) : T(0);  // the GEMM adds the product onto the bias rows
  if (g.sharedB && !g.transA) {
    // a's rows are contiguous across batches: one taller product shares the packed b.
    gemm(false, g.transB, rows, g.N, g.K, alpha, a, g.lda(), b, g.ldb(), beta, c, g.N);
    return;
  }
  for (int64_t i = 0; i < g.batch; ++i) {
    gemm(g.transA, g.transB, g.M, g.N, g.K, alpha, a + i * g.aStride(), g.lda(), b + i * g.bStride(), g.ldb(),
              beta, c + i * g.cStride(), g.N);
  }
}

// dop(a) = alpha · dc · op(b)ᵀ, stored in a's layout.
template <typename T>
void gradA(const Geometry& g, const T* dc, const T* b, T alpha, T* da) {
  if (g.transA) {
    // a is [K, M]: da = alpha · op(b) · dcᵀ
    for (int64_t i = 0; i < g.batch; ++i) {
      gemm(g.transB, true, g.K, g.M, g.N, alpha, b + i * g.bStride(), g.ldb(), dc + i * g.cStride(), g.N, T(0),
                da + i * g.aStride(), g.M);
    }
  } else if (g.sharedB) {
    gemm(false, !g.transB, g.batch * g.M, g.K, g.N, alpha, dc, g.N, b, g.ldb(), T(0), da, g.K);
  } else {
    for (int64_t i = 0; i < g.batch; ++i) {
      gemm(false, !g.transB, g.M, g.K, g.N, alpha, dc + i * g.cStride(), g.N, b + i * g.bStride(), g.ldb(), T(0),
                da + i * g.aStride(), g.K);
    }
  }
}

// dop(b) = alpha · op(a)ᵀ · dc, stored in b's layout; a shared b sums over the batches.
template <typename T>
void gradB(const Geometry& g, const T* dc, const T* a, T alpha, T* db) {
  // One product of `m` rows of op(a) and dc (their sums over the rows are the reduction).
  auto product = [&](int64_t m, bool transA, const T* ai, int64_t lda, const T* dci, T beta, T* dbi) {
    if (g.transB) {  // b is [N, K]: db = alpha · dcᵀ · op(a)
      gemm(true, transA, g.N, g.K, m, alpha, dci, g.N, ai, lda, beta, dbi, g.K);
    } else {
      gemm(!transA, false, g.K, g.N, m, alpha, ai, lda, dci, g.N, beta, dbi, g.N);
    }
  };
  if (g.sharedB && !g.transA) {
    product(g.batch * g.M, false, a, g.K, dc, T(0), db);  // batches folded into the reduction
    return;
  }
  for (int64_t i = 0; i < g.batch; ++i) {
    // A shared b accumulates batch after batch in order (beta = 1 after the first).
    const T beta = g.sharedB && i > 0 ? T(1) : T(0);
    product(g.M, g.transA, a + i * g.aStride(), g.lda(), dc + i * g.cStride(), beta, db + i * g.bStride());
  }
}

// dbias[j] = sum of dc's column j over all rows, each column summed in row order.
template <typename T>
void gradBias(const Geometry& g, const T* dc, T* dbias) {
  const int64_t rows = g.batch * g.M;
  parallelFor(g.N, std::max<int64_t>(16, (1 << 16) / std::max<int64_t>(rows, 1)), [&](int64_t begin, int64_t end) {
    std::fill(dbias + begin, dbias + end, T(0));
    for (int64_t r = 0; r < rows; ++r) {
      const T* row = dc + r * g.N;
      for (int64_t j = begin; j < end; ++j) dbias[j] += row[j];
    }
  });
}

}  // namespace

void matmul(const MatmulGeometry& g, const Tensor& a, const Tensor& b, const Tensor* bias, double alpha, const Tensor& c) {
  withComputeType(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    HostIn<T> ha(a), hb(b);
    std::optional<HostIn<T>> hbias;
    if (bias) hbias.emplace(*bias);
    HostOut<T> hc(c, false);
    forward<T>(g, ha.data(), hb.data(), hbias ? hbias->data() : nullptr, T(alpha), hc.data());
    hc.commit();
  });
}

void matmulBackward(const MatmulGeometry& g, const Tensor& dc, const Tensor& a, const Tensor& b, double alpha,
                    const Tensor* da, const Tensor* db, const Tensor* dbias) {
  withComputeType(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    HostIn<T> hdc(dc);
    if (da) {
      HostIn<T> hb(b);
      HostOut<T> out(*da, false);
      gradA<T>(g, hdc.data(), hb.data(), T(alpha), out.data());
      out.commit();
    }
    if (db) {
      HostIn<T> ha(a);
      HostOut<T> out(*db, false);
      gradB<T>(g, hdc.data(), ha.data(), T(alpha), out.data());
      out.commit();
    }
    if (dbias) {
      HostOut<T> out(*dbias, false);
      gradBias<T>(g, hdc.data(), out.data());
      out.commit();
    }
  });
}

}  // namespace seqtune::cpu
