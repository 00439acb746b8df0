// The row kernels on f32 with AVX2+FMA intrinsics, used by the AVX2 builds of the attention
// workers. Plain loops do not get here: GCC turns the clamps of a polynomial exp into branches (it
// specialises the clamped path) and then cannot vectorise it, and it keeps an in-order max
// reduction scalar; the exp is a third of the work. And in scoreRow and accumulateRows it stores
// the accumulators to memory on every step of the sum; here they stay in registers. Each sum
// keeps the portable kernels' order.
#pragma once
#include "native/cpu/attention_kernels.h"
#include "native/cpu/avx2_math.h"

#ifdef SEQTUNE_ATTN_X86
#include <immintrin.h>

#define SEQTUNE_ATTN_AVX2_INLINE __attribute__((target("avx2,fma"))) inline

namespace seqtune::cpu::attn {

struct Avx2Rows {
  SEQTUNE_ATTN_AVX2_INLINE static __m256 exp8(__m256 x) { return avx2::exp8(x); }

  // scoreRow: the block's kBlockK sums in 8 registers.
  template <int kD>
  SEQTUNE_ATTN_AVX2_INLINE static void score(const float* x, const float* packed, int64_t dims, float* s) {
    const int64_t D = kD > 0 ? kD : dims;
    __m256 acc[kBlockK / 8];
    for (int i = 0; i < kBlockK / 8; ++i) acc[i] = _mm256_setzero_ps();
    for (int64_t d = 0; d < D; ++d) {
      const __m256 xd = _mm256_broadcast_ss(x + d);
      const float* row = packed + d * kBlockK;
      for (int i = 0; i < kBlockK / 8; ++i) acc[i] = _mm256_fmadd_ps(xd, _mm256_loadu_ps(row + 8 * i), acc[i]);
    }
    for (int i = 0; i < kBlockK / 8; ++i) _mm256_storeu_ps(s + 8 * i, acc[i]);
  }

  // accumulateRows for a fixed head dim that is a multiple of 8: up to 32 columns of o per pass
  // in registers. Other head dims take the portable loop.
  template <int kD>
  SEQTUNE_ATTN_AVX2_INLINE static void accumulate(const float* w, int64_t ldw, const float* x, int64_t ldx, int64_t n,
                                                  int64_t dims, float* o) {
    if constexpr (kD == 0 || kD % 8 != 0) {
      accumulateRows<float, kD>(w, ldw, x, ldx, n, dims, o);
    } else {
      for (int c0 = 0; c0 < kD; c0 += 32) {
        const int vecs = std::min(32, kD - c0) / 8;
        __m256 acc[4];
        for (int i = 0; i < vecs; ++i) acc[i] = _mm256_loadu_ps(o + c0 + 8 * i);
        for (int64_t j = 0; j < n; ++j) {
          const __m256 wj = _mm256_broadcast_ss(w + j * ldw);
          const float* row = x + j * ldx + c0;
          for (int i = 0; i < vecs; ++i) acc[i] = _mm256_fmadd_ps(wj, _mm256_loadu_ps(row + 8 * i), acc[i]);
        }
        for (int i = 0; i < vecs; ++i) _mm256_storeu_ps(o + c0 + 8 * i, acc[i]);
      }
    }
  }

  // PortableRows::accumulateOuter for a fixed head dim that is a multiple of 8: kKeys keys at a
  // time share each loaded row of x, so 12 sums are in flight instead of one key's few; each
  // key's sum keeps its order over r. Other head dims, and the last n % kKeys keys, go one key at
  // a time.
  template <int kD>
  SEQTUNE_ATTN_AVX2_INLINE static void accumulateOuter(const float* w, const float* x, int64_t ldx, int64_t rows,
                                                       int64_t n, int64_t dims, float* acc) {
    int64_t j = 0;
    if constexpr (kD > 0 && kD % 8 == 0) {
      constexpr int kVecs = kD < 32 ? kD / 8 : 4;  // columns per pass: 8 · kVecs (kD >= 32 is a multiple of 32)
      constexpr int kKeys = 12 / kVecs;
      for (; j + kKeys <= n; j += kKeys) {
        for (int c0 = 0; c0 < kD; c0 += 8 * kVecs) {
          __m256 a[kKeys][kVecs];
          for (int k = 0; k < kKeys; ++k) {
            for (int i = 0; i < kVecs; ++i) a[k][i] = _mm256_loadu_ps(acc + (j + k) * kD + c0 + 8 * i);
          }
          for (int64_t r = 0; r < rows; ++r) {
            __m256 xv[kVecs];
            for (int i = 0; i < kVecs; ++i) xv[i] = _mm256_loadu_ps(x + r * ldx + c0 + 8 * i);
            for (int k = 0; k < kKeys; ++k) {
              const __m256 wk = _mm256_broadcast_ss(w + r * kBlockK + j + k);
              for (int i = 0; i < kVecs; ++i) a[k][i] = _mm256_fmadd_ps(wk, xv[i], a[k][i]);
            }
          }
          for (int k = 0; k < kKeys; ++k) {
            for (int i = 0; i < kVecs; ++i) _mm256_storeu_ps(acc + (j + k) * kD + c0 + 8 * i, a[k][i]);
          }
        }
      }
    }
    const int64_t D = kD > 0 ? kD : dims;
    for (; j < n; ++j) accumulate<kD>(w + j, kBlockK, x, ldx, rows, D, acc + j * D);
  }

  SEQTUNE_ATTN_AVX2_INLINE static void mask(float* s, int64_t count) {
    const __m256i n = _mm256_set1_epi32(static_cast<int>(count));  // count <= kBlockK
    const __m256 minusInf = _mm256_set1_ps(kMinusInf<float>);
    for (int j = 0; j < kBlockK; j += 8) {
      const __m256i index = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(j));
      const __m256 keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(n, index));
      _mm256_storeu_ps(s + j, _mm256_blendv_ps(minusInf, _mm256_loadu_ps(s + j), keep));
    }
  }

  SEQTUNE_ATTN_AVX2_INLINE static float max(const float* s) {
    __m256 m = _mm256_loadu_ps(s);
    for (int j = 8; j < kBlockK; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(s + j));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
  }

  // s[j] = e^(s[j] - shift); returns the row's sum (8 lanes, then a fixed combining order).
  SEQTUNE_ATTN_AVX2_INLINE static float exp(float* s, float shift) {
    const __m256 by = _mm256_set1_ps(shift);
    __m256 sum = _mm256_setzero_ps();
    for (int j = 0; j < kBlockK; j += 8) {
      const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), by));
      _mm256_storeu_ps(s + j, e);
      sum = _mm256_add_ps(sum, e);
    }
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
  }
};

}  // namespace seqtune::cpu::attn

#endif  // SEQTUNE_ATTN_X86
