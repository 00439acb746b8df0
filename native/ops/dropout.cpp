// Inverted dropout. The mask is never stored: element i's keep decision is dropoutKeep(seed,
// offset, i, p), so the backward (this same op applied to dy) regenerates it exactly, on any
// device and thread count. On a CUDA device kernels/elementwise/dropout.cu draws the same mask.
#include <cstring>

#include "native/cpu/dropout.h"
#include "native/ops/op_util.h"
#ifdef SEQTUNE_CUDA
#include "kernels/elementwise/dropout.h"
#include "native/runtime/cuda_device.h"
#endif

namespace seqtune {

namespace {

uint64_t counterAttr(const OpCall& call, const char* name) {
  const int64_t v = call.attrs.integer(name);
  if (v < 0) fail(code::kArgument, call.op, ": ", name, " must be a non-negative integer, got ", v);
  return static_cast<uint64_t>(v);
}

OpPlan buildDropout(const OpCall& call) {
  const TensorPtr& x = input(call, 0, "x");
  expectFloat(call, *x, "x");
  const double p = call.attrs.number("p");
  if (!(p >= 0 && p < 1)) fail(code::kArgument, call.op, ": p must be in [0, 1), got ", p);
  const uint64_t seed = counterAttr(call, "seed");
  const uint64_t offset = counterAttr(call, "offset");
  TensorPtr out = Tensor::empty(call.device, x->shape(), x->dtype());
#ifdef SEQTUNE_CUDA
  if (call.device->isCuda()) {
    // p = 0 is a device-to-device copy inside the launcher.
    cudaStream_t stream = streamOf(call.device);
    return {{out}, {}, [x, out, p, seed, offset, stream] {
              gpu::dropout(out->raw(), x->raw(), x->dtype(), out->numel(), p, seed, offset, stream);
            }};
  }
#endif
  if (p == 0) {
    return {{out}, {}, [x, out] { std::memcpy(out->raw(), x->raw(), x->nbytes()); }};
  }
  return {{out}, {}, [x, out, p, seed, offset] {
            cpu::dropout(*x, p, seed, offset, *out);
          }};
}

}  // namespace

REGISTER_OP(buildDropout, {"dropout", {"x"}, {attr::number("p"), attr::integer("seed"), attr::integer("offset")}, {"out"}});

}  // namespace seqtune
