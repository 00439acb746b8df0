// SwiGLU forward and backward: memory-bound elementwise kernels over 16-byte vector groups; the
// backward recomputes σ(gate) instead of storing it.
#include "kernels/common/kernel_util.cuh"
#include "kernels/elementwise/swiglu.h"

namespace seqtune::gpu {

namespace {

__device__ __forceinline__ float sigmoid(float g) { return 1.0f / (1.0f + expf(-g)); }
__device__ __forceinline__ double sigmoid(double g) { return 1.0 / (1.0 + exp(-g)); }

template <int K, typename T>
__global__ void forwardKernel(T* out, const T* gate, const T* up, int64_t n, bool vec) {
  using C = Compute<T>;
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g * K < n; g += int64_t(gridDim.x) * blockDim.x) {
    C a[K], u[K];
    loadGroup<K>(gate, g * K, n, vec, a);
    loadGroup<K>(up, g * K, n, vec, u);
#pragma unroll
    for (int k = 0; k < K; ++k) a[k] = a[k] * sigmoid(a[k]) * u[k];
    storeGroup<K>(out, g * K, n, vec, a);
  }
}

template <int K, typename T>
__global__ void backwardKernel(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n, bool vec) {
  using C = Compute<T>;
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g * K < n; g += int64_t(gridDim.x) * blockDim.x) {
    C d[K], a[K], u[K], da[K], du[K];
    loadGroup<K>(dout, g * K, n, vec, d);
    loadGroup<K>(gate, g * K, n, vec, a);
    loadGroup<K>(up, g * K, n, vec, u);
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const C s = sigmoid(a[k]);
      da[k] = d[k] * u[k] * s * (C(1) + a[k] * (C(1) - s));
      du[k] = d[k] * a[k] * s;
    }
    storeGroup<K>(dgate, g * K, n, vec, da);
    storeGroup<K>(dup, g * K, n, vec, du);
  }
}

}  // namespace

void swigluForward(void* out, const void* gate, const void* up, DType dtype, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  dispatchFloat(dtype, "swiglu", [&](auto tag) {
    using T = typename decltype(tag)::type;
    constexpr int K = groupSize<T>();
    const bool vec = aligned16(out) && aligned16(gate) && aligned16(up);
    forwardKernel<K><<<gridFor((n + K - 1) / K), kThreads, 0, stream>>>(
        static_cast<T*>(out), static_cast<const T*>(gate), static_cast<const T*>(up), n, vec);
    checkLaunch("swiglu");
  });
}

void swigluBackward(void* dgate, void* dup, const void* dout, const void* gate, const void* up, DType dtype, int64_t n,
                    cudaStream_t stream) {
  if (n == 0) return;
  dispatchFloat(dtype, "swigluBackward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    constexpr int K = groupSize<T>();
    const bool vec = aligned16(dgate) && aligned16(dup) && aligned16(dout) && aligned16(gate) && aligned16(up);
    backwardKernel<K><<<gridFor((n + K - 1) / K), kThreads, 0, stream>>>(
        static_cast<T*>(dgate), static_cast<T*>(dup), static_cast<const T*>(dout), static_cast<const T*>(gate),
        static_cast<const T*>(up), n, vec);
    checkLaunch("swigluBackward");
  });
}

}  // namespace seqtune::gpu
