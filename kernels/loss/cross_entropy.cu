// Cross-entropy: the forward reads each row of logits once (online softmax: a running max and a
// sum rescaled whenever the max grows), so a [16k, 128k] bf16 logits tensor costs one pass over
// its 4 GiB; the backward is one more read and one write.
#include <cmath>

#include "kernels/loss/cross_entropy.h"
#include "kernels/common/index_check.h"
#include "kernels/common/kernel_util.cuh"

namespace seqtune::gpu {

namespace {

// A partial softmax: max m and Σ exp(x − m) over some elements.
template <typename C>
struct MaxSum {
  C m, s;
};

template <typename C>
__device__ __forceinline__ MaxSum<C> combine(MaxSum<C> a, MaxSum<C> b) {
  const C m = max(a.m, b.m);
  if (m == -INFINITY) return {m, C(0)};  // both empty: avoid exp(−inf − −inf)
  return {m, a.s * exp(a.m - m) + b.s * exp(b.m - m)};
}

// Block-wide combine in a fixed tree (deterministic), returned to every thread.
template <typename C>
__device__ MaxSum<C> blockMaxSum(MaxSum<C> v, MaxSum<C>* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    v = combine(v, MaxSum<C>{__shfl_xor_sync(0xffffffffu, v.m, o), __shfl_xor_sync(0xffffffffu, v.s, o)});
  }
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : MaxSum<C>{C(-INFINITY), C(0)};
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    v = combine(v, MaxSum<C>{__shfl_xor_sync(0xffffffffu, v.m, o), __shfl_xor_sync(0xffffffffu, v.s, o)});
  }
  __syncthreads();
  return v;
}

__device__ __forceinline__ bool badLabel(int64_t label, int64_t vocab, int64_t ignoreIndex) {
  return label != ignoreIndex && (label < 0 || label >= vocab);
}

template <int K, typename T>
__global__ void forwardKernel(Compute<T>* lse, double* rowLoss, const T* logits, const int32_t* labels, int64_t rows,
                              int64_t vocab, int64_t ignoreIndex, int* flag, bool vec) {
  using C = Compute<T>;
  __shared__ MaxSum<C> scratch[32];
  const int64_t row = blockIdx.x;
  const T* x = logits + row * vocab;
  MaxSum<C> acc{C(-INFINITY), C(0)};
  for (int64_t i = threadIdx.x * int64_t(K); i < vocab; i += int64_t(blockDim.x) * K) {
    C v[K];
    loadGroup<K>(x, i, vocab, vec, v);
    C m = acc.m;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      if (i + k >= vocab) v[k] = C(-INFINITY);  // past the row: contributes nothing
      m = max(m, v[k]);
    }
    if (m == -INFINITY) continue;
    C s = acc.s * exp(acc.m - m);
#pragma unroll
    for (int k = 0; k < K; ++k) s += exp(v[k] - m);
    acc = {m, s};
  }
  acc = blockMaxSum(acc, scratch);
  if (threadIdx.x != 0) return;
  const C l = acc.m + log(acc.s);
  lse[row] = l;
  const int64_t label = labels[row];
  const bool bad = badLabel(label, vocab, ignoreIndex);
  if (bad) flagBadIndex(flag, row, rows);
  rowLoss[row] = (label == ignoreIndex || bad) ? 0.0 : static_cast<double>(l - convert<C>(x[label]));
}

// One block: the loss and count, adding rows in row order per thread and then in a fixed tree.
template <typename C>
__global__ void lossKernel(C* loss, C* count, const double* rowLoss, const int32_t* labels, int64_t rows,
                           int64_t vocab, int64_t ignoreIndex, bool mean) {
  __shared__ double scratch[32];
  double total = 0, n = 0;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    const int64_t label = labels[r];
    if (label == ignoreIndex || badLabel(label, vocab, ignoreIndex)) continue;
    total += rowLoss[r];
    n += 1;
  }
  total = blockSum(total, scratch);
  n = blockSum(n, scratch);
  if (threadIdx.x != 0) return;
  *loss = static_cast<C>(mean ? (n > 0 ? total / n : 0.0) : total);
  *count = static_cast<C>(n);
}

template <int K, typename T>
__global__ void backwardKernel(T* dlogits, const T* logits, const int32_t* labels, const Compute<T>* lse,
                               const Compute<T>* count, int64_t rows, int64_t vocab, int64_t ignoreIndex, bool mean,
                               double gradScale, int* flag, bool vec) {
  using C = Compute<T>;
  const int64_t row = blockIdx.x;
  const int64_t label = labels[row];
  const bool bad = badLabel(label, vocab, ignoreIndex);
  if (bad && threadIdx.x == 0) flagBadIndex(flag, row, rows);
  const bool skip = bad || label == ignoreIndex;
  const double n = static_cast<double>(*count);
  const C coef = static_cast<C>(mean ? (n > 0 ? gradScale / n : 0.0) : gradScale);
  const C l = lse[row];
  const T* x = logits + row * vocab;
  T* d = dlogits + row * vocab;
  for (int64_t i = threadIdx.x * int64_t(K); i < vocab; i += int64_t(blockDim.x) * K) {
    C v[K];
    if (skip) {
#pragma unroll
      for (int k = 0; k < K; ++k) v[k] = C(0);
    } else {
      loadGroup<K>(x, i, vocab, vec, v);
#pragma unroll
      for (int k = 0; k < K; ++k) {
        v[k] = exp(v[k] - l) * coef;
        if (i + k == label) v[k] -= coef;
      }
    }
    storeGroup<K>(d, i, vocab, vec, v);
  }
}

bool rowsVectorisable(int64_t vocab, size_t elemSize, const void* a, const void* b) {
  return (static_cast<size_t>(vocab) * elemSize) % 16 == 0 && aligned16(a) && aligned16(b);
}

void checkRows(const char* op, int64_t rows) {
  if (rows >= (int64_t(1) << 31)) fail(code::kShape, op, ": at most 2^31 - 1 rows, got ", rows);
}

}  // namespace

size_t crossEntropyWorkspaceBytes(int64_t rows) { return static_cast<size_t>(rows < 1 ? 1 : rows) * sizeof(double); }

void crossEntropyForward(void* loss, void* lse, void* count, const void* logits, const int32_t* labels, DType dtype,
                         int64_t rows, int64_t vocab, int64_t ignoreIndex, bool mean, void* workspace, int* errorFlag,
                         cudaStream_t stream) {
  checkRows("crossEntropy", rows);
  if (vocab < 1) fail(code::kShape, "crossEntropy: the vocabulary is empty");
  resetIndexFlag(errorFlag, stream);
  double* rowLoss = static_cast<double*>(workspace);
  dispatchFloat(dtype, "crossEntropy", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = Compute<T>;
    if (rows > 0) {
      forwardKernel<groupSize<T>()><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
          static_cast<C*>(lse), rowLoss, static_cast<const T*>(logits), labels, rows, vocab, ignoreIndex, errorFlag,
          rowsVectorisable(vocab, sizeof(T), logits, logits));
      checkLaunch("crossEntropy");
    }
    lossKernel<<<1, 1024, 0, stream>>>(static_cast<C*>(loss), static_cast<C*>(count), rowLoss, labels, rows, vocab,
                                       ignoreIndex, mean);
    checkLaunch("crossEntropy (loss)");
  });
}

void crossEntropyBackward(void* dlogits, const void* logits, const int32_t* labels, const void* lse, const void* count,
                          DType dtype, int64_t rows, int64_t vocab, int64_t ignoreIndex, bool mean, double gradScale,
                          int* errorFlag, cudaStream_t stream) {
  checkRows("crossEntropyBackward", rows);
  resetIndexFlag(errorFlag, stream);
  if (rows == 0 || vocab == 0) return;
  dispatchFloat(dtype, "crossEntropyBackward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = Compute<T>;
    backwardKernel<groupSize<T>()><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
        static_cast<T*>(dlogits), static_cast<const T*>(logits), labels, static_cast<const C*>(lse),
        static_cast<const C*>(count), rows, vocab, ignoreIndex, mean, gradScale, errorFlag,
        rowsVectorisable(vocab, sizeof(T), dlogits, logits));
    checkLaunch("crossEntropyBackward");
  });
}

}  // namespace seqtune::gpu
