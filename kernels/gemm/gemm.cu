// gemm(): argument checks, the plan (tile and K split, gemm_layout.h's planGemm), dispatch to the
// Hopper kernel (bf16/f16 on a compute capability 9.0 device that passed its self-test, large
// shapes: gemm_hopper.h), the mma.sync tensor-core kernel (other bf16/f16) or the SIMT kernel
// (f32/f64), the split-K reduction, and the bias gradient of matmulBackward.
#include <atomic>

#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_epilogue.h"
#include "kernels/hopper/gemm_hopper.h"
#include "kernels/gemm/gemm_linear_out.h"
#include "kernels/gemm/gemm_simt.h"
#include "kernels/gemm/gemm_workspace.h"

namespace seqtune::gpu {

namespace tc = seqtune::gemm;

int smCount() {
  static std::atomic<int> cached[64] = {};
  int device = 0;
  cudaCheck(cudaGetDevice(&device), "cudaGetDevice");
  std::atomic<int>& slot = cached[device & 63];
  int n = slot.load(std::memory_order_relaxed);
  if (n == 0) {
    cudaCheck(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
    slot.store(n, std::memory_order_relaxed);
  }
  return n;
}

namespace {

// cp.async moves 16-byte chunks: the operand's base, rows and batches must all start on 16 bytes.
bool vecOperand(const void* p, int64_t ld, int64_t stride) { return isAligned16(p) && ld % 8 == 0 && stride % 8 == 0; }

void check(const GemmArgs& g) {
  const bool half = isHalf(g.dtype);
  if (!half && g.dtype != DType::F32 && g.dtype != DType::F64) {
    fail(code::kDtype, "gemm: operands must be bf16, f16, f32 or f64, got ", dtypeName(g.dtype));
  }
  if (g.outDtype != g.dtype && !(half && g.outDtype == DType::F32)) {
    fail(code::kDtype, "gemm: a ", dtypeName(g.dtype), " product cannot be stored as ", dtypeName(g.outDtype));
  }
  if (g.bias && g.biasDtype != g.dtype && !(half && g.biasDtype == DType::F32)) {
    fail(code::kDtype, "gemm: bias must be ", dtypeName(g.dtype), half ? " or f32" : "", ", got ", dtypeName(g.biasDtype));
  }
  if (g.M < 0 || g.N < 0 || g.K < 0 || g.batch < 0) {
    fail(code::kArgument, "gemm: negative size M=", g.M, " N=", g.N, " K=", g.K, " batch=", g.batch);
  }
  const int64_t aCols = g.transA ? g.M : g.K, bCols = g.transB ? g.K : g.N;
  if (g.lda < aCols || g.ldb < bCols || g.ldc < g.N || (g.cin && g.ldcin < g.N)) {
    fail(code::kArgument, "gemm: leading dimension below the row length (lda=", g.lda, " ldb=", g.ldb, " ldc=", g.ldc,
         " for M=", g.M, " N=", g.N, " K=", g.K, ")");
  }
  if (g.M > 0 && g.N > 0 && g.batch > 0 && (!g.c || (g.K > 0 && (!g.a || !g.b)))) {
    fail(code::kArgument, "gemm: null operand pointer");
  }
}

// f32 partials [split][batch][M][N] -> C = alpha·Σ_split + bias + beta·Cin, summed in split order.
template <typename T>
__global__ void splitReduceKernel(const float* partials, int splits, int64_t batch, int64_t M, int64_t N,
                                  tc::LinearOut o) {
  const int64_t total = batch * M * N, perSplit = total;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float s = 0.f;
    for (int k = 0; k < splits; ++k) s += partials[k * perSplit + i];
    const int64_t b = i / (M * N), row = (i / N) % M, col = i % N;
    float v = o.alpha * s;
    if (o.bias) v += o.biasF32 ? static_cast<const float*>(o.bias)[col] : tc::toFloat(static_cast<const T*>(o.bias)[col]);
    const int64_t at = b * o.batchStride + row * o.ld + col;
    if (o.cin) {
      const int64_t ci = b * o.cinBatchStride + row * o.ldCin + col;
      v += o.beta * (o.f32 ? static_cast<const float*>(o.cin)[ci] : tc::toFloat(static_cast<const T*>(o.cin)[ci]));
    }
    if (o.f32) {
      static_cast<float*>(o.out)[at] = v;
    } else {
      static_cast<T*>(o.out)[at] = tc::fromFloat<T>(v);
    }
  }
}

int reduceGrid(int64_t n) {
  const int64_t blocks = (n + 255) / 256;
  return static_cast<int>(blocks < 1 ? 1 : (blocks > 8192 ? 8192 : blocks));
}

template <class Cfg, typename T, bool VEC, class Epi>
void launchTrans(const GemmArgs& g, const tc::TcParams& p, const Epi& epi, cudaStream_t stream) {
  if (g.transA) {
    if (g.transB) {
      tc::launchTc<Cfg, T, true, true, VEC, tc::kDropNone>(p, g.batch, epi, stream, "gemm");
    } else {
      tc::launchTc<Cfg, T, true, false, VEC, tc::kDropNone>(p, g.batch, epi, stream, "gemm");
    }
  } else if (g.transB) {
    tc::launchTc<Cfg, T, false, true, VEC, tc::kDropNone>(p, g.batch, epi, stream, "gemm");
  } else {
    tc::launchTc<Cfg, T, false, false, VEC, tc::kDropNone>(p, g.batch, epi, stream, "gemm");
  }
}

template <class Cfg, typename T, bool VEC>
void launchPlanned(const GemmArgs& g, int splits, const tc::LinearEpilogue<T, tc::kExtNone>& epi,
                   cudaStream_t stream) {
  const tc::TcParams p = tc::tcParams<Cfg>(g.M, g.N, g.K, {g.a, g.lda, g.strideA}, {g.b, g.ldb, g.strideB}, splits);
  launchTrans<Cfg, T, VEC>(g, p, epi, stream);
}

bool vecArgs(const GemmArgs& g) {
  return vecOperand(g.a, g.lda, g.strideA) && vecOperand(g.b, g.ldb, g.strideB);
}

tc::Plan plan(const GemmArgs& g, bool canSplit) {
  return tc::planGemm(g.M, g.N, g.K, g.batch, vecArgs(g), smCount(), canSplit);
}

size_t partialBytes(const GemmArgs& g, int splits) {
  return static_cast<size_t>(splits) * static_cast<size_t>(g.batch * g.M * g.N) * sizeof(float);
}

template <typename T>
void tensorCoreGemm(const GemmArgs& g, cudaStream_t stream) {
  tc::Plan pl = plan(g, g.workspace != nullptr);
  if (pl.splits > 1 && g.workspaceBytes < partialBytes(g, pl.splits)) pl.splits = 1;
  tc::LinearEpilogue<T, tc::kExtNone> epi{linearOut(g), {}};
  if (pl.splits > 1) {
    // Each split writes its raw f32 partial; the reduction applies the real epilogue.
    tc::LinearOut part{};
    part.out = g.workspace;
    part.ld = g.N;
    part.batchStride = g.M * g.N;
    part.splitStride = g.batch * g.M * g.N;
    part.f32 = true;
    part.vec = isAligned16(g.workspace) && g.N % 4 == 0;
    part.alpha = 1.f;
    epi.o = part;
  }
  const bool vec = vecArgs(g);
  switch (pl.tile) {
    case tc::Tile::k128x128: launchPlanned<tc::Cfg128x128, T, true>(g, pl.splits, epi, stream); break;
    case tc::Tile::k128x64: launchPlanned<tc::Cfg128x64, T, true>(g, pl.splits, epi, stream); break;
    case tc::Tile::k64x128: launchPlanned<tc::Cfg64x128, T, true>(g, pl.splits, epi, stream); break;
    case tc::Tile::k64x64:
      if (vec) {
        launchPlanned<tc::Cfg64x64, T, true>(g, pl.splits, epi, stream);
      } else {
        launchPlanned<tc::Cfg64x64, T, false>(g, pl.splits, epi, stream);
      }
      break;
  }
  if (pl.splits > 1) {
    const int64_t n = g.batch * g.M * g.N;
    splitReduceKernel<T><<<reduceGrid(n), 256, 0, stream>>>(static_cast<const float*>(g.workspace), pl.splits, g.batch,
                                                            g.M, g.N, linearOut(g));
    checkLaunch("gemm split-K reduction");
  }
}

template <typename T>
void simt(const GemmArgs& g, cudaStream_t stream) {
  SimtGemm<T> s;
  s.transA = g.transA;
  s.transB = g.transB;
  s.M = g.M;
  s.N = g.N;
  s.K = g.K;
  s.batch = g.batch;
  s.a = static_cast<const T*>(g.a);
  s.lda = g.lda;
  s.strideA = g.strideA;
  s.b = static_cast<const T*>(g.b);
  s.ldb = g.ldb;
  s.strideB = g.strideB;
  s.c = static_cast<T*>(g.c);
  s.ldc = g.ldc;
  s.strideC = g.strideC;
  s.alpha = static_cast<T>(g.alpha);
  s.bias = static_cast<const T*>(g.bias);
  s.beta = static_cast<T>(g.beta);
  s.cin = g.beta != 0 ? static_cast<const T*>(g.cin) : nullptr;
  s.ldcin = g.ldcin;
  s.strideCin = g.strideCin;
  simtGemm(s, stream);
}

// ---- bias gradient ---------------------------------------------------------------------------------

constexpr int kBiasCols = 256;

int biasStrips(int64_t rows, int64_t N) {
  const int64_t colBlocks = (N + kBiasCols - 1) / kBiasCols;
  int64_t strips = (2 * static_cast<int64_t>(smCount()) + colBlocks - 1) / colBlocks;
  const int64_t maxStrips = (rows + 63) / 64;  // at least 64 rows per strip
  if (strips > maxStrips) strips = maxStrips;
  return static_cast<int>(strips < 1 ? 1 : strips);
}

// f64 stays f64; every other dtype sums in f32.
template <typename Acc, typename T>
__device__ __forceinline__ Acc toAcc(T v) {
  if constexpr (std::is_same_v<T, double>) {
    return v;
  } else {
    return tc::toFloat(v);
  }
}

template <typename T, typename Acc>
__device__ __forceinline__ T fromAcc(Acc v) {
  if constexpr (std::is_same_v<T, double>) {
    return v;
  } else {
    return tc::fromFloat<T>(v);
  }
}

template <typename T, typename Acc>
__global__ void biasPartialKernel(Acc* partial, const T* dc, int64_t rows, int64_t N, int64_t ldc, int strips) {
  const int64_t col = static_cast<int64_t>(blockIdx.x) * kBiasCols + threadIdx.x;
  if (col >= N) return;
  const int64_t per = (rows + strips - 1) / strips;
  const int64_t r0 = blockIdx.y * per, r1 = r0 + per < rows ? r0 + per : rows;
  Acc s = 0;
  for (int64_t r = r0; r < r1; ++r) s += toAcc<Acc>(dc[r * ldc + col]);
  partial[blockIdx.y * N + col] = s;
}

template <typename T, typename Acc>
__global__ void biasSumKernel(T* dbias, const Acc* partial, int64_t N, int strips) {
  const int64_t col = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (col >= N) return;
  Acc s = 0;
  for (int k = 0; k < strips; ++k) s += partial[k * N + col];
  dbias[col] = fromAcc<T>(s);
}

template <typename T, typename Acc>
void biasGrad(void* dbias, const void* dc, int64_t rows, int64_t N, int64_t ldc, void* workspace, cudaStream_t stream) {
  const int strips = biasStrips(rows, N);
  const unsigned colBlocks = static_cast<unsigned>((N + kBiasCols - 1) / kBiasCols);
  Acc* partial = static_cast<Acc*>(workspace);
  biasPartialKernel<T, Acc><<<dim3(colBlocks, strips), kBiasCols, 0, stream>>>(partial, static_cast<const T*>(dc), rows,
                                                                               N, ldc, strips);
  checkLaunch("gemm bias gradient");
  biasSumKernel<T, Acc><<<colBlocks, kBiasCols, 0, stream>>>(static_cast<T*>(dbias), partial, N, strips);
  checkLaunch("gemm bias gradient");
}

// ---- conversion -------------------------------------------------------------------------------------

template <typename S, typename D>
__global__ void convertKernel(const S* src, int64_t srcLd, D* dst, int64_t dstLd, int64_t rows, int64_t cols) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < rows * cols;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    dst[r * dstLd + c] = tc::fromFloat<D>(tc::toFloat(src[r * srcLd + c]));
  }
}

template <typename S>
void convertFrom(const S* src, int64_t srcLd, void* dst, DType dstDtype, int64_t dstLd, int64_t rows, int64_t cols,
                 cudaStream_t stream) {
  const int grid = reduceGrid(rows * cols);
  switch (dstDtype) {
    case DType::BF16:
      convertKernel<<<grid, 256, 0, stream>>>(src, srcLd, static_cast<__nv_bfloat16*>(dst), dstLd, rows, cols);
      break;
    case DType::F16: convertKernel<<<grid, 256, 0, stream>>>(src, srcLd, static_cast<__half*>(dst), dstLd, rows, cols); break;
    case DType::F32: convertKernel<<<grid, 256, 0, stream>>>(src, srcLd, static_cast<float*>(dst), dstLd, rows, cols); break;
    default: fail(code::kDtype, "convertMatrix: unsupported destination ", dtypeName(dstDtype));
  }
  checkLaunch("convertMatrix");
}

}  // namespace

void convertMatrix(const void* src, DType srcDtype, int64_t srcLd, void* dst, DType dstDtype, int64_t dstLd,
                   int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  switch (srcDtype) {
    case DType::BF16:
      return convertFrom(static_cast<const __nv_bfloat16*>(src), srcLd, dst, dstDtype, dstLd, rows, cols, stream);
    case DType::F16: return convertFrom(static_cast<const __half*>(src), srcLd, dst, dstDtype, dstLd, rows, cols, stream);
    case DType::F32: return convertFrom(static_cast<const float*>(src), srcLd, dst, dstDtype, dstLd, rows, cols, stream);
    default: break;
  }
  fail(code::kDtype, "convertMatrix: unsupported source ", dtypeName(srcDtype));
}

size_t gemmWorkspaceBytes(const GemmArgs& g) {
  if (!isHalf(g.dtype) || g.M <= 0 || g.N <= 0 || g.batch <= 0) return 0;
  const tc::Plan pl = plan(g, true);
  return pl.splits > 1 ? partialBytes(g, pl.splits) : 0;
}

void gemmTensorCore(const GemmArgs& g, cudaStream_t stream) {
  if (g.dtype == DType::BF16) return tensorCoreGemm<__nv_bfloat16>(g, stream);
  tensorCoreGemm<__half>(g, stream);
}

void gemm(const GemmArgs& g, cudaStream_t stream) {
  check(g);
  if (g.M == 0 || g.N == 0 || g.batch == 0) return;
  if (isHalf(g.dtype) && hopperGemmWanted(g, stream) && hopperGemm(g, stream)) return;
  switch (g.dtype) {
    case DType::BF16:
    case DType::F16: return gemmTensorCore(g, stream);
    case DType::F32: return simt<float>(g, stream);
    case DType::F64: return simt<double>(g, stream);
    case DType::I32: break;
  }
  fail(code::kDtype, "gemm: unsupported dtype ", dtypeName(g.dtype));
}

size_t gemmBiasGradWorkspaceBytes(int64_t rows, int64_t N) {
  if (rows <= 0 || N <= 0) return 0;
  return static_cast<size_t>(biasStrips(rows, N)) * static_cast<size_t>(N) * sizeof(double);
}

void gemmBiasGrad(void* dbias, const void* dc, DType dtype, int64_t rows, int64_t N, int64_t ldc, void* workspace,
                  cudaStream_t stream) {
  if (N <= 0) return;
  if (rows < 0 || ldc < N) fail(code::kArgument, "gemmBiasGrad: rows=", rows, " ldc=", ldc, " for N=", N);
  if (rows == 0) {
    cudaCheck(cudaMemsetAsync(dbias, 0, static_cast<size_t>(N) * dtypeSize(dtype), stream), "cudaMemsetAsync");
    return;
  }
  if (!workspace) fail(code::kArgument, "gemmBiasGrad: no workspace");
  switch (dtype) {
    case DType::BF16: return biasGrad<__nv_bfloat16, float>(dbias, dc, rows, N, ldc, workspace, stream);
    case DType::F16: return biasGrad<__half, float>(dbias, dc, rows, N, ldc, workspace, stream);
    case DType::F32: return biasGrad<float, float>(dbias, dc, rows, N, ldc, workspace, stream);
    case DType::F64: return biasGrad<double, double>(dbias, dc, rows, N, ldc, workspace, stream);
    case DType::I32: break;
  }
  fail(code::kDtype, "gemmBiasGrad: unsupported dtype ", dtypeName(dtype));
}

}  // namespace seqtune::gpu
