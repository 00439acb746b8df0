// The Hopper attention forward kernel (sm_90a) and its launch; flash_attention_hopper.h says when
// attentionForward uses it. FlashAttention-3's structure, per CTA of 3 warpgroups (384 threads):
// - one CTA per block of 128 queries of one head of one document (the grid and the block search of
//   the FlashAttention-2 kernel, flash_attention_layout.h), the costliest blocks first;
// - warpgroup 0 produces: after setmaxnreg.dec one thread loads the block's Q once, then walks the
//   key tiles the block sees and issues TMA loads of each K and V tile (128 keys) into a 2-stage
//   ring, K and V on separate "full" mbarriers so S = Q·Kᵀ can start before V has landed;
// - warpgroups 1 and 2 consume, 64 query rows each, after setmaxnreg.inc: S = Q·Kᵀ by wgmma from
//   shared memory, the online softmax in registers (the FlashAttention-2 kernel's softmaxTile), and
//   O += P·V by wgmma with P straight from registers (its accumulator layout is wgmma's A layout);
// - the softmax of tile t overlaps the P·V wgmma of tile t - 1: S(t) and P(t-1)·V(t-1) are issued
//   back to back, the exponentials of S(t) run while P·V runs, and only then is O rescaled;
// - the epilogue normalises O, writes lse, and stages O through the warpgroup's own Q rows for
//   16-byte stores.
// Rows past the document inside a K or V tile are other documents' (or TMA's zeros past the
// tensor): their scores are masked to -inf, so their P is exactly 0 and they add nothing (unless
// they hold an infinity or NaN, which would already be wrong in their own document).
#include <cuda_runtime.h>

#include <string>
#include <type_traits>

#include "kernels/flash_attention_hopper.cuh"
#include "kernels/flash_attention_hopper.h"
#include "kernels/flash_attention_launch.cuh"
#include "kernels/hopper_host.h"

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

#if defined(SEQTUNE_SM90A)

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

// One thread: Q once, then K and V of every key tile, each stage refilled once both consumer
// warpgroups released it.
template <int D>
__device__ __forceinline__ void produce(const CUtensorMap* mapQ, const CUtensorMap* mapK, const CUtensorMap* mapV,
                                        const QueryBlock& b, uint32_t base, const Barriers<D>& bars, int* fault) {
  using C = FwdConfig<D>;
  using Ti = typename C::Ti;
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
  auto load = [&](const CUtensorMap* map, uint32_t tiles, uint32_t full, uint32_t empty, int t) {
    const StageUse use = stageOf<C::kStages>(t);
    if (!waitPhase(barrier(empty, use.stage), use.parity ^ 1u)) return false;
    const uint32_t bar = barrier(full, use.stage);
    ptx::mbarArriveExpectTx(bar, Ti::kBytes);
#pragma unroll
    for (int c = 0; c < Ti::kChunks; ++c) {
      const BoxAt box = tileBox<D, C::kTileRows>(c, int64_t(b.s.start) + int64_t(t) * C::kTileRows, b.g);
      ptx::tmaLoad3d(tiles + use.stage * Ti::kBytes + box.offset, map, bar, box.col, box.head, box.row);
    }
    return true;
  };
  for (int t = 0; t < b.tiles.count; ++t) {
    if (!load(mapK, base + C::kKOffset, bars.kFull, bars.kEmpty, t) ||
        !load(mapV, base + C::kVOffset, bars.vFull, bars.vEmpty, t)) {
      return reportFault(fault, kFaultStall);
    }
  }
}

// One consumer warpgroup (wg 0 or 1): query rows [64 wg, 64 wg + 64) of the block.
template <typename T, int D>
__device__ __forceinline__ void consume(const Params<T>& p, const QueryBlock& b, uint32_t base,
                                        unsigned char* baseGeneric, const Barriers<D>& bars, int wg) {
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

  // Each wgmma stretch (fence, issues, commit) is branch-free: ptxas otherwise re-fences and
  // serialises the wgmmas. Hence tile 0 is peeled and both waits of a tile come first (V(t-1) was
  // loaded before K(t) anyway).
  const int count = b.tiles.count;
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

#endif  // SEQTUNE_SM90A

template <typename T, int D>
__global__ void __launch_bounds__(kThreads, 1)
    hopperForwardKernel(const __grid_constant__ CUtensorMap mapQ, const __grid_constant__ CUtensorMap mapK,
                        const __grid_constant__ CUtensorMap mapV, const Params<T> p) {
#if defined(SEQTUNE_SM90A)
  using C = FwdConfig<D>;
  extern __shared__ __align__(1024) unsigned char smem[];
  const QueryBlock b = queryBlockOf<D>(p.cu, p.batch, p.tokens, p.heads, p.kvHeads, p.causal);
  if (!b.ok) return;  // the same for the whole CTA
  // TMA's and wgmma's swizzle work on absolute shared addresses: tiles start on 1024 bytes.
  const uint32_t raw = ptx::smemAddress(smem);
  const uint32_t base = (raw + kAtomBytes - 1) & ~static_cast<uint32_t>(kAtomBytes - 1);
  const Barriers<D> bars(base + C::kBarrierOffset);
  if (threadIdx.x == 0) {
    ptx::mbarInit(bars.qFull, 1);
    for (int s = 0; s < C::kStages; ++s) {
      ptx::mbarInit(barrier(bars.kFull, s), 1);  // the producer's arrive + the bytes
      ptx::mbarInit(barrier(bars.vFull, s), 1);
      ptx::mbarInit(barrier(bars.kEmpty, s), kConsumers * kWarpgroup);  // every consumer thread
      ptx::mbarInit(barrier(bars.vEmpty, s), kConsumers * kWarpgroup);
    }
    ptx::fenceBarrierInit();
  }
  __syncthreads();
  if (threadIdx.x < kWarpgroup) {
    ptx::setMaxRegsDec<kProducerRegs>();
    if (threadIdx.x == 0) produce<D>(&mapQ, &mapK, &mapV, b, base, bars, p.fault);
  } else {
    ptx::setMaxRegsInc<kConsumerRegs>();
    consume<T, D>(p, b, base, smem + (base - raw), bars, threadIdx.x / kWarpgroup - 1);
  }
#else
  reportFault(p.fault, kFaultNoSm90a);
#endif
}

}  // namespace seqtune::gpu::attn::hopper

namespace seqtune::gpu {

namespace ah = seqtune::gpu::attn::hopper;

namespace {

constexpr int64_t kMaxCoord = int64_t(1) << 31;  // TMA coordinates are int32

template <typename T, int D>
bool launch(const AttentionShape& shape, const void* q, const void* k, const void* v, const int32_t* cu, void* out,
            float* lse, cudaStream_t stream, const HopperAttentionLaunch& options) {
  using C = ah::FwdConfig<D>;
  static HopperKernelState state;
  auto kernel = ah::hopperForwardKernel<T, D>;
  if (!hopperKernelReady(kernel, C::kSmemBytes, ah::kLaunchRegs, state, options.why)) return false;
  const DType dtype = std::is_same_v<T, __nv_bfloat16> ? DType::BF16 : DType::F16;
  CUtensorMap mapQ, mapK, mapV;
  const ah::TmaGeometry gq = ah::tmaGeometry(shape.tokens, shape.heads, D, ah::kWarpgroupRows);
  const ah::TmaGeometry gkv = ah::tmaGeometry(shape.tokens, shape.kvHeads, D, C::kTileRows);
  if (!encodeTensorMap(&mapQ, dtype, q, gq.dims, gq.strides, gq.box, options.why) ||
      !encodeTensorMap(&mapK, dtype, k, gkv.dims, gkv.strides, gkv.box, options.why) ||
      !encodeTensorMap(&mapV, dtype, v, gkv.dims, gkv.strides, gkv.box, options.why)) {
    return false;
  }
  const ah::Params<T> p{static_cast<T*>(out), lse, cu, shape.tokens, static_cast<int>(shape.batch),
                        static_cast<int>(shape.heads), static_cast<int>(shape.kvHeads), attn::scaleLog2(shape),
                        shape.causal, options.fault};
  const int64_t blocks = attn::virtualBlocks(shape.batch, shape.tokens, ah::kBlockRows);
  kernel<<<dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(shape.heads)), ah::kThreads, C::kSmemBytes,
           stream>>>(mapQ, mapK, mapV, p);
  checkLaunch("attention (Hopper kernel)");
  return true;
}

}  // namespace

bool hopperAttentionSupports(const AttentionShape& shape, DType dtype) {
  if (dtype != DType::BF16 && dtype != DType::F16) return false;
  if (shape.maxTokens != 0 || (shape.headDim != 64 && shape.headDim != 128)) return false;
  if (shape.tokens <= 0 || shape.heads <= 0 || shape.kvHeads <= 0 || shape.batch <= 0) return false;
  if (shape.heads % shape.kvHeads != 0 || shape.heads > 65535) return false;
  // Row coordinates reach T + 127; the grid's x extent is B + T / 128.
  return shape.tokens + 256 < kMaxCoord && shape.heads < kMaxCoord &&
         attn::virtualBlocks(shape.batch, shape.tokens, ah::kBlockRows) <= INT32_MAX;
}

bool hopperAttentionForward(const AttentionShape& shape, DType dtype, const void* q, const void* k, const void* v,
                            const int32_t* cuSeqlens, void* out, float* lse, cudaStream_t stream,
                            const HopperAttentionLaunch& options) {
  if (!hopperAttentionSupports(shape, dtype)) {
    if (options.why) *options.why = "arguments not supported";
    return false;
  }
  bool launched = false;
  attn::dispatchKind(dtype, shape.headDim, "attention", [&](auto kind) {
    using K = decltype(kind);
    launched = launch<typename K::type, K::kHeadDim>(shape, q, k, v, cuSeqlens, out, lse, stream, options);
  });
  return launched;
}

}  // namespace seqtune::gpu
