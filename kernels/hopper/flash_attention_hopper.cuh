// Device building blocks shared by the Hopper attention kernels (flash_attention_hopper.cu, the
// forward; flash_attention_hopper_bwd.cu, the backward): the two wgmma products every consumer
// warpgroup runs on the layouts of flash_attention_hopper_layout.h, and the epilogue that stages a
// warpgroup's rows through its own block rows for 16-byte stores. The sm_90a device pass and the
// host emulator only (SEQTUNE_HOPPER_CODE).
#pragma once
#include <cstdint>

#include "kernels/hopper/flash_attention_hopper_layout.h"
#include "kernels/attention/flash_attention_mma.cuh"
#include "kernels/hopper/hopper_pipeline.cuh"
#include "kernels/hopper/hopper_ptx.cuh"

#if defined(SEQTUNE_HOPPER_CODE)

namespace seqtune::gpu::attn::hopper {

namespace ptx = seqtune::hopper::ptx;

// acc = (warpgroup wg's 64 block rows) · (the kN tile rows)ᵀ over D: S = Q·Kᵀ, Sᵀ = K·Qᵀ, dPᵀ = V·dOᵀ.
// Issues the wgmmas only: the caller fences before and commits after.
template <typename T, int D, int kN>
__device__ __forceinline__ void issueBlockTimesTile(float (&acc)[kN / 8][4], uint32_t block, int wg, uint32_t tile) {
  using seqtune::hopper::encodeDesc;
  using seqtune::hopper::kKMajorLbo;
  using seqtune::hopper::kSbo;
#pragma unroll
  for (int s = 0; s < D / kMmaK; ++s) {
    const uint64_t a = encodeDesc(block + blockDescStart<D>(wg, s), kKMajorLbo, kSbo);
    const uint64_t b = encodeDesc(tile + tileKMajorStart<D, kN>(s), kKMajorLbo, kSbo);
    ptx::wgmmaSS<T, 0, 0, kN>(acc, a, b, s > 0);
  }
}

// acc += frag · tile, the tile's kRows rows being the K dimension and frag the 64 x kRows A operand
// in registers (accToA of an accumulator): O += P·V, dV += Pᵀ·dO, dK += dSᵀ·Q.
template <typename T, int D, int kRows>
__device__ __forceinline__ void issueFragTimesTile(float (&acc)[D / 8][4], const uint32_t (&frag)[kRows / 16][4],
                                                   uint32_t tile) {
  using seqtune::hopper::encodeDesc;
#pragma unroll
  for (int kk = 0; kk < kRows / kMmaK; ++kk) {
    const uint64_t b = encodeDesc(tile + tileMnMajorStart(kk), tileMnMajorLbo<D, kRows>(), seqtune::hopper::kSbo);
    ptx::wgmmaRS<T, 1, D>(acc, frag[kk], b, 1);
  }
}

// Waits for a "full" phase; the warp leaves together (wgmma is .sync.aligned).
__device__ __forceinline__ bool waitFull(uint32_t bar, StageUse use) {
  const bool ok = seqtune::hopper::waitPhase(seqtune::hopper::barrier(bar, use.stage), use.parity);
  __syncwarp();
  return ok;
}

// Stores warpgroup wg's accumulator rows times scale[0][half] as T: this warp's 16 rows (those
// below `valid`) to dst (row r at dst + r * ld). Staged through the warpgroup's block rows (of
// `block`, the generic address of the block region) once every warp of the warpgroup is past the
// wgmmas that read them.
template <typename T, int D>
__device__ __forceinline__ void storeWarpgroupRows(const float (&acc)[1][D / 8][4], const float (&scale)[1][2],
                                                   unsigned char* block, int wg, T* dst, int64_t ld, int valid) {
  ptx::namedBarrierSync(1 + wg, kWarpgroup);
  T* staging = reinterpret_cast<T*>(block + wg * Block<D>::kWarpgroupBytes);
  storeRows<T, 1, D / 8, D>(acc, scale, staging, 16 * ((threadIdx.x / 32) % 4), dst, ld, valid);
}

}  // namespace seqtune::gpu::attn::hopper

#endif  // SEQTUNE_HOPPER_CODE
