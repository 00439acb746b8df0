// SwiGLU, LLaMA's MLP activation: silu(gate) · up, and its backward. On a CUDA device the same
// plans launch kernels/elementwise/swiglu.cu.
#include <cmath>

#include "native/ops/op_util.h"
#include "native/runtime/thread_pool.h"
#ifdef SEQTUNE_CUDA
#include "kernels/elementwise/swiglu.h"
#include "native/runtime/cuda_device.h"
#endif

namespace seqtune {

namespace {

constexpr int64_t kGrain = 1 << 14;

// 1 / (1 + e^-g): exp overflows to inf for very negative g, giving 0, never NaN.
template <typename T>
T sigmoid(T g) {
  return T(1) / (T(1) + std::exp(-g));
}

void expectPair(const OpCall& call, const Tensor& a, const char* nameA, const Tensor& b, const char* nameB) {
  expectSameDtype(call, a, nameA, b, nameB);
  expectSameShape(call, a, nameA, b, nameB);
}

OpPlan buildForward(const OpCall& call) {
  const TensorPtr& gate = input(call, 0, "gate");
  const TensorPtr& up = input(call, 1, "up");
  expectFloat(call, *gate, "gate");
  expectPair(call, *gate, "gate", *up, "up");
  TensorPtr out = Tensor::empty(call.device, gate->shape(), gate->dtype());
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    cudaStream_t stream = streamOf(call.device);
    return {{out}, {}, [gate, up, out, stream] {
              gpu::swigluForward(out->raw(), gate->raw(), up->raw(), gate->dtype(), out->numel(), stream);
            }};
  }
#endif
  return {{out}, {}, [gate, up, out] {
            withComputeType(gate->dtype(), [&](auto zero) {
              using T = decltype(zero);
              HostIn<T> g(*gate), u(*up);
              HostOut<T> o(*out, false);
              parallelFor(out->numel(), kGrain, [&](int64_t begin, int64_t end) {
                for (int64_t i = begin; i < end; ++i) o[i] = g[i] * sigmoid(g[i]) * u[i];
              });
              o.commit();
            });
          }};
}

// d silu(g)/dg = σ(g)·(1 + g·(1 - σ(g))).
OpPlan buildBackward(const OpCall& call) {
  const TensorPtr& dout = input(call, 0, "dout");
  const TensorPtr& gate = input(call, 1, "gate");
  const TensorPtr& up = input(call, 2, "up");
  expectFloat(call, *dout, "dout");
  expectPair(call, *dout, "dout", *gate, "gate");
  expectPair(call, *dout, "dout", *up, "up");
  TensorPtr dgate = Tensor::empty(call.device, gate->shape(), gate->dtype());
  TensorPtr dup = Tensor::empty(call.device, gate->shape(), gate->dtype());
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    cudaStream_t stream = streamOf(call.device);
    return {{dgate, dup}, {}, [dout, gate, up, dgate, dup, stream] {
              gpu::swigluBackward(dgate->raw(), dup->raw(), dout->raw(), gate->raw(), up->raw(), gate->dtype(),
                                  dgate->numel(), stream);
            }};
  }
#endif
  return {{dgate, dup}, {}, [dout, gate, up, dgate, dup] {
            withComputeType(gate->dtype(), [&](auto zero) {
              using T = decltype(zero);
              HostIn<T> d(*dout), g(*gate), u(*up);
              HostOut<T> dg(*dgate, false), du(*dup, false);
              parallelFor(dgate->numel(), kGrain, [&](int64_t begin, int64_t end) {
                for (int64_t i = begin; i < end; ++i) {
                  const T s = sigmoid(g[i]);
                  dg[i] = d[i] * u[i] * s * (T(1) + g[i] * (T(1) - s));
                  du[i] = d[i] * g[i] * s;
                }
              });
              dg.commit();
              du.commit();
            });
          }};
}

}  // namespace

REGISTER_OP(buildForward, {"swiglu", {"gate", "up"}, {}, {"out"}});
REGISTER_OP(buildBackward, {"swigluBackward", {"dout", "gate", "up"}, {}, {"dgate", "dup"}});

}  // namespace seqtune
