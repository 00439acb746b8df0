// Host checks of the CUDA attention kernels, run by attention-layout.test.ts without a GPU.
// This file: the mma.m16n8k16 fragment maps of kernels/attention/flash_attention_layout.h against the PTX
// ISA's tables, ldmatrix addressing through the swizzle (simulated as the PTX ISA defines
// ldmatrix), the warp GEMMs the kernels compose from them, and shared-memory bank conflicts.
// attention_layout_tiles.cpp: which tiles cover which (query, key) pairs.
// attention_layout_kernels.cpp: the kernel bodies themselves, run by attention_layout_emulator.cpp.
//
// Usage: attention_layout [fault], fault one of mask, swizzle, ldmatrix, split (the test's copies
// of the index code are broken) or emulator (the emulated ldmatrix is): the checks must then fail.
// Prints "ok <check>" or "FAIL <check>: ..."; exits 1 on any failure.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "kernels/attention/flash_attention_layout.h"
#include "test/kernels/host_report.h"

using namespace seqtune::gpu::attn;

// Shared with attention_layout_tiles.cpp.
std::string gFault;
void report(const std::string& check, const std::string& error) { host_report::report(check, error); }
void checkTiles();
void checkKernels();
void checkSimtKernels();  // attention_layout_simt.cpp

namespace {

std::string at(const char* what, int a, int b, int c = -1) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s (%d, %d, %d)", what, a, b, c);
  return buf;
}

// ---- the PTX ISA's fragment tables, written as the ISA states them ---------------------------------
// (mma.m16n8k16 with .bf16/.f16 inputs and .f32 accumulators; groupID = lane >> 2,
// threadID_in_group = lane % 4; a_i, b_i, c_i number the elements across the registers.)

RowCol ptxA(int lane, int i) {
  const int group = lane >> 2, tig = lane % 4;
  const int row = (i < 2 || (i >= 4 && i < 6)) ? group : group + 8;
  const int col = tig * 2 + (i & 1) + (i >= 4 ? 8 : 0);
  return {row, col};
}
RowCol ptxB(int lane, int i) { return {(lane % 4) * 2 + (i & 1) + (i >= 2 ? 8 : 0), lane >> 2}; }
RowCol ptxC(int lane, int i) { return {(lane >> 2) + (i >= 2 ? 8 : 0), (lane % 4) * 2 + (i & 1)}; }

std::string checkFragmentMaps() {
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 4; ++i) {
      const RowCol k = accAt(lane, i), p = ptxC(lane, i);
      if (k.row != p.row || k.col != p.col) return at("accumulator", lane, i);
    }
    for (int i = 0; i < 8; ++i) {
      const RowCol k = fragAAt(lane, i / 2, i % 2), p = ptxA(lane, i);
      if (k.row != p.row || k.col != p.col) return at("A", lane, i);
    }
    for (int i = 0; i < 4; ++i) {
      const RowCol k = fragBAt(lane, i / 2, i % 2), p = ptxB(lane, i);
      if (k.row != p.row || k.col != p.col) return at("B", lane, i);
    }
  }
  return "";
}

// ---- a simulated warp --------------------------------------------------------------------------------
// Elements are small integers held in int64 so every product and sum is exact.

using Regs = std::vector<std::vector<int64_t>>;  // [lane][element]: 8 for A and ldmatrix.x4, 4 for B, 4 for C

int swz(int row, int col, int width) {
  if (gFault == "swizzle") return row * width + col;  // an unswizzled tile: conflicts must show
  return swizzle(row, col, width);
}

RowCol faultyLdB(int lane, int n0, int k0) { return gFault == "ldmatrix" ? ldA(lane, n0, k0) : ldB(lane, n0, k0); }

// ldmatrix.x4 per the PTX ISA: lanes 8j..8j+7 give the row addresses of matrix j; without .trans
// lane L receives row L/4, elements 2(L%4), 2(L%4)+1 of each matrix, with .trans row 2(L%4) and
// 2(L%4)+1, element L/4. Result: 8 elements per lane, register j's low half first.
Regs ldmatrix(const std::vector<int64_t>& smem, const std::function<int(int)>& rowAddress, bool trans) {
  Regs out(32, std::vector<int64_t>(8));
  for (int lane = 0; lane < 32; ++lane) {
    for (int j = 0; j < 4; ++j) {
      for (int h = 0; h < 2; ++h) {
        const int row = trans ? 2 * (lane % 4) + h : lane / 4, col = trans ? lane / 4 : 2 * (lane % 4) + h;
        out[lane][2 * j + h] = smem[rowAddress(8 * j + row) + col];
      }
    }
  }
  return out;
}

// d += a·b for one m16n8k16 tile: a [lane][8], b [lane][4], d [lane][4] in the PTX layouts.
void mmaSim(Regs& d, const Regs& a, const Regs& b) {
  int64_t A[16][16], B[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 8; ++i) A[ptxA(lane, i).row][ptxA(lane, i).col] = a[lane][i];
    for (int i = 0; i < 4; ++i) B[ptxB(lane, i).row][ptxB(lane, i).col] = b[lane][i];
  }
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 4; ++i) {
      const RowCol rc = ptxC(lane, i);
      for (int k = 0; k < 16; ++k) d[lane][i] += A[rc.row][k] * B[k][rc.col];
    }
  }
}

Regs half(const Regs& x4, int first) {  // registers first, first + 1 of an x4 load: one B operand
  Regs b(32, std::vector<int64_t>(4));
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 4; ++i) b[lane][i] = x4[lane][2 * first + i];
  }
  return b;
}

// A random rows x width tile stored swizzled; returns the logical matrix too.
struct Tile {
  int rows, width;
  std::vector<int64_t> logical, smem;
};
Tile randomTile(std::mt19937& rng, int rows, int width) {
  Tile t{rows, width, std::vector<int64_t>(rows * width), std::vector<int64_t>(rows * width)};
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < width; ++c) {
      t.logical[r * width + c] = static_cast<int64_t>(rng() % 7) - 3;
      t.smem[swz(r, c, width)] = t.logical[r * width + c];
    }
  }
  return t;
}

std::function<int(int)> rows(const Tile& t, const std::function<RowCol(int)>& f) {
  return [&t, f](int lane) { return swz(f(lane).row, f(lane).col, t.width); };
}

// The forward's two GEMMs for one warp of 16 rows, as gemmSmemSmem and gemmRegSmem compose them:
// S = Q·Kᵀ (Q [16][D] at rows m0, K [N][D]), then O = S·V through accToA (V [N][D]); and dQ = dS·K
// with dSᵀ stored [N][64] read by ldATrans (the fast backward). Compared with plain loops.
std::string checkWarpGemms(std::mt19937& rng, int D, int N, int m0) {
  const Tile q = randomTile(rng, 64, D), k = randomTile(rng, N, D), v = randomTile(rng, N, D);
  std::vector<Regs> s(N / 8, Regs(32, std::vector<int64_t>(4, 0)));
  for (int k0 = 0; k0 < D; k0 += 16) {
    const Regs a = ldmatrix(q.smem, rows(q, [&](int l) { return ldA(l, m0, k0); }), false);
    for (int np = 0; np < N / 16; ++np) {
      const Regs b = ldmatrix(k.smem, rows(k, [&](int l) { return faultyLdB(l, 16 * np, k0); }), false);
      mmaSim(s[2 * np], a, half(b, 0));
      mmaSim(s[2 * np + 1], a, half(b, 2));
    }
  }
  for (int lane = 0; lane < 32; ++lane) {
    for (int nt = 0; nt < N / 8; ++nt) {
      for (int i = 0; i < 4; ++i) {
        const RowCol rc = accAt(lane, i);
        int64_t ref = 0;
        for (int d = 0; d < D; ++d) ref += q.logical[(m0 + rc.row) * D + d] * k.logical[(8 * nt + rc.col) * D + d];
        if (s[nt][lane][i] != ref) return at("S = Q·Kᵀ", lane, nt, i);
      }
    }
  }
  std::vector<Regs> o(D / 8, Regs(32, std::vector<int64_t>(4, 0)));
  for (int kk = 0; kk < N / 16; ++kk) {
    Regs a(32, std::vector<int64_t>(8));
    for (int lane = 0; lane < 32; ++lane) {
      for (int reg = 0; reg < 4; ++reg) {
        for (int h = 0; h < 2; ++h) a[lane][2 * reg + h] = s[accTileForA(kk, reg)][lane][accElemForA(reg, h)];
      }
    }
    for (int np = 0; np < D / 16; ++np) {
      const Regs b = ldmatrix(v.smem, rows(v, [&](int l) { return ldBTrans(l, 16 * kk, 16 * np); }), true);
      mmaSim(o[2 * np], a, half(b, 0));
      mmaSim(o[2 * np + 1], a, half(b, 2));
    }
  }
  for (int lane = 0; lane < 32; ++lane) {
    for (int dt = 0; dt < D / 8; ++dt) {
      for (int i = 0; i < 4; ++i) {
        const RowCol rc = accAt(lane, i);
        int64_t ref = 0;
        for (int j = 0; j < N; ++j) {
          int64_t sj = 0;
          for (int d = 0; d < D; ++d) sj += q.logical[(m0 + rc.row) * D + d] * k.logical[j * D + d];
          ref += sj * v.logical[j * D + 8 * dt + rc.col];
        }
        if (o[dt][lane][i] != ref) return at("O = P·V", lane, dt, i);
      }
    }
  }
  // dQ rows [m0 % 64 .. +16) = dS·K, dS read transposed from dSᵀ [N][64].
  const Tile dst = randomTile(rng, N, 64);
  const int mq = m0 % 64;
  std::vector<Regs> dq(D / 8, Regs(32, std::vector<int64_t>(4, 0)));
  for (int kk = 0; kk < N / 16; ++kk) {
    const Regs a = ldmatrix(dst.smem, rows(dst, [&](int l) { return ldATrans(l, mq, 16 * kk); }), true);
    for (int np = 0; np < D / 16; ++np) {
      const Regs b = ldmatrix(k.smem, rows(k, [&](int l) { return ldBTrans(l, 16 * kk, 16 * np); }), true);
      mmaSim(dq[2 * np], a, half(b, 0));
      mmaSim(dq[2 * np + 1], a, half(b, 2));
    }
  }
  for (int lane = 0; lane < 32; ++lane) {
    for (int dt = 0; dt < D / 8; ++dt) {
      for (int i = 0; i < 4; ++i) {
        const RowCol rc = accAt(lane, i);
        int64_t ref = 0;
        for (int j = 0; j < N; ++j) ref += dst.logical[j * 64 + mq + rc.row] * k.logical[j * D + 8 * dt + rc.col];
        if (dq[dt][lane][i] != ref) return at("dQ = dS·K", lane, dt, i);
      }
    }
  }
  return "";
}

// ---- swizzle: a bijection, and conflict-free for every access pattern the kernels issue ------------

std::string checkSwizzleBijection() {
  for (int width : {64, 128}) {
    const int rowsN = 128;
    std::vector<int> seen(rowsN * width, 0);
    for (int r = 0; r < rowsN; ++r) {
      for (int c = 0; c < width; ++c) {
        const int o = swz(r, c, width);
        if (o < r * width || o >= (r + 1) * width) return at("leaves its row", width, r, c);
        if (seen[o]++) return at("collision", width, r, c);
        if (o % 8 != c % 8) return at("splits a 16-byte chunk", width, r, c);
      }
    }
  }
  return "";
}

// Shared memory serves 128 bytes per wavefront: a 16-byte access per lane runs in phases of 8
// lanes, which conflict unless their 8 chunks sit in 8 different 16-byte bank groups.
bool phaseConflictFree(const std::vector<int>& byteAddress) {
  for (size_t p = 0; p < byteAddress.size(); p += 8) {
    std::set<int> groups;
    for (size_t l = p; l < p + 8; ++l) groups.insert((byteAddress[l] / 16) % 8);
    if (groups.size() != 8) return false;
  }
  return true;
}

std::string checkBankConflicts() {
  using Fn = RowCol (*)(int, int, int);
  const std::pair<const char*, Fn> patterns[] = {
      {"ldA", ldA}, {"ldB", faultyLdB}, {"ldBTrans", ldBTrans}, {"ldATrans", ldATrans}};
  for (int width : {64, 128}) {
    for (const auto& [name, fn] : patterns) {
      for (int a = 0; a < 128; a += 16) {
        for (int b = 0; b < width; b += 16) {
          std::vector<int> bytes(32);
          for (int lane = 0; lane < 32; ++lane) {
            const RowCol rc = fn(lane, a, b);
            bytes[lane] = 2 * swz(rc.row, rc.col, width);
          }
          if (!phaseConflictFree(bytes)) return at(name, width, a, b);
        }
      }
    }
    // loadTile: thread c writes chunk c % (width / 8) of row c / (width / 8).
    std::vector<int> bytes(128);
    for (int c = 0; c < 128; ++c) bytes[c] = 2 * swz(c / (width / 8), (c % (width / 8)) * 8, width);
    if (!phaseConflictFree(bytes)) return at("cp.async tile writes", width, 0, 0);
    // storeRows: 4-byte accumulator pairs from a warp hit 32 different banks.
    for (int nt = 0; nt < width / 8; ++nt) {
      for (int half = 0; half < 2; ++half) {
        std::set<int> banks;
        for (int lane = 0; lane < 32; ++lane) {
          const RowCol rc = accAt(lane, 2 * half);
          banks.insert((2 * swz(rc.row + 16, 8 * nt + rc.col, width) / 4) % 32);
        }
        if (banks.size() != 32) return at("accumulator stores", width, nt, half);
      }
    }
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) gFault = argv[1];
  std::mt19937 rng(20261124);
  report("fragment maps match the PTX ISA tables", checkFragmentMaps());
  report("swizzle is a bijection within rows and 16-byte chunks", checkSwizzleBijection());
  report("ldmatrix phases, cp.async writes and accumulator stores are bank-conflict-free", checkBankConflicts());
  for (int D : {64, 128}) {
    for (int N : {32, 64}) {
      for (int m0 : {0, 16, 48}) {
        report("warp GEMMs through ldmatrix and the swizzle, D = " + std::to_string(D) + ", keys " +
                   std::to_string(N) + ", rows from " + std::to_string(m0),
               checkWarpGemms(rng, D, N, m0));
      }
    }
  }
  checkTiles();
  // The emulated kernels do not use the test's own index code, so the faults above leave them be;
  // "emulator" breaks the emulated ldmatrix instead.
  if (gFault.empty() || gFault == "emulator" || gFault == "hopper") checkKernels();
  if (gFault.empty() || gFault == "simt") checkSimtKernels();
  std::printf("%d failure(s)\n", host_report::failures);
  return host_report::failures == 0 ? 0 : 1;
}
