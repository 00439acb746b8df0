// adamw (torch.optim.AdamW semantics over many tensors in one call): the builder checks and
// dispatches. The CPU loops are native/cpu/adamw.cpp; on a CUDA device the op is one launch over a
// device table of its tensors (kernels/optim/adamw.cu), built here on the host and uploaded by the
// launch.
#include <cmath>
#include <string>
#include <vector>

#include "native/cpu/adamw.h"
#include "native/ops/op_util.h"
#ifdef SEQTUNE_CUDA
#include "kernels/optim/adamw.h"
#include "native/ops/cuda_dispatch.h"
#endif

namespace seqtune {

namespace {

#ifdef SEQTUNE_CUDA
// The adamw launch: the table of (param, m, v, grad) and the step's constants, computed on the GPU
// in each parameter's precision; m and v must have their parameter's dtype there (the CPU converts).
OpPlan planAdamwCuda(const OpCall& call, const cpu::AdamwHyper& hp, const TensorPtr& norm, const TensorPtr& guard,
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
  cpu::AdamwHyper hp;
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
  if (norm) expectFloatScalar(call, *norm, "norm");
  TensorPtr guard = optionalInput(call, 1);
  if (guard) expectFloatScalar(call, *guard, "guard");
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
  return {{}, updated, [=] { cpu::adamw(hp, norm.get(), guard.get(), params, grads, ms, vs); }};
}

}  // namespace

REGISTER_OP(buildAdamw, {"adamw", {"gradNorm?", "skipUnlessFinite?", "params...", "grads...", "m...", "v..."}, {attr::integer("count"), attr::number("lr"), attr::number("beta1"), attr::number("beta2"), attr::number("eps"), attr::number("weightDecay"), attr::integer("step"), attr::optionalNumber("maxGradNorm")}, {}});

}  // namespace seqtune
