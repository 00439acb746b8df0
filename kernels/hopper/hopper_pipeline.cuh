// The producer/consumer plumbing of the Hopper kernels (gemm_hopper.cu, flash_attention_hopper.cu):
// mbarrier waits that give up instead of hanging, the stage ring both sides walk in step, and how
// a kernel reports a fault. The kernels were written without a GPU to run them on, so a broken
// pipeline must fail loudly: a wait that times out flags the self-test's fault word and returns,
// or traps when there is none.
#pragma once
#include <cstdint>

#include "kernels/hopper/hopper_ptx.cuh"

namespace seqtune::hopper {

enum Fault : int { kFaultStall = 1, kFaultNoSm90a = 2 };

__device__ __forceinline__ void reportFault(int* fault, int code) {
  if (fault) {
    atomicExch(fault, code);
  } else {
    __trap();
  }
}

#if defined(SEQTUNE_HOPPER_CODE)

// No wait of a working pipeline comes near this, even with the GPU time-sliced between processes.
constexpr uint64_t kStallNs = 4000000000ull;

// Waits for the phase of parity `parity` of `bar`; false after kStallNs.
__device__ __forceinline__ bool waitPhase(uint32_t bar, uint32_t parity) {
  if (ptx::mbarTryWait(bar, parity)) return true;
  const uint64_t start = ptx::globalTimer();
  while (!ptx::mbarTryWait(bar, parity)) {
    if (ptx::globalTimer() - start > kStallNs) return false;
  }
  return true;
}

// Producer and consumers step through the stages in the same order; the phase bit flips each lap.
// A fresh barrier is in phase 0, so the producer's first lap (waiting on parity phase ^ 1 of the
// "empty" barriers) passes at once.
template <int kStages>
struct Ring {
  int stage = 0;
  uint32_t phase = 0;
  __device__ __forceinline__ void advance() {
    if (++stage == kStages) {
      stage = 0;
      phase ^= 1u;
    }
  }
};

// Barrier `stage` of an array of 8-byte mbarriers at shared address base.
__device__ __forceinline__ uint32_t barrier(uint32_t base, int stage) { return base + 8u * stage; }

#endif  // SEQTUNE_HOPPER_CODE

}  // namespace seqtune::hopper
