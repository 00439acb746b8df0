// A sum in a fixed order that the compiler can still vectorise: term i goes to partial sum
// i % kSumLanes, and the partial sums are added pairwise at the end. A single running sum is one
// serial chain of additions (GCC may not reassociate it); this order depends on neither the SIMD
// build nor the thread count.
#pragma once
#include <cstdint>

namespace seqtune::cpu {

constexpr int kSumLanes = 8;

// Σ_{i<n} term(i), accumulated in Acc.
template <typename Acc, typename Term>
inline Acc laneSum(int64_t n, Term&& term) {
  Acc lane[kSumLanes] = {};
  int64_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes) {
    for (int l = 0; l < kSumLanes; ++l) lane[l] += term(i + l);
  }
  for (int l = 0; i < n; ++i, ++l) lane[l] += term(i);
  for (int width = kSumLanes / 2; width > 0; width /= 2) {
    for (int l = 0; l < width; ++l) lane[l] += lane[l + width];
  }
  return lane[0];
}

}  // namespace seqtune::cpu
