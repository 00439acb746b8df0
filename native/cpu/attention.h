// CPU scaled-dot-product attention over packed documents or a KV cache (lib/ops.ts `attention`,
// `attentionBackward`, `kvCacheWrite`). Tiled with an online softmax: blocks of queries meet
// blocks of keys, each query row keeps a running max and sum, so no T x T matrix is ever stored.
// Every output element is reduced by one task in a fixed order: results do not depend on the
// thread count. The kernels check the device-side index tensors (cuSeqlens, qOffset, kvLens,
// offsets) before touching memory through them and throw Error(ERR_INDEX) when they are invalid.
// These use the thread pool: do not call them from inside parallelFor.
#pragma once
#include <cstddef>
#include <cstdint>

namespace seqtune::cpu {

struct AttentionDims {
  int64_t tokens;     // T: query rows (and k/v rows in the packed layout)
  int64_t heads;      // H
  int64_t kvHeads;    // Hkv, divides H
  int64_t headDim;    // D
  int64_t batch;      // B: documents (cuSeqlens has B + 1 entries)
  int64_t maxTokens;  // cache layout: k, v are [B, Hkv, maxTokens, D]; 0 for the packed layout
  bool causal;
  double scale;
};

// q [T, H, D]; k, v [T, Hkv, D] (packed) or [B, Hkv, maxTokens, D] with qOffset and kvLens [B]
// (cache; both null for packed). Writes out [T, H, D] and lse [H, T] (in T: f32, or f64 for
// exact gradient checks); a query that sees no key
// gets out = 0 and lse = -inf.
template <typename T>
void attentionForward(const AttentionDims& dims, const char* op, const T* q, const T* k, const T* v,
                      const int32_t* cuSeqlens, const int32_t* qOffset, const int32_t* kvLens, T* out, T* lse);

// Packed layout only: dq [T, H, D], dk and dv [T, Hkv, D] from dout, the forward's out and lse.
template <typename T>
void attentionBackward(const AttentionDims& dims, const char* op, const T* dout, const T* q, const T* k, const T* v,
                       const T* out, const T* lse, const int32_t* cuSeqlens, T* dq, T* dk, T* dv);

// Copies rows of values [T, Hkv, D] into cache [B, Hkv, maxTokens, D] at offsets[b] + i (raw
// element copies of elementSize bytes: both tensors share one dtype).
void kvCacheWrite(const AttentionDims& dims, const char* op, void* cache, const void* values, size_t elementSize,
                  const int32_t* cuSeqlens, const int32_t* offsets);

// kvCacheWrite's index checks: checkSeqlens, and every sequence's rows [offsets[b], offsets[b] +
// length) inside the cache's maxTokens slots. The CUDA op runs it on host copies when its device
// check flags one.
void checkKvCacheIndices(const AttentionDims& dims, const char* op, const int32_t* cuSeqlens, const int32_t* offsets);

// Throws Error(ERR_INDEX) unless cuSeqlens starts at 0, never decreases and ends at `tokens`.
void checkSeqlens(const char* op, const int32_t* cuSeqlens, int64_t batch, int64_t tokens);

// The index checks of attentionForward and attentionBackward: checkSeqlens, and for the cache
// layout (dims.maxTokens > 0) qOffset[b] >= 0 and 0 <= kvLens[b] <= maxTokens; qOffset and kvLens
// are only read then (null for the packed layout). Throws Error(ERR_INDEX) naming the first bad
// entry. The CUDA ops run it on host copies when their device check flags one, so both backends
// fail with the same message.
void checkAttentionIndices(const AttentionDims& dims, const char* op, const int32_t* cuSeqlens, const int32_t* qOffset,
                           const int32_t* kvLens);

}  // namespace seqtune::cpu
