// The Hopper attention backward (sm_90a) and its launch; flash_attention_hopper.h says when
// attentionBackward uses it. FlashAttention-3's structure in the frame of the FlashAttention-2
// key-block kernel (flash_attention_bwd.cuh): a CTA owns 128 keys of one kv head of one document,
// keys as rows, and walks the 64-query tiles that see them, head by head of the group, so dK and
// dV are written once, summed in a fixed order. On the forward's machinery
// (flash_attention_hopper.cuh): thread 0 loads the K and V blocks once and streams Q and dO tiles
// through a TMA ring; each of the two warpgroups owns 64 keys and, per tile, runs
//   Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ (wgmma from shared memory, one commit group),
//   Pᵀ = exp2(Sᵀ·scale·log2e - lse·log2e), masked; dSᵀ = Pᵀ ∘ (dPᵀ - Di),
//   dV += Pᵀ·dO and dK += dSᵀ·Q (wgmma with A from registers), dK·scale at the end;
// so Sᵀ is computed once, with dK and dV (128 registers at D = 128) and Sᵀ, dPᵀ live together
// (hence no producer warpgroup: thread 0 loads; flash_attention_hopper_layout.h). dQ:
// - fast mode (kDq): dSᵀ goes to shared memory and dQ += dS·K (64 x 64 wgmmas per 64 columns of
//   D) is added to the f32 accumulator by float2 atomics, converted by attentionBackward's
//   FlashAttention-2 conversion kernel; bitwise results depend on the atomics' order;
// - deterministic mode: nothing here; dQ from the FlashAttention-2 query-block pass, which
//   recomputes S and dP (3 products against the fast mode's 1, on mma.sync).
// The device code is in flash_attention_hopper_bwd.cuh (the host test emulates it).
#include <cuda_runtime.h>

#include <string>
#include <type_traits>

#include "kernels/hopper/flash_attention_hopper.h"
#include "kernels/hopper/flash_attention_hopper_bwd.cuh"
#include "kernels/attention/flash_attention_launch.cuh"
#include "kernels/hopper/hopper_host.h"

namespace seqtune::gpu::attn::hopper {

template <typename T, int D, bool kDq>
__global__ void __launch_bounds__(kThreads, 1)
    hopperBackwardKernel(const __grid_constant__ CUtensorMap mapQ, const __grid_constant__ CUtensorMap mapK,
                         const __grid_constant__ CUtensorMap mapV, const __grid_constant__ CUtensorMap mapDo,
                         const BwdParams<T> p) {
#if defined(SEQTUNE_SM90A)
  extern __shared__ __align__(1024) unsigned char smem[];
  backwardCta<T, D, kDq>(mapQ, mapK, mapV, mapDo, p, smem);
#else
  reportFault(p.fault, kFaultNoSm90a);
#endif
}

}  // namespace seqtune::gpu::attn::hopper

namespace seqtune::gpu {

namespace ah = seqtune::gpu::attn::hopper;

namespace {

template <typename T, int D, bool kDq>
bool launchBackward(const AttentionShape& shape, const HopperBackwardArgs& a, cudaStream_t stream,
                    const HopperAttentionLaunch& options) {
  using C = ah::BwdConfig<D>;
  static HopperKernelState state;
  auto kernel = ah::hopperBackwardKernel<T, D, kDq>;
  static const int regs = attn::kernelRegisters(kernel);  // 230-239 at D = 128, 161-180 at D = 64 (nvcc 13.0)
  if (!hopperKernelReady(kernel, C::kSmemBytes, regs, state, options.why)) return false;
  const DType dtype = std::is_same_v<T, __nv_bfloat16> ? DType::BF16 : DType::F16;
  CUtensorMap maps[4];  // Q, K, V, dO
  const ah::TmaGeometry gTile = ah::tmaGeometry(shape.tokens, shape.heads, D, C::kTileRows);
  const ah::TmaGeometry gBlock = ah::tmaGeometry(shape.tokens, shape.kvHeads, D, ah::kWarpgroupRows);
  const void* bases[4] = {a.q, a.k, a.v, a.dout};
  for (int i = 0; i < 4; ++i) {
    const ah::TmaGeometry& g = i == 1 || i == 2 ? gBlock : gTile;
    if (!encodeTensorMap(&maps[i], dtype, bases[i], g.dims, g.strides, g.box, options.why)) return false;
  }
  const ah::BwdParams<T> p{static_cast<T*>(a.dk), static_cast<T*>(a.dv), a.dqAccum, a.lse2, a.di, a.cuSeqlens,
                           shape.tokens, static_cast<int>(shape.batch), static_cast<int>(shape.heads),
                           static_cast<int>(shape.kvHeads), attn::scaleLog2(shape), static_cast<float>(shape.scale),
                           shape.causal, options.fault};
  const int64_t blocks = attn::virtualBlocks(shape.batch, shape.tokens, ah::kBlockRows);
  profiler::noteKernel("hopper");
  kernel<<<dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(shape.kvHeads)), ah::kThreads, C::kSmemBytes,
           stream>>>(maps[0], maps[1], maps[2], maps[3], p);
  checkLaunch("attentionBackward (Hopper kernel)");
  return true;
}

}  // namespace

bool hopperAttentionBackward(const AttentionShape& shape, DType dtype, const HopperBackwardArgs& args,
                             cudaStream_t stream, const HopperAttentionLaunch& options) {
  if (!hopperAttentionSupports(shape, dtype)) {
    if (options.why) *options.why = "arguments not supported";
    return false;
  }
  bool launched = false;
  attn::dispatchKind(dtype, shape.headDim, "attentionBackward", [&](auto kind) {
    using K = decltype(kind);
    launched = args.dqAccum ? launchBackward<typename K::type, K::kHeadDim, true>(shape, args, stream, options)
                            : launchBackward<typename K::type, K::kHeadDim, false>(shape, args, stream, options);
  });
  return launched;
}

}  // namespace seqtune::gpu
