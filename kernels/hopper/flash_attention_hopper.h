// The Hopper attention kernels (sm_90a: TMA loads into 128B-swizzled shared memory through a ring
// one thread refills, wgmma with P kept in registers) behind attentionForward and
// attentionBackward: same AttentionShape, same results up to f32 summation order. They were
// written without a GPU to run them on, so each is only taken on a device where its one-time
// self-test (below) passed. Plain C++: includable without the CUDA headers.
#pragma once
#include <string>

#include "kernels/attention/flash_attention.h"

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

// The device pointers of the backward: q, dout [T, H, D]; k, v, dk, dv [T, Hkv, D]; lse2 =
// lse·log2(e) (+inf where no key was seen) and di = rowsum(dout ∘ out), f32 [H, T]
// (attentionBackward's preprocess writes both); dqAccum [T, H, D] f32, zeroed, or null.
struct HopperBackwardArgs {
  const void *q, *k, *v, *dout;
  void *dk, *dv;
  const float *lse2, *di;
  const int32_t* cuSeqlens;
  float* dqAccum;
};

// dk and dv in one pass over (128-key block, kv head, document) CTAs, summed in a fixed order;
// with dqAccum, also Σ dS·K (unscaled) added to it by atomics (the fast mode; dq = scale · dqAccum),
// without it dq is left to the FlashAttention-2 query-block pass (the deterministic mode). Same
// conditions and fallback as hopperAttentionForward.
bool hopperAttentionBackward(const AttentionShape& shape, DType dtype, const HopperBackwardArgs& args,
                             cudaStream_t stream, const HopperAttentionLaunch& options = {});

// attentionForward's choice: supported, SEQTUNE_ATTENTION_HOPPER not "0", a compute capability 9.0
// device, and that device's self-test passed (run by the first such call on `stream`; on failure
// the kernel stays off there and one warning goes to stderr).
bool hopperAttentionWanted(const AttentionShape& shape, DType dtype, cudaStream_t stream);

// attentionBackward's choice, in either mode: the same conditions with the backward's own
// self-test (hopperAttentionBackwardSelfTest).
bool hopperAttentionBackwardWanted(const AttentionShape& shape, DType dtype, cudaStream_t stream);

// Runs the Hopper forward on fixed pseudo-random problems (ragged packed documents, empty ones
// included; causal and not; grouped-query heads; head dims 64 and 128; bf16 and f16) and compares
// out and lse with the FlashAttention-2 kernel and a float64 host reference, and checks that
// nothing outside out and lse was written. False, with the reason in *detail, on a difference
// beyond bf16 rounding, a launch error, a stalled pipeline, or a device that is not compute
// capability 9.0. Synchronises `stream`.
bool hopperAttentionSelfTest(cudaStream_t stream, std::string* detail = nullptr);

// The same problems through attentionBackward's deterministic FlashAttention-2 path and through
// the Hopper kernel in both modes, comparing dk and dv with each other and with a float64 host
// gradient, and the fast mode's dq accumulator with the float64 dq.
bool hopperAttentionBackwardSelfTest(cudaStream_t stream, std::string* detail = nullptr);

// attentionForward's and attentionBackward's FlashAttention-2 paths (never the Hopper kernels),
// defined in flash_attention_fwd.cu and flash_attention_bwd.cu: the self-tests' references.
void attentionForwardAmpere(const AttentionShape& shape, DType dtype, const void* q, const void* k, const void* v,
                            const int32_t* cuSeqlens, void* out, float* lse, cudaStream_t stream);
void attentionBackwardAmpere(const AttentionShape& shape, DType dtype, const void* dout, const void* q, const void* k,
                             const void* v, const void* out, const float* lse, const int32_t* cuSeqlens, void* dq,
                             void* dk, void* dv, bool deterministic, void* workspace, cudaStream_t stream);

}  // namespace seqtune::gpu
