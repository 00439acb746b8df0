// crossEntropy and crossEntropyBackward over materialised logits [T, V]. Rows are independent, so
// threads split rows; the loss is then summed over rows in row order (thread-count independent).
// On a CUDA device the same plans launch kernels/loss/cross_entropy.cu, which flags bad labels; the op
// then fails with the CPU's error.
#include "native/cpu/cross_entropy.h"
#include "native/ops/loss_common.h"
#ifdef SEQTUNE_CUDA
#include "kernels/loss/cross_entropy.h"
#include "native/ops/cuda_dispatch.h"
#endif

namespace seqtune {

namespace {

void expectLogits(const OpCall& call, const Tensor& logits) {
  expectFloat(call, logits, "logits");
  expectRank(call, logits, "logits", 2);
  if (logits.dim(1) < 1) failShape(call, "logits " + logits.describe() + " needs a non-empty vocabulary");
}

// The CUDA backward reads lse and count in the forward's statistics dtype only; the CPU converts any
// floating dtype.
void expectCudaStats(const OpCall& call, DType logits, const Tensor& lse, const Tensor& count) {
  const DType stats = loss::statsDtype(logits);
  if (!call.device->isCuda() || (lse.dtype() == stats && count.dtype() == stats)) return;
  fail(code::kNotImplemented, call.op, ": on cuda (", call.device->name(), ") lse and count must be ", dtypeName(stats),
       " as crossEntropy returns them for ", dtypeName(logits), " logits, got ", lse.describe(), " and ",
       count.describe());
}

#ifdef SEQTUNE_CUDA
// Device thread, after a launch: fails with the CPU's message when the kernel flagged a label.
void verifyLabels(const char* op, const IndexCheck& check, cudaStream_t stream, int64_t rows, int64_t vocab,
                  const loss::Options& o) {
  check.verify(stream, [&](const int32_t* labels) { loss::checkLabels(op, labels, rows, vocab, o.ignoreIndex); });
}
#endif

// crossEntropy([logits, labels], {ignoreIndex, reduction}) -> [loss, lse, count]
OpPlan buildCrossEntropy(const OpCall& call) {
  const TensorPtr& logits = input(call, 0, "logits");
  const TensorPtr& labels = input(call, 1, "labels");
  expectLogits(call, *logits);
  loss::expectLabels(call, *labels, logits->dim(0));
  loss::Options o = loss::options(call);
  DType stats = loss::statsDtype(logits->dtype());
  TensorPtr lossOut = Tensor::empty(call.device, {1}, stats);
  TensorPtr lse = Tensor::empty(call.device, {logits->dim(0)}, stats);
  TensorPtr count = Tensor::empty(call.device, {1}, stats);
  const char* op = call.op;
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    IndexCheck check(call, labels, "labels");
    // One f64 loss per row, summed in row order by the launcher's second kernel.
    TensorPtr workspace = scratchBytes(call.device, gpu::crossEntropyWorkspaceBytes(logits->dim(0)));
    cudaStream_t stream = streamOf(call.device);
    return {{lossOut, lse, count}, {}, [=] {
              const int64_t rows = logits->dim(0), vocab = logits->dim(1);
              gpu::crossEntropyForward(lossOut->raw(), lse->raw(), count->raw(), logits->raw(), labels->data<int32_t>(),
                                       logits->dtype(), rows, vocab, o.ignoreIndex, o.mean, workspace->raw(),
                                       check.flag(), stream);
              verifyLabels(op, check, stream, rows, vocab, o);
            }};
  }
#endif
  return {{lossOut, lse, count}, {}, [=] {
            cpu::crossEntropy(op, *logits, *labels, o, *lossOut, *lse, *count);
          }};
}

// crossEntropyBackward([logits, labels, lse, count], {ignoreIndex, reduction, gradScale}) -> [dlogits]
OpPlan buildCrossEntropyBackward(const OpCall& call) {
  const TensorPtr& logits = input(call, 0, "logits");
  const TensorPtr& labels = input(call, 1, "labels");
  const TensorPtr& lse = input(call, 2, "lse");
  const TensorPtr& count = input(call, 3, "count");
  expectLogits(call, *logits);
  loss::expectLabels(call, *labels, logits->dim(0));
  loss::expectStats(call, *lse, *count, logits->dim(0));
  loss::Options o = loss::options(call);
  double scale = loss::gradScale(call);
  expectCudaStats(call, logits->dtype(), *lse, *count);
  TensorPtr dlogits = Tensor::empty(call.device, logits->shape(), logits->dtype());
  const char* op = call.op;
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    IndexCheck check(call, labels, "labels");
    cudaStream_t stream = streamOf(call.device);
    return {{dlogits}, {}, [=] {
              const int64_t rows = logits->dim(0), vocab = logits->dim(1);
              gpu::crossEntropyBackward(dlogits->raw(), logits->raw(), labels->data<int32_t>(), lse->raw(),
                                        count->raw(), logits->dtype(), rows, vocab, o.ignoreIndex, o.mean, scale,
                                        check.flag(), stream);
              verifyLabels(op, check, stream, rows, vocab, o);
            }};
  }
#endif
  return {{dlogits}, {}, [=] {
            cpu::crossEntropyBackward(op, *logits, *labels, *lse, *count, o, scale, *dlogits);
          }};
}

}  // namespace

REGISTER_OP(buildCrossEntropy, {"crossEntropy", {"logits", "labels"}, {attr::integer("ignoreIndex", -100), attr::text("reduction", "mean"), attr::flag("indicesChecked", false)}, {"loss", "lse", "count"}});
REGISTER_OP(buildCrossEntropyBackward, {"crossEntropyBackward", {"logits", "labels", "lse", "count"}, {attr::integer("ignoreIndex", -100), attr::text("reduction", "mean"), attr::number("gradScale", 1.0), attr::flag("indicesChecked", false)}, {"dlogits"}});

}  // namespace seqtune
