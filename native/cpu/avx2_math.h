// f32 math on eight lanes with AVX2+FMA for the CPU kernels' AVX2 builds (attention's softmax,
// swiglu's sigmoid), and the one switch that allows those builds.
#pragma once

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define SEQTUNE_CPU_X86 1
#include <immintrin.h>
#endif

namespace seqtune::cpu {

// True when the CPU has AVX2 and FMA and SEQTUNE_CPU_SIMD is not 0 (0 forces the portable loops,
// to test them on AVX2 machines).
bool avx2Enabled();

#ifdef SEQTUNE_CPU_X86
namespace avx2 {

// e^x (relative error < 3e-7) as 2^n · p(r), n = round(x / ln2), |r| <= ln2/2, p the degree-6 Taylor
// polynomial (remainder < 1.2e-7). x is clamped to [-88, 88]: at -88, n = -127 and the bits of
// 2^n are +0, so x <= -87.7 (and -inf, for masked keys) gives exactly 0. min/max return their
// second operand when unordered, which keeps NaN.
__attribute__((target("avx2,fma"))) inline __m256 exp8(__m256 x) {
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

}  // namespace avx2
#endif

}  // namespace seqtune::cpu
