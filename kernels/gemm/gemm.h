// GEMM on CUDA devices (the matmul op and the building block of lora.cu and linear_cross_entropy.cu).
// Row-major, as native/cpu/gemm.h: op(A) is [M, K] (transA: A stored [K, M]), op(B) is [K, N]
// (transB: B stored [N, K]); leading dimensions are row strides in elements; batch strides are
// in elements (0: the operand is shared by every batch).
//   C = alpha · op(A) · op(B) + bias[N] + beta · Cin
// bf16/f16 operands run on the tensor cores (mma.sync m16n8k16) with f32 accumulation and a
// bf16/f16 or f32 result; f32/f64 run a SIMT kernel in their own precision. Every output element
// is summed in one fixed order (K splits, when used, are added in split order), so results are
// deterministic run to run. Errors are thrown as seqtune::Error (ERR_ARGUMENT, ERR_DTYPE, ERR_CUDA).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/common/dtype.h"

typedef struct CUstream_st* cudaStream_t;

namespace seqtune::gpu {

struct GemmArgs {
  DType dtype = DType::BF16;     // A and B
  DType outDtype = DType::BF16;  // C and Cin: dtype, or f32 with bf16/f16 operands
  bool transA = false, transB = false;
  int64_t M = 0, N = 0, K = 0;
  int64_t batch = 1;
  const void* a = nullptr;
  int64_t lda = 0, strideA = 0;
  const void* b = nullptr;
  int64_t ldb = 0, strideB = 0;
  void* c = nullptr;
  int64_t ldc = 0, strideC = 0;
  double alpha = 1;             // scales the product only
  const void* bias = nullptr;   // [N], of dtype (or f32 with bf16/f16 operands)
  DType biasDtype = DType::BF16;
  double beta = 0;              // used when cin is set; cin may be c (accumulate in place)
  const void* cin = nullptr;
  int64_t ldcin = 0, strideCin = 0;
  // Optional room for split-K partials (gemmWorkspaceBytes); without it K is never split, which
  // only costs speed on shapes with few output tiles and a long K.
  void* workspace = nullptr;
  size_t workspaceBytes = 0;
};

// Bytes of workspace that let gemm() split K for this shape on the current device (0: no split).
size_t gemmWorkspaceBytes(const GemmArgs& args);

void gemm(const GemmArgs& args, cudaStream_t stream);

// dbias[j] = Σ_r dc[r, j] over `rows` rows of ld `ldc` (matmulBackward's bias gradient), in a fixed
// order (column strips of rows summed in f32/f64, the strips added in order). dtype: dc's and
// dbias's. workspace: gemmBiasGradWorkspaceBytes(rows, N).
size_t gemmBiasGradWorkspaceBytes(int64_t rows, int64_t N);
void gemmBiasGrad(void* dbias, const void* dc, DType dtype, int64_t rows, int64_t N, int64_t ldc, void* workspace,
                  cudaStream_t stream);

// dst = src converted element by element (bf16, f16 or f32 each side, rounding to nearest even),
// for a [rows, cols] matrix with row strides srcLd and dstLd: the aligned operand copies that
// lora.cu and linear_cross_entropy.cu make when a tensor is f32 or its rows are not 16-byte aligned.
void convertMatrix(const void* src, DType srcDtype, int64_t srcLd, void* dst, DType dstDtype, int64_t dstLd,
                   int64_t rows, int64_t cols, cudaStream_t stream);

// The multiprocessor count of the current device (cached), for launchers that size grids by it.
int smCount();

}  // namespace seqtune::gpu
