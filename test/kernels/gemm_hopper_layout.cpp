// Host checks of the Hopper GEMM's index math (kernels/hopper/gemm_hopper_layout.h), run by
// gemm-hopper-layout.test.ts without a GPU. The header's functions are the ones the kernel calls;
// what they are checked against is written out independently from the documents: the swizzle,
// the wgmma descriptors and canonical layouts, and TMA's tiled boxes in hopper_models.h, and
// - the wgmma accumulator fragment (PTX ISA, "WGMMA .m64nNk16 register fragment layout for
//   accumulator matrix D").
// The emulated kernel runs whole GEMMs through those models, the header's tile order, K segments
// (kStepAt), box plan, tensor-map geometry and descriptors, and the mma.sync epilogue's quad
// transpose (gemm_layout.h), and compares with a float64 product.
//
// Usage: gemm_hopper_layout [fault], fault one of swizzle (TMA writes unswizzled), kstep (wgmma
// reads the next 16 bytes), lbo (the MN-major LBO halved), order (a tile visited twice), segment
// (segment 1's K-steps keep counting from segment 0's K), segmap (segment 1 loads segment 0's
// operands): the checks must then fail. Prints "ok <check>", "FAIL <check>: ...", and "json <name> <value>" lines
// that the TypeScript test compares with its own reference; exits 1 on any failure.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "kernels/hopper/gemm_hopper_layout.h"
#include "test/kernels/hopper_models.h"
#include "test/kernels/host_report.h"

namespace hp = seqtune::gemm::hopper;
using seqtune::gemm::segmentCol;
using seqtune::gemm::segmentRow;
using seqtune::gemm::transposeReceive;
using seqtune::gemm::transposeSend;

namespace {

using hopper_models::cuteSwizzle343;
using hopper_models::decode;
using hopper_models::Desc;
using hopper_models::wgmmaAddress;

using host_report::report;

std::string gFault;

std::string fmt(const char* f, long long a = 0, long long b = 0, long long c = 0, long long d = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a, b, c, d);
  return buf;
}

// ---- swizzle and descriptors ---------------------------------------------------------------------

void checkSwizzle() {
  std::string error;
  for (uint32_t a = 0; a < (1u << 18) && error.empty(); ++a) {
    if (hp::swizzle128(a) != cuteSwizzle343(a)) error = fmt("address %lld", a);
  }
  report("swizzle128 is Swizzle<3,4,3>", error);
  error.clear();
  for (uint32_t atom = 0; atom < 8 * hp::kAtomBytes && error.empty(); atom += hp::kAtomBytes) {
    std::vector<int> hits(64, 0);
    for (uint32_t chunk = 0; chunk < 64; ++chunk) {
      const uint32_t s = hp::swizzle128(atom + 16 * chunk + 5);
      if (s / hp::kAtomBytes != atom / hp::kAtomBytes || s % 16 != 5) error = fmt("chunk %lld leaves its place", chunk);
      if ((s / 128) % 8 != chunk / 8) error = fmt("chunk %lld leaves its 128-byte row", chunk);
      ++hits[(s % hp::kAtomBytes) / 16];
    }
    for (int c = 0; c < 64; ++c) {
      if (hits[c] != 1) error = fmt("atom %lld: chunk %lld hit %lld times", atom, c, hits[c]);
    }
  }
  report("swizzle128 is a bijection of the 16-byte chunks of each 1024-byte atom", error);

  std::printf("json swizzle [");
  for (uint32_t a = 0; a < 4096; a += 16) std::printf("%s%u", a ? "," : "", hp::swizzle128(a + 3));
  std::printf("]\n");
}

void checkDescriptors() {
  std::string error;
  const uint32_t starts[] = {0, 16, 1024, 0x3fff0, 0x12340, 0x8000 + 32};
  const uint32_t offsets[] = {16, 1024, 8192, 0x3fff0};
  std::printf("json descriptors [");
  bool first = true;
  for (uint32_t s : starts) {
    for (uint32_t l : offsets) {
      for (uint32_t o : offsets) {
        const uint64_t d = hp::encodeDesc(s, l, o);
        const Desc f = decode(d);
        if (f.start != s || f.lbo != l || f.sbo != o || f.baseOffset != 0 || f.mode != 1) {
          error = fmt("start %lld lbo %lld sbo %lld", s, l, o);
        }
        std::printf("%s[%u,%u,%u,\"%llu\"]", first ? "" : ",", s, l, o, static_cast<unsigned long long>(d));
        first = false;
      }
    }
  }
  std::printf("]\n");
  report("descriptor fields round-trip (base offset 0, 128B mode)", error);

  error.clear();
  for (bool kMajor : {true, false}) {
    for (int rows : {hp::kBM, hp::kBN}) {
      const hp::OperandPlan p = hp::operandPlan(kMajor, rows);
      for (int off = 0; off < rows; off += hp::kConsumerRows) {
        for (int s = 0; s < hp::kBK / hp::kMmaK; ++s) {
          const uint32_t start = hp::descStart(p, off, s);
          if (start % 16 != 0 || start >= static_cast<uint32_t>(p.boxes * p.boxBytes)) error = fmt("start %lld", start);
          if (!kMajor && start % hp::kAtomBytes != 0) error = fmt("MN-major start %lld not on an atom", start);
        }
      }
      if (p.boxes * p.boxBytes != rows * hp::kBK * hp::kElemBytes) error = fmt("plan covers %lld bytes", p.boxes * p.boxBytes);
      if (p.boxInner * hp::kElemBytes != 128 || p.boxOuter > 256 || p.boxBytes % hp::kAtomBytes != 0) {
        error = fmt("box %lld x %lld", p.boxInner, p.boxOuter);
      }
    }
  }
  report("descriptor starts and TMA boxes within the stage, boxes 128 bytes wide", error);
}

// ---- tile order ----------------------------------------------------------------------------------

void checkTileOrder() {
  std::string error;
  const int64_t shapes[][3] = {{1, 1, 1}, {16, 8, 1}, {17, 3, 2}, {40, 501, 1}, {5, 7, 3}, {33, 33, 2}, {128, 16, 1}};
  for (const auto& s : shapes) {
    const int64_t tm = s[0], tn = s[1], batch = s[2], total = tm * tn * batch;
    std::vector<int> seen(static_cast<size_t>(total), 0);
    for (int64_t t = 0; t < total; ++t) {
      const hp::TilePos p = hp::tileAt(gFault == "order" && t == 1 ? 0 : t, tm, tn);
      if (p.m < 0 || p.m >= tm || p.n < 0 || p.n >= tn || p.batch < 0 || p.batch >= batch) {
        error = fmt("%lldx%lld: index %lld out of range", tm, tn, t);
        break;
      }
      ++seen[static_cast<size_t>((p.batch * tm + p.m) * tn + p.n)];
      // Grouped: the next index is the next row of the group, or the group's first row one column on.
      if (t + 1 < total && (t + 1) % (tm * tn) != 0 && gFault.empty()) {
        const hp::TilePos q = hp::tileAt(t + 1, tm, tn);
        const int64_t first = p.m / hp::kGroupRows * hp::kGroupRows;
        const int64_t last = (first + hp::kGroupRows < tm ? first + hp::kGroupRows : tm) - 1;
        const bool down = q.m == p.m + 1 && q.n == p.n, across = p.m == last && q.m == first && q.n == p.n + 1;
        const bool nextGroup = p.m == last && p.n == tn - 1 && q.m == last + 1 && q.n == 0;
        if (!down && !across && !nextGroup) error = fmt("%lldx%lld: index %lld -> %lld breaks the grouped order", tm, tn, t, t + 1);
      }
    }
    for (int64_t i = 0; i < total && error.empty(); ++i) {
      if (seen[static_cast<size_t>(i)] != 1) error = fmt("%lldx%lld: tile %lld visited %lld times", tm, tn, i, seen[i]);
    }
    std::printf("json tiles {\"tilesM\":%lld,\"tilesN\":%lld,\"batch\":%lld,\"order\":[", static_cast<long long>(tm),
                static_cast<long long>(tn), static_cast<long long>(batch));
    for (int64_t t = 0; t < total; ++t) {
      const hp::TilePos p = hp::tileAt(t, tm, tn);
      std::printf("%s[%lld,%lld,%lld]", t ? "," : "", static_cast<long long>(p.m), static_cast<long long>(p.n),
                  static_cast<long long>(p.batch));
    }
    std::printf("]}\n");
  }
  report("tile order: every tile once, grouped by 16 tile rows", error);
}

// ---- the emulated kernel -------------------------------------------------------------------------

// A stored operand with a unique small value per element (and a poison value in its padding).
struct Stored {
  int64_t rows, cols, ld, stride, batches;
  std::vector<int> data;
  int at(int64_t b, int64_t r, int64_t c) const { return data[static_cast<size_t>(b * stride + r * ld + c)]; }
};

Stored makeStored(int64_t rows, int64_t cols, int64_t batches, int seed) {
  Stored s{rows, cols, (cols + 7) / 8 * 8 + 8, 0, batches, {}};
  s.stride = rows * s.ld + 64;
  s.data.assign(static_cast<size_t>(s.stride * batches), 1 << 20);  // poison: any read of it shows
  for (int64_t b = 0; b < batches; ++b) {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        s.data[static_cast<size_t>(b * s.stride + r * s.ld + c)] = static_cast<int>((r * 7 + c * 13 + b * 5 + seed) % 9) - 4;
      }
    }
  }
  return s;
}

// TMA tiled load of one box of A or B into smem.
void tmaBox(std::vector<int>& smem, uint32_t dst, const Stored& s, const hp::TmaGeometry& g, int32_t c0, int32_t c1,
            int32_t c2) {
  const hopper_models::TensorMap map{{g.dims[0], g.dims[1], g.dims[2]}, {g.strides[0], g.strides[1]}, {g.box[0], g.box[1], g.box[2]}};
  hopper_models::tmaBox(smem, dst, s.data, map, c0, c1, c2, gFault != "swizzle");
}

struct Case {
  bool transA, transB;
  int64_t M, N, K, batch;
  bool sharedB;
  int grid;
  int64_t K1;  // > 0: a second K segment
};

// One K segment's operands and tensor maps.
struct Segment {
  Stored A, B;
  hp::TmaGeometry ga, gb;
};

Segment makeSegment(const Case& c, int64_t K, int seed, const hp::OperandPlan& pa, const hp::OperandPlan& pb) {
  Segment s{makeStored(c.transA ? K : c.M, c.transA ? c.M : K, c.batch, seed),
            makeStored(c.transB ? c.N : K, c.transB ? K : c.N, c.sharedB ? 1 : c.batch, seed + 1), {}, {}};
  s.ga = hp::tmaGeometry(pa, s.A.rows, s.A.cols, s.A.ld, c.batch > 1, c.batch, s.A.stride);
  s.gb = hp::tmaGeometry(pb, s.B.rows, s.B.cols, s.B.ld, !c.sharedB && c.batch > 1, c.batch, s.B.stride);
  return s;
}

// Σ_k op(A)[r, k] · op(B)[k, n] of one segment, in float64.
double segmentProduct(const Case& c, const Segment& s, int64_t K, int64_t b, int64_t r, int64_t n) {
  const int64_t bb = c.sharedB ? 0 : b;
  double sum = 0;
  for (int64_t k = 0; k < K; ++k) {
    sum += static_cast<double>(c.transA ? s.A.at(b, k, r) : s.A.at(b, r, k)) * (c.transB ? s.B.at(bb, n, k) : s.B.at(bb, k, n));
  }
  return sum;
}

// Runs the kernel's index path for one GEMM; "" when every output element is the float64 product
// and written exactly once.
std::string emulate(const Case& c) {
  const hp::OperandPlan pa = hp::operandPlan(!c.transA, hp::kBM), pb = hp::operandPlan(c.transB, hp::kBN);
  const Segment seg[2] = {makeSegment(c, c.K, 1, pa, pb), makeSegment(c, c.K1 > 0 ? c.K1 : 1, 3, pa, pb)};
  const int64_t tilesM = (c.M + hp::kBM - 1) / hp::kBM, tilesN = (c.N + hp::kBN - 1) / hp::kBN;
  const int kTiles0 = static_cast<int>((c.K + hp::kBK - 1) / hp::kBK);
  const int64_t kTiles = kTiles0 + (c.K1 + hp::kBK - 1) / hp::kBK;
  std::vector<double> out(static_cast<size_t>(c.batch * c.M * c.N), 0.0);
  std::vector<int> writes(out.size(), 0);
  const uint32_t stageBase = 3 * hp::kAtomBytes;  // any 1024-aligned shared address
  std::vector<int> smem((stageBase + hp::kStageBytes) / 2, 0);
  const int kernelSteps = hp::kBK / hp::kMmaK;

  for (int block = 0; block < c.grid; ++block) {
    for (int64_t t = block; t < tilesM * tilesN * c.batch; t += c.grid) {
      const hp::TilePos pos = hp::tileAt(t, tilesM, tilesN);
      const int32_t batchA = c.batch > 1 ? static_cast<int32_t>(pos.batch) : 0;
      const int32_t batchB = !c.sharedB && c.batch > 1 ? static_cast<int32_t>(pos.batch) : 0;
      // acc[wg][thread][j][v]
      std::vector<double> acc(static_cast<size_t>(hp::kConsumers * 128 * 32 * 4), 0.0);
      for (int kt = 0; kt < kTiles; ++kt) {
        std::fill(smem.begin(), smem.end(), -(1 << 22));  // stale data must not matter
        hp::KStep step = hp::kStepAt(kt, kTiles0);
        if (gFault == "segment") step.k0 = static_cast<int64_t>(kt) * hp::kBK;
        const Segment& sg = seg[gFault == "segmap" ? 0 : step.segment];
        for (int j = 0; j < pa.boxes; ++j) {
          int32_t c0, c1;
          hp::boxCoords(pa, j, pos.m * hp::kBM, step.k0, &c0, &c1);
          tmaBox(smem, stageBase + j * pa.boxBytes, sg.A, sg.ga, c0, c1, batchA);
        }
        for (int j = 0; j < pb.boxes; ++j) {
          int32_t c0, c1;
          hp::boxCoords(pb, j, pos.n * hp::kBN, step.k0, &c0, &c1);
          tmaBox(smem, stageBase + hp::kABytes + j * pb.boxBytes, sg.B, sg.gb, c0, c1, batchB);
        }
        for (int wg = 0; wg < hp::kConsumers; ++wg) {
          for (int s = 0; s < kernelSteps; ++s) {
            const uint32_t kstep = gFault == "kstep" ? 16 : 0;
            const uint32_t lboA = gFault == "lbo" && !pa.kMajor ? hp::descLbo(pa) / 2 : hp::descLbo(pa);
            const uint32_t lboB = gFault == "lbo" && !pb.kMajor ? hp::descLbo(pb) / 2 : hp::descLbo(pb);
            const Desc da = decode(hp::encodeDesc(stageBase + hp::descStart(pa, wg * hp::kConsumerRows, s) + kstep, lboA,
                                                  hp::descSbo(pa)));
            const Desc db = decode(hp::encodeDesc(stageBase + hp::kABytes + hp::descStart(pb, 0, s) + kstep, lboB,
                                                  hp::descSbo(pb)));
            const bool mnA = hp::transposeBit(pa) == 1, mnB = hp::transposeBit(pb) == 1;
            for (int thread = 0; thread < 128; ++thread) {
              for (int j = 0; j < 32; ++j) {
                for (int v = 0; v < 4; ++v) {
                  const int row = 16 * (thread / 32) + (thread % 32) / 4 + 8 * (v / 2);
                  const int col = 8 * j + 2 * (thread % 4) + v % 2;
                  double sum = 0;
                  for (int k = 0; k < hp::kMmaK; ++k) {
                    sum += static_cast<double>(smem[wgmmaAddress(da, mnA, row, k) / 2]) *
                           smem[wgmmaAddress(db, mnB, col, k) / 2];
                  }
                  acc[((static_cast<size_t>(wg) * 128 + thread) * 32 + j) * 4 + v] += sum;
                }
              }
            }
          }
        }
      }
      // The epilogue: segment() of gemm_epilogue.h per warp, with its quad transpose run in lockstep.
      for (int wg = 0; wg < hp::kConsumers; ++wg) {
        for (int warp = 0; warp < 4; ++warp) {
          for (int j = 0; j < hp::kBN / 16; ++j) {
            double u[32][4][2];
            for (int lane = 0; lane < 32; ++lane) {
              for (int q = 0; q < 4; ++q) {
                const int ni = 2 * j + (q & 1), h = 2 * (q >> 1);
                const size_t base = ((static_cast<size_t>(wg) * 128 + warp * 32 + lane) * 32 + ni) * 4;
                u[lane][q][0] = acc[base + h];
                u[lane][q][1] = acc[base + h + 1];
              }
            }
            struct Pair {
              double x, y;
            };
            for (int stage = 1; stage <= 2; stage <<= 1) {
              for (int q = 0; q < 4; ++q) {
                if ((q & stage) != 0) continue;
                Pair sent[32];
                for (int lane = 0; lane < 32; ++lane) {
                  Pair units[4];
                  for (int i = 0; i < 4; ++i) units[i] = {u[lane][i][0], u[lane][i][1]};
                  sent[lane] = transposeSend(units, lane, stage, q);
                }
                for (int lane = 0; lane < 32; ++lane) {
                  Pair units[4];
                  for (int i = 0; i < 4; ++i) units[i] = {u[lane][i][0], u[lane][i][1]};
                  transposeReceive(units, lane, stage, q, sent[lane ^ stage]);
                  for (int i = 0; i < 4; ++i) u[lane][i][0] = units[i].x, u[lane][i][1] = units[i].y;
                }
              }
            }
            for (int lane = 0; lane < 32; ++lane) {
              const int64_t row = pos.m * hp::kBM + wg * hp::kConsumerRows + warp * 16 + segmentRow(lane);
              const int64_t col0 = pos.n * hp::kBN + 16 * j + segmentCol(lane);
              for (int i = 0; i < 8; ++i) {
                if (row >= c.M || col0 + i >= c.N) continue;
                const size_t at = static_cast<size_t>((pos.batch * c.M + row) * c.N + col0 + i);
                out[at] = u[lane][i / 2][i % 2];
                ++writes[at];
              }
            }
          }
        }
      }
    }
  }
  for (int64_t b = 0; b < c.batch; ++b) {
    for (int64_t r = 0; r < c.M; ++r) {
      for (int64_t n = 0; n < c.N; ++n) {
        double want = segmentProduct(c, seg[0], c.K, b, r, n);
        if (c.K1 > 0) want += segmentProduct(c, seg[1], c.K1, b, r, n);
        const size_t at = static_cast<size_t>((b * c.M + r) * c.N + n);
        if (writes[at] != 1) return fmt("(%lld, %lld, %lld) written %lld times", b, r, n, writes[at]);
        if (out[at] != want) return fmt("(%lld, %lld, %lld): got %lld", b, r, n, static_cast<long long>(out[at])) + fmt(", want %lld", static_cast<long long>(want));
      }
    }
  }
  return "";
}

void checkEmulatedKernel() {
  // The last three have a second K segment: LoRA's forward (both K-major, K1 = 3r), its dx (B
  // MN-major, K1 = 2r) and a batched one whose segment 1 spans two K-steps.
  const Case cases[] = {
      {false, false, 200, 300, 136, 1, false, 3, 0}, {true, false, 130, 520, 72, 2, false, 2, 0},
      {false, true, 257, 264, 72, 3, true, 4, 0},    {true, true, 96, 136, 200, 1, false, 1, 0},
      {false, false, 128, 256, 64, 1, false, 1, 0},  {false, true, 200, 300, 136, 1, false, 2, 48},
      {false, false, 130, 264, 200, 1, false, 1, 16}, {true, true, 136, 264, 72, 2, true, 3, 80},
  };
  for (const Case& c : cases) {
    report(fmt("emulated kernel %lldx%lldx%lld", c.M, c.N, c.K) + fmt(" batch %lld transA %lld transB %lld", c.batch, c.transA, c.transB) +
               (c.K1 > 0 ? fmt(" segment K1 %lld", c.K1) : std::string()),
           emulate(c));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) gFault = argv[1];
  checkSwizzle();
  checkDescriptors();
  checkTileOrder();
  checkEmulatedKernel();
  return host_report::failures == 0 ? 0 : 1;
}
