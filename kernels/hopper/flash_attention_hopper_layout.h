// Index math of the Hopper attention kernels (kernels/hopper/flash_attention_hopper*.cu): the tile
// configurations, where each TMA box lands in shared memory, the tensor maps over the packed
// [T, heads, D] tensors, and the wgmma descriptors. Plain __host__ __device__ code, so
// test/kernels/attention_hopper_layout.cpp checks the very functions the kernels call on a machine
// without a GPU.
//
// Both kernels have the same shape. A CTA owns a *block* of 128 rows (64 per consumer warpgroup)
// that stays in shared memory, and streams *tiles* of rows of the other side through a ring:
// - forward: the block is Q (queries), the tiles K and V: S = Q·Kᵀ, O += P·V;
// - backward: the blocks are K and V (keys), the tiles Q and dO: Sᵀ = K·Qᵀ, dPᵀ = V·dOᵀ,
//   dV += Pᵀ·dO, dK += dSᵀ·Q, and in the fast mode dQ += dS·K through a dS tile in shared memory.
// Every operand sits in its stored layout, 128B-swizzled (hopper_layout.h), as boxes of 64 columns
// (128 bytes) x R rows: a block in one box per (warpgroup, column chunk), so each warpgroup's rows
// are one contiguous region it may reuse to stage its output; a tile in one box per column chunk.
// As the first operand of S (or Sᵀ, dPᵀ) blocks and tiles are K-major (D contiguous); as the
// second operand of P·V (or Pᵀ·dO, dSᵀ·Q) a tile is MN-major (its rows are the K dimension).
#pragma once
#include <cstdint>

#include "kernels/hopper/hopper_layout.h"

namespace seqtune::gpu::attn::hopper {

using seqtune::hopper::kAtomBytes;
using seqtune::hopper::kMmaK;
using seqtune::hopper::kRowBytes;
using seqtune::hopper::kRowElems;

constexpr int kConsumers = 2, kWarpgroup = 128;
constexpr int kWarpgroupRows = 64;  // the M of every wgmma
// No producer warpgroup: with one (1 producer + 2 consumers, setmaxnreg 24 / 240), ptxas (CUDA
// 13.0) kept the consumers within the launch allocation of 168 registers, so the forward's
// 128-key tiles at D = 128 and the backward's dK, dV, Sᵀ and dPᵀ spilled. Two consumer warpgroups
// alone get up to 255 by their launch bounds; thread 0 issues the TMA loads between its tiles.
constexpr int kThreads = kConsumers * kWarpgroup;
constexpr int kBlockRows = kConsumers * kWarpgroupRows;
static_assert(kThreads * 255 <= 65536, "one block per SM at any register count");

// ---- blocks and tiles ----------------------------------------------------------------------------

template <int D>
struct Block {
  static_assert(D == 64 || D == 128, "head dims 64 and 128");
  static constexpr int kChunks = D / kRowElems;  // 64-column boxes per row
  static constexpr int kBoxBytes = kWarpgroupRows * kRowBytes;
  static constexpr int kWarpgroupBytes = kChunks * kBoxBytes;
  static constexpr int kBytes = kConsumers * kWarpgroupBytes;
  static_assert(kBoxBytes % kAtomBytes == 0, "boxes start on atoms");
  static_assert(kWarpgroupRows * D * 2 <= kWarpgroupBytes, "a warpgroup's output, staged, fits its block rows");
};

template <int D, int kRows>
struct Tile {
  static_assert(kRows % 64 == 0 && kRows <= 256, "whole swizzle atoms, one TMA box high");
  static constexpr int kChunks = D / kRowElems;
  static constexpr int kBoxBytes = kRows * kRowBytes;
  static constexpr int kBytes = kChunks * kBoxBytes;
};

// ---- configurations ------------------------------------------------------------------------------

// Forward: Q block, then the K and V rings (kStages tiles each), then the mbarriers.
template <int D>
struct FwdConfig {
  // Keys per tile: the N of S's wgmma, the K of P·V's. S, P and O live together: 160 registers at
  // D = 128, within what the producer-less CTA allows (225 registers with nvcc 13.0, no spills).
  static constexpr int kTileRows = 128;
  static constexpr int kStages = D == 128 ? 3 : 4;  // 3 x 64 KiB of K and V at D = 128
  using B = Block<D>;
  using Ti = Tile<D, kTileRows>;
  static constexpr int kKOffset = B::kBytes, kVOffset = kKOffset + kStages * Ti::kBytes;
  static constexpr int kBarrierOffset = kVOffset + kStages * Ti::kBytes;
  static constexpr int kBarriers = 1 + 4 * kStages;  // Q full; K full, K empty, V full, V empty
  static constexpr int kSmemBytes = kBarrierOffset + 8 * kBarriers + kAtomBytes;  // + slack to align the base
  static_assert(kSmemBytes <= 227 * 1024, "fits Hopper's 227 KiB of shared memory per block");
};

// Backward: the K and V blocks, the Q and dO rings, each consumer warpgroup's dS tile (the fast
// mode's dQ = dS·K reads it), then the mbarriers. One pass keeps both 64 x D accumulators (dK and
// dV) per warpgroup next to Sᵀ and dPᵀ of a 64-query tile.
template <int D>
struct BwdConfig {
  static constexpr int kTileRows = 64;
  static constexpr int kStages = D == 128 ? 4 : 6;
  using B = Block<D>;
  using Ti = Tile<D, kTileRows>;
  static constexpr int kKOffset = 0, kVOffset = B::kBytes;
  static constexpr int kQOffset = 2 * B::kBytes, kDoOffset = kQOffset + kStages * Ti::kBytes;
  static constexpr int kDsBytes = kWarpgroupRows * kTileRows * 2;  // 64 keys x 64 queries, 16-bit
  static constexpr int kDsOffset = kDoOffset + kStages * Ti::kBytes;
  static constexpr int kBarrierOffset = kDsOffset + kConsumers * kDsBytes;
  static constexpr int kBarriers = 1 + 2 * kStages;  // K/V full; tile full, tile empty
  static constexpr int kSmemBytes = kBarrierOffset + 8 * kBarriers + kAtomBytes;
  static_assert(kDsBytes == kWarpgroupRows * kRowBytes && kDsOffset % kAtomBytes == 0, "a dS tile is one box");
  static_assert(kSmemBytes <= 227 * 1024, "fits Hopper's 227 KiB of shared memory per block");
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
  uint32_t offset;         // from the block's or tile's shared-memory base
  int32_t col, head, row;  // tensor coordinates, innermost first
};

// Box (warpgroup wg, chunk c) of the block whose first row is packed row `row0`, head h.
template <int D>
HOPPER_HD BoxAt blockBox(int wg, int c, int64_t row0, int h) {
  using B = Block<D>;
  return {static_cast<uint32_t>(wg * B::kWarpgroupBytes + c * B::kBoxBytes), c * kRowElems, h,
          static_cast<int32_t>(row0 + static_cast<int64_t>(wg) * kWarpgroupRows)};
}

// Box of chunk c of the tile whose first row is packed row `row0`, head h.
template <int D, int kRows>
HOPPER_HD BoxAt tileBox(int c, int64_t row0, int h) {
  return {static_cast<uint32_t>(c * Tile<D, kRows>::kBoxBytes), c * kRowElems, h, static_cast<int32_t>(row0)};
}

// ---- wgmma descriptors ---------------------------------------------------------------------------

// K-major operands, K-step s (D = 16s .. 16s + 15): the chunk holding column 16s, then 32 bytes
// per step within its rows. A block's rows of warpgroup wg (first operands), or a tile's rows
// (second operands of S, Sᵀ, dPᵀ).
template <int D>
HOPPER_HD uint32_t blockDescStart(int wg, int s) {
  using B = Block<D>;
  constexpr int kStepsPerChunk = kRowElems / kMmaK;
  return static_cast<uint32_t>(wg * B::kWarpgroupBytes + (s / kStepsPerChunk) * B::kBoxBytes) +
         seqtune::hopper::kMajorStep(s % kStepsPerChunk);
}

template <int D, int kRows>
HOPPER_HD uint32_t tileKMajorStart(int s) {
  constexpr int kStepsPerChunk = kRowElems / kMmaK;
  return static_cast<uint32_t>((s / kStepsPerChunk) * Tile<D, kRows>::kBoxBytes) +
         seqtune::hopper::kMajorStep(s % kStepsPerChunk);
}

// A tile as the MN-major second operand of P·V (or Pᵀ·dO, dSᵀ·Q), K-step kk (tile rows
// 16kk .. 16kk + 15): 16 rows per step, the next 64 columns of D one box (LBO) further.
HOPPER_HD uint32_t tileMnMajorStart(int kk) { return seqtune::hopper::mnMajorStep(kk); }
template <int D, int kRows>
HOPPER_HD uint32_t tileMnMajorLbo() {
  return static_cast<uint32_t>(Tile<D, kRows>::kBoxBytes);
}

// ---- the backward's dQ = dS·K (fast mode) ---------------------------------------------------------

// dSᵀ of warpgroup wg (its 64 keys x the tile's 64 queries), stored from the accumulators as a box
// is: key rows of 128 bytes (64 queries), 128B-swizzled. So it is the MN-major A operand of
// dQ = dS·K (M = queries, K = keys; K-step kk at tileMnMajorStart(kk)). Byte offset, before the
// swizzle, of (key, query) from the warpgroup's dS tile at BwdConfig::kDsOffset + wg · kDsBytes.
HOPPER_HD uint32_t dsOffset(int key, int query) {
  return static_cast<uint32_t>(key * kRowBytes + query * seqtune::hopper::kElemBytes);
}

// The K block as the MN-major B operand of dQ (N = columns [64c, 64c + 64) of D, K = warpgroup
// wg's 64 keys), K-step kk: the box (wg, c), 16 key rows per step.
template <int D>
HOPPER_HD uint32_t blockMnMajorStart(int wg, int c, int kk) {
  using B = Block<D>;
  return static_cast<uint32_t>(wg * B::kWarpgroupBytes + c * B::kBoxBytes) + seqtune::hopper::mnMajorStep(kk);
}

// ---- the pipeline's order ------------------------------------------------------------------------

// The t-th tile uses stage t % kStages in lap t / kStages; consumers wait on "full" with the lap's
// parity, the loading thread on "empty" with the opposite one (a fresh barrier's previous phase).
struct StageUse {
  int stage;
  uint32_t parity;
};

template <int kStages>
HOPPER_HD StageUse stageOf(int t) {
  return {t % kStages, static_cast<uint32_t>((t / kStages) & 1)};
}

// The backward's stream: position u of a key block of kv head g walks the group's heads, each over
// the query tiles [first, first + count) of `rows` queries that see the block.
struct QueryTileAt {
  int h, i0;  // query head, first query of the tile (in the document)
};

HOPPER_HD QueryTileAt queryTileAt(int g, int group, int first, int count, int u, int rows) {
  return {g * group + u / count, (first + u % count) * rows};
}

}  // namespace seqtune::gpu::attn::hopper
