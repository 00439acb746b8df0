// GemmArgs' epilogue (alpha, bias, beta·Cin, the output) as the tensor-core epilogues take it
// (gemm_epilogue.h's LinearOut), shared by gemm.cu's mma.sync path and the Hopper kernel so both
// apply the very same epilogue.
#pragma once
#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_epilogue.h"
#include "kernels/gemm/gemm_workspace.h"

namespace seqtune::gpu {

inline seqtune::gemm::LinearOut linearOut(const GemmArgs& g) {
  const bool f32 = g.outDtype == DType::F32;
  const int vecElems = f32 ? 4 : 8;
  seqtune::gemm::LinearOut o{};
  o.out = g.c;
  o.ld = g.ldc;
  o.batchStride = g.strideC;
  o.f32 = f32;
  o.vec = isAligned16(g.c) && g.ldc % vecElems == 0 && g.strideC % vecElems == 0;
  o.alpha = static_cast<float>(g.alpha);
  o.bias = g.bias;
  o.biasF32 = g.biasDtype == DType::F32;
  o.biasVec = isAligned16(g.bias);
  o.beta = static_cast<float>(g.beta);
  o.cin = g.beta != 0 ? g.cin : nullptr;  // beta = 0 ignores Cin (it may hold anything, NaN included)
  o.ldCin = g.ldcin;
  o.cinBatchStride = g.strideCin;
  o.cinVec = isAligned16(g.cin) && g.ldcin % vecElems == 0 && g.strideCin % vecElems == 0;
  return o;
}

}  // namespace seqtune::gpu
