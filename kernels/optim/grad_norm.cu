// Multi-tensor gradient norm and clipping: the grid walks a flat list of fixed-size chunks, each
// block finding its tensor by binary search in the table, so hundreds of small LoRA tensors and a
// few huge ones cost one launch either way.
#include "kernels/optim/grad_norm.h"
#include "kernels/common/kernel_util.cuh"

namespace seqtune::gpu {

namespace {

constexpr int64_t kChunk = 16384;

template <typename T>
__device__ double chunkSquares(const NormTensor& t, int64_t begin, int64_t end) {
  constexpr int K = groupSize<T>();
  const T* x = static_cast<const T*>(t.data);
  double acc = 0;
  for (int64_t i = begin + threadIdx.x * int64_t(K); i < end; i += int64_t(blockDim.x) * K) {
    double v[K];
    loadGroup<K>(x, i, t.n, t.vec, v);
#pragma unroll
    for (int k = 0; k < K; ++k) acc += v[k] * v[k];
  }
  return acc;
}

__global__ void partialKernel(double* partial, const NormTensor* table, int count, int64_t chunks) {
  __shared__ double scratch[32];
  for (int64_t c = blockIdx.x; c < chunks; c += gridDim.x) {
    const NormTensor t = table[findTensor(table, count, c)];
    const int64_t begin = (c - t.firstChunk) * kChunk, end = min(t.n, begin + kChunk);
    double acc;
    switch (t.dtype) {
      case DType::F64: acc = chunkSquares<double>(t, begin, end); break;
      case DType::BF16: acc = chunkSquares<__nv_bfloat16>(t, begin, end); break;
      case DType::F16: acc = chunkSquares<__half>(t, begin, end); break;
      default: acc = chunkSquares<float>(t, begin, end); break;
    }
    acc = blockSum(acc, scratch);
    if (threadIdx.x == 0) partial[c] = acc;
  }
}

__global__ void normKernel(float* out, const double* partial, int64_t chunks) {
  __shared__ double scratch[32];
  double acc = 0;
  for (int64_t c = threadIdx.x; c < chunks; c += blockDim.x) acc += partial[c];
  acc = blockSum(acc, scratch);
  if (threadIdx.x == 0) *out = static_cast<float>(sqrt(acc));
}

template <typename T>
__device__ void scaleChunk(const NormTensor& t, int64_t begin, int64_t end, double factor) {
  using C = Compute<T>;
  constexpr int K = groupSize<T>();
  T* x = static_cast<T*>(t.data);
  const C f = static_cast<C>(factor);
  for (int64_t i = begin + threadIdx.x * int64_t(K); i < end; i += int64_t(blockDim.x) * K) {
    C v[K];
    loadGroup<K>(x, i, t.n, t.vec, v);
#pragma unroll
    for (int k = 0; k < K; ++k) v[k] *= f;
    storeGroup<K>(x, i, t.n, t.vec, v);
  }
}

__global__ void clipKernel(const NormTensor* table, int count, int64_t chunks, const void* norm, DType normType,
                           double maxNorm) {
  const double factor = clipFactor(norm, normType, maxNorm);
  if (factor == 1.0) return;
  for (int64_t c = blockIdx.x; c < chunks; c += gridDim.x) {
    const NormTensor t = table[findTensor(table, count, c)];
    const int64_t begin = (c - t.firstChunk) * kChunk, end = min(t.n, begin + kChunk);
    switch (t.dtype) {
      case DType::F64: scaleChunk<double>(t, begin, end, factor); break;
      case DType::BF16: scaleChunk<__nv_bfloat16>(t, begin, end, factor); break;
      case DType::F16: scaleChunk<__half>(t, begin, end, factor); break;
      default: scaleChunk<float>(t, begin, end, factor); break;
    }
  }
}

int chunkBlocks(int64_t chunks) { return static_cast<int>(chunks < kMaxBlocks ? chunks : kMaxBlocks); }

}  // namespace

int64_t normPrepare(NormTensor* table, int count) {
  int64_t chunks = 0;
  for (int i = 0; i < count; ++i) {
    if (!isFloating(table[i].dtype)) fail(code::kDtype, "gradNorm: tensor ", i, " is not floating point");
    table[i].firstChunk = chunks;
    table[i].vec = aligned16(table[i].data);
    chunks += (table[i].n + kChunk - 1) / kChunk;
  }
  return chunks;
}

size_t gradNormWorkspaceBytes(int64_t chunks) { return static_cast<size_t>(chunks < 1 ? 1 : chunks) * sizeof(double); }

void gradNorm(float* out, const NormTensor* table, int count, int64_t chunks, void* workspace, cudaStream_t stream) {
  double* partial = static_cast<double*>(workspace);
  if (chunks > 0) {
    partialKernel<<<chunkBlocks(chunks), kThreads, 0, stream>>>(partial, table, count, chunks);
    checkLaunch("gradNorm (partials)");
  }
  normKernel<<<1, 1024, 0, stream>>>(out, partial, chunks);
  checkLaunch("gradNorm");
}

void clipByNorm(const NormTensor* table, int count, int64_t chunks, const void* norm, DType normType, double maxNorm,
                cudaStream_t stream) {
  if (chunks == 0) return;
  clipKernel<<<chunkBlocks(chunks), kThreads, 0, stream>>>(table, count, chunks, norm, normType, maxNorm);
  checkLaunch("clipByNorm");
}

}  // namespace seqtune::gpu
