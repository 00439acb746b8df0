// The Hopper GEMM's device code (gemm_hopper.cu launches it; a host compiler sees it too, for the
// emulated test): the producer and the consumer warpgroups of one persistent block. See
// gemm_hopper.cu for the design.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#include <cuda.h>  // CUtensorMap
#endif

#include "kernels/gemm/gemm_epilogue.h"
#include "kernels/hopper/gemm_hopper_layout.h"
#include "kernels/hopper/hopper_pipeline.cuh"
#include "kernels/hopper/hopper_ptx.cuh"

namespace seqtune::gemm::hopper {

struct Params {
  int64_t M, N;
  int64_t tilesM, tilesN, tiles;  // tiles: tilesM · tilesN · batch
  int kTiles, kTiles0;  // all K-steps; those of segment 0 (kStepAt), the rest are segment 1's
  bool aBatched, bBatched;  // false: the operand is shared by every batch (batch coordinate 0)
  int* fault;               // null: trap on a stall
};

using seqtune::hopper::kFaultNoSm90a;
using seqtune::hopper::kFaultStall;
using seqtune::hopper::reportFault;

}  // namespace seqtune::gemm::hopper

#if defined(SEQTUNE_HOPPER_CODE)

namespace seqtune::gemm::hopper {

namespace ptx = seqtune::hopper::ptx;
using seqtune::hopper::barrier;
using seqtune::hopper::waitPhase;
using Ring = seqtune::hopper::Ring<kStages>;

__device__ __forceinline__ void loadOperand(const CUtensorMap* map, const OperandPlan& plan, uint32_t dst, uint32_t bar,
                                            int64_t mn0, int64_t k0, int32_t batch) {
#pragma unroll
  for (int j = 0; j < plan.boxes; ++j) {
    int32_t c0 = 0, c1 = 0;
    boxCoords(plan, j, mn0, k0, &c0, &c1);
    ptx::tmaLoad3d(dst + j * plan.boxBytes, map, bar, c0, c1, batch);
  }
}

// One thread: fills the ring, waiting for each stage to be released before refilling it (the
// first lap waits on parity 1 of fresh barriers, which passes at once).
// The tensor maps of both K segments: a[s], b[s] for segment s (segment 1's may repeat segment 0's
// when there is none).
struct Maps {
  const CUtensorMap* a[2];
  const CUtensorMap* b[2];
};

template <bool TA, bool TB>
__device__ __forceinline__ void produce(const Maps& maps, const Params& p, uint32_t stages, uint32_t full,
                                        uint32_t empty) {
  constexpr OperandPlan pa = operandPlan(!TA, kBM), pb = operandPlan(TB, kBN);
  Ring ring;
  for (int64_t t = blockIdx.x; t < p.tiles; t += gridDim.x) {
    const TilePos pos = tileAt(t, p.tilesM, p.tilesN);
    const int32_t batchA = p.aBatched ? static_cast<int32_t>(pos.batch) : 0;
    const int32_t batchB = p.bBatched ? static_cast<int32_t>(pos.batch) : 0;
    for (int kt = 0; kt < p.kTiles; ++kt, ring.advance()) {
      if (!waitPhase(barrier(empty, ring.stage), ring.phase ^ 1u)) return reportFault(p.fault, kFaultStall);
      const uint32_t bar = barrier(full, ring.stage), dst = stages + ring.stage * kStageBytes;
      ptx::mbarArriveExpectTx(bar, kStageBytes);  // out-of-bounds box elements count too
      const KStep step = kStepAt(kt, p.kTiles0);
      loadOperand(maps.a[step.segment], pa, dst, bar, pos.m * kBM, step.k0, batchA);
      loadOperand(maps.b[step.segment], pb, dst + kABytes, bar, pos.n * kBN, step.k0, batchB);
    }
  }
}

// One consumer warpgroup (wg 0 or 1): rows [64·wg, 64·wg + 64) of each tile.
template <typename T, bool TA, bool TB>
__device__ __forceinline__ void consume(const Params& p, const LinearOut& o, uint32_t stages, uint32_t full,
                                        uint32_t empty, int wg) {
  constexpr OperandPlan pa = operandPlan(!TA, kBM), pb = operandPlan(TB, kBN);
  constexpr int kSteps = kBK / kMmaK;
  const int thread = threadIdx.x % kWarpgroup, warp = thread / 32, lane = thread % 32;
  const LinearEpilogue<T, kExtNone> epi{o, {}};
  float acc[kBN / 8][4];  // zeroed once so no register is read uninitialised; each tile resets it
#pragma unroll
  for (int j = 0; j < kBN / 8; ++j) {
#pragma unroll
    for (int v = 0; v < 4; ++v) acc[j][v] = 0.f;
  }
  Ring ring;
  for (int64_t t = blockIdx.x; t < p.tiles; t += gridDim.x) {
    const TilePos pos = tileAt(t, p.tilesM, p.tilesN);
    int previous = 0;
    for (int kt = 0; kt < p.kTiles; ++kt) {
      if (!waitPhase(barrier(full, ring.stage), ring.phase)) {
        ptx::wgmmaWait<0>();  // exit with nothing in flight
        return reportFault(p.fault, kFaultStall);
      }
      __syncwarp();  // wgmma is .sync.aligned: the warp leaves the wait loop together
      const uint32_t a = stages + ring.stage * kStageBytes, b = a + kABytes;
      ptx::fenceAccumulators(acc);
      ptx::wgmmaFence();
#pragma unroll
      for (int s = 0; s < kSteps; ++s) {
        const uint64_t descA = encodeDesc(a + descStart(pa, wg * kConsumerRows, s), descLbo(pa), descSbo(pa));
        const uint64_t descB = encodeDesc(b + descStart(pb, 0, s), descLbo(pb), descSbo(pb));
        // The tile's first step overwrites what the previous tile left in acc.
        ptx::wgmmaSS<T, transposeBit(pa), transposeBit(pb), kBN>(acc, descA, descB, kt > 0 || s > 0);
      }
      ptx::wgmmaCommit();
      ptx::wgmmaWait<1>();  // the previous K-step's group has finished reading its stage
      ptx::fenceAccumulators(acc);
      if (kt > 0) ptx::mbarArrive(barrier(empty, previous));
      previous = ring.stage;
      ring.advance();
    }
    ptx::wgmmaWait<0>();
    ptx::fenceAccumulators(acc);
    ptx::mbarArrive(barrier(empty, previous));

    const int64_t m0 = pos.m * kBM, n0 = pos.n * kBN;
    const TileCtx ctx{m0, n0, p.M, p.N, pos.batch, 0, lane, 0, 0};
    const int64_t row = m0 + wg * kConsumerRows + warp * 16 + segmentRow(lane);
#pragma unroll
    for (int j = 0; j < kBN / 16; ++j) {
      float v[8];
      segment(acc, j, lane, v);  // shuffles: every lane takes part
#pragma unroll
      for (int i = 0; i < 8; ++i) v[i] *= o.alpha;
      if (row < p.M) epi.store(row, n0 + 16 * j + segmentCol(lane), ctx, v);
    }
  }
}

// One persistent block; smem: the dynamic shared memory (its shared address need not be aligned).
template <typename T, bool TA, bool TB>
__device__ __forceinline__ void gemmCta(const Maps& maps, const Params& p, const LinearOut& o, unsigned char* smem) {
  // TMA's and wgmma's swizzle work on absolute shared addresses: stages start on 1024 bytes.
  const uint32_t stages = (ptx::smemAddress(smem) + kAtomBytes - 1) & ~static_cast<uint32_t>(kAtomBytes - 1);
  const uint32_t full = stages + kStages * kStageBytes, empty = full + 8 * kStages;
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      ptx::mbarInit(barrier(full, s), 1);                         // the producer's arrive + the bytes
      ptx::mbarInit(barrier(empty, s), kConsumers * kWarpgroup);  // every consumer thread
    }
    ptx::fenceBarrierInit();
  }
  __syncthreads();
  if (threadIdx.x < kWarpgroup) {
    ptx::setMaxRegsDec<kProducerRegs>();
    if (threadIdx.x == 0) produce<TA, TB>(maps, p, stages, full, empty);
  } else {
    ptx::setMaxRegsInc<kConsumerRegs>();
    consume<T, TA, TB>(p, o, stages, full, empty, threadIdx.x / kWarpgroup - 1);
  }
}

}  // namespace seqtune::gemm::hopper

#endif  // SEQTUNE_HOPPER_CODE
