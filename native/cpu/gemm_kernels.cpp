#include "native/cpu/gemm_kernels.h"

#include "native/cpu/avx2_math.h"

namespace seqtune::cpu {

namespace {

// Element (r, p) of an A panel (gemm_kernels.h): Rows reads op(A) stored [M, K] in place.
template <bool Rows, typename T>
inline const T* aElement(const T* a, int64_t stride, int r, int64_t p) {
  return Rows ? a + r * stride + p : a + p * stride + r;
}

// Portable kernel: plain loops the compiler vectorises for the baseline ISA.
template <typename T, int MR, int NR, bool Rows>
void tilePortable(int64_t k, const T* a, int64_t stride, const T* b, T alpha, T beta, T* c, int64_t ldc) {
  T acc[MR][NR] = {};
  for (int64_t p = 0; p < k; ++p) {
    for (int r = 0; r < MR; ++r) {
      const T ar = *aElement<Rows>(a, stride, r, p);
      for (int j = 0; j < NR; ++j) acc[r][j] += ar * b[j];
    }
    b += NR;
  }
  for (int r = 0; r < MR; ++r) {
    T* row = c + r * ldc;
    for (int j = 0; j < NR; ++j) {
      const T t = alpha * acc[r][j];
      row[j] = beta == T(0) ? t : beta * row[j] + t;
    }
  }
}

template <typename T, int NR>
void packTransposedPortable(const T* B, int64_t ldb, int64_t kc, T* dst) {
  for (int c = 0; c < NR; ++c) {
    const T* src = B + c * ldb;
    for (int64_t p = 0; p < kc; ++p) dst[p * NR + c] = src[p];
  }
}

#ifdef SEQTUNE_CPU_X86
// 6 x 16 f32 tile: 12 ymm accumulators, 2 for the B row and 1 for the broadcast A value (15 of
// the 16 ymm registers), two FMAs per A broadcast.
template <bool Rows>
__attribute__((target("avx2,fma"))) void tileF32Avx2(int64_t k, const float* a, int64_t stride, const float* b,
                                                     float alpha, float beta, float* c, int64_t ldc) {
  __m256 acc[6][2];
#pragma GCC unroll 6
  for (int r = 0; r < 6; ++r) {
    // C is read only after the k loop; fetching its lines now hides the miss (mostly to L3).
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 15), _MM_HINT_T0);
    acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  }
#pragma GCC unroll 4
  for (int64_t p = 0; p < k; ++p) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
    for (int r = 0; r < 6; ++r) {
      const __m256 ar = _mm256_broadcast_ss(aElement<Rows>(a, stride, r, p));
      acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
    }
    b += 16;
  }
  const __m256 va = _mm256_set1_ps(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 6
    for (int r = 0; r < 6; ++r) {
      _mm256_storeu_ps(c + r * ldc, _mm256_mul_ps(va, acc[r][0]));
      _mm256_storeu_ps(c + r * ldc + 8, _mm256_mul_ps(va, acc[r][1]));
    }
  } else {
    const __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
    for (int r = 0; r < 6; ++r) {
      float* row = c + r * ldc;
      _mm256_storeu_ps(row, _mm256_fmadd_ps(vb, _mm256_loadu_ps(row), _mm256_mul_ps(va, acc[r][0])));
      _mm256_storeu_ps(row + 8, _mm256_fmadd_ps(vb, _mm256_loadu_ps(row + 8), _mm256_mul_ps(va, acc[r][1])));
    }
  }
}

// 16-wide transposed panel: 8 x 8 blocks transposed in registers (unpack, shuffle, lane swap).
__attribute__((target("avx2,fma"))) void packTransposedF32Avx2(const float* B, int64_t ldb, int64_t kc, float* dst) {
  int64_t p = 0;
  for (; p + 8 <= kc; p += 8) {
    for (int half = 0; half < 2; ++half) {
      const float* src = B + half * 8 * ldb + p;
      __m256 r[8], t[8], s[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ldb);
#pragma GCC unroll 4
      for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
      }
#pragma GCC unroll 2
      for (int i = 0; i < 8; i += 4) {
        s[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
      }
      float* d = dst + p * 16 + half * 8;
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) {
        _mm256_storeu_ps(d + q * 16, _mm256_permute2f128_ps(s[q], s[q + 4], 0x20));
        _mm256_storeu_ps(d + (q + 4) * 16, _mm256_permute2f128_ps(s[q], s[q + 4], 0x31));
      }
    }
  }
  for (int c = 0; c < 16 && p < kc; ++c) {
    for (int64_t q = p; q < kc; ++q) dst[q * 16 + c] = B[c * ldb + q];
  }
}

#endif

}  // namespace

GemmKernel<float> gemmKernelF32() {
#ifdef SEQTUNE_CPU_X86
  static const bool avx2 = avx2Enabled();
  if (avx2) return {6, 16, tileF32Avx2<false>, tileF32Avx2<true>, packTransposedF32Avx2};
#endif
  return {6, 16, tilePortable<float, 6, 16, false>, tilePortable<float, 6, 16, true>, packTransposedPortable<float, 16>};
}

GemmKernel<double> gemmKernelF64() {
  return {4, 8, tilePortable<double, 4, 8, false>, tilePortable<double, 4, 8, true>, packTransposedPortable<double, 8>};
}

}  // namespace seqtune::cpu
