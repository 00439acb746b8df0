// f32/f64 GEMM on the CUDA cores (kernels/gemm/gemm_simt.h). A 64x64 block tile, 256 threads each
// holding a 4x4 grid of outputs strided by 16 (rows ty + 16i, columns tx + 16j: warps store
// 16 consecutive columns, and shared-memory reads are broadcasts along A and consecutive along B);
// K steps of 16 through shared memory, the next step's global loads issued before this step's
// arithmetic. Global reads are coalesced for either storage order of each operand.
#include <cuda_runtime.h>

#include "kernels/common/cuda_check.h"
#include "kernels/gemm/gemm_simt.h"
#include "kernels/common/philox.h"
#include "kernels/common/kernel_note.h"

namespace seqtune::gpu {

namespace {

constexpr int kTile = 64, kStep = 16, kThreads = 256, kPerThread = kTile * kStep / kThreads;

// Where the i-th element a thread loads sits in a [kTile, kStep] (or [kStep, kTile]) tile: the
// contiguous dimension of the stored operand varies fastest across threads.
struct TileIndex {
  int mn, k;
};

__device__ __forceinline__ TileIndex tileIndex(int e, bool kContiguous) {
  return kContiguous ? TileIndex{e / kStep, e % kStep} : TileIndex{e % kTile, e / kTile};
}

template <typename T>
__device__ __forceinline__ T loadOperand(const T* base, int64_t ld, bool kContiguous, int64_t mn, int64_t k,
                                         int64_t mnLimit, int64_t kLimit, bool drop, const SimtGemm<T>& g) {
  if (mn >= mnLimit || k >= kLimit) return T(0);
  const int64_t row = kContiguous ? mn : k, col = kContiguous ? k : mn;
  if (drop && !dropoutKeep(g.seed, g.offset, static_cast<uint64_t>(row * g.dropLd + col), g.p)) return T(0);
  return base[row * ld + col];
}

template <typename T>
__global__ void __launch_bounds__(kThreads) simtGemmKernel(const SimtGemm<T> g, int64_t batch0) {
  __shared__ T as[kStep][kTile + 1];
  __shared__ T bs[kStep][kTile + 1];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t batch = batch0 + blockIdx.z;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kTile, n0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const T* A = g.a + batch * g.strideA;
  const T* B = g.b + batch * g.strideB;
  const bool aK = !g.transA, bK = g.transB;  // is K the stored operand's contiguous dimension
  T ra[kPerThread], rb[kPerThread];
  auto fetch = [&](int64_t k0) {
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
      const int e = threadIdx.x + i * kThreads;
      const TileIndex ta = tileIndex(e, aK), tb = tileIndex(e, bK);
      ra[i] = loadOperand(A, g.lda, aK, m0 + ta.mn, k0 + ta.k, g.M, g.K, g.dropOperand == 1, g);
      rb[i] = loadOperand(B, g.ldb, bK, n0 + tb.mn, k0 + tb.k, g.N, g.K, g.dropOperand == 2, g);
    }
  };
  T acc[4][4] = {};
  if (g.K > 0) fetch(0);
  for (int64_t k0 = 0; k0 < g.K; k0 += kStep) {
    __syncthreads();  // the previous step's reads of as/bs are done
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
      const int e = threadIdx.x + i * kThreads;
      const TileIndex ta = tileIndex(e, aK), tb = tileIndex(e, bK);
      as[ta.k][ta.mn] = ra[i];
      bs[tb.k][tb.mn] = rb[i];
    }
    __syncthreads();
    if (k0 + kStep < g.K) fetch(k0 + kStep);
#pragma unroll
    for (int k = 0; k < kStep; ++k) {
      T av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) av[i] = as[k][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) bv[j] = bs[k][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
      }
    }
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t row = m0 + ty + 16 * i;
    if (row >= g.M) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t col = n0 + tx + 16 * j;
      if (col >= g.N) continue;
      T v = g.alpha * acc[i][j];
      if (g.maskOut && !dropoutKeep(g.seed, g.offset, static_cast<uint64_t>(row * g.maskLd + col), g.p)) v = T(0);
      if (g.bias) v += g.bias[col];
      if (g.cin) v += g.beta * g.cin[batch * g.strideCin + row * g.ldcin + col];
      g.c[batch * g.strideC + row * g.ldc + col] = v;
    }
  }
}

}  // namespace

template <typename T>
void simtGemm(const SimtGemm<T>& g, cudaStream_t stream) {
  if (g.M <= 0 || g.N <= 0 || g.batch <= 0) return;
  const int64_t tilesM = (g.M + kTile - 1) / kTile, tilesN = (g.N + kTile - 1) / kTile;
  if (tilesM > 65535 || tilesN > 0x7fffffff) fail(code::kArgument, "gemm: ", g.M, " x ", g.N, " exceeds the f32 grid");
  profiler::noteKernel("simt");
  for (int64_t b0 = 0; b0 < g.batch; b0 += 65535) {
    const int64_t n = g.batch - b0 < 65535 ? g.batch - b0 : 65535;
    const dim3 grid(static_cast<unsigned>(tilesN), static_cast<unsigned>(tilesM), static_cast<unsigned>(n));
    simtGemmKernel<T><<<grid, kThreads, 0, stream>>>(g, b0);
    checkLaunch("gemm (f32/f64)");
  }
}

template void simtGemm<float>(const SimtGemm<float>&, cudaStream_t);
template void simtGemm<double>(const SimtGemm<double>&, cudaStream_t);

}  // namespace seqtune::gpu
