// The deterministic backward's dQ pass (flash_attention_bwd_dq.cu launches it; the host test runs
// it under an emulator): a CTA owns a block of kBM queries of one head of one document and walks
// its visible key tiles in order, as the forward does, recomputing S = Q·Kᵀ, P, dP = dO·Vᵀ and
// dS = P ∘ (dP - Di), and accumulating dQ = dS·K in registers (the accumulators of dS are the A
// operand of dS·K directly). No atomics: each dq element is summed by one thread in a fixed order,
// so the result is the same on every run.
#pragma once
#include <cstdint>

#include "kernels/attention/flash_attention_bwd.cuh"

namespace seqtune::gpu::attn {

// kBM queries per CTA (4 warps of 16), key tiles of kBN.
template <int D>
struct DqConfig {
  static constexpr int kBM = 64, kBN = 64, kWarps = 4, kThreads = 32 * kWarps;
  static constexpr int kElems = 2 * kBM * D + 4 * kBN * D;  // Q, dO, then K and V two stages each
  static constexpr size_t kSmemBytes = kElems * 2;
};

// One CTA: queries [64 b, 64 b + 64) of head blockIdx.y of the document that virtual block
// gridDim.x - 1 - blockIdx.x falls in. smem: DqConfig::kSmemBytes of dynamic shared memory.
template <typename T, int D>
__device__ __forceinline__ void queryBlockTile(const BwdParams<T>& p, T* smem) {
  using C = DqConfig<D>;
  constexpr int kNT = C::kBN / 8, kDT = D / 8;
  const uint32_t sQ = smemAddress(smem), sDo = sQ + 2 * C::kBM * D, sK = sDo + 2 * C::kBM * D;
  constexpr uint32_t kStage = 2 * C::kBN * D;
  const uint32_t sV = sK + 2 * kStage;

  const BlockSlot slot = findBlock(p.cu, p.batch, C::kBM, gridDim.x - 1 - int64_t(blockIdx.x));
  if (slot.block < 0) return;
  const Sequence s = sequenceOf(p.cu, nullptr, nullptr, slot.doc, p.tokens, 0);
  const int q0 = slot.block * C::kBM;
  if (!s.ok || q0 >= s.len) return;
  const int h = blockIdx.y, g = kvHeadOf(h, p.heads, p.kvHeads);
  const int nq = min(C::kBM, s.len - q0);
  const TileRange tiles = keyTilesOf(p.causal, s, q0, C::kBM, C::kBN);
  const int keyEnd = tiles.count > 0 ? keyLimit(p.causal, s, q0 + nq - 1) : 0;
  const int64_t qLd = int64_t(p.heads) * D, kvLd = int64_t(p.kvHeads) * D;
  const int64_t qRow = (int64_t(s.start) + q0) * qLd + int64_t(h) * D;
  const int64_t kvBase = int64_t(s.start) * kvLd + int64_t(g) * D;

  auto loadKv = [&](int t) {
    const int j0 = t * C::kBN;
    const uint32_t stage = (t & 1) * kStage;
    loadTile<C::kBN, D, C::kThreads>(sK + stage, p.k + kvBase + j0 * kvLd, kvLd, keyEnd - j0);
    loadTile<C::kBN, D, C::kThreads>(sV + stage, p.v + kvBase + j0 * kvLd, kvLd, keyEnd - j0);
  };
  loadTile<C::kBM, D, C::kThreads>(sQ, p.q + qRow, qLd, nq);
  loadTile<C::kBM, D, C::kThreads>(sDo, p.dout + qRow, qLd, nq);
  if (tiles.count > 0) loadKv(0);
  cpAsyncCommit();

  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31, row0 = 16 * warp;
  int limit[2];
  float lse2[2], di[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = row0 + accAt(lane, 2 * half).row;
    const bool ok = r < nq;
    const int64_t at = int64_t(h) * p.tokens + s.start + q0 + r;
    limit[half] = ok ? keyLimit(p.causal, s, q0 + r) : 0;
    lse2[half] = ok ? p.lse2[at] : 0.f;
    di[half] = ok ? p.di[at] : 0.f;
  }
  float dq[1][kDT][4] = {};

  for (int t = 0; t < tiles.count; ++t) {
    if (t + 1 < tiles.count) {
      loadKv(t + 1);
      cpAsyncCommit();
      cpAsyncWait<1>();
    } else {
      cpAsyncWait<0>();
    }
    __syncthreads();
    const uint32_t stage = (t & 1) * kStage;
    const bool masked = t >= tiles.unmasked;

    float ps[1][kNT][4] = {};  // S, then P
    gemmSmemSmem<T, 1, kNT, D, D, D>(ps, sQ, row0, sK + stage);
    float ds[1][kNT][4] = {};  // dP, then dS
    gemmSmemSmem<T, 1, kNT, D, D, D>(ds, sDo, row0, sV + stage);
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int half = e >> 1;
        float pe = exp2Fast(ps[0][nt][e] * p.scaleLog2 - lse2[half]);
        if (masked && t * C::kBN + 8 * nt + accAt(lane, e).col >= limit[half]) pe = 0.f;
        ds[0][nt][e] = pe * (ds[0][nt][e] - di[half]);
      }
    }
    uint32_t fa[1][kNT / 2][4];
    accToA<T, kNT>(fa[0], ds[0]);
    gemmRegSmem<T, 1, kDT, kNT / 2, D>(dq, fa, sK + stage);
    __syncthreads();  // the stage is refilled by the next iteration's prefetch
  }
  if (tiles.count == 0) {  // other threads' Q copies may still land in the rows reused below
    cpAsyncWait<0>();
    __syncthreads();
  }
  const float scale[1][2] = {{p.scale, p.scale}};
  storeRows<T, 1, kDT, D>(dq, scale, smem, row0, p.dq + qRow + row0 * qLd, qLd, nq - row0);
}

}  // namespace seqtune::gpu::attn
