// Attention on the GPU for what the tensor-core kernels (flash_attention.h) do not take: f32, bf16
// and f16 with any head dim up to 256 (kernels/attention/attention_simt.cuh: one warp per row, SIMT, exact
// f32 accumulation, deterministic). Same semantics, layouts and arguments as attentionForward and
// attentionBackward in flash_attention.h; the workspaces they size are large enough for these.
#pragma once
#include <cstdint>

#include "kernels/common/cuda_stream.h"
#include "kernels/attention/flash_attention.h"
#include "kernels/common/dtype.h"

namespace seqtune::gpu {

// The largest head dim CUDA attention takes (LLaMA-family models use 64 or 128).
constexpr int64_t kAttentionMaxHeadDim = 256;

// Whether the tensor-core kernels take this dtype and head dim (bf16/f16, D 64 or 128); the
// launchers in flash_attention_fwd.cu / _bwd.cu send everything else here.
bool attentionOnTensorCores(DType dtype, int64_t headDim);

void attentionForwardSimt(const AttentionShape& shape, DType dtype, const void* q, const void* k, const void* v,
                          const int32_t* cuSeqlens, const int32_t* qOffset, const int32_t* kvLens, void* out,
                          float* lse, cudaStream_t stream);

// Packed layout; `workspace` holds at least T·H floats (Di).
void attentionBackwardSimt(const AttentionShape& shape, DType dtype, const void* dout, const void* q, const void* k,
                           const void* v, const void* out, const float* lse, const int32_t* cuSeqlens, void* dq,
                           void* dk, void* dv, void* workspace, cudaStream_t stream);

}  // namespace seqtune::gpu
