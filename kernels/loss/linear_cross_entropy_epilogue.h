// Cross-entropy epilogues of the tensor-core GEMM (kernels/gemm/gemm_tc.h) for the fused LM head
// (kernels/loss/linear_cross_entropy.cu). They consume a chunk's logits straight from the accumulators, so the
// logits never reach device memory:
// - forward: each row's (max, Σ exp(x − max)) over the block's columns, combined across the lane
//   pair and the WARPS_N warps sharing the row in a fixed order, one partial per (row, tile column);
//   the label's logit is stored by the one lane holding it;
// - backward: dlogits = coef·softmax − coef·onehot from the forward's lse, stored in h's dtype.
#pragma once
#include <cmath>

#include "kernels/gemm/gemm_epilogue.h"

namespace seqtune::gemm {

struct MaxSum {
  float m, s;
};

// The online softmax merge; an empty side (m = −inf) contributes nothing.
__host__ __device__ __forceinline__ MaxSum combine(MaxSum a, MaxSum b) {
  const float m = fmaxf(a.m, b.m);
  if (m == -INFINITY) return {m, 0.f};
  return {m, a.s * expf(a.m - m) + b.s * expf(b.m - m)};
}

template <typename T>
struct CeForwardEpilogue {
  const int32_t* labels;
  int64_t v0;         // the chunk's first vocabulary row
  int tilesN;         // partials per row for this chunk
  MaxSum* partials;   // [T, tilesN]
  float* target;      // [T]: the label's logit

  template <class Cfg>
  __device__ __forceinline__ void run(unsigned char* smemRaw, float (&acc)[Cfg::MT][Cfg::NT][4],
                                      const TileCtx& c) const {
    MaxSum* scratch = reinterpret_cast<MaxSum*>(smemRaw);  // [WARPS_N][BM], in the free pipeline buffers
    const int warpN = c.wn / Cfg::WTN;
#pragma unroll
    for (int mi = 0; mi < Cfg::MT; ++mi) {
      const int64_t row = segmentRowAt(c.m0, c.wm, mi, c.lane);
      const int64_t labelCol = row < c.M ? labels[row] - v0 : -1;
      MaxSum ms{-INFINITY, 0.f};
#pragma unroll
      for (int j = 0; j < Cfg::NT / 2; ++j) {
        float v[8];
        segment(acc[mi], j, c.lane, v);
        const int64_t col0 = segmentColAt(c.n0, c.wn, j, c.lane);
        const int n = validElems(col0, c.N);
        MaxSum seg{-INFINITY, 0.f};
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          if (i < n) seg.m = fmaxf(seg.m, v[i]);
        }
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          if (i < n) seg.s += expf(v[i] - seg.m);
          if (i < n && row < c.M && col0 + i == labelCol) target[row] = v[i];
        }
        ms = combine(ms, seg);
      }
      // Lane ^ 1 holds the other 8-column halves of the same row.
      ms = combine(ms, MaxSum{__shfl_xor_sync(0xffffffffu, ms.m, 1), __shfl_xor_sync(0xffffffffu, ms.s, 1)});
      if ((c.lane & 1) == 0) scratch[warpN * Cfg::BM + c.wm + 16 * mi + segmentRow(c.lane)] = ms;
    }
    __syncthreads();
    for (int r = threadIdx.x; r < Cfg::BM; r += Cfg::THREADS) {
      const int64_t row = c.m0 + r;
      if (row >= c.M) continue;
      MaxSum ms = scratch[r];
#pragma unroll
      for (int w = 1; w < Cfg::WARPS_N; ++w) ms = combine(ms, scratch[w * Cfg::BM + r]);
      partials[row * tilesN + c.n0 / Cfg::BN] = ms;
    }
  }
};

template <typename T>
struct CeBackwardEpilogue {
  const int32_t* labels;
  const float* lse;    // [T] from the forward
  const float* count;  // [1] from the forward
  double gradScale;
  bool mean;
  int64_t ignoreIndex, vocab, v0;
  T* dlogits;  // [T, ld], ld a multiple of 8, 16-byte aligned
  int64_t ld;

  template <class Cfg>
  __device__ __forceinline__ void run(unsigned char*, float (&acc)[Cfg::MT][Cfg::NT][4], const TileCtx& c) const {
    const double n = *count;
    const float coef = static_cast<float>(mean ? (n > 0 ? gradScale / n : 0.0) : gradScale);
#pragma unroll
    for (int mi = 0; mi < Cfg::MT; ++mi) {
      const int64_t row = segmentRowAt(c.m0, c.wm, mi, c.lane);
      const int64_t label = row < c.M ? labels[row] : ignoreIndex;
      const bool skip = label == ignoreIndex || label < 0 || label >= vocab;
      const float l = skip ? 0.f : lse[row];
#pragma unroll
      for (int j = 0; j < Cfg::NT / 2; ++j) {
        float v[8];
        segment(acc[mi], j, c.lane, v);
        const int64_t col0 = segmentColAt(c.n0, c.wn, j, c.lane);
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          v[i] = skip ? 0.f : expf(v[i] - l) * coef;
          if (!skip && v0 + col0 + i == label) v[i] -= coef;
        }
        if (row < c.M) store8(dlogits + row * ld + col0, validElems(col0, c.N), true, v);
      }
    }
  }
};

}  // namespace seqtune::gemm
