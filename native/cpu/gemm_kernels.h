// Micro-kernels of the blocked GEMM (gemm.cpp). A kernel computes one MR x NR tile of C from an
// A panel (MR rows, k deep) and a packed B panel (k steps of NR values):
//   C = alpha · (A_panel · B_panel) + beta · C, and with beta == 0 C is written without being read.
// Each element is accumulated in its own lane in k order, so its value never depends on which
// tile, or which thread, computed it, nor on how its A panel was laid out.
#pragma once
#include <cstdint>

namespace seqtune::cpu {

// The A panel's element (r, p) is at a[p * stride + r] ("depth": a packed panel, stride MR, or
// op(A) stored [K, M] read in place) or at a[r * stride + p] ("rows": op(A) stored [M, K] in place).
template <typename T>
using TileKernel = void (*)(int64_t k, const T* a, int64_t stride, const T* b, T alpha, T beta, T* c, int64_t ldc);

// Packs one full NR-wide panel of op(B) = Bᵀ: rows [0, NR) of the stored B (row stride ldb), kc
// deep, into dst[p * NR + c] = B[c * ldb + p]. A transposing copy is slow in scalar code, and the
// common linear layer (x · Wᵀ) takes this path.
template <typename T>
using PanelPacker = void (*)(const T* B, int64_t ldb, int64_t kc, T* dst);

template <typename T>
struct GemmKernel {
  int64_t mr;
  int64_t nr;
  TileKernel<T> tileDepth;
  TileKernel<T> tileRows;
  PanelPacker<T> packTransposedB;
};

// The largest MR x NR of any kernel (sizes the scratch tile used for edge tiles).
constexpr int64_t kMaxTile = 6 * 16;

// The fastest kernel this CPU runs: AVX2+FMA when available, else portable C++.
// SEQTUNE_CPU_SIMD=0 forces the portable kernels (to test them on AVX2 machines).
GemmKernel<float> gemmKernelF32();
GemmKernel<double> gemmKernelF64();

}  // namespace seqtune::cpu
