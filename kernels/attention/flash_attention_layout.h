// Index math of the attention kernels, shared by the device code and the host test
// (test/kernels/attention_layout.cpp), which checks it without a GPU:
// - work decomposition: which document and block a CTA owns, with no host-side map;
// - which key tiles a query block visits (and which need the mask), and the converse for the
//   backward's key blocks;
// - the shared-memory swizzle and the per-lane ldmatrix row addresses;
// - where each element of an mma.m16n8k16 fragment sits in its tile.
// Plain C++ (no CUDA headers) so that g++ compiles it.
#pragma once
#include <cstdint>

#include "kernels/common/host_device.h"

namespace seqtune::gpu::attn {

// ---- documents and blocks ------------------------------------------------------------------------

// Blocks of `rows` rows over packed documents, found on the device from cuSeqlens alone. Document
// b's blocks start at virtual index b + cu[b] / rows: it needs ceil(len / rows) of them and gets
// 1 + cu[b+1] / rows - cu[b] / rows >= that, so B + T / rows virtual blocks cover every document;
// the at most B + 1 spare ones find no rows and exit at once.
SEQTUNE_HD int64_t virtualBlocks(int64_t batch, int64_t tokens, int rows) { return batch + tokens / rows; }

SEQTUNE_HD int64_t blockBase(const int32_t* cu, int b, int rows) { return b + cu[b] / rows; }

struct BlockSlot {
  int doc;    // document (sequence) b
  int block;  // block index within the document; its rows start at block * rows
};

// The last document whose first virtual block is <= v (binary search; stays in [0, batch) whatever
// cu holds, so bad metadata can make a CTA idle but never index out of bounds).
SEQTUNE_HD BlockSlot findBlock(const int32_t* cu, int batch, int rows, int64_t v) {
  int lo = 0, hi = batch - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (blockBase(cu, mid, rows) <= v) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  const int64_t block = v - blockBase(cu, lo, rows);
  return {lo, block < 0 || block > INT32_MAX ? -1 : static_cast<int>(block)};
}

// One sequence as the kernels see it: query rows [start, start + len) of the packed tensors; the
// query of local index i sits at position offset + i and the sequence has `keys` keys.
struct Sequence {
  int start, len;
  int offset;  // qOffset[b] in the cache layout, 0 in the packed one
  int keys;    // kvLens[b] in the cache layout, len in the packed one
  bool ok;     // false for bad metadata: the CTA does nothing (attentionCheckIndices reports it)
};

SEQTUNE_HD Sequence sequenceOf(const int32_t* cu, const int32_t* qOffset, const int32_t* kvLens, int b, int64_t tokens,
                               int64_t maxTokens) {
  Sequence s{cu[b], cu[b + 1] - cu[b], 0, 0, true};
  s.ok = cu[b] >= 0 && cu[b + 1] >= cu[b] && cu[b + 1] <= tokens;
  if (kvLens) {
    s.offset = qOffset[b];
    s.keys = kvLens[b];
    s.ok = s.ok && s.offset >= 0 && s.keys >= 0 && s.keys <= maxTokens;
  } else {
    s.keys = s.len;
  }
  return s;
}

// Keys [0, result) are visible to local query i (native/cpu's visibleKeys).
SEQTUNE_HD int keyLimit(bool causal, const Sequence& s, int i) {
  if (!causal) return s.keys;
  const int64_t p = static_cast<int64_t>(s.offset) + i + 1;
  return p < s.keys ? static_cast<int>(p) : s.keys;
}

// The single attend/skip predicate: query i (< len) attends key j (< keys) of the same sequence.
SEQTUNE_HD bool attends(bool causal, const Sequence& s, int i, int j) {
  return i >= 0 && i < s.len && j >= 0 && j < keyLimit(causal, s, i);
}

// Key tiles a block of query rows [q0, q0 + rows) visits: [0, count). Tiles t < unmasked are seen
// whole by every query of the block, so they skip the mask; the block must be full for that
// (padding rows are masked like everything else). Later tiles apply `attends` per element.
struct TileRange {
  int first, count, unmasked;
};

SEQTUNE_HD int ceilDiv(int a, int b) { return (a + b - 1) / b; }

SEQTUNE_HD TileRange keyTilesOf(bool causal, const Sequence& s, int q0, int rows, int tileKeys) {
  const int last = (q0 + rows < s.len ? q0 + rows : s.len) - 1;
  if (last < q0) return {0, 0, 0};
  const int hi = keyLimit(causal, s, last), lo = keyLimit(causal, s, q0);
  const int count = hi > 0 ? ceilDiv(hi, tileKeys) : 0;
  const int unmasked = q0 + rows <= s.len ? lo / tileKeys : 0;
  return {0, count, unmasked};
}

// The backward's converse (packed layout, offset 0): query tiles [first, first + count) of `rows`
// queries that see some key of [k0, k0 + keysInBlock) (causal: queries i >= k0 only). A tile skips
// the mask when it and the key block lie inside the document and every query sees every key.
SEQTUNE_HD TileRange queryTilesOf(bool causal, const Sequence& s, int k0, int keysInBlock, int rows) {
  if (k0 >= s.len || keysInBlock <= 0) return {0, 0, 0};
  const int first = causal ? k0 / rows : 0;
  return {first, ceilDiv(s.len, rows) - first, 0};
}

SEQTUNE_HD bool queryTileUnmasked(bool causal, const Sequence& s, int i0, int rows, int k0, int keysInBlock) {
  const bool inside = i0 + rows <= s.len && k0 + keysInBlock <= s.len;
  return inside && (!causal || i0 >= k0 + keysInBlock - 1);
}

// The sequence holding packed row t: the last b with cu[b] <= t, so empty sequences starting at t
// are passed over (binary search, always in [0, batch)).
SEQTUNE_HD int sequenceOfRow(const int32_t* cu, int batch, int64_t t) {
  int lo = 0, hi = batch - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (cu[mid] <= t) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

// Query head h reads kv head h / (H / Hkv) (grouped-query attention).
SEQTUNE_HD int kvHeadOf(int h, int heads, int kvHeads) { return h / (heads / kvHeads); }

// ---- decoding: split-K over the keys ------------------------------------------------------------

// Split s of n covers keys [begin, end) of [0, keys): equal runs rounded up to whole tiles, so the
// last splits may be empty.
struct KeyRange {
  int begin, end;
};

SEQTUNE_HD KeyRange splitRange(int keys, int splits, int s, int tileKeys) {
  const int per = ceilDiv(ceilDiv(keys, splits), tileKeys) * tileKeys;
  const int64_t begin = static_cast<int64_t>(per) * s, end = begin + per;
  const int b = begin < keys ? static_cast<int>(begin) : keys;
  return {b, end < keys ? static_cast<int>(end) : keys};
}

// ---- shared memory: 16-byte chunks XOR-swizzled by row ------------------------------------------

// Element offset of (row, col) in a tile of `width` 16-bit elements per row (a multiple of 64).
// Chunk c (8 elements, 16 bytes) of row r lands in chunk c ^ (r % 8) of the same 128-byte group:
// the 8 rows an ldmatrix phase reads at one logical chunk hit 8 different bank groups.
SEQTUNE_HD int swizzle(int row, int col, int width) {
  return row * width + ((((col >> 3) ^ (row & 7))) << 3) + (col & 7);
}

// ---- ldmatrix.x4 row addresses ------------------------------------------------------------------
// Lane L gives the row address of matrix L / 8, row L % 8; the functions return that row's
// (row, col) in the stored tile. The result registers r0..r3 hold matrices 0..3.

struct RowCol {
  int row, col;
};

// A operand (16 x 16 at rows m0, cols k0) of a row-major stored tile [m][k]: r0..r3 = a0..a3.
SEQTUNE_HD RowCol ldA(int lane, int m0, int k0) {
  const int j = lane >> 3, r = lane & 7;
  return {m0 + r + 8 * (j & 1), k0 + 8 * (j >> 1)};
}

// B operands of two n-tiles (n0 and n0 + 8, k rows k0..k0+15) from a tile stored [n][k]:
// {r0, r1} is the n0 tile's b0, b1 and {r2, r3} the n0 + 8 tile's.
SEQTUNE_HD RowCol ldB(int lane, int n0, int k0) {
  const int j = lane >> 3, r = lane & 7;
  return {n0 + r + 8 * (j >> 1), k0 + 8 * (j & 1)};
}

// The same B operands from a tile stored [k][n], loaded with .trans (V in P·V).
SEQTUNE_HD RowCol ldBTrans(int lane, int k0, int n0) {
  const int j = lane >> 3, r = lane & 7;
  return {k0 + r + 8 * (j & 1), n0 + 8 * (j >> 1)};
}

// The A operand (rows m0, cols k0) from a tile stored transposed, [k][m], loaded with .trans.
SEQTUNE_HD RowCol ldATrans(int lane, int m0, int k0) {
  const int j = lane >> 3, r = lane & 7;
  return {k0 + r + 8 * (j >> 1), m0 + 8 * (j & 1)};
}

// ---- mma.m16n8k16 fragments ---------------------------------------------------------------------

// Accumulator element i (0..3) of `lane`: (row, col) in the 16 x 8 tile.
SEQTUNE_HD RowCol accAt(int lane, int i) { return {(lane >> 2) + 8 * (i >> 1), 2 * (lane & 3) + (i & 1)}; }

// A register `reg` (0..3), half h (0 low, 1 high) of `lane`: (row, col) in the 16 x 16 tile.
SEQTUNE_HD RowCol fragAAt(int lane, int reg, int h) {
  return {(lane >> 2) + 8 * (reg & 1), 2 * (lane & 3) + h + 8 * (reg >> 1)};
}

// B register `reg` (0..1), half h of `lane`: (k, n) in the 16 x 8 tile.
SEQTUNE_HD RowCol fragBAt(int lane, int reg, int h) { return {2 * (lane & 3) + h + 8 * reg, lane >> 2}; }

// An A operand (16 rows x 16 cols at col 16 * kk) from the accumulators of n-tiles 2kk and
// 2kk + 1 of the same rows: A register reg takes accumulator tile 2kk + reg / 2, elements
// 2 * (reg % 2) and 2 * (reg % 2) + 1 (P of S = Q·Kᵀ reused as the A of P·V without shared memory).
SEQTUNE_HD int accTileForA(int kk, int reg) { return 2 * kk + (reg >> 1); }
SEQTUNE_HD int accElemForA(int reg, int h) { return 2 * (reg & 1) + h; }

}  // namespace seqtune::gpu::attn
