// Elementwise ops and tensor creation: cast, add, mul, scale, addInplace, fill, randomNormal,
// randomUniform, sum. Each computes in f32 (f64 for f64 tensors) and stores in the output dtype.
// On a CUDA device the same plans launch kernels/elementwise/elementwise.cu, which rounds exactly as below.
#include <functional>

#include "native/cpu/elementwise.h"
#include "native/ops/op_util.h"
#ifdef SEQTUNE_CUDA
#include "kernels/elementwise/elementwise.h"
#include "native/runtime/cuda_device.h"
#endif

namespace seqtune {

namespace {

// out = a * x + b * y (y optional); the shape of the common elementwise work.
OpPlan buildAxpby(const OpCall& call, double alpha, double beta, bool multiply) {
  const TensorPtr& x = input(call, 0, "a");
  const TensorPtr& y = input(call, 1, "b");
  expectFloat(call, *x, "a");
  expectLike(call, *x, "a", *y, "b");
  TensorPtr out = Tensor::empty(call.device, x->shape(), x->dtype());
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    cudaStream_t stream = streamOf(call.device);
    return {{out}, {}, [x, y, out, beta, multiply, stream] {
              if (multiply) {
                gpu::mul(out->raw(), x->raw(), y->raw(), x->dtype(), out->numel(), stream);
              } else {
                gpu::add(out->raw(), x->raw(), y->raw(), beta, x->dtype(), out->numel(), stream);
              }
            }};
  }
#endif
  return {{out}, {}, [x, y, out, alpha, beta, multiply] {
            cpu::axpby(*x, *y, *out, alpha, beta, multiply);
          }};
}

OpPlan buildAdd(const OpCall& call) { return buildAxpby(call, 1.0, call.attrs.number("alpha"), false); }
OpPlan buildMul(const OpCall& call) { return buildAxpby(call, 0, 0, true); }

// out = alpha * a
OpPlan buildScale(const OpCall& call) {
  const TensorPtr& x = input(call, 0, "a");
  expectFloat(call, *x, "a");
  double alpha = call.attrs.number("alpha");
  TensorPtr out = Tensor::empty(call.device, x->shape(), x->dtype());
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    cudaStream_t stream = streamOf(call.device);
    return {{out}, {}, [x, out, alpha, stream] {
              gpu::scale(out->raw(), x->raw(), alpha, x->dtype(), out->numel(), stream);
            }};
  }
#endif
  return {{out}, {}, [x, out, alpha] {
            cpu::scale(*x, *out, alpha);
          }};
}

// a += alpha * b, in place (gradient accumulation).
OpPlan buildAddInplace(const OpCall& call) {
  const TensorPtr& x = input(call, 0, "a");
  const TensorPtr& y = input(call, 1, "b");
  expectFloat(call, *x, "a");
  expectFloat(call, *y, "b");
  expectSameShape(call, *x, "a", *y, "b");
  double alpha = call.attrs.number("alpha");
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    cudaStream_t stream = streamOf(call.device);
    return {{}, {x}, [x, y, alpha, stream] {
              gpu::addInplace(x->raw(), x->dtype(), y->raw(), y->dtype(), alpha, x->numel(), stream);
            }};
  }
#endif
  return {{}, {x}, [x, y, alpha] {
            cpu::addInplace(*x, *y, alpha);
          }};
}

// cast(a, {dtype}) -> a in another dtype (round to nearest even for bf16/f16).
// Converts src into dst (same element count) on the device thread.
std::function<void()> castTask(const OpCall& call, TensorPtr src, TensorPtr dst) {
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    cudaStream_t stream = streamOf(call.device);
    return [src, dst, stream] { gpu::cast(dst->raw(), dst->dtype(), src->raw(), src->dtype(), dst->numel(), stream); };
  }
#endif
  return [src, dst] {
    cpu::cast(*src, *dst);
  };
}

// cast(a, {dtype}) -> a in another dtype (round to nearest even for bf16/f16).
OpPlan buildCast(const OpCall& call) {
  const TensorPtr& x = input(call, 0, "a");
  DType to;
  std::string name = call.attrs.text("dtype");
  if (!parseDtype(name, &to)) fail(code::kDtype, call.op, ": unknown target dtype '", name, "'");
  TensorPtr out = Tensor::empty(call.device, x->shape(), to);
  return {{out}, {}, castTask(call, x, out)};
}

// copyInto(dst, src): dst = src converted to dst's dtype, in place (e.g. f32 master weights into
// the bf16 copy the model computes with).
OpPlan buildCopyInto(const OpCall& call) {
  const TensorPtr& dst = input(call, 0, "dst");
  const TensorPtr& src = input(call, 1, "src");
  expectSameShape(call, *dst, "dst", *src, "src");
  if (isFloating(dst->dtype()) != isFloating(src->dtype())) {
    fail(code::kDtype, call.op, ": cannot copy ", src->describe(), " into ", dst->describe());
  }
  return {{}, {dst}, castTask(call, src, dst)};
}

Shape shapeAttr(const OpCall& call) {
  Shape shape;
  for (double d : call.attrs.numbers("shape")) {
    if (!(d >= 0) || d != static_cast<double>(static_cast<int64_t>(d))) {
      fail(code::kShape, call.op, ": shape must hold non-negative integers");
    }
    shape.push_back(static_cast<int64_t>(d));
  }
  return shape;
}

DType dtypeAttr(const OpCall& call) {
  DType dtype;
  std::string name = call.attrs.text("dtype");
  if (!parseDtype(name, &dtype)) fail(code::kDtype, call.op, ": unknown dtype '", name, "'");
  return dtype;
}

// fill({shape, dtype, value, device})
OpPlan buildFill(const OpCall& call) {
  TensorPtr out = Tensor::empty(call.device, shapeAttr(call), dtypeAttr(call));
  double value = call.attrs.number("value");
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    cudaStream_t stream = streamOf(call.device);
    return {{out}, {}, [out, value, stream] { gpu::fill(out->raw(), out->dtype(), out->numel(), value, stream); }};
  }
#endif
  return {{out}, {}, [out, value] {
            cpu::fill(*out, value);
          }};
}

// randomNormal / randomUniform ({shape, dtype, seed, offset, mean|low, std|high, device}):
// element i is Philox(seed, offset, i), identical on every backend.
OpPlan buildRandom(const OpCall& call, bool normal) {
  DType dtype = dtypeAttr(call);
  if (!isFloating(dtype)) fail(code::kDtype, call.op, ": dtype must be floating point");
  TensorPtr out = Tensor::empty(call.device, shapeAttr(call), dtype);
  uint64_t seed = static_cast<uint64_t>(call.attrs.integer("seed"));
  uint64_t offset = static_cast<uint64_t>(call.attrs.integer("offset"));
  double a = call.attrs.number(normal ? "mean" : "low");
  double b = call.attrs.number(normal ? "std" : "high");
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    cudaStream_t stream = streamOf(call.device);
    return {{out}, {}, [out, seed, offset, a, b, normal, stream] {
              if (normal) {
                gpu::randomNormal(out->raw(), out->dtype(), out->numel(), seed, offset, a, b, stream);
              } else {
                gpu::randomUniform(out->raw(), out->dtype(), out->numel(), seed, offset, a, b, stream);
              }
            }};
  }
#endif
  return {{out}, {}, [out, seed, offset, a, b, normal] {
            cpu::random(*out, seed, offset, a, b, normal);
          }};
}

OpPlan buildRandomNormal(const OpCall& call) { return buildRandom(call, true); }
OpPlan buildRandomUniform(const OpCall& call) { return buildRandom(call, false); }

// sum(a) -> [1] (f32, or f64 for f64 input), summed in fixed-size blocks in a fixed order so the
// result does not depend on the thread count.
OpPlan buildSum(const OpCall& call) {
  const TensorPtr& x = input(call, 0, "a");
  expectFloat(call, *x, "a");
  TensorPtr out = Tensor::empty(call.device, {1}, x->dtype() == DType::F64 ? DType::F64 : DType::F32);
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    // Partial sums live in a scratch tensor, released once the task has been launched: its block
    // is only reused by later work on the same stream.
    const int64_t partials = static_cast<int64_t>(gpu::sumWorkspaceBytes(x->numel()) / sizeof(double));
    TensorPtr scratch = Tensor::empty(call.device, {partials}, DType::F64);
    cudaStream_t stream = streamOf(call.device);
    return {{out}, {}, [x, out, scratch, stream] {
              gpu::sum(out->raw(), x->raw(), x->dtype(), x->numel(), scratch->raw(), stream);
            }};
  }
#endif
  return {{out}, {}, [x, out] {
            cpu::sum(*x, *out);
          }};
}

}  // namespace

REGISTER_OP(buildAdd, {"add", {"a", "b"}, {attr::number("alpha", 1.0)}, {"c"}});
REGISTER_OP(buildMul, {"mul", {"a", "b"}, {}, {"c"}});
REGISTER_OP(buildScale, {"scale", {"a"}, {attr::number("alpha")}, {"c"}});
REGISTER_OP(buildAddInplace, {"addInplace", {"a", "b"}, {attr::number("alpha", 1.0)}, {}});
REGISTER_OP(buildCast, {"cast", {"a"}, {attr::text("dtype", "")}, {"c"}});
REGISTER_OP(buildCopyInto, {"copyInto", {"dst", "src"}, {}, {}});
REGISTER_OP(buildFill, {"fill", {}, {attr::numbers("shape"), attr::text("dtype", "f32"), attr::number("value", 0.0), attr::text("device", "cpu")}, {"out"}});
REGISTER_OP(buildRandomNormal, {"randomNormal", {}, {attr::numbers("shape"), attr::text("dtype", "f32"), attr::integer("seed"), attr::integer("offset", 0), attr::number("mean", 0.0), attr::number("std", 1.0), attr::text("device", "cpu")}, {"out"}});
REGISTER_OP(buildRandomUniform, {"randomUniform", {}, {attr::numbers("shape"), attr::text("dtype", "f32"), attr::integer("seed"), attr::integer("offset", 0), attr::number("low", 0.0), attr::number("high", 1.0), attr::text("device", "cpu")}, {"out"}});
REGISTER_OP(buildSum, {"sum", {"a"}, {}, {"sum"}});

}  // namespace seqtune
