#include "native/cpu/swiglu.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "native/cpu/avx2_math.h"
#include "native/cpu/host_view.h"
#include "native/runtime/thread_pool.h"

namespace seqtune::cpu {

namespace {

constexpr int64_t kGrain = 1 << 14;

// 1 / (1 + e^-g): exp overflows to inf for very negative g, giving 0, never NaN.
template <typename T>
T sigmoid(T g) {
  return T(1) / (T(1) + std::exp(-g));
}

#ifdef SEQTUNE_CPU_X86
// f32 on eight lanes: libm's scalar expf is most of the op's time at the demo's sizes. The last
// n % 8 elements go through the same lanes zero-padded, so an element's value never depends on
// where a thread's range ends.
#define SEQTUNE_SWIGLU_AVX2 __attribute__((target("avx2,fma")))

SEQTUNE_SWIGLU_AVX2 inline __m256 sigmoid8(__m256 g) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, avx2::exp8(_mm256_sub_ps(_mm256_setzero_ps(), g))));
}

SEQTUNE_SWIGLU_AVX2 void forwardAvx2(const float* g, const float* u, float* o, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 gv = _mm256_loadu_ps(g + i);
    _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_mul_ps(gv, sigmoid8(gv)), _mm256_loadu_ps(u + i)));
  }
  if (i == n) return;
  float gb[8] = {}, ub[8] = {}, ob[8];
  std::copy(g + i, g + n, gb);
  std::copy(u + i, u + n, ub);
  forwardAvx2(gb, ub, ob, 8);
  std::copy(ob, ob + (n - i), o + i);
}

SEQTUNE_SWIGLU_AVX2 void backwardAvx2(const float* d, const float* g, const float* u, float* dg, float* du, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 dv = _mm256_loadu_ps(d + i), gv = _mm256_loadu_ps(g + i), uv = _mm256_loadu_ps(u + i);
    const __m256 sv = sigmoid8(gv);
    const __m256 slope = _mm256_add_ps(one, _mm256_mul_ps(gv, _mm256_sub_ps(one, sv)));
    _mm256_storeu_ps(dg + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(dv, uv), sv), slope));
    _mm256_storeu_ps(du + i, _mm256_mul_ps(_mm256_mul_ps(dv, gv), sv));
  }
  if (i == n) return;
  float db[8] = {}, gb[8] = {}, ub[8] = {}, dgb[8], dub[8];
  std::copy(d + i, d + n, db);
  std::copy(g + i, g + n, gb);
  std::copy(u + i, u + n, ub);
  backwardAvx2(db, gb, ub, dgb, dub, 8);
  std::copy(dgb, dgb + (n - i), dg + i);
  std::copy(dub, dub + (n - i), du + i);
}
#endif

}  // namespace

void swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) {
  withComputeType(gate.dtype(), [&](auto zero) {
    using T = decltype(zero);
    HostIn<T> g(gate), u(up);
    HostOut<T> o(out, false);
    parallelFor(out.numel(), kGrain, [&](int64_t begin, int64_t end) {
#ifdef SEQTUNE_CPU_X86
      if constexpr (std::is_same_v<T, float>) {
        if (avx2Enabled()) return forwardAvx2(g.data() + begin, u.data() + begin, o.data() + begin, end - begin);
      }
#endif
      for (int64_t i = begin; i < end; ++i) o[i] = g[i] * sigmoid(g[i]) * u[i];
    });
    o.commit();
  });
}

void swigluBackward(const Tensor& dout, const Tensor& gate, const Tensor& up, const Tensor& dgate, const Tensor& dup) {
  withComputeType(gate.dtype(), [&](auto zero) {
    using T = decltype(zero);
    HostIn<T> d(dout), g(gate), u(up);
    HostOut<T> dg(dgate, false), du(dup, false);
    parallelFor(dgate.numel(), kGrain, [&](int64_t begin, int64_t end) {
#ifdef SEQTUNE_CPU_X86
      if constexpr (std::is_same_v<T, float>) {
        if (avx2Enabled()) {
          return backwardAvx2(d.data() + begin, g.data() + begin, u.data() + begin, dg.data() + begin, du.data() + begin,
                              end - begin);
        }
      }
#endif
      for (int64_t i = begin; i < end; ++i) {
        const T s = sigmoid(g[i]);
        dg[i] = d[i] * u[i] * s * (T(1) + g[i] * (T(1) - s));
        du[i] = d[i] * g[i] * s;
      }
    });
    dg.commit();
    du.commit();
  });
}

}  // namespace seqtune::cpu
