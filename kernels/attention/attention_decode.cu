// Launchers of the decoding attention (split-K, then a combine) and of the KV-cache write; the
// kernel bodies are in flash_attention_decode.cuh.
#include "kernels/attention/attention_decode.h"
#include "kernels/attention/flash_attention_launch.cuh"
#include "kernels/attention/attention_decode.cuh"
#include "kernels/common/kernel_util.cuh"

namespace seqtune::gpu {

namespace attn {
namespace {

constexpr int kMinKeysPerSplit = 256;  // below this a split's fixed costs dominate
constexpr int64_t kTargetCtas = 1024;  // several waves on a 132-SM GPU

template <typename T, int D, int kRows>
__global__ void __launch_bounds__(kDecThreads, 3) decodeKernel(const DecodeParams<T> p) {
  extern __shared__ int4 smemRaw[];
  decodeSplit<T, D, kRows>(p, reinterpret_cast<T*>(smemRaw));
}

template <typename T, int D>
__global__ void combineKernel(T* out, float* lse, const float* partAcc, const float* partMl, int64_t tokens, int heads,
                              int splits) {
  combineRows<T, D>(out, lse, partAcc, partMl, tokens, heads, splits);
}

// Copies rows in units of U (the widest that the row size and both pointers allow).
template <typename U>
__global__ void cacheWriteKernel(U* cache, const U* values, int64_t tokens, int kvHeads, int64_t unitsPerRow,
                                 int batch, int64_t maxTokens, const int32_t* cu, const int32_t* offsets, int* flag) {
  cacheWriteUnits<U>(cache, values, tokens, kvHeads, unitsPerRow, batch, maxTokens, cu, offsets, flag);
}

template <typename T, int D, int kRows>
void launchDecodeRows(const AttentionShape& shape, const DecodeParams<T>& p, T* out, float* lse, cudaStream_t stream) {
  using C = DecodeConfig<D, kRows>;
  auto kernel = decodeKernel<T, D, kRows>;
  profiler::noteKernel("mma");
  allowSharedMemory(kernel, C::kSmemBytes, "attention (decode): cudaFuncSetAttribute");
  const dim3 grid(static_cast<unsigned>(p.splits), static_cast<unsigned>(shape.kvHeads),
                  static_cast<unsigned>(shape.batch));
  kernel<<<grid, kDecThreads, C::kSmemBytes, stream>>>(p);
  checkLaunch("attention: decode kernel");
  combineKernel<T, D><<<gridFor(shape.tokens * shape.heads * 32), kThreads, 0, stream>>>(
      out, lse, p.partAcc, p.partMl, shape.tokens, static_cast<int>(shape.heads), p.splits);
  checkLaunch("attention: decode combine kernel");
}

}  // namespace
}  // namespace attn

using namespace attn;

bool useDecodeKernel(const AttentionShape& shape) {
  return shape.maxTokens > 0 && shape.tokens <= 4 * shape.batch;
}

int decodeSplits(const AttentionShape& shape) {
  const int64_t ctas = std::max<int64_t>(1, shape.batch * shape.kvHeads);
  const int64_t wanted = (kTargetCtas + ctas - 1) / ctas;
  const int64_t most = std::max<int64_t>(1, (shape.maxTokens + kMinKeysPerSplit - 1) / kMinKeysPerSplit);
  return static_cast<int>(std::min(wanted, most));
}

size_t attentionDecodeWorkspaceBytes(const AttentionShape& shape) {
  return static_cast<size_t>(decodeSplits(shape)) * shape.tokens * shape.heads * (shape.headDim + 2) * sizeof(float);
}

void attentionDecode(const AttentionShape& shape, DType dtype, const void* q, const void* k, const void* v,
                     const int32_t* cuSeqlens, const int32_t* qOffset, const int32_t* kvLens, void* out, float* lse,
                     void* workspace, cudaStream_t stream) {
  if (shape.tokens == 0 || shape.heads == 0 || shape.batch == 0) return;
  if (shape.batch > 65535 || shape.kvHeads > 65535) {
    fail(code::kNotImplemented, "attention (decode): ", shape.batch, " sequences x ", shape.kvHeads,
         " kv heads exceed the CUDA grid");
  }
  const int splits = decodeSplits(shape);
  float* partAcc = static_cast<float*>(workspace);
  float* partMl = partAcc + static_cast<int64_t>(splits) * shape.tokens * shape.heads * shape.headDim;
  // One pass covers the group's heads of up to 8 (or 16) queries per sequence.
  const int64_t queriesPerSeq = (shape.tokens + shape.batch - 1) / shape.batch;
  const bool fewRows = (shape.heads / shape.kvHeads) * queriesPerSeq <= 8;
  dispatchKind(dtype, shape.headDim, "attention (decode)", [&](auto kind) {
    using K = decltype(kind);
    using T = typename K::type;
    const DecodeParams<T> p{static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v),
                            cuSeqlens, qOffset, kvLens, partAcc, partMl, shape.tokens, shape.maxTokens,
                            static_cast<int>(shape.batch), static_cast<int>(shape.heads),
                            static_cast<int>(shape.kvHeads), splits, scaleLog2(shape), shape.causal};
    if (fewRows) {
      launchDecodeRows<T, K::kHeadDim, 8>(shape, p, static_cast<T*>(out), lse, stream);
    } else {
      launchDecodeRows<T, K::kHeadDim, 16>(shape, p, static_cast<T*>(out), lse, stream);
    }
  });
}

void kvCacheWrite(void* cache, const void* values, size_t elementSize, int64_t tokens, int64_t kvHeads, int64_t headDim,
                  int64_t batch, int64_t maxTokens, const int32_t* cuSeqlens, const int32_t* offsets, int* errorFlag,
                  cudaStream_t stream) {
  resetIndexFlag(errorFlag, stream);
  if (tokens == 0 || kvHeads == 0 || headDim == 0 || batch == 0) return;
  const int64_t rowBytes = headDim * static_cast<int64_t>(elementSize);
  const uintptr_t both = reinterpret_cast<uintptr_t>(cache) | reinterpret_cast<uintptr_t>(values);
  auto launch = [&](auto unit) {
    using U = decltype(unit);
    const int64_t units = rowBytes / static_cast<int64_t>(sizeof(U));
    cacheWriteKernel<U><<<gridFor(tokens * kvHeads * units), kThreads, 0, stream>>>(
        static_cast<U*>(cache), static_cast<const U*>(values), tokens, static_cast<int>(kvHeads), units,
        static_cast<int>(batch), maxTokens, cuSeqlens, offsets, errorFlag);
    checkLaunch("kvCacheWrite: kernel");
  };
  auto fits = [&](int64_t bytes) { return rowBytes % bytes == 0 && both % bytes == 0; };
  if (fits(16)) return launch(int4{});
  if (fits(8)) return launch(int2{});
  if (fits(4)) return launch(int32_t{});
  if (fits(2)) return launch(int16_t{});
  launch(int8_t{});
}

}  // namespace seqtune::gpu
