#include "native/cpu/cross_entropy.h"

#include "native/cpu/host_view.h"
#include "native/runtime/thread_pool.h"

namespace seqtune::cpu {

void crossEntropy(const char* op, const Tensor& logits, const Tensor& labels, const loss::Options& o, const Tensor& lossOut,
                  const Tensor& lse, const Tensor& count) {
  const int64_t rows = logits.dim(0), vocab = logits.dim(1);
  const int32_t* label = labels.data<int32_t>();
  loss::checkLabels(op, label, rows, vocab, o.ignoreIndex);
  withComputeType(logits.dtype(), [&](auto zero) {
    using T = decltype(zero);
    HostIn<T> x(logits);
    T* lseOut = lse.data<T>();
    std::vector<double> rowLoss(static_cast<size_t>(rows), 0.0);
    parallelFor(rows, loss::rowGrain(vocab), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const T* row = x.data() + r * vocab;
        T m = row[0];
        for (int64_t j = 1; j < vocab; ++j) m = std::max(m, row[j]);
        T s = 0;
        for (int64_t j = 0; j < vocab; ++j) s += std::exp(row[j] - m);
        T l = m + std::log(s);
        lseOut[r] = l;
        if (!loss::ignored(label[r], o)) rowLoss[r] = static_cast<double>(l - row[label[r]]);
      }
    });
    loss::writeLoss<T>(rowLoss, label, o, lossOut, count);
  });
}

void crossEntropyBackward(const char* op, const Tensor& logits, const Tensor& labels, const Tensor& lse,
                          const Tensor& count, const loss::Options& o, double scale, const Tensor& dlogits) {
  const int64_t rows = logits.dim(0), vocab = logits.dim(1);
  const int32_t* label = labels.data<int32_t>();
  loss::checkLabels(op, label, rows, vocab, o.ignoreIndex);
  withComputeType(logits.dtype(), [&](auto zero) {
    using T = decltype(zero);
    HostIn<T> x(logits), l(lse), n(count);
    HostOut<T> d(dlogits, false);
    const T coef = static_cast<T>(loss::gradCoef(o, scale, static_cast<double>(n[0])));
    parallelFor(rows, loss::rowGrain(vocab), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        T* out = d.data() + r * vocab;
        if (loss::ignored(label[r], o)) {
          std::fill(out, out + vocab, T(0));
          continue;
        }
        std::copy(x.data() + r * vocab, x.data() + (r + 1) * vocab, out);
        loss::rowGradient(out, vocab, label[r], l[r], coef);
      }
    });
    d.commit();
  });
}

}  // namespace seqtune::cpu
