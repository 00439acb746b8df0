// Fused LM head + cross-entropy (kernels/loss/linear_cross_entropy.h). Per vocabulary chunk of `chunk` rows of W:
//   forward  (bf16/f16): GEMM h·W_cᵀ with CeForwardEpilogue -> per-(row, tile) (max, Σexp)
//            partials -> fold into each row's running (max, Σexp) in tile order;
//   backward (bf16/f16): GEMM h·W_cᵀ with CeBackwardEpilogue -> dlogits [T, chunk] in h's dtype
//            -> dh_f32 (+)= dlogits·W_c, dW_c = dlogitsᵀ·h (gemm());
//   f32/f64: the SIMT GEMM writes the chunk's logits, a warp per row folds them (forward) or turns
//            them into dlogits in place (backward).
// After the last chunk one block turns the running state into lse, the loss (an f64 sum in row
// order) and the count.
#include <cmath>

#include "kernels/gemm/gemm_simt.h"
#include "kernels/gemm/gemm_workspace.h"
#include "kernels/common/index_check.h"
#include "kernels/loss/linear_cross_entropy.h"
#include "kernels/loss/linear_cross_entropy_epilogue.h"

namespace seqtune::gpu {

namespace tc = seqtune::gemm;

namespace {

constexpr int kThreads = 256;

bool fullPrecision(const LinearCeArgs& g) {
  return (g.hDtype == DType::F32 || g.hDtype == DType::F64) && g.weightDtype == g.hDtype;
}

int gridFor(int64_t n, int per = kThreads) {
  const int64_t b = (n + per - 1) / per;
  return static_cast<int>(b < 1 ? 1 : (b > 65535 ? 65535 : b));
}

template <typename C>
struct State {
  C m, s;
};

template <typename C>
__device__ __forceinline__ State<C> merge(State<C> a, State<C> b) {
  const C m = a.m > b.m ? a.m : b.m;
  if (m == C(-INFINITY)) return {m, C(0)};
  return {m, a.s * exp(a.m - m) + b.s * exp(b.m - m)};
}

template <typename C>
__global__ void initKernel(State<C>* run, C* target, int64_t rows) {
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r < rows;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    run[r] = {C(-INFINITY), C(0)};
    target[r] = C(0);
  }
}

// Folds one chunk's tile partials into each row's running state, tiles in order.
__global__ void foldPartialsKernel(State<float>* run, const tc::MaxSum* partials, int tilesN, int64_t rows) {
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r < rows;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    State<float> s = run[r];
    for (int t = 0; t < tilesN; ++t) s = merge(s, State<float>{partials[r * tilesN + t].m, partials[r * tilesN + t].s});
    run[r] = s;
  }
}

// One block: lse, loss (f64, rows in a fixed partition and tree) and count; flags bad labels.
template <typename C>
__global__ void __launch_bounds__(1024) finalizeKernel(const State<C>* run, const C* target, const int32_t* labels,
                                                       int64_t rows, int64_t vocab, int64_t ignoreIndex, bool mean,
                                                       C* loss, C* lse, C* count, int* errorFlag) {
  __shared__ double sums[32], counts[32];
  double total = 0, n = 0;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    const C l = run[r].m + log(run[r].s);
    lse[r] = l;
    const int64_t label = labels[r];
    if (label != ignoreIndex && (label < 0 || label >= vocab)) {
      if (errorFlag) seqtune::gpu::flagBadIndex(errorFlag, r, rows);
      continue;
    }
    if (label == ignoreIndex) continue;
    total += static_cast<double>(l - target[r]);
    n += 1;
  }
  for (int o = 16; o > 0; o >>= 1) {
    total += __shfl_xor_sync(0xffffffffu, total, o);
    n += __shfl_xor_sync(0xffffffffu, n, o);
  }
  if (threadIdx.x % 32 == 0) sums[threadIdx.x / 32] = total, counts[threadIdx.x / 32] = n;
  __syncthreads();
  if (threadIdx.x != 0) return;
  total = 0, n = 0;
  for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) total += sums[w], n += counts[w];
  loss[0] = static_cast<C>(mean ? (n > 0 ? total / n : 0.0) : total);
  count[0] = static_cast<C>(n);
}

__global__ void flagLabelsKernel(const int32_t* labels, int64_t rows, int64_t vocab, int64_t ignoreIndex, int* flag) {
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r < rows;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t label = labels[r];
    if (label != ignoreIndex && (label < 0 || label >= vocab)) seqtune::gpu::flagBadIndex(flag, r, rows);
  }
}

// ---- f32 / f64 row kernels: a warp per row of the chunk's logits -----------------------------------

template <typename C>
__global__ void foldLogitsKernel(State<C>* run, C* target, const C* logits, const int32_t* labels, int64_t rows,
                                 int64_t n, int64_t v0) {
  const int lane = threadIdx.x % 32, warps = blockDim.x / 32;
  for (int64_t r = blockIdx.x * static_cast<int64_t>(warps) + threadIdx.x / 32; r < rows;
       r += static_cast<int64_t>(gridDim.x) * warps) {
    const C* row = logits + r * n;
    State<C> s{C(-INFINITY), C(0)};
    for (int64_t j = lane; j < n; j += 32) s = merge(s, State<C>{row[j], C(1)});
    for (int o = 16; o > 0; o >>= 1) {
      s = merge(s, State<C>{__shfl_xor_sync(0xffffffffu, s.m, o), __shfl_xor_sync(0xffffffffu, s.s, o)});
    }
    const int64_t labelCol = labels[r] - v0;
    if (lane == 0) {
      run[r] = merge(run[r], s);
      if (labelCol >= 0 && labelCol < n) target[r] = row[labelCol];
    }
  }
}

template <typename C>
__global__ void gradLogitsKernel(C* logits, const int32_t* labels, const C* lse, const C* count, double gradScale,
                                 bool mean, int64_t rows, int64_t n, int64_t v0, int64_t vocab, int64_t ignoreIndex) {
  const int lane = threadIdx.x % 32, warps = blockDim.x / 32;
  const double cnt = count[0];
  const C coef = static_cast<C>(mean ? (cnt > 0 ? gradScale / cnt : 0.0) : gradScale);
  for (int64_t r = blockIdx.x * static_cast<int64_t>(warps) + threadIdx.x / 32; r < rows;
       r += static_cast<int64_t>(gridDim.x) * warps) {
    const int64_t label = labels[r];
    const bool skip = label == ignoreIndex || label < 0 || label >= vocab;
    C* row = logits + r * n;
    for (int64_t j = lane; j < n; j += 32) {
      C d = skip ? C(0) : exp(row[j] - lse[r]) * coef;
      if (!skip && v0 + j == label) d -= coef;
      row[j] = d;
    }
  }
}

// ---- workspace -------------------------------------------------------------------------------------

struct Layout {
  const void* h;  // h as the tensor cores read it (itself, or a padded copy)
  int64_t hLd;
  void* hCopy;
  void* wChunk;  // a chunk of W converted/padded, when W cannot be read in place
  int64_t wLd;
  tc::MaxSum* partials;
  void* run;
  void* target;
  void* dlogits;  // bf16/f16: [T, ldd]; f32/f64: the chunk's logits [T, chunk]
  int64_t ldd;
  float* dh;  // f32 accumulator of dh (bf16/f16)
};

Layout layout(const LinearCeArgs& g, bool backward, Carve& w) {
  const int64_t T = g.rows, C = g.features, chunk = g.chunk < g.vocab ? g.chunk : g.vocab;
  Layout L{};
  if (fullPrecision(g)) {
    const size_t e = dtypeSize(g.hDtype);
    L.dlogits = w.take(static_cast<size_t>(T * chunk) * e);
    if (!backward) {
      L.run = w.take(static_cast<size_t>(T) * 2 * e);
      L.target = w.take(static_cast<size_t>(T) * e);
    }
    return L;
  }
  L.h = g.h;
  L.hLd = C;
  if (C % 8 != 0 || !isAligned16(g.h)) {
    L.hLd = pad8(C);
    L.hCopy = w.take(static_cast<size_t>(T * L.hLd) * 2);
    L.h = L.hCopy;
  }
  L.wLd = C;
  if (g.weightDtype != g.hDtype || C % 8 != 0 || !isAligned16(g.weight)) {
    L.wLd = pad8(C);
    L.wChunk = w.take(static_cast<size_t>(chunk * L.wLd) * 2);
  }
  if (!backward) {
    L.partials = static_cast<tc::MaxSum*>(w.take(static_cast<size_t>(T * tc::ceilDiv(chunk, 64)) * sizeof(tc::MaxSum)));
    L.run = w.take(static_cast<size_t>(T) * sizeof(State<float>));
    L.target = w.take(static_cast<size_t>(T) * sizeof(float));
  } else {
    L.ldd = pad8(chunk);
    L.dlogits = w.take(static_cast<size_t>(T * L.ldd) * 2);
    L.dh = static_cast<float*>(w.take(static_cast<size_t>(T * C) * sizeof(float)));
  }
  return L;
}

// W rows [v0, v0 + n) as the tensor cores read them.
const void* weightChunk(const LinearCeArgs& g, const Layout& L, int64_t v0, int64_t n, cudaStream_t stream) {
  const int64_t C = g.features;
  if (!L.wChunk) return static_cast<const char*>(g.weight) + v0 * C * dtypeSize(g.weightDtype);
  convertMatrix(static_cast<const char*>(g.weight) + v0 * C * dtypeSize(g.weightDtype), g.weightDtype, C, L.wChunk,
                g.hDtype, L.wLd, n, C, stream);
  return L.wChunk;
}

// ---- bf16 / f16 ------------------------------------------------------------------------------------

// The chunk's logits GEMM h·W_cᵀ with a cross-entropy epilogue; 128x128 tiles once they fill the GPU.
bool bigTiles(const LinearCeArgs& g, int64_t n) { return tc::tileCount(tc::Tile::k128x128, g.rows, n, 1) >= smCount(); }

template <class Cfg, typename H, class Epi>
void logitsGemm(const LinearCeArgs& g, const Layout& L, const void* w, int64_t n, const Epi& epi, cudaStream_t stream) {
  const tc::TcParams p = tc::tcParams<Cfg>(g.rows, n, g.features, {L.h, L.hLd, 0}, {w, L.wLd, 0}, 1);
  tc::launchTc<Cfg, H, false, true, true, tc::kDropNone>(p, 1, epi, stream, "linearCrossEntropy");
}

template <typename H>
void forwardHalf(const LinearCeArgs& g, const Layout& L, void* loss, void* lse, void* count, cudaStream_t stream) {
  auto* run = static_cast<State<float>*>(L.run);
  auto* target = static_cast<float*>(L.target);
  initKernel<<<gridFor(g.rows), kThreads, 0, stream>>>(run, target, g.rows);
  checkLaunch("linearCrossEntropy");
  for (int64_t v0 = 0; v0 < g.vocab && g.rows > 0; v0 += g.chunk) {
    const int64_t n = g.chunk < g.vocab - v0 ? g.chunk : g.vocab - v0;
    const void* w = weightChunk(g, L, v0, n, stream);
    const bool big = bigTiles(g, n);
    const int tilesN = static_cast<int>(tc::ceilDiv(n, big ? tc::Cfg128x128::BN : tc::Cfg64x64::BN));
    const tc::CeForwardEpilogue<H> epi{g.labels, v0, tilesN, L.partials, target};
    if (big) {
      logitsGemm<tc::Cfg128x128, H>(g, L, w, n, epi, stream);
    } else {
      logitsGemm<tc::Cfg64x64, H>(g, L, w, n, epi, stream);
    }
    foldPartialsKernel<<<gridFor(g.rows), kThreads, 0, stream>>>(run, L.partials, tilesN, g.rows);
    checkLaunch("linearCrossEntropy");
  }
  finalizeKernel<float><<<1, 1024, 0, stream>>>(run, target, g.labels, g.rows, g.vocab, g.ignoreIndex, g.mean,
                                                static_cast<float*>(loss), static_cast<float*>(lse),
                                                static_cast<float*>(count), g.errorFlag);
  checkLaunch("linearCrossEntropy");
}

template <typename H>
void backwardHalf(const LinearCeArgs& g, const Layout& L, const void* lse, const void* count, double gradScale, void* dh,
                  void* dweight, cudaStream_t stream) {
  const DType h = g.hDtype;
  for (int64_t v0 = 0; v0 < g.vocab; v0 += g.chunk) {
    const int64_t n = g.chunk < g.vocab - v0 ? g.chunk : g.vocab - v0;
    const void* w = weightChunk(g, L, v0, n, stream);
    if (g.rows > 0) {
      const tc::CeBackwardEpilogue<H> epi{g.labels,   static_cast<const float*>(lse), static_cast<const float*>(count),
                                          gradScale,  g.mean, g.ignoreIndex, g.vocab, v0, static_cast<H*>(L.dlogits),
                                          L.ldd};
      if (bigTiles(g, n)) {
        logitsGemm<tc::Cfg128x128, H>(g, L, w, n, epi, stream);
      } else {
        logitsGemm<tc::Cfg64x64, H>(g, L, w, n, epi, stream);
      }
    }
    GemmArgs dhArgs;  // dh (+)= dlogits · W_c, in f32 across chunks
    dhArgs.dtype = h;
    dhArgs.outDtype = DType::F32;
    dhArgs.M = g.rows;
    dhArgs.N = g.features;
    dhArgs.K = n;
    dhArgs.a = L.dlogits;
    dhArgs.lda = L.ldd;
    dhArgs.b = w;
    dhArgs.ldb = L.wLd;
    dhArgs.c = L.dh;
    dhArgs.ldc = g.features;
    if (v0 > 0) {
      dhArgs.beta = 1;
      dhArgs.cin = L.dh;
      dhArgs.ldcin = g.features;
    }
    gemm(dhArgs, stream);
    if (!dweight) continue;
    GemmArgs dw;  // dW_c = dlogitsᵀ · h
    dw.dtype = h;
    dw.outDtype = g.weightDtype;
    dw.transA = true;
    dw.M = n;
    dw.N = g.features;
    dw.K = g.rows;
    dw.a = L.dlogits;
    dw.lda = L.ldd;
    dw.b = L.h;
    dw.ldb = L.hLd;
    dw.c = static_cast<char*>(dweight) + v0 * g.features * dtypeSize(g.weightDtype);
    dw.ldc = g.features;
    gemm(dw, stream);
  }
  convertMatrix(L.dh, DType::F32, g.features, dh, h, g.features, g.rows, g.features, stream);
}

// ---- f32 / f64 -------------------------------------------------------------------------------------

template <typename C>
SimtGemm<C> chunkLogits(const LinearCeArgs& g, const Layout& L, int64_t v0, int64_t n) {
  SimtGemm<C> s;
  s.transB = true;
  s.M = g.rows;
  s.N = n;
  s.K = g.features;
  s.a = static_cast<const C*>(g.h);
  s.lda = g.features;
  s.b = static_cast<const C*>(g.weight) + v0 * g.features;
  s.ldb = g.features;
  s.c = static_cast<C*>(L.dlogits);
  s.ldc = n;
  return s;
}

template <typename C>
void forwardFull(const LinearCeArgs& g, const Layout& L, void* loss, void* lse, void* count, cudaStream_t stream) {
  auto* run = static_cast<State<C>*>(L.run);
  auto* target = static_cast<C*>(L.target);
  initKernel<<<gridFor(g.rows), kThreads, 0, stream>>>(run, target, g.rows);
  checkLaunch("linearCrossEntropy");
  for (int64_t v0 = 0; v0 < g.vocab && g.rows > 0; v0 += g.chunk) {
    const int64_t n = g.chunk < g.vocab - v0 ? g.chunk : g.vocab - v0;
    simtGemm(chunkLogits<C>(g, L, v0, n), stream);
    foldLogitsKernel<<<gridFor(g.rows, kThreads / 32), kThreads, 0, stream>>>(run, target, static_cast<const C*>(L.dlogits),
                                                                              g.labels, g.rows, n, v0);
    checkLaunch("linearCrossEntropy");
  }
  finalizeKernel<C><<<1, 1024, 0, stream>>>(run, target, g.labels, g.rows, g.vocab, g.ignoreIndex, g.mean,
                                            static_cast<C*>(loss), static_cast<C*>(lse), static_cast<C*>(count),
                                            g.errorFlag);
  checkLaunch("linearCrossEntropy");
}

template <typename C>
void backwardFull(const LinearCeArgs& g, const Layout& L, const void* lse, const void* count, double gradScale, void* dh,
                  void* dweight, cudaStream_t stream) {
  C* logits = static_cast<C*>(L.dlogits);
  for (int64_t v0 = 0; v0 < g.vocab; v0 += g.chunk) {
    const int64_t n = g.chunk < g.vocab - v0 ? g.chunk : g.vocab - v0;
    if (g.rows > 0) {
      simtGemm(chunkLogits<C>(g, L, v0, n), stream);
      gradLogitsKernel<<<gridFor(g.rows, kThreads / 32), kThreads, 0, stream>>>(
          logits, g.labels, static_cast<const C*>(lse), static_cast<const C*>(count), gradScale, g.mean, g.rows, n, v0,
          g.vocab, g.ignoreIndex);
      checkLaunch("linearCrossEntropyBackward");
    }
    SimtGemm<C> dhs;  // dh (+)= dlogits · W_c
    dhs.M = g.rows;
    dhs.N = g.features;
    dhs.K = n;
    dhs.a = logits;
    dhs.lda = n;
    dhs.b = static_cast<const C*>(g.weight) + v0 * g.features;
    dhs.ldb = g.features;
    dhs.c = static_cast<C*>(dh);
    dhs.ldc = g.features;
    if (v0 > 0) {
      dhs.cin = static_cast<const C*>(dh);
      dhs.ldcin = g.features;
      dhs.beta = 1;
    }
    simtGemm(dhs, stream);
    if (!dweight) continue;
    SimtGemm<C> dw;  // dW_c = dlogitsᵀ · h
    dw.transA = true;
    dw.M = n;
    dw.N = g.features;
    dw.K = g.rows;
    dw.a = logits;
    dw.lda = n;
    dw.b = static_cast<const C*>(g.h);
    dw.ldb = g.features;
    dw.c = static_cast<C*>(dweight) + v0 * g.features;
    dw.ldc = g.features;
    simtGemm(dw, stream);
  }
}

void check(const LinearCeArgs& g, const char* op) {
  if (g.rows < 0 || g.features < 1 || g.vocab < 1) {
    fail(code::kShape, op, ": expected T >= 0, C >= 1, V >= 1, got T=", g.rows, " C=", g.features, " V=", g.vocab);
  }
  if (g.chunk < 1) fail(code::kArgument, op, ": chunkSize must be >= 1, got ", g.chunk);
  const bool half = isHalf(g.hDtype) && (g.weightDtype == g.hDtype || g.weightDtype == DType::F32);
  if (!half && !fullPrecision(g)) {
    fail(code::kNotImplemented, op, " on CUDA: h ", dtypeName(g.hDtype), " with a ", dtypeName(g.weightDtype),
         " head; supported: f32/f32, f64/f64, bf16 or f16 h with a head of the same dtype or f32");
  }
}

Layout carved(const LinearCeArgs& g, bool backward, const char* op) {
  check(g, op);
  Carve w(g.workspace);
  const Layout L = layout(g, backward, w);
  if (g.workspaceBytes < w.used()) fail(code::kArgument, op, ": workspace of ", g.workspaceBytes, " bytes, ", w.used(), " needed");
  return L;
}

}  // namespace

size_t linearCrossEntropyWorkspaceBytes(const LinearCeArgs& g, bool backward) {
  Carve w(nullptr);
  layout(g, backward, w);
  return w.used();
}

void linearCrossEntropyForward(const LinearCeArgs& g, void* loss, void* lse, void* count, cudaStream_t stream) {
  const Layout L = carved(g, false, "linearCrossEntropy");
  if (L.hCopy) convertMatrix(g.h, g.hDtype, g.features, L.hCopy, g.hDtype, L.hLd, g.rows, g.features, stream);
  switch (g.hDtype) {
    case DType::BF16: return forwardHalf<__nv_bfloat16>(g, L, loss, lse, count, stream);
    case DType::F16: return forwardHalf<__half>(g, L, loss, lse, count, stream);
    case DType::F32: return forwardFull<float>(g, L, loss, lse, count, stream);
    default: return forwardFull<double>(g, L, loss, lse, count, stream);
  }
}

void linearCrossEntropyBackward(const LinearCeArgs& g, const void* lse, const void* count, double gradScale, void* dh,
                                void* dweight, cudaStream_t stream) {
  const Layout L = carved(g, true, "linearCrossEntropyBackward");
  if (g.errorFlag && g.rows > 0) {
    flagLabelsKernel<<<gridFor(g.rows), kThreads, 0, stream>>>(g.labels, g.rows, g.vocab, g.ignoreIndex, g.errorFlag);
    checkLaunch("linearCrossEntropyBackward");
  }
  if (L.hCopy) convertMatrix(g.h, g.hDtype, g.features, L.hCopy, g.hDtype, L.hLd, g.rows, g.features, stream);
  switch (g.hDtype) {
    case DType::BF16: return backwardHalf<__nv_bfloat16>(g, L, lse, count, gradScale, dh, dweight, stream);
    case DType::F16: return backwardHalf<__half>(g, L, lse, count, gradScale, dh, dweight, stream);
    case DType::F32: return backwardFull<float>(g, L, lse, count, gradScale, dh, dweight, stream);
    default: return backwardFull<double>(g, L, lse, count, gradScale, dh, dweight, stream);
  }
}

}  // namespace seqtune::gpu
