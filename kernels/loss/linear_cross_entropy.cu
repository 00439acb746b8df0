// Fused LM head + cross-entropy (kernels/loss/linear_cross_entropy.h). Per vocabulary chunk of
// `chunk` rows of W, the chunk's logits [T, chunk] come from gemm() into a scratch in f32 (f64 for
// f64 h), so on a self-tested Hopper device they run on the wgmma/TMA kernel and elsewhere on
// mma.sync or SIMT; a warp per row then
//   forward:  folds the row into its running (max, Σexp) and picks up the label's logit;
//   backward: turns the row into dlogits in h's dtype (in place for f32/f64), which feed
//             dh (+)= dlogits·W_c (f32 across chunks for bf16/f16) and dW_c = dlogitsᵀ·h.
// Logits stay f32 until the softmax: bf16 logits would cost the loss about 3 significant digits.
// Scratch is 4 (f32 logits) + 2 (bf16 dlogits) bytes per token and chunk column against torch's
// 6 per token and vocabulary column: chunk/V of it (1/31 at the default 4096 and V = 128256).
// After the last chunk one block turns the running state into lse, the loss (an f64 sum in row
// order) and the count.
#include <cmath>

#include "kernels/common/index_check.h"
#include "kernels/common/kernel_util.cuh"
#include "kernels/gemm/gemm_workspace.h"
#include "kernels/loss/linear_cross_entropy.h"
#include "kernels/loss/linear_cross_entropy_rows.h"

namespace seqtune::gpu {

namespace {

using lce::State;

bool fullPrecision(const LinearCeArgs& g) {
  return (g.hDtype == DType::F32 || g.hDtype == DType::F64) && g.weightDtype == g.hDtype;
}

// The dtype of the logits scratch, the running state and the statistics.
DType computeDtype(const LinearCeArgs& g) { return g.hDtype == DType::F64 ? DType::F64 : DType::F32; }

template <typename C>
__global__ void initKernel(State<C>* run, C* target, int64_t rows) {
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r < rows;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    run[r] = {C(-INFINITY), C(0)};
    target[r] = C(0);
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

// ---- row kernels: a warp per row of the chunk's logits [T, n] (kernels/loss/linear_cross_entropy_rows.h) --

template <typename C>
__global__ void foldLogitsKernel(State<C>* run, C* target, const C* logits, int64_t ldl, const int32_t* labels,
                                 int64_t rows, int64_t n, int64_t v0) {
  const int lane = threadIdx.x % 32, warps = blockDim.x / 32;
  for (int64_t r = blockIdx.x * static_cast<int64_t>(warps) + threadIdx.x / 32; r < rows;
       r += static_cast<int64_t>(gridDim.x) * warps) {
    const C* row = logits + r * ldl;
    State<C> s = lce::laneFold(row, n, lane);
    for (int o = 16; o > 0; o >>= 1) {
      s = lce::merge(s, State<C>{__shfl_xor_sync(0xffffffffu, s.m, o), __shfl_xor_sync(0xffffffffu, s.s, o)});
    }
    const int64_t labelCol = labels[r] - v0;
    if (lane == 0) {
      run[r] = lce::merge(run[r], s);
      if (labelCol >= 0 && labelCol < n) target[r] = row[labelCol];
    }
  }
}

// dlogits [T, n] (row stride ldo) of O from the logits [T, n] (row stride ldl); out may be logits
// itself when O is C and ldo is ldl (each lane reads and writes only its own elements).
template <typename C, typename O>
__global__ void gradLogitsKernel(const C* logits, int64_t ldl, O* out, int64_t ldo, const int32_t* labels, const C* lse,
                                 const C* count, double gradScale, bool mean, int64_t rows, int64_t n, int64_t v0,
                                 int64_t vocab, int64_t ignoreIndex) {
  const int lane = threadIdx.x % 32, warps = blockDim.x / 32;
  const C coef = static_cast<C>(lce::gradCoef(gradScale, mean, static_cast<double>(count[0])));
  for (int64_t r = blockIdx.x * static_cast<int64_t>(warps) + threadIdx.x / 32; r < rows;
       r += static_cast<int64_t>(gridDim.x) * warps) {
    const int64_t label = labels[r];
    const bool skip = lce::skipRow(label, ignoreIndex, vocab);
    const C* row = logits + r * ldl;
    O* dst = out + r * ldo;
    for (int64_t j = lane; j < n; j += 32) {
      dst[j] = static_cast<O>(skip ? C(0) : lce::dlogit(row[j], lse[r], coef, v0 + j == label));
    }
  }
}

// ---- workspace -------------------------------------------------------------------------------------

struct Layout {
  const void* h;  // h as gemm() reads it (itself, or a padded copy)
  int64_t hLd;
  void* hCopy;
  void* wChunk;  // a chunk of W converted/padded, when W cannot be read in place
  int64_t wLd;
  void* logits;  // [T, chunk] of computeDtype, row stride chunk (also for a narrower last chunk)
  int64_t ldl;
  void* run;     // forward: State per row
  void* target;  // forward: the label's logit per row
  void* dlogits;  // backward: [T, ldd] in h's dtype (the logits themselves for f32/f64)
  int64_t ldd;
  float* dh;  // backward, bf16/f16: f32 accumulator of dh
};

Layout layout(const LinearCeArgs& g, bool backward, Carve& w) {
  const int64_t T = g.rows, C = g.features, chunk = g.chunk < g.vocab ? g.chunk : g.vocab;
  const size_t e = dtypeSize(computeDtype(g));
  Layout L{};
  L.h = g.h;
  L.hLd = C;
  L.wLd = C;
  const bool full = fullPrecision(g);
  if (!full && (C % 8 != 0 || !isAligned16(g.h))) {  // the tensor cores read 16-byte rows
    L.hLd = pad8(C);
    L.hCopy = w.take(static_cast<size_t>(T * L.hLd) * 2);
    L.h = L.hCopy;
  }
  if (!full && (g.weightDtype != g.hDtype || C % 8 != 0 || !isAligned16(g.weight))) {
    L.wLd = pad8(C);
    L.wChunk = w.take(static_cast<size_t>(chunk * L.wLd) * 2);
  }
  L.ldl = chunk;
  L.logits = w.take(static_cast<size_t>(T * chunk) * e);
  if (!backward) {
    L.run = w.take(static_cast<size_t>(T) * 2 * e);
    L.target = w.take(static_cast<size_t>(T) * e);
  } else if (full) {
    L.dlogits = L.logits;
    L.ldd = chunk;
  } else {
    L.ldd = pad8(chunk);
    L.dlogits = w.take(static_cast<size_t>(T * L.ldd) * 2);
    L.dh = static_cast<float*>(w.take(static_cast<size_t>(T * C) * sizeof(float)));
  }
  return L;
}

// W rows [v0, v0 + n) as gemm() reads them.
const void* weightChunk(const LinearCeArgs& g, const Layout& L, int64_t v0, int64_t n, cudaStream_t stream) {
  const int64_t C = g.features;
  if (!L.wChunk) return static_cast<const char*>(g.weight) + v0 * C * dtypeSize(g.weightDtype);
  convertMatrix(static_cast<const char*>(g.weight) + v0 * C * dtypeSize(g.weightDtype), g.weightDtype, C, L.wChunk,
                g.hDtype, L.wLd, n, C, stream);
  return L.wChunk;
}

// One of the loss's products on gemm(): C [M, N] = op(A)·op(B) of `dtype` operands, plus C itself
// when accumulating.
void product(DType dtype, DType out, bool transA, bool transB, int64_t M, int64_t N, int64_t K, const void* a,
             int64_t lda, const void* b, int64_t ldb, void* c, int64_t ldc, bool accumulate, cudaStream_t stream) {
  GemmArgs p;
  p.dtype = dtype, p.outDtype = out, p.transA = transA, p.transB = transB;
  p.M = M, p.N = N, p.K = K;
  p.a = a, p.lda = lda, p.b = b, p.ldb = ldb, p.c = c, p.ldc = ldc;
  if (accumulate) p.beta = 1, p.cin = c, p.ldcin = ldc;
  gemm(p, stream);
}

// The chunk's logits [T, n] = h · W_cᵀ.
void chunkLogits(const LinearCeArgs& g, const Layout& L, const void* w, int64_t n, cudaStream_t stream) {
  product(g.hDtype, computeDtype(g), false, true, g.rows, n, g.features, L.h, L.hLd, w, L.wLd, L.logits, L.ldl, false,
          stream);
}

template <typename C>
void forwardChunks(const LinearCeArgs& g, const Layout& L, void* loss, void* lse, void* count, cudaStream_t stream) {
  auto* run = static_cast<State<C>*>(L.run);
  auto* target = static_cast<C*>(L.target);
  initKernel<<<gridFor(g.rows), kThreads, 0, stream>>>(run, target, g.rows);
  checkLaunch("linearCrossEntropy");
  for (int64_t v0 = 0; v0 < g.vocab && g.rows > 0; v0 += g.chunk) {
    const int64_t n = g.chunk < g.vocab - v0 ? g.chunk : g.vocab - v0;
    chunkLogits(g, L, weightChunk(g, L, v0, n, stream), n, stream);
    foldLogitsKernel<<<gridFor(g.rows, kThreads / 32), kThreads, 0, stream>>>(
        run, target, static_cast<const C*>(L.logits), L.ldl, g.labels, g.rows, n, v0);
    checkLaunch("linearCrossEntropy");
  }
  finalizeKernel<C><<<1, 1024, 0, stream>>>(run, target, g.labels, g.rows, g.vocab, g.ignoreIndex, g.mean,
                                            static_cast<C*>(loss), static_cast<C*>(lse), static_cast<C*>(count),
                                            g.errorFlag);
  checkLaunch("linearCrossEntropy");
}

// C: the logits' dtype; O: h's (the dlogits and the GEMM operands).
template <typename C, typename O>
void backwardChunks(const LinearCeArgs& g, const Layout& L, const void* lse, const void* count, double gradScale,
                    void* dh, void* dweight, cudaStream_t stream) {
  const bool full = fullPrecision(g);
  void* dhAcc = full ? dh : static_cast<void*>(L.dh);
  for (int64_t v0 = 0; v0 < g.vocab; v0 += g.chunk) {
    const int64_t n = g.chunk < g.vocab - v0 ? g.chunk : g.vocab - v0;
    const void* w = weightChunk(g, L, v0, n, stream);
    if (g.rows > 0) {
      chunkLogits(g, L, w, n, stream);
      gradLogitsKernel<<<gridFor(g.rows, kThreads / 32), kThreads, 0, stream>>>(
          static_cast<const C*>(L.logits), L.ldl, static_cast<O*>(L.dlogits), L.ldd, g.labels, static_cast<const C*>(lse),
          static_cast<const C*>(count), gradScale, g.mean, g.rows, n, v0, g.vocab, g.ignoreIndex);
      checkLaunch("linearCrossEntropyBackward");
    }
    // dh (+)= dlogits · W_c, chunks in vocabulary order
    product(g.hDtype, computeDtype(g), false, false, g.rows, g.features, n, L.dlogits, L.ldd, w, L.wLd, dhAcc,
            g.features, v0 > 0, stream);
    if (!dweight) continue;
    // dW_c = dlogitsᵀ · h
    void* dw = static_cast<char*>(dweight) + v0 * g.features * dtypeSize(g.weightDtype);
    product(g.hDtype, g.weightDtype, true, false, n, g.features, g.rows, L.dlogits, L.ldd, L.h, L.hLd, dw, g.features,
            false, stream);
  }
  if (!full) convertMatrix(L.dh, DType::F32, g.features, dh, g.hDtype, g.features, g.rows, g.features, stream);
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
  if (g.hDtype == DType::F64) return forwardChunks<double>(g, L, loss, lse, count, stream);
  forwardChunks<float>(g, L, loss, lse, count, stream);
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
    case DType::BF16: return backwardChunks<float, __nv_bfloat16>(g, L, lse, count, gradScale, dh, dweight, stream);
    case DType::F16: return backwardChunks<float, __half>(g, L, lse, count, gradScale, dh, dweight, stream);
    case DType::F32: return backwardChunks<float, float>(g, L, lse, count, gradScale, dh, dweight, stream);
    default: return backwardChunks<double, double>(g, L, lse, count, gradScale, dh, dweight, stream);
  }
}

}  // namespace seqtune::gpu
