// Multi-tensor AdamW: like gradNorm, the grid walks fixed-size chunks of all tensors, so one launch
// updates hundreds of LoRA adapters or a full model. Each element is read and written once
// (param, m, v: read + write; grad: read), which makes the step memory-bound.
#include <cmath>

#include "kernels/optim/adamw.h"
#include "kernels/optim/grad_norm.h"
#include "kernels/common/kernel_util.cuh"

namespace seqtune::gpu {

namespace {

// Elements per chunk: a multiple of every group size, so no group straddles two chunks.
constexpr int64_t kChunk = 4096;

// Step constants, computed once on the host in f64 as the CPU does, rounded per tensor.
struct Coefs {
  double decay, beta1, beta2, stepSize, bc2Sqrt, eps;
};

template <typename P, typename G>
__device__ void updateChunk(const AdamwTensor& t, int64_t begin, int64_t end, const Coefs& h, double clip) {
  using C = Compute<P>;
  constexpr int K = groupSize<P, G>();
  const C decay = static_cast<C>(h.decay), b1 = static_cast<C>(h.beta1), b2 = static_cast<C>(h.beta2);
  const C stepSize = static_cast<C>(h.stepSize), bc2Sqrt = static_cast<C>(h.bc2Sqrt), eps = static_cast<C>(h.eps);
  const C c = static_cast<C>(clip);
  P* param = static_cast<P*>(t.param);
  P* mPtr = static_cast<P*>(t.m);
  P* vPtr = static_cast<P*>(t.v);
  const G* grad = static_cast<const G*>(t.grad);
  for (int64_t i = begin + threadIdx.x * int64_t(K); i < end; i += int64_t(blockDim.x) * K) {
    C p[K], m[K], v[K], g[K];
    loadGroup<K>(param, i, t.n, t.vec, p);
    loadGroup<K>(mPtr, i, t.n, t.vec, m);
    loadGroup<K>(vPtr, i, t.n, t.vec, v);
    loadGroup<K>(grad, i, t.n, t.vec, g);
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const C gi = g[k] * c;
      // Decoupled weight decay first, then the moments, as torch.optim.AdamW.
      p[k] *= decay;
      m[k] = b1 * m[k] + (C(1) - b1) * gi;
      v[k] = b2 * v[k] + (C(1) - b2) * gi * gi;
      p[k] -= stepSize * m[k] / (sqrt(v[k]) / bc2Sqrt + eps);
    }
    storeGroup<K>(param, i, t.n, t.vec, p);
    storeGroup<K>(mPtr, i, t.n, t.vec, m);
    storeGroup<K>(vPtr, i, t.n, t.vec, v);
  }
}

template <typename P>
__device__ void updateByGrad(const AdamwTensor& t, int64_t begin, int64_t end, const Coefs& h, double clip) {
  switch (t.gradType) {
    case DType::F64: return updateChunk<P, double>(t, begin, end, h, clip);
    case DType::BF16: return updateChunk<P, __nv_bfloat16>(t, begin, end, h, clip);
    case DType::F16: return updateChunk<P, __half>(t, begin, end, h, clip);
    default: return updateChunk<P, float>(t, begin, end, h, clip);
  }
}

__global__ void adamwKernel(const AdamwTensor* table, int count, int64_t chunks, Coefs h, const void* gradNorm,
                            DType normType, double maxGradNorm, const void* guard, DType guardType) {
  if (guard && !isfinite(readScalar(guard, guardType))) return;
  const double clip = gradNorm ? clipFactor(gradNorm, normType, maxGradNorm) : 1.0;
  for (int64_t c = blockIdx.x; c < chunks; c += gridDim.x) {
    const AdamwTensor t = table[findTensor(table, count, c)];
    const int64_t begin = (c - t.firstChunk) * kChunk, end = min(t.n, begin + kChunk);
    if (t.paramType == DType::F64) {
      updateByGrad<double>(t, begin, end, h, clip);
    } else {
      updateByGrad<float>(t, begin, end, h, clip);
    }
  }
}

}  // namespace

int64_t adamwPrepare(AdamwTensor* table, int count) {
  int64_t chunks = 0;
  for (int i = 0; i < count; ++i) {
    AdamwTensor& t = table[i];
    if (t.paramType != DType::F32 && t.paramType != DType::F64) {
      fail(code::kDtype, "adamw: params[", i, "] must be f32 or f64, got ", dtypeName(t.paramType));
    }
    if (!isFloating(t.gradType)) fail(code::kDtype, "adamw: grads[", i, "] must be floating point");
    t.firstChunk = chunks;
    t.vec = aligned16(t.param) && aligned16(t.m) && aligned16(t.v) && aligned16(t.grad);
    chunks += (t.n + kChunk - 1) / kChunk;
  }
  return chunks;
}

void adamw(const AdamwTensor* table, int count, int64_t chunks, const AdamwHyper& hp, const void* gradNorm,
           DType normType, const void* guard, DType guardType, cudaStream_t stream) {
  if (chunks == 0) return;
  const double t = static_cast<double>(hp.step);
  const Coefs h{1 - hp.lr * hp.weightDecay,
                hp.beta1,
                hp.beta2,
                hp.lr / (1 - std::pow(hp.beta1, t)),
                std::sqrt(1 - std::pow(hp.beta2, t)),
                hp.eps};
  const int blocks = static_cast<int>(chunks < kMaxBlocks ? chunks : kMaxBlocks);
  adamwKernel<<<blocks, kThreads, 0, stream>>>(table, count, chunks, h, hp.maxGradNorm > 0 ? gradNorm : nullptr,
                                               normType, hp.maxGradNorm, guard, guardType);
  checkLaunch("adamw");
}

}  // namespace seqtune::gpu
