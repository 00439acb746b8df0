// Rotary position embedding (rope in lib/ops.ts), Hugging Face rotate-half layout: element i of a
// head pairs with element i + D/2.
#pragma once
#include <cstdint>

#include "kernels/common/cuda_stream.h"
#include "kernels/common/dtype.h"

namespace seqtune::gpu {

// x, out: [tokens, heads, headDim] of `dtype` (floating; out may be x); positions: int32 [tokens].
// invFreq: f64 [headDim/2] in device memory, rope_scaling already applied (computed once on the
// host, as the CPU's ropeParams does); positionScale multiplies the positions first ('linear'
// scaling: 1/factor, else 1). With a = position·positionScale·invFreq[i] (in f64, as positions
// reach ~1e5 rad):
//   out[i]       = x[i]·cos a − x[i + D/2]·sin a
//   out[i + D/2] = x[i + D/2]·cos a + x[i]·sin a
// inverse: rotate by −a (the backward). cos/sin are computed once per (token, i) and reused for
// every head.
void rope(void* out, const void* x, const int32_t* positions, const double* invFreq, double positionScale, DType dtype,
          int64_t tokens, int64_t heads, int64_t headDim, bool inverse, cudaStream_t stream);

}  // namespace seqtune::gpu
