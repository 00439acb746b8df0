// The Hopper GEMM (sm_90a: TMA loads into 128B-swizzled shared memory, wgmma, a warp-specialised
// persistent pipeline) behind gemm(): same GemmArgs, same epilogue, same results up to f32
// summation order. It has never run on a GPU when written, so gemm() only takes it on a device
// whose one-time self-test (below) passed. Plain C++: includable without the CUDA headers.
#pragma once
#include <string>

#include "kernels/gemm/gemm.h"

namespace seqtune::gpu {

// Launch options the self-test uses: at most maxCtas resident blocks (0: one per SM), so a block
// walks several tiles; fault, when set, is a device int the kernel sets instead of trapping when
// its pipeline stalls (1) or it was built without sm_90a code (2); why, when set, receives the
// reason when nothing was launched.
struct HopperGemmLaunch {
  int maxCtas = 0;
  int* fault = nullptr;
  std::string* why = nullptr;
};

// A second K segment: C = alpha·(op(A)·op(B) + op(A1)·op(B1)) + bias + beta·Cin, with A1 [M, K] and
// B1 [K, N] (this K) stored as A and B are (same transposes; batched exactly when A and B are).
// K = 0: none. The mma.sync path has no such thing: callers that use it check
// hopperGemmSupports(g, segment) and compose the product another way when it is false.
struct GemmKSegment {
  const void* a = nullptr;
  int64_t lda = 0, strideA = 0;
  const void* b = nullptr;
  int64_t ldb = 0, strideB = 0;
  int64_t K = 0;
};

// Whether the kernel can take these arguments: bf16/f16; A and B 16-byte aligned with row and
// batch strides multiples of 16 bytes, batches apart (or shared); sizes within TMA's int32
// coordinates. Cin, bias and C may have any alignment (the epilogue stores element-wise then).
bool hopperGemmSupports(const GemmArgs& g);
// The same with a second K segment, whose operands must satisfy what A and B do.
bool hopperGemmSupports(const GemmArgs& g, const GemmKSegment& segment);

// Launches g on the Hopper kernel (the current device must have compute capability 9.0 and g be
// supported). False, with nothing launched, when the driver refuses a tensor map or the kernel
// cannot run on this device (no sm_90a code, registers short of what setmaxnreg needs): the
// caller then runs the mma.sync path.
bool hopperGemm(const GemmArgs& g, cudaStream_t stream, const HopperGemmLaunch& launch = {});
bool hopperGemm(const GemmArgs& g, const GemmKSegment& segment, cudaStream_t stream,
                const HopperGemmLaunch& launch = {});

// gemm()'s choice: supported, large enough to gain (M, N >= 128, K >= 64, M·N·K·batch >= 2^27),
// SEQTUNE_GEMM_HOPPER not "0", a compute capability 9.0 device, and that device's self-test
// passed. The first such call on a device runs the self-test on `stream`; if it fails, the Hopper
// path stays off for the device and one warning goes to stderr.
bool hopperGemmWanted(const GemmArgs& g, cudaStream_t stream);

// Runs the Hopper kernel on fixed pseudo-random problems (ragged M, N, K; all four transpose
// combinations; batches with strided and shared operands; bias, beta·Cin, alpha; bf16, f16 and
// f32 outputs; a few blocks walking many tiles; second K segments) and compares each result with the mma.sync kernel
// and a float64 host reference, and checks that nothing outside C was written. False, with the
// reason in *detail, on a difference beyond bf16 rounding, a launch error, a stalled pipeline, or
// a device that is not compute capability 9.0. Synchronises `stream`.
bool hopperGemmSelfTest(cudaStream_t stream, std::string* detail = nullptr);

// gemm()'s mma.sync path for bf16/f16 (never the Hopper kernel), defined in gemm.cu: the
// self-test's reference.
void gemmTensorCore(const GemmArgs& g, cudaStream_t stream);

}  // namespace seqtune::gpu
