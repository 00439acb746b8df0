// Residual add fused with LLaMA's RMSNorm (rmsnormResidual / rmsnormResidualBackward in
// lib/ops.ts), over `rows` rows of `cols` features. All tensors but rstd have `dtype` (floating);
// math is f32 (f64 for f64) with the sum of squares and the backward's dot product in f64, as the
// CPU backend (native/ops/rmsnorm_residual.cpp).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/common/cuda_stream.h"
#include "kernels/common/dtype.h"

namespace seqtune::gpu {

// x, residual (nullable), out, sum: [rows, cols]; weight: [cols]; rstd: f32 [rows].
//   sum  = x + residual, rounded to dtype (normalising the stored sum, as Hugging Face does after
//          its bf16 residual add); x itself without a residual. Must be non-null with a residual;
//          may be null without one (the caller then returns x as `sum`).
//   rstd = 1 / sqrt(mean(sum²) + eps)
//   out  = sum · rstd · weight
// One block per row.
void rmsnormForward(void* out, void* sum, float* rstd, const void* x, const void* residual, const void* weight,
                    DType dtype, int64_t rows, int64_t cols, double eps, cudaStream_t stream);

// Device memory rmsnormBackward needs for dweight: f64 partial sums of min(rows, 512) row groups.
size_t rmsnormBackwardWorkspaceBytes(int64_t rows, int64_t cols);

// dout, sum, dsum (nullable), dx: [rows, cols]; weight, dweight (nullable: not needed): [cols];
// rstd: f32 [rows].
//   dx      = rstd·(dout·weight) − sum·rstd³·mean(dout·weight·sum) (+ dsum, the gradient arriving
//             on the residual stream)
//   dweight = Σ_rows dout·sum·rstd, deterministic: each block sums a fixed set of rows (row r
//             belongs to block r mod G) into its own f64 partial row, then one pass adds the G
//             partials of each column in block order.
// `workspace`: rmsnormBackwardWorkspaceBytes(rows, cols) bytes (unused without dweight).
void rmsnormBackward(void* dx, void* dweight, const void* dout, const void* sum, const void* weight, const float* rstd,
                     const void* dsum, DType dtype, int64_t rows, int64_t cols, void* workspace, cudaStream_t stream);

}  // namespace seqtune::gpu
