// The Hopper attention forward kernel (sm_90a) and its launch; flash_attention_hopper.h says when
// attentionForward uses it. FlashAttention-3's consumer structure, per CTA of 2 warpgroups (256
// threads; no producer warpgroup, flash_attention_hopper_layout.h says why):
// - one CTA per block of 128 queries of one head of one document (the grid and the block search of
//   the FlashAttention-2 kernel, flash_attention_layout.h), the costliest blocks first;
// - thread 0 loads the block's Q once and the first lap of 128-key K and V tiles into the ring
//   (FwdConfig: 4 stages at D = 64, 3 at D = 128), K and V on separate "full" mbarriers so
//   S = Q·Kᵀ can start before V has landed; after each tile it refills the stages both warpgroups
//   released;
// - each warpgroup owns 64 query rows: S = Q·Kᵀ by wgmma from shared memory, the online softmax
//   in registers (the FlashAttention-2 kernel's softmaxTile), and O += P·V by wgmma with P
//   straight from registers (its accumulator layout is wgmma's A layout);
// - the softmax of tile t overlaps the P·V wgmma of tile t - 1: S(t) and P(t-1)·V(t-1) are issued
//   back to back, the exponentials of S(t) run while P·V runs, and only then is O rescaled;
// - the epilogue normalises O, writes lse, and stages O through the warpgroup's own Q rows for
//   16-byte stores.
// The device code is in flash_attention_hopper_fwd.cuh (the host test emulates it).
// Rows past the document inside a K or V tile are other documents' (or TMA's zeros past the
// tensor): their scores are masked to -inf, so their P is exactly 0 and they add nothing (unless
// they hold an infinity or NaN, which would already be wrong in their own document).
#include <cuda_runtime.h>

#include <string>
#include <type_traits>

#include "kernels/hopper/flash_attention_hopper.h"
#include "kernels/hopper/flash_attention_hopper_fwd.cuh"
#include "kernels/attention/flash_attention_launch.cuh"
#include "kernels/hopper/hopper_host.h"

namespace seqtune::gpu::attn::hopper {

template <typename T, int D>
__global__ void __launch_bounds__(kThreads, 1)
    hopperForwardKernel(const __grid_constant__ CUtensorMap mapQ, const __grid_constant__ CUtensorMap mapK,
                        const __grid_constant__ CUtensorMap mapV, const Params<T> p) {
#if defined(SEQTUNE_SM90A)
  extern __shared__ __align__(1024) unsigned char smem[];
  forwardCta<T, D>(mapQ, mapK, mapV, p, smem);
#else
  reportFault(p.fault, kFaultNoSm90a);
#endif
}

}  // namespace seqtune::gpu::attn::hopper

namespace seqtune::gpu {

namespace ah = seqtune::gpu::attn::hopper;

namespace {

constexpr int64_t kMaxCoord = int64_t(1) << 31;  // TMA coordinates are int32

template <typename T, int D>
bool launch(const AttentionShape& shape, const void* q, const void* k, const void* v, const int32_t* cu, void* out,
            float* lse, cudaStream_t stream, const HopperAttentionLaunch& options) {
  using C = ah::FwdConfig<D>;
  static HopperKernelState state;
  auto kernel = ah::hopperForwardKernel<T, D>;
  static const int regs = attn::kernelRegisters(kernel);
  if (!hopperKernelReady(kernel, C::kSmemBytes, regs, state, options.why)) return false;
  const DType dtype = std::is_same_v<T, __nv_bfloat16> ? DType::BF16 : DType::F16;
  CUtensorMap mapQ, mapK, mapV;
  const ah::TmaGeometry gq = ah::tmaGeometry(shape.tokens, shape.heads, D, ah::kWarpgroupRows);
  const ah::TmaGeometry gkv = ah::tmaGeometry(shape.tokens, shape.kvHeads, D, C::kTileRows);
  if (!encodeTensorMap(&mapQ, dtype, q, gq.dims, gq.strides, gq.box, options.why) ||
      !encodeTensorMap(&mapK, dtype, k, gkv.dims, gkv.strides, gkv.box, options.why) ||
      !encodeTensorMap(&mapV, dtype, v, gkv.dims, gkv.strides, gkv.box, options.why)) {
    return false;
  }
  const ah::Params<T> p{static_cast<T*>(out), lse, cu, shape.tokens, static_cast<int>(shape.batch),
                        static_cast<int>(shape.heads), static_cast<int>(shape.kvHeads), attn::scaleLog2(shape),
                        shape.causal, options.fault};
  const int64_t blocks = attn::virtualBlocks(shape.batch, shape.tokens, ah::kBlockRows);
  profiler::noteKernel("hopper");
  kernel<<<dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(shape.heads)), ah::kThreads, C::kSmemBytes,
           stream>>>(mapQ, mapK, mapV, p);
  checkLaunch("attention (Hopper kernel)");
  return true;
}

}  // namespace

bool hopperAttentionSupports(const AttentionShape& shape, DType dtype) {
  if (dtype != DType::BF16 && dtype != DType::F16) return false;
  if (shape.maxTokens != 0 || (shape.headDim != 64 && shape.headDim != 128)) return false;
  if (shape.tokens <= 0 || shape.heads <= 0 || shape.kvHeads <= 0 || shape.batch <= 0) return false;
  if (shape.heads % shape.kvHeads != 0 || shape.heads > 65535) return false;
  // Row coordinates reach T + 127; the grid's x extent is B + T / 128.
  return shape.tokens + 256 < kMaxCoord && shape.heads < kMaxCoord &&
         attn::virtualBlocks(shape.batch, shape.tokens, ah::kBlockRows) <= INT32_MAX;
}

bool hopperAttentionForward(const AttentionShape& shape, DType dtype, const void* q, const void* k, const void* v,
                            const int32_t* cuSeqlens, void* out, float* lse, cudaStream_t stream,
                            const HopperAttentionLaunch& options) {
  if (!hopperAttentionSupports(shape, dtype)) {
    if (options.why) *options.why = "arguments not supported";
    return false;
  }
  bool launched = false;
  attn::dispatchKind(dtype, shape.headDim, "attention", [&](auto kind) {
    using K = decltype(kind);
    launched = launch<typename K::type, K::kHeadDim>(shape, q, k, v, cuSeqlens, out, lse, stream, options);
  });
  return launched;
}

}  // namespace seqtune::gpu
