// Index math of the Hopper GEMM (kernels/hopper/gemm_hopper.cu): the tile configuration, the persistent
// tile order, the K segments, where each TMA box lands in a stage, the tensor-map geometry, and the wgmma
// descriptors' offsets (the swizzle and the descriptor encoding are hopper_layout.h's). Plain
// __host__ __device__ code, so test/kernels/gemm_hopper_layout.cpp checks the very functions the
// kernel calls on a machine without a GPU.
//
// Operands are 16-bit. A stage holds the A tile (BM x BK) and the B tile (BN x BK) in their stored
// layout: K-major operands (A not transposed, B transposed: K contiguous) as rows of 64 K-elements
// (128 B, one swizzle row), MN-major ones as boxes of 64 K-rows x 64 MN-elements. Either way the
// 128-byte swizzle repeats every 8 rows of 128 B (1024 B), and every box and tile starts on a
// 1024-byte boundary so the swizzle TMA applies and the one wgmma undoes agree.
#pragma once
#include <cstdint>

#include "kernels/gemm/gemm_layout.h"
#include "kernels/hopper/hopper_layout.h"

namespace seqtune::gemm::hopper {

using seqtune::hopper::encodeDesc;
using seqtune::hopper::kAtomBytes;
using seqtune::hopper::kElemBytes;
using seqtune::hopper::kMmaK;
using seqtune::hopper::kRowBytes;
using seqtune::hopper::kRowElems;
using seqtune::hopper::swizzle128;

// ---- configuration -------------------------------------------------------------------------------

constexpr int kBM = 128, kBN = 256, kBK = 64;
constexpr int kStages = 4;
constexpr int kConsumers = 2;                       // consumer warpgroups, 64 rows of the tile each
constexpr int kWarpgroup = 128;                     // threads
constexpr int kThreads = kWarpgroup * (1 + kConsumers);  // warpgroup 0 produces
constexpr int kConsumerRows = kBM / kConsumers;     // the M of each warpgroup's wgmma
constexpr int kABytes = kBM * kBK * kElemBytes;
constexpr int kBBytes = kBN * kBK * kElemBytes;
constexpr int kStageBytes = kABytes + kBBytes;
// Full and empty mbarrier per stage after the stages, plus slack to align the base to an atom.
constexpr int kBarrierBytes = 2 * kStages * 8;
constexpr int kSmemBytes = kStages * kStageBytes + kBarrierBytes + kAtomBytes;
// setmaxnreg: the producer needs few registers, the consumers hold 128 f32 accumulators each.
// The pool is per CTA, so the launch allocation (65536 / 384 -> 168 per thread) must cover it.
constexpr int kProducerRegs = 40, kConsumerRegs = 232;
constexpr int kLaunchRegs = 168;

static_assert(kBK == kRowElems, "a K-major row is exactly one 128-byte swizzle row");
static_assert(kStageBytes % kAtomBytes == 0 && kABytes % kAtomBytes == 0, "stages and tiles start on atoms");
static_assert(kSmemBytes <= 227 * 1024, "fits Hopper's 227 KiB of shared memory per block");
static_assert(kWarpgroup * kProducerRegs + kConsumers * kWarpgroup * kConsumerRegs <= kThreads * kLaunchRegs,
              "setmaxnreg.inc can be served from what setmaxnreg.dec releases");
static_assert(kThreads * kLaunchRegs <= 65536, "one block per SM at the launch allocation");

// ---- persistent tile order -----------------------------------------------------------------------

// Consecutive tile indices walk down kGroupRows tile rows before moving right, batch by batch; a
// persistent block takes indices blockIdx.x, + gridDim.x, ..., so the ~132 tiles in flight at
// once cover about 16 x 8 tiles (2048 rows of A, 2048 columns of B) and share their panels in L2.
constexpr int kGroupRows = 16;

struct TilePos {
  int64_t m, n, batch;  // tile row, tile column, batch
};

constexpr GEMM_HD TilePos tileAt(int64_t index, int64_t tilesM, int64_t tilesN) {
  const int64_t perBatch = tilesM * tilesN;
  const int64_t batch = index / perBatch, within = index - batch * perBatch;
  const int64_t perGroup = kGroupRows * tilesN;
  const int64_t group = within / perGroup, first = group * kGroupRows;
  const int64_t rows = tilesM - first < kGroupRows ? tilesM - first : kGroupRows;
  const int64_t inGroup = within - group * perGroup;
  return {first + inGroup % rows, inGroup / rows, batch};
}

// ---- K segments ----------------------------------------------------------------------------------

// The k-loop may run over a second operand pair after the first: C = A0·op(B0) + A1·op(B1) (LoRA's
// base product, then its rank-r term as a few extra K columns). Segment 0 takes steps [0, kTiles0),
// segment 1 the rest, each from K = 0 of its own tensor maps; TMA zero-fills segment 0's last step
// past its K, so the two never share a step and nothing is counted twice.
struct KStep {
  int segment;
  int64_t k0;  // the step's first K within its segment
};

constexpr GEMM_HD KStep kStepAt(int kt, int kTiles0) {
  if (kt < kTiles0) return {0, static_cast<int64_t>(kt) * kBK};
  return {1, static_cast<int64_t>(kt - kTiles0) * kBK};
}

// ---- one operand's stage tile --------------------------------------------------------------------

// How one operand fills its part of a stage: `boxes` TMA boxes of boxInner x boxOuter elements
// (innermost first), box j at j · boxBytes. K-major: one box {64 K, rows}. MN-major: rows / 64
// boxes {64 MN, 64 K}, since a swizzled box is at most 128 bytes wide.
struct OperandPlan {
  bool kMajor;
  int rows;  // the tile's M or N extent: kBM for A, kBN for B
  int boxInner, boxOuter, boxes, boxBytes;
};

constexpr GEMM_HD OperandPlan operandPlan(bool kMajor, int rows) {
  if (kMajor) return {true, rows, kRowElems, rows, 1, rows * kRowBytes};
  return {false, rows, kRowElems, kBK, rows / kRowElems, kBK * kRowBytes};
}

// The tensor coordinates (innermost first) of box j for the tile at (mn0, k0).
constexpr GEMM_HD void boxCoords(const OperandPlan& p, int j, int64_t mn0, int64_t k0, int32_t* c0, int32_t* c1) {
  if (p.kMajor) {
    *c0 = static_cast<int32_t>(k0);
    *c1 = static_cast<int32_t>(mn0);
  } else {
    *c0 = static_cast<int32_t>(mn0 + static_cast<int64_t>(j) * kRowElems);
    *c1 = static_cast<int32_t>(k0);
  }
}

// The tensor map of an operand stored as `storedRows` rows of `storedCols` 16-bit elements (row
// stride ld), `batch` matrices batchStride elements apart (batched false: one matrix for every
// batch). Dimensions innermost first; strides in bytes for dimensions 1 and 2.
struct TmaGeometry {
  uint64_t dims[3], strides[2];
  uint32_t box[3];
};

constexpr GEMM_HD TmaGeometry tmaGeometry(const OperandPlan& p, int64_t storedRows, int64_t storedCols, int64_t ld,
                                bool batched, int64_t batch, int64_t batchStride) {
  TmaGeometry g{};
  g.dims[0] = static_cast<uint64_t>(storedCols);
  g.dims[1] = static_cast<uint64_t>(storedRows);
  g.dims[2] = static_cast<uint64_t>(batched ? batch : 1);
  g.strides[0] = static_cast<uint64_t>(ld) * kElemBytes;
  // An unbatched operand's third stride is never stepped; it only has to be valid.
  const int64_t matrix = batched ? batchStride : (storedRows * ld + 7) / 8 * 8;
  g.strides[1] = static_cast<uint64_t>(matrix) * kElemBytes;
  g.box[0] = static_cast<uint32_t>(p.boxInner);
  g.box[1] = static_cast<uint32_t>(p.boxOuter);
  g.box[2] = 1;
  return g;
}

// ---- wgmma descriptors ---------------------------------------------------------------------------

// Byte offsets of the canonical 128B-swizzled layouts (hopper_layout.h): MN-major LBO steps to the
// next box of 64 MN-elements.
constexpr GEMM_HD uint32_t descLbo(const OperandPlan& p) {
  return p.kMajor ? seqtune::hopper::kKMajorLbo : static_cast<uint32_t>(p.boxBytes);
}
constexpr GEMM_HD uint32_t descSbo(const OperandPlan&) { return seqtune::hopper::kSbo; }

// Offset from the operand's stage tile of the wgmma operand that starts at MN-row mnOffset (a
// multiple of 64: A's consumer warpgroup) for K-step s (K = 16s .. 16s + 15); MN-major: in the box
// holding mnOffset.
constexpr GEMM_HD uint32_t descStart(const OperandPlan& p, int mnOffset, int s) {
  if (p.kMajor) return static_cast<uint32_t>(mnOffset * kRowBytes) + seqtune::hopper::kMajorStep(s);
  return static_cast<uint32_t>((mnOffset / kRowElems) * p.boxBytes) + seqtune::hopper::mnMajorStep(s);
}

// The wgmma immediates imm-trans-a / imm-trans-b: 1 for an MN-major operand.
constexpr GEMM_HD int transposeBit(const OperandPlan& p) { return p.kMajor ? 0 : 1; }

}  // namespace seqtune::gemm::hopper
