// linearCrossEntropy: the LM head and the loss fused over vocabulary chunks. Each chunk's logits
// [T, chunk] come from one GEMM and are folded into a running (max, sum of exp) per row, so memory
// is O(T·chunk) instead of O(T·V); the backward recomputes each chunk's logits and turns them into
// dlogits in the same buffer. Every row's reduction runs chunk by chunk in vocabulary order, and
// GEMM splits only its output, so results do not depend on the thread count.
// h and the weight may have different floating dtypes: the math runs in f32 (f64 when h is f64),
// dh takes h's dtype and dW the weight's. On a CUDA device the plans launch kernels/loss/linear_cross_entropy.h
// (bf16/f16 h with a head of that dtype or f32, or f32/f32, or f64/f64), which flags bad labels; the
// op then fails with the CPU's error.
#include "native/cpu/gemm.h"
#include "native/ops/loss_common.h"
#include "native/runtime/thread_pool.h"
#ifdef SEQTUNE_CUDA
#include "native/runtime/cuda_device.h"
#include "kernels/common/index_check.h"
#include "kernels/loss/linear_cross_entropy.h"
#include "native/ops/cuda_dispatch.h"
#endif

namespace seqtune {

namespace {

struct Dims {
  int64_t rows, features, vocab;
};

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

// Rows [v0, v0 + n) of the weight as T: a pointer into the tensor when it already holds T,
// else converted into a chunk-sized buffer (never the whole weight).
template <typename T>
class WeightChunks {
 public:
  WeightChunks(const Tensor& w, int64_t features) : w_(w), features_(features) {}
  const T* rows(int64_t v0, int64_t n) {
    if (loss::isComputeDtype<T>(w_.dtype())) return w_.data<T>() + v0 * features_;
    buffer_.resize(static_cast<size_t>(n * features_));
    const char* src = static_cast<const char*>(w_.raw()) + v0 * features_ * dtypeSize(w_.dtype());
    convertFrom<T>(w_.dtype(), src, buffer_.data(), n * features_);
    return buffer_.data();
  }

 private:
  const Tensor& w_;
  int64_t features_;
  std::vector<T> buffer_;
};

// logits[:, 0:n] = h · W[v0:v0+n]ᵀ
template <typename T>
void chunkLogits(const Dims& d, const T* h, const T* w, int64_t n, T* logits) {
  cpu::gemm(false, true, d.rows, n, d.features, T(1), h, d.features, w, d.features, T(0), logits, n);
}

template <typename T>
void forward(const Dims& d, int64_t chunk, const loss::Options& o, const Tensor& hT, const Tensor& wT,
             const int32_t* label, const Tensor& lossOut, const Tensor& lseOut, const Tensor& countOut) {
  HostIn<T> h(hT);
  WeightChunks<T> w(wT, d.features);
  const size_t rows = static_cast<size_t>(d.rows);
  std::vector<T> logits(rows * static_cast<size_t>(std::min(chunk, d.vocab)));
  std::vector<T> runMax(rows, -std::numeric_limits<T>::infinity()), runSum(rows, T(0)), target(rows, T(0));
  for (int64_t v0 = 0; v0 < d.vocab && d.rows > 0; v0 += chunk) {
    const int64_t n = std::min(chunk, d.vocab - v0);
    chunkLogits(d, h.data(), w.rows(v0, n), n, logits.data());
    parallelFor(d.rows, loss::rowGrain(n), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const T* row = logits.data() + r * n;
        T m = runMax[r];
        for (int64_t j = 0; j < n; ++j) m = std::max(m, row[j]);
        // Online log-sum-exp: rescale the sum so far to the new maximum, then add this chunk.
        T s = runSum[r] == T(0) ? T(0) : runSum[r] * std::exp(runMax[r] - m);
        for (int64_t j = 0; j < n; ++j) s += std::exp(row[j] - m);
        runMax[r] = m;
        runSum[r] = s;
        int64_t l = label[r];
        if (l >= v0 && l < v0 + n) target[r] = row[l - v0];
      }
    });
  }
  T* lse = lseOut.data<T>();
  std::vector<double> rowLoss(rows, 0.0);
  for (size_t r = 0; r < rows; ++r) {
    lse[r] = runMax[r] + std::log(runSum[r]);
    if (!loss::ignored(label[r], o)) rowLoss[r] = static_cast<double>(lse[r] - target[r]);
  }
  loss::writeLoss<T>(rowLoss, label, o, lossOut, countOut);
}

template <typename T>
void backward(const Dims& d, int64_t chunk, const loss::Options& o, double scale, const Tensor& hT,
              const Tensor& wT, const int32_t* label, const Tensor& lseT, const Tensor& countT, const Tensor& dhT,
              const Tensor* dwT) {
  HostIn<T> h(hT), lse(lseT), count(countT);
  WeightChunks<T> w(wT, d.features);
  HostOut<T> dh(dhT, false);
  const T coef = static_cast<T>(loss::gradCoef(o, scale, static_cast<double>(count[0])));
  std::vector<T> dlogits(static_cast<size_t>(d.rows * std::min(chunk, d.vocab)));
  // dW rows are written straight into the output when it holds T, else through a chunk buffer.
  const bool dwDirect = dwT && loss::isComputeDtype<T>(dwT->dtype());
  std::vector<T> dwChunk(dwT && !dwDirect ? static_cast<size_t>(std::min(chunk, d.vocab) * d.features) : 0);
  for (int64_t v0 = 0; v0 < d.vocab; v0 += chunk) {
    const int64_t n = std::min(chunk, d.vocab - v0);
    const T* wc = w.rows(v0, n);
    chunkLogits(d, h.data(), wc, n, dlogits.data());
    parallelFor(d.rows, loss::rowGrain(n), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        T* row = dlogits.data() + r * n;
        if (loss::ignored(label[r], o)) {
          std::fill(row, row + n, T(0));
        } else {
          loss::rowGradient(row, n, label[r] - v0, lse[r], coef);
        }
      }
    });
    // dh (+)= dlogits · W_chunk, accumulated over chunks in vocabulary order.
    cpu::gemm(false, false, d.rows, d.features, n, T(1), dlogits.data(), n, wc, d.features, v0 == 0 ? T(0) : T(1),
              dh.data(), d.features);
    if (!dwT) continue;
    // dW_chunk = dlogitsᵀ · h
    T* dst = dwDirect ? dwT->data<T>() + v0 * d.features : dwChunk.data();
    cpu::gemm(true, false, n, d.features, d.rows, T(1), dlogits.data(), n, h.data(), d.features, T(0), dst,
              d.features);
    if (!dwDirect) {
      char* out = static_cast<char*>(dwT->raw()) + v0 * d.features * dtypeSize(dwT->dtype());
      convertTo<T>(dwT->dtype(), dwChunk.data(), out, n * d.features);
    }
  }
  dh.commit();
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
    IndexCheck check(call, labels, "labels");
    Device* device = call.device;
    cudaStream_t stream = streamOf(device);
    return {{lossOut, lse, count}, {}, [=] {
              gpu::LinearCeArgs args = ceArgs(d, *h, *w, *labels, o, chunk, check);
              TensorPtr workspace = attachWorkspace(device, args, false);
              gpu::resetIndexFlag(check.flag(), stream);
              gpu::linearCrossEntropyForward(args, lossOut->raw(), lse->raw(), count->raw(), stream);
              verifyLabels(op, check, stream, d, o);
            }};
  }
#endif
  expectCpu(call);
  return {{lossOut, lse, count}, {}, [=] {
            const int32_t* label = labels->data<int32_t>();
            loss::checkLabels(op, label, d.rows, d.vocab, o.ignoreIndex);
            withComputeType(h->dtype(), [&](auto zero) {
              forward<decltype(zero)>(d, chunk, o, *h, *w, label, *lossOut, *lse, *count);
            });
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
    IndexCheck check(call, labels, "labels");
    Device* device = call.device;
    cudaStream_t stream = streamOf(device);
    return {outputs, {}, [=] {
              gpu::LinearCeArgs args = ceArgs(d, *h, *w, *labels, o, chunk, check);
              TensorPtr workspace = attachWorkspace(device, args, true);
              gpu::resetIndexFlag(check.flag(), stream);
              gpu::linearCrossEntropyBackward(args, lse->raw(), count->raw(), scale, dh->raw(),
                                              dw ? dw->raw() : nullptr, stream);
              verifyLabels(op, check, stream, d, o);
            }};
  }
#endif
  expectCpu(call);
  return {outputs, {}, [=] {
            const int32_t* label = labels->data<int32_t>();
            loss::checkLabels(op, label, d.rows, d.vocab, o.ignoreIndex);
            if (d.rows == 0) {
              // No tokens: nothing to multiply (and GEMM over an empty K is not asked of it).
              if (dw) loss::zeroFill(*dw);
              return;
            }
            withComputeType(h->dtype(), [&](auto zero) {
              backward<decltype(zero)>(d, chunk, o, scale, *h, *w, label, *lse, *count, *dh, dw.get());
            });
          }};
}

}  // namespace

REGISTER_OP(buildLinearCrossEntropy, {"linearCrossEntropy", {"h", "weight", "labels"}, {attr::integer("ignoreIndex", -100), attr::text("reduction", "mean"), attr::integer("chunkSize", 4096), attr::flag("indicesChecked", false)}, {"loss", "lse", "count"}});
REGISTER_OP(buildLinearCrossEntropyBackward, {"linearCrossEntropyBackward", {"h", "weight", "labels", "lse", "count"}, {attr::integer("ignoreIndex", -100), attr::text("reduction", "mean"), attr::number("gradScale", 1.0), attr::flag("needWeight", true), attr::integer("chunkSize", 4096), attr::flag("indicesChecked", false)}, {"dh", {"dweight", "needWeight"}}});

}  // namespace seqtune
