// Index math of the tensor-core GEMM (kernels/gemm/gemm_tc.h): tile configurations, the shared-memory
// swizzle, which lane feeds which row to ldmatrix, where mma.m16n8k16 puts each element, the quad
// transpose of the epilogue, block rasterisation, split-K ranges and the host-side plan. Plain
// __host__ __device__ code so test/kernels/gemm_layout.cpp checks the very functions the
// kernels call (bijections, bank groups, coverage, bounds) on a machine without a GPU.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define GEMM_HD __host__ __device__ __forceinline__
#else
#define GEMM_HD inline
#endif

namespace seqtune::gemm {

// 16-bit operands move in 16-byte chunks: one cp.async, one ldmatrix row.
constexpr int kChunkElems = 8;
constexpr int kChunkBytes = 16;
// Shared memory serves 128 bytes (8 chunks, all 32 banks) per wavefront.
constexpr int kBankGroups = 8;
// The largest LoRA rank fused into a GEMM epilogue in one launch (its tiles reuse the pipeline's
// shared memory); larger ranks run in several such launches.
constexpr int kMaxFusedRank = 128;

// ---- tile configurations -------------------------------------------------------------------------

// A block computes a BM x BN tile of C with WARPS_M x WARPS_N warps, each a (BM/WARPS_M) x
// (BN/WARPS_N) warp tile of m16n8 mma tiles, stepping K by BK through STAGES cp.async buffers.
template <int BM_, int BN_, int WARPS_M_, int WARPS_N_, int STAGES_, int MIN_BLOCKS_>
struct TileConfig {
  static constexpr int BM = BM_, BN = BN_, BK = 32;
  static constexpr int WARPS_M = WARPS_M_, WARPS_N = WARPS_N_, STAGES = STAGES_;
  static constexpr int MIN_BLOCKS = MIN_BLOCKS_;  // resident blocks per SM the register cap aims at
  static constexpr int THREADS = 32 * WARPS_M * WARPS_N;
  static constexpr int WTM = BM / WARPS_M, WTN = BN / WARPS_N;
  static constexpr int MT = WTM / 16, NT = WTN / 8;  // mma tiles per warp along M and N
  static constexpr int STAGE_BYTES = (BM + BN) * BK * 2;
  static constexpr int SMEM_BYTES = STAGE_BYTES * STAGES;
  static_assert(WTM % 16 == 0 && WTN % 16 == 0, "warp tiles are whole 16x16 ldmatrix blocks");
  static_assert((BM * BK / kChunkElems) % THREADS == 0 && (BN * BK / kChunkElems) % THREADS == 0,
                "every thread copies the same number of chunks per stage");
  // The epilogue's fused rank-r product reuses the pipeline buffers for its two tiles.
  static_assert((BM + BN) * kMaxFusedRank * 2 <= SMEM_BYTES, "fused LoRA tiles fit in the pipeline buffers");
};

// 128x128: the large-GEMM tile; 8 warps of 64x32, 4 stages (64 KiB), 2 blocks per SM (128 registers).
using Cfg128x128 = TileConfig<128, 128, 2, 4, 4, 2>;
// 64x64: small M and N (more blocks to fill the GPU) and the path for unaligned operands.
using Cfg64x64 = TileConfig<64, 64, 2, 2, 4, 4>;
// Skinny shapes of LoRA: N = r (x·Aᵀ, dy·B, dyᵀ·xa) and M = r (dxaᵀ·x).
using Cfg128x64 = TileConfig<128, 64, 4, 2, 4, 2>;
using Cfg64x128 = TileConfig<64, 128, 2, 4, 4, 2>;

enum class Tile : int { k128x128 = 0, k64x64 = 1, k128x64 = 2, k64x128 = 3 };

struct TileDims {
  int bm, bn;
};

GEMM_HD TileDims tileDims(Tile t) {
  switch (t) {
    case Tile::k128x128: return {128, 128};
    case Tile::k64x64: return {64, 64};
    case Tile::k128x64: return {128, 64};
    case Tile::k64x128: return {64, 128};
  }
  return {64, 64};
}

// ---- shared-memory swizzle -----------------------------------------------------------------------

// A tile is stored as the operand is stored in global memory: `rows` rows of `rowChunks` chunks
// (a power of two). Without a swizzle, the 8 rows one ldmatrix phase reads at a fixed chunk column
// share a bank group (8-way conflict when rows are 128 B apart). The XOR below moves the chunk by
// the row's index within its group of 8 rows; rows shorter than 128 B share a 128-byte line, so
// they XOR with the line index instead. Either way any 8 consecutive rows starting at a multiple
// of 8 land on 8 distinct bank groups, and the XOR keeps the chunk inside its row.
GEMM_HD int swizzleChunk(int row, int chunk, int rowChunks) {
  const int rowsPerLine = rowChunks >= kBankGroups ? 1 : kBankGroups / rowChunks;
  const int span = rowChunks >= kBankGroups ? kBankGroups : rowChunks;
  return chunk ^ ((row / rowsPerLine) % span);
}

// Chunk index (16-byte units from the tile's start) of logical (row, chunk).
GEMM_HD int chunkIndex(int row, int chunk, int rowChunks) { return row * rowChunks + swizzleChunk(row, chunk, rowChunks); }

// The bank group a chunk index lands on, for a tile starting on a 128-byte boundary.
GEMM_HD int bankGroup(int chunkIdx) { return chunkIdx % kBankGroups; }

// ---- global -> shared copies ---------------------------------------------------------------------

struct RowChunk {
  int row, chunk;
};

// The i-th chunk a thread copies: consecutive threads take consecutive chunks of a row, so a warp
// reads whole 64/128-byte row segments from global memory and every 8 threads (one shared-memory
// wavefront of 16-byte stores) write 8 distinct bank groups.
GEMM_HD RowChunk copyChunk(int thread, int i, int threads, int rowChunks) {
  const int c = thread + i * threads;
  return {c / rowChunks, c % rowChunks};
}

// Elements of a chunk that lie inside [0, limit) when it starts at `start`: 8, a ragged 1..7, or 0
// (the rest is zero-filled, which adds nothing to the products).
GEMM_HD int validElems(int64_t start, int64_t limit) {
  const int64_t n = limit - start;
  return n <= 0 ? 0 : (n >= kChunkElems ? kChunkElems : static_cast<int>(n));
}

// The stored region a tile holds: tile element (r, 8c + e) is the stored operand's
// (row0 + r, col0 + 8c + e), present when row0 + r < rowLimit and col0 + 8c + e < colLimit.
struct TileSpan {
  int rows, rowChunks;
  int64_t row0, rowLimit, col0, colLimit;
};

// One operand's tile for the K range [k0, k0 + kTile) (clipped at kEnd, the end of this block's
// K split) and the M or N range [mn0, mn0 + mnTile) (clipped at mnLimit). K-major operands (A not
// transposed, B transposed) store rows along M/N, MN-major ones rows along K.
GEMM_HD TileSpan operandTile(bool kMajor, int mnTile, int kTile, int64_t mn0, int64_t mnLimit, int64_t k0,
                             int64_t kEnd) {
  if (kMajor) return {mnTile, kTile / kChunkElems, mn0, mnLimit, k0, kEnd};
  return {kTile, mnTile / kChunkElems, k0, kEnd, mn0, mnLimit};
}

// ---- ldmatrix and mma fragments ------------------------------------------------------------------

// ldmatrix .x4 loads four 8x8 matrices; lanes 8i..8i+7 give the row addresses of matrix i. For a
// 16x16 A block the four matrices are (m 0-7, k 0-7), (m 8-15, k 0-7), (m 0-7, k 8-15),
// (m 8-15, k 8-15), landing in a0..a3 as mma.m16n8k16 wants them. For B, a 16(k) x 16(n) block is
// two n8 tiles: (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15) = b0, b1 of the
// first n8 tile, then b0, b1 of the second.
GEMM_HD void matrixHalves(bool operandA, int matrix, int* mnHalf, int* kHalf) {
  *mnHalf = operandA ? (matrix & 1) : (matrix >> 1);
  *kHalf = operandA ? (matrix >> 1) : (matrix & 1);
}

// The tile row and chunk whose address `lane` gives for the 16x16 block at (mn, k) of the warp's
// operand (mn: tile offset along M for A, N for B; both multiples of 16). K-major tiles (A not
// transposed, B transposed: K contiguous) hold rows of mn and are read as stored; MN-major tiles
// hold rows of k and are read with ldmatrix .trans, which hands out the transpose.
GEMM_HD RowChunk ldmatrixRow(bool operandA, bool kMajor, int lane, int mn, int k) {
  int mnHalf, kHalf;
  matrixHalves(operandA, lane >> 3, &mnHalf, &kHalf);
  const int r = lane & 7;
  if (kMajor) return {mn + 8 * mnHalf + r, k / kChunkElems + kHalf};
  return {k + 8 * kHalf + r, mn / kChunkElems + mnHalf};
}

// The warp's tile origin inside the block tile (warps laid out row-major, WARPS_N per row).
GEMM_HD void warpOrigin(int warp, int warpsN, int wtm, int wtn, int* wm, int* wn) {
  *wm = (warp / warpsN) * wtm;
  *wn = (warp % warpsN) * wtn;
}

// mma.m16n8k16 accumulator element v (0..3) of `lane`: row g or g + 8, columns 2t and 2t + 1,
// with g = lane / 4 and t = lane % 4 (PTX ISA, "Matrix Fragments for mma.m16n8k16").
GEMM_HD int accRow(int lane, int v) { return (lane >> 2) + 8 * (v >> 1); }
GEMM_HD int accCol(int lane, int v) { return 2 * (lane & 3) + (v & 1); }

// ---- epilogue quad transpose ---------------------------------------------------------------------

// After the main loop a quad (4 lanes sharing g) holds, for a 16x16 block (two n8 tiles), unit
// q = nt + 2h of each lane: the 2 values at row g + 8h, columns 8nt + 2t, +1. Transposing the 4x4
// units of the quad gives lane t all of unit t: row g + 8(t >> 1), the 8 consecutive columns
// 8(t & 1) .. +7, so the epilogue stores one 16-byte vector (two for f32) per lane and a warp
// writes whole 32-byte sectors. Two butterfly stages (lane bits 1, then 2), each swapping the
// units whose index bit differs from the lane bit; the selects depend on the lane, so no register
// array is indexed at run time. Split in send/receive so the host test can run a quad in lockstep.
GEMM_HD bool transposeHigh(int lane, int stage) { return (lane & stage) != 0; }

// Stage 1 or 2, pair q (q & stage == 0): the unit this lane sends to lane ^ stage.
template <typename U>
GEMM_HD U transposeSend(const U (&u)[4], int lane, int stage, int q) {
  return transposeHigh(lane, stage) ? u[q] : u[q | stage];
}

template <typename U>
GEMM_HD void transposeReceive(U (&u)[4], int lane, int stage, int q, U received) {
  if (transposeHigh(lane, stage)) {
    u[q] = received;
  } else {
    u[q | stage] = received;
  }
}

// Where the lane's 8 values sit after the transpose, within the 16x16 block.
GEMM_HD int segmentRow(int lane) { return (lane >> 2) + 8 * ((lane & 3) >> 1); }
GEMM_HD int segmentCol(int lane) { return 8 * (lane & 1); }

// The output row and first column of the lane's segment of 16x16 block (mi, j) of its warp tile.
GEMM_HD int64_t segmentRowAt(int64_t m0, int wm, int mi, int lane) { return m0 + wm + 16 * mi + segmentRow(lane); }
GEMM_HD int64_t segmentColAt(int64_t n0, int wn, int j, int lane) { return n0 + wn + 16 * j + segmentCol(lane); }

// ---- grid ----------------------------------------------------------------------------------------

// Tile rows per raster group: consecutive blocks walk down `kRasterGroup` tile rows before moving
// right, so the blocks resident at one time share A row panels and B column panels in L2.
constexpr int kRasterGroup = 8;

GEMM_HD void rasterTile(int64_t block, int tilesM, int tilesN, int* tm, int* tn) {
  const int64_t perGroup = static_cast<int64_t>(kRasterGroup) * tilesN;
  const int64_t group = block / perGroup;
  const int first = static_cast<int>(group * kRasterGroup);
  const int rows = tilesM - first < kRasterGroup ? tilesM - first : kRasterGroup;
  const int64_t within = block - group * perGroup;
  *tm = first + static_cast<int>(within % rows);
  *tn = static_cast<int>(within / rows);
}

// K range of split s of S: whole BK steps, the first (steps % S) splits one step longer, so every
// split but the last starts and ends on a BK boundary and together they cover [0, K) once.
GEMM_HD void splitRange(int64_t K, int bk, int splits, int s, int64_t* begin, int64_t* end) {
  const int64_t steps = (K + bk - 1) / bk;
  const int64_t base = steps / splits, extra = steps % splits;
  const int64_t first = s * base + (s < extra ? s : extra);
  const int64_t last = first + base + (s < extra ? 1 : 0);
  *begin = first * bk < K ? first * bk : K;
  *end = last * bk < K ? last * bk : K;
}

// ---- host plan -----------------------------------------------------------------------------------

struct Plan {
  Tile tile;
  int splits;  // K splits; > 1 only with a workspace for the f32 partials
};

GEMM_HD int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

GEMM_HD int64_t tileCount(Tile t, int64_t M, int64_t N, int64_t batch) {
  const TileDims d = tileDims(t);
  return ceilDiv(M, d.bm) * ceilDiv(N, d.bn) * batch;
}

// K splits for `tiles` output tiles: enough blocks for two per SM, each split at least 4 BK steps,
// at most 16 (their f32 partials cost memory and a reduction pass).
GEMM_HD int planSplits(int64_t tiles, int64_t K, int smCount) {
  const int64_t steps = ceilDiv(K, 32);
  if (tiles >= 2 * static_cast<int64_t>(smCount) || steps < 8) return 1;
  int64_t s = ceilDiv(2 * static_cast<int64_t>(smCount), tiles);
  if (s > steps / 4) s = steps / 4;
  if (s > 16) s = 16;
  return s > 1 ? static_cast<int>(s) : 1;
}

// Picks the tile and the K split. 128x128 when it fills every SM at least once (its 64 KiB of
// operands per stage halve the global traffic per FLOP of 64x64); skinny tiles when one side is
// at most 64; 64x64 otherwise, and always for unaligned operands (element-wise copies). Splits K
// (planSplits) when the tiles would leave SMs idle and the caller passed room for the partials:
// splits write f32 partials summed in split order (deterministic).
GEMM_HD Plan planGemm(int64_t M, int64_t N, int64_t K, int64_t batch, bool vec, int smCount, bool canSplit) {
  Plan p{Tile::k64x64, 1};
  if (vec) {
    if (N <= 64 && M > 64) {
      p.tile = Tile::k128x64;
    } else if (M <= 64 && N > 64) {
      p.tile = Tile::k64x128;
    } else if (tileCount(Tile::k128x128, M, N, batch) >= smCount) {
      p.tile = Tile::k128x128;
    }
  }
  if (canSplit) p.splits = planSplits(tileCount(p.tile, M, N, batch), K, smCount);
  return p;
}

}  // namespace seqtune::gemm
