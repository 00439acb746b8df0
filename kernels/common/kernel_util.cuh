// Shared by the .cu files (never by host-only code): dtype dispatch, conversions that match the
// CPU backend's, 128-bit vector access in groups, and deterministic block reductions.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <type_traits>

#include "kernels/common/cuda_check.h"
#include "kernels/common/dtype.h"

namespace seqtune::gpu {

constexpr int kThreads = 256;
// Grid-stride kernels never need more blocks than this to fill any current GPU several times.
constexpr int64_t kMaxBlocks = 16384;

inline int gridFor(int64_t work, int threads = kThreads) {
  const int64_t blocks = (work + threads - 1) / threads;
  return static_cast<int>(blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks));
}

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// ---- dtype dispatch (host) ---------------------------------------------------------------------

template <typename T>
struct TypeTag {
  using type = T;
};

// Calls f(TypeTag<T>{}) with T the storage type of a floating dtype.
template <typename F>
void dispatchFloat(DType dtype, const char* what, F&& f) {
  switch (dtype) {
    case DType::F32: return f(TypeTag<float>{});
    case DType::BF16: return f(TypeTag<__nv_bfloat16>{});
    case DType::F16: return f(TypeTag<__half>{});
    case DType::F64: return f(TypeTag<double>{});
    case DType::I32: break;
  }
  fail(code::kDtype, what, ": expected a floating-point dtype, got ", dtypeName(dtype));
}

// Any dtype, i32 included.
template <typename F>
void dispatchAny(DType dtype, const char* what, F&& f) {
  if (dtype == DType::I32) return f(TypeTag<int32_t>{});
  dispatchFloat(dtype, what, f);
}

// The compute type of a storage type: f64 for f64, f32 otherwise (as the CPU backend).
template <typename T>
using Compute = std::conditional_t<std::is_same_v<T, double>, double, float>;

// ---- conversions (device) ----------------------------------------------------------------------

// x86's cvtt: NaN and out-of-range values become INT_MIN, so GPU and CPU casts agree.
template <typename F>
__device__ __forceinline__ int32_t truncToInt(F x) {
  return (x > F(-2147483649.0) && x < F(2147483648.0)) ? static_cast<int32_t>(x) : INT_MIN;
}

// Storage/compute conversions with the CPU's rounding: to bf16/f16 round to nearest even, and a
// double reaches bf16/f16 through float (as convertTo<double> does).
template <typename To, typename From>
__device__ __forceinline__ To convert(From x) {
  if constexpr (std::is_same_v<To, From>) {
    return x;
  } else if constexpr (std::is_same_v<From, __nv_bfloat16>) {
    return convert<To>(__bfloat162float(x));
  } else if constexpr (std::is_same_v<From, __half>) {
    return convert<To>(__half2float(x));
  } else if constexpr (std::is_same_v<To, __nv_bfloat16>) {
    return __float2bfloat16_rn(static_cast<float>(x));
  } else if constexpr (std::is_same_v<To, __half>) {
    return __float2half_rn(static_cast<float>(x));
  } else if constexpr (std::is_same_v<To, int32_t>) {
    return truncToInt(x);
  } else {
    return static_cast<To>(x);
  }
}

// Rounded arithmetic that the compiler may not fuse into an FMA, where the GPU result must be
// bit-identical to the CPU's (which computes the product and the sum separately).
__device__ __forceinline__ float mulRn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mulRn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float addRn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double addRn(double a, double b) { return __dadd_rn(a, b); }

// ---- 128-bit grouped access (device) -----------------------------------------------------------

// A thread handles K consecutive elements at a time, K = 16 bytes / the smallest element size of
// the op, so every tensor of the op is read and written in whole 16-byte vectors. `vec` says all
// pointers are 16-byte aligned (tensor views may not be); the ragged last group and unaligned
// views fall back to element accesses with the same element-to-thread mapping.
template <typename... Ts>
constexpr int groupSize() {
  constexpr size_t smallest = std::min({sizeof(Ts)...});
  return static_cast<int>(16 / smallest);
}

template <int K, typename C, typename T>
__device__ __forceinline__ void loadGroup(const T* p, int64_t i, int64_t n, bool vec, C (&out)[K]) {
  static_assert((K * sizeof(T)) % 16 == 0, "a group must be whole 16-byte vectors");
  if (vec && i + K <= n) {
    constexpr int kPerVec = 16 / sizeof(T);
#pragma unroll
    for (int c = 0; c < K / kPerVec; ++c) {
      int4 raw = *reinterpret_cast<const int4*>(p + i + c * kPerVec);
      const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
      for (int k = 0; k < kPerVec; ++k) out[c * kPerVec + k] = convert<C>(e[k]);
    }
  } else {
#pragma unroll
    for (int k = 0; k < K; ++k) out[k] = i + k < n ? convert<C>(p[i + k]) : C(0);
  }
}

template <int K, typename T, typename C>
__device__ __forceinline__ void storeGroup(T* p, int64_t i, int64_t n, bool vec, const C (&in)[K]) {
  static_assert((K * sizeof(T)) % 16 == 0, "a group must be whole 16-byte vectors");
  if (vec && i + K <= n) {
    constexpr int kPerVec = 16 / sizeof(T);
#pragma unroll
    for (int c = 0; c < K / kPerVec; ++c) {
      int4 raw;
      T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
      for (int k = 0; k < kPerVec; ++k) e[k] = convert<T>(in[c * kPerVec + k]);
      *reinterpret_cast<int4*>(p + i + c * kPerVec) = raw;
    }
  } else {
#pragma unroll
    for (int k = 0; k < K; ++k) {
      if (i + k < n) p[i + k] = convert<T>(in[k]);
    }
  }
}

// ---- deterministic reductions (device) ---------------------------------------------------------
// Fixed shuffle trees: the result depends only on which values each thread holds, never on timing.

template <typename T>
__device__ __forceinline__ T warpSum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// The sum over the block, returned to every thread. blockDim.x must be a multiple of 32;
// `scratch` holds 32 values and may be reused right after the call.
template <typename T>
__device__ T blockSum(T v, T* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warpSum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T total = warpSum(lane < warps ? scratch[lane] : T(0));
  __syncthreads();
  return total;
}

// ---- multi-tensor launches (device) ------------------------------------------------------------

// Entries list their first chunk in increasing order; returns the entry owning `chunk` (tensors
// without elements own no chunk and are skipped).
template <typename Entry>
__device__ int findTensor(const Entry* table, int count, int64_t chunk) {
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (table[mid].firstChunk <= chunk) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

}  // namespace seqtune::gpu
