// Host-side helpers shared by the attention launchers: the dtype and head-dim dispatch onto
// kernel templates, argument checks that must happen before a launch, and the dynamic
// shared-memory opt-in.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/cuda_check.h"
#include "kernels/attention/flash_attention.h"
#include "kernels/common/errors.h"
#include "kernels/common/kernel_note.h"

namespace seqtune::gpu::attn {

template <typename T, int D>
struct Kind {
  using type = T;
  static constexpr int kHeadDim = D;
};

// Calls f(Kind<T, D>{}) for the supported (dtype, head dim) pairs, throws otherwise.
template <typename F>
void dispatchKind(DType dtype, int64_t headDim, const char* what, F&& f) {
  if (headDim != 64 && headDim != 128) {
    fail(code::kNotImplemented, what, ": the CUDA attention kernels support head dims 64 and 128, got ", headDim);
  }
  if (dtype == DType::BF16) {
    return headDim == 64 ? f(Kind<__nv_bfloat16, 64>{}) : f(Kind<__nv_bfloat16, 128>{});
  }
  if (dtype == DType::F16) return headDim == 64 ? f(Kind<__half, 64>{}) : f(Kind<__half, 128>{});
  fail(code::kNotImplemented, what, ": the CUDA attention kernels support bf16 and f16, got ", dtypeName(dtype));
}

// The registers per thread ptxas gave `kernel` (-1 when the runtime cannot say). The Hopper
// attention kernels use no setmaxnreg, so whatever their launch bounds let ptxas choose is the
// allocation their readiness check (hopperKernelReady) is to expect.
template <class Kernel>
int kernelRegisters(Kernel kernel) {
  cudaFuncAttributes attr{};
  return cudaFuncGetAttributes(&attr, reinterpret_cast<const void*>(kernel)) == cudaSuccess ? attr.numRegs : -1;
}

// 16-byte vector loads and cp.async need aligned rows; D is a multiple of 8, so aligned bases do.
inline void expectAligned(const char* what, const char* name, const void* p) {
  if (reinterpret_cast<uintptr_t>(p) % 16 != 0) {
    fail(code::kArgument, what, ": ", name, " must be 16-byte aligned for the CUDA attention kernels");
  }
}

// Grid limits the launchers rely on: blocks over x (virtual blocks), heads over y.
inline void expectGrid(const char* what, int64_t blocks, int64_t heads) {
  if (blocks > INT32_MAX || heads > 65535) {
    fail(code::kNotImplemented, what, ": ", blocks, " blocks x ", heads, " heads exceed the CUDA grid");
  }
}

// A kernel using more than 48 KB of dynamic shared memory must opt in first (per device).
template <typename Kernel>
void allowSharedMemory(Kernel kernel, size_t bytes, const char* what) {
  if (bytes > 48 * 1024) {
    cudaCheck(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)), what);
  }
}

// scale · log2(e): scores enter exp2 in base-2 units.
inline float scaleLog2(const AttentionShape& s) { return static_cast<float>(s.scale * 1.4426950408889634); }

}  // namespace seqtune::gpu::attn
