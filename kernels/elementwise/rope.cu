// RoPE: a thread owns K pairs (i, i + D/2) of one token and a few heads, so the f64 sincos of
// each (token, i) is paid once per head group rather than once per element.
#include "kernels/common/kernel_util.cuh"
#include "kernels/elementwise/rope.h"

namespace seqtune::gpu {

namespace {

// Heads per thread (blockIdx.y picks the group): amortises sincos while leaving enough threads
// to fill the GPU at a few thousand tokens.
constexpr int64_t kHeadsPerThread = 4;

template <int K, typename T>
__global__ void ropeKernel(T* out, const T* x, const int32_t* positions, const double* invFreq, double positionScale,
                           int64_t tokens, int64_t heads, int64_t dim, double sign, bool vec) {
  using C = Compute<T>;
  const int64_t half = dim / 2;
  const int64_t groupsPerToken = (half + K - 1) / K;
  const int64_t h0 = blockIdx.y * kHeadsPerThread;
  const int64_t h1 = min(heads, h0 + kHeadsPerThread);
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < tokens * groupsPerToken;
       g += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = g / groupsPerToken;
    const int64_t i = (g % groupsPerToken) * K;
    const double position = static_cast<double>(positions[t]) * positionScale;
    C c[K], s[K];
#pragma unroll
    for (int k = 0; k < K; ++k) {
      double sn = 0, cs = 0;
      if (i + k < half) sincos(position * invFreq[i + k], &sn, &cs);
      c[k] = static_cast<C>(cs);
      s[k] = static_cast<C>(sign * sn);
    }
    for (int64_t h = h0; h < h1; ++h) {
      const int64_t base = (t * heads + h) * dim;
      C x1[K], x2[K], o1[K], o2[K];
      loadGroup<K>(x + base, i, half, vec, x1);
      loadGroup<K>(x + base + half, i, half, vec, x2);
      // Separately rounded products, as the CPU computes them.
#pragma unroll
      for (int k = 0; k < K; ++k) {
        o1[k] = addRn(mulRn(x1[k], c[k]), -mulRn(x2[k], s[k]));
        o2[k] = addRn(mulRn(x2[k], c[k]), mulRn(x1[k], s[k]));
      }
      storeGroup<K>(out + base, i, half, vec, o1);
      storeGroup<K>(out + base + half, i, half, vec, o2);
    }
  }
}

}  // namespace

void rope(void* out, const void* x, const int32_t* positions, const double* invFreq, double positionScale, DType dtype,
          int64_t tokens, int64_t heads, int64_t headDim, bool inverse, cudaStream_t stream) {
  if (headDim % 2 != 0) fail(code::kShape, "rope: head dim must be even, got ", headDim);
  if (tokens == 0 || heads == 0 || headDim == 0) return;
  const int64_t headGroups = (heads + kHeadsPerThread - 1) / kHeadsPerThread;
  if (headGroups > 65535) fail(code::kShape, "rope: too many heads (", heads, ")");
  dispatchFloat(dtype, "rope", [&](auto tag) {
    using T = typename decltype(tag)::type;
    constexpr int K = groupSize<T>();
    const int64_t half = headDim / 2;
    // Each half-row must start on a vector boundary.
    const bool vec = (half * int64_t(sizeof(T))) % 16 == 0 && aligned16(out) && aligned16(x);
    const dim3 grid(gridFor(tokens * ((half + K - 1) / K)), static_cast<unsigned>(headGroups));
    ropeKernel<K><<<grid, kThreads, 0, stream>>>(static_cast<T*>(out), static_cast<const T*>(x), positions, invFreq,
                                                 positionScale, tokens, heads, headDim, inverse ? -1.0 : 1.0, vec);
    checkLaunch("rope");
  });
}

}  // namespace seqtune::gpu
