// rmsnormResidual and its backward: the residual add fused with LLaMA's RMSNorm (Hugging Face
// LlamaRMSNorm: normalise in f32, then scale by the weight). Rows are independent, so the forward
// and dx parallelise over rows; dweight reduces over rows and parallelises over columns instead, so
// each column is summed in row order whatever the thread count. On a CUDA device the same plans
// launch kernels/norm/rmsnorm_residual.cu, whose rstd is f32 only: f64 (gradient checks) stays on the CPU.
#include <cmath>

#include "native/cpu/rmsnorm_residual.h"
#include "native/ops/op_util.h"
#ifdef SEQTUNE_CUDA
#include "kernels/norm/rmsnorm_residual.h"
#include "native/ops/cuda_dispatch.h"
#endif

namespace seqtune {

namespace {

// Shared checks: `t` is a float tensor of rank >= 1 with a non-empty last dim; returns that dim.
int64_t featureDim(const OpCall& call, const Tensor& t, const char* name) {
  expectFloat(call, t, name);
  if (t.rank() < 1 || t.dim(-1) == 0) {
    failShape(call, str(name, " must have rank >= 1 and a non-empty last dim, got ", t.describe()));
  }
  return t.dim(-1);
}

// The CUDA kernels keep rstd in f32 only, so the f64 path (exact float64 gradient checks, whose rstd
// is f64) stays on the CPU.
void expectCudaRstd(const OpCall& call, DType dtype, DType rstd) {
  if (!call.device->isCuda()) return;
  if (dtype == DType::F64) {
    fail(code::kNotImplemented, call.op, ": f64 is not implemented on cuda (", call.device->name(),
         "): its rstd is f32 there; run f64 gradient checks on the cpu");
  }
  if (rstd != DType::F32) {
    fail(code::kNotImplemented, call.op, ": rstd must be f32 on cuda (", call.device->name(), "), got ",
         dtypeName(rstd));
  }
}

OpPlan buildForward(const OpCall& call) {
  const TensorPtr& x = input(call, 0, "x");
  TensorPtr residual = optionalInput(call, 1);
  const TensorPtr& weight = input(call, 2, "weight");
  const int64_t cols = featureDim(call, *x, "x");
  if (residual) {
    expectLike(call, *x, "x", *residual, "residual");
  }
  expectSameDtype(call, *x, "x", *weight, "weight");
  expectShape(call, *weight, "weight", {cols});
  const double eps = call.attrs.number("eps");
  if (!(eps >= 0) || !std::isfinite(eps)) fail(code::kArgument, call.op, ": eps must be finite and >= 0, got ", eps);
  // f64 inputs keep rstd in f64 so whole-model float64 gradient checks stay exact.
  const DType rstdType = x->dtype() == DType::F64 ? DType::F64 : DType::F32;
  expectCudaRstd(call, x->dtype(), rstdType);
  const int64_t rows = x->numel() / cols;
  TensorPtr out = Tensor::empty(call.device, x->shape(), x->dtype());
  TensorPtr sum = Tensor::empty(call.device, x->shape(), x->dtype());
  TensorPtr rstd = Tensor::empty(call.device, {rows}, rstdType);
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    // `sum` is always written (a copy of x without a residual), as on the CPU.
    cudaStream_t stream = streamOf(call.device);
    return {{out, sum, rstd}, {}, [x, residual, weight, eps, out, sum, rstd, rows, cols, stream] {
              gpu::rmsnormForward(out->raw(), sum->raw(), rstd->data<float>(), x->raw(),
                                  residual ? residual->raw() : nullptr, weight->raw(), x->dtype(), rows, cols, eps,
                                  stream);
            }};
  }
#endif
  return {{out, sum, rstd}, {}, [x, residual, weight, eps, out, sum, rstd] {
            cpu::rmsnormResidualForward(*x, residual.get(), *weight, eps, *out, *sum, *rstd);
          }};
}

OpPlan buildBackward(const OpCall& call) {
  const TensorPtr& dout = input(call, 0, "dout");
  const TensorPtr& sum = input(call, 1, "sum");
  const TensorPtr& weight = input(call, 2, "weight");
  const TensorPtr& rstd = input(call, 3, "rstd");
  TensorPtr dsum = optionalInput(call, 4);
  const int64_t cols = featureDim(call, *dout, "dout");
  expectLike(call, *dout, "dout", *sum, "sum");
  expectSameDtype(call, *dout, "dout", *weight, "weight");
  expectShape(call, *weight, "weight", {cols});
  expectDtype(call, *rstd, "rstd", {DType::F32, DType::F64});
  expectShape(call, *rstd, "rstd", {dout->numel() / cols});
  if (dsum) {
    expectLike(call, *dout, "dout", *dsum, "dsum");
  }
  const bool needWeight = call.attrs.flag("needWeight");
  expectCudaRstd(call, dout->dtype(), rstd->dtype());
  TensorPtr dx = Tensor::empty(call.device, dout->shape(), dout->dtype());
  TensorPtr dweight = needWeight ? Tensor::empty(call.device, {cols}, weight->dtype()) : nullptr;
  std::vector<TensorPtr> outputs{dx};
  if (dweight) outputs.push_back(dweight);
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    const int64_t rows = dout->numel() / cols;
    // dweight's f64 partial sums; not needed without dweight.
    TensorPtr workspace = dweight ? scratchBytes(call.device, gpu::rmsnormBackwardWorkspaceBytes(rows, cols)) : nullptr;
    cudaStream_t stream = streamOf(call.device);
    return {outputs, {}, [dout, sum, weight, rstd, dsum, dx, dweight, workspace, rows, cols, stream] {
              gpu::rmsnormBackward(dx->raw(), dweight ? dweight->raw() : nullptr, dout->raw(), sum->raw(),
                                   weight->raw(), rstd->data<float>(), dsum ? dsum->raw() : nullptr, dout->dtype(),
                                   rows, cols, workspace ? workspace->raw() : nullptr, stream);
            }};
  }
#endif
  return {outputs, {}, [dout, sum, weight, rstd, dsum, dx, dweight] {
            cpu::rmsnormResidualBackward(*dout, *sum, *weight, *rstd, dsum.get(), *dx, dweight.get());
          }};
}

}  // namespace

REGISTER_OP(buildForward, {"rmsnormResidual", {"x", "residual?", "weight"}, {attr::number("eps")}, {"out", "sum", "rstd"}});
REGISTER_OP(buildBackward, {"rmsnormResidualBackward", {"dout", "sum", "weight", "rstd", "dsum?"}, {attr::flag("needWeight", true)}, {"dx", {"dweight", "needWeight"}}});

}  // namespace seqtune
