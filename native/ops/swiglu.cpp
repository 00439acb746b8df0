// SwiGLU, LLaMA's MLP activation: silu(gate) · up, and its backward. On a CUDA device the same
// plans launch kernels/elementwise/swiglu.cu.
#include "native/cpu/swiglu.h"
#include "native/ops/op_util.h"
#ifdef SEQTUNE_CUDA
#include "kernels/elementwise/swiglu.h"
#include "native/runtime/cuda_device.h"
#endif

namespace seqtune {

namespace {

OpPlan buildForward(const OpCall& call) {
  const TensorPtr& gate = input(call, 0, "gate");
  const TensorPtr& up = input(call, 1, "up");
  expectFloat(call, *gate, "gate");
  expectLike(call, *gate, "gate", *up, "up");
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
            cpu::swiglu(*gate, *up, *out);
          }};
}

OpPlan buildBackward(const OpCall& call) {
  const TensorPtr& dout = input(call, 0, "dout");
  const TensorPtr& gate = input(call, 1, "gate");
  const TensorPtr& up = input(call, 2, "up");
  expectFloat(call, *dout, "dout");
  expectLike(call, *dout, "dout", *gate, "gate");
  expectLike(call, *dout, "dout", *up, "up");
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
            cpu::swigluBackward(*dout, *gate, *up, *dgate, *dup);
          }};
}

}  // namespace

REGISTER_OP(buildForward, {"swiglu", {"gate", "up"}, {}, {"out"}});
REGISTER_OP(buildBackward, {"swigluBackward", {"dout", "gate", "up"}, {}, {"dgate", "dup"}});

}  // namespace seqtune
