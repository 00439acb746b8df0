// The per-row math of linearCrossEntropy's row kernels (kernels/loss/linear_cross_entropy.cu), kept
// apart from the launches so the host check (test/kernels/linear_ce_rows.cpp) runs this very code
// against float64: the online (max, Σexp) merge, one lane's strided fold of a row of logits, the
// backward's coefficient and each logit's gradient.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common/host_device.h"

namespace seqtune::gpu::lce {

template <typename C>
struct State {
  C m, s;  // running max and Σ exp(x − m)
};

// The online softmax merge; an empty side (m = −inf) contributes nothing.
template <typename C>
SEQTUNE_HD State<C> merge(State<C> a, State<C> b) {
  using std::exp;
  const C m = a.m > b.m ? a.m : b.m;
  if (m == C(-INFINITY)) return {m, C(0)};
  return {m, a.s * exp(a.m - m) + b.s * exp(b.m - m)};
}

// Lane `lane` of a warp folds columns lane, lane + 32, ... of a row of n logits; the warp then
// merges its lanes with a butterfly (xor 16, 8, 4, 2, 1), so the order is fixed.
template <typename C>
SEQTUNE_HD State<C> laneFold(const C* row, int64_t n, int lane) {
  State<C> s{C(-INFINITY), C(0)};
  for (int64_t j = lane; j < n; j += 32) s = merge(s, State<C>{row[j], C(1)});
  return s;
}

// dlogits = coef·(softmax − onehot): coef = gradScale / count for mean (0 when count is 0),
// gradScale for sum.
SEQTUNE_HD double gradCoef(double gradScale, bool mean, double count) {
  return mean ? (count > 0 ? gradScale / count : 0.0) : gradScale;
}

// A row whose label is ignoreIndex or out of [0, vocab) gets no gradient.
SEQTUNE_HD bool skipRow(int64_t label, int64_t ignoreIndex, int64_t vocab) {
  return label == ignoreIndex || label < 0 || label >= vocab;
}

template <typename C>
SEQTUNE_HD C dlogit(C x, C lse, C coef, bool isLabel) {
  using std::exp;
  const C d = exp(x - lse) * coef;
  return isLabel ? d - coef : d;
}

}  // namespace seqtune::gpu::lce
