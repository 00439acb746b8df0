// The PTX-level primitives of the tensor-core kernels (sm_80+), shared by the GEMM (gemm_tc.h,
// gemm_epilogue.h) and attention (flash_attention_*.cuh) so that each instruction is wrapped once:
// cp.async (16 and 4 bytes, commit, wait), ldmatrix.x4, mma.sync.m16n8k16 with f32 accumulators,
// ex2.approx, and the bf16/f16 <-> f32 conversions and packing of fragments.
//
// Under nvcc they are inline PTX. Compiled by a host compiler they are only declared:
// test/kernels/attention_layout_emulator.cpp defines them (as the PTX ISA specifies them) and runs
// the attention kernel bodies on the CPU, so a change of signature here must be made there too.
#pragma once
#include <cstdint>
#include <type_traits>

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace seqtune::gpu::ptx {

#if defined(__CUDACC__)

__device__ __forceinline__ uint32_t smemAddress(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared: copies srcBytes (0..16) and zero-fills the rest; with 0 nothing is read.
__device__ __forceinline__ void cpAsync16(uint32_t dst, const void* src, int srcBytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(srcBytes) : "memory");
}

// 4 bytes (per-row statistics), through L1; srcBytes 0..4 as above.
__device__ __forceinline__ void cpAsync4(uint32_t dst, const void* src, int srcBytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(srcBytes) : "memory");
}

__device__ __forceinline__ void cpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

// Waits until at most N committed groups of this thread are still in flight.
template <int N>
__device__ __forceinline__ void cpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Four 8x8 b16 matrices; lane 8j + r gives the address of row r of matrix j. kTrans transposes
// each matrix on the way (MN-major tiles).
template <bool kTrans>
__device__ __forceinline__ void ldmatrixX4(uint32_t (&r)[4], uint32_t address) {
  if constexpr (kTrans) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address));
  } else {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address));
  }
}

// d += a · b for one 16 x 8 x 16 tile (a: 4 registers, b: 2, d: 4 f32), T = bf16 or f16.
template <typename T>
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    static_assert(std::is_same_v<T, __half>, "bf16 or f16 operands");
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// Two floats as one register of T, rounded to nearest (the lower column in the low half, as
// fragments expect).
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  uint32_t r;
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    r = *reinterpret_cast<uint32_t*>(&v);
  } else {
    __half2 v = __floats2half2_rn(lo, hi);
    r = *reinterpret_cast<uint32_t*>(&v);
  }
  return r;
}

// The two elements of T in a 32-bit word, as floats (the low half first). Bit operations rather
// than a cast of the word's address: reading an object through another type is undefined in C++.
template <typename T>
__device__ __forceinline__ float2 unpack2(uint32_t w) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return make_float2(__uint_as_float(w << 16), __uint_as_float(w & 0xffff0000u));
  } else {
    return make_float2(__half2float(__ushort_as_half(static_cast<unsigned short>(w & 0xffffu))),
                       __half2float(__ushort_as_half(static_cast<unsigned short>(w >> 16))));
  }
}

// f32 (passed through: the GEMM's f32 outputs and partials), bf16 or f16 to and from float.
template <typename T>
__device__ __forceinline__ float toFloat(T v) {
  if constexpr (std::is_same_v<T, float>) {
    return v;
  } else if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return __bfloat162float(v);
  } else {
    return __half2float(v);
  }
}

template <typename T>
__device__ __forceinline__ T fromFloat(float v) {
  if constexpr (std::is_same_v<T, float>) {
    return v;
  } else if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return __float2bfloat16_rn(v);
  } else {
    return __float2half_rn(v);
  }
}

// 2^x on the special-function unit; 2^-inf = 0.
__device__ __forceinline__ float exp2Fast(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

#else  // host compilers: defined by the emulator

uint32_t smemAddress(const void* p);
void cpAsync16(uint32_t dst, const void* src, int srcBytes);
void cpAsync4(uint32_t dst, const void* src, int srcBytes);
void cpAsyncCommit();
template <int N>
void cpAsyncWait();
template <bool kTrans>
void ldmatrixX4(uint32_t (&r)[4], uint32_t address);
template <typename T>
void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <typename T>
uint32_t pack2(float lo, float hi);
template <typename T>
float2 unpack2(uint32_t w);
template <typename T>
float toFloat(T v);
template <typename T>
T fromFloat(float v);
float exp2Fast(float x);

#endif

// The byte count is an int: a bool (the attention kernels' "row is valid") would convert to 1
// and copy one byte, so passing one is an error rather than a silent partial copy.
__device__ void cpAsync16(uint32_t dst, const void* src, bool) = delete;
__device__ void cpAsync4(uint32_t dst, const void* src, bool) = delete;

}  // namespace seqtune::gpu::ptx
