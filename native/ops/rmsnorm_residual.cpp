// rmsnormResidual and its backward: the residual add fused with LLaMA's RMSNorm (Hugging Face
// LlamaRMSNorm: normalise in f32, then scale by the weight). Rows are independent, so the forward
// and dx parallelise over rows; dweight reduces over rows and parallelises over columns instead, so
// each column is summed in row order whatever the thread count. On a CUDA device the same plans
// launch kernels/norm/rmsnorm_residual.cu, whose rstd is f32 only: f64 (gradient checks) stays on the CPU.
#include <cmath>
#include <optional>

#include "native/ops/op_util.h"
#include "native/runtime/thread_pool.h"
#ifdef SEQTUNE_CUDA
#include "kernels/norm/rmsnorm_residual.h"
#include "native/ops/cuda_dispatch.h"
#endif

namespace seqtune {

namespace {

constexpr int64_t kGrain = 1 << 14;

// Rows of work per parallel range: enough elements per range to outweigh the hand-off.
int64_t rowGrain(int64_t cols) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1)); }

// The value `v` has once stored in `dtype`: the forward normalises the stored (rounded) sum, as
// Hugging Face does after its bf16 residual add, so the backward's `sum` input is what was used.
template <typename T>
T stored(DType dtype, T v) {
  if (dtype == DType::BF16) return static_cast<T>(bf16ToFloat(floatToBf16(static_cast<float>(v))));
  if (dtype == DType::F16) return static_cast<T>(f16ToFloat(floatToF16(static_cast<float>(v))));
  return v;
}

template <typename T>
void forward(const Tensor& x, const Tensor* residual, const Tensor& weight, double eps, const Tensor& out,
             const Tensor& sum, const Tensor& rstd) {
  const int64_t cols = x.dim(-1);
  const int64_t rows = x.numel() / cols;
  HostIn<T> xs(x), w(weight);
  std::optional<HostIn<T>> res;
  if (residual) res.emplace(*residual);
  HostOut<T> o(out, false), s(sum, false);
  HostOut<T> r(rstd, false);
  parallelFor(rows, rowGrain(cols), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t base = row * cols;
      double squares = 0;
      for (int64_t c = 0; c < cols; ++c) {
        T v = stored(x.dtype(), res ? xs[base + c] + (*res)[base + c] : xs[base + c]);
        s[base + c] = v;
        squares += static_cast<double>(v) * static_cast<double>(v);
      }
      const double scale = 1.0 / std::sqrt(squares / static_cast<double>(cols) + eps);
      r[row] = static_cast<T>(scale);
      for (int64_t c = 0; c < cols; ++c) o[base + c] = s[base + c] * static_cast<T>(scale) * w[c];
    }
  });
  o.commit();
  s.commit();
}

// With y = s·r·w and r = (mean(s²) + eps)^-½: ds_k = r·(g_k·w_k - s_k·r²·mean_j(g_j·w_j·s_j)).
template <typename T>
void backward(const Tensor& dout, const Tensor& sum, const Tensor& weight, const Tensor& rstd, const Tensor* dsum,
              const Tensor& dx, const Tensor* dweight) {
  const int64_t cols = dout.dim(-1);
  const int64_t rows = dout.numel() / cols;
  HostIn<T> g(dout), s(sum), w(weight);
  HostIn<T> r(rstd);
  std::optional<HostIn<T>> ds;
  if (dsum) ds.emplace(*dsum);
  HostOut<T> d(dx, false);
  parallelFor(rows, rowGrain(cols), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t base = row * cols;
      double dot = 0;
      for (int64_t c = 0; c < cols; ++c) {
        dot += static_cast<double>(g[base + c]) * static_cast<double>(w[c]) * static_cast<double>(s[base + c]);
      }
      const double rr = r[row];
      const T rt = static_cast<T>(rr);
      const T coef = static_cast<T>(rr * rr * rr * dot / static_cast<double>(cols));
      for (int64_t c = 0; c < cols; ++c) {
        T v = rt * g[base + c] * w[c] - s[base + c] * coef;
        d[base + c] = ds ? v + (*ds)[base + c] : v;
      }
    }
  });
  d.commit();
  if (!dweight) return;
  HostOut<T> dw(*dweight, false);
  parallelFor(cols, std::max<int64_t>(16, kGrain / std::max<int64_t>(rows, 1)), [&](int64_t begin, int64_t end) {
    std::vector<double> acc(static_cast<size_t>(end - begin), 0.0);
    for (int64_t row = 0; row < rows; ++row) {
      const double rr = r[row];
      const T* gr = g.data() + row * cols;
      const T* sr = s.data() + row * cols;
      for (int64_t c = begin; c < end; ++c) {
        acc[c - begin] += static_cast<double>(gr[c]) * static_cast<double>(sr[c]) * rr;
      }
    }
    for (int64_t c = begin; c < end; ++c) dw[c] = static_cast<T>(acc[c - begin]);
  });
  dw.commit();
}

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
    expectSameDtype(call, *x, "x", *residual, "residual");
    expectSameShape(call, *x, "x", *residual, "residual");
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
            withComputeType(x->dtype(), [&](auto zero) {
              forward<decltype(zero)>(*x, residual.get(), *weight, eps, *out, *sum, *rstd);
            });
          }};
}

OpPlan buildBackward(const OpCall& call) {
  const TensorPtr& dout = input(call, 0, "dout");
  const TensorPtr& sum = input(call, 1, "sum");
  const TensorPtr& weight = input(call, 2, "weight");
  const TensorPtr& rstd = input(call, 3, "rstd");
  TensorPtr dsum = optionalInput(call, 4);
  const int64_t cols = featureDim(call, *dout, "dout");
  expectSameDtype(call, *dout, "dout", *sum, "sum");
  expectSameShape(call, *dout, "dout", *sum, "sum");
  expectSameDtype(call, *dout, "dout", *weight, "weight");
  expectShape(call, *weight, "weight", {cols});
  expectDtype(call, *rstd, "rstd", {DType::F32, DType::F64});
  expectShape(call, *rstd, "rstd", {dout->numel() / cols});
  if (dsum) {
    expectSameDtype(call, *dout, "dout", *dsum, "dsum");
    expectSameShape(call, *dout, "dout", *dsum, "dsum");
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
            withComputeType(dout->dtype(), [&](auto zero) {
              backward<decltype(zero)>(*dout, *sum, *weight, *rstd, dsum.get(), *dx, dweight.get());
            });
          }};
}

}  // namespace

REGISTER_OP(buildForward, {"rmsnormResidual", {"x", "residual?", "weight"}, {attr::number("eps")}, {"out", "sum", "rstd"}});
REGISTER_OP(buildBackward, {"rmsnormResidualBackward", {"dout", "sum", "weight", "rstd", "dsum?"}, {attr::flag("needWeight", true)}, {"dx", {"dweight", "needWeight"}}});

}  // namespace seqtune
