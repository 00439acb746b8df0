// Embedding gather (a row copy per token, moved as raw 16-byte vectors whatever the dtype) and its
// deterministic scatter-add via sort and segmented sums.
#include <cub/device/device_radix_sort.cuh>

#include "kernels/elementwise/embedding.h"
#include "kernels/common/index_check.h"
#include "kernels/common/kernel_util.cuh"

namespace seqtune::gpu {

namespace {

// Threads per segment block: a block covers 128·K columns of one id; wide rows get more blocks
// (grid.y), so a frequent id is not summed by a single SM.
constexpr int kSegmentThreads = 128;

size_t alignUp(size_t bytes) { return (bytes + 255) / 256 * 256; }

void checkTokens(const char* op, int64_t tokens) {
  if (tokens >= (int64_t(1) << 31)) fail(code::kShape, op, ": at most 2^31 - 1 tokens, got ", tokens);
}

// U: an unsigned type of the element size; the copy needs no arithmetic.
template <int K, typename U>
__global__ void gatherKernel(U* out, const U* table, const int32_t* ids, int64_t tokens, int64_t vocab, int64_t cols,
                             int* flag, bool vec) {
  const int64_t groupsPerRow = (cols + K - 1) / K;
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < tokens * groupsPerRow;
       g += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = g / groupsPerRow, i = (g % groupsPerRow) * K;
    const int64_t id = ids[t];
    U v[K] = {};
    if (id >= 0 && id < vocab) {
      loadGroup<K>(table + id * cols, i, cols, vec, v);
    } else {
      flagBadIndex(flag, t, tokens);
    }
    storeGroup<K>(out + t * cols, i, cols, vec, v);
  }
}

// Sort input: key = id, or `vocab` (sorted last, then skipped) for a bad id; value = token index.
__global__ void sortInputKernel(unsigned* keys, int32_t* tokenOf, const int32_t* ids, int64_t tokens, int64_t vocab,
                                int* flag) {
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < tokens; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t id = ids[t];
    const bool ok = id >= 0 && id < vocab;
    if (!ok) flagBadIndex(flag, t, tokens);
    keys[t] = static_cast<unsigned>(ok ? id : vocab);
    tokenOf[t] = static_cast<int32_t>(t);
  }
}

// Block (s, y): if sorted position s starts a run of one id, sums that run's dout rows over
// columns [y·128·K, (y+1)·128·K) in run order and writes the id's gradient row.
template <int K, typename T>
__global__ void segmentSumKernel(T* dtable, const T* dout, const unsigned* keys, const int32_t* tokenOf,
                                 int64_t tokens, int64_t cols, unsigned vocab, bool vec) {
  using C = Compute<T>;
  const int64_t s = blockIdx.x;
  const unsigned id = keys[s];
  if (id >= vocab || (s > 0 && keys[s - 1] == id)) return;
  const int64_t i = (int64_t(blockIdx.y) * blockDim.x + threadIdx.x) * K;
  if (i >= cols) return;
  C acc[K] = {};
  for (int64_t e = s; e < tokens && keys[e] == id; ++e) {
    C v[K];
    loadGroup<K>(dout + int64_t(tokenOf[e]) * cols, i, cols, vec, v);
#pragma unroll
    for (int k = 0; k < K; ++k) acc[k] += v[k];
  }
  storeGroup<K>(dtable + int64_t(id) * cols, i, cols, vec, acc);
}

size_t sortScratchBytes(int64_t tokens) {
  size_t bytes = 0;
  // Sized for all 32 key bits: an upper bound for the fewer bits actually sorted.
  cudaCheck(cub::DeviceRadixSort::SortPairs(nullptr, bytes, static_cast<const unsigned*>(nullptr),
                                            static_cast<unsigned*>(nullptr), static_cast<const int32_t*>(nullptr),
                                            static_cast<int32_t*>(nullptr), static_cast<int>(tokens)),
            "embeddingBackward: cub::DeviceRadixSort (sizing)");
  return bytes;
}

bool rowsVectorisable(int64_t cols, size_t elemSize, const void* a, const void* b) {
  return (static_cast<size_t>(cols) * elemSize) % 16 == 0 && aligned16(a) && aligned16(b);
}

}  // namespace

void embeddingForward(void* out, const void* table, const int32_t* ids, DType dtype, int64_t tokens, int64_t vocab,
                      int64_t cols, int* errorFlag, cudaStream_t stream) {
  checkTokens("embedding", tokens);
  resetIndexFlag(errorFlag, stream);
  if (tokens == 0 || cols == 0) return;
  const bool vec = rowsVectorisable(cols, dtypeSize(dtype), out, table);
  auto launch = [&](auto* typed) {
    using U = std::remove_pointer_t<decltype(typed)>;
    constexpr int K = groupSize<U>();
    gatherKernel<K><<<gridFor(tokens * ((cols + K - 1) / K)), kThreads, 0, stream>>>(
        static_cast<U*>(out), static_cast<const U*>(table), ids, tokens, vocab, cols, errorFlag, vec);
    checkLaunch("embedding");
  };
  switch (dtypeSize(dtype)) {
    case 2: return launch(static_cast<uint16_t*>(nullptr));
    case 4: return launch(static_cast<uint32_t*>(nullptr));
    default: return launch(static_cast<uint64_t*>(nullptr));
  }
}

size_t embeddingBackwardWorkspaceBytes(int64_t tokens) {
  checkTokens("embeddingBackward", tokens);
  return 4 * alignUp(static_cast<size_t>(tokens) * 4) + sortScratchBytes(tokens);
}

void embeddingBackward(void* dtable, const void* dout, const int32_t* ids, DType dtype, int64_t tokens, int64_t vocab,
                       int64_t cols, void* workspace, int* errorFlag, cudaStream_t stream) {
  checkTokens("embeddingBackward", tokens);
  if (vocab < 1 || vocab >= (int64_t(1) << 32)) fail(code::kArgument, "embeddingBackward: bad vocabulary size ", vocab);
  resetIndexFlag(errorFlag, stream);
  cudaCheck(cudaMemsetAsync(dtable, 0, static_cast<size_t>(vocab * cols) * dtypeSize(dtype), stream),
            "embeddingBackward: cudaMemsetAsync");
  if (tokens == 0 || cols == 0) return;

  const size_t region = alignUp(static_cast<size_t>(tokens) * 4);
  char* ws = static_cast<char*>(workspace);
  auto* keysIn = reinterpret_cast<unsigned*>(ws);
  auto* tokensIn = reinterpret_cast<int32_t*>(ws + region);
  auto* keysOut = reinterpret_cast<unsigned*>(ws + 2 * region);
  auto* tokensOut = reinterpret_cast<int32_t*>(ws + 3 * region);
  void* scratch = ws + 4 * region;
  size_t scratchBytes = sortScratchBytes(tokens);

  sortInputKernel<<<gridFor(tokens), kThreads, 0, stream>>>(keysIn, tokensIn, ids, tokens, vocab, errorFlag);
  checkLaunch("embeddingBackward (sort input)");
  // Keys are at most `vocab` (the bad-id sentinel): sort only the bits that can be set.
  int bits = 1;
  while (bits < 32 && (uint64_t(1) << bits) <= static_cast<uint64_t>(vocab)) ++bits;
  cudaCheck(cub::DeviceRadixSort::SortPairs(scratch, scratchBytes, keysIn, keysOut, tokensIn, tokensOut,
                                            static_cast<int>(tokens), 0, bits, stream),
            "embeddingBackward: cub::DeviceRadixSort");

  dispatchFloat(dtype, "embeddingBackward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    constexpr int K = groupSize<T>();
    const int64_t columnBlocks = (cols + kSegmentThreads * K - 1) / (kSegmentThreads * K);
    if (columnBlocks > 65535) fail(code::kShape, "embeddingBackward: rows of ", cols, " columns are too wide");
    const dim3 grid(static_cast<unsigned>(tokens), static_cast<unsigned>(columnBlocks));
    segmentSumKernel<K><<<grid, kSegmentThreads, 0, stream>>>(static_cast<T*>(dtable), static_cast<const T*>(dout),
                                                              keysOut, tokensOut, tokens, cols,
                                                              static_cast<unsigned>(vocab),
                                                              rowsVectorisable(cols, sizeof(T), dtable, dout));
    checkLaunch("embeddingBackward (segment sums)");
  });
}

}  // namespace seqtune::gpu
