// Launcher of the deterministic backward's dQ pass (flash_attention_bwd_dq.cuh).
#include "kernels/attention/flash_attention_bwd_dq.cuh"
#include "kernels/attention/flash_attention_launch.cuh"

namespace seqtune::gpu::attn {

namespace {

template <typename T, int D>
__global__ void __launch_bounds__(DqConfig<D>::kThreads) queryBlockKernel(const BwdParams<T> p) {
  extern __shared__ int4 smemRaw[];
  queryBlockTile<T, D>(p, reinterpret_cast<T*>(smemRaw));
}

template <typename T, int D>
void launchDq(const AttentionShape& shape, const BwdArgs& args, cudaStream_t stream) {
  using C = DqConfig<D>;
  const int64_t blocks = virtualBlocks(shape.batch, shape.tokens, C::kBM);
  expectGrid("attentionBackward", blocks, shape.heads);
  auto kernel = queryBlockKernel<T, D>;
  profiler::noteKernel("mma");
  allowSharedMemory(kernel, C::kSmemBytes, "attentionBackward: cudaFuncSetAttribute");
  kernel<<<dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(shape.heads)), C::kThreads, C::kSmemBytes,
           stream>>>(bwdParams<T>(shape, args, scaleLog2(shape)));
  checkLaunch("attentionBackward: dq kernel");
}

}  // namespace

void launchDeterministicDq(const AttentionShape& shape, DType dtype, const BwdArgs& args, cudaStream_t stream) {
  dispatchKind(dtype, shape.headDim, "attentionBackward", [&](auto kind) {
    using K = decltype(kind);
    launchDq<typename K::type, K::kHeadDim>(shape, args, stream);
  });
}

}  // namespace seqtune::gpu::attn
