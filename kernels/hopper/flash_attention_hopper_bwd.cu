// The Hopper attention backward's key-block passes (sm_90a) and their launch;
// flash_attention_hopper.h says when attentionBackward uses them. Same frame as the
// FlashAttention-2 key-block kernel (flash_attention_bwd.cuh): a CTA owns 128 keys of one kv head
// of one document, keys as rows, and walks the query tiles that see them, head by head of the
// group, so dK and dV are written once, summed in a fixed order. On the forward's machinery
// (flash_attention_hopper.cuh): the producer warpgroup loads the K (and V) block once and streams
// 64-query tiles of Q and dO through a TMA ring; each consumer warpgroup owns 64 keys and runs
//   Sᵀ = K·Qᵀ (wgmma from shared memory), Pᵀ = exp2(Sᵀ·scale·log2e - lse·log2e), masked,
//   dV pass: dV += Pᵀ·dO (wgmma with Pᵀ from registers);
//   dK pass: dPᵀ = V·dOᵀ, dSᵀ = Pᵀ ∘ (dPᵀ - Di), dK += dSᵀ·Q, dK·scale at the end;
// the elementwise work of tile u overlapping the register-A wgmma of tile u - 1. One accumulator
// per pass keeps a consumer within its registers at D = 128 (dK and dV together, next to Sᵀ and
// dPᵀ, would spill); the price is Sᵀ computed twice. dQ comes from the FlashAttention-2
// query-block pass (deterministic). The device code is in flash_attention_hopper_bwd.cuh (the host
// test emulates it).
#include <cuda_runtime.h>

#include <string>
#include <type_traits>

#include "kernels/hopper/flash_attention_hopper.h"
#include "kernels/hopper/flash_attention_hopper_bwd.cuh"
#include "kernels/attention/flash_attention_launch.cuh"
#include "kernels/hopper/hopper_host.h"

namespace seqtune::gpu::attn::hopper {

template <typename T, int D, bool kDk>
__global__ void __launch_bounds__(kThreads, 1)
    hopperBackwardKernel(const __grid_constant__ CUtensorMap mapQ, const __grid_constant__ CUtensorMap mapK,
                         const __grid_constant__ CUtensorMap mapV, const __grid_constant__ CUtensorMap mapDo,
                         const BwdParams<T> p) {
#if defined(SEQTUNE_SM90A)
  extern __shared__ __align__(1024) unsigned char smem[];
  backwardCta<T, D, kDk>(mapQ, mapK, mapV, mapDo, p, smem);
#else
  reportFault(p.fault, kFaultNoSm90a);
#endif
}

}  // namespace seqtune::gpu::attn::hopper

namespace seqtune::gpu {

namespace ah = seqtune::gpu::attn::hopper;

namespace {

template <typename T, int D, bool kDk>
void launchPass(const CUtensorMap (&maps)[4], const ah::BwdParams<T>& p, const AttentionShape& shape,
                cudaStream_t stream) {
  const int64_t blocks = attn::virtualBlocks(shape.batch, shape.tokens, ah::kBlockRows);
  profiler::noteKernel("hopper");
  ah::hopperBackwardKernel<T, D, kDk>
      <<<dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(shape.kvHeads)), ah::kThreads,
         ah::BwdConfig<D>::kSmemBytes, stream>>>(maps[0], maps[1], maps[2], maps[3], p);
  checkLaunch(kDk ? "attentionBackward (Hopper dK kernel)" : "attentionBackward (Hopper dV kernel)");
}

template <typename T, int D>
bool launchBackward(const AttentionShape& shape, const HopperBackwardArgs& a, cudaStream_t stream,
                    const HopperAttentionLaunch& options) {
  using C = ah::BwdConfig<D>;
  static HopperKernelState dvState, dkState;  // both passes runnable, or neither is launched
  if (!hopperKernelReady(ah::hopperBackwardKernel<T, D, false>, C::kSmemBytes, ah::kLaunchRegs, dvState, options.why) ||
      !hopperKernelReady(ah::hopperBackwardKernel<T, D, true>, C::kSmemBytes, ah::kLaunchRegs, dkState, options.why)) {
    return false;
  }
  const DType dtype = std::is_same_v<T, __nv_bfloat16> ? DType::BF16 : DType::F16;
  CUtensorMap maps[4];  // Q, K, V, dO
  const ah::TmaGeometry gTile = ah::tmaGeometry(shape.tokens, shape.heads, D, C::kTileRows);
  const ah::TmaGeometry gBlock = ah::tmaGeometry(shape.tokens, shape.kvHeads, D, ah::kWarpgroupRows);
  const void* bases[4] = {a.q, a.k, a.v, a.dout};
  for (int i = 0; i < 4; ++i) {
    const ah::TmaGeometry& g = i == 1 || i == 2 ? gBlock : gTile;
    if (!encodeTensorMap(&maps[i], dtype, bases[i], g.dims, g.strides, g.box, options.why)) return false;
  }
  ah::BwdParams<T> p{static_cast<T*>(a.dv), a.lse2, a.di, a.cuSeqlens, shape.tokens,
                     static_cast<int>(shape.batch), static_cast<int>(shape.heads), static_cast<int>(shape.kvHeads),
                     attn::scaleLog2(shape), static_cast<float>(shape.scale), shape.causal, options.fault};
  launchPass<T, D, false>(maps, p, shape, stream);
  p.grad = static_cast<T*>(a.dk);
  launchPass<T, D, true>(maps, p, shape, stream);
  return true;
}

}  // namespace

bool hopperAttentionBackwardKeys(const AttentionShape& shape, DType dtype, const HopperBackwardArgs& args,
                                 cudaStream_t stream, const HopperAttentionLaunch& options) {
  if (!hopperAttentionSupports(shape, dtype)) {
    if (options.why) *options.why = "arguments not supported";
    return false;
  }
  bool launched = false;
  attn::dispatchKind(dtype, shape.headDim, "attentionBackward", [&](auto kind) {
    using K = decltype(kind);
    launched = launchBackward<typename K::type, K::kHeadDim>(shape, args, stream, options);
  });
  return launched;
}

}  // namespace seqtune::gpu
