// When gemm() takes the Hopper kernel (hopperGemmWanted), and the one-time self-test that guards
// it (hopperGemmSelfTest): the kernel was written without a GPU to run it on, so a device only uses
// it after it reproduced the mma.sync kernel and a float64 host reference on fixed problems.
//
// The inputs are multiples of 1/64 in [-1, 1]: every product and partial sum is exact in f32
// (K <= 1000 keeps them within 22 bits), so any summation order gives the same accumulators and
// only the epilogue's f32 arithmetic and the output rounding separate the three results. A layout
// or pipeline bug shows as errors of order 1, far above the tolerance.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <vector>

#include "kernels/hopper/gemm_hopper.h"
#include "kernels/hopper/hopper_selftest.h"
#include "kernels/common/errors.h"

namespace seqtune::gpu {

namespace {

using selftest::DeviceArena;
using selftest::Rng;
using selftest::fromHalfBits;
using selftest::toHalfBits;

// ---- the problems --------------------------------------------------------------------------------

struct Problem {
  DType dtype, outDtype;
  bool transA, transB;
  int64_t M, N, K, batch;
  bool sharedB;  // B's batch stride 0
  bool bias;
  DType biasDtype;
  double alpha, beta;  // beta != 0: with Cin
  int64_t ldcPad;      // odd pads exercise the epilogue's element-wise stores
  int maxCtas;         // few blocks: each walks several tiles and laps the stage ring
  int64_t K1;          // > 0: a second K segment (GemmKSegment) of this many K
};

// Ragged M, N, K against the 128 x 256 x 64 tile throughout. The K-segment problems split the
// K + K1 of one product between two operand pairs at a K that ends mid-step: LoRA's forward
// (both K-major, K1 = 3r) and its dx (B MN-major, K1 = 2r), and a batched one with a shared B.
const Problem kProblems[] = {
    {DType::BF16, DType::BF16, false, false, 200, 300, 136, 1, false, true, DType::BF16, 1.0, 0.0, 8, 0, 0},
    {DType::BF16, DType::BF16, true, false, 130, 520, 200, 2, false, true, DType::F32, 1.0, 0.5, 3, 1, 0},
    {DType::BF16, DType::F32, false, true, 257, 264, 72, 3, true, false, DType::BF16, -0.75, 1.0, 4, 2, 0},
    {DType::BF16, DType::BF16, true, true, 96, 136, 520, 1, false, true, DType::BF16, 2.0, 0.0, 0, 0, 0},
    {DType::F16, DType::F16, false, true, 256, 512, 256, 1, false, true, DType::F16, 1.0, -1.0, 8, 3, 0},
    {DType::F16, DType::F32, true, false, 136, 264, 1000, 2, false, true, DType::F32, 0.5, 0.25, 1, 0, 0},
    {DType::BF16, DType::BF16, false, true, 200, 300, 136, 1, false, true, DType::F32, 1.0, 0.0, 8, 2, 48},
    {DType::BF16, DType::BF16, false, false, 130, 264, 200, 1, false, false, DType::BF16, 1.0, 0.0, 3, 1, 16},
    {DType::F16, DType::F32, true, true, 136, 264, 72, 2, true, true, DType::F32, 0.5, 0.25, 1, 0, 80},
};

int64_t pad8(int64_t n) { return (n + 7) / 8 * 8; }

// A host matrix of `batch` stored rows x cols matrices (row stride ld, batch stride stride) in
// `dtype`; elements outside the matrices (row padding, batch gaps) hold NaN, which must never be
// read. values: the matrices' elements as floats, [batch][rows][cols].
struct HostMatrix {
  int64_t rows, cols, ld, stride, batches;
  std::vector<uint16_t> bits;
  std::vector<float> values;

  HostMatrix(Rng& rng, DType dtype, int64_t rows_, int64_t cols_, int64_t batches_)
      : rows(rows_), cols(cols_), ld(pad8(cols_) + 8), stride(rows_ * ld + 64), batches(batches_) {
    bits.assign(static_cast<size_t>(stride * batches), dtype == DType::BF16 ? 0x7fc0 : 0x7e00);
    values.resize(static_cast<size_t>(rows * cols * batches));
    for (int64_t b = 0; b < batches; ++b) {
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) {
          const float v = rng.next();
          values[(b * rows + r) * cols + c] = v;
          bits[b * stride + r * ld + c] = toHalfBits(v, dtype);
        }
      }
    }
  }
  float at(int64_t b, int64_t r, int64_t c) const { return values[(b * rows + r) * cols + c]; }
};

size_t dtypeBytes(DType t) { return t == DType::F32 ? 4 : 2; }

// Whether output element i (in units of the output dtype) of a C buffer lies inside the matrices.
bool inside(int64_t i, int64_t M, int64_t N, int64_t ldc, int64_t strideC, int64_t batch) {
  const int64_t b = i / strideC, within = i % strideC;
  return b < batch && within / ldc < M && within % ldc < N;
}

float outputAt(const std::vector<unsigned char>& buf, DType t, int64_t i) {
  if (t == DType::F32) {
    float v;
    std::memcpy(&v, buf.data() + i * 4, 4);
    return v;
  }
  uint16_t h;
  std::memcpy(&h, buf.data() + i * 2, 2);
  return fromHalfBits(h, t);
}

// The output rounding's relative step, doubled: the results may differ by the epilogue's f32
// rounding and one rounding of the output.
double tolerance(DType t, double ref) {
  const int bits = t == DType::F32 ? 18 : (t == DType::BF16 ? 7 : 10);
  const double step = std::ldexp(1.0, -bits);
  return step * (std::fabs(ref) + 1.0 / 64);
}

std::string where(size_t problem, int64_t b, int64_t r, int64_t c) {
  return str("problem ", problem, " (batch ", b, ", row ", r, ", column ", c, ")");
}

// Element offset of K-row or K-column k in an operand stored K-major (transposed: k is a row).
int64_t kOffset(bool kIsRow, int64_t k, int64_t ld) { return kIsRow ? k * ld : k; }

// Runs one problem; "" when the Hopper result matches both references. A K-segment problem's
// operands are stored over K + K1: the Hopper kernel reads [0, K) as segment 0 and [K, K + K1) as
// segment 1 (K-major views start K elements in, 16-byte aligned as K % 8 == 0), the mma.sync kernel
// the whole, so a segment read past its K would count terms twice.
std::string runProblem(size_t index, const Problem& pr, cudaStream_t stream) {
  Rng rng{0x5eed0000ull + index};
  const int64_t kAll = pr.K + pr.K1;
  const int64_t aRows = pr.transA ? kAll : pr.M, aCols = pr.transA ? pr.M : kAll;
  const int64_t bRows = pr.transB ? pr.N : kAll, bCols = pr.transB ? kAll : pr.N;
  const HostMatrix a(rng, pr.dtype, aRows, aCols, pr.batch);
  const HostMatrix b(rng, pr.dtype, bRows, bCols, pr.sharedB ? 1 : pr.batch);
  const HostMatrix bias(rng, pr.biasDtype == DType::F32 ? DType::BF16 : pr.dtype, 1, pr.N, 1);
  const HostMatrix cin(rng, pr.outDtype == DType::F32 ? DType::BF16 : pr.outDtype, pr.M, pr.N, pr.batch);
  const int64_t ldc = pr.N + pr.ldcPad, strideC = pr.M * ldc + 40;
  const size_t outBytes = dtypeBytes(pr.outDtype), cElems = static_cast<size_t>(strideC * pr.batch);
  const size_t cBytes = cElems * outBytes + 4096;  // with a guard region after the last batch

  // f32 operands of the epilogue (bias, Cin) hold the same values as the 16-bit host copies.
  auto widen = [](const HostMatrix& m, DType t, std::vector<unsigned char>& out) {
    const size_t n = m.bits.size();
    out.resize(n * dtypeBytes(t));
    for (size_t i = 0; i < n; ++i) {
      if (t == DType::F32) {
        const float v = fromHalfBits(m.bits[i], DType::BF16);
        std::memcpy(out.data() + i * 4, &v, 4);
      } else {
        std::memcpy(out.data() + i * 2, &m.bits[i], 2);
      }
    }
  };
  std::vector<unsigned char> biasBytes, cinBytes;
  widen(bias, pr.biasDtype, biasBytes);
  widen(cin, pr.outDtype, cinBytes);

  DeviceArena arena(a.bits.size() * 2 + b.bits.size() * 2 + biasBytes.size() + cinBytes.size() + 2 * cBytes + 8 * 256);
  if (arena.error() != cudaSuccess) {
    cudaGetLastError();
    return str("cudaMalloc: ", cudaGetErrorString(arena.error()));
  }
  void* dA = arena.take(a.bits.size() * 2);
  void* dB = arena.take(b.bits.size() * 2);
  void* dBias = arena.take(biasBytes.size());
  void* dCin = arena.take(cinBytes.size());
  void* dHopper = arena.take(cBytes);
  void* dRef = arena.take(cBytes);
  int* dFault = static_cast<int*>(arena.take(sizeof(int)));
  cudaError_t e = cudaSuccess;
  auto keep = [&e](cudaError_t r) {
    if (e == cudaSuccess) e = r;
  };
  keep(cudaMemcpyAsync(dA, a.bits.data(), a.bits.size() * 2, cudaMemcpyHostToDevice, stream));
  keep(cudaMemcpyAsync(dB, b.bits.data(), b.bits.size() * 2, cudaMemcpyHostToDevice, stream));
  keep(cudaMemcpyAsync(dBias, biasBytes.data(), biasBytes.size(), cudaMemcpyHostToDevice, stream));
  keep(cudaMemcpyAsync(dCin, cinBytes.data(), cinBytes.size(), cudaMemcpyHostToDevice, stream));
  keep(cudaMemsetAsync(dHopper, 0xff, cBytes, stream));  // NaN sentinels: must survive outside C
  keep(cudaMemsetAsync(dRef, 0xff, cBytes, stream));
  keep(cudaMemsetAsync(dFault, 0, sizeof(int), stream));

  GemmArgs g;
  g.dtype = pr.dtype;
  g.outDtype = pr.outDtype;
  g.transA = pr.transA;
  g.transB = pr.transB;
  g.M = pr.M;
  g.N = pr.N;
  g.K = pr.K;
  g.batch = pr.batch;
  g.a = dA;
  g.lda = a.ld;
  g.strideA = a.stride;
  g.b = dB;
  g.ldb = b.ld;
  g.strideB = pr.sharedB ? 0 : b.stride;
  g.ldc = ldc;
  g.strideC = strideC;
  g.alpha = pr.alpha;
  g.bias = pr.bias ? dBias : nullptr;
  g.biasDtype = pr.biasDtype;
  g.beta = pr.beta;
  g.cin = dCin;
  g.ldcin = cin.ld;
  g.strideCin = cin.stride;

  GemmKSegment segment;
  if (pr.K1 > 0) {
    segment.a = static_cast<const uint16_t*>(dA) + kOffset(pr.transA, pr.K, a.ld);
    segment.lda = a.ld;
    segment.strideA = g.strideA;
    segment.b = static_cast<const uint16_t*>(dB) + kOffset(!pr.transB, pr.K, b.ld);
    segment.ldb = b.ld;
    segment.strideB = g.strideB;
    segment.K = pr.K1;
  }

  int fault = 0;
  std::vector<unsigned char> hopper(cBytes), ref(cBytes);
  try {
    g.c = dRef;
    g.K = kAll;
    gemmTensorCore(g, stream);
    g.c = dHopper;
    g.K = pr.K;
    std::string why;
    if (!hopperGemm(g, segment, stream, HopperGemmLaunch{pr.maxCtas, dFault, &why})) return "not launched: " + why;
  } catch (const std::exception& e) {
    return str("launch: ", e.what());
  }
  keep(cudaMemcpyAsync(hopper.data(), dHopper, cBytes, cudaMemcpyDeviceToHost, stream));
  keep(cudaMemcpyAsync(ref.data(), dRef, cBytes, cudaMemcpyDeviceToHost, stream));
  keep(cudaMemcpyAsync(&fault, dFault, sizeof(int), cudaMemcpyDeviceToHost, stream));
  keep(cudaStreamSynchronize(stream));
  if (e != cudaSuccess) {
    cudaGetLastError();
    return str("running the kernels: ", cudaGetErrorString(e));
  }
  if (fault == 1) return "the kernel's pipeline stalled (an mbarrier wait timed out)";
  if (fault != 0) return "the kernel was built without sm_90a code";

  for (size_t i = 0; i < cElems + 4096 / outBytes; ++i) {
    if (inside(static_cast<int64_t>(i), pr.M, pr.N, ldc, strideC, pr.batch)) continue;
    for (size_t byte = i * outBytes; byte < (i + 1) * outBytes; ++byte) {
      if (hopper[byte] != 0xff) return str("problem ", index, ": the Hopper kernel wrote outside C (element ", i, ")");
      if (ref[byte] != 0xff) return str("problem ", index, ": the mma.sync kernel wrote outside C (element ", i, ")");
    }
  }
  for (int64_t bt = 0; bt < pr.batch; ++bt) {
    for (int64_t r = 0; r < pr.M; ++r) {
      for (int64_t c = 0; c < pr.N; ++c) {
        double sum = 0;
        for (int64_t k = 0; k < kAll; ++k) {
          const double x = pr.transA ? a.at(bt, k, r) : a.at(bt, r, k);
          const int64_t bb = pr.sharedB ? 0 : bt;
          sum += x * (pr.transB ? b.at(bb, c, k) : b.at(bb, k, c));
        }
        double want = pr.alpha * sum + (pr.bias ? bias.at(0, 0, c) : 0.0);
        if (pr.beta != 0) want += pr.beta * cin.at(bt, r, c);
        const int64_t i = bt * strideC + r * ldc + c;
        const double h = outputAt(hopper, pr.outDtype, i), m = outputAt(ref, pr.outDtype, i);
        const double tol = tolerance(pr.outDtype, want);
        if (!(std::fabs(h - want) <= tol)) {
          return str(where(index, bt, r, c), ": Hopper kernel ", h, ", host reference ", want, ", mma.sync kernel ", m);
        }
        if (!(std::fabs(h - m) <= tol)) {
          return str(where(index, bt, r, c), ": Hopper kernel ", h, " but mma.sync kernel ", m, " (host reference ",
                     want, ")");
        }
      }
    }
  }
  return "";
}

}  // namespace

namespace {
selftest::HopperGate gemmGate("gemm", "SEQTUNE_GEMM_HOPPER", "GEMM kernel", hopperGemmSelfTest);
}  // namespace

bool hopperGemmSelfTest(cudaStream_t stream, std::string* detail) {
  return selftest::runSelfTest(
      sizeof kProblems / sizeof kProblems[0], [&](size_t i) { return runProblem(i, kProblems[i], stream); }, detail);
}

bool hopperGemmWanted(const GemmArgs& g, cudaStream_t stream) {
  if (g.M < 128 || g.N < 128 || g.K < 64) return false;
  if (static_cast<double>(g.M) * static_cast<double>(g.N) * static_cast<double>(g.K) * static_cast<double>(g.batch) <
      134217728.0) {  // 2^27
    return false;
  }
  return hopperGemmSupports(g) && gemmGate.open(stream);
}

}  // namespace seqtune::gpu
