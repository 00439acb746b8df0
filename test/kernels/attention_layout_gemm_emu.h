// The Hopper GEMM (kernels/hopper/gemm_hopper.cuh) under the emulator's Hopper primitives
// (attention_layout_emulator.cpp includes this last): whole products through the kernel's own
// producer, consumers, stage ring, persistent tile walk, K segments and epilogue, against a float64
// product.
// The host side mirrors gemm_hopper.cu's launch (operand plans, tensor maps, Params, LinearOut).
#pragma once
#include <random>

namespace emu {

namespace hg = seqtune::gemm::hopper;

struct GemmCase {
  bool bf16, transA, transB;
  int64_t M, N, K, batch;
  bool sharedB, bias, f32Out;
  float alpha, beta;  // beta != 0: with Cin
  int ctas;           // persistent blocks: few, so each walks several tiles and laps the ring
  int64_t K1;         // > 0: a second K segment (LoRA's rank-r term) of this many K
};

// The last two are LoRA's products with their rank-r parts as segment 1, one tile each (the
// emulator is slow; the tile walk is covered above): y = x·Wᵀ + bias (K1 = 3r, r = 16) and
// dx = dy·W (B MN-major, K1 = 2r, r = 8), segment 0 ending mid-step.
const GemmCase kGemmCases[] = {
    {true, false, false, 200, 300, 136, 1, false, true, false, 1.f, 0.f, 3, 0},
    {true, true, false, 130, 520, 200, 2, false, false, true, 1.f, 0.5f, 1, 0},
    {false, false, true, 257, 264, 72, 3, true, false, false, -0.75f, 1.f, 2, 0},
    {true, true, true, 96, 136, 520, 1, false, true, false, 2.f, 0.f, 1, 0},
    {true, false, true, 96, 136, 72, 1, false, true, false, 1.f, 0.f, 1, 48},
    {true, false, false, 100, 200, 72, 1, false, false, false, 1.f, 0.f, 1, 16},
};

int hopperGemmCases() { return sizeof kGemmCases / sizeof kGemmCases[0]; }

std::string describeGemm(int index) {
  const GemmCase& c = kGemmCases[index];
  return std::to_string(c.M) + "x" + std::to_string(c.N) + "x" + std::to_string(c.K) + " batch " +
         std::to_string(c.batch) + (c.transA ? " Aᵀ" : "") + (c.transB ? " Bᵀ" : "") + (c.bf16 ? " bf16" : " f16") +
         (c.f32Out ? " -> f32" : "") + (c.bias ? " + bias" : "") + (c.beta != 0 ? " + beta·Cin" : "") +
         (c.K1 > 0 ? " + segment K1 " + std::to_string(c.K1) : "") + ", " +
         std::to_string(c.ctas) + " block(s)";
}

namespace {

// A stored operand: rows x cols (row stride ld, 8 more than cols), `batches` matrices apart.
struct GemmOperand {
  int64_t rows, cols, ld, stride, batches;
  std::vector<uint16_t> bits;
  std::vector<double> values;
};

GemmOperand gemmOperand(std::mt19937& rng, bool bf16, int64_t rows, int64_t cols, int64_t batches) {
  GemmOperand o{rows, cols, cols + 8, rows * (cols + 8), batches, {}, {}};
  o.bits.assign(static_cast<size_t>(o.stride * batches), kNan16);
  o.values.assign(static_cast<size_t>(rows * cols * batches), 0.0);
  std::uniform_int_distribution<int> pick(-64, 64);
  for (int64_t b = 0; b < batches; ++b) {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        const float v = pick(rng) / 64.f;
        o.values[static_cast<size_t>((b * rows + r) * cols + c)] = v;
        o.bits[static_cast<size_t>(b * o.stride + r * o.ld + c)] = bf16 ? seqtune::floatToBf16(v) : seqtune::floatToF16(v);
      }
    }
  }
  return o;
}

CUtensorMap gemmMap(const uint16_t* base, const hg::OperandPlan& plan, const GemmOperand& o, bool batched) {
  const hg::TmaGeometry g = hg::tmaGeometry(plan, o.rows, o.cols, o.ld, batched, o.batches, o.stride);
  return {base, {g.dims[0], g.dims[1], g.dims[2]}, {g.strides[0], g.strides[1]}, {g.box[0], g.box[1], g.box[2]}};
}

template <typename T, bool TA, bool TB>
std::string runGemm(const GemmCase& c, Options o) {
  std::mt19937 rng(7 + static_cast<unsigned>(c.M));
  const GemmOperand a = gemmOperand(rng, c.bf16, TA ? c.K : c.M, TA ? c.M : c.K, c.batch);
  const GemmOperand b = gemmOperand(rng, c.bf16, TB ? c.N : c.K, TB ? c.K : c.N, c.sharedB ? 1 : c.batch);
  const GemmOperand bias = gemmOperand(rng, c.bf16, 1, c.N, 1);
  const GemmOperand cin = gemmOperand(rng, c.bf16, c.M, c.N, c.batch);
  Guarded<uint16_t> ga(a.bits, kNan16), gb(b.bits, kNan16), gbias(bias.bits, kNan16);
  std::vector<float> cinF32(cin.bits.size());
  for (size_t i = 0; i < cin.bits.size(); ++i) cinF32[i] = halfValue(cin.bits[i], c.bf16);
  Guarded<uint16_t> gcin16(cin.bits, kNan16);
  Guarded<float> gcin32(cinF32, kNan32);
  const int64_t ldc = c.N + 3, strideC = c.M * ldc + 5;  // odd: element-wise stores
  Guarded<uint16_t> out16(c.f32Out ? 0 : strideC * c.batch, kNan16);
  Guarded<float> out32(c.f32Out ? strideC * c.batch : 0, kNan32);
  // Segment 1 (one K if there is none: its maps are then never read).
  const int64_t k1 = c.K1 > 0 ? c.K1 : 1;
  const GemmOperand a1 = gemmOperand(rng, c.bf16, TA ? k1 : c.M, TA ? c.M : k1, c.batch);
  const GemmOperand b1 = gemmOperand(rng, c.bf16, TB ? c.N : k1, TB ? k1 : c.N, c.sharedB ? 1 : c.batch);
  Guarded<uint16_t> ga1(a1.bits, kNan16), gb1(b1.bits, kNan16);

  const hg::OperandPlan pa = hg::operandPlan(!TA, hg::kBM), pb = hg::operandPlan(TB, hg::kBN);
  const CUtensorMap mapA = gemmMap(ga.data(), pa, a, c.batch > 1);
  const CUtensorMap mapB = gemmMap(gb.data(), pb, b, !c.sharedB && c.batch > 1);
  const CUtensorMap mapA1 = gemmMap(ga1.data(), pa, a1, c.batch > 1);
  const CUtensorMap mapB1 = gemmMap(gb1.data(), pb, b1, !c.sharedB && c.batch > 1);
  int fault = 0;
  hg::Params p{};
  p.M = c.M;
  p.N = c.N;
  p.tilesM = (c.M + hg::kBM - 1) / hg::kBM;
  p.tilesN = (c.N + hg::kBN - 1) / hg::kBN;
  p.tiles = p.tilesM * p.tilesN * c.batch;
  p.kTiles0 = static_cast<int>((c.K + hg::kBK - 1) / hg::kBK);
  p.kTiles = p.kTiles0 + static_cast<int>((c.K1 + hg::kBK - 1) / hg::kBK);
  p.aBatched = c.batch > 1;
  p.bBatched = !c.sharedB && c.batch > 1;
  p.fault = &fault;
  seqtune::gemm::LinearOut lo{};
  lo.out = c.f32Out ? static_cast<void*>(out32.data()) : static_cast<void*>(out16.data());
  lo.ld = ldc;
  lo.batchStride = strideC;
  lo.f32 = c.f32Out;
  lo.vec = false;
  lo.alpha = c.alpha;
  lo.bias = c.bias ? gbias.data() : nullptr;
  lo.beta = c.beta;
  lo.cin = c.beta != 0 ? (c.f32Out ? static_cast<const void*>(gcin32.data()) : static_cast<const void*>(gcin16.data()))
                       : nullptr;
  lo.ldCin = cin.ld;
  lo.cinBatchStride = cin.stride;
  const int ctas = static_cast<int>(std::min<int64_t>(c.ctas, p.tiles));
  std::string error = launch({unsigned(ctas), 1, 1}, hg::kThreads, hg::kSmemBytes, o.reverse, o.lazyCopies,
                             [&](uint8_t* smem) { hg::gemmCta<T, TA, TB>(hg::Maps{{&mapA, &mapA1}, {&mapB, &mapB1}}, p, lo, smem); });
  if (fault != 0) error += " fault " + std::to_string(fault);
  if (!error.empty()) return error;
  if (!(ga.intact() && gb.intact() && ga1.intact() && gb1.intact() && out16.intact() && out32.intact())) {
    return "a write outside a tensor";
  }

  for (int64_t bt = 0; bt < c.batch; ++bt) {
    for (int64_t r = 0; r < c.M; ++r) {
      for (int64_t n = 0; n < c.N; ++n) {
        double sum = 0;
        const int64_t bb = c.sharedB ? 0 : bt;
        for (int64_t k = 0; k < c.K; ++k) {
          const double x = TA ? a.values[(bt * c.K + k) * c.M + r] : a.values[(bt * c.M + r) * c.K + k];
          const double y = TB ? b.values[(bb * c.N + n) * c.K + k] : b.values[(bb * c.K + k) * c.N + n];
          sum += x * y;
        }
        for (int64_t k = 0; k < c.K1; ++k) {
          const double x = TA ? a1.values[(bt * c.K1 + k) * c.M + r] : a1.values[(bt * c.M + r) * c.K1 + k];
          const double y = TB ? b1.values[(bb * c.N + n) * c.K1 + k] : b1.values[(bb * c.K1 + k) * c.N + n];
          sum += x * y;
        }
        double want = c.alpha * sum + (c.bias ? bias.values[n] : 0.0);
        if (c.beta != 0) want += c.beta * cin.values[(bt * c.M + r) * c.N + n];
        const size_t at = static_cast<size_t>(bt * strideC + r * ldc + n);
        const double got = c.f32Out ? out32.data()[at] : halfValue(out16.data()[at], c.bf16);
        const double step = std::ldexp(1.0, c.f32Out ? -20 : (c.bf16 ? -7 : -10));
        if (!(std::fabs(got - want) <= step * (std::fabs(want) + 1))) {
          return "C[" + std::to_string(bt) + "][" + std::to_string(r) + "][" + std::to_string(n) +
                 "] = " + std::to_string(got) + ", want " + std::to_string(want);
        }
      }
    }
  }
  // Nothing written between the rows' ends and the next row, or between batches.
  for (int64_t i = 0; i < strideC * c.batch; ++i) {
    const int64_t within = i % strideC;
    if (within / ldc < c.M && within % ldc < c.N) continue;
    const bool untouched = c.f32Out ? std::isnan(out32.data()[i]) : out16.data()[i] == kNan16;
    if (!untouched) return "a write into C's padding at element " + std::to_string(i);
  }
  return "";
}

}  // namespace

std::string hopperGemm(int index, Options o) {
  const GemmCase& c = kGemmCases[index];
  auto run = [&](auto t) {
    using T = decltype(t);
    if (c.transA) return c.transB ? runGemm<T, true, true>(c, o) : runGemm<T, true, false>(c, o);
    return c.transB ? runGemm<T, false, true>(c, o) : runGemm<T, false, false>(c, o);
  };
  return c.bf16 ? run(__nv_bfloat16{}) : run(__half{});
}

}  // namespace emu
