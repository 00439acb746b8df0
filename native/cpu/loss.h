// What the CPU crossEntropy and linearCrossEntropy (and their backwards) share: label checks and
// the per-row softmax arithmetic, so the fused op is the plain one computed in chunks.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/common/errors.h"
#include "native/runtime/tensor.h"

namespace seqtune::loss {

struct Options {
  int64_t ignoreIndex;
  bool mean;
};

// Device thread, before any row is touched: a label outside the vocabulary would index past the row.
inline void checkLabels(const char* op, const int32_t* labels, int64_t rows, int64_t vocab, int64_t ignoreIndex) {
  for (int64_t r = 0; r < rows; ++r) {
    int64_t l = labels[r];
    if (l != ignoreIndex && (l < 0 || l >= vocab)) {
      fail(code::kIndex, op, ": label ", l, " at row ", r, " is outside [0, ", vocab, ") and is not ignoreIndex (",
           ignoreIndex, ")");
    }
  }
}

inline bool ignored(int64_t label, const Options& o) { return label == o.ignoreIndex; }

// Sums the per-row losses in row order (fixed whatever the thread count) and writes loss and count.
template <typename T>
void writeLoss(const std::vector<double>& rowLoss, const int32_t* labels, const Options& o, const Tensor& loss,
               const Tensor& count) {
  double total = 0, n = 0;
  for (size_t r = 0; r < rowLoss.size(); ++r) {
    if (ignored(labels[r], o)) continue;
    total += rowLoss[r];
    n += 1;
  }
  // All rows ignored: the mean is defined as 0 so a batch of prompts only is not NaN.
  double value = o.mean ? (n > 0 ? total / n : 0.0) : total;
  loss.data<T>()[0] = static_cast<T>(value);
  count.data<T>()[0] = static_cast<T>(n);
}

// d loss / d logit for each non-ignored row is coef · (softmax − onehot).
inline double gradCoef(const Options& o, double scale, double count) {
  if (!o.mean) return scale;
  return count > 0 ? scale / count : 0.0;
}

// Turns one row of logits into its gradient in place, given the row's lse.
template <typename T>
void rowGradient(T* row, int64_t n, int64_t labelInRow, T lse, T coef) {
  for (int64_t j = 0; j < n; ++j) row[j] = std::exp(row[j] - lse) * coef;
  if (labelInRow >= 0 && labelInRow < n) row[labelInRow] -= coef;
}

template <typename T>
bool isComputeDtype(DType d) {
  return d == (std::is_same_v<T, double> ? DType::F64 : DType::F32);
}

inline void zeroFill(const Tensor& t) { std::memset(t.raw(), 0, t.nbytes()); }

// Rows per parallel range: about 32K elements of work each.
inline int64_t rowGrain(int64_t rowLength) { return std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(1, rowLength)); }

}  // namespace seqtune::loss
