#include "native/cpu/rope.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "native/cpu/host_view.h"
#include "native/runtime/thread_pool.h"

namespace seqtune::cpu {

namespace {

template <typename T>
void rotate(const Tensor& x, const Tensor& positions, const RopeParams& p, const Tensor& out) {
  const int64_t tokens = x.dim(0), heads = x.dim(1), dim = x.dim(2), half = dim / 2;
  HostIn<T> in(x);
  const int32_t* pos = positions.data<int32_t>();
  HostOut<T> o(out, false);
  const double sign = p.inverse ? -1.0 : 1.0;
  const int64_t grain = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(heads * dim, 1));
  parallelFor(tokens, grain, [&](int64_t begin, int64_t end) {
    std::vector<T> cosv(static_cast<size_t>(half)), sinv(static_cast<size_t>(half));
    for (int64_t t = begin; t < end; ++t) {
      // Angles in double: position × inv_freq reaches ~1e5 rad, where f32 would lose the phase.
      const double position = static_cast<double>(pos[t]) * p.positionScale;
      for (int64_t i = 0; i < half; ++i) {
        const double angle = position * p.invFreq[i];
        cosv[i] = static_cast<T>(std::cos(angle));
        sinv[i] = static_cast<T>(sign * std::sin(angle));
      }
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t base = (t * heads + h) * dim;
        for (int64_t i = 0; i < half; ++i) {
          const T x1 = in[base + i], x2 = in[base + half + i];
          o[base + i] = x1 * cosv[i] - x2 * sinv[i];
          o[base + half + i] = x2 * cosv[i] + x1 * sinv[i];
        }
      }
    }
  });
  o.commit();
}

}  // namespace

void rope(const Tensor& x, const Tensor& positions, const RopeParams& p, const Tensor& out) {
  withComputeType(x.dtype(), [&](auto zero) { rotate<decltype(zero)>(x, positions, p, out); });
}

}  // namespace seqtune::cpu
