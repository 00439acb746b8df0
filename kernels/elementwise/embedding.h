// Token embedding lookup and its gradient (embedding / embeddingBackward in lib/ops.ts).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/common/cuda_stream.h"
#include "kernels/common/dtype.h"

namespace seqtune::gpu {

// out[t, :] = table[ids[t], :]; table: [vocab, cols] of `dtype`, ids: int32 [tokens], out:
// [tokens, cols]. An id outside [0, vocab) is never read: its row of out is zeroed and its
// position flagged in `errorFlag` (one int of device memory; index_check.h). The caller then
// calls firstBadIndex(errorFlag, ids, tokens, stream) and fails with ERR_INDEX if one was found.
// tokens < 2^31.
void embeddingForward(void* out, const void* table, const int32_t* ids, DType dtype, int64_t tokens, int64_t vocab,
                      int64_t cols, int* errorFlag, cudaStream_t stream);

// Device memory embeddingBackward needs for `tokens` ids (sort buffers and CUB's scratch). Uses the
// CUDA device current on the calling thread to size CUB's scratch (any GPU of the same arch).
size_t embeddingBackwardWorkspaceBytes(int64_t tokens);

// dtable [vocab, cols] = zeros, then dtable[v, :] = Σ_{t: ids[t] = v} dout[t, :] with dout
// [tokens, cols], both of `dtype` (floating). Deterministic without atomics, in the CPU's order:
// (id, t) pairs are radix-sorted by id (stable, so each id's tokens stay in increasing t), then
// one block per distinct id (and column range) adds its rows in that order in f32 (f64 for f64).
// Out-of-range ids are skipped and flagged as in embeddingForward. tokens < 2^31.
void embeddingBackward(void* dtable, const void* dout, const int32_t* ids, DType dtype, int64_t tokens, int64_t vocab,
                       int64_t cols, void* workspace, int* errorFlag, cudaStream_t stream);

}  // namespace seqtune::gpu
