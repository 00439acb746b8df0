// The Hopper attention forward (sm_90a: TMA loads into 128B-swizzled shared memory, wgmma with P
// kept in registers, a warp-specialised producer/consumer pipeline) behind attentionForward: same
// AttentionShape, same out and lse, the same results up to f32 summation order. It was written
// without a GPU to run it on, so attentionForward only takes it on a device whose one-time
// self-test (below) passed. Plain C++: includable without the CUDA headers.
#pragma once
#include <string>

#include "kernels/flash_attention.h"

namespace seqtune::gpu {

// Launch options the self-test uses: fault, when set, is a device int the kernel sets instead of
// trapping when its pipeline stalls (1) or it was built without sm_90a code (2); why, when set,
// receives the reason when nothing was launched.
struct HopperAttentionLaunch {
  int* fault = nullptr;
  std::string* why = nullptr;
};

// Whether the kernel can take the shape: the packed layout (maxTokens 0: training and prefill),
// bf16/f16, head dims 64 and 128, and sizes within TMA's int32 coordinates and the grid. The
// cache layout (decoding) keeps the FlashAttention-2 and split-K kernels.
bool hopperAttentionSupports(const AttentionShape& shape, DType dtype);

// Launches the forward on the Hopper kernel (the current device must have compute capability 9.0
// and the shape be supported; pointers 16-byte aligned, which attentionForward checked). False,
// with nothing launched, when the driver refuses a tensor map or the kernel cannot run here: the
// caller then runs the FlashAttention-2 kernel.
bool hopperAttentionForward(const AttentionShape& shape, DType dtype, const void* q, const void* k, const void* v,
                            const int32_t* cuSeqlens, void* out, float* lse, cudaStream_t stream,
                            const HopperAttentionLaunch& launch = {});

// attentionForward's choice: supported, SEQTUNE_ATTENTION_HOPPER not "0", a compute capability 9.0
// device, and that device's self-test passed (run by the first such call on `stream`; on failure
// the kernel stays off there and one warning goes to stderr).
bool hopperAttentionWanted(const AttentionShape& shape, DType dtype, cudaStream_t stream);

// Runs the Hopper forward on fixed pseudo-random problems (ragged packed documents, empty ones
// included; causal and not; grouped-query heads; head dims 64 and 128; bf16 and f16) and compares
// out and lse with the FlashAttention-2 kernel and a float64 host reference, and checks that
// nothing outside out and lse was written. False, with the reason in *detail, on a difference
// beyond bf16 rounding, a launch error, a stalled pipeline, or a device that is not compute
// capability 9.0. Synchronises `stream`.
bool hopperAttentionSelfTest(cudaStream_t stream, std::string* detail = nullptr);

// attentionForward's FlashAttention-2 path (never the Hopper kernel), defined in
// flash_attention_fwd.cu: the self-test's reference.
void attentionForwardAmpere(const AttentionShape& shape, DType dtype, const void* q, const void* k, const void* v,
                            const int32_t* cuSeqlens, void* out, float* lse, cudaStream_t stream);

}  // namespace seqtune::gpu
