// Index validation for kernels that gather by an int32 index (embedding ids, cross-entropy labels).
// A kernel never reads out of bounds: it skips a bad index and flags its position in one int of
// device memory. After the launch, the op reads the flag back (a stream synchronisation) and fails
// with ERR_INDEX naming the first bad position, as the CPU backend does before it starts.
#pragma once
#include <cstdint>

#include "kernels/common/cuda_stream.h"

namespace seqtune::gpu {

// Clears the flag on the stream; launchers that check indices call it before their kernel.
void resetIndexFlag(int* flag, cudaStream_t stream);

struct BadIndex {
  int64_t position = -1;  // -1: every index was valid
  int32_t value = 0;
};

// Waits for the stream, then returns the lowest flagged position of indices[0..count) and its
// value. count must be below 2^31.
BadIndex firstBadIndex(const int* flag, const int32_t* indices, int64_t count, cudaStream_t stream);

#ifdef __CUDACC__
// Device side: position p of `count` indices is bad. The flag keeps count - p, maximised, so the
// lowest position wins whatever the order the threads arrive in.
__device__ __forceinline__ void flagBadIndex(int* flag, int64_t p, int64_t count) {
  atomicMax(flag, static_cast<int>(count - p));
}
#endif

}  // namespace seqtune::gpu
