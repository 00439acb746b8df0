// Host checks of the tensor-core GEMM's index math (kernels/gemm/gemm_layout.h), the functions the
// kernels call, against the PTX ISA's definitions of ldmatrix and mma.m16n8k16 written out here
// independently. Built and run by test/kernels/gemm-layout.test.ts (host-check.ts: g++, no GPU). Prints one
// "FAIL" line per failed check, then the count, and exits 1 if any failed.
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "kernels/gemm/gemm_layout.h"

using namespace seqtune::gemm;

namespace {

long long failures = 0;
long long checks = 0;

void report(const std::string& what) {
  if (failures++ < 50) std::printf("FAIL %s\n", what.c_str());
}

// The message is only built when the check fails (the shape tests run millions of checks).
#define EXPECT(ok, message)  \
  do {                       \
    ++checks;                \
    if (!(ok)) report(message); \
  } while (0)

std::string fmt(const char* f, long long a = 0, long long b = 0, long long c = 0, long long d = 0, long long e = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a, b, c, d, e);
  return buf;
}

// ---- swizzle ---------------------------------------------------------------------------------------

void testSwizzle() {
  for (int rc : {1, 2, 4, 8, 16, 32}) {
    for (int rows : {8, 16, 32, 64, 128}) {
      std::vector<int> seen(rows * rc, 0);
      for (int r = 0; r < rows; ++r) {
        for (int c = 0; c < rc; ++c) {
          const int i = chunkIndex(r, c, rc);
          EXPECT(i >= r * rc && i < (r + 1) * rc, fmt("swizzle rc=%lld: (%lld,%lld) leaves its row", rc, r, c));
          if (i >= 0 && i < rows * rc) ++seen[i];
        }
      }
      for (int i = 0; i < rows * rc; ++i) EXPECT(seen[i] == 1, fmt("swizzle rc=%lld rows=%lld: chunk %lld hit %lld times", rc, rows, i, seen[i]));
      // One ldmatrix phase: 8 consecutive rows from a multiple of 8 at one logical chunk.
      for (int r0 = 0; r0 < rows; r0 += 8) {
        for (int c = 0; c < rc; ++c) {
          std::set<int> groups;
          for (int r = r0; r < r0 + 8; ++r) groups.insert(bankGroup(chunkIndex(r, c, rc)));
          EXPECT(groups.size() == 8, fmt("swizzle rc=%lld: rows %lld..+7 chunk %lld share bank groups", rc, r0, c));
        }
      }
      // One wavefront of 16-byte stores: 8 consecutive threads of the copy loop.
      const int threads = 128;
      for (int i = 0; i * threads < rows * rc; ++i) {
        for (int t0 = 0; t0 < threads; t0 += 8) {
          std::set<int> groups;
          int live = 0;
          for (int t = t0; t < t0 + 8; ++t) {
            const RowChunk x = copyChunk(t, i, threads, rc);
            if (x.row >= rows) continue;
            ++live;
            groups.insert(bankGroup(chunkIndex(x.row, x.chunk, rc)));
          }
          EXPECT(static_cast<int>(groups.size()) == live, fmt("copy rc=%lld: threads %lld..+7 conflict", rc, t0));
        }
      }
    }
  }
}

// ---- ldmatrix and mma fragments --------------------------------------------------------------------

// A shared-memory tile of 16-bit values stored as the kernel stores it, values identifying their
// stored (row, col).
struct SimTile {
  int rows, rc;
  std::vector<int> data;  // by element offset
  SimTile(int rows_, int rc_) : rows(rows_), rc(rc_), data(rows_ * rc_ * 8) {
    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < rc * 8; ++c) data[chunkIndex(r, c / 8, rc) * 8 + c % 8] = r * 100000 + c;
    }
  }
};

// ldmatrix.x4 per the PTX ISA: lanes 8i..8i+7 address the 8 rows of matrix i; without .trans lane l
// receives row l/4, elements 2(l%4) and 2(l%4)+1 of each matrix; with .trans, elements
// (2(l%4), l/4) and (2(l%4)+1, l/4).
void simLdmatrix(const SimTile& t, const int (&addrChunk)[32], bool trans, int (&out)[32][4][2]) {
  for (int lane = 0; lane < 32; ++lane) {
    for (int m = 0; m < 4; ++m) {
      for (int e = 0; e < 2; ++e) {
        const int row = trans ? 2 * (lane % 4) + e : lane / 4;
        const int col = trans ? lane / 4 : 2 * (lane % 4) + e;
        out[lane][m][e] = t.data[addrChunk[8 * m + row] * 8 + col];
      }
    }
  }
}

int stored(bool kMajor, int mn, int k) { return kMajor ? mn * 100000 + k : k * 100000 + mn; }

// Operand fragments of mma.m16n8k16 (.bf16/.f16) per the PTX ISA, g = lane / 4, t = lane % 4:
//   A reg j element e: row g + 8(j % 2), col 2t + e + 8(j / 2)
//   B reg j element e: row (k) 2t + e + 8j, col (n) g
void testFragments(bool operandA, bool kMajor, int tileMn, int kTile) {
  const SimTile tile = kMajor ? SimTile(tileMn, kTile / 8) : SimTile(kTile, tileMn / 8);
  for (int mn = 0; mn < tileMn; mn += 16) {
    for (int k = 0; k < kTile; k += 16) {
      int addr[32];
      for (int lane = 0; lane < 32; ++lane) {
        const RowChunk x = ldmatrixRow(operandA, kMajor, lane, mn, k);
        addr[lane] = chunkIndex(x.row, x.chunk, tile.rc);
      }
      for (int m = 0; m < 4; ++m) {
        std::set<int> groups;
        for (int r = 0; r < 8; ++r) groups.insert(bankGroup(addr[8 * m + r]));
        EXPECT(groups.size() == 8, fmt("ldmatrix: bank conflict at mn=%lld k=%lld", mn, k) +
                                       (operandA ? " A" : " B") + (kMajor ? " K-major" : " MN-major"));
      }
      int got[32][4][2];
      simLdmatrix(tile, addr, !kMajor, got);
      for (int lane = 0; lane < 32; ++lane) {
        const int g = lane / 4, t = lane % 4;
        for (int j = 0; j < 4; ++j) {
          for (int e = 0; e < 2; ++e) {
            int want;
            if (operandA) {
              want = stored(kMajor, mn + g + 8 * (j % 2), k + 2 * t + e + 8 * (j / 2));
            } else {  // regs: b0, b1 of n8 tile mn, then b0, b1 of n8 tile mn + 8
              want = stored(kMajor, mn + 8 * (j / 2) + g, k + 2 * t + e + 8 * (j % 2));
            }
            EXPECT(got[lane][j][e] == want, fmt("fragment mismatch lane %lld reg %lld elem %lld at mn=%lld k=%lld", lane, j, e, mn, k) +
                                                (operandA ? " A" : " B") + (kMajor ? " K-major" : " MN-major"));
          }
        }
      }
    }
  }
}

// Accumulators: element v of lane is (accRow, accCol); PTX: rows g, g + 8, cols 2t, 2t + 1.
void testAccumulators() {
  std::vector<int> hits(16 * 8, 0);
  for (int lane = 0; lane < 32; ++lane) {
    for (int v = 0; v < 4; ++v) {
      const int r = accRow(lane, v), c = accCol(lane, v);
      EXPECT(r == lane / 4 + 8 * (v / 2) && c == 2 * (lane % 4) + v % 2, fmt("accumulator %lld of lane %lld", v, lane));
      if (r >= 0 && r < 16 && c >= 0 && c < 8) ++hits[r * 8 + c];
    }
  }
  for (int i = 0; i < 16 * 8; ++i) EXPECT(hits[i] == 1, fmt("accumulator element %lld held %lld times", i, hits[i]));
}

// The epilogue's quad transpose, run on 32 simulated lanes in lockstep.
void testTranspose() {
  struct Unit {
    int v[2];
  };
  Unit u[32][4];
  for (int lane = 0; lane < 32; ++lane) {
    for (int q = 0; q < 4; ++q) {  // unit q = nt + 2h: accumulators 2h, 2h + 1 of n8 tile nt
      for (int c = 0; c < 2; ++c) {
        const int v = 2 * (q >> 1) + c;
        u[lane][q].v[c] = accRow(lane, v) * 16 + 8 * (q & 1) + accCol(lane, v);
      }
    }
  }
  for (int stage = 1; stage <= 2; stage <<= 1) {
    for (int q = 0; q < 4; ++q) {
      if (q & stage) continue;
      Unit sent[32];
      for (int lane = 0; lane < 32; ++lane) sent[lane] = transposeSend(u[lane], lane, stage, q);
      for (int lane = 0; lane < 32; ++lane) transposeReceive(u[lane], lane, stage, q, sent[lane ^ stage]);
    }
  }
  std::vector<int> hits(256, 0);
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 8; ++i) {
      const int want = segmentRow(lane) * 16 + segmentCol(lane) + i;
      const int got = u[lane][i / 2].v[i % 2];
      EXPECT(got == want, fmt("transpose: lane %lld value %lld holds %lld, wants %lld", lane, i, got, want));
      if (got >= 0 && got < 256) ++hits[got];
    }
  }
  for (int i = 0; i < 256; ++i) EXPECT(hits[i] == 1, fmt("transpose: element %lld held %lld times", i, hits[i]));
}

// ---- grid, splits, tiles ---------------------------------------------------------------------------

void testRaster() {
  for (int tm : {1, 3, 8, 9, 33, 129}) {
    for (int tn : {1, 2, 7, 64}) {
      std::vector<int> hits(tm * tn, 0);
      for (int64_t b = 0; b < static_cast<int64_t>(tm) * tn; ++b) {
        int m, n;
        rasterTile(b, tm, tn, &m, &n);
        const bool ok = m >= 0 && m < tm && n >= 0 && n < tn;
        EXPECT(ok, fmt("raster %lldx%lld: block %lld -> (%lld, %lld)", tm, tn, b, m, n));
        if (ok) ++hits[m * tn + n];
      }
      for (int i = 0; i < tm * tn; ++i) EXPECT(hits[i] == 1, fmt("raster %lldx%lld: tile %lld hit %lld times", tm, tn, i, hits[i]));
    }
  }
}

void testSplits() {
  for (int64_t K : {0, 1, 7, 31, 32, 33, 4095, 4096, 16384}) {
    for (int s = 1; s <= 16; ++s) {
      int64_t next = 0;
      for (int i = 0; i < s; ++i) {
        int64_t b, e;
        splitRange(K, 32, s, i, &b, &e);
        EXPECT(b == next && e >= b && e <= K, fmt("split K=%lld S=%lld: part %lld is [%lld, %lld)", K, s, i, b, e));
        EXPECT((b % 32 == 0 || b == K) && (e % 32 == 0 || e == K), fmt("split K=%lld S=%lld: part %lld off the BK grid", K, s, i));
        next = e;
      }
      EXPECT(next == K, fmt("split K=%lld S=%lld ends at %lld", K, s, next));
    }
  }
}

struct CfgDims {
  const char* name;
  int bm, bn, warpsM, warpsN, threads;
};

template <class C>
CfgDims dims(const char* name) {
  return {name, C::BM, C::BN, C::WARPS_M, C::WARPS_N, C::THREADS};
}

// Marks what one operand tile copy reads; fails on any read outside the operand or the split.
void copyTile(const TileSpan& t, int threads, int64_t storedRows, int64_t storedCols, std::vector<int>* reads,
              const std::string& what) {
  for (int tid = 0; tid < threads; ++tid) {
    for (int i = 0; i < (t.rows * t.rowChunks + threads - 1) / threads; ++i) {
      const RowChunk rc = copyChunk(tid, i, threads, t.rowChunks);
      if (rc.row >= t.rows) break;
      const int64_t gr = t.row0 + rc.row, gc = t.col0 + int64_t(rc.chunk) * kChunkElems;
      const int n = gr < t.rowLimit ? validElems(gc, t.colLimit) : 0;
      for (int e = 0; e < n; ++e) {
        const bool in = gr >= 0 && gr < storedRows && gc + e >= 0 && gc + e < storedCols;
        EXPECT(in, what + fmt(": read (%lld, %lld) outside [%lld, %lld]", gr, gc + e, storedRows, storedCols));
        if (in && reads) ++(*reads)[gr * storedCols + gc + e];
      }
    }
  }
}

// Simulates the grid of one GEMM shape: every element of op(A) and op(B) that a tile needs is read
// exactly once by it, nothing out of bounds, and every output element written by exactly one lane.
void testShape(const CfgDims& c, int64_t M, int64_t N, int64_t K, bool ta, bool tb, int splits) {
  const std::string what = std::string(c.name) + fmt(" M=%lld N=%lld K=%lld", M, N, K) + (ta ? " Aᵀ" : " A") + (tb ? " Bᵀ" : " B") +
                           fmt(" splits=%lld", splits);
  const int tilesM = static_cast<int>(ceilDiv(M, c.bm)), tilesN = static_cast<int>(ceilDiv(N, c.bn));
  std::vector<int> written(M * N, 0);
  const int64_t aRows = ta ? K : M, aCols = ta ? M : K, bRows = tb ? N : K, bCols = tb ? K : N;
  std::vector<int> aReads(aRows * aCols, 0), bReads(bRows * bCols, 0);
  for (int64_t block = 0; block < int64_t(tilesM) * tilesN; ++block) {
    int tm, tn;
    rasterTile(block, tilesM, tilesN, &tm, &tn);
    const int64_t m0 = int64_t(tm) * c.bm, n0 = int64_t(tn) * c.bn;
    const bool countA = tn == 0, countB = tm == 0;  // each operand panel counted once per grid row/column
    for (int s = 0; s < splits; ++s) {
      int64_t kb, ke;
      splitRange(K, 32, splits, s, &kb, &ke);
      for (int64_t k0 = kb; k0 < ke; k0 += 32) {
        copyTile(operandTile(!ta, c.bm, 32, m0, M, k0, ke), c.threads, aRows, aCols, countA ? &aReads : nullptr, what);
        copyTile(operandTile(tb, c.bn, 32, n0, N, k0, ke), c.threads, bRows, bCols, countB ? &bReads : nullptr, what);
      }
    }
    for (int warp = 0; warp < c.warpsM * c.warpsN; ++warp) {
      int wm, wn;
      const int wtm = c.bm / c.warpsM, wtn = c.bn / c.warpsN;
      warpOrigin(warp, c.warpsN, wtm, wtn, &wm, &wn);
      for (int lane = 0; lane < 32; ++lane) {
        for (int mi = 0; mi < wtm / 16; ++mi) {
          for (int j = 0; j < wtn / 16; ++j) {
            const int64_t row = segmentRowAt(m0, wm, mi, lane), col0 = segmentColAt(n0, wn, j, lane);
            if (row >= M) continue;
            const int n = validElems(col0, N);
            for (int e = 0; e < n; ++e) {
              const bool in = row >= 0 && col0 + e >= 0 && col0 + e < N;
              EXPECT(in, what + fmt(": lane %lld writes C(%lld, %lld)", lane, row, col0 + e));
              if (in) ++written[row * N + col0 + e];
            }
          }
        }
      }
    }
  }
  // Each count must be exactly 1; the first mismatch of each kind is reported.
  auto once = [&](const std::vector<int>& hits, int64_t cols, const char* kind) {
    for (int64_t i = 0; i < static_cast<int64_t>(hits.size()); ++i) {
      if (hits[i] == 1) continue;
      report(what + ": " + kind + fmt(" (%lld, %lld) touched %lld times", i / cols, i % cols, hits[i]));
      return false;
    }
    return true;
  };
  const bool ok = once(written, N, "C") & once(aReads, aCols, "stored A") & once(bReads, bCols, "stored B");
  EXPECT(ok, what);
}

void testShapes() {
  const CfgDims cfgs[] = {dims<Cfg128x128>("128x128"), dims<Cfg64x64>("64x64"), dims<Cfg128x64>("128x64"),
                          dims<Cfg64x128>("64x128")};
  for (const CfgDims& c : cfgs) {
    for (int64_t M : {1, 17, 65, 4097}) {
      for (int64_t K : {1, 7, 4095}) {
        if (M * K > 4097 * 1024 && c.bm == 64) continue;  // keeps the run short; 128-row tiles cover it
        for (int t = 0; t < 4; ++t) {
          const int64_t N = M == 4097 ? 24 : 130;
          testShape(c, M, N, K, t & 1, t & 2, 1);
        }
        testShape(c, M, 72, K, false, true, K >= 256 ? 5 : 1);
      }
    }
  }
}

// Fused rank-r tiles of the epilogue: conflict-free ldmatrix at every rank padding.
void testRankTiles() {
  for (int rankPad : {16, 32, 64, 128}) {
    testFragments(true, true, 128, rankPad);
    testFragments(false, true, 128, rankPad);
    testFragments(false, false, 128, rankPad);
    EXPECT((128 + 128) * rankPad * 2 <= Cfg128x128::SMEM_BYTES && (64 + 64) * rankPad * 2 <= Cfg64x64::SMEM_BYTES,
           fmt("rank %lld tiles exceed the pipeline buffers", rankPad));
  }
}

void testPlan() {
  for (int64_t M : {1, 64, 65, 2048, 16384}) {
    for (int64_t N : {1, 16, 64, 4096, 128256}) {
      for (int64_t K : {1, 64, 4096, 16384}) {
        for (bool vec : {true, false}) {
          const Plan p = planGemm(M, N, K, 1, vec, 132, true);
          EXPECT(p.splits >= 1 && p.splits <= 16, fmt("plan %lldx%lldx%lld: %lld splits", M, N, K, p.splits));
          EXPECT(vec || p.tile == Tile::k64x64, "unaligned operands must use the 64x64 element-wise path");
          if (p.splits > 1) EXPECT(ceilDiv(K, 32) / p.splits >= 4, fmt("plan K=%lld: %lld splits too thin", K, p.splits));
        }
      }
    }
  }
  EXPECT(planGemm(16384, 14336, 4096, 1, true, 132, true).tile == Tile::k128x128, "large GEMM takes 128x128");
  EXPECT(planGemm(16384, 16, 4096, 1, true, 132, true).tile == Tile::k128x64, "N = r takes 128x64");
  EXPECT(planGemm(16, 4096, 16384, 1, true, 132, true).tile == Tile::k64x128, "M = r takes 64x128");
}

}  // namespace

int main() {
  testSwizzle();
  for (bool a : {true, false}) {
    for (bool k : {true, false}) {
      testFragments(a, k, 128, 32);
      testFragments(a, k, 64, 32);
    }
  }
  testAccumulators();
  testTranspose();
  testRaster();
  testSplits();
  testShapes();
  testRankTiles();
  testPlan();
  std::printf("%s %lld checks, %lld failed\n", failures == 0 ? "ok" : "FAIL", checks, failures);
  return failures == 0 ? 0 : 1;
}
