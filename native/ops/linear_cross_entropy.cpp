// linearCrossEntropy: the LM head and the loss fused over vocabulary chunks (the CPU loops are
// native/cpu/linear_cross_entropy.cpp). h and the weight may have different floating dtypes: the
// math runs in f32 (f64 when h is f64), dh takes h's dtype and dW the weight's. On a CUDA device the
// plans launch kernels/loss/linear_cross_entropy.h (bf16/f16 h with a head of that dtype or f32, or
// f32/f32, or f64/f64), which flags bad labels; the op then fails with the CPU's error.
#include "native/cpu/linear_cross_entropy.h"
#include "native/ops/loss_common.h"
#ifdef SEQTUNE_CUDA
#include "native/runtime/cuda_device.h"
#include "kernels/common/index_check.h"
#include "kernels/loss/linear_cross_entropy.h"
#include "native/ops/cuda_dispatch.h"
#endif

namespace seqtune {

namespace {

using Dims = cpu::LinearCeDims;

Dims checkHead(const OpCall& call, const Tensor& h, const Tensor& w, const Tensor& labels) {
  expectFloat(call, h, "h");
  expectRank(call, h, "h", 2);
  expectFloat(call, w, "weight");
  expectRank(call, w, "weight", 2);
  if (w.dim(1) != h.dim(1)) {
    failShape(call, "weight " + w.describe() + " must be [V, C] with C = " + std::to_string(h.dim(1)) + " (h " +
                        h.describe() + ")");
  }
  if (w.dim(0) < 1 || w.dim(1) < 1) failShape(call, "weight " + w.describe() + " must have V >= 1 and C >= 1");
  loss::expectLabels(call, labels, h.dim(0));
  return {h.dim(0), h.dim(1), w.dim(0)};
}

#ifdef SEQTUNE_CUDA
// The mixes kernels/loss/linear_cross_entropy.h runs, and (backward) lse and count in the forward's stats dtype.
void expectCudaInputs(const OpCall& call, const Tensor& h, const Tensor& w, const Tensor* lse, const Tensor* count) {
  const DType hd = h.dtype(), wd = w.dtype();
  const bool half = (hd == DType::BF16 || hd == DType::F16) && (wd == hd || wd == DType::F32);
  const bool full = (hd == DType::F32 || hd == DType::F64) && wd == hd;
  if (!half && !full) {
    fail(code::kNotImplemented, call.op, ": on cuda (", call.device->name(), ") h and weight must be bf16 or f16 h with ",
         "a weight of that dtype or f32, f32 with f32, or f64 with f64; got h ", h.describe(), " and weight ",
         w.describe());
  }
  const DType stats = loss::statsDtype(hd);
  if (lse && count && (lse->dtype() != stats || count->dtype() != stats)) {
    fail(code::kNotImplemented, call.op, ": on cuda (", call.device->name(), ") lse and count must be ",
         dtypeName(stats), " as linearCrossEntropy returns them for ", dtypeName(hd), " h, got ", lse->describe(),
         " and ", count->describe());
  }
}

// The launch arguments but the workspace (sized on the device thread: it reads the SM count).
gpu::LinearCeArgs ceArgs(const Dims& d, const Tensor& h, const Tensor& w, const Tensor& labels, const loss::Options& o,
                         int64_t chunk, const IndexCheck& check) {
  gpu::LinearCeArgs args;
  args.rows = d.rows;
  args.features = d.features;
  args.vocab = d.vocab;
  args.hDtype = h.dtype();
  args.weightDtype = w.dtype();
  args.h = h.raw();
  args.weight = w.raw();
  args.labels = labels.data<int32_t>();
  args.ignoreIndex = o.ignoreIndex;
  args.mean = o.mean;
  args.chunk = chunk;
  args.errorFlag = check.flag();
  return args;
}

// Device thread: scratch for the launch; held until the launch has been queued.
TensorPtr attachWorkspace(Device* device, gpu::LinearCeArgs& args, bool backward) {
  args.workspaceBytes = gpu::linearCrossEntropyWorkspaceBytes(args, backward);
  if (args.workspaceBytes == 0) return nullptr;
  TensorPtr workspace = scratchBytes(device, args.workspaceBytes);
  args.workspace = workspace->raw();
  return workspace;
}

// Device thread, after a launch: fails with the CPU's message when the kernel flagged a label.
void verifyLabels(const char* op, const IndexCheck& check, cudaStream_t stream, const Dims& d, const loss::Options& o) {
  check.verify(stream, [&](const int32_t* labels) { loss::checkLabels(op, labels, d.rows, d.vocab, o.ignoreIndex); });
}

// Either direction's CUDA plan: the launch arguments, scratch and label check around `launch`.
template <typename Launch>
OpPlan planCuda(const OpCall& call, std::vector<TensorPtr> outputs, const TensorPtr& h, const TensorPtr& w,
                const TensorPtr& labels, const Dims& d, const loss::Options& o, int64_t chunk, bool backward,
                Launch launch) {
  IndexCheck check(call, labels, "labels");
  Device* device = call.device;
  cudaStream_t stream = streamOf(device);
  const char* op = call.op;
  return {std::move(outputs), {}, [=] {
            gpu::LinearCeArgs args = ceArgs(d, *h, *w, *labels, o, chunk, check);
            TensorPtr workspace = attachWorkspace(device, args, backward);
            gpu::resetIndexFlag(check.flag(), stream);
            launch(args, stream);
            verifyLabels(op, check, stream, d, o);
          }};
}
#endif  // SEQTUNE_CUDA

// linearCrossEntropy([h, weight, labels], {ignoreIndex, reduction, chunkSize}) -> [loss, lse, count]
OpPlan buildLinearCrossEntropy(const OpCall& call) {
  const TensorPtr& h = input(call, 0, "h");
  const TensorPtr& w = input(call, 1, "weight");
  const TensorPtr& labels = input(call, 2, "labels");
  Dims d = checkHead(call, *h, *w, *labels);
  loss::Options o = loss::options(call);
  int64_t chunk = loss::chunkSize(call);
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) expectCudaInputs(call, *h, *w, nullptr, nullptr);
#endif
  DType stats = loss::statsDtype(h->dtype());
  TensorPtr lossOut = Tensor::empty(call.device, {1}, stats);
  TensorPtr lse = Tensor::empty(call.device, {d.rows}, stats);
  TensorPtr count = Tensor::empty(call.device, {1}, stats);
  const char* op = call.op;
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    return planCuda(call, {lossOut, lse, count}, h, w, labels, d, o, chunk, false,
                    [=](const gpu::LinearCeArgs& args, cudaStream_t stream) {
                      gpu::linearCrossEntropyForward(args, lossOut->raw(), lse->raw(), count->raw(), stream);
                    });
  }
#endif
  expectCpu(call);
  return {{lossOut, lse, count}, {}, [=] {
            cpu::linearCrossEntropy(op, d, chunk, o, *h, *w, *labels, *lossOut, *lse, *count);
          }};
}

// linearCrossEntropyBackward([h, weight, labels, lse, count],
//   {ignoreIndex, reduction, gradScale, needWeight, chunkSize}) -> [dh, dweight?]
OpPlan buildLinearCrossEntropyBackward(const OpCall& call) {
  const TensorPtr& h = input(call, 0, "h");
  const TensorPtr& w = input(call, 1, "weight");
  const TensorPtr& labels = input(call, 2, "labels");
  const TensorPtr& lse = input(call, 3, "lse");
  const TensorPtr& count = input(call, 4, "count");
  Dims d = checkHead(call, *h, *w, *labels);
  loss::expectStats(call, *lse, *count, d.rows);
  loss::Options o = loss::options(call);
  double scale = loss::gradScale(call);
  int64_t chunk = loss::chunkSize(call);
  bool needWeight = call.attrs.flag("needWeight");
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) expectCudaInputs(call, *h, *w, lse.get(), count.get());
#endif
  TensorPtr dh = Tensor::empty(call.device, h->shape(), h->dtype());
  TensorPtr dw = needWeight ? Tensor::empty(call.device, w->shape(), w->dtype()) : nullptr;
  std::vector<TensorPtr> outputs{dh};
  if (dw) outputs.push_back(dw);
  const char* op = call.op;
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    return planCuda(call, outputs, h, w, labels, d, o, chunk, true,
                    [=](const gpu::LinearCeArgs& args, cudaStream_t stream) {
                      gpu::linearCrossEntropyBackward(args, lse->raw(), count->raw(), scale, dh->raw(),
                                                      dw ? dw->raw() : nullptr, stream);
                    });
  }
#endif
  expectCpu(call);
  return {outputs, {}, [=] {
            cpu::linearCrossEntropyBackward(op, d, chunk, o, scale, *h, *w, *labels, *lse, *count, *dh, dw.get());
          }};
}

}  // namespace

REGISTER_OP(buildLinearCrossEntropy, {"linearCrossEntropy", {"h", "weight", "labels"}, {attr::integer("ignoreIndex", -100), attr::text("reduction", "mean"), attr::integer("chunkSize", 4096), attr::flag("indicesChecked", false)}, {"loss", "lse", "count"}});
REGISTER_OP(buildLinearCrossEntropyBackward, {"linearCrossEntropyBackward", {"h", "weight", "labels", "lse", "count"}, {attr::integer("ignoreIndex", -100), attr::text("reduction", "mean"), attr::number("gradScale", 1.0), attr::flag("needWeight", true), attr::integer("chunkSize", 4096), attr::flag("indicesChecked", false)}, {"dh", {"dweight", "needWeight"}}});

}  // namespace seqtune
