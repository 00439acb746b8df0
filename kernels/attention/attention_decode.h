// Decoding attention: a few new queries per sequence against a long KV cache
// [B, Hkv, maxTokens, D], and the cache write (lib/ops.ts `kvCacheWrite`). Semantics as in
// flash_attention.h and native/cpu/attention.h.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/attention/flash_attention.h"

namespace seqtune::gpu {

// True for the cache layout with at most 4 queries per sequence on average: attentionForward then
// runs the split-K kernels below instead of the tiled one (a single sequence would fill only
// Hkv·ceil(q / 128) CTAs there).
bool useDecodeKernel(const AttentionShape& shape);

// Key splits per (sequence, kv head): enough CTAs to fill a large GPU several times over, at least
// 256 cache slots per split. A function of the shape alone, so the builder's workspace size and
// the launch agree.
int decodeSplits(const AttentionShape& shape);

// f32 partials per split: the unnormalised output [splits, T, H, D] and (max, sum) [splits, T, H, 2].
size_t attentionDecodeWorkspaceBytes(const AttentionShape& shape);

// Split s of sequence b and kv head g attends the group's query heads of b's queries to its share
// of the keys the last query sees, keeping (max, sum, unnormalised output) per row; a combine
// kernel merges the splits in order into out and lse. Any number of queries per sequence is
// handled (more than a few is slow: each pass of 8 or 16 rows reads the keys again). Argument
// checks as attentionForward.
void attentionDecode(const AttentionShape& shape, DType dtype, const void* q, const void* k, const void* v,
                     const int32_t* cuSeqlens, const int32_t* qOffset, const int32_t* kvLens, void* out, float* lse,
                     void* workspace, cudaStream_t stream);

// Copies values [T, Hkv, D] (packed by cuSeqlens over B sequences) into cache [B, Hkv, maxTokens, D]
// at positions offsets[b] + i; raw copies of elementSize-byte elements, so any dtype. A row whose
// position falls outside [0, maxTokens), or whose sequence has bad cuSeqlens, is not written and
// flags its sequence b (index_check.h: read with firstBadIndex(flag, offsets, B)). Values must not
// alias the cache.
void kvCacheWrite(void* cache, const void* values, size_t elementSize, int64_t tokens, int64_t kvHeads, int64_t headDim,
                  int64_t batch, int64_t maxTokens, const int32_t* cuSeqlens, const int32_t* offsets, int* errorFlag,
                  cudaStream_t stream);

}  // namespace seqtune::gpu
