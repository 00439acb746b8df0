// Attention backward launchers (packed layout): Di and lse2, the key-block pass
// (flash_attention_bwd.cuh; on a Hopper that passed its self-test, the Hopper kernel of
// flash_attention_hopper_bwd.cu), then dQ from the f32 accumulator (fast) or from the query-block
// pass of flash_attention_bwd_dq.cu (deterministic); see attentionBackward in flash_attention.h.
#include "kernels/attention/attention_simt.h"
#include "kernels/attention/flash_attention_bwd.cuh"
#include "kernels/hopper/flash_attention_hopper.h"
#include "kernels/attention/flash_attention_launch.cuh"
#include "kernels/common/kernel_util.cuh"

namespace seqtune::gpu {

namespace attn {
namespace {

template <typename T, int D>
__global__ void preprocessKernel(float* di, float* lse2, const T* dout, const T* out, const float* lse, int64_t tokens,
                                 int heads) {
  preprocessRows<T, D>(di, lse2, dout, out, lse, tokens, heads);
}

template <typename T, int D, bool kAtomicDq>
__global__ void __launch_bounds__(BwdConfig<D>::kThreads) keyBlockKernel(const BwdParams<T> p) {
  extern __shared__ int4 smemRaw[];
  keyBlockTile<T, D, kAtomicDq>(p, reinterpret_cast<T*>(smemRaw));
}

template <typename T>
__global__ void convertDqKernel(T* dq, const float* acc, int64_t n, float scale) {
  convertDq<T>(dq, acc, n, scale);
}

template <typename T, int D>
void launchBackward(const AttentionShape& shape, DType dtype, const BwdArgs& args, const float* lse, const void* out,
                    bool deterministic, bool hopper, cudaStream_t stream) {
  using C = BwdConfig<D>;
  const BwdParams<T> p = bwdParams<T>(shape, args, scaleLog2(shape));
  preprocessKernel<T, D><<<gridFor(shape.tokens * shape.heads * (D / 8)), kThreads, 0, stream>>>(
      args.di, args.lse2, p.dout, static_cast<const T*>(out), lse,
      shape.tokens, p.heads);
  checkLaunch("attentionBackward: preprocess kernel");
  const int64_t n = shape.tokens * shape.heads * D;
  auto convert = [&]() {
    convertDqKernel<T><<<gridFor(n / 4), kThreads, 0, stream>>>(p.dq, args.dqAccum, n, p.scale);
    checkLaunch("attentionBackward: dq conversion kernel");
  };
  if (hopper) {
    float* dqAccum = deterministic ? nullptr : args.dqAccum;
    const HopperBackwardArgs h{args.q, args.k, args.v, args.dout, args.dk, args.dv, args.lse2, args.di, args.cu, dqAccum};
    if (hopperAttentionBackward(shape, dtype, h, stream)) {
      return deterministic ? launchDeterministicDq(shape, dtype, args, stream) : convert();
    }
  }
  const int64_t blocks = virtualBlocks(shape.batch, shape.tokens, C::kBN);
  expectGrid("attentionBackward", blocks, shape.kvHeads);
  profiler::noteKernel("mma");
  const dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(shape.kvHeads));
  if (deterministic) {
    auto kernel = keyBlockKernel<T, D, false>;
    allowSharedMemory(kernel, C::kSmemBytes, "attentionBackward: cudaFuncSetAttribute");
    kernel<<<grid, C::kThreads, C::kSmemBytes, stream>>>(p);
    checkLaunch("attentionBackward: key-block kernel");
    launchDeterministicDq(shape, dtype, args, stream);
  } else {
    auto kernel = keyBlockKernel<T, D, true>;
    allowSharedMemory(kernel, C::kSmemBytes, "attentionBackward: cudaFuncSetAttribute");
    kernel<<<grid, C::kThreads, C::kSmemBytes, stream>>>(p);
    checkLaunch("attentionBackward: key-block kernel");
    convert();
  }
}

// Workspace layout: Di, lse2 (f32 [H, T] each), then the dQ accumulator; each 256-byte aligned.
size_t alignUp(size_t bytes) { return (bytes + 255) / 256 * 256; }

}  // namespace
}  // namespace attn

using namespace attn;

size_t attentionBackwardWorkspaceBytes(const AttentionShape& shape, bool deterministic) {
  const size_t rows = static_cast<size_t>(shape.tokens * shape.heads);
  return 2 * alignUp(rows * sizeof(float)) + (deterministic ? 0 : rows * shape.headDim * sizeof(float));
}

namespace {

// hopper: take the Hopper kernel where attentionBackward may.
void backward(const AttentionShape& shape, DType dtype, const void* dout, const void* q, const void* k, const void* v,
              const void* out, const float* lse, const int32_t* cuSeqlens, void* dq, void* dk, void* dv,
              bool deterministic, bool hopper, void* workspace, cudaStream_t stream) {
  if (shape.maxTokens != 0) fail(code::kArgument, "attentionBackward: only the packed layout has a backward");
  if (shape.tokens == 0 || shape.heads == 0 || shape.batch == 0) return;
  const char* names[] = {"dout", "q", "k", "v", "out", "dq", "dk", "dv", "workspace"};
  const void* ptrs[] = {dout, q, k, v, out, dq, dk, dv, workspace};
  for (int i = 0; i < 9; ++i) expectAligned("attentionBackward", names[i], ptrs[i]);
  const size_t rows = static_cast<size_t>(shape.tokens * shape.heads);
  char* ws = static_cast<char*>(workspace);
  float* di = reinterpret_cast<float*>(ws);
  float* lse2 = reinterpret_cast<float*>(ws + alignUp(rows * sizeof(float)));
  float* dqAccum = deterministic ? nullptr : reinterpret_cast<float*>(ws + 2 * alignUp(rows * sizeof(float)));
  const BwdArgs args{q, k, v, dout, dq, dk, dv, lse2, di, dqAccum, cuSeqlens};
  dispatchKind(dtype, shape.headDim, "attentionBackward", [&](auto kind) {
    using K = decltype(kind);
    if (!deterministic) {
      cudaCheck(cudaMemsetAsync(dqAccum, 0, rows * shape.headDim * sizeof(float), stream),
                "attentionBackward: cudaMemsetAsync");
    }
    launchBackward<typename K::type, K::kHeadDim>(shape, dtype, args, lse, out, deterministic, hopper, stream);
  });
}

}  // namespace

void attentionBackward(const AttentionShape& shape, DType dtype, const void* dout, const void* q, const void* k,
                       const void* v, const void* out, const float* lse, const int32_t* cuSeqlens, void* dq, void* dk,
                       void* dv, bool deterministic, void* workspace, cudaStream_t stream) {
  // Other dtypes and head dims: the SIMT kernels (deterministic in either mode; Di in the workspace).
  if (!attentionOnTensorCores(dtype, shape.headDim)) {
    return attentionBackwardSimt(shape, dtype, dout, q, k, v, out, lse, cuSeqlens, dq, dk, dv, workspace, stream);
  }
  const bool hopper = shape.maxTokens == 0 && shape.tokens > 0 && hopperAttentionBackwardWanted(shape, dtype, stream);
  backward(shape, dtype, dout, q, k, v, out, lse, cuSeqlens, dq, dk, dv, deterministic, hopper, workspace, stream);
}

void attentionBackwardAmpere(const AttentionShape& shape, DType dtype, const void* dout, const void* q, const void* k,
                             const void* v, const void* out, const float* lse, const int32_t* cuSeqlens, void* dq,
                             void* dk, void* dv, bool deterministic, void* workspace, cudaStream_t stream) {
  backward(shape, dtype, dout, q, k, v, out, lse, cuSeqlens, dq, dk, dv, deterministic, false, workspace, stream);
}

}  // namespace seqtune::gpu
