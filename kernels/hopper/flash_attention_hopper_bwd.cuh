// The Hopper attention backward's device code (flash_attention_hopper_bwd.cu launches it; the host
// test runs it under an emulator): the producer and the consumer warpgroups of one CTA of a dV or
// dK pass. See flash_attention_hopper_bwd.cu for the design.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#include <cuda.h>  // CUtensorMap
#endif

#include "kernels/hopper/flash_attention_hopper.cuh"

namespace seqtune::gpu::attn::hopper {

using seqtune::hopper::kFaultNoSm90a;
using seqtune::hopper::kFaultStall;
using seqtune::hopper::reportFault;

template <typename T>
struct BwdParams {
  T* grad;                  // dK (the dK pass) or dV: [T, Hkv, D]
  const float *lse2, *di;   // [H, T]: lse·log2(e) (+inf where no key was seen), rowsum(dO ∘ O)
  const int32_t* cu;
  int64_t tokens;
  int batch, heads, kvHeads;
  float scaleLog2, scale;
  bool causal;
  int* fault;
};

}  // namespace seqtune::gpu::attn::hopper

#if defined(SEQTUNE_HOPPER_CODE)

namespace seqtune::gpu::attn::hopper {

using seqtune::hopper::barrier;
using seqtune::hopper::waitPhase;

struct KeyBlock {
  Sequence s;
  int k0, nk, g, group;
  TileRange tiles;  // query tiles of 64 that see some key of the block
  bool ok;
};

template <int D>
__device__ __forceinline__ KeyBlock keyBlockOf(const int32_t* cu, int batch, int64_t tokens, int heads, int kvHeads,
                                               bool causal) {
  KeyBlock b{};
  const BlockSlot slot = findBlock(cu, batch, kBlockRows, gridDim.x - 1 - int64_t(blockIdx.x));
  if (slot.block < 0) return b;
  b.s = sequenceOf(cu, nullptr, nullptr, slot.doc, tokens, 0);
  b.k0 = slot.block * kBlockRows;
  if (!b.s.ok || b.k0 >= b.s.len) return b;
  b.g = blockIdx.y;
  b.group = heads / kvHeads;
  b.nk = min(kBlockRows, b.s.len - b.k0);
  b.tiles = queryTilesOf(causal, b.s, b.k0, b.nk, BwdConfig<D>::kTileRows);
  b.ok = true;
  return b;
}

__device__ __forceinline__ QueryTileAt tileAt(const KeyBlock& b, int u, int rows) {
  return queryTileAt(b.g, b.group, b.tiles.first, b.tiles.count, u, rows);
}

// Barriers after the tiles: the K/V blocks' "full", then per stage the tiles' full and empty.
template <int D>
struct BwdBarriers {
  uint32_t kvFull, full, empty;
  __device__ __forceinline__ explicit BwdBarriers(uint32_t base)
      : kvFull(base), full(base + 8), empty(base + 8 + 8 * BwdConfig<D>::kStages) {}
};

template <int D, bool kDk>
__device__ __forceinline__ void produce(const CUtensorMap* mapQ, const CUtensorMap* mapK, const CUtensorMap* mapV,
                                        const CUtensorMap* mapDo, const KeyBlock& b, uint32_t base,
                                        const BwdBarriers<D>& bars, int* fault) {
  using C = BwdConfig<D>;
  using Ti = typename C::Ti;
  ptx::mbarArriveExpectTx(bars.kvFull, (kDk ? 2 : 1) * C::B::kBytes);  // out-of-bounds elements count too
  const int64_t kRow = int64_t(b.s.start) + b.k0;
#pragma unroll
  for (int wg = 0; wg < kConsumers; ++wg) {
#pragma unroll
    for (int c = 0; c < C::B::kChunks; ++c) {
      const BoxAt box = blockBox<D>(wg, c, kRow, b.g);
      ptx::tmaLoad3d(base + C::kKOffset + box.offset, mapK, bars.kvFull, box.col, box.head, box.row);
      if (kDk) ptx::tmaLoad3d(base + C::kVOffset + box.offset, mapV, bars.kvFull, box.col, box.head, box.row);
    }
  }
  const int total = b.group * b.tiles.count;
  for (int u = 0; u < total; ++u) {
    const StageUse use = stageOf<C::kStages>(u);
    if (!waitPhase(barrier(bars.empty, use.stage), use.parity ^ 1u)) return reportFault(fault, kFaultStall);
    const uint32_t bar = barrier(bars.full, use.stage);
    ptx::mbarArriveExpectTx(bar, 2 * Ti::kBytes);
    const QueryTileAt at = tileAt(b, u, C::kTileRows);
#pragma unroll
    for (int c = 0; c < Ti::kChunks; ++c) {
      const BoxAt box = tileBox<D, C::kTileRows>(c, int64_t(b.s.start) + at.i0, at.h);
      const uint32_t offset = use.stage * Ti::kBytes + box.offset;
      ptx::tmaLoad3d(base + C::kQOffset + offset, mapQ, bar, box.col, box.head, box.row);
      ptx::tmaLoad3d(base + C::kDoOffset + offset, mapDo, bar, box.col, box.head, box.row);
    }
  }
}

// One consumer warpgroup (wg 0 or 1): keys [64 wg, 64 wg + 64) of the block.
template <typename T, int D, bool kDk>
__device__ __forceinline__ void consume(const BwdParams<T>& p, const KeyBlock& b, uint32_t base,
                                        unsigned char* baseGeneric, const BwdBarriers<D>& bars, int wg) {
  using C = BwdConfig<D>;
  constexpr int kN = C::kTileRows, kNT = kN / 8, kDT = D / 8;
  const int warp = (threadIdx.x / 32) % 4, lane = threadIdx.x & 31;
  const int row0 = wg * kWarpgroupRows + 16 * warp;  // this warp's first key in the block
  const int kw = b.k0 + wg * kWarpgroupRows;        // the warpgroup's first key in the document

  // The elementwise work of tile u overlaps the gradient wgmma of u - 1, except in the dK pass at
  // D = 128, where the extra live registers made ptxas spill and serialise the wgmmas.
  constexpr bool kOverlap = !(kDk && D == 128);
  float st[1][kNT][4] = {}, dp[1][kNT][4] = {}, acc[1][kDT][4] = {};
  uint32_t frag[kN / 16][4];

  auto fail = [&]() {
    ptx::wgmmaWait<0>();
    reportFault(p.fault, kFaultStall);
  };
  auto fenceOperands = [&]() {
    ptx::fenceAccumulators(acc[0]);
    ptx::fenceFragments(frag);
    ptx::wgmmaFence();
  };
  auto qTile = [&](int u) { return base + C::kQOffset + stageOf<C::kStages>(u).stage * C::Ti::kBytes; };
  auto doTile = [&](int u) { return base + C::kDoOffset + stageOf<C::kStages>(u).stage * C::Ti::kBytes; };
  // Sᵀ (and dPᵀ) of tile u, one commit group.
  auto issueScores = [&](int u) {
    issueBlockTimesTile<T, D, kN>(st[0], base + C::kKOffset, wg, qTile(u));
    if (kDk) issueBlockTimesTile<T, D, kN>(dp[0], base + C::kVOffset, wg, doTile(u));
    ptx::wgmmaCommit();
  };
  // dV += Pᵀ·dO or dK += dSᵀ·Q of tile u, one commit group.
  auto issueGradient = [&](int u) {
    issueFragTimesTile<T, D, kN>(acc[0], frag, kDk ? qTile(u) : doTile(u));
    ptx::wgmmaCommit();
  };
  // Pᵀ (dV pass) or dSᵀ (dK pass) of tile u in st, from Sᵀ (and dPᵀ).
  auto elementwise = [&](int u) {
    const QueryTileAt at = tileAt(b, u, kN);
    const bool masked = !queryTileUnmasked(p.causal, b.s, at.i0, kN, kw, kWarpgroupRows);
    const int64_t rowBase = int64_t(at.h) * p.tokens + b.s.start;
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) {
#pragma unroll
      for (int e0 = 0; e0 < 2; ++e0) {
        const int i = at.i0 + 8 * nt + accAt(lane, e0).col;  // this column's query
        const bool inside = i < b.s.len;
        const float lse2 = inside ? p.lse2[rowBase + i] : INFINITY;
        const float di = kDk && inside ? p.di[rowBase + i] : 0.f;
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int e = 2 * half + e0;
          const int j = kw + 16 * warp + accAt(lane, e).row;  // this row's key
          float pv = exp2Fast(st[0][nt][e] * p.scaleLog2 - lse2);
          if (masked && !attends(p.causal, b.s, i, j)) pv = 0.f;
          st[0][nt][e] = kDk ? pv * (dp[0][nt][e] - di) : pv;
        }
      }
    }
  };
  auto release = [&](int u) { ptx::mbarArrive(barrier(bars.empty, stageOf<C::kStages>(u).stage)); };

  const int total = b.group * b.tiles.count;
  if (!waitPhase(bars.kvFull, 0)) return fail();
  if constexpr (!kOverlap) {
    for (int u = 0; u < total; ++u) {
      if (!waitFull(bars.full, stageOf<C::kStages>(u))) return fail();
      fenceOperands();
      issueScores(u);
      ptx::wgmmaWait<0>();
      ptx::fenceAccumulators(st[0]);
      ptx::fenceAccumulators(dp[0]);
      elementwise(u);
      accToA<T, kNT>(frag, st[0]);
      fenceOperands();
      issueGradient(u);
      ptx::wgmmaWait<0>();
      ptx::fenceAccumulators(acc[0]);
      release(u);
    }
  } else {
    if (total > 0) {
      if (!waitFull(bars.full, stageOf<C::kStages>(0))) return fail();
      fenceOperands();
      issueScores(0);
      ptx::wgmmaWait<0>();
      ptx::fenceAccumulators(st[0]);
      ptx::fenceAccumulators(dp[0]);
      elementwise(0);
      accToA<T, kNT>(frag, st[0]);
    }
    for (int u = 1; u < total; ++u) {
      if (!waitFull(bars.full, stageOf<C::kStages>(u))) return fail();
      fenceOperands();
      issueScores(u);
      issueGradient(u - 1);
      ptx::wgmmaWait<1>();  // Sᵀ(u) (and dPᵀ(u)) are done; the gradient of u - 1 may still run
      ptx::fenceAccumulators(st[0]);
      ptx::fenceAccumulators(dp[0]);
      elementwise(u);
      ptx::wgmmaWait<0>();
      ptx::fenceAccumulators(acc[0]);
      release(u - 1);
      accToA<T, kNT>(frag, st[0]);
    }
    if (total > 0) {
      fenceOperands();
      issueGradient(total - 1);
      ptx::wgmmaWait<0>();
      ptx::fenceAccumulators(acc[0]);
      release(total - 1);
    }
  }

  const float scale = kDk ? p.scale : 1.f;
  const float rowScale[1][2] = {{scale, scale}};
  const int64_t ld = int64_t(p.kvHeads) * D;
  T* dst = p.grad + (int64_t(b.s.start) + b.k0 + row0) * ld + int64_t(b.g) * D;
  storeWarpgroupRows<T, D>(acc, rowScale, baseGeneric + C::kKOffset, wg, dst, ld, b.nk - row0);
}

// One CTA of the kernel; smem: the dynamic shared memory (its shared address need not be aligned).
template <typename T, int D, bool kDk>
__device__ __forceinline__ void backwardCta(const CUtensorMap& mapQ, const CUtensorMap& mapK, const CUtensorMap& mapV,
                                            const CUtensorMap& mapDo, const BwdParams<T>& p, unsigned char* smem) {
  using C = BwdConfig<D>;
  const KeyBlock b = keyBlockOf<D>(p.cu, p.batch, p.tokens, p.heads, p.kvHeads, p.causal);
  if (!b.ok) return;  // the same for the whole CTA
  const uint32_t raw = ptx::smemAddress(smem);
  const uint32_t base = (raw + kAtomBytes - 1) & ~static_cast<uint32_t>(kAtomBytes - 1);
  const BwdBarriers<D> bars(base + C::kBarrierOffset);
  if (threadIdx.x == 0) {
    ptx::mbarInit(bars.kvFull, 1);
    for (int s = 0; s < C::kStages; ++s) {
      ptx::mbarInit(barrier(bars.full, s), 1);
      ptx::mbarInit(barrier(bars.empty, s), kConsumers * kWarpgroup);
    }
    ptx::fenceBarrierInit();
  }
  __syncthreads();
  if (threadIdx.x < kWarpgroup) {
    ptx::setMaxRegsDec<kProducerRegs>();
    if (threadIdx.x == 0) produce<D, kDk>(&mapQ, &mapK, &mapV, &mapDo, b, base, bars, p.fault);
  } else {
    ptx::setMaxRegsInc<kConsumerRegs>();
    consume<T, D, kDk>(p, b, base, smem + (base - raw), bars, threadIdx.x / kWarpgroup - 1);
  }
}

}  // namespace seqtune::gpu::attn::hopper

#endif  // SEQTUNE_HOPPER_CODE
