// The Hopper GEMM kernel (sm_90a) and its launch; gemm_hopper.h says when gemm() uses it.
//
// Design, per persistent block of 3 warpgroups (384 threads, one block per SM):
// - warpgroup 0 produces: after setmaxnreg.dec, one thread walks the block's tiles and K-steps and
//   issues TMA loads of the A (128 x 64) and B (256 x 64) tiles into a 4-stage ring (48 KiB per
//   stage), each stage completing on its "full" mbarrier with the byte count as transactions;
// - warpgroups 1 and 2 consume: after setmaxnreg.inc, each runs wgmma.m64n256k16 on its 64 rows of
//   the 128 x 256 tile straight from the swizzled stage (4 per stage), keeps one wgmma group in
//   flight, and releases the previous stage on its "empty" mbarrier once that group retired;
// - tiles come in the grouped order of gemm_hopper_layout.h (tileAt), block b taking b, b + grid,
//   ...; the producer runs ahead into the next tile while the consumers store this one;
// - the epilogue is the mma.sync path's (gemm_epilogue.h: alpha, bias, beta·Cin, bf16/f16/f32
//   stores masked at the edges) fed from the accumulators, which per warp have mma.sync's layout;
// - ragged M, N, K: TMA zero-fills out-of-bounds box elements (they add nothing) and the epilogue
//   masks stores; every output element is one block's sum over K in order (deterministic);
// - K segments (gemm_hopper.h's GemmKSegment): the producer's K-steps run over a second operand
//   pair after the first, from its own tensor maps (kStepAt), into the same accumulators. LoRA's
//   rank-r term rides on this as a few extra K-steps of the base product (kernels/gemm/lora.cu):
//   it costs ceil(K1/64) / ceil(K0/64) of the product (one step in 64 at K0 = 4096, r = 16) where an
//   epilogue product would need its own shared-memory tiles and a second pass over the tile;
// - every mbarrier wait gives up after a while (hopper_pipeline.cuh), so a broken pipeline fails
//   loudly instead of hanging.
// The device code is in gemm_hopper.cuh (the host test emulates it).
#include <cuda_runtime.h>

#include <string>

#include "kernels/hopper/gemm_hopper.cuh"
#include "kernels/hopper/gemm_hopper.h"
#include "kernels/gemm/gemm_linear_out.h"
#include "kernels/hopper/hopper_host.h"
#include "kernels/common/kernel_note.h"

namespace seqtune::gemm::hopper {

template <typename T, bool TA, bool TB>
__global__ void __launch_bounds__(kThreads, 1)
    hopperGemmKernel(const __grid_constant__ CUtensorMap mapA, const __grid_constant__ CUtensorMap mapB,
                     const __grid_constant__ CUtensorMap mapA1, const __grid_constant__ CUtensorMap mapB1,
                     const Params p, const LinearOut o) {
#if defined(SEQTUNE_SM90A)
  extern __shared__ __align__(1024) unsigned char smem[];
  gemmCta<T, TA, TB>(Maps{{&mapA, &mapA1}, {&mapB, &mapB1}}, p, o, smem);
#else
  reportFault(p.fault, kFaultNoSm90a);
#endif
}

}  // namespace seqtune::gemm::hopper

namespace seqtune::gpu {

namespace hp = seqtune::gemm::hopper;

namespace {

constexpr int64_t kMaxCoord = int64_t(1) << 31;  // TMA coordinates are int32
constexpr int64_t kMaxStrideBytes = int64_t(1) << 40;

// A stored operand: `rows` x `cols` elements, row stride ld, batches `stride` apart.
struct Stored {
  const void* ptr;
  int64_t rows, cols, ld, stride;
};

bool batched(const GemmArgs& g, int64_t stride) { return g.batch > 1 && stride != 0; }

bool operandOk(const GemmArgs& g, const Stored& s) {
  if (!isAligned16(s.ptr) || s.ld % 8 != 0 || s.rows >= kMaxCoord || s.cols >= kMaxCoord) return false;
  if (s.ld * 2 >= kMaxStrideBytes) return false;
  if (!batched(g, s.stride)) return true;
  // Batches one after another (what TMA's stride order expects), 16-byte aligned.
  return s.stride % 8 == 0 && s.stride >= s.rows * s.ld && s.stride * 2 < kMaxStrideBytes;
}

Stored storedA(const GemmArgs& g) {
  return {g.a, g.transA ? g.K : g.M, g.transA ? g.M : g.K, g.lda, g.strideA};
}
Stored storedB(const GemmArgs& g) {
  return {g.b, g.transB ? g.N : g.K, g.transB ? g.K : g.N, g.ldb, g.strideB};
}
// Segment 1's operands, stored as A and B are (same transposes).
Stored storedA(const GemmArgs& g, const GemmKSegment& s) {
  return {s.a, g.transA ? s.K : g.M, g.transA ? g.M : s.K, s.lda, s.strideA};
}
Stored storedB(const GemmArgs& g, const GemmKSegment& s) {
  return {s.b, g.transB ? g.N : s.K, g.transB ? s.K : g.N, s.ldb, s.strideB};
}

// The tensor maps of both segments; segment 1's repeat segment 0's when it is empty (never read).
struct SegmentMaps {
  CUtensorMap a[2], b[2];
};

bool encode(CUtensorMap* map, DType dtype, const hp::OperandPlan& plan, const GemmArgs& g, const Stored& s,
            std::string* why) {
  const hp::TmaGeometry geo = hp::tmaGeometry(plan, s.rows, s.cols, s.ld, batched(g, s.stride), g.batch, s.stride);
  return encodeTensorMap(map, dtype, s.ptr, geo.dims, geo.strides, geo.box, why);
}

template <typename T, bool TA, bool TB>
bool launch(const SegmentMaps& m, const hp::Params& p, const gemm::LinearOut& o, int ctas, cudaStream_t stream,
            std::string* why) {
  static HopperKernelState state;
  auto kernel = hp::hopperGemmKernel<T, TA, TB>;
  if (!hopperKernelReady(kernel, hp::kSmemBytes, hp::kLaunchRegs, state, why)) return false;
  profiler::noteKernel("hopper");
  kernel<<<ctas, hp::kThreads, hp::kSmemBytes, stream>>>(m.a[0], m.b[0], m.a[1], m.b[1], p, o);
  checkLaunch("gemm (Hopper kernel)");
  return true;
}

template <typename T>
bool launchTrans(const GemmArgs& g, const SegmentMaps& m, const hp::Params& p, const gemm::LinearOut& o, int ctas,
                 cudaStream_t stream, std::string* why) {
  if (g.transA) {
    return g.transB ? launch<T, true, true>(m, p, o, ctas, stream, why)
                    : launch<T, true, false>(m, p, o, ctas, stream, why);
  }
  return g.transB ? launch<T, false, true>(m, p, o, ctas, stream, why)
                  : launch<T, false, false>(m, p, o, ctas, stream, why);
}

}  // namespace

bool hopperGemmSupports(const GemmArgs& g) { return hopperGemmSupports(g, GemmKSegment{}); }

bool hopperGemmSupports(const GemmArgs& g, const GemmKSegment& s) {
  if (!isHalf(g.dtype) || g.M <= 0 || g.N <= 0 || g.K <= 0 || g.batch <= 0) return false;
  if (g.M >= kMaxCoord || g.N >= kMaxCoord || g.K >= kMaxCoord || g.batch >= kMaxCoord) return false;
  if (!operandOk(g, storedA(g)) || !operandOk(g, storedB(g))) return false;
  if (s.K == 0) return true;
  // One batched flag per operand serves both segments.
  if (s.K < 0 || s.K >= kMaxCoord || batched(g, s.strideA) != batched(g, g.strideA) ||
      batched(g, s.strideB) != batched(g, g.strideB)) {
    return false;
  }
  return operandOk(g, storedA(g, s)) && operandOk(g, storedB(g, s));
}

bool hopperGemm(const GemmArgs& g, cudaStream_t stream, const HopperGemmLaunch& launchOptions) {
  return hopperGemm(g, GemmKSegment{}, stream, launchOptions);
}

bool hopperGemm(const GemmArgs& g, const GemmKSegment& s, cudaStream_t stream, const HopperGemmLaunch& launchOptions) {
  std::string* why = launchOptions.why;
  if (!hopperGemmSupports(g, s)) {
    if (why) *why = "arguments not supported";
    return false;
  }
  const hp::OperandPlan pa = hp::operandPlan(!g.transA, hp::kBM), pb = hp::operandPlan(g.transB, hp::kBN);
  SegmentMaps maps;
  if (!encode(&maps.a[0], g.dtype, pa, g, storedA(g), why) || !encode(&maps.b[0], g.dtype, pb, g, storedB(g), why)) {
    return false;
  }
  if (s.K == 0) {
    maps.a[1] = maps.a[0];
    maps.b[1] = maps.b[0];
  } else if (!encode(&maps.a[1], g.dtype, pa, g, storedA(g, s), why) ||
             !encode(&maps.b[1], g.dtype, pb, g, storedB(g, s), why)) {
    return false;
  }

  hp::Params p{};
  p.M = g.M;
  p.N = g.N;
  p.tilesM = gemm::ceilDiv(g.M, hp::kBM);
  p.tilesN = gemm::ceilDiv(g.N, hp::kBN);
  p.tiles = p.tilesM * p.tilesN * g.batch;
  p.kTiles0 = static_cast<int>(gemm::ceilDiv(g.K, hp::kBK));
  p.kTiles = p.kTiles0 + static_cast<int>(gemm::ceilDiv(s.K, hp::kBK));
  p.aBatched = batched(g, g.strideA);
  p.bBatched = batched(g, g.strideB);
  p.fault = launchOptions.fault;
  int64_t ctas = smCount();
  if (launchOptions.maxCtas > 0 && launchOptions.maxCtas < ctas) ctas = launchOptions.maxCtas;
  if (p.tiles < ctas) ctas = p.tiles;

  const gemm::LinearOut o = linearOut(g);
  const int grid = static_cast<int>(ctas);
  if (g.dtype == DType::BF16) return launchTrans<__nv_bfloat16>(g, maps, p, o, grid, stream, why);
  return launchTrans<__half>(g, maps, p, o, grid, stream, why);
}

}  // namespace seqtune::gpu
