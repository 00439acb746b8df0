#include "native/cpu/rope.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "native/cpu/host_view.h"
#include "native/runtime/thread_pool.h"

namespace seqtune::cpu {

namespace {

// cos and sin of position × inv_freq, one row of D/2 per position. Angles in double: position ×
// inv_freq reaches ~1e5 rad, where f32 would lose the phase.
struct AngleTable {
  std::vector<double> invFreq;
  double positionScale = 0;
  int64_t rows = 0;
  std::vector<double> cos, sin;

  void fill(const RopeParams& p, int64_t count, const int32_t* positions) {
    const int64_t half = static_cast<int64_t>(p.invFreq.size());
    invFreq = p.invFreq;
    positionScale = p.positionScale;
    rows = count;
    cos.resize(static_cast<size_t>(count * half));
    sin.resize(cos.size());
    parallelFor(count, std::max<int64_t>(1, 1024 / std::max<int64_t>(half, 1)), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const double position = static_cast<double>(positions ? positions[r] : r) * p.positionScale;
        for (int64_t i = 0; i < half; ++i) {
          cos[r * half + i] = std::cos(position * p.invFreq[i]);
          sin[r * half + i] = std::sin(position * p.invFreq[i]);
        }
      }
    });
  }
};

// Rows for positions 0..n-1, kept between calls on the op's thread: a training step rotates q and
// k of every layer, forward and backward, at the same positions, and the trig was most of the op.
constexpr int64_t kMaxCachedAngles = int64_t(1) << 21;

template <typename T>
void rotate(const Tensor& x, const Tensor& positions, const RopeParams& p, const Tensor& out) {
  const int64_t tokens = x.dim(0), heads = x.dim(1), dim = x.dim(2), half = dim / 2;
  HostIn<T> in(x);
  const int32_t* pos = positions.data<int32_t>();
  HostOut<T> o(out, false);
  int64_t maxPos = -1;
  bool negative = false;
  for (int64_t t = 0; t < tokens; ++t) {
    maxPos = std::max<int64_t>(maxPos, pos[t]);
    negative |= pos[t] < 0;
  }
  // Positions index the cached table when they fit it; else a table of this call's tokens.
  thread_local AngleTable cached;
  AngleTable perCall;
  const bool byPosition = !negative && (maxPos + 1) * half <= kMaxCachedAngles;
  const bool sameParams = cached.positionScale == p.positionScale && cached.invFreq == p.invFreq;
  // Grown, never shrunk, while the parameters stay; rebuilt for new ones.
  if (byPosition && !(sameParams && cached.rows > maxPos)) cached.fill(p, std::max(maxPos + 1, sameParams ? cached.rows : 0), nullptr);
  if (!byPosition) perCall.fill(p, tokens, pos);
  const AngleTable& table = byPosition ? cached : perCall;
  const T sign = p.inverse ? T(-1) : T(1);
  const int64_t grain = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(heads * dim, 1));
  parallelFor(tokens, grain, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t row = (byPosition ? pos[t] : t) * half;
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t base = (t * heads + h) * dim;
        for (int64_t i = 0; i < half; ++i) {
          const T c = static_cast<T>(table.cos[row + i]), sn = sign * static_cast<T>(table.sin[row + i]);
          const T x1 = in[base + i], x2 = in[base + half + i];
          o[base + i] = x1 * c - x2 * sn;
          o[base + half + i] = x2 * c + x1 * sn;
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
