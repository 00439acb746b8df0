// Dropout: one Philox evaluation per element (the counter is the element index), so no mask is
// stored and any element can be recomputed.
#include "kernels/elementwise/dropout.h"
#include "kernels/common/kernel_util.cuh"
#include "kernels/common/philox.h"

namespace seqtune::gpu {

namespace {

template <int K, typename T>
__global__ void dropoutKernel(T* out, const T* x, int64_t n, float p, Compute<T> scale, uint64_t seed,
                              uint64_t offset, bool vec) {
  using C = Compute<T>;
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g * K < n; g += int64_t(gridDim.x) * blockDim.x) {
    C v[K];
    loadGroup<K>(x, g * K, n, vec, v);
#pragma unroll
    for (int k = 0; k < K; ++k) {
      v[k] = dropoutKeep(seed, offset, static_cast<uint64_t>(g * K + k), p) ? v[k] * scale : C(0);
    }
    storeGroup<K>(out, g * K, n, vec, v);
  }
}

}  // namespace

void dropout(void* out, const void* x, DType dtype, int64_t n, double p, uint64_t seed, uint64_t offset,
             cudaStream_t stream) {
  if (!(p >= 0 && p < 1)) fail(code::kArgument, "dropout: p must be in [0, 1), got ", p);
  if (n == 0) return;
  if (p == 0) {
    cudaCheck(cudaMemcpyAsync(out, x, static_cast<size_t>(n) * dtypeSize(dtype), cudaMemcpyDeviceToDevice, stream),
              "dropout: cudaMemcpyAsync");
    return;
  }
  dispatchFloat(dtype, "dropout", [&](auto tag) {
    using T = typename decltype(tag)::type;
    constexpr int K = groupSize<T>();
    // The CPU's constants: the scale rounded from f64, the threshold as f32.
    const auto scale = static_cast<Compute<T>>(1.0 / (1.0 - p));
    dropoutKernel<K><<<gridFor((n + K - 1) / K), kThreads, 0, stream>>>(
        static_cast<T*>(out), static_cast<const T*>(x), n, static_cast<float>(p), scale, seed, offset,
        aligned16(out) && aligned16(x));
    checkLaunch("dropout");
  });
}

}  // namespace seqtune::gpu
