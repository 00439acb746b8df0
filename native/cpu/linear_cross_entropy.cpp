// Each chunk's logits [T, chunk] come from one GEMM and are folded into a running (max, sum of
// exp) per row, so memory is O(T·chunk) instead of O(T·V); the backward recomputes each chunk's
// logits and turns them into dlogits in the same buffer. Every row's reduction runs chunk by chunk
// in vocabulary order, and GEMM splits only its output, so results do not depend on the thread count.
#include "native/cpu/linear_cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "native/cpu/gemm.h"
#include "native/cpu/host_view.h"
#include "native/runtime/thread_pool.h"

namespace seqtune::cpu {

namespace {

using Dims = LinearCeDims;

// Rows [v0, v0 + n) of the weight as T: a pointer into the tensor when it already holds T,
// else converted into a chunk-sized buffer (never the whole weight).
template <typename T>
class WeightChunks {
 public:
  WeightChunks(const Tensor& w, int64_t features) : w_(w), features_(features) {}
  const T* rows(int64_t v0, int64_t n) {
    if (loss::isComputeDtype<T>(w_.dtype())) return w_.data<T>() + v0 * features_;
    buffer_.resize(static_cast<size_t>(n * features_));
    const char* src = static_cast<const char*>(w_.raw()) + v0 * features_ * dtypeSize(w_.dtype());
    convertFrom<T>(w_.dtype(), src, buffer_.data(), n * features_);
    return buffer_.data();
  }

 private:
  const Tensor& w_;
  int64_t features_;
  std::vector<T> buffer_;
};

// logits[:, 0:n] = h · W[v0:v0+n]ᵀ
template <typename T>
void chunkLogits(const Dims& d, const T* h, const T* w, int64_t n, T* logits) {
  gemm(false, true, d.rows, n, d.features, T(1), h, d.features, w, d.features, T(0), logits, n);
}

template <typename T>
void forward(const Dims& d, int64_t chunk, const loss::Options& o, const Tensor& hT, const Tensor& wT,
             const int32_t* label, const Tensor& lossOut, const Tensor& lseOut, const Tensor& countOut) {
  HostIn<T> h(hT);
  WeightChunks<T> w(wT, d.features);
  const size_t rows = static_cast<size_t>(d.rows);
  std::vector<T> logits(rows * static_cast<size_t>(std::min(chunk, d.vocab)));
  std::vector<T> runMax(rows, -std::numeric_limits<T>::infinity()), runSum(rows, T(0)), target(rows, T(0));
  for (int64_t v0 = 0; v0 < d.vocab && d.rows > 0; v0 += chunk) {
    const int64_t n = std::min(chunk, d.vocab - v0);
    chunkLogits(d, h.data(), w.rows(v0, n), n, logits.data());
    parallelFor(d.rows, loss::rowGrain(n), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const T* row = logits.data() + r * n;
        T m = runMax[r];
        for (int64_t j = 0; j < n; ++j) m = std::max(m, row[j]);
        // Online log-sum-exp: rescale the sum so far to the new maximum, then add this chunk.
        T s = runSum[r] == T(0) ? T(0) : runSum[r] * std::exp(runMax[r] - m);
        for (int64_t j = 0; j < n; ++j) s += std::exp(row[j] - m);
        runMax[r] = m;
        runSum[r] = s;
        int64_t l = label[r];
        if (l >= v0 && l < v0 + n) target[r] = row[l - v0];
      }
    });
  }
  T* lse = lseOut.data<T>();
  std::vector<double> rowLoss(rows, 0.0);
  for (size_t r = 0; r < rows; ++r) {
    lse[r] = runMax[r] + std::log(runSum[r]);
    if (!loss::ignored(label[r], o)) rowLoss[r] = static_cast<double>(lse[r] - target[r]);
  }
  loss::writeLoss<T>(rowLoss, label, o, lossOut, countOut);
}

template <typename T>
void backward(const Dims& d, int64_t chunk, const loss::Options& o, double scale, const Tensor& hT,
              const Tensor& wT, const int32_t* label, const Tensor& lseT, const Tensor& countT, const Tensor& dhT,
              const Tensor* dwT) {
  HostIn<T> h(hT), lse(lseT), count(countT);
  WeightChunks<T> w(wT, d.features);
  HostOut<T> dh(dhT, false);
  const T coef = static_cast<T>(loss::gradCoef(o, scale, static_cast<double>(count[0])));
  std::vector<T> dlogits(static_cast<size_t>(d.rows * std::min(chunk, d.vocab)));
  // dW rows are written straight into the output when it holds T, else through a chunk buffer.
  const bool dwDirect = dwT && loss::isComputeDtype<T>(dwT->dtype());
  std::vector<T> dwChunk(dwT && !dwDirect ? static_cast<size_t>(std::min(chunk, d.vocab) * d.features) : 0);
  for (int64_t v0 = 0; v0 < d.vocab; v0 += chunk) {
    const int64_t n = std::min(chunk, d.vocab - v0);
    const T* wc = w.rows(v0, n);
    chunkLogits(d, h.data(), wc, n, dlogits.data());
    parallelFor(d.rows, loss::rowGrain(n), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        T* row = dlogits.data() + r * n;
        if (loss::ignored(label[r], o)) {
          std::fill(row, row + n, T(0));
        } else {
          loss::rowGradient(row, n, label[r] - v0, lse[r], coef);
        }
      }
    });
    // dh (+)= dlogits · W_chunk, accumulated over chunks in vocabulary order.
    gemm(false, false, d.rows, d.features, n, T(1), dlogits.data(), n, wc, d.features, v0 == 0 ? T(0) : T(1),
              dh.data(), d.features);
    if (!dwT) continue;
    // dW_chunk = dlogitsᵀ · h
    T* dst = dwDirect ? dwT->data<T>() + v0 * d.features : dwChunk.data();
    gemm(true, false, n, d.features, d.rows, T(1), dlogits.data(), n, h.data(), d.features, T(0), dst,
              d.features);
    if (!dwDirect) {
      char* out = static_cast<char*>(dwT->raw()) + v0 * d.features * dtypeSize(dwT->dtype());
      convertTo<T>(dwT->dtype(), dwChunk.data(), out, n * d.features);
    }
  }
  dh.commit();
}

}  // namespace

void linearCrossEntropy(const char* op, const LinearCeDims& d, int64_t chunk, const loss::Options& o, const Tensor& h,
                        const Tensor& w, const Tensor& labels, const Tensor& lossOut, const Tensor& lse,
                        const Tensor& count) {
  const int32_t* label = labels.data<int32_t>();
  loss::checkLabels(op, label, d.rows, d.vocab, o.ignoreIndex);
  withComputeType(h.dtype(), [&](auto zero) {
    forward<decltype(zero)>(d, chunk, o, h, w, label, lossOut, lse, count);
  });
}

void linearCrossEntropyBackward(const char* op, const LinearCeDims& d, int64_t chunk, const loss::Options& o,
                                double scale, const Tensor& h, const Tensor& w, const Tensor& labels,
                                const Tensor& lse, const Tensor& count, const Tensor& dh, const Tensor* dw) {
  const int32_t* label = labels.data<int32_t>();
  loss::checkLabels(op, label, d.rows, d.vocab, o.ignoreIndex);
  if (d.rows == 0) {
    // No tokens: nothing to multiply (and GEMM over an empty K is not asked of it).
    if (dw) loss::zeroFill(*dw);
    return;
  }
  withComputeType(h.dtype(), [&](auto zero) {
    backward<decltype(zero)>(d, chunk, o, scale, h, w, label, lse, count, dh, dw);
  });
}

}  // namespace seqtune::cpu
