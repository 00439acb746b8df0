// gradNorm (the global L2 norm of many tensors) and clipByNorm: the builders check and dispatch.
// The CPU loops are native/cpu/grad_norm.cpp; on a CUDA device each op is one launch over a device
// table of its tensors (kernels/optim/grad_norm.cu), built here on the host and uploaded by the
// launch.
#include <cmath>
#include <string>
#include <vector>

#include "native/cpu/grad_norm.h"
#include "native/ops/op_util.h"
#ifdef SEQTUNE_CUDA
#include "kernels/optim/grad_norm.h"
#include "native/ops/cuda_dispatch.h"
#endif

namespace seqtune {

namespace {

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

// The "tensors..." inputs from input `first` on, each floating-point.
std::vector<TensorPtr> floatTensors(const OpCall& call, size_t first) {
  std::vector<TensorPtr> tensors;
  for (size_t i = first; i < call.inputs.size(); ++i) {
    std::string name = "tensors[" + std::to_string(i - first) + "]";
    const TensorPtr& t = input(call, i, name.c_str());
    expectFloat(call, *t, name.c_str());
    tensors.push_back(t);
  }
  return tensors;
}

// gradNorm([tensors...]) -> f32 [1]
OpPlan buildGradNorm(const OpCall& call) {
  const std::vector<TensorPtr> tensors = floatTensors(call, 0);
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
  return {{out}, {}, [tensors, out] { cpu::gradNorm(tensors, *out); }};
}

// clipByNorm([norm, tensors...], {maxNorm}) -> [] (tensors scaled in place)
OpPlan buildClipByNorm(const OpCall& call) {
  const TensorPtr& norm = input(call, 0, "norm");
  expectFloatScalar(call, *norm, "norm");
  double maxNorm = finiteAttr(call, "maxNorm", 0, HUGE_VAL, false);
  const std::vector<TensorPtr> tensors = floatTensors(call, 1);
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    NormTable t = normTable(call.device, tensors);
    cudaStream_t stream = streamOf(call.device);
    return {{}, tensors, [t, norm, maxNorm, stream] {
              gpu::clipByNorm(t.table.upload(), t.table.count(), t.chunks, norm->raw(), norm->dtype(), maxNorm, stream);
            }};
  }
#endif
  return {{}, tensors, [norm, tensors, maxNorm] { cpu::clipByNorm(*norm, maxNorm, tensors); }};
}

}  // namespace

REGISTER_OP(buildGradNorm, {"gradNorm", {"tensors..."}, {}, {"norm"}});
REGISTER_OP(buildClipByNorm, {"clipByNorm", {"norm", "tensors..."}, {attr::number("maxNorm")}, {}});

}  // namespace seqtune
