// Attention forward launchers: the tiled FlashAttention-2 kernel (flash_attention_fwd.cuh; mma.sync,
// so sm_80 and up), the routing of decoding shapes to attention_decode and, on a Hopper that passed
// its self-test, of packed shapes to flash_attention_hopper, and of other dtypes and head dims to
// attention_simt; and the index check.
#include "kernels/attention/attention_decode.h"
#include "kernels/attention/attention_simt.h"
#include "kernels/hopper/flash_attention_hopper.h"
#include "kernels/attention/flash_attention_launch.cuh"
#include "kernels/attention/flash_attention_fwd.cuh"
#include "kernels/common/index_check.h"

namespace seqtune::gpu {

namespace attn {
namespace {

template <typename T, int D>
__global__ void __launch_bounds__(FwdConfig<D>::kThreads) forwardKernel(const FwdParams<T> p) {
  extern __shared__ int4 smemRaw[];
  forwardTile<T, D>(p, reinterpret_cast<T*>(smemRaw));
}

template <typename T, int D>
void launchForward(const AttentionShape& shape, const void* q, const void* k, const void* v, const int32_t* cu,
                   const int32_t* qOffset, const int32_t* kvLens, void* out, float* lse, cudaStream_t stream) {
  using C = FwdConfig<D>;
  const int64_t blocks = virtualBlocks(shape.batch, shape.tokens, C::kBM);
  expectGrid("attention", blocks, shape.heads);
  FwdParams<T> p{static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v), static_cast<T*>(out),
                 lse, cu, qOffset, kvLens, shape.tokens, shape.maxTokens, static_cast<int>(shape.batch),
                 static_cast<int>(shape.heads), static_cast<int>(shape.kvHeads), scaleLog2(shape), shape.causal};
  auto kernel = forwardKernel<T, D>;
  profiler::noteKernel("mma");
  allowSharedMemory(kernel, C::kSmemBytes, "attention: cudaFuncSetAttribute");
  kernel<<<dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(shape.heads)), C::kThreads, C::kSmemBytes,
           stream>>>(p);
  checkLaunch("attention: forward kernel");
}

__global__ void checkIndicesKernel(const int32_t* cu, const int32_t* qOffset, const int32_t* kvLens, int batch,
                                   int64_t tokens, int64_t maxTokens, int* flag) {
  for (int b = threadIdx.x; b <= batch; b += blockDim.x) {
    bool bad = b == 0 ? cu[0] != 0 : cu[b] < cu[b - 1];
    if (b == batch) bad = bad || cu[b] != tokens;
    if (kvLens && b < batch) bad = bad || qOffset[b] < 0 || kvLens[b] < 0 || kvLens[b] > maxTokens;
    if (bad) flagBadIndex(flag, b, batch + 1);
  }
}

}  // namespace
}  // namespace attn

using namespace attn;

void attentionCheckIndices(const AttentionShape& shape, const int32_t* cuSeqlens, const int32_t* qOffset,
                           const int32_t* kvLens, int* errorFlag, cudaStream_t stream) {
  resetIndexFlag(errorFlag, stream);
  checkIndicesKernel<<<1, 256, 0, stream>>>(cuSeqlens, qOffset, kvLens, static_cast<int>(shape.batch), shape.tokens,
                                            shape.maxTokens, errorFlag);
  checkLaunch("attention: index check kernel");
}

size_t attentionForwardWorkspaceBytes(const AttentionShape& shape) {
  return useDecodeKernel(shape) ? attentionDecodeWorkspaceBytes(shape) : 0;
}

void attentionForward(const AttentionShape& shape, DType dtype, const void* q, const void* k, const void* v,
                      const int32_t* cuSeqlens, const int32_t* qOffset, const int32_t* kvLens, void* out, float* lse,
                      void* workspace, cudaStream_t stream) {
  // No sequences: nothing to do (T > 0 then is bad metadata, which attentionCheckIndices reports).
  if (shape.tokens == 0 || shape.heads == 0 || shape.batch == 0) return;
  if (!attentionOnTensorCores(dtype, shape.headDim)) {
    return attentionForwardSimt(shape, dtype, q, k, v, cuSeqlens, qOffset, kvLens, out, lse, stream);
  }
  expectAligned("attention", "q", q);
  expectAligned("attention", "k", k);
  expectAligned("attention", "v", v);
  expectAligned("attention", "out", out);
  if (useDecodeKernel(shape)) {
    return attentionDecode(shape, dtype, q, k, v, cuSeqlens, qOffset, kvLens, out, lse, workspace, stream);
  }
  if (hopperAttentionWanted(shape, dtype, stream) &&
      hopperAttentionForward(shape, dtype, q, k, v, cuSeqlens, out, lse, stream)) {
    return;
  }
  dispatchKind(dtype, shape.headDim, "attention", [&](auto kind) {
    using K = decltype(kind);
    launchForward<typename K::type, K::kHeadDim>(shape, q, k, v, cuSeqlens, qOffset, kvLens, out, lse, stream);
  });
}

void attentionForwardAmpere(const AttentionShape& shape, DType dtype, const void* q, const void* k, const void* v,
                            const int32_t* cuSeqlens, void* out, float* lse, cudaStream_t stream) {
  if (shape.tokens == 0 || shape.heads == 0 || shape.batch == 0) return;
  dispatchKind(dtype, shape.headDim, "attention", [&](auto kind) {
    using K = decltype(kind);
    launchForward<typename K::type, K::kHeadDim>(shape, q, k, v, cuSeqlens, nullptr, nullptr, out, lse, stream);
  });
}

}  // namespace seqtune::gpu
