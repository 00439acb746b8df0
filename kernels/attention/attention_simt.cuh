// The SIMT attention kernels' bodies: f32, bf16 and f16 and every head dim up to 256 (8 elements
// per lane), for what the tensor-core kernels do not take (f32, or D other than 64 and 128: the
// tiny/small presets' 16 and 32, the demo's 24). One warp owns one row: lane l holds elements
// l, l + 32, ... of it; dot products are warp butterfly sums, so every lane holds the same bits
// and the online softmax stays warp-uniform. Keys (and, in the backward's key pass, queries) are
// visited one at a time in order, so results are bit-identical between runs. Speed is secondary:
// about one key per two warp reductions. Shared with the host test (the CPU emulator runs these
// bodies, test/kernels/attention_layout_simt.cpp); the launchers are in attention_simt.cu.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/attention/flash_attention_layout.h"
#include "kernels/common/mma_ptx.cuh"

namespace seqtune::gpu::attn::simt {

constexpr int kWarps = 4;  // rows per CTA
constexpr int kCtaThreads = 32 * kWarps;

template <typename T>
struct Params {
  const T *q, *k, *v;  // q [T, H, D]; k, v packed [T, Hkv, D] or cache [B, Hkv, maxTokens, D]
  T* out;                        // forward: [T, H, D]
  float* lse;                    // forward: [H, T], natural log
  const T *dout, *fwdOut;        // backward: dO and the forward's out [T, H, D]
  const float* fwdLse;           // backward: the forward's lse
  T *dq, *dk, *dv;               // backward outputs
  float* di;            // backward: rowsum(dO ∘ O) [H, T], written by the query pass for the key pass
  const int32_t *cu, *qOffset, *kvLens;  // qOffset, kvLens: cache layout only (else null)
  int64_t tokens, maxTokens;
  int batch, heads, kvHeads, headDim;
  float scale;
  bool causal;
};

__device__ __forceinline__ float warpSum(float x) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) x += __shfl_xor_sync(0xffffffffu, x, m);
  return x;
}

// This lane's kChunks elements of a D-element row (0 past D).
template <int kChunks, typename T>
__device__ __forceinline__ void loadRow(float (&x)[kChunks], const T* row, int D, int lane) {
#pragma unroll
  for (int c = 0; c < kChunks; ++c) x[c] = lane + 32 * c < D ? ptx::toFloat(row[lane + 32 * c]) : 0.f;
}

template <int kChunks, typename T>
__device__ __forceinline__ void storeRow(T* row, const float (&x)[kChunks], float factor, int D, int lane) {
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    if (lane + 32 * c < D) row[lane + 32 * c] = ptx::fromFloat<T>(x[c] * factor);
  }
}

template <int kChunks, typename T>
__device__ __forceinline__ float dot(const float (&x)[kChunks], const T* row, int D, int lane) {
  float sum = 0.f;
#pragma unroll
  for (int c = 0; c < kChunks; ++c) sum += lane + 32 * c < D ? x[c] * ptx::toFloat(row[lane + 32 * c]) : 0.f;
  return warpSum(sum);
}

// acc += w · row
template <int kChunks, typename T>
__device__ __forceinline__ void axpy(float (&acc)[kChunks], float w, const T* row, int D, int lane) {
#pragma unroll
  for (int c = 0; c < kChunks; ++c) acc[c] += lane + 32 * c < D ? w * ptx::toFloat(row[lane + 32 * c]) : 0.f;
}

// The row this warp owns (blockIdx.x blocks of kWarps rows) and its sequence; false when the row
// is past T or its sequence's metadata is bad (then nothing is read or written through it).
struct RowOf {
  int64_t t;
  int b, i;  // sequence and local index
  Sequence s;
};

template <typename T>
__device__ __forceinline__ bool ownRow(const Params<T>& p, RowOf& r) {
  r.t = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (r.t >= p.tokens) return false;
  r.b = sequenceOfRow(p.cu, p.batch, r.t);
  r.s = sequenceOf(p.cu, p.qOffset, p.kvLens, r.b, p.tokens, p.maxTokens);
  r.i = static_cast<int>(r.t - r.s.start);
  return r.s.ok && r.t >= r.s.start && r.i < r.s.len;
}

// Element offset of key (value) row j of sequence b under kv head g.
template <typename T>
__device__ __forceinline__ int64_t kvRow(const Params<T>& p, const Sequence& s, int b, int g, int j) {
  const int64_t row = p.kvLens ? (static_cast<int64_t>(b) * p.kvHeads + g) * p.maxTokens + j
                               : (static_cast<int64_t>(s.start) + j) * p.kvHeads + g;
  return row * p.headDim;
}

// out and lse of query row (t, h = blockIdx.y), packed or cache layout; a query without keys gets
// out = 0 and lse = -inf.
template <typename T, int kChunks>
__device__ void forwardRow(const Params<T>& p) {
  RowOf r;
  if (!ownRow(p, r)) return;
  const int lane = threadIdx.x % 32, h = blockIdx.y, D = p.headDim;
  const int g = kvHeadOf(h, p.heads, p.kvHeads);
  const int64_t at = (r.t * p.heads + h) * D;
  float q[kChunks], acc[kChunks];
  loadRow(q, p.q + at, D, lane);
#pragma unroll
  for (int c = 0; c < kChunks; ++c) acc[c] = 0.f;
  float m = -INFINITY, l = 0.f;
  const int keys = keyLimit(p.causal, r.s, r.i);
  for (int j = 0; j < keys; ++j) {
    const int64_t kv = kvRow(p, r.s, r.b, g, j);
    const float score = dot(q, p.k + kv, D, lane) * p.scale;
    const float mNew = fmaxf(m, score);
    const float keep = expf(m - mNew), e = expf(score - mNew);  // keep = 0 at the first key
    l = l * keep + e;
#pragma unroll
    for (int c = 0; c < kChunks; ++c) acc[c] *= keep;
    axpy(acc, e, p.v + kv, D, lane);
    m = mNew;
  }
  storeRow(p.out + at, acc, l > 0.f ? 1.f / l : 0.f, D, lane);
  if (lane == 0) p.lse[h * p.tokens + r.t] = l > 0.f ? m + logf(l) : -INFINITY;
}

// Backward, packed layout, pass 1 over query rows (t, h = blockIdx.y): Di = rowsum(dO ∘ O) into
// p.di, and dq = scale · Σ_j dS_ij k_j with dS = P ∘ (dP - Di), keys in order.
template <typename T, int kChunks>
__device__ void backwardQueryRow(const Params<T>& p) {
  RowOf r;
  if (!ownRow(p, r)) return;
  const int lane = threadIdx.x % 32, h = blockIdx.y, D = p.headDim;
  const int g = kvHeadOf(h, p.heads, p.kvHeads);
  const int64_t at = (r.t * p.heads + h) * D;
  float q[kChunks], dout[kChunks], dq[kChunks];
  loadRow(q, p.q + at, D, lane);
  loadRow(dout, p.dout + at, D, lane);
  const float di = dot(dout, p.fwdOut + at, D, lane);
  if (lane == 0) p.di[h * p.tokens + r.t] = di;
  const float lse = p.fwdLse[h * p.tokens + r.t];
#pragma unroll
  for (int c = 0; c < kChunks; ++c) dq[c] = 0.f;
  const int keys = keyLimit(p.causal, r.s, r.i);
  for (int j = 0; j < keys; ++j) {
    const int64_t kv = kvRow(p, r.s, r.b, g, j);
    const float prob = expf(dot(q, p.k + kv, D, lane) * p.scale - lse);
    const float ds = prob * (dot(dout, p.v + kv, D, lane) - di);
    axpy(dq, ds, p.k + kv, D, lane);
  }
  storeRow(p.dq + at, dq, p.scale, D, lane);
}

// Backward pass 2 over key rows (t, kv head g = blockIdx.y), after pass 1 wrote Di: dv = Σ P_ij dO_i
// and dk = scale · Σ dS_ij q_i over the group's heads, then the queries that see key j, in order.
template <typename T, int kChunks>
__device__ void backwardKeyRow(const Params<T>& p) {
  RowOf r;
  if (!ownRow(p, r)) return;
  const int lane = threadIdx.x % 32, g = blockIdx.y, D = p.headDim, group = p.heads / p.kvHeads;
  const int j = r.i;
  const int64_t at = (r.t * p.kvHeads + g) * D;
  float k[kChunks], v[kChunks], dk[kChunks], dv[kChunks];
  loadRow(k, p.k + at, D, lane);
  loadRow(v, p.v + at, D, lane);
#pragma unroll
  for (int c = 0; c < kChunks; ++c) dk[c] = dv[c] = 0.f;
  for (int h = g * group; h < (g + 1) * group; ++h) {
    for (int i = p.causal ? j : 0; i < r.s.len; ++i) {
      if (!attends(p.causal, r.s, i, j)) continue;
      const int64_t row = static_cast<int64_t>(r.s.start) + i, qa = (row * p.heads + h) * D;
      const float prob = expf(dot(k, p.q + qa, D, lane) * p.scale - p.fwdLse[h * p.tokens + row]);
      axpy(dv, prob, p.dout + qa, D, lane);
      const float ds = prob * (dot(v, p.dout + qa, D, lane) - p.di[h * p.tokens + row]);
      axpy(dk, ds, p.q + qa, D, lane);
    }
  }
  storeRow(p.dk + at, dk, p.scale, D, lane);
  storeRow(p.dv + at, dv, 1.f, D, lane);
}

}  // namespace seqtune::gpu::attn::simt
