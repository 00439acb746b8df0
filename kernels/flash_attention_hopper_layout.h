// Index math of the Hopper attention forward (kernels/flash_attention_hopper.cu): the tile
// configuration, where each TMA box of Q, K and V lands in shared memory, the tensor maps over the
// packed [T, heads, D] tensors, and the wgmma descriptors of S = Q·Kᵀ and O += P·V. Plain
// __host__ __device__ code, so test/kernels/attention_hopper_layout.cpp checks the very functions
// the kernel calls on a machine without a GPU.
//
// Shared memory holds every operand in its stored layout, 128B-swizzled (hopper_layout.h), as boxes
// of 64 columns (128 bytes) x R rows: Q and K are K-major operands (D contiguous), V is the
// MN-major B of P·V (keys are its K, D its N). Q comes in one box per (consumer warpgroup, column
// chunk), so each warpgroup's 64 query rows are one contiguous region it may reuse to stage its
// output; K and V come in one box per column chunk and stage.
#pragma once
#include <cstdint>

#include "kernels/hopper_layout.h"

namespace seqtune::gpu::attn::hopper {

using seqtune::hopper::kAtomBytes;
using seqtune::hopper::kMmaK;
using seqtune::hopper::kRowBytes;
using seqtune::hopper::kRowElems;

// ---- configuration -------------------------------------------------------------------------------

template <int D>
struct Config {
  static_assert(D == 64 || D == 128, "head dims 64 and 128");
  static constexpr int kBM = 128;  // queries per CTA: 64 per consumer warpgroup
  // Keys per tile: the N of S's wgmma, the K of P·V's. At D = 128 a 128-key tile needs more
  // registers than ptxas (CUDA 13.0) finds for the overlapped softmax: S, P and O live at once, it
  // spilled 240 bytes and serialised the wgmmas; 64 keys compile clean (bench/NOTES.md).
  static constexpr int kBN = D == 128 ? 64 : 128;
  static constexpr int kStages = 4;
  static constexpr int kConsumers = 2, kWarpgroup = 128, kThreads = kWarpgroup * (1 + kConsumers);
  static constexpr int kConsumerRows = kBM / kConsumers;
  static constexpr int kChunks = D / kRowElems;  // 64-column boxes per row
  static constexpr int kQBoxBytes = kConsumerRows * kRowBytes;
  static constexpr int kQWarpgroupBytes = kChunks * kQBoxBytes;
  static constexpr int kQBytes = kConsumers * kQWarpgroupBytes;
  static constexpr int kKvBoxBytes = kBN * kRowBytes;
  static constexpr int kKvStageBytes = kChunks * kKvBoxBytes;  // one K (or V) tile
  static constexpr int kKOffset = kQBytes, kVOffset = kKOffset + kStages * kKvStageBytes;
  static constexpr int kBarrierOffset = kVOffset + kStages * kKvStageBytes;
  // mbarriers: Q full, then K full, K empty, V full, V empty (kStages each).
  static constexpr int kBarriers = 1 + 4 * kStages;
  static constexpr int kSmemBytes = kBarrierOffset + 8 * kBarriers + kAtomBytes;  // + slack to align the base
  // setmaxnreg: the producer issues TMA from one thread; a consumer holds S (kBN / 2) and O (D / 2)
  // f32 accumulators and P (kBN / 4) packed pairs per thread. The launch allocation (65536 / 384
  // rounded down to 8: 168) must cover what the warpgroups ask for.
  static constexpr int kProducerRegs = 24, kConsumerRegs = 240, kLaunchRegs = 168;
  // The output, staged for 16-byte stores, fits the warpgroup's Q region.
  static constexpr int kStagedOutBytes = kConsumerRows * D * 2;

  static_assert(kQBoxBytes % kAtomBytes == 0 && kKvBoxBytes % kAtomBytes == 0, "boxes start on atoms");
  static_assert(kSmemBytes <= 227 * 1024, "fits Hopper's 227 KiB of shared memory per block");
  static_assert(kWarpgroup * kProducerRegs + kConsumers * kWarpgroup * kConsumerRegs <= kThreads * kLaunchRegs,
                "setmaxnreg.inc can be served from what setmaxnreg.dec releases");
  static_assert(kThreads * kLaunchRegs <= 65536, "one block per SM at the launch allocation");
  static_assert(kStagedOutBytes <= kQWarpgroupBytes, "the output staging fits the warpgroup's Q rows");
};

// ---- TMA boxes -----------------------------------------------------------------------------------

// A packed [tokens, heads, D] tensor of 16-bit elements as a tensor map, dimensions innermost
// first: {D, heads, tokens}; strides in bytes of dimensions 1 and 2; box {64 columns, 1 head, rows}.
struct TmaGeometry {
  uint64_t dims[3], strides[2];
  uint32_t box[3];
};

HOPPER_HD TmaGeometry tmaGeometry(int64_t tokens, int64_t heads, int D, int boxRows) {
  TmaGeometry g{};
  g.dims[0] = static_cast<uint64_t>(D);
  g.dims[1] = static_cast<uint64_t>(heads);
  g.dims[2] = static_cast<uint64_t>(tokens);
  g.strides[0] = static_cast<uint64_t>(D) * 2;
  g.strides[1] = static_cast<uint64_t>(heads) * D * 2;
  g.box[0] = static_cast<uint32_t>(kRowElems);
  g.box[1] = 1;
  g.box[2] = static_cast<uint32_t>(boxRows);
  return g;
}

struct BoxAt {
  uint32_t offset;         // from the tile's shared-memory base
  int32_t col, head, row;  // tensor coordinates, innermost first
};

// Q box (warpgroup wg, chunk c) of the block whose first query is packed row `row0`, head h.
template <int D>
HOPPER_HD BoxAt qBox(int wg, int c, int64_t row0, int h) {
  using C = Config<D>;
  return {static_cast<uint32_t>(wg * C::kQWarpgroupBytes + c * C::kQBoxBytes), c * kRowElems, h,
          static_cast<int32_t>(row0 + static_cast<int64_t>(wg) * C::kConsumerRows)};
}

// K or V box of chunk c of the key tile whose first key is packed row `row0`, kv head g.
template <int D>
HOPPER_HD BoxAt kvBox(int c, int64_t row0, int g) {
  return {static_cast<uint32_t>(c * Config<D>::kKvBoxBytes), c * kRowElems, g, static_cast<int32_t>(row0)};
}

// ---- wgmma descriptors ---------------------------------------------------------------------------

// S = Q·Kᵀ, K-step s (D = 16s .. 16s + 15): Q's rows of warpgroup wg and the K tile's, both
// K-major: the chunk holding column 16s, then 32 bytes per step within its rows.
template <int D>
HOPPER_HD uint32_t qDescStart(int wg, int s) {
  using C = Config<D>;
  constexpr int kStepsPerChunk = kRowElems / kMmaK;
  return static_cast<uint32_t>(wg * C::kQWarpgroupBytes + (s / kStepsPerChunk) * C::kQBoxBytes) +
         seqtune::hopper::kMajorStep(s % kStepsPerChunk);
}

template <int D>
HOPPER_HD uint32_t kDescStart(int s) {
  constexpr int kStepsPerChunk = kRowElems / kMmaK;
  return static_cast<uint32_t>((s / kStepsPerChunk) * Config<D>::kKvBoxBytes) +
         seqtune::hopper::kMajorStep(s % kStepsPerChunk);
}

// O += P·V, K-step kk (keys 16kk .. 16kk + 15): V is MN-major, 16 key rows per step, the next 64
// columns of D one box (LBO) further.
HOPPER_HD uint32_t vDescStart(int kk) { return seqtune::hopper::mnMajorStep(kk); }
template <int D>
HOPPER_HD uint32_t vDescLbo() {
  return static_cast<uint32_t>(Config<D>::kKvBoxBytes);
}

// ---- the pipeline's order ------------------------------------------------------------------------

// Key tile t uses stage t % kStages in lap t / kStages; consumers wait on "full" with the lap's
// parity, the producer on "empty" with the opposite one (a fresh barrier's previous phase).
struct StageUse {
  int stage;
  uint32_t parity;
};

template <int D>
HOPPER_HD StageUse stageOf(int t) {
  constexpr int kStages = Config<D>::kStages;
  return {t % kStages, static_cast<uint32_t>((t / kStages) & 1)};
}

}  // namespace seqtune::gpu::attn::hopper
