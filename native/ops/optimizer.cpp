// The optimizer step and gradient clipping: adamw (torch.optim.AdamW semantics over many tensors in
// one call), gradNorm (global L2 norm) and clipByNorm. Elementwise work is split freely across
// threads; the norm is summed over fixed-size blocks in a fixed order, so it does not depend on
// the thread count. On a CUDA device each op is one launch over a device table of its tensors
// (kernels/optim/adamw.cu, kernels/optim/grad_norm.cu), built here on the host and uploaded by the launch.
#include <cmath>
#include <string>
#include <vector>

#include "native/ops/op_util.h"
#include "native/runtime/thread_pool.h"
#ifdef SEQTUNE_CUDA
#include "kernels/optim/adamw.h"
#include "kernels/optim/grad_norm.h"
#include "native/ops/cuda_dispatch.h"
#endif

namespace seqtune {

namespace {

constexpr int64_t kGrain = 1 << 14;
// Elements per partial sum of gradNorm: the order of the f64 additions is fixed by this alone.
constexpr int64_t kNormBlock = 1 << 14;
// torch.nn.utils.clip_grad_norm_'s guard against a zero norm.
constexpr double kClipEps = 1e-6;

double finiteAttr(const OpCall& call, const char* name, double low, double high, bool highOpen) {
  double v = call.attrs.number(name);
  if (!std::isfinite(v) || v < low || v > high || (highOpen && v == high)) {
    fail(code::kArgument, call.op, ": ", name, " must be in [", low, ", ", high, highOpen ? ")" : "]", ", got ", v);
  }
  return v;
}

void expectNorm(const OpCall& call, const Tensor& norm) {
  expectFloat(call, norm, "norm");
  expectShape(call, norm, "norm", {1});
}

// min(1, maxNorm / (norm + 1e-6)); a NaN norm gives 1 (no scaling) rather than NaN everywhere.
double clipFactor(const Tensor& norm, double maxNorm) {
  double n = HostIn<double>(norm)[0];
  double coef = maxNorm / (n + kClipEps);
  return coef < 1 ? coef : 1.0;
}

struct AdamwHyper {
  double lr, beta1, beta2, eps, weightDecay, maxGradNorm;
  int64_t step;
};

// One tensor's step in its parameter's precision (f32 or f64); m and v may each be f32 or f64
// (the trainer keeps f32 moments whatever the parameters).
template <typename T>
void adamwTensor(const AdamwHyper& hp, double clip, const Tensor& param, const Tensor& grad, const Tensor& mT,
                 const Tensor& vT) {
  HostIn<T> g(grad);
  T* p = param.data<T>();
  HostOut<T> m(mT, true), v(vT, true);
  const T decay = T(1 - hp.lr * hp.weightDecay);
  const T b1 = T(hp.beta1), b2 = T(hp.beta2), c = T(clip);
  const T stepSize = T(hp.lr / (1 - std::pow(hp.beta1, static_cast<double>(hp.step))));
  const T bc2Sqrt = T(std::sqrt(1 - std::pow(hp.beta2, static_cast<double>(hp.step))));
  const T eps = T(hp.eps);
  parallelFor(param.numel(), kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T gi = g[i] * c;
      // Decoupled weight decay first, then the moments, as torch.optim.AdamW.
      p[i] *= decay;
      m[i] = b1 * m[i] + (T(1) - b1) * gi;
      v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
      p[i] -= stepSize * m[i] / (std::sqrt(v[i]) / bc2Sqrt + eps);
    }
  });
  m.commit();
  v.commit();
}

#ifdef SEQTUNE_CUDA
// The adamw launch: the table of (param, m, v, grad) and the step's constants, computed on the GPU
// in each parameter's precision; m and v must have their parameter's dtype there (the CPU converts).
OpPlan planAdamwCuda(const OpCall& call, const AdamwHyper& hp, const TensorPtr& norm, const TensorPtr& guard,
                     const std::vector<TensorPtr>& params, const std::vector<TensorPtr>& grads,
                     const std::vector<TensorPtr>& ms, const std::vector<TensorPtr>& vs,
                     std::vector<TensorPtr> updated) {
  std::vector<gpu::AdamwTensor> entries;
  for (size_t i = 0; i < params.size(); ++i) {
    const DType p = params[i]->dtype();
    if (ms[i]->dtype() != p || vs[i]->dtype() != p) {
      fail(code::kNotImplemented, call.op, ": on cuda (", call.device->name(), ") m[", i, "] and v[", i,
           "] must have the dtype of params[", i, "] (", dtypeName(p), "), got ", dtypeName(ms[i]->dtype()), " and ",
           dtypeName(vs[i]->dtype()));
    }
    entries.push_back({params[i]->raw(), ms[i]->raw(), vs[i]->raw(), grads[i]->raw(), params[i]->numel(), p,
                       grads[i]->dtype(), 0, false});
  }
  const int64_t chunks = gpu::adamwPrepare(entries.data(), static_cast<int>(entries.size()));
  DeviceTable<gpu::AdamwTensor> table(call.device, std::move(entries));
  const gpu::AdamwHyper h{hp.lr, hp.beta1, hp.beta2, hp.eps, hp.weightDecay, hp.step, hp.maxGradNorm};
  cudaStream_t stream = streamOf(call.device);
  return {{}, std::move(updated), [table, chunks, h, norm, guard, stream] {
            gpu::adamw(table.upload(), table.count(), chunks, h, norm ? norm->raw() : nullptr,
                       norm ? norm->dtype() : DType::F32, guard ? guard->raw() : nullptr,
                       guard ? guard->dtype() : DType::F32, stream);
          }};
}
#endif

// adamw([gradNorm?, guard?, params..., grads..., m..., v...],
//   {count, lr, beta1, beta2, eps, weightDecay, step, maxGradNorm}) -> [] (params, m, v in place)
// A non-finite guard value leaves everything unchanged (read where the update runs: no host sync).
OpPlan buildAdamw(const OpCall& call) {
  const int64_t n = call.attrs.integer("count");
  if (n < 0 || static_cast<int64_t>(call.inputs.size()) != 2 + 4 * n) {
    fail(code::kArgument, call.op, ": count ", n,
         " needs 2 + 4·count inputs [gradNorm?, guard?, params, grads, m, v], got ", call.inputs.size());
  }
  AdamwHyper hp;
  hp.lr = finiteAttr(call, "lr", 0, HUGE_VAL, false);
  hp.beta1 = finiteAttr(call, "beta1", 0, 1, true);
  hp.beta2 = finiteAttr(call, "beta2", 0, 1, true);
  hp.eps = finiteAttr(call, "eps", 0, HUGE_VAL, false);
  hp.weightDecay = finiteAttr(call, "weightDecay", 0, HUGE_VAL, false);
  hp.maxGradNorm = call.attrs.has("maxGradNorm") ? finiteAttr(call, "maxGradNorm", 0, HUGE_VAL, false) : 0.0;
  hp.step = call.attrs.integer("step");
  if (hp.step < 1) fail(code::kArgument, call.op, ": step is 1-based, got ", hp.step);
  TensorPtr norm = optionalInput(call, 0);
  if (hp.maxGradNorm > 0 && !norm) fail(code::kArgument, call.op, ": maxGradNorm > 0 needs the gradNorm tensor");
  if (norm) expectNorm(call, *norm);
  TensorPtr guard = optionalInput(call, 1);
  if (guard) {
    expectFloat(call, *guard, "guard");
    expectShape(call, *guard, "guard", {1});
  }
  std::vector<TensorPtr> params, grads, ms, vs;
  for (int64_t i = 0; i < n; ++i) {
    std::string suffix = "[" + std::to_string(i) + "]";
    const TensorPtr& p = input(call, 2 + i, ("params" + suffix).c_str());
    const TensorPtr& g = input(call, 2 + n + i, ("grads" + suffix).c_str());
    const TensorPtr& m = input(call, 2 + 2 * n + i, ("m" + suffix).c_str());
    const TensorPtr& v = input(call, 2 + 3 * n + i, ("v" + suffix).c_str());
    expectDtype(call, *p, ("params" + suffix).c_str(), {DType::F32, DType::F64});
    expectDtype(call, *m, ("m" + suffix).c_str(), {DType::F32, DType::F64});
    expectDtype(call, *v, ("v" + suffix).c_str(), {DType::F32, DType::F64});
    expectFloat(call, *g, ("grads" + suffix).c_str());
    expectSameShape(call, *p, ("params" + suffix).c_str(), *g, ("grads" + suffix).c_str());
    expectSameShape(call, *p, ("params" + suffix).c_str(), *m, ("m" + suffix).c_str());
    expectSameShape(call, *p, ("params" + suffix).c_str(), *v, ("v" + suffix).c_str());
    params.push_back(p);
    grads.push_back(g);
    ms.push_back(m);
    vs.push_back(v);
  }
  std::vector<TensorPtr> updated(params);
  updated.insert(updated.end(), ms.begin(), ms.end());
  updated.insert(updated.end(), vs.begin(), vs.end());
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) return planAdamwCuda(call, hp, norm, guard, params, grads, ms, vs, std::move(updated));
#endif
  return {{}, updated, [=] {
            if (guard && !std::isfinite(HostIn<double>(*guard)[0])) return;
            const double clip = hp.maxGradNorm > 0 ? clipFactor(*norm, hp.maxGradNorm) : 1.0;
            for (size_t i = 0; i < params.size(); ++i) {
              withComputeType(params[i]->dtype(), [&](auto zero) {
                adamwTensor<decltype(zero)>(hp, clip, *params[i], *grads[i], *ms[i], *vs[i]);
              });
            }
          }};
}

// Σ x² over elements [begin, end) of a floating tensor, read in its own dtype, in f64.
double sumSquares(const Tensor& t, int64_t begin, int64_t end) {
  double s = 0;
  auto add = [&](auto read) {
    for (int64_t i = begin; i < end; ++i) {
      double x = read(i);
      s += x * x;
    }
  };
  switch (t.dtype()) {
    case DType::F32: add([&](int64_t i) { return static_cast<double>(t.data<float>()[i]); }); break;
    case DType::F64: add([&](int64_t i) { return t.data<double>()[i]; }); break;
    case DType::BF16: add([&](int64_t i) { return static_cast<double>(bf16ToFloat(t.data<uint16_t>()[i])); }); break;
    case DType::F16: add([&](int64_t i) { return static_cast<double>(f16ToFloat(t.data<uint16_t>()[i])); }); break;
    case DType::I32: break;  // rejected by the builder
  }
  return s;
}

#ifdef SEQTUNE_CUDA
// gradNorm's and clipByNorm's device table of `tensors` and its chunk count.
struct NormTable {
  DeviceTable<gpu::NormTensor> table;
  int64_t chunks;
};

NormTable normTable(Device* device, const std::vector<TensorPtr>& tensors) {
  std::vector<gpu::NormTensor> entries;
  for (const TensorPtr& t : tensors) entries.push_back({t->raw(), t->numel(), t->dtype(), 0, false});
  const int64_t chunks = gpu::normPrepare(entries.data(), static_cast<int>(entries.size()));
  return {DeviceTable<gpu::NormTensor>(device, std::move(entries)), chunks};
}
#endif

// gradNorm([tensors...]) -> f32 [1]
OpPlan buildGradNorm(const OpCall& call) {
  std::vector<TensorPtr> tensors;
  for (size_t i = 0; i < call.inputs.size(); ++i) {
    std::string name = "tensors[" + std::to_string(i) + "]";
    const TensorPtr& t = input(call, i, name.c_str());
    expectFloat(call, *t, name.c_str());
    tensors.push_back(t);
  }
  TensorPtr out = Tensor::empty(call.device, {1}, DType::F32);
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    NormTable t = normTable(call.device, tensors);
    // One f64 partial per chunk, added in chunk order by the second kernel.
    TensorPtr workspace = scratchBytes(call.device, gpu::gradNormWorkspaceBytes(t.chunks));
    cudaStream_t stream = streamOf(call.device);
    return {{out}, {}, [t, workspace, out, stream] {
              gpu::gradNorm(out->data<float>(), t.table.upload(), t.table.count(), t.chunks, workspace->raw(), stream);
            }};
  }
#endif
  return {{out}, {}, [tensors, out] {
            struct Block {
              size_t tensor;
              int64_t begin, end;
            };
            std::vector<Block> blocks;
            for (size_t k = 0; k < tensors.size(); ++k) {
              for (int64_t b = 0; b < tensors[k]->numel(); b += kNormBlock) {
                blocks.push_back({k, b, std::min(tensors[k]->numel(), b + kNormBlock)});
              }
            }
            std::vector<double> partial(blocks.size(), 0.0);
            parallelFor(static_cast<int64_t>(blocks.size()), 1, [&](int64_t begin, int64_t end) {
              for (int64_t i = begin; i < end; ++i) {
                partial[i] = sumSquares(*tensors[blocks[i].tensor], blocks[i].begin, blocks[i].end);
              }
            });
            double total = 0;
            for (double p : partial) total += p;
            out->data<float>()[0] = static_cast<float>(std::sqrt(total));
          }};
}

// clipByNorm([norm, tensors...], {maxNorm}) -> [] (tensors scaled in place)
OpPlan buildClipByNorm(const OpCall& call) {
  const TensorPtr& norm = input(call, 0, "norm");
  expectNorm(call, *norm);
  double maxNorm = finiteAttr(call, "maxNorm", 0, HUGE_VAL, false);
  std::vector<TensorPtr> tensors;
  for (size_t i = 1; i < call.inputs.size(); ++i) {
    std::string name = "tensors[" + std::to_string(i - 1) + "]";
    const TensorPtr& t = input(call, i, name.c_str());
    expectFloat(call, *t, name.c_str());
    tensors.push_back(t);
  }
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    NormTable t = normTable(call.device, tensors);
    cudaStream_t stream = streamOf(call.device);
    return {{}, tensors, [t, norm, maxNorm, stream] {
              gpu::clipByNorm(t.table.upload(), t.table.count(), t.chunks, norm->raw(), norm->dtype(), maxNorm, stream);
            }};
  }
#endif
  return {{}, tensors, [norm, tensors, maxNorm] {
            const double factor = clipFactor(*norm, maxNorm);
            if (factor == 1.0) return;
            for (const TensorPtr& t : tensors) {
              withComputeType(t->dtype(), [&](auto zero) {
                using T = decltype(zero);
                HostOut<T> x(*t, true);
                const T f = T(factor);
                parallelFor(t->numel(), kGrain, [&](int64_t begin, int64_t end) {
                  for (int64_t i = begin; i < end; ++i) x[i] *= f;
                });
                x.commit();
              });
            }
          }};
}

}  // namespace

REGISTER_OP(buildAdamw, {"adamw", {"gradNorm?", "skipUnlessFinite?", "params...", "grads...", "m...", "v..."}, {attr::integer("count"), attr::number("lr"), attr::number("beta1"), attr::number("beta2"), attr::number("eps"), attr::number("weightDecay"), attr::integer("step"), attr::optionalNumber("maxGradNorm")}, {}});
REGISTER_OP(buildGradNorm, {"gradNorm", {"tensors..."}, {}, {"norm"}});
REGISTER_OP(buildClipByNorm, {"clipByNorm", {"norm", "tensors..."}, {attr::number("maxNorm")}, {}});

}  // namespace seqtune
