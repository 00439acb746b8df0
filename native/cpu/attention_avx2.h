// The softmax steps on a block of f32 scores with AVX2+FMA intrinsics, used by the AVX2 builds of
// the attention workers. Plain loops do not get here: GCC turns the clamps of a polynomial exp
// into branches (it specialises the clamped path) and then cannot vectorise it, and it keeps an
// in-order max reduction scalar; the exp is a third of the work.
#pragma once
#include "native/cpu/attention_kernels.h"

#ifdef SEQTUNE_ATTN_X86
#include <immintrin.h>

#define SEQTUNE_ATTN_AVX2_INLINE __attribute__((target("avx2,fma"))) inline

namespace seqtune::cpu::attn {

struct Avx2Rows {
  // e^x (relative error < 3e-7) as 2^n · p(r), n = round(x / ln2), |r| <= ln2/2, p the degree-6 Taylor
  // polynomial (remainder < 1.2e-7). x is clamped to [-88, 88]: at -88, n = -127 and the bits of
  // 2^n are +0, so x <= -87.7 (and -inf, for masked keys) gives exactly 0. min/max return their
  // second operand when unordered, which keeps NaN.
  SEQTUNE_ATTN_AVX2_INLINE static __m256 exp8(__m256 x) {
    x = _mm256_max_ps(_mm256_set1_ps(-88.0f), _mm256_min_ps(_mm256_set1_ps(88.0f), x));
    const __m256 round = _mm256_set1_ps(12582912.0f);  // 1.5 · 2^23: adding it rounds to an integer
    const __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504f), round);
    const __m256 n = _mm256_sub_ps(t, round);
    // ln2 split in two so that n · ln2hi is exact.
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145752f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860677e-6f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    // n sits in t's low mantissa bits: 2^n = (t_bits - bits(1.5 · 2^23) + 127) << 23.
    const __m256i biased = _mm256_add_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(127 - 0x4B400000));
    const __m256i scale = _mm256_slli_epi32(biased, 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(scale));
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
