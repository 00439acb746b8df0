// LoRA forward and backward on CUDA (kernels/gemm/lora.h). The tensor-core path in order:
//   forward:  [A -> x's dtype, 16-byte rows; B -> its hi/lo parts] -> xa partials (x·Aᵀ, dropout
//             applied to x's tiles in shared memory, K = in split) -> xa and s·xa's hi/lo parts ->
//             y = x·Wᵀ + bias + [s·xa parts]·[B parts]ᵀ;
//   backward: [A -> its parts] dxa = s·dy·B (split over out) -> dxa's parts -> dA = dxaᵀ·drop(x)
//             and dB = s·dyᵀ·xa (split over T) -> dx = dy·W + drop'([dxa parts]·[A parts]).
// The rank-r operands travel as hi/lo parts (lora_parts.h) so y and dx get the rank-r term at about
// f32 precision, as the CPU computes it. The big product with its rank-r term:
// - on the Hopper kernel (compute capability 9.0, self-test passed, the size gemm() would give it)
//   as a second K segment (gemm_hopper.h): parts·r more K, one 64-wide K-step in 64 at in = 4096,
//   r = 16, against the base product's own K-steps, in the same accumulators; except dx under
//   dropout, whose mask falls on the rank-r term alone;
// - else on the mma.sync kernel, the rank-r term in its epilogue (gemm_epilogue.h).
// Splits sum their f32 partials in split order: deterministic, no atomics.
#include <cmath>

#include "kernels/gemm/gemm_epilogue.h"
#include "kernels/gemm/gemm_simt.h"
#include "kernels/gemm/gemm_workspace.h"
#include "kernels/gemm/lora.h"
#include "kernels/gemm/lora_parts.h"
#include "kernels/gemm/lora_reduce.h"
#include "kernels/hopper/gemm_hopper.h"

namespace seqtune::gpu {

namespace tc = seqtune::gemm;

namespace {

// A [rows, cols] operand in x's dtype with 16-byte aligned rows: the tensor itself when it already
// is one, else a padded copy in the workspace (filled by prepare()).
struct HalfOperand {
  const void* src;
  DType srcDtype;
  int64_t rows, cols;
  const void* ptr;
  int64_t ld;
  void* copy;  // non-null: convert src into it
};

HalfOperand halfOperand(Carve& w, const void* src, DType srcDtype, DType half, int64_t rows, int64_t cols) {
  HalfOperand h{src, srcDtype, rows, cols, src, cols, nullptr};
  if (srcDtype != half || cols % 8 != 0 || !isAligned16(src)) {
    h.ld = pad8(cols);
    h.copy = w.take(static_cast<size_t>(rows * h.ld) * 2);
    h.ptr = h.copy;
  }
  return h;
}

void prepare(const HalfOperand& h, DType half, cudaStream_t stream) {
  if (h.copy) convertMatrix(h.src, h.srcDtype, h.cols, h.copy, half, h.ld, h.rows, h.cols, stream);
}

// ---- skinny GEMMs into f32 partials ----------------------------------------------------------------

// A skinny product runs on its tile (128x64 for N = r, 64x128 for M = r), or on 64x64 element-wise
// copies when an operand is not 16-byte aligned; K is split so the few tiles fill the GPU.
struct Skinny {
  int64_t M, N, K;
  bool vec;
  tc::Tile tile;
  int splits;
};

Skinny skinny(int64_t M, int64_t N, int64_t K, bool vec, tc::Tile tile) {
  Skinny s{M, N, K, vec, vec ? tile : tc::Tile::k64x64, 1};
  s.splits = tc::planSplits(tc::tileCount(s.tile, M, N, 1), K, smCount());
  return s;
}

size_t partialBytes(const Skinny& s) { return static_cast<size_t>(s.splits * s.M * s.N) * sizeof(float); }

template <typename H>
tc::LinearEpilogue<H, tc::kExtNone> partialEpilogue(float* partials, int64_t M, int64_t N) {
  tc::LinearOut o{};
  o.out = partials;
  o.ld = N;
  o.batchStride = M * N;
  o.splitStride = M * N;
  o.f32 = true;
  o.vec = isAligned16(partials) && N % 4 == 0;
  o.alpha = 1.f;
  return {o, {}};
}

template <class Cfg, typename H, bool TA, bool TB, bool VEC, int DROP>
void runSkinny(const Skinny& s, tc::Operand a, tc::Operand b, const tc::Dropout& drop, float* partials,
               cudaStream_t stream) {
  tc::TcParams p = tc::tcParams<Cfg>(s.M, s.N, s.K, a, b, s.splits);
  p.drop = drop;
  tc::launchTc<Cfg, H, TA, TB, VEC, DROP>(p, 1, partialEpilogue<H>(partials, s.M, s.N), stream, "loraLinear");
}

// Cfg: the skinny tile (Cfg128x64 for N = r, Cfg64x128 for M = r), matching s.tile.
template <class Cfg, typename H, bool TA, bool TB, int DROP>
void skinnyPartials(const Skinny& s, tc::Operand a, tc::Operand b, const tc::Dropout& drop, float* partials,
                    cudaStream_t stream) {
  if (s.vec) return runSkinny<Cfg, H, TA, TB, true, DROP>(s, a, b, drop, partials, stream);
  runSkinny<tc::Cfg64x64, H, TA, TB, false, DROP>(s, a, b, drop, partials, stream);
}

// ---- the big GEMM with the rank-r epilogue ---------------------------------------------------------

template <class Cfg, typename H, bool TB, bool VEC, int EXT>
void runFused(int64_t M, int64_t N, int64_t K, tc::Operand a, tc::Operand b, const tc::LinearOut& o,
              const tc::ExtProduct& x, cudaStream_t stream) {
  const tc::TcParams p = tc::tcParams<Cfg>(M, N, K, a, b, 1);
  tc::launchTc<Cfg, H, false, TB, VEC, tc::kDropNone>(p, 1, tc::LinearEpilogue<H, EXT>{o, x}, stream, "loraLinear");
}

// C = op(A)·op(B) + bias + x.scale·mask ⊙ (extA·op(extB)) over every rank chunk of kMaxFusedRank:
// the first launch carries the main product and the bias, later ones (K = 0) add onto C.
template <typename H, bool TB, int EXT>
void fusedGemm(int64_t M, int64_t N, int64_t K, tc::Operand a, tc::Operand b, bool vec, tc::LinearOut o,
               tc::ExtProduct x, cudaStream_t stream) {
  const int rank = x.rank;
  const bool big = vec && tc::tileCount(tc::Tile::k128x128, M, N, 1) >= smCount();
  for (int r0 = 0; r0 < rank; r0 += tc::kMaxFusedRank) {
    tc::ExtProduct part = x;
    part.rank = rank - r0 < tc::kMaxFusedRank ? rank - r0 : tc::kMaxFusedRank;
    part.rankPad = 16;
    while (part.rankPad < part.rank) part.rankPad *= 2;
    part.a = static_cast<const H*>(x.a) + r0;
    part.b = static_cast<const H*>(x.b) + (EXT == tc::kExtKMajor ? r0 : r0 * x.ldb);
    if (r0 > 0) {
      K = 0;
      o.bias = nullptr;
      o.cin = o.out;
      o.ldCin = o.ld;
      o.cinBatchStride = o.batchStride;
      o.cinVec = o.vec;
      o.beta = 1.f;
    }
    if (big) {
      runFused<tc::Cfg128x128, H, TB, true, EXT>(M, N, K, a, b, o, part, stream);
    } else if (vec) {
      runFused<tc::Cfg64x64, H, TB, true, EXT>(M, N, K, a, b, o, part, stream);
    } else {
      runFused<tc::Cfg64x64, H, TB, false, EXT>(M, N, K, a, b, o, part, stream);
    }
  }
}

// The big product with its rank-r term as a second K segment on the Hopper kernel, when gemm()
// would run the base product there; false: nothing launched (the caller runs the mma.sync path).
bool hopperWithRank(const GemmArgs& base, const GemmKSegment& rankTerm, cudaStream_t stream) {
  return hopperGemmWanted(base, stream) && hopperGemmSupports(base, rankTerm) && hopperGemm(base, rankTerm, stream);
}

// C [M, N] = A [M, K] · op(B) + bias in `half` (ld: B's row stride), as gemm() takes it.
GemmArgs baseProduct(DType half, bool transB, int64_t M, int64_t N, int64_t K, const void* a, const void* b, int64_t ldb,
                     void* c, const void* bias, DType biasDtype) {
  GemmArgs g;
  g.dtype = half;
  g.outDtype = half;
  g.transB = transB;
  g.M = M;
  g.N = N;
  g.K = K;
  g.a = a;
  g.lda = K;
  g.b = b;
  g.ldb = ldb;
  g.c = c;
  g.ldc = N;
  g.bias = bias;
  g.biasDtype = biasDtype;
  return g;
}

tc::LinearOut plainOut(void* out, int64_t ld, const void* bias, DType biasDtype) {
  tc::LinearOut o{};
  o.out = out;
  o.ld = ld;
  o.vec = isAligned16(out) && ld % 8 == 0;
  o.alpha = 1.f;
  o.bias = bias;
  o.biasF32 = biasDtype == DType::F32;
  o.biasVec = isAligned16(bias);
  return o;
}

tc::Dropout dropoutOf(const LoraDropout& d, int64_t in) {
  tc::Dropout m;
  m.seed = d.seed;
  m.offset = d.offset;
  m.p = static_cast<float>(d.p);
  m.ld = in;
  return m;
}

double keepScale(const LoraDropout& d) { return 1.0 / (1.0 - d.p); }

// ---- forward ---------------------------------------------------------------------------------------

struct ForwardLayout {
  HalfOperand a;  // A [r, in]
  tc::LoraParts parts;
  int64_t ldParts;  // parts.count · r, padded
  void* bParts;     // [out, ldParts]: B's parts
  void* xaParts;    // [T, ldParts]: s·xa's parts, written by the reduction
  Skinny xaGemm;
  float* partials;
};

ForwardLayout forwardLayout(const LoraForwardArgs& g, Carve& w) {
  const LoraShape& d = g.shape;
  const DType h = g.dtypes.x;
  ForwardLayout L;
  L.a = halfOperand(w, g.a, g.dtypes.adapter, h, d.rank, d.in);
  L.parts = tc::loraParts(g.dtypes.adapter == h);
  L.ldParts = pad8(L.parts.count * d.rank);
  L.bParts = w.take(static_cast<size_t>(d.out * L.ldParts) * 2);
  L.xaParts = w.take(static_cast<size_t>(d.tokens * L.ldParts) * 2);
  L.xaGemm = skinny(d.tokens, d.rank, d.in, isAligned16(g.x) && d.in % 8 == 0, tc::Tile::k128x64);
  L.partials = static_cast<float*>(w.take(partialBytes(L.xaGemm)));
  return L;
}

template <typename H>
void forwardHalf(const LoraForwardArgs& g, const ForwardLayout& L, cudaStream_t stream) {
  const LoraShape& d = g.shape;
  prepare(L.a, g.dtypes.x, stream);
  splitParts(g.dtypes.x, g.b, g.dtypes.adapter, d.out, d.rank, L.parts, false, L.bParts, L.ldParts, stream);
  if (d.tokens == 0) return;
  const tc::Dropout drop = dropoutOf(g.dropout, d.in);
  const tc::Operand x{g.x, d.in, 0}, a{L.a.ptr, L.a.ld, 0};
  if (g.dropout.p > 0) {
    skinnyPartials<tc::Cfg128x64, H, false, true, tc::kDropA>(L.xaGemm, x, a, drop, L.partials, stream);
  } else {
    skinnyPartials<tc::Cfg128x64, H, false, true, tc::kDropNone>(L.xaGemm, x, a, drop, L.partials, stream);
  }
  reducePartials(g.dtypes.x, L.partials, L.xaGemm.splits, d.tokens, d.rank, keepScale(g.dropout), g.xa,
                 g.dtypes.adapter, L.xaParts, L.ldParts, stream, {L.parts, static_cast<float>(g.scale), false});
  const int rankK = static_cast<int>(L.parts.count * d.rank);
  const GemmArgs base =
      baseProduct(g.dtypes.x, true, d.tokens, d.out, d.in, g.x, g.weight, d.in, g.y, g.bias, g.dtypes.bias);
  if (hopperWithRank(base, {L.xaParts, L.ldParts, 0, L.bParts, L.ldParts, 0, rankK}, stream)) return;
  // s is in xa's parts already.
  const tc::ExtProduct ext{L.xaParts, L.ldParts, L.bParts, L.ldParts, rankK, 16, 1.f, false, {}};
  const bool vec = isAligned16(g.x) && isAligned16(g.weight) && d.in % 8 == 0;
  fusedGemm<H, true, tc::kExtKMajor>(d.tokens, d.out, d.in, x, {g.weight, d.in, 0}, vec,
                                     plainOut(g.y, d.out, g.bias, g.dtypes.bias), ext, stream);
}

// ---- backward --------------------------------------------------------------------------------------

// dxa = s·dy·B feeds dA and dx's rank-r term as its parts (hi, lo[, hi]: [T, parts·r] in x's
// dtype) against A's (row blocks, [parts·r, in]): rounded to 16 bits once, it cost dA up to ~0.1
// absolute at T = 65 against the CPU's f32 dxa (parity: 42-45 of 512 bf16 values off).
struct BackwardLayout {
  HalfOperand b, xa;
  tc::LoraParts parts;
  void* aParts;  // [parts·r, ldAParts]
  int64_t ldAParts;
  void* dxa;  // [T, ldDxa]: hi in columns [0, r), lo in [r, 2r), then hi again when there are 3 parts
  int64_t ldDxa;
  Skinny dxaGemm, daGemm, dbGemm;
  float* partials;  // reused by the three skinny products (stream order)
};

BackwardLayout backwardLayout(const LoraBackwardArgs& g, Carve& w) {
  const LoraShape& d = g.shape;
  const DType h = g.dtypes.x;
  BackwardLayout L;
  L.b = halfOperand(w, g.b, g.dtypes.adapter, h, d.out, d.rank);
  L.xa = halfOperand(w, g.xa, g.dtypes.adapter, h, d.tokens, d.rank);
  L.parts = tc::loraParts(g.dtypes.adapter == h);
  L.ldAParts = pad8(d.in);
  L.aParts = w.take(static_cast<size_t>(L.parts.count * d.rank * L.ldAParts) * 2);
  L.ldDxa = pad8(L.parts.count * d.rank);
  L.dxa = w.take(static_cast<size_t>(d.tokens * L.ldDxa) * 2);
  const bool dyVec = isAligned16(g.dy) && d.out % 8 == 0, xVec = isAligned16(g.x) && d.in % 8 == 0;
  L.dxaGemm = skinny(d.tokens, d.rank, d.out, dyVec, tc::Tile::k128x64);
  L.daGemm = skinny(2 * d.rank, d.in, d.tokens, xVec, tc::Tile::k64x128);
  L.dbGemm = skinny(d.out, d.rank, d.tokens, dyVec, tc::Tile::k128x64);
  size_t most = partialBytes(L.dxaGemm);
  for (const Skinny& s : {L.daGemm, L.dbGemm}) most = partialBytes(s) > most ? partialBytes(s) : most;
  L.partials = static_cast<float*>(w.take(most));
  return L;
}

template <typename H>
void backwardHalf(const LoraBackwardArgs& g, const BackwardLayout& L, cudaStream_t stream) {
  const LoraShape& d = g.shape;
  prepare(L.b, g.dtypes.x, stream);
  prepare(L.xa, g.dtypes.x, stream);
  splitParts(g.dtypes.x, g.a, g.dtypes.adapter, d.rank, d.in, L.parts, true, L.aParts, L.ldAParts, stream);
  const tc::Dropout drop = dropoutOf(g.dropout, d.in);
  const tc::Operand dy{g.dy, d.out, 0}, x{g.x, d.in, 0}, dxa{L.dxa, L.ldDxa, 0};
  if (d.tokens > 0) {
    skinnyPartials<tc::Cfg128x64, H, false, false, tc::kDropNone>(L.dxaGemm, dy, {L.b.ptr, L.b.ld, 0}, drop, L.partials, stream);
    reducePartials(g.dtypes.x, L.partials, L.dxaGemm.splits, d.tokens, d.rank, g.scale, nullptr, DType::F32, L.dxa,
                   L.ldDxa, stream, {L.parts, 1.f, false});
  }
  // dA and dB: K = T; with no tokens the products are empty sums and the kernels write zeros.
  if (g.dropout.p > 0) {
    skinnyPartials<tc::Cfg64x128, H, true, false, tc::kDropB>(L.daGemm, dxa, x, drop, L.partials, stream);
  } else {
    skinnyPartials<tc::Cfg64x128, H, true, false, tc::kDropNone>(L.daGemm, dxa, x, drop, L.partials, stream);
  }
  // dA = hiᵀ·drop(x) + loᵀ·drop(x): the product's rows m and m + r summed.
  reducePartials(g.dtypes.x, L.partials, L.daGemm.splits, d.rank, d.in, keepScale(g.dropout), g.da, g.dtypes.adapter,
                 nullptr, 0, stream, {tc::kSinglePart, 1.f, true});
  skinnyPartials<tc::Cfg128x64, H, true, false, tc::kDropNone>(L.dbGemm, dy, {L.xa.ptr, L.xa.ld, 0}, drop, L.partials, stream);
  reducePartials(g.dtypes.x, L.partials, L.dbGemm.splits, d.out, d.rank, g.scale, g.db, g.dtypes.adapter, nullptr, 0,
                 stream);
  if (!g.dx || d.tokens == 0) return;
  const int rankK = static_cast<int>(L.parts.count * d.rank);
  if (g.dropout.p == 0) {
    const GemmArgs base = baseProduct(g.dtypes.x, false, d.tokens, d.in, d.out, g.dy, g.weight, d.in, g.dx, nullptr,
                                      DType::F32);
    if (hopperWithRank(base, {L.dxa, L.ldDxa, 0, L.aParts, L.ldAParts, 0, rankK}, stream)) return;
  }
  const tc::ExtProduct ext{L.dxa, L.ldDxa, L.aParts, L.ldAParts, rankK, 16,
                           static_cast<float>(keepScale(g.dropout)), g.dropout.p > 0, drop};
  const bool vec = isAligned16(g.dy) && isAligned16(g.weight) && d.out % 8 == 0 && d.in % 8 == 0;
  fusedGemm<H, false, tc::kExtMNMajor>(d.tokens, d.in, d.out, dy, {g.weight, d.in, 0}, vec,
                                       plainOut(g.dx, d.in, nullptr, DType::F32), ext, stream);
}

// ---- f32 / f64 -------------------------------------------------------------------------------------

template <typename T>
SimtGemm<T> product(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const void* a, int64_t lda,
                    const void* b, int64_t ldb, void* c, double alpha) {
  SimtGemm<T> s;
  s.transA = transA;
  s.transB = transB;
  s.M = M;
  s.N = N;
  s.K = K;
  s.a = static_cast<const T*>(a);
  s.lda = lda;
  s.b = static_cast<const T*>(b);
  s.ldb = ldb;
  s.c = static_cast<T*>(c);
  s.ldc = N;
  s.alpha = static_cast<T>(alpha);
  return s;
}

template <typename T>
void withDropout(SimtGemm<T>& s, const LoraDropout& d, int64_t in) {
  s.seed = d.seed;
  s.offset = d.offset;
  s.p = static_cast<float>(d.p);
  s.dropLd = in;
  s.maskLd = in;
}

template <typename T>
void forwardFull(const LoraForwardArgs& g, cudaStream_t stream) {
  const LoraShape& d = g.shape;
  SimtGemm<T> xa = product<T>(false, true, d.tokens, d.rank, d.in, g.x, d.in, g.a, d.in, g.xa, keepScale(g.dropout));
  withDropout(xa, g.dropout, d.in);
  xa.dropOperand = g.dropout.p > 0 ? 1 : 0;
  simtGemm(xa, stream);
  SimtGemm<T> base = product<T>(false, true, d.tokens, d.out, d.in, g.x, d.in, g.weight, d.in, g.y, 1.0);
  base.bias = static_cast<const T*>(g.bias);
  simtGemm(base, stream);
  SimtGemm<T> adapter = product<T>(false, true, d.tokens, d.out, d.rank, g.xa, d.rank, g.b, d.rank, g.y, g.scale);
  adapter.cin = static_cast<const T*>(g.y);
  adapter.ldcin = d.out;
  adapter.beta = 1;
  simtGemm(adapter, stream);
}

template <typename T>
void backwardFull(const LoraBackwardArgs& g, void* dxa, cudaStream_t stream) {
  const LoraShape& d = g.shape;
  simtGemm(product<T>(true, false, d.out, d.rank, d.tokens, g.dy, d.out, g.xa, d.rank, g.db, g.scale), stream);
  simtGemm(product<T>(false, false, d.tokens, d.rank, d.out, g.dy, d.out, g.b, d.rank, dxa, g.scale), stream);
  SimtGemm<T> da = product<T>(true, false, d.rank, d.in, d.tokens, dxa, d.rank, g.x, d.in, g.da, keepScale(g.dropout));
  withDropout(da, g.dropout, d.in);
  da.dropOperand = g.dropout.p > 0 ? 2 : 0;
  simtGemm(da, stream);
  if (!g.dx) return;
  SimtGemm<T> adapter = product<T>(false, false, d.tokens, d.in, d.rank, dxa, d.rank, g.a, d.in, g.dx, keepScale(g.dropout));
  withDropout(adapter, g.dropout, d.in);
  adapter.maskOut = g.dropout.p > 0;
  simtGemm(adapter, stream);
  SimtGemm<T> base = product<T>(false, false, d.tokens, d.in, d.out, g.dy, d.out, g.weight, d.in, g.dx, 1.0);
  base.cin = static_cast<const T*>(g.dx);
  base.ldcin = d.in;
  base.beta = 1;
  simtGemm(base, stream);
}

// ---- checks ----------------------------------------------------------------------------------------

// All f32 or all f64 (the bias's dtype counts only when there is a bias).
bool fullPrecision(const LoraDtypes& t, bool hasBias) {
  return (t.x == DType::F32 || t.x == DType::F64) && t.adapter == t.x && (!hasBias || t.bias == t.x);
}

void checkArgs(const char* op, const LoraShape& d, const LoraDtypes& t, bool hasBias, double p, double scale) {
  if (d.tokens < 0 || d.in < 1 || d.out < 1 || d.rank < 1) {
    fail(code::kShape, op, ": expected T >= 0 and in, out, r >= 1, got T=", d.tokens, " in=", d.in, " out=", d.out,
         " r=", d.rank);
  }
  if (!(p >= 0 && p < 1)) fail(code::kArgument, op, ": dropout p must be in [0, 1), got ", p);
  if (!std::isfinite(scale)) fail(code::kArgument, op, ": scale must be finite, got ", scale);
  if (fullPrecision(t, hasBias)) return;
  const bool half = isHalf(t.x) && (t.adapter == t.x || t.adapter == DType::F32) &&
                    (!hasBias || t.bias == t.x || t.bias == DType::F32);
  if (!half) {
    fail(code::kNotImplemented, op, " on CUDA: x/weight ", dtypeName(t.x), " with ", dtypeName(t.adapter),
         " adapters and ", dtypeName(t.bias),
         " bias; supported: all f32, all f64, or bf16/f16 x and weight with adapters and bias of that dtype or f32");
  }
}

void checkWorkspace(const char* op, size_t have, size_t need) {
  if (have < need) fail(code::kArgument, op, ": workspace of ", have, " bytes, ", need, " needed");
}

}  // namespace

size_t loraForwardWorkspaceBytes(const LoraForwardArgs& g) {
  if (fullPrecision(g.dtypes, g.bias != nullptr)) return 0;
  Carve w(nullptr);
  forwardLayout(g, w);
  return w.used();
}

size_t loraBackwardWorkspaceBytes(const LoraBackwardArgs& g) {
  const LoraShape& d = g.shape;
  if (fullPrecision(g.dtypes, false)) return static_cast<size_t>(d.tokens * d.rank) * dtypeSize(g.dtypes.x);
  Carve w(nullptr);
  backwardLayout(g, w);
  return w.used();
}

void loraForward(const LoraForwardArgs& g, cudaStream_t stream) {
  checkArgs("loraLinear", g.shape, g.dtypes, g.bias != nullptr, g.dropout.p, g.scale);
  if (g.dtypes.x == DType::F32 && fullPrecision(g.dtypes, g.bias != nullptr)) return forwardFull<float>(g, stream);
  if (g.dtypes.x == DType::F64 && fullPrecision(g.dtypes, g.bias != nullptr)) return forwardFull<double>(g, stream);
  Carve w(g.workspace);
  const ForwardLayout L = forwardLayout(g, w);
  checkWorkspace("loraLinear", g.workspaceBytes, w.used());
  if (g.dtypes.x == DType::BF16) return forwardHalf<__nv_bfloat16>(g, L, stream);
  forwardHalf<__half>(g, L, stream);
}

void loraBackward(const LoraBackwardArgs& g, cudaStream_t stream) {
  checkArgs("loraLinearBackward", g.shape, g.dtypes, false, g.dropout.p, g.scale);
  if (fullPrecision(g.dtypes, false)) {
    checkWorkspace("loraLinearBackward", g.workspaceBytes, loraBackwardWorkspaceBytes(g));
    if (g.dtypes.x == DType::F32) return backwardFull<float>(g, g.workspace, stream);
    return backwardFull<double>(g, g.workspace, stream);
  }
  Carve w(g.workspace);
  const BackwardLayout L = backwardLayout(g, w);
  checkWorkspace("loraLinearBackward", g.workspaceBytes, w.used());
  if (g.dtypes.x == DType::BF16) return backwardHalf<__nv_bfloat16>(g, L, stream);
  backwardHalf<__half>(g, L, stream);
}

}  // namespace seqtune::gpu
