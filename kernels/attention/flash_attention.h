// Attention on the GPU (lib/ops.ts `attention`, `attentionBackward`), with the semantics of
// native/cpu/attention.h: packed documents (q [T, H, D], k, v [T, Hkv, D], cuSeqlens int32 [B+1])
// or a KV cache (k, v [B, Hkv, maxTokens, D] with qOffset and kvLens int32 [B]); causal or not;
// grouped-query heads (head h reads kv head h / (H / Hkv)); out [T, H, D] and lse f32 [H, T]
// (natural log of the scaled scores' sum of exponentials); a query that sees no key gets out = 0
// and lse = -inf. The tensor-core kernels take bf16 and f16 at head dims 64 and 128 (pointers
// 16-byte aligned, else ERR_ARGUMENT); f32 and other head dims up to 256 go to the SIMT kernels of
// attention_simt.h, f64 and larger head dims throw Error(ERR_NOT_IMPLEMENTED) before launching.
//
// The kernels read cuSeqlens, qOffset and kvLens on the device and never index out of bounds
// with bad values: a sequence with bad metadata is skipped (its rows are left unwritten).
// attentionCheckIndices reports such values; call it when they are not trusted.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/common/cuda_stream.h"
#include "kernels/common/dtype.h"

namespace seqtune::gpu {

struct AttentionShape {
  int64_t tokens;     // T: query rows (and k/v rows in the packed layout)
  int64_t heads;      // H
  int64_t kvHeads;    // Hkv, divides H
  int64_t headDim;    // D
  int64_t batch;      // B
  int64_t maxTokens;  // cache layout: k, v are [B, Hkv, maxTokens, D]; 0 for the packed layout
  bool causal;
  double scale;
};

// Flags (kernels/common/index_check.h) the first sequence b whose cuSeqlens entry, qOffset or kvLens is
// invalid as native/cpu/attention's checks define it: cuSeqlens[0] = 0, non-decreasing, ending at
// T; qOffset >= 0; 0 <= kvLens <= maxTokens. Read it with firstBadIndex(flag, cuSeqlens, B + 1).
// qOffset and kvLens are null for the packed layout.
void attentionCheckIndices(const AttentionShape& shape, const int32_t* cuSeqlens, const int32_t* qOffset,
                           const int32_t* kvLens, int* errorFlag, cudaStream_t stream);

// Device scratch attentionForward needs (the split-K partials of the decoding path; 0 otherwise).
size_t attentionForwardWorkspaceBytes(const AttentionShape& shape);

// out and lse from q, k, v. The cache layout with at most 4 queries per sequence on average takes
// the split-K decoding kernels (attention_decode.h); everything else the tiled FlashAttention-2
// kernel (one CTA per block of 128 queries of one head of one document).
void attentionForward(const AttentionShape& shape, DType dtype, const void* q, const void* k, const void* v,
                      const int32_t* cuSeqlens, const int32_t* qOffset, const int32_t* kvLens, void* out, float* lse,
                      void* workspace, cudaStream_t stream);

// Device scratch attentionBackward needs: Di and lse·log2(e) (f32 [H, T] each) and, unless
// deterministic, the f32 dQ accumulator [T, H, D].
size_t attentionBackwardWorkspaceBytes(const AttentionShape& shape, bool deterministic);

// dq, dk, dv (packed layout only) from dout and the forward's out and lse.
// - fast (deterministic = false): one pass over (key block, kv head, document) CTAs computes dK,
//   dV in registers and adds each CTA's dQ contribution into the f32 accumulator with atomics, so
//   dq's last bits vary from run to run;
// - deterministic: the same pass without dQ, then a second kernel over (query block, head,
//   document) CTAs recomputes P and dS and sums dQ over key blocks in order (about 1.6x the
//   matrix work); results are bit-identical between runs.
// dK and dV sum the heads of a group, then the query blocks, in a fixed order in both modes. On a
// Hopper whose self-test passed, flash_attention_hopper_bwd.cu's kernel is that first pass, in
// either mode.
void attentionBackward(const AttentionShape& shape, DType dtype, const void* dout, const void* q, const void* k,
                       const void* v, const void* out, const float* lse, const int32_t* cuSeqlens, void* dq, void* dk,
                       void* dv, bool deterministic, void* workspace, cudaStream_t stream);

}  // namespace seqtune::gpu
