// The tensor-core GEMM's linear epilogue (kernels/gemm/gemm_tc.h):
//   C = alpha·acc + scale·mask ⊙ (extA · op(extB)) + bias + beta·Cin
// where the optional rank-r product (LoRA's s·xa·Bᵀ in the forward, dropout'(dxa·A) in the
// backward) is computed on the tensor cores per 16-row slab after the main loop, from tiles that
// reuse the pipeline's shared memory, so y/dx are written once and never re-read. Each lane ends
// with 8 consecutive columns of one row (gemm_layout.h's quad transpose) and stores them as one
// 16-byte vector (two for f32) when the row is in bounds and aligned; ragged edges store
// element by element. The same epilogue writes f32 split-K partials (alpha = 1, no extras).
#pragma once
#include "kernels/gemm/gemm_tc.h"

namespace seqtune::gemm {

// ---- 8-element segments ----------------------------------------------------------------------------

// v[i] = p[i] for i < n (vec: n == 8 and p 16-byte aligned: one or two 16-byte loads).
template <typename T>
__device__ __forceinline__ void load8(const T* p, int n, bool vec, float (&v)[8]) {
  if (vec && n == 8) {
    if constexpr (sizeof(T) == 4) {
      const float4 lo = reinterpret_cast<const float4*>(p)[0], hi = reinterpret_cast<const float4*>(p)[1];
      v[0] = lo.x, v[1] = lo.y, v[2] = lo.z, v[3] = lo.w, v[4] = hi.x, v[5] = hi.y, v[6] = hi.z, v[7] = hi.w;
    } else {
      const uint4 raw = *reinterpret_cast<const uint4*>(p);
      const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
      for (int i = 0; i < 8; ++i) v[i] = toFloat(e[i]);
    }
    return;
  }
#pragma unroll
  for (int i = 0; i < 8; ++i) v[i] = i < n ? toFloat(p[i]) : 0.f;
}

template <typename T>
__device__ __forceinline__ void store8(T* p, int n, bool vec, const float (&v)[8]) {
  if (vec && n == 8) {
    if constexpr (sizeof(T) == 4) {
      reinterpret_cast<float4*>(p)[0] = make_float4(v[0], v[1], v[2], v[3]);
      reinterpret_cast<float4*>(p)[1] = make_float4(v[4], v[5], v[6], v[7]);
    } else {
      uint4 raw;
      T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
      for (int i = 0; i < 8; ++i) e[i] = fromFloat<T>(v[i]);
      *reinterpret_cast<uint4*>(p) = raw;
    }
    return;
  }
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    if (i < n) p[i] = fromFloat<T>(v[i]);
  }
}

// Takes 16x16 block j of a 16-row slab of accumulators to this lane's 8-column segment.
template <int NT>
__device__ __forceinline__ void segment(const float (&slab)[NT][4], int j, int lane, float (&v)[8]) {
  float2 u[4];
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    const int ni = 2 * j + (q & 1), h = 2 * (q >> 1);
    u[q] = make_float2(slab[ni][h], slab[ni][h + 1]);
  }
  quadTranspose(u, lane);
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    v[2 * q] = u[q].x;
    v[2 * q + 1] = u[q].y;
  }
}

// ---- linear epilogue -------------------------------------------------------------------------------

struct LinearOut {
  void* out;  // T, or f32 when f32
  int64_t ld, batchStride, splitStride;
  bool f32, vec;  // vec: out and ld allow 16-byte segment stores
  float alpha;
  const void* bias;  // [N] of T or f32, or null
  bool biasF32, biasVec;
  float beta;        // applied when cin is set
  const void* cin;   // same dtype as out, may alias it
  int64_t ldCin, cinBatchStride;
  bool cinVec;
};

// scale · mask ⊙ (extA · op(extB)): extA [M, rank] row-major; extB [N, rank] (K-major, EXT = 1)
// or [rank, N] (EXT = 2). Both 16-byte aligned with ld a multiple of 8 (the launcher copies
// them into a workspace otherwise). rankPad: rank rounded up to a power of two >= 16, at most
// kMaxFusedRank.
struct ExtProduct {
  const void* a;
  int64_t lda;
  const void* b;
  int64_t ldb;
  int rank, rankPad;
  float scale;
  bool masked;
  Dropout mask;  // on the output's coordinates
};

enum Ext : int { kExtNone = 0, kExtKMajor = 1, kExtMNMajor = 2 };

template <typename T, int EXT>
struct LinearEpilogue {
  LinearOut o;
  ExtProduct x;

  template <class Cfg>
  __device__ __forceinline__ void run(unsigned char* smemRaw, float (&acc)[Cfg::MT][Cfg::NT][4],
                                      const TileCtx& c) const {
    T* smem = reinterpret_cast<T*>(smemRaw);
    if constexpr (EXT != kExtNone) loadExt<Cfg>(smem, c);
#pragma unroll
    for (int mi = 0; mi < Cfg::MT; ++mi) {
      float e[Cfg::NT][4];
      if constexpr (EXT != kExtNone) extSlab<Cfg>(smem, mi, c, e);
      const int64_t row = segmentRowAt(c.m0, c.wm, mi, c.lane);
#pragma unroll
      for (int j = 0; j < Cfg::NT / 2; ++j) {
        float v[8];
        segment(acc[mi], j, c.lane, v);
        const int64_t col0 = segmentColAt(c.n0, c.wn, j, c.lane);
#pragma unroll
        for (int i = 0; i < 8; ++i) v[i] *= o.alpha;
        if constexpr (EXT != kExtNone) {
          float w[8];
          segment(e, j, c.lane, w);
#pragma unroll
          for (int i = 0; i < 8; ++i) {
            const bool keep = !x.masked || (row < c.M && col0 + i < c.N && x.mask.keep(row, col0 + i));
            v[i] += keep ? x.scale * w[i] : 0.f;
          }
        }
        if (row < c.M) store(row, col0, c, v);
      }
    }
  }

  __device__ __forceinline__ void store(int64_t row, int64_t col0, const TileCtx& c, float (&v)[8]) const {
    const int n = validElems(col0, c.N);
    if (n == 0) return;
    float t[8];
    if (o.bias) {
      if (o.biasF32) {
        load8(static_cast<const float*>(o.bias) + col0, n, o.biasVec, t);
      } else {
        load8(static_cast<const T*>(o.bias) + col0, n, o.biasVec, t);
      }
#pragma unroll
      for (int i = 0; i < 8; ++i) v[i] += t[i];
    }
    if (o.cin) {
      const int64_t at = c.batch * o.cinBatchStride + row * o.ldCin + col0;
      if (o.f32) {
        load8(static_cast<const float*>(o.cin) + at, n, o.cinVec, t);
      } else {
        load8(static_cast<const T*>(o.cin) + at, n, o.cinVec, t);
      }
#pragma unroll
      for (int i = 0; i < 8; ++i) v[i] += o.beta * t[i];
    }
    const int64_t at = c.batch * o.batchStride + c.split * o.splitStride + row * o.ld + col0;
    if (o.f32) {
      store8(static_cast<float*>(o.out) + at, n, o.vec, v);
    } else {
      store8(static_cast<T*>(o.out) + at, n, o.vec, v);
    }
  }

  // The rank-r tiles: extA rows [m0, m0 + BM) and extB's rows or columns [n0, n0 + BN), all of
  // rank (zero-filled to rankPad). The main loop left the pipeline buffers free.
  template <class Cfg>
  __device__ __forceinline__ void loadExt(T* smem, const TileCtx& c) const {
    loadTile<Cfg::THREADS, true>(smem, static_cast<const T*>(x.a), x.lda,
                                 operandTile(true, Cfg::BM, x.rankPad, c.m0, c.M, 0, x.rank));
    loadTile<Cfg::THREADS, true>(smem + Cfg::BM * x.rankPad, static_cast<const T*>(x.b), x.ldb,
                                 operandTile(EXT == kExtKMajor, Cfg::BN, x.rankPad, c.n0, c.N, 0, x.rank));
    cpAsyncCommit();
    cpAsyncWait<0>();
    __syncthreads();
  }

  // e = this warp's 16 x WTN slab mi of extA · op(extB), in the accumulators' layout.
  template <class Cfg>
  __device__ __forceinline__ void extSlab(const T* smem, int mi, const TileCtx& c, float (&e)[Cfg::NT][4]) const {
#pragma unroll
    for (int ni = 0; ni < Cfg::NT; ++ni) {
#pragma unroll
      for (int v = 0; v < 4; ++v) e[ni][v] = 0.f;
    }
    const int rc = x.rankPad / kChunkElems;
    const uint32_t aAddr = smemAddress(smem), bAddr = smemAddress(smem + Cfg::BM * x.rankPad);
    const int bChunks = EXT == kExtKMajor ? rc : Cfg::BN / kChunkElems;
#pragma unroll 1
    for (int kk = 0; kk < x.rankPad; kk += 16) {
      uint32_t af[4];
      const RowChunk ra = ldmatrixRow(true, true, c.lane, c.wm + 16 * mi, kk);
      ldmatrixX4<false>(af, aAddr + chunkIndex(ra.row, ra.chunk, rc) * kChunkBytes);
#pragma unroll
      for (int np = 0; np < Cfg::NT / 2; ++np) {
        const RowChunk rb = ldmatrixRow(false, EXT == kExtKMajor, c.lane, c.wn + 16 * np, kk);
        uint32_t r[4];
        ldmatrixX4<EXT != kExtKMajor>(r, bAddr + chunkIndex(rb.row, rb.chunk, bChunks) * kChunkBytes);
        mma16816<T>(e[2 * np], af, r[0], r[1]);
        mma16816<T>(e[2 * np + 1], af, r[2], r[3]);
      }
    }
  }
};

}  // namespace seqtune::gemm
