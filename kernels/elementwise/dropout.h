// Inverted dropout (dropout in lib/ops.ts; its backward is the same call on dy).
#pragma once
#include <cstdint>

#include "kernels/common/cuda_stream.h"
#include "kernels/common/dtype.h"

namespace seqtune::gpu {

// out[i] = dropoutKeep(seed, offset, i, p) ? x[i] / (1 − p) : 0 over n elements of `dtype`
// (floating), p in [0, 1). The mask is philox.h's, so it is bit-identical to the CPU's and the
// backward regenerates it from (seed, offset). p = 0 copies x.
void dropout(void* out, const void* x, DType dtype, int64_t n, double p, uint64_t seed, uint64_t offset,
             cudaStream_t stream);

}  // namespace seqtune::gpu
