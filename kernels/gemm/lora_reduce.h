// The small kernels around LoRA's skinny products (kernels/gemm/lora.cu): the split-K reduction,
// which can also write the sum's hi/lo parts, and the split of an adapter into its parts
// (lora_parts.h). Plain C++: includable without the CUDA headers.
#pragma once
#include <cstdint>

#include "kernels/common/dtype.h"
#include "kernels/gemm/lora_parts.h"

typedef struct CUstream_st* cudaStream_t;

namespace seqtune::gpu {

// How a reduction writes out2: `parts` (u's blocks: part p at column p·cols + c) of scale2 times
// the sum; foldHalves also adds partial rows m + rows to row m (a product over [hi | lo] columns).
struct ReduceForm {
  gemm::LoraParts parts = gemm::kSinglePart;
  float scale2 = 1.f;
  bool foldHalves = false;
};

// s = alpha·Σ_split part[split] ([rows, cols] f32 partials, splits in order): out1 = s (out1Dtype:
// half or f32, row stride cols) and/or out2 = the parts of scale2·s in half (bf16/f16, row stride
// ld2); either may be null.
void reducePartials(DType half, const float* part, int splits, int64_t rows, int64_t cols, double alpha, void* out1,
                    DType out1Dtype, void* out2, int64_t ld2, cudaStream_t stream, ReduceForm form = {});

// dst = the parts (parts.vLo) in half of src [rows, cols] (srcDtype: half or f32, row stride
// cols): column blocks ([rows, count·cols]) or row blocks ([count·rows, cols]), row stride ld.
void splitParts(DType half, const void* src, DType srcDtype, int64_t rows, int64_t cols, gemm::LoraParts parts,
                bool rowBlocks, void* dst, int64_t ld, cudaStream_t stream);

}  // namespace seqtune::gpu
