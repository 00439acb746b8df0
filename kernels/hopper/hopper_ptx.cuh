// PTX wrappers of the Hopper kernels (gemm_hopper.cu, flash_attention_hopper*.cu): mbarriers, TMA
// tensor loads, wgmma (m64nNk16, f32 accumulators; A from shared memory or registers, B from
// shared memory), setmaxnreg and named barriers. Under nvcc they exist only in the sm_90a device
// pass (SEQTUNE_SM90A): wgmma and setmaxnreg are arch-specific, so every caller is compiled under
// the same guard and other targets never see them.
//
// Compiled by a host compiler they are only declared: test/kernels/attention_layout_hopper_emu.h
// defines them (as the PTX ISA specifies them) and runs the Hopper attention kernels' bodies on
// the CPU, so a change of signature here must be made there too. SEQTUNE_HOPPER_CODE marks the
// code that exists in both: the sm_90a device pass and host compilers.
#pragma once
#include <cstdint>
#include <type_traits>

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define SEQTUNE_SM90A 1
#endif
#if defined(SEQTUNE_SM90A) || !defined(__CUDACC__)
#define SEQTUNE_HOPPER_CODE 1
#endif

#if defined(SEQTUNE_SM90A)
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/common/mma_ptx.cuh"

namespace seqtune::hopper::ptx {

using seqtune::gpu::ptx::smemAddress;

// ---- mbarrier ------------------------------------------------------------------------------------

__device__ __forceinline__ void mbarInit(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}

// Makes the initialised barriers visible to the async proxy (TMA) and the other threads' waits.
__device__ __forceinline__ void fenceBarrierInit() { asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory"); }

// One arrival that also announces `bytes` of TMA transactions for the current phase.
__device__ __forceinline__ void mbarArriveExpectTx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}

__device__ __forceinline__ void mbarArrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}

// Whether the phase of parity `parity` has completed (waits a hardware-chosen while first). A
// fresh barrier is in phase 0, so parity 1 (the phase "before" it) counts as completed.
__device__ __forceinline__ bool mbarTryWait(uint32_t bar, uint32_t parity) {
  uint32_t done;
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
      "selp.b32 %0, 1, 0, p;\n"
      "}\n"
      : "=r"(done)
      : "r"(bar), "r"(parity)
      : "memory");
  return done != 0;
}

__device__ __forceinline__ uint64_t globalTimer() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t));
  return t;
}

// ---- TMA -----------------------------------------------------------------------------------------

// The box at coordinates (c0, c1, c2) of the tensor map (a __grid_constant__ parameter) into shared
// memory at dst, swizzled as the map says; out-of-bounds elements are zero-filled. Completes its
// bytes on `bar`.
__device__ __forceinline__ void tmaLoad3d(uint32_t dst, const void* tensorMap, uint32_t bar, int32_t c0, int32_t c1,
                                          int32_t c2) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, %5}], [%2];\n" ::
          "r"(dst),
      "l"(reinterpret_cast<uint64_t>(tensorMap)), "r"(bar), "r"(c0), "r"(c1), "r"(c2)
      : "memory");
}

// ---- wgmma ---------------------------------------------------------------------------------------

// Orders this warpgroup's earlier register and shared-memory accesses before the wgmmas that follow.
__device__ __forceinline__ void wgmmaFence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmmaCommit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
// Waits until at most N committed wgmma groups of the warpgroup are pending.
template <int N>
__device__ __forceinline__ void wgmmaWait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// The compiler does not know that wgmma reads and writes registers asynchronously: an empty asm
// that "modifies" each of them pins every ordinary access on its side of the wait/fence it is
// next to (after a wait: no read moves up; before wgmma.fence: no write moves down into the
// wgmmas' pipeline, where ptxas would serialise them).
template <int NT>
__device__ __forceinline__ void fenceAccumulators(float (&d)[NT][4]) {
#pragma unroll
  for (int j = 0; j < NT; ++j) {
#pragma unroll
    for (int v = 0; v < 4; ++v) asm volatile("" : "+f"(d[j][v])::"memory");
  }
}

template <int NT>
__device__ __forceinline__ void fenceFragments(uint32_t (&a)[NT][4]) {
#pragma unroll
  for (int j = 0; j < NT; ++j) {
#pragma unroll
    for (int v = 0; v < 4; ++v) asm volatile("" : "+r"(a[j][v])::"memory");
  }
}

// wgmma's operand lists, spelled out once: the accumulator placeholders "{%0, ..., %(R-1)}" of an
// m64nNk16 (R = N / 2 f32 registers per thread) and the matching "+f" constraints of d[N / 8][4].
#define SEQTUNE_WGMMA_D32 \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, " \
    "%21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define SEQTUNE_WGMMA_D64 \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, " \
    "%21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, " \
    "%41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, " \
    "%61, %62, %63}"
#define SEQTUNE_WGMMA_D128 \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, " \
    "%21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, " \
    "%41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, " \
    "%61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, " \
    "%81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, " \
    "%100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, " \
    "%116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}"
#define SEQTUNE_WGMMA_ACC4(d, j) "+f"(d[j][0]), "+f"(d[j][1]), "+f"(d[j][2]), "+f"(d[j][3])
#define SEQTUNE_WGMMA_TILES8(d, j) \
  SEQTUNE_WGMMA_ACC4(d, j), SEQTUNE_WGMMA_ACC4(d, j + 1), SEQTUNE_WGMMA_ACC4(d, j + 2), SEQTUNE_WGMMA_ACC4(d, j + 3), \
      SEQTUNE_WGMMA_ACC4(d, j + 4), SEQTUNE_WGMMA_ACC4(d, j + 5), SEQTUNE_WGMMA_ACC4(d, j + 6), SEQTUNE_WGMMA_ACC4(d, j + 7)
#define SEQTUNE_WGMMA_ACC32(d) SEQTUNE_WGMMA_TILES8(d, 0)
#define SEQTUNE_WGMMA_ACC64(d) SEQTUNE_WGMMA_TILES8(d, 0), SEQTUNE_WGMMA_TILES8(d, 8)
#define SEQTUNE_WGMMA_ACC128(d) SEQTUNE_WGMMA_ACC64(d), SEQTUNE_WGMMA_TILES8(d, 16), SEQTUNE_WGMMA_TILES8(d, 24)

// Both operands from shared-memory descriptors. R: accumulator registers; the string arguments are
// the operand numbers that follow them (descA, descB, scaleD, transA, transB).
#define SEQTUNE_WGMMA_SS(N, TYPE, R, DA, DB, SCALE, TA, TB) \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" SCALE ", 0;\n" \
               "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TYPE "." TYPE " " SEQTUNE_WGMMA_D##R \
               ", %" DA ", %" DB ", p, 1, 1, %" TA ", %" TB ";\n}\n" \
               : SEQTUNE_WGMMA_ACC##R(d) \
               : "l"(descA), "l"(descB), "r"(scaleD), "n"(TA_), "n"(TB_))

// A from registers (four 32-bit registers of packed pairs), B from a descriptor: (a0..a3, descB,
// scaleD, transB).
#define SEQTUNE_WGMMA_RS(N, TYPE, R, A0, A1, A2, A3, DB, SCALE, TB) \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" SCALE ", 0;\n" \
               "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TYPE "." TYPE " " SEQTUNE_WGMMA_D##R \
               ", {%" A0 ", %" A1 ", %" A2 ", %" A3 "}, %" DB ", p, 1, 1, %" TB ";\n}\n" \
               : SEQTUNE_WGMMA_ACC##R(d) \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(descB), "r"(scaleD), "n"(TB_))

template <typename T>
constexpr bool kIsBf16 = std::is_same_v<T, __nv_bfloat16>;

// d (+)= A · B for one 64 x N x 16 step of the warpgroup, A and B from shared-memory descriptors,
// TA_ / TB_ the transpose immediates (1: MN-major); scaleD = 0 ignores d's previous contents. d[j][v]
// of thread t is row 16·(t / 32) + (t % 32) / 4 + 8·(v / 2), column 8j + 2·(t % 4) + v % 2 (PTX
// ISA, "WGMMA .m64nNk16 register fragment layout for accumulator matrix D"): per warp, the m16n8
// accumulator layout of mma.sync repeated along N.
template <typename T, int TA_, int TB_, int N>
__device__ __forceinline__ void wgmmaSS(float (&d)[N / 8][4], uint64_t descA, uint64_t descB, int scaleD) {
  static_assert(kIsBf16<T> || std::is_same_v<T, __half>, "bf16 or f16 operands");
  static_assert(N == 64 || N == 128 || N == 256, "N of 64, 128 or 256");
  if constexpr (N == 256) {
    if constexpr (kIsBf16<T>) {
      SEQTUNE_WGMMA_SS(256, "bf16", 128, "128", "129", "130", "131", "132");
    } else {
      SEQTUNE_WGMMA_SS(256, "f16", 128, "128", "129", "130", "131", "132");
    }
  } else if constexpr (N == 128) {
    if constexpr (kIsBf16<T>) {
      SEQTUNE_WGMMA_SS(128, "bf16", 64, "64", "65", "66", "67", "68");
    } else {
      SEQTUNE_WGMMA_SS(128, "f16", 64, "64", "65", "66", "67", "68");
    }
  } else {
    if constexpr (kIsBf16<T>) {
      SEQTUNE_WGMMA_SS(64, "bf16", 32, "32", "33", "34", "35", "36");
    } else {
      SEQTUNE_WGMMA_SS(64, "f16", 32, "32", "33", "34", "35", "36");
    }
  }
}

// The same with A in registers: a[0..3] of each warp hold its 16 rows as the A fragment of
// mma.m16n8k16 (PTX ISA, "WGMMA .m64nNk16 register fragment layout for matrix A"), so an
// accumulator of one wgmma becomes the A of the next without shared memory (P·V after S = Q·Kᵀ).
template <typename T, int TB_, int N>
__device__ __forceinline__ void wgmmaRS(float (&d)[N / 8][4], const uint32_t (&a)[4], uint64_t descB, int scaleD) {
  static_assert(kIsBf16<T> || std::is_same_v<T, __half>, "bf16 or f16 operands");
  static_assert(N == 64 || N == 128, "N of 64 or 128");
  if constexpr (N == 128) {
    if constexpr (kIsBf16<T>) {
      SEQTUNE_WGMMA_RS(128, "bf16", 64, "64", "65", "66", "67", "68", "69", "70");
    } else {
      SEQTUNE_WGMMA_RS(128, "f16", 64, "64", "65", "66", "67", "68", "69", "70");
    }
  } else {
    if constexpr (kIsBf16<T>) {
      SEQTUNE_WGMMA_RS(64, "bf16", 32, "32", "33", "34", "35", "36", "37", "38");
    } else {
      SEQTUNE_WGMMA_RS(64, "f16", 32, "32", "33", "34", "35", "36", "37", "38");
    }
  }
}

#undef SEQTUNE_WGMMA_RS
#undef SEQTUNE_WGMMA_SS
#undef SEQTUNE_WGMMA_ACC128
#undef SEQTUNE_WGMMA_ACC64
#undef SEQTUNE_WGMMA_ACC32
#undef SEQTUNE_WGMMA_TILES8
#undef SEQTUNE_WGMMA_ACC4
#undef SEQTUNE_WGMMA_D128
#undef SEQTUNE_WGMMA_D64
#undef SEQTUNE_WGMMA_D32

// ---- setmaxnreg ----------------------------------------------------------------------------------

template <int N>
__device__ __forceinline__ void setMaxRegsDec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
}
template <int N>
__device__ __forceinline__ void setMaxRegsInc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
}

// ---- named barriers ------------------------------------------------------------------------------

// Waits until `threads` threads (whole warps) reached barrier `id` (1..15; 0 is __syncthreads').
__device__ __forceinline__ void namedBarrierSync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// ---- proxy fence ---------------------------------------------------------------------------------

// Orders this thread's ordinary (generic-proxy) shared-memory writes before later async-proxy reads
// of them (wgmma operands): the writer fences, then a barrier, then the wgmma.
__device__ __forceinline__ void fenceProxyAsync() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

}  // namespace seqtune::hopper::ptx

#elif !defined(__CUDACC__)  // host compilers: defined by the emulator

#include "kernels/common/mma_ptx.cuh"

namespace seqtune::hopper::ptx {

using seqtune::gpu::ptx::smemAddress;
void mbarInit(uint32_t bar, uint32_t count);
void fenceBarrierInit();
void mbarArriveExpectTx(uint32_t bar, uint32_t bytes);
void mbarArrive(uint32_t bar);
bool mbarTryWait(uint32_t bar, uint32_t parity);
uint64_t globalTimer();
void tmaLoad3d(uint32_t dst, const void* tensorMap, uint32_t bar, int32_t c0, int32_t c1, int32_t c2);
void wgmmaFence();
void wgmmaCommit();
template <int N>
void wgmmaWait();
template <int NT>
void fenceAccumulators(float (&)[NT][4]) {}
template <int NT>
void fenceFragments(uint32_t (&)[NT][4]) {}
template <typename T, int TA_, int TB_, int N>
void wgmmaSS(float (&d)[N / 8][4], uint64_t descA, uint64_t descB, int scaleD);
template <typename T, int TB_, int N>
void wgmmaRS(float (&d)[N / 8][4], const uint32_t (&a)[4], uint64_t descB, int scaleD);
template <int N>
void setMaxRegsDec() {}
template <int N>
void setMaxRegsInc() {}
void namedBarrierSync(int id, int threads);
void fenceProxyAsync();

}  // namespace seqtune::hopper::ptx

#endif
