// loraLinear and loraLinearBackward: a frozen linear layer plus its low-rank adapter, with inverted
// dropout on the adapter's input. The backward regenerates the dropout mask from (seed, offset)
// instead of storing it, and never forms dW (the base weight is frozen).
// Inputs may mix floating dtypes (a bf16 base model with f32 adapters, as PEFT trains them). The
// builders check and dispatch: the CPU loops are native/cpu/lora.cpp; on a CUDA device the plans
// launch kernels/gemm/lora.h, which takes fewer mixes: see expectCudaDtypes.
#include <cmath>

#include "native/cpu/lora.h"
#include "native/ops/op_util.h"
#ifdef SEQTUNE_CUDA
#include "native/runtime/cuda_device.h"
#include "kernels/gemm/lora.h"
#include "native/ops/cuda_dispatch.h"
#endif

namespace seqtune {

namespace {

using cpu::LoraAttrs;
using Dims = cpu::LoraDims;

LoraAttrs loraAttrs(const OpCall& call) {
  double scale = call.attrs.number("scale");
  if (!std::isfinite(scale)) fail(code::kArgument, call.op, ": scale must be finite, got ", scale);
  double p = call.attrs.number("dropoutP");
  if (!(p >= 0 && p < 1)) fail(code::kArgument, call.op, ": dropoutP must be in [0, 1), got ", p);
  int64_t seed = call.attrs.integer("seed"), offset = call.attrs.integer("offset");
  if (seed < 0 || offset < 0) fail(code::kArgument, call.op, ": seed and offset must be non-negative, got ", seed, ", ", offset);
  return {scale, p, static_cast<uint64_t>(seed), static_cast<uint64_t>(offset)};
}

Dims checkLora(const OpCall& call, const Tensor& x, const Tensor& w, const Tensor& a, const Tensor& b) {
  expectFloat(call, x, "x");
  expectFloat(call, w, "weight");
  expectFloat(call, a, "a");
  expectFloat(call, b, "b");
  expectRank(call, x, "x", 2);
  expectRank(call, w, "weight", 2);
  expectRank(call, a, "a", 2);
  expectRank(call, b, "b", 2);
  Dims d{x.dim(0), x.dim(1), w.dim(0), a.dim(0)};
  if (w.dim(1) != d.in || a.dim(1) != d.in || b.dim(0) != d.out || b.dim(1) != d.rank || d.in < 1 || d.out < 1 ||
      d.rank < 1) {
    failShape(call, "expected x [T, in], weight [out, in], a [r, in], b [out, r] with in, out, r >= 1; got x " +
                        x.describe() + ", weight " + w.describe() + ", a " + a.describe() + ", b " + b.describe());
  }
  return d;
}

#ifdef SEQTUNE_CUDA
// The dtype mixes kernels/gemm/lora.h runs: weight (and dy) in x's dtype, b (and xa) in a's; then
// bf16/f16 x with adapters and bias of that dtype or f32, or everything f32, or everything f64.
void expectCudaDtypes(const OpCall& call, const Tensor& x, const Tensor& w, const Tensor& a, const Tensor& b,
                      const Tensor* bias, const Tensor* dy, const Tensor* xa) {
  const DType xd = x.dtype(), ad = a.dtype();
  const bool half = xd == DType::BF16 || xd == DType::F16;
  bool ok = w.dtype() == xd && b.dtype() == ad && (!dy || dy->dtype() == xd) && (!xa || xa->dtype() == ad);
  if (half) {
    ok = ok && (ad == xd || ad == DType::F32) && (!bias || bias->dtype() == xd || bias->dtype() == DType::F32);
  } else {
    ok = ok && ad == xd && (!bias || bias->dtype() == xd);
  }
  if (ok) return;
  std::string got = "x " + x.describe() + ", weight " + w.describe() + ", a " + a.describe() + ", b " + b.describe();
  if (bias) got += ", bias " + bias->describe();
  if (dy) got += ", dy " + dy->describe();
  if (xa) got += ", xa " + xa->describe();
  fail(code::kNotImplemented, call.op, ": on cuda (", call.device->name(),
       ") weight and dy must have x's dtype and b and xa a's dtype, with bf16/f16 x and adapters (and bias) of "
       "that dtype or f32, or all f32, or all f64; got ",
       got);
}

// What the forward's and the backward's launch arguments share.
template <typename Args>
void setCommonArgs(Args& args, const Dims& d, const LoraAttrs& at, const Tensor& x, const Tensor& w, const Tensor& a,
                   const Tensor& b) {
  args.shape = {d.tokens, d.in, d.out, d.rank};
  args.x = x.raw();
  args.weight = w.raw();
  args.a = a.raw();
  args.b = b.raw();
  args.scale = at.scale;
  args.dropout = {at.p, at.seed, at.offset};
}

// Device thread (the size depends on the current device's SM count): scratch of `bytes(args)`,
// held by the caller until the launch has been queued.
template <typename Args, typename Bytes>
TensorPtr attachWorkspace(Device* device, Args& args, Bytes bytes) {
  args.workspaceBytes = bytes(args);
  TensorPtr workspace = args.workspaceBytes > 0 ? scratchBytes(device, args.workspaceBytes) : nullptr;
  if (workspace) args.workspace = workspace->raw();
  return workspace;
}
#endif  // SEQTUNE_CUDA

// loraLinear([x, weight, a, b, bias?], {scale, dropoutP, seed, offset}) -> [out, xa]
OpPlan buildLoraLinear(const OpCall& call) {
  const TensorPtr& x = input(call, 0, "x");
  const TensorPtr& w = input(call, 1, "weight");
  const TensorPtr& a = input(call, 2, "a");
  const TensorPtr& b = input(call, 3, "b");
  TensorPtr bias = optionalInput(call, 4);
  Dims d = checkLora(call, *x, *w, *a, *b);
  if (bias) {
    expectFloat(call, *bias, "bias");
    expectShape(call, *bias, "bias", {d.out});
  }
  LoraAttrs at = loraAttrs(call);
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    expectCudaDtypes(call, *x, *w, *a, *b, bias.get(), nullptr, nullptr);
    TensorPtr y = Tensor::empty(call.device, {d.tokens, d.out}, x->dtype());
    TensorPtr xaOut = Tensor::empty(call.device, {d.tokens, d.rank}, a->dtype());
    Device* device = call.device;
    cudaStream_t stream = streamOf(device);
    return {{y, xaOut}, {}, [=] {
              gpu::LoraForwardArgs args;
              setCommonArgs(args, d, at, *x, *w, *a, *b);
              args.dtypes = {x->dtype(), a->dtype(), bias ? bias->dtype() : x->dtype()};
              args.bias = bias ? bias->raw() : nullptr;
              args.y = y->raw();
              args.xa = xaOut->raw();
              TensorPtr workspace = attachWorkspace(device, args, gpu::loraForwardWorkspaceBytes);
              gpu::loraForward(args, stream);
            }};
  }
#endif
  expectCpu(call);
  TensorPtr y = Tensor::empty(call.device, {d.tokens, d.out}, x->dtype());
  TensorPtr xaOut = Tensor::empty(call.device, {d.tokens, d.rank}, a->dtype());
  return {{y, xaOut}, {}, [=] { cpu::loraLinear(d, at, *x, *w, *a, *b, bias.get(), *y, *xaOut); }};
}

// loraLinearBackward([dy, x, weight, a, b, xa], {scale, dropoutP, seed, offset, needInput}) -> [dx?, da, db]
OpPlan buildLoraLinearBackward(const OpCall& call) {
  const TensorPtr& dy = input(call, 0, "dy");
  const TensorPtr& x = input(call, 1, "x");
  const TensorPtr& w = input(call, 2, "weight");
  const TensorPtr& a = input(call, 3, "a");
  const TensorPtr& b = input(call, 4, "b");
  const TensorPtr& xaIn = input(call, 5, "xa");
  Dims d = checkLora(call, *x, *w, *a, *b);
  expectFloat(call, *dy, "dy");
  expectShape(call, *dy, "dy", {d.tokens, d.out});
  expectFloat(call, *xaIn, "xa");
  expectShape(call, *xaIn, "xa", {d.tokens, d.rank});
  LoraAttrs at = loraAttrs(call);
  bool needInput = call.attrs.flag("needInput");
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) expectCudaDtypes(call, *x, *w, *a, *b, nullptr, dy.get(), xaIn.get());
#endif
  TensorPtr dx = needInput ? Tensor::empty(call.device, x->shape(), x->dtype()) : nullptr;
  TensorPtr da = Tensor::empty(call.device, a->shape(), a->dtype());
  TensorPtr db = Tensor::empty(call.device, b->shape(), b->dtype());
  std::vector<TensorPtr> outputs;
  if (dx) outputs.push_back(dx);
  outputs.push_back(da);
  outputs.push_back(db);
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    Device* device = call.device;
    cudaStream_t stream = streamOf(device);
    return {outputs, {}, [=] {
              gpu::LoraBackwardArgs args;
              setCommonArgs(args, d, at, *x, *w, *a, *b);
              args.dtypes = {x->dtype(), a->dtype(), x->dtype()};
              args.dy = dy->raw();
              args.xa = xaIn->raw();
              args.dx = dx ? dx->raw() : nullptr;
              args.da = da->raw();
              args.db = db->raw();
              TensorPtr workspace = attachWorkspace(device, args, gpu::loraBackwardWorkspaceBytes);
              gpu::loraBackward(args, stream);
            }};
  }
#endif
  expectCpu(call);
  return {outputs, {}, [=] { cpu::loraLinearBackward(d, at, *dy, *x, *w, *a, *b, *xaIn, dx.get(), *da, *db); }};
}

}  // namespace

REGISTER_OP(buildLoraLinear, {"loraLinear", {"x", "weight", "a", "b", "bias?"}, {attr::number("scale"), attr::number("dropoutP", 0.0), attr::integer("seed", 0), attr::integer("offset", 0)}, {"out", "xa"}});
REGISTER_OP(buildLoraLinearBackward, {"loraLinearBackward", {"dy", "x", "weight", "a", "b", "xa"}, {attr::number("scale"), attr::number("dropoutP", 0.0), attr::integer("seed", 0), attr::integer("offset", 0), attr::flag("needInput", true)}, {{"dx", "needInput"}, "da", "db"}});

}  // namespace seqtune
