// LoRA linear layer on CUDA devices (loraLinear / loraLinearBackward in lib/ops.ts, semantics of
// native/ops/lora.cpp), x [T, in], W [out, in], A [r, in], B [out, r], s = scale:
//   forward   xa = drop(x)·Aᵀ,  y = x·Wᵀ + bias + s·xa·Bᵀ
//   backward  dxa = s·dy·B,  dA = dxaᵀ·drop(x),  dB = s·dyᵀ·xa,  dx = dy·W + drop'(dxa·A)
// with drop the inverted dropout of the dropout op (mask dropoutKeep(seed, offset, flat index of x),
// kept values scaled by 1/(1 - p)), regenerated in the backward.
//
// bf16/f16 x (and W, y, dy, dx) run on the tensor cores; adapters (A, B, xa, dA, dB) may be the same
// dtype or f32 (PEFT's mixed setup: they are rounded to x's dtype for the products, accumulated in
// f32, and stored in their own dtype); bias is x's dtype or f32. The rank-r term of y and of dx is
// computed with the big GEMM, from hi/lo parts of its operands (lora_parts.h), as a second K segment
// of the Hopper kernel or in the mma.sync kernel's epilogue (lora.cu), so y and dx are written once.
// xa, dxa, dA and dB are skinny GEMMs split over their long K with partials summed in a fixed order.
// All-f32 and all-f64 layers run the SIMT GEMM (kernels/gemm/gemm_simt.h). Other dtype mixes throw
// ERR_NOT_IMPLEMENTED. Tensors are contiguous.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/gemm/gemm.h"

namespace seqtune::gpu {

struct LoraShape {
  int64_t tokens = 0, in = 0, out = 0, rank = 0;
};

struct LoraDtypes {
  DType x = DType::BF16;        // x, weight, y, dy, dx
  DType adapter = DType::BF16;  // a, b, xa, da, db
  DType bias = DType::BF16;
};

struct LoraDropout {
  double p = 0;  // in [0, 1)
  uint64_t seed = 0, offset = 0;
};

struct LoraForwardArgs {
  LoraShape shape;
  LoraDtypes dtypes;
  const void* x = nullptr;
  const void* weight = nullptr;
  const void* a = nullptr;
  const void* b = nullptr;
  const void* bias = nullptr;  // optional [out]
  double scale = 1;
  LoraDropout dropout;
  void* y = nullptr;   // [T, out]
  void* xa = nullptr;  // [T, r]
  void* workspace = nullptr;
  size_t workspaceBytes = 0;  // at least loraForwardWorkspaceBytes(args)
};

struct LoraBackwardArgs {
  LoraShape shape;
  LoraDtypes dtypes;
  const void* dy = nullptr;  // [T, out]
  const void* x = nullptr;
  const void* weight = nullptr;
  const void* a = nullptr;
  const void* b = nullptr;
  const void* xa = nullptr;  // as the forward returned it
  double scale = 1;
  LoraDropout dropout;
  void* dx = nullptr;  // [T, in], or null when the input gradient is not needed
  void* da = nullptr;  // [r, in]
  void* db = nullptr;  // [out, r]
  void* workspace = nullptr;
  size_t workspaceBytes = 0;  // at least loraBackwardWorkspaceBytes(args)
};

size_t loraForwardWorkspaceBytes(const LoraForwardArgs& args);
size_t loraBackwardWorkspaceBytes(const LoraBackwardArgs& args);

void loraForward(const LoraForwardArgs& args, cudaStream_t stream);
void loraBackward(const LoraBackwardArgs& args, cudaStream_t stream);

}  // namespace seqtune::gpu
