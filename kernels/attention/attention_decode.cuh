// The decoding kernels' bodies (attention_decode.cu launches them; the host test runs them under
// an emulator): split-K attention of a few queries per sequence against the KV cache, the combine
// of the splits, and the cache write. Decoding is memory-bound: each step reads the whole cache of
// every sequence once, so the work is spread over (key split, kv head, sequence) CTAs, and a CTA
// scores the queries of all heads of its kv group together, reading each key and value once for
// the group. Scores are few, so this runs on the FP32 cores rather than the tensor cores.
#pragma once
#include <cstdint>

#include "kernels/attention/flash_attention_mma.cuh"
#include "kernels/common/index_check.h"

namespace seqtune::gpu::attn {

constexpr int kDecThreads = 128;
constexpr int kDecKeys = 64;  // keys per shared-memory tile

// kRows query rows (query i, head of the group hl as row i * group + hl) per pass over the keys.
template <int D, int kRows>
struct DecodeConfig {
  // 16 bytes of padding per K/V row: the 8 threads of a 16-byte phase read 8 different rows at
  // the same column, which then fall in 8 different bank groups.
  static constexpr int kLd = D + 8;
  static constexpr int kKvElems = kDecKeys * kLd;  // one K or V stage
  static constexpr size_t kSmemBytes = 4 * kKvElems * 2 + (kRows * D + kRows * kDecKeys + 4 * kRows) * 4;
  static constexpr int kScoreRows = kRows / 2;           // rows per thread in the score phase
  static constexpr int kRowStep = kDecThreads / (D / 2);  // threads per column pair in the output phase
  static constexpr int kOutRows = kRows / kRowStep;
};

template <typename T>
struct DecodeParams {
  const T *q, *k, *v;
  const int32_t *cu, *qOffset, *kvLens;
  float *partAcc, *partMl;  // [splits, T, H, D] and [splits, T, H, 2]
  int64_t tokens, maxTokens;
  int batch, heads, kvHeads, splits;
  float scaleLog2;
  bool causal;
};

// One CTA: split blockIdx.x of kv head blockIdx.y of sequence blockIdx.z. smem:
// DecodeConfig::kSmemBytes of dynamic shared memory.
template <typename T, int D, int kRows>
__device__ __forceinline__ void decodeSplit(const DecodeParams<T>& p, T* kv) {
  using C = DecodeConfig<D, kRows>;
  // kv: [stage][K, V][kDecKeys][kLd]
  float* qs = reinterpret_cast<float*>(kv + 4 * C::kKvElems);  // [kRows][D], times scale·log2(e)
  float* sc = qs + kRows * D;                                 // [kRows][kDecKeys]: scores, then P
  float* rowM = sc + kRows * kDecKeys;
  float* rowL = rowM + kRows;
  float* rowAlpha = rowL + kRows;
  int* rowLimit = reinterpret_cast<int*>(rowAlpha + kRows);  // keys [.., limit) of the split it may see

  const int split = blockIdx.x, g = blockIdx.y, b = blockIdx.z, tid = threadIdx.x;
  const Sequence s = sequenceOf(p.cu, p.qOffset, p.kvLens, b, p.tokens, p.maxTokens);
  if (!s.ok || s.len == 0) return;
  const int group = p.heads / p.kvHeads, rows = s.len * group;
  const KeyRange range = splitRange(keyLimit(p.causal, s, s.len - 1), p.splits, split, kDecKeys);
  const int tiles = range.end > range.begin ? ceilDiv(range.end - range.begin, kDecKeys) : 0;
  const T* kCache = p.k + (int64_t(b) * p.kvHeads + g) * p.maxTokens * D;
  const T* vCache = p.v + (int64_t(b) * p.kvHeads + g) * p.maxTokens * D;
  // Global row of query row rr (over heads: [T, H, D] and the partials' [T, H]).
  auto rowIndex = [&](int rr) { return (int64_t(s.start) + rr / group) * p.heads + g * group + rr % group; };

  auto loadKv = [&](int t) {
    const int j0 = range.begin + t * kDecKeys;
    T* stage = kv + (t & 1) * 2 * C::kKvElems;
    for (int c = tid; c < kDecKeys * D / 8; c += kDecThreads) {
      const int row = c / (D / 8), col = (c % (D / 8)) * 8;
      const bool ok = j0 + row < range.end;
      const int64_t at = ok ? int64_t(j0 + row) * D + col : 0;
      cpAsync16(smemAddress(stage + row * C::kLd + col), kCache + at, ok ? 16 : 0);
      cpAsync16(smemAddress(stage + C::kKvElems + row * C::kLd + col), vCache + at, ok ? 16 : 0);
    }
    cpAsyncCommit();
  };

  for (int r0 = 0; r0 < rows; r0 += kRows) {
    for (int x = tid; x < kRows * D; x += kDecThreads) {
      const int rr = r0 + x / D;
      qs[x] = rr < rows ? toFloat(p.q[rowIndex(rr) * D + x % D]) * p.scaleLog2 : 0.f;
    }
    if (tid < kRows) {
      rowM[tid] = -INFINITY;
      rowL[tid] = 0.f;
      rowLimit[tid] = r0 + tid < rows ? min(range.end, keyLimit(p.causal, s, (r0 + tid) / group)) : 0;
    }
    // Score phase: key tid % 64 against rows tid / 64 + 2 j; keys past the row's limit are masked.
    const int key = tid % kDecKeys;
    float acc[C::kOutRows][2] = {};
    const int pair = tid % (D / 2), outRow0 = tid / (D / 2);
    __syncthreads();

    if (tiles > 0) loadKv(0);
    for (int t = 0; t < tiles; ++t) {
      if (t + 1 < tiles) {
        loadKv(t + 1);
        cpAsyncWait<1>();
      } else {
        cpAsyncWait<0>();
      }
      __syncthreads();
      const T* kTile = kv + (t & 1) * 2 * C::kKvElems;
      const T* vTile = kTile + C::kKvElems;
      const int j0 = range.begin + t * kDecKeys;

      float dot[C::kScoreRows] = {};
#pragma unroll 2
      for (int c = 0; c < D / 8; ++c) {
        float kf[8];
        unpack8<T>(*reinterpret_cast<const uint4*>(kTile + key * C::kLd + 8 * c), kf);
#pragma unroll
        for (int j = 0; j < C::kScoreRows; ++j) {
          const float4* qv = reinterpret_cast<const float4*>(qs + (tid / kDecKeys + 2 * j) * D + 8 * c);
          const float4 a = qv[0], bq = qv[1];
          dot[j] += a.x * kf[0] + a.y * kf[1] + a.z * kf[2] + a.w * kf[3] + bq.x * kf[4] + bq.y * kf[5] +
                    bq.z * kf[6] + bq.w * kf[7];
        }
      }
#pragma unroll
      for (int j = 0; j < C::kScoreRows; ++j) {
        const int r = tid / kDecKeys + 2 * j;
        sc[r * kDecKeys + key] = j0 + key < rowLimit[r] ? dot[j] : -INFINITY;
      }
      __syncthreads();

      // Online softmax: warp w owns rows w, w + 4, ...; each lane two keys.
      const int warp = tid / 32, lane = tid & 31;
      for (int r = warp; r < kRows; r += kDecThreads / 32) {
        const float x0 = sc[r * kDecKeys + lane], x1 = sc[r * kDecKeys + lane + 32];
        const float mOld = rowM[r], mNew = fmaxf(mOld, warpReduceMax(fmaxf(x0, x1)));
        const float shift = mNew == -INFINITY ? 0.f : mNew;
        const float p0 = exp2Fast(x0 - shift), p1 = exp2Fast(x1 - shift);
        sc[r * kDecKeys + lane] = p0;
        sc[r * kDecKeys + lane + 32] = p1;
        const float sum = warpReduceSum(p0 + p1);
        if (lane == 0) {
          const float alpha = exp2Fast(mOld - shift);
          rowAlpha[r] = alpha;
          rowL[r] = rowL[r] * alpha + sum;
          rowM[r] = mNew;
        }
      }
      __syncthreads();

      // Output phase: column pair `pair` of rows outRow0 + kRowStep j.
#pragma unroll
      for (int j = 0; j < C::kOutRows; ++j) {
        const float alpha = rowAlpha[outRow0 + C::kRowStep * j];
        acc[j][0] *= alpha;
        acc[j][1] *= alpha;
      }
#pragma unroll 8
      for (int kk = 0; kk < kDecKeys; ++kk) {
        const float2 vv = unpack2<T>(*reinterpret_cast<const uint32_t*>(vTile + kk * C::kLd + 2 * pair));
#pragma unroll
        for (int j = 0; j < C::kOutRows; ++j) {
          const float w = sc[(outRow0 + C::kRowStep * j) * kDecKeys + kk];
          acc[j][0] += w * vv.x;
          acc[j][1] += w * vv.y;
        }
      }
      __syncthreads();  // the stage and the scores are rewritten next
    }

    const int64_t plane = int64_t(split) * p.tokens * p.heads;
#pragma unroll
    for (int j = 0; j < C::kOutRows; ++j) {
      const int rr = r0 + outRow0 + C::kRowStep * j;
      if (rr < rows) {
        float2* dst = reinterpret_cast<float2*>(p.partAcc + (plane + rowIndex(rr)) * D + 2 * pair);
        *dst = make_float2(acc[j][0], acc[j][1]);
      }
    }
    if (tid < kRows && r0 + tid < rows) {
      *reinterpret_cast<float2*>(p.partMl + (plane + rowIndex(r0 + tid)) * 2) = make_float2(rowM[tid], rowL[tid]);
    }
    __syncthreads();  // qs and the row statistics are rewritten by the next pass
  }
}

// One warp per (token, head): merges the splits in order. No key seen: out 0, lse -inf.
template <typename T, int D>
__device__ __forceinline__ void combineRows(T* out, float* lse, const float* partAcc, const float* partMl,
                                            int64_t tokens, int heads, int splits) {
  constexpr int kPerLane = D / 32;
  const int lane = threadIdx.x & 31;
  const int64_t rows = tokens * heads, warps = int64_t(gridDim.x) * (blockDim.x / 32);
  for (int64_t row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32; row < rows; row += warps) {
    float mMax = -INFINITY;
    for (int sp = 0; sp < splits; ++sp) mMax = fmaxf(mMax, partMl[(sp * rows + row) * 2]);
    float total = 0.f, o[kPerLane] = {};
    if (mMax != -INFINITY) {
      for (int sp = 0; sp < splits; ++sp) {
        const float m = partMl[(sp * rows + row) * 2];
        if (m == -INFINITY) continue;
        const float w = exp2f(m - mMax);
        total += partMl[(sp * rows + row) * 2 + 1] * w;
#pragma unroll
        for (int e = 0; e < kPerLane; ++e) o[e] += partAcc[(sp * rows + row) * D + lane + 32 * e] * w;
      }
    }
    const float inv = total > 0.f ? 1.f / total : 0.f;
#pragma unroll
    for (int e = 0; e < kPerLane; ++e) out[row * D + lane + 32 * e] = fromFloat<T>(o[e] * inv);
    if (lane == 0) {
      const int64_t t = row / heads, h = row % heads;
      lse[h * tokens + t] = total > 0.f ? (mMax + log2f(total)) * kLn2 : -INFINITY;
    }
  }
}

// kvCacheWrite's grid-stride loop over units of U: unit u of values [T, Hkv, row] goes to its
// sequence's cache row at offsets[b] + i; a row outside the cache (or of a bad sequence) is skipped
// and flags b.
template <typename U>
__device__ __forceinline__ void cacheWriteUnits(U* cache, const U* values, int64_t tokens, int kvHeads,
                                                int64_t unitsPerRow, int batch, int64_t maxTokens, const int32_t* cu,
                                                const int32_t* offsets, int* flag) {
  const int64_t total = tokens * kvHeads * unitsPerRow;
  for (int64_t u = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; u < total; u += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = u / unitsPerRow, t = row / kvHeads;
    const int b = sequenceOfRow(cu, batch, t);
    const int64_t start = cu[b], end = cu[b + 1], position = int64_t(offsets[b]) + (t - start);
    if (start < 0 || t < start || t >= end || end > tokens || position < 0 || position >= maxTokens) {
      if (u % unitsPerRow == 0) flagBadIndex(flag, b, batch);
      continue;
    }
    cache[((int64_t(b) * kvHeads + row % kvHeads) * maxTokens + position) * unitsPerRow + u % unitsPerRow] = values[u];
  }
}

}  // namespace seqtune::gpu::attn
