// Elementwise kernels: three grid-stride shapes (generate, unary, binary) over groups of 16-byte
// vectors, instantiated per op and dtype. Memory-bound: each element is read and written once.
#include <cstring>

#include "kernels/elementwise/elementwise.h"
#include "kernels/common/kernel_util.cuh"
#include "kernels/common/philox.h"

namespace seqtune::gpu {

namespace {

// ---- kernels -----------------------------------------------------------------------------------

template <typename C, int K, typename Out, typename Gen>
__global__ void generateKernel(Out* out, int64_t n, bool vec, Gen gen) {
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g * K < n; g += int64_t(gridDim.x) * blockDim.x) {
    C v[K];
#pragma unroll
    for (int k = 0; k < K; ++k) v[k] = gen(g * K + k);
    storeGroup<K>(out, g * K, n, vec, v);
  }
}

template <typename C, int K, typename Out, typename In, typename Op>
__global__ void unaryKernel(Out* out, const In* in, int64_t n, bool vec, Op op) {
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g * K < n; g += int64_t(gridDim.x) * blockDim.x) {
    C x[K];
    loadGroup<K>(in, g * K, n, vec, x);
#pragma unroll
    for (int k = 0; k < K; ++k) x[k] = op(x[k]);
    storeGroup<K>(out, g * K, n, vec, x);
  }
}

// `out` may be `a` (addInplace): each element is read before it is written, by the same thread.
template <typename C, int K, typename Out, typename A, typename B, typename Op>
__global__ void binaryKernel(Out* out, const A* a, const B* b, int64_t n, bool vec, Op op) {
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g * K < n; g += int64_t(gridDim.x) * blockDim.x) {
    C x[K], y[K];
    loadGroup<K>(a, g * K, n, vec, x);
    loadGroup<K>(b, g * K, n, vec, y);
#pragma unroll
    for (int k = 0; k < K; ++k) x[k] = op(x[k], y[k]);
    storeGroup<K>(out, g * K, n, vec, x);
  }
}

// Pass 1 of sum: one f64 partial per block. Element-to-thread assignment depends only on n and
// the grid, which depends only on n.
template <int K, typename T>
__global__ void sumPartialKernel(double* partial, const T* in, int64_t n, bool vec) {
  __shared__ double scratch[32];
  double acc = 0;
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g * K < n; g += int64_t(gridDim.x) * blockDim.x) {
    double v[K];
    loadGroup<K>(in, g * K, n, vec, v);
#pragma unroll
    for (int k = 0; k < K; ++k) acc += v[k];
  }
  acc = blockSum(acc, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// Pass 2: one block adds the partials in a fixed order.
template <typename Out>
__global__ void sumFinalKernel(Out* out, const double* partial, int count) {
  __shared__ double scratch[32];
  double acc = 0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
  acc = blockSum(acc, scratch);
  if (threadIdx.x == 0) *out = convert<Out>(acc);
}

// ---- ops ---------------------------------------------------------------------------------------

// a + beta·b, rounded like the CPU's (1·a) + (beta·b): no FMA.
template <typename C>
struct AxpyOp {
  C beta;
  __device__ C operator()(C a, C b) const { return addRn(a, mulRn(beta, b)); }
};

template <typename C>
struct MulOp {
  __device__ C operator()(C a, C b) const { return mulRn(a, b); }
};

template <typename C>
struct ScaleOp {
  C alpha;
  __device__ C operator()(C a) const { return mulRn(alpha, a); }
};

// cast: the conversion happens in the loads and stores around it.
template <typename C>
struct IdentityOp {
  __device__ C operator()(C a) const { return a; }
};

template <typename U>
struct ConstantOp {
  U value;
  __device__ U operator()(int64_t) const { return value; }
};

// The CPU computes a + b·r in f64 from the f32 draw, then converts to the dtype.
struct RandomOp {
  uint64_t seed, offset;
  double a, b;  // normal: mean, std; uniform: low, high - low
  bool normal;
  __device__ double operator()(int64_t i) const {
    const float r = normal ? philoxNormal(seed, offset, static_cast<uint64_t>(i))
                           : philoxUniform(seed, offset, static_cast<uint64_t>(i));
    return addRn(a, mulRn(b, static_cast<double>(r)));
  }
};

// ---- launch helpers ----------------------------------------------------------------------------

template <typename C, typename Out, typename Gen>
void generate(const char* name, Out* out, int64_t n, Gen gen, cudaStream_t stream) {
  if (n == 0) return;
  constexpr int K = groupSize<Out>();
  generateKernel<C, K><<<gridFor((n + K - 1) / K), kThreads, 0, stream>>>(out, n, aligned16(out), gen);
  checkLaunch(name);
}

template <typename C, typename Out, typename In, typename Op>
void unary(const char* name, Out* out, const In* in, int64_t n, Op op, cudaStream_t stream) {
  if (n == 0) return;
  constexpr int K = groupSize<Out, In>();
  const bool vec = aligned16(out) && aligned16(in);
  unaryKernel<C, K><<<gridFor((n + K - 1) / K), kThreads, 0, stream>>>(out, in, n, vec, op);
  checkLaunch(name);
}

template <typename C, typename Out, typename A, typename B, typename Op>
void binary(const char* name, Out* out, const A* a, const B* b, int64_t n, Op op, cudaStream_t stream) {
  if (n == 0) return;
  constexpr int K = groupSize<Out, A, B>();
  const bool vec = aligned16(out) && aligned16(a) && aligned16(b);
  binaryKernel<C, K><<<gridFor((n + K - 1) / K), kThreads, 0, stream>>>(out, a, b, n, vec, op);
  checkLaunch(name);
}

// The bits the CPU stores for `value` in `dtype` (convertTo<double>), as a 64-bit pattern.
uint64_t storedBits(DType dtype, double value) {
  uint64_t bits = 0;
  switch (dtype) {
    case DType::F32: {
      float f = static_cast<float>(value);
      std::memcpy(&bits, &f, 4);
      break;
    }
    case DType::F64: std::memcpy(&bits, &value, 8); break;
    case DType::BF16: bits = floatToBf16(static_cast<float>(value)); break;
    case DType::F16: bits = floatToF16(static_cast<float>(value)); break;
    case DType::I32: {
      const int32_t i = (value > -2147483649.0 && value < 2147483648.0) ? static_cast<int32_t>(value) : INT32_MIN;
      std::memcpy(&bits, &i, 4);
      break;
    }
  }
  return bits;
}

template <typename U>
void fillBits(void* out, int64_t n, uint64_t bits, cudaStream_t stream) {
  generate<U>("fill", static_cast<U*>(out), n, ConstantOp<U>{static_cast<U>(bits)}, stream);
}

void random(const char* name, void* out, DType dtype, int64_t n, RandomOp op, cudaStream_t stream) {
  dispatchFloat(dtype, name, [&](auto tag) {
    using T = typename decltype(tag)::type;
    generate<double>(name, static_cast<T*>(out), n, op, stream);
  });
}

constexpr int kSumMaxBlocks = 1024;

int sumBlocks(int64_t n) {
  const int64_t blocks = (n + kThreads * 8 - 1) / (kThreads * 8);
  return static_cast<int>(blocks < 1 ? 1 : (blocks > kSumMaxBlocks ? kSumMaxBlocks : blocks));
}

}  // namespace

void add(void* out, const void* a, const void* b, double alpha, DType dtype, int64_t n, cudaStream_t stream) {
  dispatchFloat(dtype, "add", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = Compute<T>;
    binary<C>("add", static_cast<T*>(out), static_cast<const T*>(a), static_cast<const T*>(b), n,
              AxpyOp<C>{static_cast<C>(alpha)}, stream);
  });
}

void mul(void* out, const void* a, const void* b, DType dtype, int64_t n, cudaStream_t stream) {
  dispatchFloat(dtype, "mul", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = Compute<T>;
    binary<C>("mul", static_cast<T*>(out), static_cast<const T*>(a), static_cast<const T*>(b), n, MulOp<C>{}, stream);
  });
}

void scale(void* out, const void* a, double alpha, DType dtype, int64_t n, cudaStream_t stream) {
  dispatchFloat(dtype, "scale", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = Compute<T>;
    unary<C>("scale", static_cast<T*>(out), static_cast<const T*>(a), n, ScaleOp<C>{static_cast<C>(alpha)}, stream);
  });
}

void addInplace(void* a, DType aType, const void* b, DType bType, double alpha, int64_t n, cudaStream_t stream) {
  dispatchFloat(aType, "addInplace", [&](auto aTag) {
    using A = typename decltype(aTag)::type;
    using C = Compute<A>;
    dispatchFloat(bType, "addInplace", [&](auto bTag) {
      using B = typename decltype(bTag)::type;
      binary<C>("addInplace", static_cast<A*>(a), static_cast<const A*>(a), static_cast<const B*>(b), n,
                AxpyOp<C>{static_cast<C>(alpha)}, stream);
    });
  });
}

void cast(void* out, DType to, const void* in, DType from, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  if (to == from) {
    cudaCheck(cudaMemcpyAsync(out, in, static_cast<size_t>(n) * dtypeSize(to), cudaMemcpyDeviceToDevice, stream),
              "cast: cudaMemcpyAsync");
    return;
  }
  dispatchAny(from, "cast", [&](auto inTag) {
    using In = typename decltype(inTag)::type;
    dispatchAny(to, "cast", [&](auto outTag) {
      using Out = typename decltype(outTag)::type;
      // Through f64 when either side is f64, else f32: the CPU's HostIn<double|float> path.
      if constexpr (std::is_same_v<In, double> || std::is_same_v<Out, double>) {
        unary<double>("cast", static_cast<Out*>(out), static_cast<const In*>(in), n, IdentityOp<double>{}, stream);
      } else {
        unary<float>("cast", static_cast<Out*>(out), static_cast<const In*>(in), n, IdentityOp<float>{}, stream);
      }
    });
  });
}

void fill(void* out, DType dtype, int64_t n, double value, cudaStream_t stream) {
  if (n == 0) return;
  const uint64_t bits = storedBits(dtype, value);
  if (bits == 0) {  // +0 in every dtype: the copy engine's memset runs at full bandwidth
    cudaCheck(cudaMemsetAsync(out, 0, static_cast<size_t>(n) * dtypeSize(dtype), stream), "fill: cudaMemsetAsync");
    return;
  }
  switch (dtypeSize(dtype)) {
    case 2: return fillBits<uint16_t>(out, n, bits, stream);
    case 4: return fillBits<uint32_t>(out, n, bits, stream);
    default: return fillBits<uint64_t>(out, n, bits, stream);
  }
}

void randomNormal(void* out, DType dtype, int64_t n, uint64_t seed, uint64_t offset, double mean, double std,
                  cudaStream_t stream) {
  random("randomNormal", out, dtype, n, RandomOp{seed, offset, mean, std, true}, stream);
}

void randomUniform(void* out, DType dtype, int64_t n, uint64_t seed, uint64_t offset, double low, double high,
                   cudaStream_t stream) {
  random("randomUniform", out, dtype, n, RandomOp{seed, offset, low, high - low, false}, stream);
}

size_t sumWorkspaceBytes(int64_t n) { return static_cast<size_t>(sumBlocks(n)) * sizeof(double); }

void sum(void* out, const void* in, DType dtype, int64_t n, void* workspace, cudaStream_t stream) {
  const int blocks = sumBlocks(n);
  double* partial = static_cast<double*>(workspace);
  dispatchFloat(dtype, "sum", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* data = static_cast<const T*>(in);
    sumPartialKernel<groupSize<T>()><<<blocks, kThreads, 0, stream>>>(partial, data, n, aligned16(data));
    checkLaunch("sum (partials)");
    sumFinalKernel<<<1, 1024, 0, stream>>>(static_cast<Compute<T>*>(out), partial, blocks);
    checkLaunch("sum (final)");
  });
}

}  // namespace seqtune::gpu
