// The Hopper attention forward's device code (flash_attention_hopper.cu launches it; the host test
// runs it under an emulator): the two warpgroups of one CTA, thread 0 also issuing the loads. See
// flash_attention_hopper.cu for the design.
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
struct Params {
  T* out;
  float* lse;
  const int32_t* cu;
  int64_t tokens;
  int batch, heads, kvHeads;
  float scaleLog2;
  bool causal;
  int* fault;  // null: trap on a stall
};

}  // namespace seqtune::gpu::attn::hopper

#if defined(SEQTUNE_HOPPER_CODE)

namespace seqtune::gpu::attn::hopper {

using seqtune::hopper::barrier;
using seqtune::hopper::waitPhase;

// The query block a CTA owns (flash_attention_fwd.cuh's decomposition).
struct QueryBlock {
  Sequence s;
  int q0, nq, h, g;
  TileRange tiles;
  bool ok;
};

template <int D>
__device__ __forceinline__ QueryBlock queryBlockOf(const int32_t* cu, int batch, int64_t tokens, int heads, int kvHeads,
                                                   bool causal) {
  QueryBlock b{};
  const BlockSlot slot = findBlock(cu, batch, kBlockRows, gridDim.x - 1 - int64_t(blockIdx.x));
  if (slot.block < 0) return b;
  b.s = sequenceOf(cu, nullptr, nullptr, slot.doc, tokens, 0);
  b.q0 = slot.block * kBlockRows;
  if (!b.s.ok || b.q0 >= b.s.len) return b;
  b.h = blockIdx.y;
  b.g = kvHeadOf(b.h, heads, kvHeads);
  b.nq = min(kBlockRows, b.s.len - b.q0);
  b.tiles = keyTilesOf(causal, b.s, b.q0, kBlockRows, FwdConfig<D>::kTileRows);
  b.ok = true;
  return b;
}

// Barriers after the tiles: Q full, then K full, K empty, V full, V empty (kStages each).
template <int D>
struct Barriers {
  uint32_t qFull, kFull, kEmpty, vFull, vEmpty;
  __device__ __forceinline__ explicit Barriers(uint32_t base) {
    constexpr int S = FwdConfig<D>::kStages;
    qFull = base;
    kFull = base + 8;
    kEmpty = kFull + 8 * S;
    vFull = kEmpty + 8 * S;
    vEmpty = vFull + 8 * S;
  }
};

// The loads, issued by thread 0 (no producer warpgroup: flash_attention_hopper_layout.h says why).
template <int D>
struct FwdLoader {
  const CUtensorMap *mapQ, *mapK, *mapV;
  const QueryBlock& b;
  uint32_t base;
  const Barriers<D>& bars;

  __device__ __forceinline__ void query() const {
    using C = FwdConfig<D>;
    ptx::mbarArriveExpectTx(bars.qFull, C::B::kBytes);  // out-of-bounds box elements count too
    const int64_t qRow = int64_t(b.s.start) + b.q0;
#pragma unroll
    for (int wg = 0; wg < kConsumers; ++wg) {
#pragma unroll
      for (int c = 0; c < C::B::kChunks; ++c) {
        const BoxAt box = blockBox<D>(wg, c, qRow, b.h);
        ptx::tmaLoad3d(base + box.offset, mapQ, bars.qFull, box.col, box.head, box.row);
      }
    }
  }

  // Key tile t of K (or V) into its stage, once both warpgroups released the stage's previous tile.
  __device__ __forceinline__ bool tile(bool values, int t) const {
    using C = FwdConfig<D>;
    using Ti = typename C::Ti;
    const StageUse use = stageOf<C::kStages>(t);
    if (!waitPhase(barrier(values ? bars.vEmpty : bars.kEmpty, use.stage), use.parity ^ 1u)) return false;
    const uint32_t bar = barrier(values ? bars.vFull : bars.kFull, use.stage);
    ptx::mbarArriveExpectTx(bar, Ti::kBytes);
    const uint32_t tiles = base + (values ? C::kVOffset : C::kKOffset) + use.stage * Ti::kBytes;
#pragma unroll
    for (int c = 0; c < Ti::kChunks; ++c) {
      const BoxAt box = tileBox<D, C::kTileRows>(c, int64_t(b.s.start) + int64_t(t) * C::kTileRows, b.g);
      ptx::tmaLoad3d(tiles + box.offset, values ? mapV : mapK, bar, box.col, box.head, box.row);
    }
    return true;
  }
};

// One consumer warpgroup (wg 0 or 1): query rows [64 wg, 64 wg + 64) of the block.
template <typename T, int D>
__device__ __forceinline__ void consume(const Params<T>& p, const QueryBlock& b, uint32_t base,
                                        unsigned char* baseGeneric, const Barriers<D>& bars,
                                        const FwdLoader<D>& load, int wg) {
  using C = FwdConfig<D>;
  constexpr int kN = C::kTileRows, kNT = kN / 8, kDT = D / 8;
  const int warp = (threadIdx.x / 32) % 4, lane = threadIdx.x & 31;
  const int row0 = wg * kWarpgroupRows + 16 * warp;  // this warp's first row in the block

  int limit[1][2];
  float m[1][2], l[1][2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = row0 + accAt(lane, 2 * half).row;
    limit[0][half] = r < b.nq ? keyLimit(p.causal, b.s, b.q0 + r) : 0;
    m[0][half] = -INFINITY;
    l[0][half] = 0.f;
  }
  float sc[1][kNT][4] = {}, o[1][kDT][4] = {};
  uint32_t pa[kN / 16][4];

  auto fail = [&]() {
    ptx::wgmmaWait<0>();  // exit with nothing in flight
    reportFault(p.fault, kFaultStall);
  };
  // The registers written since the last wgmma (P, the rescaled O) are final before wgmma.fence.
  auto fenceOperands = [&]() {
    ptx::fenceAccumulators(o[0]);
    ptx::fenceFragments(pa);
    ptx::wgmmaFence();
  };
  auto kTile = [&](int t) { return base + C::kKOffset + stageOf<C::kStages>(t).stage * C::Ti::kBytes; };
  auto vTile = [&](int t) { return base + C::kVOffset + stageOf<C::kStages>(t).stage * C::Ti::kBytes; };
  auto release = [&](uint32_t empty, int t) { ptx::mbarArrive(barrier(empty, stageOf<C::kStages>(t).stage)); };
  auto softmax = [&](int t, float (&alpha)[1][2]) {
    softmaxTile<1, kNT>(sc, m, l, alpha, limit, t >= b.tiles.unmasked, t * kN, p.scaleLog2);
  };

  const int count = b.tiles.count;
  // Thread 0 refills the stages that K(t) and V(t - 1) held once the other warpgroup released them
  // too (it never waits on this one), outside the wgmmas' flight.
  auto refill = [&](int t) {
    const int S = C::kStages;
    const bool ok = threadIdx.x != 0 || ((t + S >= count || load.tile(false, t + S)) &&
                                         (t < 1 || t - 1 + S >= count || load.tile(true, t - 1 + S)));
    __syncwarp();
    return ok;
  };

  // Each wgmma stretch (fence, issues, commit) is branch-free: ptxas otherwise re-fences and
  // serialises the wgmmas. Hence tile 0 is peeled and both waits of a tile come first (V(t-1) was
  // loaded before K(t) anyway).
  if (threadIdx.x == 0) {  // the first lap of the ring: its stages are free
    load.query();
    for (int t = 0; t < min(count, C::kStages); ++t) {
      load.tile(false, t);
      load.tile(true, t);
    }
  }
  __syncwarp();
  if (!waitPhase(bars.qFull, 0)) return fail();
  if (count > 0) {
    if (!waitFull(bars.kFull, stageOf<C::kStages>(0))) return fail();
    fenceOperands();
    issueBlockTimesTile<T, D, kN>(sc[0], base, wg, kTile(0));
    ptx::wgmmaCommit();
    ptx::wgmmaWait<0>();
    ptx::fenceAccumulators(sc[0]);
    release(bars.kEmpty, 0);
    float alpha[1][2];
    softmax(0, alpha);  // O is still 0: nothing to rescale
    accToA<T, kNT>(pa, sc[0]);
    if (!refill(0)) return fail();
  }
  for (int t = 1; t < count; ++t) {
    if (!waitFull(bars.kFull, stageOf<C::kStages>(t)) || !waitFull(bars.vFull, stageOf<C::kStages>(t - 1))) {
      return fail();
    }
    fenceOperands();
    issueBlockTimesTile<T, D, kN>(sc[0], base, wg, kTile(t));
    ptx::wgmmaCommit();
    issueFragTimesTile<T, D, kN>(o[0], pa, vTile(t - 1));
    ptx::wgmmaCommit();
    ptx::wgmmaWait<1>();  // S(t) is done; P(t-1)·V(t-1) may still run
    ptx::fenceAccumulators(sc[0]);
    release(bars.kEmpty, t);
    float alpha[1][2];
    softmax(t, alpha);  // overlaps P(t-1)·V(t-1)
    ptx::wgmmaWait<0>();  // P(t-1) and O are free again
    ptx::fenceAccumulators(o[0]);
    release(bars.vEmpty, t - 1);
    rescaleRows<1, kDT>(o, alpha);
    accToA<T, kNT>(pa, sc[0]);
    if (!refill(t)) return fail();
  }
  if (count > 0) {
    if (!waitFull(bars.vFull, stageOf<C::kStages>(count - 1))) return fail();
    fenceOperands();
    issueFragTimesTile<T, D, kN>(o[0], pa, vTile(count - 1));
    ptx::wgmmaCommit();
    ptx::wgmmaWait<0>();
    ptx::fenceAccumulators(o[0]);
    release(bars.vEmpty, count - 1);
  }

  float inv[1][2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const float total = quadSum(l[0][half]);
    inv[0][half] = total > 0.f ? 1.f / total : 0.f;
    const int r = row0 + accAt(lane, 2 * half).row;
    if ((lane & 3) == 0 && r < b.nq) {
      p.lse[int64_t(b.h) * p.tokens + b.s.start + b.q0 + r] =
          total > 0.f ? (m[0][half] + log2f(total)) * kLn2 : -INFINITY;
    }
  }
  const int64_t ld = int64_t(p.heads) * D;
  T* dst = p.out + (int64_t(b.s.start) + b.q0 + row0) * ld + int64_t(b.h) * D;
  storeWarpgroupRows<T, D>(o, inv, baseGeneric, wg, dst, ld, b.nq - row0);
}

// One CTA of the kernel; smem: the dynamic shared memory (its shared address need not be aligned).
template <typename T, int D>
__device__ __forceinline__ void forwardCta(const CUtensorMap& mapQ, const CUtensorMap& mapK, const CUtensorMap& mapV,
                                           const Params<T>& p, unsigned char* smem) {
  using C = FwdConfig<D>;
  const QueryBlock b = queryBlockOf<D>(p.cu, p.batch, p.tokens, p.heads, p.kvHeads, p.causal);
  if (!b.ok) return;  // the same for the whole CTA
  // TMA's and wgmma's swizzle work on absolute shared addresses: tiles start on 1024 bytes.
  const uint32_t raw = ptx::smemAddress(smem);
  const uint32_t base = (raw + kAtomBytes - 1) & ~static_cast<uint32_t>(kAtomBytes - 1);
  const Barriers<D> bars(base + C::kBarrierOffset);
  if (threadIdx.x == 0) {
    ptx::mbarInit(bars.qFull, 1);
    for (int s = 0; s < C::kStages; ++s) {
      ptx::mbarInit(barrier(bars.kFull, s), 1);  // thread 0's arrive + the bytes
      ptx::mbarInit(barrier(bars.vFull, s), 1);
      ptx::mbarInit(barrier(bars.kEmpty, s), kThreads);  // every thread
      ptx::mbarInit(barrier(bars.vEmpty, s), kThreads);
    }
    ptx::fenceBarrierInit();
  }
  __syncthreads();
  const FwdLoader<D> load{&mapQ, &mapK, &mapV, b, base, bars};
  consume<T, D>(p, b, base, smem + (base - raw), bars, load, threadIdx.x / kWarpgroup);
}

}  // namespace seqtune::gpu::attn::hopper

#endif  // SEQTUNE_HOPPER_CODE
