// RMSNorm with the residual add fused in: one block per row, two sweeps over the row (the second
// re-reads the row from L1/L2, not DRAM: a 4096-wide bf16 row is 8 KiB).
#include <initializer_list>

#include "kernels/common/kernel_util.cuh"
#include "kernels/norm/rmsnorm_residual.h"

namespace seqtune::gpu {

namespace {

// Rows per dweight partial: enough blocks to fill the GPU, few enough partials to add cheaply.
constexpr int64_t kBackwardBlocks = 512;

template <int K, typename T>
__global__ void forwardKernel(T* out, T* sum, float* rstd, const T* x, const T* residual, const T* weight,
                              int64_t cols, double eps, bool vec) {
  using C = Compute<T>;
  __shared__ double scratch[32];
  const int64_t base = blockIdx.x * cols;
  double squares = 0;
  for (int64_t i = threadIdx.x * int64_t(K); i < cols; i += int64_t(blockDim.x) * K) {
    C v[K];
    loadGroup<K>(x + base, i, cols, vec, v);
    if (residual) {
      C r[K];
      loadGroup<K>(residual + base, i, cols, vec, r);
#pragma unroll
      for (int k = 0; k < K; ++k) v[k] = convert<C>(convert<T>(v[k] + r[k]));  // the stored sum
    }
    if (sum) storeGroup<K>(sum + base, i, cols, vec, v);
#pragma unroll
    for (int k = 0; k < K; ++k) squares += double(v[k]) * double(v[k]);  // past-the-end lanes are 0
  }
  squares = blockSum(squares, scratch);
  const double scale = 1.0 / sqrt(squares / double(cols) + eps);
  if (threadIdx.x == 0) rstd[blockIdx.x] = static_cast<float>(scale);
  const C s = static_cast<C>(scale);
  // The same thread wrote these elements of `sum` above, so it reads back its own stores.
  const T* normed = sum ? sum : x;
  for (int64_t i = threadIdx.x * int64_t(K); i < cols; i += int64_t(blockDim.x) * K) {
    C v[K], w[K];
    loadGroup<K>(normed + base, i, cols, vec, v);
    loadGroup<K>(weight, i, cols, vec, w);
#pragma unroll
    for (int k = 0; k < K; ++k) v[k] = v[k] * s * w[k];
    storeGroup<K>(out + base, i, cols, vec, v);
  }
}

// Block b handles rows b, b + G, ...; its dweight contributions accumulate in shared memory (each
// column always in the same thread) and are written to partial[b] at the end.
template <int K, typename T>
__global__ void backwardKernel(T* dx, double* partial, const T* dout, const T* sum, const T* weight, const float* rstd,
                               const T* dsum, int64_t rows, int64_t cols, bool vec) {
  using C = Compute<T>;
  extern __shared__ double dwAcc[];  // [cols] when partial is set
  __shared__ double scratch[32];
  if (partial) {
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) dwAcc[j] = 0;
    __syncthreads();
  }
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t base = row * cols;
    const double r = rstd[row];
    double dot = 0;
    for (int64_t i = threadIdx.x * int64_t(K); i < cols; i += int64_t(blockDim.x) * K) {
      C g[K], s[K], w[K];
      loadGroup<K>(dout + base, i, cols, vec, g);
      loadGroup<K>(sum + base, i, cols, vec, s);
      loadGroup<K>(weight, i, cols, vec, w);
#pragma unroll
      for (int k = 0; k < K; ++k) {
        dot += double(g[k]) * double(w[k]) * double(s[k]);
        if (partial && i + k < cols) dwAcc[i + k] += double(g[k]) * double(s[k]) * r;
      }
    }
    dot = blockSum(dot, scratch);
    const C rt = static_cast<C>(r);
    const C coef = static_cast<C>(r * r * r * dot / double(cols));
    for (int64_t i = threadIdx.x * int64_t(K); i < cols; i += int64_t(blockDim.x) * K) {
      C g[K], s[K], w[K], d[K];
      loadGroup<K>(dout + base, i, cols, vec, g);
      loadGroup<K>(sum + base, i, cols, vec, s);
      loadGroup<K>(weight, i, cols, vec, w);
      if (dsum) loadGroup<K>(dsum + base, i, cols, vec, d);
#pragma unroll
      for (int k = 0; k < K; ++k) {
        const C v = rt * g[k] * w[k] - s[k] * coef;
        d[k] = dsum ? v + d[k] : v;
      }
      storeGroup<K>(dx + base, i, cols, vec, d);
    }
  }
  if (partial) {
    __syncthreads();
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) partial[blockIdx.x * cols + j] = dwAcc[j];
  }
}

// dweight[j] = Σ_b partial[b][j] in block order: one thread per column, coalesced across columns.
template <typename T>
__global__ void dweightKernel(T* dweight, const double* partial, int blocks, int64_t cols) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < cols; j += int64_t(gridDim.x) * blockDim.x) {
    double acc = 0;
    for (int b = 0; b < blocks; ++b) acc += partial[b * cols + j];
    dweight[j] = convert<T>(acc);
  }
}

int backwardBlocks(int64_t rows) { return static_cast<int>(rows < kBackwardBlocks ? rows : kBackwardBlocks); }

// Rows start on 16-byte boundaries only when a row is a whole number of vectors.
bool rowsVectorisable(int64_t cols, size_t elemSize, std::initializer_list<const void*> ptrs) {
  if ((static_cast<size_t>(cols) * elemSize) % 16 != 0) return false;
  for (const void* p : ptrs) {
    if (p && !aligned16(p)) return false;
  }
  return true;
}

}  // namespace

void rmsnormForward(void* out, void* sum, float* rstd, const void* x, const void* residual, const void* weight,
                    DType dtype, int64_t rows, int64_t cols, double eps, cudaStream_t stream) {
  if (residual && !sum) fail(code::kArgument, "rmsnormForward: a residual add needs the sum output");
  if (rows == 0 || cols == 0) return;
  dispatchFloat(dtype, "rmsnormResidual", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const bool vec = rowsVectorisable(cols, sizeof(T), {out, sum, x, residual, weight});
    forwardKernel<groupSize<T>()><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
        static_cast<T*>(out), static_cast<T*>(sum), rstd, static_cast<const T*>(x), static_cast<const T*>(residual),
        static_cast<const T*>(weight), cols, eps, vec);
    checkLaunch("rmsnormResidual");
  });
}

size_t rmsnormBackwardWorkspaceBytes(int64_t rows, int64_t cols) {
  return static_cast<size_t>(backwardBlocks(rows)) * static_cast<size_t>(cols) * sizeof(double);
}

void rmsnormBackward(void* dx, void* dweight, const void* dout, const void* sum, const void* weight, const float* rstd,
                     const void* dsum, DType dtype, int64_t rows, int64_t cols, void* workspace, cudaStream_t stream) {
  if (cols == 0) return;
  if (rows == 0) {
    if (dweight) cudaCheck(cudaMemsetAsync(dweight, 0, cols * dtypeSize(dtype), stream), "rmsnormResidualBackward");
    return;
  }
  dispatchFloat(dtype, "rmsnormResidualBackward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    constexpr int K = groupSize<T>();
    const bool vec = rowsVectorisable(cols, sizeof(T), {dx, dout, sum, weight, dsum});
    const int blocks = backwardBlocks(rows);
    double* partial = dweight ? static_cast<double*>(workspace) : nullptr;
    const size_t shared = dweight ? static_cast<size_t>(cols) * sizeof(double) : 0;
    auto kernel = backwardKernel<K, T>;
    // Past 48 KiB (cols > 6144) dynamic shared memory must be opted into.
    if (shared > 48 * 1024) {
      cudaCheck(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared)),
                "rmsnormResidualBackward: cudaFuncSetAttribute");
    }
    kernel<<<blocks, kThreads, shared, stream>>>(static_cast<T*>(dx), partial, static_cast<const T*>(dout),
                                                 static_cast<const T*>(sum), static_cast<const T*>(weight), rstd,
                                                 static_cast<const T*>(dsum), rows, cols, vec);
    checkLaunch("rmsnormResidualBackward");
    if (dweight) {
      dweightKernel<<<gridFor(cols), kThreads, 0, stream>>>(static_cast<T*>(dweight), partial, blocks, cols);
      checkLaunch("rmsnormResidualBackward (dweight)");
    }
  });
}

}  // namespace seqtune::gpu
