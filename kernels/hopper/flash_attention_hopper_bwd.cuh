// The Hopper attention backward's device code (flash_attention_hopper_bwd.cu launches it; the host
// test runs it under an emulator): the two warpgroups of one CTA (thread 0 also loads), which
// computes dK and dV of its keys in one pass and, in the fast mode, adds dS·K to the f32 dQ sums.
// See flash_attention_hopper_bwd.cu for the design.
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
  T *dk, *dv;               // [T, Hkv, D]
  float* dqAccum;           // [T, H, D] f32, zeroed: Σ dS·K by atomics (fast mode); unused otherwise
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

// The loads, issued by thread 0 (no producer warpgroup: flash_attention_hopper_layout.h says why).
template <int D>
struct Loader {
  const CUtensorMap *mapQ, *mapK, *mapV, *mapDo;
  const KeyBlock& b;
  uint32_t base;
  const BwdBarriers<D>& bars;

  // The K and V blocks, once.
  __device__ __forceinline__ void blocks() const {
    using C = BwdConfig<D>;
    ptx::mbarArriveExpectTx(bars.kvFull, 2 * C::B::kBytes);  // out-of-bounds elements count too
    const int64_t kRow = int64_t(b.s.start) + b.k0;
#pragma unroll
    for (int wg = 0; wg < kConsumers; ++wg) {
#pragma unroll
      for (int c = 0; c < C::B::kChunks; ++c) {
        const BoxAt box = blockBox<D>(wg, c, kRow, b.g);
        ptx::tmaLoad3d(base + C::kKOffset + box.offset, mapK, bars.kvFull, box.col, box.head, box.row);
        ptx::tmaLoad3d(base + C::kVOffset + box.offset, mapV, bars.kvFull, box.col, box.head, box.row);
      }
    }
  }

  // Q and dO of tile u into its stage, once both warpgroups released the stage's previous tile.
  __device__ __forceinline__ bool tile(int u) const {
    using C = BwdConfig<D>;
    using Ti = typename C::Ti;
    const StageUse use = stageOf<C::kStages>(u);
    if (!waitPhase(barrier(bars.empty, use.stage), use.parity ^ 1u)) return false;
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
    return true;
  }
};

// dQ += dS·K of tile `at` for warpgroup wg's keys (fast mode): dSᵀ (in the A fragments of dK's
// product) goes to the warpgroup's dS tile, then per 64 columns of D one 64 x 64 wgmma over the
// 64 keys and f32 atomics into dqAccum. The dS tile is rewritten only after every warp of the
// warpgroup is past the previous tile's dQ wgmmas (a named barrier before and after the stores).
template <typename T, int D>
__device__ __forceinline__ void addDq(const BwdParams<T>& p, const KeyBlock& b, const QueryTileAt& at,
                                      const uint32_t (&ds)[BwdConfig<D>::kTileRows / 16][4], uint32_t base,
                                      unsigned char* baseGeneric, int wg) {
  using C = BwdConfig<D>;
  constexpr int kN = C::kTileRows;
  const int warp = (threadIdx.x / 32) % 4, lane = threadIdx.x & 31;
  const uint32_t dsTile = C::kDsOffset + wg * C::kDsBytes;
  ptx::namedBarrierSync(3 + wg, kWarpgroup);
#pragma unroll
  for (int kk = 0; kk < kN / 16; ++kk) {
#pragma unroll
    for (int reg = 0; reg < 4; ++reg) {  // register reg holds accumulator elements (2h, 2h + 1) of one n-tile
      const RowCol rc = accAt(lane, 2 * (reg & 1));
      const uint32_t at = dsTile + dsOffset(16 * warp + rc.row, 8 * accTileForA(kk, reg) + rc.col);
      *reinterpret_cast<uint32_t*>(baseGeneric + seqtune::hopper::swizzle128(at)) = ds[kk][reg];
    }
  }
  ptx::fenceProxyAsync();
  ptx::namedBarrierSync(3 + wg, kWarpgroup);
  const int64_t rowBase = (int64_t(b.s.start) + at.i0) * p.heads + at.h;
#pragma unroll 1
  for (int c = 0; c < D / kRowElems; ++c) {
    float dq[1][kRowElems / 8][4] = {};
    ptx::fenceAccumulators(dq[0]);
    ptx::wgmmaFence();
#pragma unroll
    for (int kk = 0; kk < kN / kMmaK; ++kk) {
      using seqtune::hopper::encodeDesc;
      const uint64_t a = encodeDesc(base + dsTile + tileMnMajorStart(kk), tileMnMajorLbo<64, kN>(), seqtune::hopper::kSbo);
      const uint64_t bk = encodeDesc(base + C::kKOffset + blockMnMajorStart<D>(wg, c, kk), Block<D>::kBoxBytes,
                                     seqtune::hopper::kSbo);
      ptx::wgmmaSS<T, 1, 1, kRowElems>(dq[0], a, bk, kk > 0);
    }
    ptx::wgmmaCommit();
    ptx::wgmmaWait<0>();
    ptx::fenceAccumulators(dq[0]);
#pragma unroll
    for (int j = 0; j < kRowElems / 8; ++j) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const RowCol rc = accAt(lane, 2 * half);
        const int q = 16 * warp + rc.row;
        if (at.i0 + q >= b.s.len) continue;  // the tile's rows past the document are another's queries
        float* target = p.dqAccum + (rowBase + int64_t(q) * p.heads) * D + kRowElems * c + 8 * j + rc.col;
        atomicAdd(reinterpret_cast<float2*>(target), make_float2(dq[0][j][2 * half], dq[0][j][2 * half + 1]));
      }
    }
  }
}

// One consumer warpgroup (wg 0 or 1): keys [64 wg, 64 wg + 64) of the block. Per query tile:
// Sᵀ and dPᵀ (one commit group), Pᵀ and dSᵀ in registers, then dV += Pᵀ·dO and dK += dSᵀ·Q (one
// group, A from registers) while the fast mode stores dSᵀ for dQ.
template <typename T, int D, bool kDq>
__device__ __forceinline__ void consume(const BwdParams<T>& p, const KeyBlock& b, uint32_t base,
                                        unsigned char* baseGeneric, const BwdBarriers<D>& bars,
                                        const Loader<D>& load, int wg) {
  using C = BwdConfig<D>;
  constexpr int kN = C::kTileRows, kNT = kN / 8, kDT = D / 8;
  const int warp = (threadIdx.x / 32) % 4, lane = threadIdx.x & 31;
  const int row0 = wg * kWarpgroupRows + 16 * warp;  // this warp's first key in the block
  const int kw = b.k0 + wg * kWarpgroupRows;        // the warpgroup's first key in the document

  float st[1][kNT][4] = {}, dp[1][kNT][4] = {}, dv[1][kDT][4] = {}, dk[1][kDT][4] = {};
  uint32_t fragP[kN / 16][4], fragDs[kN / 16][4];

  auto fail = [&]() {
    ptx::wgmmaWait<0>();
    reportFault(p.fault, kFaultStall);
  };
  auto qTile = [&](int u) { return base + C::kQOffset + stageOf<C::kStages>(u).stage * C::Ti::kBytes; };
  auto doTile = [&](int u) { return base + C::kDoOffset + stageOf<C::kStages>(u).stage * C::Ti::kBytes; };
  // Pᵀ in st and dSᵀ = Pᵀ ∘ (dPᵀ - Di) in dp, from Sᵀ and dPᵀ.
  auto elementwise = [&](const QueryTileAt& at) {
    const bool masked = !queryTileUnmasked(p.causal, b.s, at.i0, kN, kw, kWarpgroupRows);
    const int64_t rowBase = int64_t(at.h) * p.tokens + b.s.start;
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) {
#pragma unroll
      for (int e0 = 0; e0 < 2; ++e0) {
        const int i = at.i0 + 8 * nt + accAt(lane, e0).col;  // this column's query
        const bool inside = i < b.s.len;
        const float lse2 = inside ? p.lse2[rowBase + i] : INFINITY;
        const float di = inside ? p.di[rowBase + i] : 0.f;
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int e = 2 * half + e0;
          const int j = kw + 16 * warp + accAt(lane, e).row;  // this row's key
          float pv = exp2Fast(st[0][nt][e] * p.scaleLog2 - lse2);
          if (masked && !attends(p.causal, b.s, i, j)) pv = 0.f;
          st[0][nt][e] = pv;
          dp[0][nt][e] = pv * (dp[0][nt][e] - di);
        }
      }
    }
  };

  const int total = b.group * b.tiles.count;
  if (threadIdx.x == 0) {  // the first lap of the ring: its stages are free
    load.blocks();
    for (int u = 0; u < min(total, C::kStages); ++u) load.tile(u);
  }
  __syncwarp();
  if (!waitPhase(bars.kvFull, 0)) return fail();
  for (int u = 0; u < total; ++u) {
    const QueryTileAt at = tileAt(b, u, kN);
    if (!waitFull(bars.full, stageOf<C::kStages>(u))) return fail();
    ptx::fenceAccumulators(st[0]);
    ptx::fenceAccumulators(dp[0]);
    ptx::wgmmaFence();
    issueBlockTimesTile<T, D, kN>(st[0], base + C::kKOffset, wg, qTile(u));
    issueBlockTimesTile<T, D, kN>(dp[0], base + C::kVOffset, wg, doTile(u));
    ptx::wgmmaCommit();
    ptx::wgmmaWait<0>();
    ptx::fenceAccumulators(st[0]);
    ptx::fenceAccumulators(dp[0]);
    elementwise(at);
    accToA<T, kNT>(fragP, st[0]);
    accToA<T, kNT>(fragDs, dp[0]);
    ptx::fenceAccumulators(dv[0]);
    ptx::fenceAccumulators(dk[0]);
    ptx::fenceFragments(fragP);
    ptx::fenceFragments(fragDs);
    ptx::wgmmaFence();
    issueFragTimesTile<T, D, kN>(dv[0], fragP, doTile(u));
    issueFragTimesTile<T, D, kN>(dk[0], fragDs, qTile(u));
    ptx::wgmmaCommit();
    if constexpr (kDq) addDq<T, D>(p, b, at, fragDs, base, baseGeneric, wg);  // its waits retire dV's and dK's group
    ptx::wgmmaWait<0>();
    ptx::fenceAccumulators(dv[0]);
    ptx::fenceAccumulators(dk[0]);
    ptx::fenceFragments(fragP);
    ptx::fenceFragments(fragDs);
    ptx::mbarArrive(barrier(bars.empty, stageOf<C::kStages>(u).stage));
    // Refill the stage once the other warpgroup released it too (it never waits on this one).
    const bool loaded = threadIdx.x != 0 || u + C::kStages >= total || load.tile(u + C::kStages);
    __syncwarp();
    if (!loaded) return fail();
  }

  // dV staged through the warpgroup's K rows, dK (times the scale) through its V rows.
  const float one[1][2] = {{1.f, 1.f}}, scale[1][2] = {{p.scale, p.scale}};
  const int64_t ld = int64_t(p.kvHeads) * D, row = (int64_t(b.s.start) + b.k0 + row0) * ld + int64_t(b.g) * D;
  storeWarpgroupRows<T, D>(dv, one, baseGeneric + C::kKOffset, wg, p.dv + row, ld, b.nk - row0);
  storeWarpgroupRows<T, D>(dk, scale, baseGeneric + C::kVOffset, wg, p.dk + row, ld, b.nk - row0);
}

// One CTA of the kernel; smem: the dynamic shared memory (its shared address need not be aligned).
template <typename T, int D, bool kDq>
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
      ptx::mbarInit(barrier(bars.empty, s), kThreads);
    }
    ptx::fenceBarrierInit();
  }
  __syncthreads();
  const Loader<D> load{&mapQ, &mapK, &mapV, &mapDo, b, base, bars};
  consume<T, D, kDq>(p, b, base, smem + (base - raw), bars, load, threadIdx.x / kWarpgroup);
}

}  // namespace seqtune::gpu::attn::hopper

#endif  // SEQTUNE_HOPPER_CODE
