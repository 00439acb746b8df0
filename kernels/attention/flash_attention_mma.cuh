// Warp-level building blocks of the attention kernels (sm_80+): cp.async tile loads into the
// swizzled shared-memory layout of flash_attention_layout.h, and the warp GEMMs the kernels are
// made of (ldmatrix + mma.sync.m16n8k16, f32 accumulators). Every address comes from the layout
// header, which the host test checks; the PTX primitives are in mma_ptx.cuh (shared with the GEMM).
#pragma once
#include <cstdint>

#include "kernels/attention/flash_attention_layout.h"
#include "kernels/common/mma_ptx.cuh"

namespace seqtune::gpu::attn {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// The primitives every attention kernel body uses, unqualified (the emulator defines them on the host).
using ptx::cpAsync16;
using ptx::cpAsync4;
using ptx::cpAsyncCommit;
using ptx::cpAsyncWait;
using ptx::exp2Fast;
using ptx::fromFloat;
using ptx::ldmatrixX4;
using ptx::mma16816;
using ptx::pack2;
using ptx::smemAddress;
using ptx::toFloat;
using ptx::unpack2;

// Rows [0, kRows) x kWidth elements of a global tile (row r at src + r * ld) into the swizzled
// shared tile at dst; rows >= valid are zero-filled (past a document, or past the tensor).
template <int kRows, int kWidth, int kThreads, typename T>
__device__ __forceinline__ void loadTile(uint32_t dst, const T* src, int64_t ld, int valid) {
  constexpr int kChunksPerRow = kWidth / 8;
  constexpr int kChunks = kRows * kChunksPerRow;
  static_assert(kChunks % kThreads == 0, "tile chunks must split evenly over the threads");
#pragma unroll
  for (int i = 0; i < kChunks / kThreads; ++i) {
    const int c = threadIdx.x + i * kThreads;
    const int row = c / kChunksPerRow, col = (c % kChunksPerRow) * 8;
    const bool ok = row < valid;
    cpAsync16(dst + 2 * swizzle(row, col, kWidth), ok ? src + row * ld + col : src, ok ? 16 : 0);
  }
}

// ---- warp GEMMs ----------------------------------------------------------------------------------
// acc[mt][nt] is the 16 x 8 accumulator of rows 16 mt, cols 8 nt of the warp's output.

// acc += A · Bᵀ with A rows [m0, m0 + 16 kMT) of a tile stored [m][k] and B rows [0, 8 kNT) of a
// tile stored [n][k], both kDepth wide (S = Q·Kᵀ and its relatives).
template <typename T, int kMT, int kNT, int kDepth, int kWidthA, int kWidthB>
__device__ __forceinline__ void gemmSmemSmem(float (&acc)[kMT][kNT][4], uint32_t a, int m0, uint32_t b) {
  static_assert(kNT % 2 == 0, "n-tiles come in pairs");
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int k0 = 0; k0 < kDepth; k0 += 16) {
    uint32_t fa[kMT][4];
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt) {
      const RowCol rc = ldA(lane, m0 + 16 * mt, k0);
      ldmatrixX4<false>(fa[mt], a + 2 * swizzle(rc.row, rc.col, kWidthA));
    }
#pragma unroll
    for (int np = 0; np < kNT / 2; ++np) {
      uint32_t fb[4];
      const RowCol rc = ldB(lane, 16 * np, k0);
      ldmatrixX4<false>(fb, b + 2 * swizzle(rc.row, rc.col, kWidthB));
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
        mma16816<T>(acc[mt][2 * np], fa[mt], fb[0], fb[1]);
        mma16816<T>(acc[mt][2 * np + 1], fa[mt], fb[2], fb[3]);
      }
    }
  }
}

// acc += A · B with A in registers (fa[mt][kk]: the k16 slice kk) and B a tile stored [k][n]
// (rows [0, 16 kKS), kNT n-tiles from col 0): P·V and its relatives.
template <typename T, int kMT, int kNT, int kKS, int kWidthB>
__device__ __forceinline__ void gemmRegSmem(float (&acc)[kMT][kNT][4], const uint32_t (&fa)[kMT][kKS][4], uint32_t b) {
  static_assert(kNT % 2 == 0, "n-tiles come in pairs");
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int kk = 0; kk < kKS; ++kk) {
#pragma unroll
    for (int np = 0; np < kNT / 2; ++np) {
      uint32_t fb[4];
      const RowCol rc = ldBTrans(lane, 16 * kk, 16 * np);
      ldmatrixX4<true>(fb, b + 2 * swizzle(rc.row, rc.col, kWidthB));
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
        mma16816<T>(acc[mt][2 * np], fa[mt][kk], fb[0], fb[1]);
        mma16816<T>(acc[mt][2 * np + 1], fa[mt][kk], fb[2], fb[3]);
      }
    }
  }
}

// A operands (T) of the k16 slices of a row block's accumulators: fa[kk] from n-tiles 2kk, 2kk+1.
template <typename T, int kNT>
__device__ __forceinline__ void accToA(uint32_t (&fa)[kNT / 2][4], const float (&acc)[kNT][4]) {
#pragma unroll
  for (int kk = 0; kk < kNT / 2; ++kk) {
#pragma unroll
    for (int reg = 0; reg < 4; ++reg) {
      const float* c = acc[accTileForA(kk, reg)];
      fa[kk][reg] = pack2<T>(c[accElemForA(reg, 0)], c[accElemForA(reg, 1)]);
    }
  }
}

// The 8 elements of T in 16 bytes, as floats (the lowest address first).
template <typename T>
__device__ __forceinline__ void unpack8(const uint4& raw, float (&f)[8]) {
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 pair = unpack2<T>(w[i]);
    f[2 * i] = pair.x;
    f[2 * i + 1] = pair.y;
  }
}

// Sum and max over the warp, returned to every lane.
__device__ __forceinline__ float warpReduceSum(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

__device__ __forceinline__ float warpReduceMax(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}

// Max and sum over the 4 lanes of a quad (they hold one accumulator row between them).
__device__ __forceinline__ float quadMax(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}

__device__ __forceinline__ float quadSum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// The online-softmax step of the forward kernels for one key tile of scores sc (the warp's rows
// [16 mt + lane / 4 + 8 half], key columns keyBase + 8 nt + 2 (lane % 4) + e % 2): scales them by
// scale · log2(e), masks keys at or past limit[mt][half] when `masked`, raises the running max m,
// replaces sc by exp2(score - m) (P, unnormalised), and updates the per-thread partial sums l.
// alpha receives the factor by which the output accumulated so far must be rescaled.
template <int kMT, int kNT>
__device__ __forceinline__ void softmaxTile(float (&sc)[kMT][kNT][4], float (&m)[kMT][2], float (&l)[kMT][2],
                                            float (&alpha)[kMT][2], const int (&limit)[kMT][2], bool masked,
                                            int keyBase, float scaleLog2) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float rowMax = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt) {
#pragma unroll
        for (int e = 2 * half; e < 2 * half + 2; ++e) {
          float x = sc[mt][nt][e] * scaleLog2;
          if (masked && keyBase + 8 * nt + accAt(lane, e).col >= limit[mt][half]) x = -INFINITY;
          sc[mt][nt][e] = x;
          rowMax = fmaxf(rowMax, x);
        }
      }
      const float mNew = fmaxf(m[mt][half], quadMax(rowMax));
      // A row that has seen no key yet keeps m = -inf; shift by 0 so that e^(-inf) stays 0.
      const float shift = mNew == -INFINITY ? 0.f : mNew;
      alpha[mt][half] = exp2Fast(m[mt][half] - shift);
      m[mt][half] = mNew;
      float sum = 0.f;
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt) {
#pragma unroll
        for (int e = 2 * half; e < 2 * half + 2; ++e) {
          sc[mt][nt][e] = exp2Fast(sc[mt][nt][e] - shift);
          sum += sc[mt][nt][e];
        }
      }
      // l stays a per-thread partial (the quad's sum is taken once at the end).
      l[mt][half] = l[mt][half] * alpha[mt][half] + sum;
    }
  }
}

// o[mt][dt] rows (half) times alpha[mt][half].
template <int kMT, int kDT>
__device__ __forceinline__ void rescaleRows(float (&o)[kMT][kDT][4], const float (&alpha)[kMT][2]) {
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int dt = 0; dt < kDT; ++dt) {
      o[mt][dt][0] *= alpha[mt][0];
      o[mt][dt][1] *= alpha[mt][0];
      o[mt][dt][2] *= alpha[mt][1];
      o[mt][dt][3] *= alpha[mt][1];
    }
  }
}

// Writes a warp's accumulator rows [row0, row0 + 16 kMT) x [0, 8 kNT) times `scale[mt][half]` as T
// into the swizzled shared tile (width kWidth), then, after __syncwarp, copies the rows below
// `valid` to global memory (row r at dst + r * ld) in 16-byte stores.
template <typename T, int kMT, int kNT, int kWidth>
__device__ __forceinline__ void storeRows(const float (&acc)[kMT][kNT][4], const float (&scale)[kMT][2], T* tile,
                                          int row0, T* dst, int64_t ld, int valid) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const RowCol rc = accAt(lane, 2 * half);
        const float f = scale[mt][half];
        *reinterpret_cast<uint32_t*>(tile + swizzle(row0 + 16 * mt + rc.row, 8 * nt + rc.col, kWidth)) =
            pack2<T>(acc[mt][nt][2 * half] * f, acc[mt][nt][2 * half + 1] * f);
      }
    }
  }
  __syncwarp();
  constexpr int kChunksPerRow = kNT;  // 8 elements per chunk
  static_assert((16 * kMT * kChunksPerRow) % 32 == 0, "whole warp passes");
#pragma unroll
  for (int i = 0; i < 16 * kMT * kChunksPerRow / 32; ++i) {
    const int c = lane + 32 * i;
    const int row = c / kChunksPerRow, col = (c % kChunksPerRow) * 8;
    if (row < valid) {
      *reinterpret_cast<int4*>(dst + row * ld + col) =
          *reinterpret_cast<const int4*>(tile + swizzle(row0 + row, col, kWidth));
    }
  }
}

}  // namespace seqtune::gpu::attn
